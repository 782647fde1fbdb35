//! The binary against fixture libraries: list, cat, argument resolution and errors, with
//! whole outputs compared.

mod common;

use common::{C1, C2, Test};

fn fixture() -> Test {
    let t = Test::new();
    t.manifest(
        "alpha",
        &format!(
            "# the alpha image\nMaintainers: Jane Doe <jane@example.com> (@jane)\nGitRepo: https://example.com/alpha.git\n\nTags: 2.0, 2, latest\nSharedTags: shared\nArchitectures: amd64, arm64v8\nGitCommit: {C1}\nDirectory: 2\n\nTags: 1.0, 1\nSharedTags: shared, old\nGitCommit: {C2}\nDirectory: 1\nConstraints: special\n"
        ),
    );
    t.manifest(
        "beta",
        &format!(
            "Maintainers: Bob (@bob)\nGitRepo: https://example.com/beta.git\nGitCommit: {C1}\nBuilder: buildkit\n\nTags: edge\nArchitectures: arm64v8\n\nTags: stable\nDirectory: stable\n"
        ),
    );
    t
}

#[test]
fn list_all_prints_every_tag_and_shared_tag() {
    let run = fixture().run(&["list", "--all"]);
    run.success();
    assert_eq!(
        run.stdout,
        "alpha:2.0\nalpha:2\nalpha:latest\nalpha:shared\nalpha:1.0\nalpha:1\nalpha:shared\nalpha:old\nbeta:edge\nbeta:stable\n"
    );
    assert_eq!(run.stderr, "");
}

#[test]
fn list_options() {
    let t = fixture();
    let cases: &[(&[&str], &str, &str)] = &[
        (&["list", "--uniq", "alpha"], "alpha:2.0\nalpha:1.0\n", ""),
        (&["list", "--repos", "--all"], "alpha\nbeta\n", ""),
        (
            &["list", "--repos", "alpha:1"],
            "alpha:1.0\nalpha:1\nalpha:shared\nalpha:old\n",
            "",
        ),
        (
            &["list", "alpha:shared"],
            "alpha:2.0\nalpha:2\nalpha:latest\nalpha:shared\nalpha:1.0\nalpha:1\nalpha:shared\nalpha:old\n",
            "",
        ),
        (
            &["list", "--namespace", "ns", "beta"],
            "ns/beta:edge\nns/beta:stable\n",
            "",
        ),
        (
            &["list", "--arch-filter", "--arch", "arm64v8", "--all"],
            "alpha:2.0\nalpha:2\nalpha:latest\nalpha:shared\nbeta:edge\n",
            "",
        ),
        (
            &["list", "--apply-constraints", "--all"],
            "alpha:2.0\nalpha:2\nalpha:latest\nalpha:shared\nbeta:stable\n",
            "skipping \"alpha:1.0\" (due to unsatisfactory constraints [\"special\"])\nskipping \"beta:edge\" (due to architecture \"amd64\"; only \"arm64v8\" supported)\n",
        ),
        (
            &[
                "list",
                "--apply-constraints",
                "--constraint",
                "special",
                "--exclusive-constraints",
                "--all",
            ],
            "alpha:1.0\nalpha:1\nalpha:shared\nalpha:old\n",
            "skipping \"alpha:2.0\" (due to exclusive constraints)\nskipping \"beta:edge\" (due to architecture \"amd64\"; only \"arm64v8\" supported)\nskipping \"beta:stable\" (due to exclusive constraints)\n",
        ),
    ];
    for (args, stdout, stderr) in cases {
        let run = t.run(args);
        assert_eq!(
            (run.code, run.stdout.as_str(), run.stderr.as_str()),
            (0, *stdout, *stderr),
            "keg {args:?}"
        );
    }
}

#[test]
fn repo_arguments_resolve_like_bashbrew() {
    let t = fixture();
    std::fs::create_dir(t.path().join("elsewhere")).unwrap();
    std::fs::copy(t.library().join("beta"), t.path().join("elsewhere/gamma")).unwrap();
    let abs = t.path().join("elsewhere/gamma");
    let cases: Vec<Vec<String>> = vec![
        vec!["list".into(), "./elsewhere/gamma".into()],
        vec!["list".into(), "elsewhere/gamma".into()],
        vec!["list".into(), abs.to_string_lossy().into_owned()],
    ];
    for args in cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let run = t.run(&args);
        assert_eq!(
            run.stdout, "gamma:edge\ngamma:stable\n",
            "keg {args:?}: {run:?}"
        );
    }
    // Library from the environment, flags after the subcommand.
    let run = t
        .command(&["list", "beta:stable"])
        .env("BASHBREW_LIBRARY", t.library())
        .current_dir("/")
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&run.stdout),
        "beta:edge\nbeta:stable\n".replace("beta:edge\n", "")
    );
}

#[test]
fn cat_prints_normalized_manifests_and_json() {
    let t = fixture();
    let run = t.run(&["cat", "beta", "alpha:1"]);
    run.success();
    assert_eq!(
        run.stdout,
        format!(
            "Maintainers: Bob (@bob)\nGitRepo: https://example.com/beta.git\nGitCommit: {C1}\nBuilder: buildkit\n\nTags: edge\nArchitectures: arm64v8\n\nTags: stable\nDirectory: stable\n\n\nMaintainers: Jane Doe <jane@example.com> (@jane)\nTags: 1.0, 1\nSharedTags: shared, old\nArchitectures: amd64\nGitRepo: https://example.com/alpha.git\nGitFetch: refs/heads/master\nGitCommit: {C2}\nDirectory: 1\nFile: Dockerfile\nConstraints: special\n"
        )
    );
    let json = t.run(&["cat", "--json", "beta:stable"]);
    json.success();
    let value: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(value[0]["repo"], "beta");
    assert_eq!(
        value[0]["entries"][0]["Tags"],
        serde_json::json!(["stable"])
    );
    assert_eq!(value[0]["entries"][0]["Builder"], "buildkit");
    assert_eq!(
        value[0]["global"]["Architectures"],
        serde_json::json!(["amd64"])
    );
}

#[test]
fn errors_name_every_problem_and_exit_2() {
    let t = Test::new();
    t.manifest(
        "bad",
        &format!("Maintainers: Jane (@jane)\nGitRepo: x\n\nTags: a\nGitCommit: deadbeef\n\nTags: b\nGitCommit: {C1}\nBuilder: docker\n"),
    );
    t.manifest(
        "good",
        &format!("Maintainers: Jane (@jane)\nGitRepo: x\n\nTags: a\nGitCommit: {C1}\n"),
    );
    let run = t.run(&["list", "--all"]);
    assert_eq!(run.code, 2);
    assert_eq!(run.stdout, "");
    assert_eq!(
        run.stderr,
        "error: invalid GitCommit \"deadbeef\": expected a full 40- or 64-hex commit id (lowercase), not a tag, ref or abbreviation
  --> library/bad:5:12
  |
5 | GitCommit: deadbeef
  |            ^^^^^^^^

error: invalid Builder \"docker\": expected buildkit, classic or oci-import (or no value for the default, classic)
  --> library/bad:9:10
  |
9 | Builder: docker
  |          ^^^^^^

2 errors in library/bad
"
    );
}

#[test]
fn unknown_repo_tag_and_arch_are_clear_errors() {
    let t = fixture();
    let cases: &[(&[&str], &str)] = &[
        (
            &["list", "nope"],
            "unable to find a manifest named \"nope\" (in \"library\")\n",
        ),
        (
            &["list", "alpha:9"],
            "tag not found in manifest for \"alpha\": \"9\"\n",
        ),
        (
            &["list"],
            "need at least one repo (either explicitly or via \"--all\")\n",
        ),
        (
            &["list", "--arch", "arm64", "alpha"],
            "invalid --arch \"arm64\": expected all or one of amd64, arm32v5, arm32v6, arm32v7, arm64v8, i386, mips64le, ppc64le, riscv64, s390x, windows-amd64\n",
        ),
    ];
    for (args, stderr) in cases {
        let run = t.run(args);
        assert_eq!(
            (run.code, run.stdout.as_str(), run.stderr.as_str()),
            (2, "", *stderr),
            "keg {args:?}"
        );
    }
}

#[test]
fn unknown_fields_warn_but_succeed() {
    let t = Test::new();
    t.manifest("w", &format!("Maintainers: Jane (@jane)\nGitRepo: x\nColour: red\n\nTags: a\nGitComit: {C1}\nGitCommit: {C1}\n"));
    let run = t.run(&["list", "w"]);
    run.success();
    assert_eq!(run.stdout, "w:a\n");
    assert!(
        run.stderr
            .contains("warning: unknown field `Colour` is ignored\n  --> library/w:3:1"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains("warning: unknown field `GitComit` is ignored (did you mean `GitCommit`?)"),
        "{}",
        run.stderr
    );
}

#[test]
fn help_and_version() {
    let t = Test::new();
    let version = t.run(&["--version"]);
    assert_eq!(
        version.stdout,
        format!("keg {}\n", env!("CARGO_PKG_VERSION"))
    );
    let help = t.run(&["list", "--help"]);
    help.success();
    for flag in [
        "--uniq",
        "--repos",
        "--apply-constraints",
        "--arch-filter",
        "--library",
        "--arch",
        "--namespace",
        "--constraint",
    ] {
        assert!(help.stdout.contains(flag), "list --help lacks {flag}");
    }
}

#[test]
fn publishing_flags_are_checked_before_anything_runs() {
    let t = fixture();
    let cases: &[(&[&str], &str)] = &[
        (
            &[
                "--arch",
                "amd64,arm64v8",
                "push",
                "--all",
                "--target-namespace",
                "ns",
            ],
            "amd64 and arm64v8 would both go to ns: give each architecture its own namespace with --arch-namespace ARCH=NS\n",
        ),
        (
            &["push", "--all"],
            "`push` needs a target namespace for amd64: --target-namespace NS or --arch-namespace amd64=NS\n",
        ),
        (
            &["--namespace", "lib", "tag", "--all"],
            "`tag` needs a target namespace for amd64: --target-namespace NS or --arch-namespace amd64=NS\n",
        ),
        (
            &["put-shared", "--all"],
            "either --target-namespace or --namespace is required for put-shared\n",
        ),
        (
            &[
                "put-shared",
                "--all",
                "--namespace",
                "x",
                "--arch-namespace",
                "arm64=ns",
            ],
            "invalid --arch-namespace \"arm64=ns\": expected ARCH=NAMESPACE with ARCH one of amd64, arm32v5, arm32v6, arm32v7, arm64v8, i386, mips64le, ppc64le, riscv64, s390x, windows-amd64\n",
        ),
    ];
    for (args, stderr) in cases {
        let run = t.run(args);
        assert_eq!(
            (run.code, run.stdout.as_str(), run.stderr.as_str()),
            (2, "", *stderr),
            "keg {args:?}"
        );
    }
}

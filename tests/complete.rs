//! `keg completions` and `keg man`: the scripts are generated, parse in their shell and name
//! every subcommand; bash's completes for real (the generated function, called as bash
//! calls it); the dynamic scripts complete repositories and `repo:tag` from the library;
//! every man page renders with `man -l` without a warning.
//!
//! bash, zsh and man are installed by scripts/install-prerequisites; a missing one fails.

mod common;

use std::process::Command;

use clap::CommandFactory;
use common::Test;

/// Every command a person can type (not the hidden ones).
fn subcommands() -> Vec<String> {
    keg::cli::Cli::command()
        .get_subcommands()
        .filter(|s| !s.is_hide_set())
        .map(|s| s.get_name().to_string())
        .collect()
}

fn script(args: &[&str]) -> String {
    let test = Test::new();
    let run = test.run(args);
    run.success();
    assert!(run.stderr.is_empty(), "{run:#?}");
    run.stdout
}

/// Runs `code` in `shell -c`, with target/debug (this keg) first on PATH.
fn shell(shell: &str, code: &str, dir: &std::path::Path) -> String {
    let bin = std::path::Path::new(env!("CARGO_BIN_EXE_keg"))
        .parent()
        .expect("bin dir")
        .to_path_buf();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = Command::new(shell)
        .arg("-c")
        .arg(code)
        .current_dir(dir)
        .env("PATH", path)
        .env_remove("BASHBREW_LIBRARY")
        .output()
        .unwrap_or_else(|e| panic!("{shell} is needed (scripts/install-prerequisites): {e}"));
    assert!(
        out.status.success(),
        "{shell} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn bash_script_completes_every_subcommand() {
    let text = script(&["completions", "bash"]);
    for sub in subcommands() {
        assert!(
            text.contains(&format!("keg,{sub})")),
            "bash script lacks {sub}"
        );
    }
    let test = Test::new();
    std::fs::write(test.path().join("keg.bash"), &text).expect("write");
    // The generated function, called as bash's `complete -F` calls it after `keg <TAB>`.
    let out = shell(
        "bash",
        r#"set -e; source ./keg.bash
COMP_WORDS=(keg ""); COMP_CWORD=1; COMP_LINE="keg "; COMP_POINT=4
_keg keg "" keg
printf '%s\n' "${COMPREPLY[@]}"
COMP_WORDS=(keg build --pull ""); COMP_CWORD=3
_keg keg "" --pull
printf 'pull:%s\n' "${COMPREPLY[@]}""#,
        test.path(),
    );
    let words: Vec<&str> = out.lines().collect();
    for sub in subcommands() {
        assert!(
            words.contains(&sub.as_str()),
            "`keg <TAB>` lacks {sub}: {out}"
        );
    }
    for value in ["pull:always", "pull:missing", "pull:never"] {
        assert!(
            words.contains(&value),
            "`--pull <TAB>` lacks {value}: {out}"
        );
    }
}

#[test]
fn zsh_script_parses_and_names_every_subcommand() {
    let text = script(&["completions", "zsh"]);
    assert!(text.starts_with("#compdef keg"), "{}", &text[..40]);
    for sub in subcommands() {
        assert!(
            text.contains(&format!("'{sub}:")) || text.contains(&format!("({sub})")),
            "zsh script lacks {sub}"
        );
    }
    let test = Test::new();
    std::fs::write(test.path().join("_keg"), &text).expect("write");
    // -n: parse only; the script must be valid zsh.
    shell("zsh", "zsh -n ./_keg && echo ok", test.path());
}

#[test]
fn other_shells_and_dynamic_scripts_are_generated() {
    for shell in ["fish", "elvish", "powershell"] {
        let text = script(&["completions", shell]);
        for sub in subcommands() {
            assert!(text.contains(&sub), "{shell} script lacks {sub}");
        }
    }
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let text = script(&["completions", shell, "--dynamic"]);
        assert!(text.contains("KEG_COMPLETE"), "{shell}: {text}");
    }
    let run = Test::new().run(&["completions", "tcsh"]);
    assert_eq!(run.code, 2, "{run:#?}");
    assert!(run.stderr.contains("invalid value 'tcsh'"), "{run:#?}");
}

fn library(test: &Test) {
    let text = "Maintainers: X (@x)\nGitRepo: https://example.com/r.git\n\nTags: 1.0, 1\nSharedTags: shared\nGitCommit: 0123456789abcdef0123456789abcdef01234567\n\nTags: 2.0, latest\nGitCommit: 0123456789abcdef0123456789abcdef01234567\nDirectory: two\n";
    test.manifest("alpine-tools", text)
        .manifest("busybox", text);
    std::fs::create_dir(test.path().join("other")).expect("dir");
    std::fs::write(test.path().join("other/zeta"), text).expect("write");
}

#[test]
fn dynamic_bash_completes_repositories_and_tags() {
    let test = Test::new();
    library(&test);
    let text = script(&["completions", "bash", "--dynamic"]);
    std::fs::write(test.path().join("keg.bash"), text).expect("write");
    // bash cuts COMP_WORDS at ':' (COMP_WORDBREAKS); the script reads COMP_LINE instead.
    let out = shell(
        "bash",
        r#"source ./keg.bash
t() { COMP_LINE="$1"; COMP_POINT=${#1}; COMP_TYPE=9; COMPREPLY=(); _keg_complete keg x y; echo "$1=>${COMPREPLY[*]}"; }
t "keg build a"
t "keg plan --all busybox:"
t "keg build alpine-tools:l"
t "keg --library other list z"
t "keg --library=other cat z"
t "keg context busybox:s"
t "keg pu"
t "keg build --pull n""#,
        test.path(),
    );
    assert_eq!(
        out,
        "keg build a=>alpine-tools\n\
         keg plan --all busybox:=>1.0 1 2.0 latest shared\n\
         keg build alpine-tools:l=>latest\n\
         keg --library other list z=>zeta\n\
         keg --library=other cat z=>zeta\n\
         keg context busybox:s=>shared\n\
         keg pu=>push put-shared\n\
         keg build --pull n=>never\n"
    );
}

#[test]
fn dynamic_zsh_and_fish_answers() {
    let test = Test::new();
    library(&test);
    let run = |shell: &str, index: &str, words: &[&str]| {
        let mut cmd = test.command(&["--"]);
        cmd.args(words)
            .env("KEG_COMPLETE", shell)
            .env("_CLAP_COMPLETE_INDEX", index)
            .env("_CLAP_IFS", "\n");
        let out = cmd.output().expect("run keg");
        assert!(out.status.success(), "{out:?}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    assert_eq!(
        run("zsh", "2", &["keg", "parents", "busybox:"]),
        "busybox\\:1.0\nbusybox\\:1\nbusybox\\:2.0\nbusybox\\:latest\nbusybox\\:shared"
    );
    assert_eq!(run("fish", "2", &["keg", "build", "b"]), "busybox\n");
}

/// Text without man's overstrike (`X\bX` bold, `_\bX` underline).
fn plain(text: &str) -> String {
    let mut out: Vec<char> = Vec::new();
    for c in text.chars() {
        if c == '\u{8}' {
            out.pop();
        } else {
            out.push(c);
        }
    }
    out.into_iter().collect()
}

#[test]
fn man_pages_render_without_warnings() {
    let test = Test::new();
    let dir = test.path().join("man");
    let listed = test.run(&["man", "--dir", dir.to_str().expect("utf-8")]);
    listed.success();
    let mut pages: Vec<String> = std::fs::read_dir(&dir)
        .expect("man dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    pages.sort();
    let mut expected: Vec<String> = subcommands().iter().map(|s| format!("keg-{s}.1")).collect();
    expected.push("keg.1".to_string());
    expected.sort();
    assert_eq!(pages, expected);
    assert_eq!(listed.stdout.lines().count(), pages.len());
    for page in &pages {
        let out = Command::new("man")
            .args(["--warnings=all", "-l"])
            .arg(dir.join(page))
            .env("MANWIDTH", "100")
            .env("MAN_KEEP_FORMATTING", "0")
            .output()
            .expect("man is needed (scripts/install-prerequisites)");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success() && stderr.is_empty(),
            "{page}: {stderr}"
        );
        let text = plain(&String::from_utf8_lossy(&out.stdout));
        let name = page.trim_end_matches(".1");
        assert!(
            text.contains("NAME") && text.contains(name),
            "{page}:\n{text}"
        );
        if name == "keg-build" {
            for flag in ["--jobs", "--fail-fast", "--report", "--pull", "--library"] {
                assert!(text.contains(flag), "{page} lacks {flag}:\n{text}");
            }
        }
        if name == "keg" {
            for section in [
                "SUBCOMMANDS",
                "ENVIRONMENT",
                "EXIT STATUS",
                "BASHBREW_LIBRARY",
            ] {
                assert!(text.contains(section), "keg.1 lacks {section}");
            }
        }
    }
    // Without --dir: keg(1) on stdout, the same page.
    let single = script(&["man"]);
    assert_eq!(
        single,
        std::fs::read_to_string(dir.join("keg.1")).expect("keg.1")
    );
}

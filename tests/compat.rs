//! keg as a drop-in for bashbrew: keg on PATH as `bashbrew` (a symlink in a temp dir), driven
//! by shell scripts in the style of the real tooling (tests/compat/*.sh, modelled on
//! bashbrew's CI matrix generator and official-images' naughty-*.sh, diff-pr.sh and
//! _bashbrew-cat-sorted.sh), over a small library whose Dockerfiles live in a git repository
//! made here.
//!
//! Every expected output below was derived by hand from bashbrew's source (cmd-cat.go,
//! repo.go, sort.go, manifest/rfc2822.go, templatelib) for this fixture, with the reasoning
//! noted where it is not obvious; none was copied from keg's output.
//!
//! The tests need bash, git and jq (scripts/install-prerequisites installs them) and fail,
//! not skip, without them. The ones that need the Docker rig are `#[ignore]`d like the other
//! engine tests and run by scripts/test.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{Run, Test};

const SCRIPTS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/compat");

/// A library of two repositories (`base`, `app`) built from one git repository `src` with a
/// `main` branch (commit `main`) and a `side` branch (commit `side`, not on `main`).
struct Fixture {
    test: Test,
    /// The directory holding the `bashbrew` symlink.
    bin: PathBuf,
    url: String,
    main: String,
    side: String,
}

fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .current_dir(dir)
        .args(args)
        .env("GIT_AUTHOR_NAME", "Test")
        .env("GIT_AUTHOR_EMAIL", "test@example.com")
        .env("GIT_AUTHOR_DATE", "2024-01-02T03:04:05Z")
        .env("GIT_COMMITTER_NAME", "Test")
        .env("GIT_COMMITTER_EMAIL", "test@example.com")
        .env("GIT_COMMITTER_DATE", "2024-01-02T03:04:05Z")
        .env_remove("GIT_DIR")
        .output()
        .expect("git runs (install git: scripts/install-prerequisites)");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

fn require(tool: &str) {
    let ok = Command::new(tool)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        ok,
        "{tool} is needed by these tests: run scripts/install-prerequisites"
    );
}

impl Fixture {
    fn new() -> Fixture {
        require("bash");
        require("git");
        require("jq");
        let test = Test::new();
        let src = test.path().join("src");
        std::fs::create_dir_all(&src).unwrap();
        git(&src, &["init", "-q", "-b", "main"]);
        for (path, text) in [
            (
                "base/Dockerfile",
                "FROM debian:bookworm-slim\nRUN echo base\n",
            ),
            ("base/alpine/Dockerfile", "FROM alpine:3.20\n"),
            (
                "app/Dockerfile",
                "FROM golang:1.22 AS build\nRUN go version\nFROM base:1\nCOPY --from=build /usr/local/go/bin/go /usr/local/bin/go\n",
            ),
            (
                "app/Dockerfile.slim",
                "FROM app:2.0\nRUN rm -rf /usr/share/doc\n",
            ),
            ("app/arm/Dockerfile", "FROM base:1\n"),
        ] {
            write(&src.join(path), text);
        }
        git(&src, &["add", "-A"]);
        git(&src, &["commit", "-q", "-m", "main"]);
        let main = git(&src, &["rev-parse", "HEAD"]);
        git(&src, &["checkout", "-q", "-b", "side"]);
        write(&src.join("base/Dockerfile"), "FROM debian:trixie-slim\n");
        git(&src, &["commit", "-q", "-am", "side"]);
        let side = git(&src, &["rev-parse", "HEAD"]);
        git(&src, &["checkout", "-q", "main"]);
        let url = format!("file://{}", src.display());
        test.manifest(
            "base",
            &format!(
                "Maintainers: Jane Doe <jane@example.com> (@jane)
GitRepo: {url}
GitFetch: refs/heads/main
GitCommit: {main}
Architectures: amd64, arm64v8

Tags: 1.0, 1, latest
SharedTags: stable
Directory: base

Tags: 1.0-alpine, 1-alpine, alpine
SharedTags: stable
Architectures: amd64
Directory: base/alpine

Tags: side
GitCommit: {side}
Directory: base
"
            ),
        );
        test.manifest(
            "app",
            &format!(
                "Maintainers: Bob (@bob)
GitRepo: {url}
GitFetch: refs/heads/main
GitCommit: {main}
Builder: buildkit

Tags: 2.0-slim, slim
Directory: app
File: Dockerfile.slim
Constraints: !aufs

Tags: 2.0, 2, latest
Architectures: amd64, arm64v8
Directory: app
arm64v8-Directory: app/arm
"
            ),
        );
        let bin = test.path().join("bin");
        std::fs::create_dir_all(&bin).unwrap();
        std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_keg"), bin.join("bashbrew")).unwrap();
        Fixture {
            test,
            bin,
            url,
            main,
            side,
        }
    }

    /// A command with `bashbrew` (keg) first on PATH and a clean bashbrew environment.
    fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new(program);
        let path = std::env::var_os("PATH").unwrap_or_default();
        let mut dirs = vec![self.bin.clone()];
        dirs.extend(std::env::split_paths(&path));
        cmd.current_dir(self.test.path())
            .env("PATH", std::env::join_paths(dirs).unwrap())
            .env("BASHBREW_LIBRARY", self.test.library())
            .env("BASHBREW_CACHE", self.test.path().join("cache"))
            .env("BASHBREW_CONFIG", self.test.path().join("no-config"))
            .env("LC_ALL", "C");
        for var in [
            "BASHBREW_ARCH",
            "BASHBREW_NAMESPACE",
            "BASHBREW_CONSTRAINTS",
            "BASHBREW_ARCH_NAMESPACES",
            "BASHBREW_DEBUG",
            "BASHBREW_PULL",
            "KEG_GIT_MIRRORS",
        ] {
            cmd.env_remove(var);
        }
        cmd
    }

    /// Runs one of tests/compat/*.sh.
    fn script(&self, name: &str, args: &[&str]) -> Run {
        let mut cmd = self.command("bash");
        cmd.arg(format!("{SCRIPTS}/{name}")).args(args);
        Run::from(cmd.output().expect("bash runs"))
    }

    /// Runs `bashbrew ARGS`.
    fn bashbrew(&self, args: &[&str]) -> Run {
        let mut cmd = self.command("bashbrew");
        cmd.args(args);
        Run::from(cmd.output().expect("bashbrew (keg) runs"))
    }
}

#[test]
fn the_ci_matrix_generator_runs_in_build_order() {
    let f = Fixture::new();
    let run = f.script("generate-matrix.sh", &["app"]);
    run.success();
    // `list --build-order --uniq app`: the slim entry comes first in the file but is FROM
    // app:2.0, so bashbrew's topsort emits app:2.0 first. `.TagEntry` is each tag's entry;
    // `arch` (amd64) is supported by both; `.ArchDockerFroms` read from the git cache (the
    // script's jq `unique` makes bashbrew's per-stage duplicates irrelevant); `parents
    // --depth=1 app:2.0-slim` is app:2.0, and the "ultimate" app parent is app:2.0 too.
    assert_eq!(
        run.stdout,
        concat!(
            r#"{"name":"2.0","tags":["app:2.0","app:2","app:latest"],"directory":"app","file":"Dockerfile","builder":"buildkit","constraints":[],"froms":["base:1","golang:1.22"],"os":"ubuntu-latest","build":"docker buildx build --tag 'app:2.0' --tag 'app:2' --tag 'app:latest' 'app'","parent":""}"#,
            "\n",
            r#"{"name":"2.0-slim","tags":["app:2.0-slim","app:slim"],"directory":"app","file":"Dockerfile.slim","builder":"buildkit","constraints":["!aufs"],"froms":["app:2.0"],"os":"ubuntu-latest","build":"docker buildx build --tag 'app:2.0-slim' --tag 'app:slim' --file 'app/Dockerfile.slim' 'app'","parent":"app:2.0"}"#,
            "\n",
        )
    );
}

#[test]
fn naughty_commits_fetches_into_the_git_cache_that_git_uses() {
    let f = Fixture::new();
    let run = f.script("naughty-commits.sh", &["app", "base"]);
    run.success();
    // Every entry of app is on main. base:side's commit is fetched by `.ArchDockerFroms`
    // (by id; GitFetch names a ref that exists, so keg accepts it, as bashbrew does), and
    // plain git in `gitCache` then finds it is not an ancestor of refs/heads/main.
    assert_eq!(
        run.stdout,
        format!(
            " - base:\n   - commit {}:\n     - is not in the specified ref GitFetch: refs/heads/main\n\n",
            f.side
        )
    );
    // gitCache is keg's bare cache, where git itself works.
    let cache = f.bashbrew(&["cat", "-f", "{{ gitCache }}", "app"]);
    cache.success();
    let path = cache.stdout.trim_end();
    assert_eq!(Path::new(path), f.test.path().join("cache/git"));
    assert_eq!(git(Path::new(path), &["cat-file", "-t", &f.side]), "commit");
}

#[test]
fn diff_pr_archives_build_contexts_from_the_git_cache() {
    let f = Fixture::new();
    let run = f.script("diff-pr-archive.sh", &["app"]);
    run.success();
    // Both app entries support amd64; `.Tags | last` names them slim and latest; their
    // Directory is app at the main commit, so both contexts hold app/ of that commit.
    let context = |name: &str| {
        format!(
            "{name}/\n{name}/Dockerfile\n{name}/Dockerfile.slim\n{name}/arm/\n{name}/arm/Dockerfile\n"
        )
    };
    let mut want: Vec<String> = context("app_latest")
        .lines()
        .chain(context("app_slim").lines())
        .map(str::to_string)
        .collect();
    want.sort();
    assert_eq!(run.stdout, want.join("\n") + "\n");
}

#[test]
fn cat_sorted_prints_each_entry_without_the_global_defaults() {
    let f = Fixture::new();
    let run = f.script("cat-sorted.sh", &["base"]);
    run.success();
    // One image: no "# image" header. The global paragraph without bashbrew's defaults
    // (GitFetch refs/heads/master, Directory ., File Dockerfile, Architectures amd64 are
    // not its values here, so all stay), fields in String() order, then `printf "%s\n"`;
    // then each tag of `list --uniq`, `sort -V`ed, as `\n<entry without global values>\n`.
    let url = &f.url;
    let (main, side) = (&f.main, &f.side);
    assert_eq!(
        run.stdout,
        format!(
            "Maintainers: Jane Doe <jane@example.com> (@jane)
Architectures: amd64, arm64v8
GitRepo: {url}
GitFetch: refs/heads/main
GitCommit: {main}

Tags: 1.0, 1, latest
SharedTags: stable
Directory: base

Tags: 1.0-alpine, 1-alpine, alpine
SharedTags: stable
Architectures: amd64
Directory: base/alpine

Tags: side
GitCommit: {side}
Directory: base
"
        )
    );
}

#[test]
fn naughty_sharedtags_finds_two_entries_for_one_architecture() {
    let f = Fixture::new();
    let run = f.script("naughty-sharedtags.sh", &["base", "app"]);
    run.success();
    // base:stable is on base:1.0 (amd64, arm64v8, from the global paragraph) and on
    // base:1.0-alpine (amd64): amd64 twice. app has no shared tags.
    assert_eq!(
        run.stdout,
        " - base:stable: (duplicate architectures in SharedTags; base:1.0, base:1.0-alpine)\n   - amd64\n   - amd64\n"
    );
}

#[test]
fn arches_parents_and_namespaces_per_architecture() {
    let f = Fixture::new();
    let run = f.script("arches.sh", &["app", "base"]);
    run.success();
    // `.DockerFroms` follows the exported BASHBREW_ARCH: app:2.0 on arm64v8 builds from
    // app/arm (FROM base:1). A parent is "in the library" when `cat` finds its TagEntry and
    // it has that architecture; golang and debian images are not in this library.
    // Then: each repository's global Architectures (app: the default, amd64), with
    // archFilter over `.Entries` (entry values), ociPlatform fields and String(), and
    // `--arch-namespace` given before the command.
    assert_eq!(
        run.stdout,
        "app:2.0 [amd64]: FROM base:1 (in the library)
app:2.0 [amd64]: FROM golang:1.22 (not in the library for amd64)
app:2.0 [arm64v8]: FROM base:1 (in the library)
app:2.0-slim [amd64]: FROM app:2.0 (in the library)
base:1.0 [amd64]: FROM debian:bookworm-slim (not in the library for amd64)
base:1.0 [arm64v8]: FROM debian:bookworm-slim (not in the library for arm64v8)
base:1.0-alpine [amd64]: FROM alpine:3.20 (not in the library for amd64)
base:side [amd64]: FROM debian:trixie-slim (not in the library for amd64)
base:side [arm64v8]: FROM debian:trixie-slim (not in the library for arm64v8)
app amd64: 2 entries, linux/amd64 (linux/amd64), pushed to \"\"
base amd64: 3 entries, linux/amd64 (linux/amd64), pushed to \"\"
base arm64v8: 2 entries, linux/arm64/v8 (linux/arm64/v8), pushed to \"registry.example/arm64v8\"
"
    );
}

#[test]
fn template_errors_are_gos_with_exit_code_2() {
    let f = Fixture::new();
    // `.TagEntry` without a tag is a nil *Manifest2822Entry: calling a method on it fails as
    // Go's text/template reports a panic in a method (bashbrew: the same text, exit 1).
    let run = f.bashbrew(&[
        "cat",
        "--format",
        "{{ .TagEntry.HasArchitecture arch }}",
        "--all",
    ]);
    assert_eq!(run.code, 2, "{run:?}");
    assert_eq!(run.stdout, "");
    assert_eq!(
        run.stderr,
        "failed executing template for repo \"app\"\ntemplate: --format:1:12: executing \"--format\" at <.TagEntry.HasArchitecture>: error calling HasArchitecture: runtime error: invalid memory address or nil pointer dereference\n"
    );
    // Parse errors name the line; nothing is printed.
    let run = f.bashbrew(&["cat", "-f", "{{ .RepoName }}\n\n{{ upper . }}", "app"]);
    assert_eq!(run.code, 2, "{run:?}");
    assert_eq!(run.stdout, "");
    assert_eq!(
        run.stderr,
        "failed parsing --format \"{{ .RepoName }}\\n\\n{{ upper . }}\"\ntemplate: --format:3: function \"upper\" not defined\n"
    );
    // Wrong argument count and missing fields, with line:column (0-based column, as Go).
    let run = f.bashbrew(&["cat", "-f", "x\n  {{ $.Tags \"\" }}", "app"]);
    assert_eq!(run.code, 2);
    assert!(
        run.stderr.ends_with(
            "template: --format:2:6: executing \"--format\" at <$.Tags>: wrong number of args for Tags: want 3 got 1\n"
        ),
        "{run:?}"
    );
    let run = f.bashbrew(&["cat", "-f", "{{ .Nope }}", "app"]);
    assert!(
        run.stderr.ends_with(
            "template: --format:1:3: executing \"--format\" at <.Nope>: can't evaluate field Nope in type *main.Repo\n"
        ),
        "{run:?}"
    );
    // Output of earlier repositories stays written when a later one fails.
    let run = f.bashbrew(&[
        "cat",
        "-f",
        "{{ .RepoName }}{{ if eq .RepoName \"base\" }}{{ index .Entries 9 }}{{ end }}",
        "app",
        "base",
    ]);
    assert_eq!((run.code, run.stdout.as_str()), (2, "app\n"));
    assert!(
        run.stderr
            .contains("error calling index: index out of range: 9"),
        "{run:?}"
    );
}

#[test]
fn format_file_build_order_and_the_repository_index() {
    let f = Fixture::new();
    let template = f.test.path().join("t.tmpl");
    std::fs::write(&template, "{{ i }} {{ .RepoName }}: {{ len .Entries }}").unwrap();
    let path = template.to_str().unwrap();
    // -F reads the template from the file; -F wins over -f, as in bashbrew.
    let run = f.bashbrew(&["cat", "-F", path, "-f", "ignored", "app", "base"]);
    run.success();
    assert_eq!(run.stdout, "0 app: 2\n1 base: 3\n");
    // --build-order: base before app (app:2.0 is FROM base:1); `i` counts in that order.
    let run = f.bashbrew(&["cat", "--build-order", "--format-file", path, "app", "base"]);
    run.success();
    assert_eq!(run.stdout, "0 base: 3\n1 app: 2\n");
    // Without --format, cat --build-order prints the manifests in that order.
    let sorted = f.bashbrew(&["cat", "--build-order", "app", "base"]);
    let base = f.bashbrew(&["cat", "base"]);
    let app = f.bashbrew(&["cat", "app"]);
    assert_eq!(sorted.stdout, format!("{}\n\n{}", base.stdout, app.stdout));
    // A template file's errors are named by the file.
    std::fs::write(&template, "ok\n{{ .RepoName | nope }}").unwrap();
    let run = f.bashbrew(&["cat", "-F", path, "app"]);
    assert_eq!(run.code, 2);
    assert_eq!(
        run.stderr,
        format!(
            "failed parsing --format-file \"{path}\"\ntemplate: {path}:2: function \"nope\" not defined\n"
        )
    );
}

#[test]
fn aliases_and_global_flags_anywhere() {
    let f = Fixture::new();
    let list = f.bashbrew(&["list", "app"]);
    list.success();
    assert_eq!(
        list.stdout,
        "app:2.0-slim\napp:slim\napp:2.0\napp:2\napp:latest\n"
    );
    assert_eq!(f.bashbrew(&["ls", "app"]).stdout, list.stdout);
    // --unique is --uniq; global flags before or after the command.
    let uniq = "ns/app:2.0-slim\nns/app:2.0\n";
    assert_eq!(
        f.bashbrew(&["--namespace", "ns", "list", "--unique", "app"])
            .stdout,
        uniq
    );
    assert_eq!(
        f.bashbrew(&["list", "app", "--uniq", "--namespace", "ns"])
            .stdout,
        uniq
    );
    // children: base:1 is the parent of app:2.0, itself the parent of app:2.0-slim.
    let children = f.bashbrew(&["children", "base:1"]);
    children.success();
    assert_eq!(children.stdout, "app:2.0\napp:2.0-slim\n");
    for alias in ["offspring", "descendants", "progeny"] {
        assert_eq!(
            f.bashbrew(&[alias, "base:1"]).stdout,
            children.stdout,
            "{alias}"
        );
    }
    // parents of app:2.0-slim on its architecture (amd64), level by level.
    let parents = f.bashbrew(&["parents", "app:2.0-slim"]);
    parents.success();
    assert_eq!(
        parents.stdout,
        "app:2.0\ngolang:1.22\nbase:1\ndebian:bookworm-slim\n"
    );
    for alias in ["ancestors", "progenitors"] {
        assert_eq!(
            f.bashbrew(&[alias, "app:2.0-slim"]).stdout,
            parents.stdout,
            "{alias}"
        );
    }
    assert_eq!(
        f.bashbrew(&["parents", "--depth=1", "app:2.0-slim"]).stdout,
        "app:2.0\n"
    );
    // --arch-namespace before the command, after it, and from BASHBREW_ARCH_NAMESPACES.
    let template = "{{ archNamespace \"arm64v8\" }}|{{ archNamespace \"amd64\" }}";
    let before = f.bashbrew(&[
        "--arch-namespace",
        "arm64v8=r/arm64v8",
        "cat",
        "-f",
        template,
        "app",
    ]);
    assert_eq!(before.stdout, "r/arm64v8|\n", "{before:?}");
    let after = f.bashbrew(&[
        "cat",
        "-f",
        template,
        "app",
        "--arch-namespace",
        "arm64v8 = r/arm64v8",
    ]);
    assert_eq!(after.stdout, "r/arm64v8|\n");
    let mut env = f.command("bashbrew");
    env.env(
        "BASHBREW_ARCH_NAMESPACES",
        "amd64=r/amd64, arm64v8=r/arm64v8",
    )
    .args(["cat", "-f", template, "app"]);
    assert_eq!(
        Run::from(env.output().unwrap()).stdout,
        "r/arm64v8|r/amd64\n"
    );
    // --arch before or after, and BASHBREW_ARCH.
    assert_eq!(
        f.bashbrew(&["--arch", "arm64v8", "list", "--arch-filter", "app"])
            .stdout,
        "app:2.0\napp:2\napp:latest\n"
    );
    assert_eq!(
        f.bashbrew(&["cat", "-f", "{{ arch }}", "app", "--arch", "s390x"])
            .stdout,
        "s390x\n"
    );
    // -? is help, -v the version, as in bashbrew.
    let help = f.bashbrew(&["-?"]);
    assert!(help.code == 0 && help.stdout.contains("Usage:"), "{help:?}");
    let version = f.bashbrew(&["-v"]);
    assert!(
        version.code == 0 && version.stdout.starts_with("keg "),
        "{version:?}"
    );
    // BASHBREW_PULL is build's --pull.
    assert!(
        f.bashbrew(&["build", "--help"])
            .stdout
            .contains("BASHBREW_PULL")
    );
}

#[test]
fn as_bashbrew_the_default_cache_is_bashbrews() {
    let f = Fixture::new();
    let home = f.test.path().join("home");
    // Scripts reach bashbrew's cache by its default path (generate.sh:
    // `${BASHBREW_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/bashbrew}/git`).
    let mut cmd = f.command("bashbrew");
    cmd.env_remove("BASHBREW_CACHE")
        .env_remove("XDG_CACHE_HOME")
        .env("HOME", &home)
        .args(["cat", "-f", "{{ gitCache }}", "app"]);
    let run = Run::from(cmd.output().unwrap());
    run.success();
    assert_eq!(
        run.stdout,
        format!("{}\n", home.join(".cache/bashbrew/git").display())
    );
    // Run as keg, keg's own default.
    let mut cmd = f.command(env!("CARGO_BIN_EXE_keg"));
    cmd.env_remove("BASHBREW_CACHE")
        .env_remove("XDG_CACHE_HOME")
        .env("HOME", &home)
        .args(["cat", "-f", "{{ gitCache }}", "app"]);
    let run = Run::from(cmd.output().unwrap());
    assert_eq!(
        run.stdout,
        format!("{}\n", home.join(".cache/keg/git").display())
    );
}

#[test]
fn the_config_flags_file_sets_defaults_per_command() {
    let f = Fixture::new();
    let dir = f.test.path().join("conf");
    write(
        &dir.join("flags"),
        "# defaults of every command
Namespace: confns

# list only
Commands: list
Unique: true
BuildOrder: true
",
    );
    let conf = dir.to_str().unwrap();
    // list gets Unique and BuildOrder (app:2.0 first) and the namespace.
    let run = f.bashbrew(&["--config", conf, "list", "app"]);
    run.success();
    assert_eq!(run.stdout, "confns/app:2.0\nconfns/app:2.0-slim\n");
    // cat is not in `Commands: list`: only the namespace applies.
    assert_eq!(
        f.bashbrew(&["cat", "-f", "{{ namespace }}", "app", "--config", conf])
            .stdout,
        "confns\n"
    );
    // A flag on the command line, or its environment variable, wins over the file.
    assert_eq!(
        f.bashbrew(&["--config", conf, "list", "--namespace", "cli", "app"])
            .stdout,
        "cli/app:2.0\ncli/app:2.0-slim\n"
    );
    let mut env = f.command("bashbrew");
    env.env("BASHBREW_CONFIG", conf)
        .env("BASHBREW_NAMESPACE", "envns")
        .args(["list", "app"]);
    assert_eq!(
        Run::from(env.output().unwrap()).stdout,
        "envns/app:2.0\nenvns/app:2.0-slim\n"
    );
    // A bad value is an error naming file:line:column.
    write(&dir.join("flags"), "Commands: list\nUnique: maybe\n");
    let run = f.bashbrew(&["--config", conf, "list", "app"]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(run.stderr.contains("invalid boolean \"maybe\""), "{run:?}");
    assert!(run.stderr.contains(&format!("{conf}/flags:2:9")), "{run:?}");
}

#[test]
fn debug_shows_the_git_operations() {
    let f = Fixture::new();
    let run = f.bashbrew(&["--debug", "from", "app:2.0-slim"]);
    run.success();
    assert_eq!(run.stdout, "app:2.0-slim: app:2.0\napp:slim: app:2.0\n");
    let main = &f.main;
    assert!(
        run.stderr
            .contains(&format!("$ git fetch {} {main}", f.url)),
        "{run:?}"
    );
    assert!(
        run.stderr
            .contains(&format!("$ git show {main}:app/Dockerfile.slim")),
        "{run:?}"
    );
    // BASHBREW_DEBUG does the same; without it nothing is shown.
    let mut env = f.command("bashbrew");
    env.env("BASHBREW_DEBUG", "1").args(["from", "app:2.0"]);
    assert!(
        Run::from(env.output().unwrap())
            .stderr
            .contains("$ git show")
    );
    assert_eq!(f.bashbrew(&["from", "app:2.0"]).stderr, "");
}

#[test]
fn a_git_fetch_naming_no_ref_is_an_error() {
    let f = Fixture::new();
    // The commit can be fetched by its id, but the repository has no refs/heads/nope.
    f.test.manifest(
        "bad",
        &format!(
            "Maintainers: Bob (@bob)\nGitRepo: {}\nGitFetch: refs/heads/nope\n\nTags: 1\nGitCommit: {}\nDirectory: app/arm\n",
            f.url, f.main
        ),
    );
    let run = f.bashbrew(&["from", "bad"]);
    assert_eq!(run.code, 2, "{run:?}");
    assert_eq!(run.stdout, "");
    assert!(
        run.stderr
            .contains(&format!("{} has no refs/heads/nope (the GitFetch)", f.url)),
        "{run:?}"
    );
    assert!(run.stderr.starts_with("bad:1 (amd64): fetching"), "{run:?}");
}

#[test]
fn manifests_read_as_bashbrew_reads_them() {
    let f = Fixture::new();
    let (url, main) = (&f.url, &f.main);
    // Spaces before the colon, and a field for an architecture keg does not know.
    f.test.manifest(
        "lenient",
        &format!(
            "Maintainers  :  Bob (@bob)\nGitRepo: {url}\n\nTags :1\nGitCommit\t: {main}\nloong64-GitCommit: {main}\n"
        ),
    );
    let run = f.bashbrew(&["cat", "lenient"]);
    run.success();
    assert_eq!(
        run.stdout,
        format!(
            "Maintainers: Bob (@bob)\nGitRepo: {url}\n\nTags: 1\nGitCommit: {main}\nloong64-GitCommit: {main}\n"
        )
    );
    assert!(
        run.stderr
            .contains("warning: unknown architecture \"loong64\" in loong64-GitCommit"),
        "{run:?}"
    );
    assert!(run.stderr.contains("library/lenient:6:1"), "{run:?}");
    // Empty Architectures and SharedTags are errors with file:line:column.
    f.test.manifest(
        "empty",
        &format!("Maintainers: Bob (@bob)\nGitRepo: {url}\nSharedTags:\n\nTags: 1\nArchitectures:\nGitCommit: {main}\n"),
    );
    let run = f.bashbrew(&["list", "empty"]);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("SharedTags has no value"), "{run:?}");
    assert!(run.stderr.contains("library/empty:3:12"), "{run:?}");
    assert!(run.stderr.contains("Architectures has no value"), "{run:?}");
    assert!(run.stderr.contains("library/empty:6:15"), "{run:?}");
}

#[test]
fn remote_arches_of_an_unreachable_registry_is_exit_1() {
    let f = Fixture::new();
    let run = f.bashbrew(&["remote", "arches", "127.0.0.1:9/nothing/here:1"]);
    assert_eq!(run.code, 1, "{run:?}");
    assert_eq!(run.stdout, "");
    assert!(
        run.stderr
            .starts_with("failed to resolve 127.0.0.1:9/nothing/here:1: "),
        "{run:?}"
    );
    assert!(run.stderr.contains("127.0.0.1:9"), "{run:?}");
    // A reference that is not one is bad input.
    let run = f.bashbrew(&["remote", "arches", "Not A Reference"]);
    assert_eq!(run.code, 2, "{run:?}");
}

fn registry_addr() -> String {
    std::env::var("KEG_TEST_REGISTRY").unwrap_or_else(|_| "127.0.0.1:5000".to_string())
}

fn sha256(bytes: &[u8]) -> String {
    use sha2::Digest;
    let hex: String = sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("sha256:{hex}")
}

/// A repository of the rig's registry, filled through the registry API, and removed again.
struct RegistryRepo {
    addr: String,
    name: String,
    digests: Vec<String>,
}

impl RegistryRepo {
    fn new(test: &str) -> RegistryRepo {
        let addr = registry_addr();
        let answer = ureq::get(&format!("http://{addr}/v2/")).call();
        assert!(
            answer.is_ok(),
            "no registry answers at http://{addr}/v2/ ({:?}): run scripts/setup-docker first",
            answer.err()
        );
        RegistryRepo {
            addr,
            name: format!("{}/img", common::unique("compat-", test)),
            digests: Vec::new(),
        }
    }

    fn blob(&self, bytes: &[u8]) -> String {
        let digest = sha256(bytes);
        let start = ureq::post(&format!(
            "http://{}/v2/{}/blobs/uploads/",
            self.addr, self.name
        ))
        .send(&[] as &[u8])
        .expect("start a blob upload");
        let location = start
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .expect("an upload location")
            .to_string();
        let location = if location.starts_with('/') {
            format!("http://{}{location}", self.addr)
        } else {
            location
        };
        let sep = if location.contains('?') { '&' } else { '?' };
        ureq::put(&format!("{location}{sep}digest={digest}"))
            .header("Content-Type", "application/octet-stream")
            .send(bytes)
            .expect("finish a blob upload");
        digest
    }

    /// Puts a manifest under `tag`; returns (digest, size).
    fn manifest(&mut self, tag: &str, media_type: &str, bytes: &[u8]) -> (String, usize) {
        ureq::put(&format!(
            "http://{}/v2/{}/manifests/{tag}",
            self.addr, self.name
        ))
        .header("Content-Type", media_type)
        .send(bytes)
        .unwrap_or_else(|e| panic!("put {tag}: {e}"));
        let digest = sha256(bytes);
        self.digests.push(digest.clone());
        (digest, bytes.len())
    }

    fn reference(&self, tag: &str) -> String {
        format!("{}/{}:{tag}", self.addr, self.name)
    }
}

impl Drop for RegistryRepo {
    fn drop(&mut self) {
        for digest in self.digests.iter().rev() {
            let url = format!("http://{}/v2/{}/manifests/{digest}", self.addr, self.name);
            let _ = ureq::delete(&url).call();
        }
        let dir =
            std::env::var("KEG_REGISTRY_DIR").unwrap_or_else(|_| "/var/lib/keg-registry".into());
        let top = self.name.split('/').next().unwrap_or_default();
        let repository = Path::new(&dir)
            .join("docker/registry/v2/repositories")
            .join(top);
        if top.starts_with("compat-") && repository.is_dir() {
            let _ = std::fs::remove_dir_all(repository);
        }
    }
}

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";

#[test]
#[ignore = "needs the Docker rig (scripts/setup-docker); scripts/test runs it"]
fn remote_arches_of_images_lists_and_oci_indexes() {
    let f = Fixture::new();
    let mut repo = RegistryRepo::new("arches");
    let layer = repo.blob(b"keg compat layer");
    // One image per platform; arm64's config names no variant (bashbrew normalizes it to v8).
    let mut images = Vec::new();
    for (tag, platform) in [
        ("amd64", r#""architecture":"amd64","os":"linux""#),
        ("arm64", r#""architecture":"arm64","os":"linux""#),
        (
            "armv7",
            r#""architecture":"arm","os":"linux","variant":"v7""#,
        ),
    ] {
        let config =
            format!(r#"{{{platform},"rootfs":{{"type":"layers","diff_ids":[]}},"config":{{}}}}"#);
        let config_digest = repo.blob(config.as_bytes());
        let manifest = format!(
            r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{config_digest}","size":{}}},"layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"{layer}","size":16}}]}}"#,
            config.len()
        );
        images.push(repo.manifest(tag, OCI_MANIFEST, manifest.as_bytes()));
    }
    let [
        (amd64, amd64_size),
        (arm64, arm64_size),
        (armv7, armv7_size),
    ] = [images[0].clone(), images[1].clone(), images[2].clone()];
    let member = |digest: &str, size: usize, platform: &str| {
        format!(
            r#"{{"mediaType":"{OCI_MANIFEST}","digest":"{digest}","size":{size},"platform":{{{platform}}}}}"#
        )
    };
    // An OCI index with an attestation-like member (unknown/unknown: no architecture).
    let attestation = format!(
        r#"{{"mediaType":"{OCI_MANIFEST}","digest":"{amd64}","size":{amd64_size},"annotations":{{"vnd.docker.reference.type":"attestation-manifest"}},"platform":{{"architecture":"unknown","os":"unknown"}}}}"#
    );
    let members = [
        member(&amd64, amd64_size, r#""architecture":"amd64","os":"linux""#),
        member(&arm64, arm64_size, r#""architecture":"arm64","os":"linux""#),
        member(
            &armv7,
            armv7_size,
            r#""architecture":"arm","os":"linux","variant":"v7""#,
        ),
        attestation,
    ];
    let oci = format!(
        r#"{{"schemaVersion":2,"mediaType":"{OCI_INDEX}","manifests":[{}]}}"#,
        members.join(",")
    );
    let (oci_digest, oci_size) = repo.manifest("oci", OCI_INDEX, oci.as_bytes());
    let list = format!(
        r#"{{"schemaVersion":2,"mediaType":"{DOCKER_LIST}","manifests":[{},{}]}}"#,
        member(&amd64, amd64_size, r#""architecture":"amd64","os":"linux""#),
        member(
            &arm64,
            arm64_size,
            r#""architecture":"arm64","os":"linux","variant":"v8""#
        ),
    );
    let (list_digest, _) = repo.manifest("list", DOCKER_LIST, list.as_bytes());

    // bashbrew's text: `REF -> DIGEST`, then the architectures in order with each member.
    let (r_oci, r_list, r_arm64) = (
        repo.reference("oci"),
        repo.reference("list"),
        repo.reference("arm64"),
    );
    let run = f.bashbrew(&["remote", "arches", &r_oci, &r_list, &r_arm64]);
    run.success();
    assert_eq!(
        run.stdout,
        format!(
            "{r_oci} -> {oci_digest}\n  amd64 -> {amd64}\n  arm32v7 -> {armv7}\n  arm64v8 -> {arm64}\n\
             {r_list} -> {list_digest}\n  amd64 -> {amd64}\n  arm64v8 -> {arm64}\n\
             {r_arm64} -> {arm64}\n  arm64v8 -> {arm64}\n"
        )
    );
    // --json: ocispec descriptors, platforms normalized; a single image's platform comes
    // from its config.
    let run = f.bashbrew(&["remote", "arches", "--json", &r_oci, &r_arm64]);
    run.success();
    let amd64_member = member(&amd64, amd64_size, r#""architecture":"amd64","os":"linux""#);
    let arm64_member = member(
        &arm64,
        arm64_size,
        r#""architecture":"arm64","os":"linux","variant":"v8""#,
    );
    let armv7_member = member(
        &armv7,
        armv7_size,
        r#""architecture":"arm","os":"linux","variant":"v7""#,
    );
    assert_eq!(
        run.stdout,
        format!(
            r#"{{"ref":"{r_oci}","desc":{{"mediaType":"{OCI_INDEX}","digest":"{oci_digest}","size":{oci_size}}},"arches":{{"amd64":[{amd64_member}],"arm32v7":[{armv7_member}],"arm64v8":[{arm64_member}]}}}}
{{"ref":"{r_arm64}","desc":{{"mediaType":"{OCI_MANIFEST}","digest":"{arm64}","size":{arm64_size}}},"arches":{{"arm64v8":[{arm64_member}]}}}}
"#
        )
    );
    // An image the registry does not have: exit 1.
    let run = f.bashbrew(&["remote", "arches", &repo.reference("nope")]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stderr.contains("not found"), "{run:?}");
}

#[test]
#[ignore = "needs the Docker rig (scripts/setup-docker); scripts/test runs it"]
fn debug_shows_the_docker_commands_as_they_run() {
    let f = Fixture::new();
    // The registry client falls back to `docker buildx imagetools inspect` when HTTP fails;
    // --debug shows that docker command (and any other) on stderr before it runs.
    let run = f.bashbrew(&["--debug", "remote", "arches", "127.0.0.1:9/nothing/here:1"]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stderr
            .contains("$ docker buildx imagetools inspect --raw 127.0.0.1:9/nothing/here:1\n"),
        "{run:?}"
    );
    // plan asks the engine what it has.
    let run = f.bashbrew(&["--debug", "plan", "app"]);
    run.success();
    assert!(run.stderr.contains("$ docker "), "{run:?}");
    assert!(
        !run.stdout.contains("$ docker"),
        "stdout stays the command's own: {run:?}"
    );
}

//! Shell completions and man pages, generated from the clap definitions in [`crate::cli`].
//!
//! - `keg completions SHELL` prints a static script (clap_complete): every subcommand, flag
//!   and enumerated value, with no call back into keg while completing.
//! - `keg completions SHELL --dynamic` prints a registration script that asks keg itself on
//!   every TAB (`KEG_COMPLETE=SHELL keg -- WORDS...`, clap_complete's `CompleteEnv`); it
//!   also completes repository names and `repo:tag` arguments from the library directory
//!   (`--library` on the command line being completed, else BASHBREW_LIBRARY, else
//!   `./library`).
//! - `keg man` prints keg(1); `keg man --dir DIR` writes keg(1) and one keg-COMMAND(1) page per
//!   command (e.g. into `~/.local/share/man/man1`).
//!
//! Invariants: everything is derived from [`command`], so a new flag or command shows up in
//! completions and pages without edits here; completion never fails loudly (a missing or
//! invalid library completes nothing) and never writes anything but candidates to stdout.

use std::ffi::OsStr;
use std::io::Write;
use std::path::{Path, PathBuf};

use clap::{CommandFactory, ValueHint};
use clap_complete::engine::{ArgValueCompleter, CompletionCandidate};
use clap_complete::env::{Bash, CompleteEnv, Elvish, EnvCompleter, Fish, Powershell, Shells, Zsh};

use crate::error::Error;

/// The environment variable that turns a keg run into a completion request.
pub const COMPLETE_VAR: &str = "KEG_COMPLETE";

/// Argument ids (see `cli.rs`) whose values are repositories or `repo:tag` entries.
const REPO_ARGS: &[&str] = &["repo", "repos", "images", "entry"];

/// keg's clap command, with value hints and the library completers attached.
pub fn command() -> clap::Command {
    let mut cmd = crate::cli::Cli::command()
        .mut_arg("library", |a| a.value_hint(ValueHint::DirPath))
        .mut_arg("cache", |a| a.value_hint(ValueHint::DirPath));
    let names: Vec<String> = cmd
        .get_subcommands()
        .map(|s| s.get_name().to_string())
        .collect();
    for name in names {
        cmd = cmd.mut_subcommand(name, |mut sub| {
            let ids: Vec<String> = sub
                .get_arguments()
                .map(|a| a.get_id().to_string())
                .collect();
            for id in ids {
                sub = match id.as_str() {
                    id if REPO_ARGS.contains(&id) => {
                        sub.mut_arg(id, |a| a.add(ArgValueCompleter::new(complete_repo)))
                    }
                    "log_dir" => sub.mut_arg(id, |a| a.value_hint(ValueHint::DirPath)),
                    "report" => sub.mut_arg(id, |a| a.value_hint(ValueHint::FilePath)),
                    _ => sub,
                };
            }
            sub
        });
    }
    cmd
}

/// Answers a completion request (`KEG_COMPLETE=bash keg -- keg bu`) and exits; returns
/// when this run is not one. Must run before anything is written to stdout.
pub fn complete_env() {
    CompleteEnv::with_factory(command)
        .var(COMPLETE_VAR)
        .shells(SHELLS)
        .complete();
}

/// clap_complete's shells, with keg's bash registration (see [`KegBash`]).
const SHELLS: Shells<'static> = Shells(&[&KegBash, &Elvish, &Fish, &Powershell, &Zsh]);

/// Bash, keeping `repo:tag` one word: bash splits the line being completed at every
/// character of COMP_WORDBREAKS, `:` included, so `keg build hello:1<TAB>` reaches a
/// completion function as `hello`, `:`, `1`. keg's script splits COMP_LINE at blanks
/// instead, and trims the `repo:` part of each candidate again, as bash will only replace
/// the text after the colon (bash-completion's `__ltrim_colon_completions`). Answering is
/// clap_complete's.
struct KegBash;

impl EnvCompleter for KegBash {
    fn name(&self) -> &'static str {
        "bash"
    }

    fn is(&self, name: &str) -> bool {
        name == "bash"
    }

    fn write_registration(
        &self,
        var: &str,
        _name: &str,
        bin: &str,
        completer: &str,
        buf: &mut dyn Write,
    ) -> std::io::Result<()> {
        let quote = |s: &str| format!("'{}'", s.replace('\'', r"'\''"));
        let script = BASH_REGISTRATION
            .replace("VAR", var)
            .replace("COMPLETER", &quote(completer))
            .replace("BIN", &quote(bin));
        buf.write_all(script.as_bytes())
    }

    fn write_complete(
        &self,
        cmd: &mut clap::Command,
        args: Vec<std::ffi::OsString>,
        current_dir: Option<&Path>,
        buf: &mut dyn Write,
    ) -> std::io::Result<()> {
        Bash.write_complete(cmd, args, current_dir, buf)
    }
}

const BASH_REGISTRATION: &str = r#"# keg: dynamic completion for bash (keg completions bash --dynamic)
_keg_complete() {
    local line="${COMP_LINE:0:COMP_POINT}"
    local -a words
    # Blanks only: COMP_WORDS is also cut at ':', which would split repo:tag.
    IFS=$' \t\n' read -r -a words <<< "$line"
    if [[ ${#words[@]} -eq 0 || "$line" =~ [[:space:]]$ ]]; then
        words+=("")
    fi
    local cur="${words[${#words[@]}-1]}"
    local space=true
    if compopt +o nospace 2> /dev/null; then
        space=false
    fi
    local IFS=$'\013'
    COMPREPLY=( $( \
        _CLAP_IFS="$IFS" \
        _CLAP_COMPLETE_INDEX="$(( ${#words[@]} - 1 ))" \
        _CLAP_COMPLETE_COMP_TYPE="${COMP_TYPE-9}" \
        _CLAP_COMPLETE_SPACE="$space" \
        VAR="bash" \
        COMPLETER -- "${words[@]}" 2> /dev/null \
    ) )
    if [[ $? != 0 ]]; then
        unset COMPREPLY
        return
    fi
    if [[ "$cur" == *:* && "${COMP_WORDBREAKS-}" == *:* ]]; then
        local prefix="${cur%:*}:"
        COMPREPLY=( "${COMPREPLY[@]#"$prefix"}" )
    fi
    if [[ $space == false && "${COMPREPLY-}" =~ [=/:]$ ]]; then
        compopt -o nospace
    fi
}
if [[ "${BASH_VERSINFO[0]}" -eq 4 && "${BASH_VERSINFO[1]}" -ge 4 || "${BASH_VERSINFO[0]}" -gt 4 ]]; then
    complete -o nospace -o bashdefault -o nosort -F _keg_complete BIN
else
    complete -o nospace -o bashdefault -F _keg_complete BIN
fi
"#;

/// `keg completions SHELL [--dynamic]`.
pub fn completions(
    shell: clap_complete::Shell,
    dynamic: bool,
    out: &mut dyn Write,
) -> Result<(), Error> {
    if dynamic {
        let name = shell.to_string();
        let shells = SHELLS;
        let completer: &dyn EnvCompleter = shells.completer(&name).ok_or_else(|| Error::Usage {
            option: "completions",
            value: name.clone(),
            expected: "expected a shell with dynamic completion".to_string(),
        })?;
        // `keg` as found on PATH when completing, so an upgrade needs no new script.
        completer
            .write_registration(COMPLETE_VAR, "keg", "keg", "keg", out)
            .map_err(Error::Output)?;
    } else {
        let mut cmd = command();
        clap_complete::generate(shell, &mut cmd, "keg", out);
    }
    Ok(())
}

/// `keg man`: keg(1) on `out`; with `dir`, every page written into it (printing their paths).
pub fn man(dir: Option<&Path>, out: &mut dyn Write) -> Result<(), Error> {
    let mut cmd = command().disable_help_subcommand(true);
    cmd.build();
    let Some(dir) = dir else {
        return page(&cmd, out).map_err(Error::Output);
    };
    std::fs::create_dir_all(dir).map_err(|source| Error::Io {
        context: "creating the man page directory",
        path: dir.to_path_buf(),
        source,
    })?;
    let mut pages = vec![cmd.clone()];
    pages.extend(cmd.get_subcommands().filter(|s| !s.is_hide_set()).cloned());
    for page_cmd in &pages {
        let file = dir.join(format!(
            "{}.1",
            page_cmd
                .get_display_name()
                .unwrap_or_else(|| page_cmd.get_name())
        ));
        let mut text = Vec::new();
        page(page_cmd, &mut text).map_err(Error::Output)?;
        std::fs::write(&file, text).map_err(|source| Error::Io {
            context: "writing a man page",
            path: file.clone(),
            source,
        })?;
        writeln!(out, "{}", file.display()).map_err(Error::Output)?;
    }
    Ok(())
}

/// One page: clap_mangen's sections, then keg's environment, exit status and files for the
/// top-level page.
fn page(cmd: &clap::Command, out: &mut dyn Write) -> std::io::Result<()> {
    let man = clap_mangen::Man::new(cmd.clone()).manual("keg manual");
    man.render_title(out)?;
    man.render_name_section(out)?;
    man.render_synopsis_section(out)?;
    man.render_description_section(out)?;
    if cmd.get_arguments().any(|a| !a.is_hide_set()) {
        man.render_options_section(out)?;
    }
    if cmd.has_subcommands() {
        man.render_subcommands_section(out)?;
    }
    if cmd.get_name() == "keg" {
        out.write_all(EXTRA_SECTIONS.as_bytes())?;
    } else {
        writeln!(out, ".SH \"SEE ALSO\"\n\\fBkeg\\fR(1)")?;
    }
    if cmd.get_version().is_some() {
        man.render_version_section(out)?;
    }
    Ok(())
}

const EXTRA_SECTIONS: &str = r#".SH ENVIRONMENT
.TP
\fBBASHBREW_LIBRARY\fR, \fBBASHBREW_ARCH\fR, \fBBASHBREW_NAMESPACE\fR, \fBBASHBREW_CONSTRAINTS\fR, \fBBASHBREW_CACHE\fR, \fBBASHBREW_ARCH_NAMESPACES\fR, \fBBASHBREW_BUILDKIT_SYNTAX\fR
as in bashbrew: defaults for \fB\-\-library\fR, \fB\-\-arch\fR, \fB\-\-namespace\fR, \fB\-\-constraint\fR, \fB\-\-cache\fR, \fB\-\-arch\-namespace\fR and \fB\-\-buildkit\-syntax\fR.
.TP
\fBKEG_GIT_MIRRORS\fR
comma\-separated \fIURL_PREFIX\fR=\fILOCAL_URL_OR_PATH\fR pairs, as \fB\-\-git\-mirror\fR.
.TP
\fBKEG_CACHE_REPO\fR, \fBBUILDX_BUILDER\fR
defaults for \fB\-\-cache\-repo\fR and \fB\-\-builder\fR.
.TP
\fBKEG_COMPLETE\fR
set by the scripts of \fBkeg completions \-\-dynamic\fR to ask keg for completions.
.SH "EXIT STATUS"
.TP
\fB0\fR
success
.TP
\fB1\fR
a build, push or put failed
.TP
\fB2\fR
bad input or usage (every problem of every manifest file is reported with file:line:column)
.TP
\fB130\fR
interrupted (Ctrl\-C or SIGTERM); running builds were stopped
.SH FILES
.TP
\fI./library\fR
the manifest files, one per repository (Official Images format)
.TP
\fI~/.cache/keg\fR
the bare git cache and build logs (\fB\-\-cache\fR)
.SH "SEE ALSO"
\fBdocker\-buildx\-build\fR(1), \fBgit\fR(1)
"#;

/// Candidates for a repository argument: `repo` names from the library directory, then
/// `repo:tag` (tags and shared tags) once the word has a colon.
fn complete_repo(current: &OsStr) -> Vec<CompletionCandidate> {
    let Some(current) = current.to_str() else {
        return Vec::new();
    };
    let library = library_dir(std::env::args_os().map(|a| a.to_string_lossy().into_owned()));
    repo_candidates(&library, current)
        .into_iter()
        .map(CompletionCandidate::new)
        .collect()
}

/// The library directory of the command line being completed: its last `--library`, else
/// BASHBREW_LIBRARY, else `library`.
fn library_dir(args: impl Iterator<Item = String>) -> PathBuf {
    let mut found = None;
    let mut args = args.peekable();
    while let Some(arg) = args.next() {
        if arg == "--" {
            // The words being completed follow the completer's own `--`.
            found = None;
        } else if arg == "--library" {
            if let Some(value) = args.peek().filter(|v| !v.starts_with('-')) {
                found = Some(value.clone());
            }
        } else if let Some(value) = arg.strip_prefix("--library=") {
            found = Some(value.to_string());
        }
    }
    found
        .filter(|v| !v.is_empty())
        .or_else(|| std::env::var("BASHBREW_LIBRARY").ok())
        .filter(|v| !v.is_empty())
        .map_or_else(|| PathBuf::from("library"), PathBuf::from)
}

/// The values completing `current`: repository names, or `repo:tag` for a word with a colon
/// (its repository's tags and shared tags, file order, then sorted shared tags).
pub fn repo_candidates(library: &Path, current: &str) -> Vec<String> {
    if let Some((repo, _)) = current.split_once(':') {
        let Ok(loaded) = crate::library::load(library, &[repo.to_string()]) else {
            return Vec::new();
        };
        let mut out: Vec<String> = Vec::new();
        for r in &loaded.repos {
            for entry in r.manifest.entries.iter() {
                for tag in &entry.tags {
                    out.push(format!("{repo}:{tag}"));
                }
            }
            for tag in r.manifest.all_shared_tags() {
                out.push(format!("{repo}:{tag}"));
            }
        }
        let mut seen = std::collections::HashSet::new();
        out.retain(|c| c.starts_with(current) && seen.insert(c.clone()));
        return out;
    }
    let Ok(read) = std::fs::read_dir(library) else {
        return Vec::new();
    };
    let mut names: Vec<String> = read
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file() || t.is_symlink()))
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| !n.starts_with('.') && n.starts_with(current))
        .collect();
    names.sort();
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(args: &[&str]) -> PathBuf {
        library_dir(args.iter().map(|s| s.to_string()))
    }

    #[test]
    fn library_of_the_completed_line() {
        assert_eq!(
            dir(&["keg", "--", "keg", "--library", "lib2", "build", ""]),
            PathBuf::from("lib2")
        );
        assert_eq!(
            dir(&["keg", "--", "keg", "--library=x/y", "build", "a"]),
            PathBuf::from("x/y")
        );
        // `--library` still being typed names nothing yet.
        assert_ne!(
            dir(&["keg", "--", "keg", "build", "--library"]),
            PathBuf::from("build")
        );
    }

    #[test]
    fn repositories_and_tags() {
        let tmp = tempfile::tempdir().expect("temp dir");
        let text = "Maintainers: X (@x)\nGitRepo: https://example.com/r.git\n\nTags: 1.0, 1\nSharedTags: shared\nGitCommit: 0123456789abcdef0123456789abcdef01234567\n\nTags: 2.0, latest\nGitCommit: 0123456789abcdef0123456789abcdef01234567\nDirectory: two\n";
        std::fs::write(tmp.path().join("alpha"), text).expect("write");
        std::fs::write(tmp.path().join("beta"), text).expect("write");
        std::fs::write(tmp.path().join(".hidden"), text).expect("write");
        assert_eq!(repo_candidates(tmp.path(), ""), ["alpha", "beta"]);
        assert_eq!(repo_candidates(tmp.path(), "al"), ["alpha"]);
        assert_eq!(
            repo_candidates(tmp.path(), "alpha:"),
            [
                "alpha:1.0",
                "alpha:1",
                "alpha:2.0",
                "alpha:latest",
                "alpha:shared"
            ]
        );
        assert_eq!(repo_candidates(tmp.path(), "beta:l"), ["beta:latest"]);
        assert!(repo_candidates(tmp.path(), "missing:").is_empty());
        assert!(repo_candidates(&tmp.path().join("nope"), "").is_empty());
    }
}

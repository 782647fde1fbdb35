//! `--debug` (BASHBREW_DEBUG): show the docker and git operations as they run, on stderr,
//! as `$ docker ...` / `$ git ...` lines (bashbrew prints them on stdout; keg keeps stdout
//! for the command's output).
//!
//! How: docker is only ever run as a child process, from several modules (builds, engine
//! queries, pushes, the registry client's fallback, `oci-import` loads). Rather than thread
//! a flag through each, `--debug` puts a small `docker` wrapper first on keg's own PATH, in
//! `<cache>/debug-bin/`: it prints the command line (with the DOCKER_BUILDKIT and
//! DOCKER_DEFAULT_PLATFORM it runs with) to keg's stderr, even when keg captures the child's
//! output into a log, and then execs the real docker. git runs in process (libgit2), so the
//! git cache reports its operations itself through [`git`].
//!
//! Invariants: without `--debug` nothing here runs and nothing is written; with it, every
//! docker command line keg starts is shown before it runs; the wrapper never changes what
//! docker receives (arguments, environment, stdio).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

static ENABLED: AtomicBool = AtomicBool::new(false);

/// The environment variable telling the wrapper which inherited descriptor is keg's stderr.
const FD_ENV: &str = "KEG_DEBUG_FD";

pub fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// Turns debugging on. Must run before keg starts any thread (it changes the environment).
pub fn enable(cache: &Path) {
    ENABLED.store(true, Ordering::Relaxed);
    match install_wrapper(cache) {
        Ok(Some(dir)) => {
            let path = std::env::var_os("PATH").unwrap_or_default();
            let mut dirs = vec![dir];
            dirs.extend(std::env::split_paths(&path));
            if let Ok(joined) = std::env::join_paths(dirs) {
                // SAFETY: called from `run` before any thread exists (see the doc comment).
                unsafe { std::env::set_var("PATH", joined) };
            }
            // A duplicate of stderr without close-on-exec, so the wrapper can reach keg's
            // stderr when a child's own stderr goes to a log file.
            // SAFETY: dup of a valid descriptor; the result is only passed to children.
            let fd = unsafe { libc::dup(2) };
            if fd >= 0 {
                // SAFETY: as above, no other thread yet.
                unsafe { std::env::set_var(FD_ENV, fd.to_string()) };
            }
        }
        Ok(None) => eprintln!("$ # --debug: no docker on PATH; docker commands are not shown"),
        Err(e) => eprintln!("$ # --debug: cannot install the docker wrapper: {e}"),
    }
}

/// Prints a git operation (`$ git ...`) when debugging.
pub fn git(operation: impl std::fmt::Display) {
    if enabled() {
        eprintln!("$ git {operation}");
    }
}

/// Writes `<cache>/debug-bin/docker` wrapping the docker found on PATH; None without docker.
fn install_wrapper(cache: &Path) -> std::io::Result<Option<PathBuf>> {
    let dir = cache.join("debug-bin");
    let path = std::env::var_os("PATH").unwrap_or_default();
    let real = std::env::split_paths(&path)
        .filter(|d| *d != dir)
        .map(|d| d.join("docker"))
        .find(|p| is_executable(p));
    let Some(real) = real else {
        return Ok(None);
    };
    std::fs::create_dir_all(&dir)?;
    let script = wrapper_script(&real.to_string_lossy());
    // Written under a unique name and renamed, so concurrent keg processes never run a
    // half-written wrapper.
    let tmp = dir.join(format!(".docker.{}", std::process::id()));
    std::fs::write(&tmp, script)?;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o755))?;
    std::fs::rename(&tmp, dir.join("docker"))?;
    Ok(Some(dir))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// The wrapper: print `$ [ENV=...] docker ARGS` (shell-quoted) to keg's stderr, then exec.
fn wrapper_script(real: &str) -> String {
    let real = real.replace('\'', r"'\''");
    format!(
        r#"#!/bin/sh
# Written by keg --debug: shows each docker command on keg's stderr, then runs it.
out=/dev/stderr
if [ -n "${{{FD_ENV}:-}}" ] && [ -e "/proc/self/fd/${{{FD_ENV}}}" ]; then
	out="/proc/self/fd/${{{FD_ENV}}}"
fi
line='$'
[ -n "${{DOCKER_BUILDKIT:-}}" ] && line="$line DOCKER_BUILDKIT=$DOCKER_BUILDKIT"
[ -n "${{DOCKER_DEFAULT_PLATFORM:-}}" ] && line="$line DOCKER_DEFAULT_PLATFORM=$DOCKER_DEFAULT_PLATFORM"
line="$line docker"
for a in "$@"; do
	case $a in
		'' | *[!A-Za-z0-9_./:=@,+%-]*) a="'$(printf '%s' "$a" | sed "s/'/'\\\\''/g")'" ;;
	esac
	line="$line $a"
done
printf '%s\n' "$line" >> "$out" 2>/dev/null || true
exec '{real}' "$@"
"#
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wrapper_prints_quoted_commands_and_runs_the_real_one() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("real-docker");
        std::fs::write(&real, "#!/bin/sh\necho \"ran: $*\"\n").unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&real, std::fs::Permissions::from_mode(0o755)).unwrap();
        let wrapper = dir.path().join("docker");
        std::fs::write(&wrapper, wrapper_script(&real.to_string_lossy())).unwrap();
        std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();
        let out = std::process::Command::new(&wrapper)
            .args(["build", "-t", "a b", "it's"])
            .env("DOCKER_BUILDKIT", "0")
            .env_remove(FD_ENV)
            .output()
            .unwrap();
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "ran: build -t a b it's\n"
        );
        assert_eq!(
            String::from_utf8_lossy(&out.stderr),
            "$ DOCKER_BUILDKIT=0 docker build -t 'a b' 'it'\\''s'\n"
        );
    }
}

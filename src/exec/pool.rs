//! The builders a run uses and how nodes are routed to them: the local engine alone, or a
//! pool of buildx builders that share results through the registry.
//!
//! Invariants: a node goes to a live member that builds its platform natively when one
//! exists in the pool, else to one that emulates it; a classic node only to an engine; no
//! member runs more than `--jobs` nodes at once; a member that failed for infrastructure
//! reasons leaves the pool, and is probed again (at most every [`PROBE_EVERY`]) only when a
//! ready node has no live member left.

use std::time::{Duration, Instant};

use super::names::Names;
use crate::builders::Builder;
use crate::docker::{DockerCommand, Via};
use crate::manifest;
use crate::process;

/// How often a member that left the pool may be probed again.
pub const PROBE_EVERY: Duration = Duration::from_secs(5);
/// How many probes a member that left gets before nodes stop waiting for it.
pub const PROBES: u32 = 3;
/// How long a probe may take.
const PROBE_LIMIT: Duration = Duration::from_secs(20);

/// One builder of the run.
pub struct Member {
    pub builder: Builder,
    /// The local engine (no `--builder`): commands are plain `docker ...`.
    pub local: bool,
    /// Names held on its engine (classic builds pin their parents by name there).
    pub names: Names,
}

/// Where a member stands in the drain loop.
#[derive(Debug, Clone)]
pub struct Seat {
    pub running: usize,
    pub alive: bool,
    /// Why it left the pool.
    pub left: Option<String>,
    pub last_probe: Option<Instant>,
    /// Probes since it left.
    pub probes: u32,
}

impl Default for Seat {
    fn default() -> Seat {
        Seat {
            running: 0,
            alive: true,
            left: None,
            last_probe: None,
            probes: 0,
        }
    }
}

impl Member {
    /// The local engine as the only member.
    pub fn local(images: &std::collections::HashMap<String, String>, platform: &str) -> Member {
        Member {
            builder: Builder {
                name: "local".to_string(),
                driver: "docker".to_string(),
                endpoint: String::new(),
                platforms: vec![platform.to_string()],
            },
            local: true,
            names: Names::new(images, Vec::new()),
        }
    }

    /// A builder of the pool.
    pub fn pooled(builder: Builder) -> Member {
        let docker = builder.docker();
        Member {
            builder,
            local: false,
            names: Names::new(&Default::default(), docker),
        }
    }

    pub fn name(&self) -> &str {
        &self.builder.name
    }

    /// How commands reach it.
    pub fn via(&self) -> Via {
        if self.local {
            Via::default()
        } else {
            Via {
                docker: self.builder.docker(),
                builder: self.builder.builder_flag(),
            }
        }
    }

    /// `docker [--context C] ARGS...` on its engine.
    pub fn docker(&self, args: &[&str]) -> DockerCommand {
        if self.local {
            DockerCommand::docker(args)
        } else {
            DockerCommand::on(&self.builder.docker(), args)
        }
    }

    /// Whether it can build `platform` with `builder` at all, and natively.
    pub fn fits(&self, platform: &str, kind: manifest::Builder) -> (bool, bool) {
        let engine_needed = kind != manifest::Builder::Buildkit;
        if engine_needed && !self.builder.is_engine() {
            return (false, false);
        }
        if self.local {
            // The local engine builds every platform (natively or under emulation).
            return (true, self.builder.is_native(platform));
        }
        (
            self.builder.supports(platform),
            self.builder.is_native(platform),
        )
    }

    /// Whether it answers: its engine (`docker version`), or its BuildKit (`buildx inspect
    /// --bootstrap`).
    pub fn probe(&self) -> Result<(), String> {
        let never = std::sync::atomic::AtomicBool::new(false);
        let command = if self.builder.is_engine() {
            self.docker(&["version", "--format", "{{.Server.Version}}"])
        } else {
            self.docker(&["buildx", "inspect", "--bootstrap", &self.builder.name])
        };
        process::run(&command, None, &never, Some(PROBE_LIMIT))
    }
}

/// Which member takes a node of `platform` now: a live one with a free seat that builds it
/// natively, else (when no live member builds it natively) one that emulates it. None when
/// nobody can take it now; `Err` when no member of the pool can ever build it.
pub fn choose(
    members: &[Member],
    seats: &[Seat],
    jobs: usize,
    platform: &str,
    kind: manifest::Builder,
) -> Result<Option<usize>, String> {
    let fits: Vec<(usize, bool)> = members
        .iter()
        .enumerate()
        .filter_map(|(i, m)| {
            let (ok, native) = m.fits(platform, kind);
            ok.then_some((i, native))
        })
        .collect();
    if fits.is_empty() {
        let what = if kind == manifest::Builder::Buildkit {
            "a builder"
        } else {
            "an engine (a builder of the docker driver)"
        };
        return Err(format!(
            "no builder of the pool builds {platform} ({what} is needed)"
        ));
    }
    let live: Vec<(usize, bool)> = fits.into_iter().filter(|(i, _)| seats[*i].alive).collect();
    let any_native = live.iter().any(|(_, native)| *native);
    let free = |i: usize| seats[i].running < jobs;
    let pick = live
        .iter()
        .filter(|(i, native)| free(*i) && (*native || !any_native))
        .min_by_key(|(i, _)| (seats[*i].running, *i))
        .map(|(i, _)| *i);
    Ok(pick)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(name: &str, driver: &str, platforms: &[&str]) -> Member {
        Member::pooled(Builder {
            name: name.into(),
            driver: driver.into(),
            endpoint: name.into(),
            platforms: platforms.iter().map(|p| p.to_string()).collect(),
        })
    }

    fn seats(n: usize) -> Vec<Seat> {
        vec![Seat::default(); n]
    }

    #[test]
    fn native_before_emulated_and_the_least_busy_first() {
        let members = [
            member("amd", "docker", &["linux/amd64", "linux/arm64"]),
            member("arm", "remote", &["linux/arm64", "linux/amd64"]),
            member("amd2", "docker", &["linux/amd64"]),
        ];
        let mut s = seats(3);
        let kit = manifest::Builder::Buildkit;
        assert_eq!(choose(&members, &s, 2, "linux/arm64/v8", kit), Ok(Some(1)));
        assert_eq!(choose(&members, &s, 2, "linux/amd64", kit), Ok(Some(0)));
        s[0].running = 1;
        assert_eq!(choose(&members, &s, 2, "linux/amd64", kit), Ok(Some(2)));
        // The native builder is busy: the node waits rather than going to an emulator.
        s[1].running = 2;
        assert_eq!(choose(&members, &s, 2, "linux/arm64/v8", kit), Ok(None));
        // The native builder left: emulation it is.
        s[1].alive = false;
        assert_eq!(choose(&members, &s, 2, "linux/arm64/v8", kit), Ok(Some(0)));
        // Classic builds need an engine.
        let classic = manifest::Builder::Classic;
        s[1].alive = true;
        s[1].running = 0;
        assert_eq!(
            choose(&members, &s, 2, "linux/arm64/v8", classic),
            Ok(Some(0))
        );
        let err = choose(&members, &s, 2, "linux/s390x", kit).unwrap_err();
        assert!(
            err.contains("no builder of the pool builds linux/s390x"),
            "{err}"
        );
        // Everyone busy or gone: wait.
        s[0].alive = false;
        s[2].running = 2;
        assert_eq!(choose(&members, &s, 2, "linux/amd64", kit), Ok(None));
    }
}

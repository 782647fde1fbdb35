//! Local image names held by running builds: how a classic build (which has no named build
//! contexts) uses exactly the parents its key hashed.
//!
//! A classic build resolves `FROM keg-hello:1` by name in the engine. Before it starts, the
//! worker *holds* each such name pointing at the pinned image (the parent node's cache tag, or
//! an external image's per-platform alias) and re-tags the names that point elsewhere; a
//! build also holds its own final names while it runs. At the end of the run, [`Names::settle`]
//! points every name keg moved at its final image: the selected node's that owns it, else
//! what it was before the run (or nothing).
//!
//! Invariants: a name is held by any number of builds that want the same image, never by
//! two that want different images (the second waits), and nobody starts on a name while it
//! is being re-tagged; a build takes all its names at once or
//! none (no deadlock: nobody waits while holding); re-tags happen only for names whose
//! current image differs from the wanted one, as far as keg knows (the engine's listing at
//! the start, then every tag keg made).

use std::collections::HashMap;
use std::sync::atomic::AtomicBool;
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::Duration;

use crate::docker::DockerCommand;
use crate::process;

/// What a name points at, as far as keg knows once it moved it: the reference keg tagged it
/// from (before that, the engine's listing tells).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Points {
    Ref(String),
    Unknown,
}

#[derive(Default)]
struct State {
    /// Held names: the image they must point at and how many builds hold them.
    held: HashMap<String, (String, usize)>,
    /// What each name keg knows of points at.
    current: HashMap<String, Points>,
    /// What each name keg moved pointed at before the run (None: it did not exist).
    original: HashMap<String, Option<String>>,
    /// Names being re-tagged right now: nobody may use them until the tag is done.
    tagging: std::collections::HashSet<String>,
}

/// The names of one engine, shared by the workers of one run.
pub struct Names {
    /// The engine's images at the start: reference -> id.
    ids: HashMap<String, String>,
    /// How to reach the engine (`docker [--context C]`; empty: `docker`).
    docker: Vec<String>,
    state: Mutex<State>,
    freed: Condvar,
}

/// Names held by one build; released when dropped.
pub struct Hold<'a> {
    names: &'a Names,
    held: Vec<String>,
}

impl Drop for Hold<'_> {
    fn drop(&mut self) {
        let mut state = self.names.lock();
        for name in &self.held {
            if let Some((_, count)) = state.held.get_mut(name) {
                *count -= 1;
                if *count == 0 {
                    state.held.remove(name);
                }
            }
        }
        drop(state);
        self.names.freed.notify_all();
    }
}

impl Names {
    /// `images`: the engine's listing (reference -> image id) at the start of the run;
    /// `docker`: how to reach the engine (empty: plain `docker`).
    pub fn new(images: &HashMap<String, String>, docker: Vec<String>) -> Names {
        Names {
            ids: images.clone(),
            docker,
            state: Mutex::new(State::default()),
            freed: Condvar::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether `name` is known to point at `target` already.
    fn points_at(&self, state: &State, name: &str, target: &str) -> bool {
        match state.current.get(name) {
            Some(Points::Ref(r)) => r == target,
            Some(Points::Unknown) => false,
            None => match (self.ids.get(name), self.ids.get(target)) {
                (Some(a), Some(b)) => a == b,
                _ => false,
            },
        }
    }

    /// Holds every `(name, image)` pair of `retag` and `reserve`, waiting while another
    /// build holds one of the names for a different image; then points the `retag` names at
    /// their images (`docker tag`, logged to `log`). `reserve` is for names the caller's
    /// build tags itself. Err when cancelled or a tag fails.
    pub fn hold(
        &self,
        retag: &[(String, String)],
        reserve: &[(String, String)],
        log: Option<&std::path::Path>,
        cancel: &AtomicBool,
    ) -> Result<Hold<'_>, String> {
        let wanted: Vec<&(String, String)> = retag.iter().chain(reserve).collect();
        let mut state = self.lock();
        loop {
            let free = wanted.iter().all(|(name, image)| {
                !state.tagging.contains(name)
                    && state.held.get(name).is_none_or(|(held, _)| held == image)
            });
            if free {
                break;
            }
            if cancel.load(std::sync::atomic::Ordering::SeqCst) {
                return Err("interrupted".to_string());
            }
            state = self
                .freed
                .wait_timeout(state, Duration::from_millis(100))
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        for (name, image) in &wanted {
            state
                .held
                .entry(name.clone())
                .or_insert((image.clone(), 0))
                .1 += 1;
        }
        let mut tags = Vec::new();
        for (name, image) in retag {
            if !self.points_at(&state, name, image) {
                let before = self.ids.get(name).cloned();
                state.original.entry(name.clone()).or_insert(before);
                state
                    .current
                    .insert(name.clone(), Points::Ref(image.clone()));
                state.tagging.insert(name.clone());
                tags.push((name.clone(), image.clone()));
            }
        }
        let hold = Hold {
            names: self,
            held: wanted.iter().map(|(name, _)| name.clone()).collect(),
        };
        drop(state);
        // Others that want these names (even for the same image) wait until they point
        // where they must.
        let mut failed = None;
        for (name, image) in &tags {
            if failed.is_some() {
                break;
            }
            let tag = self.docker(&["tag", image, name]);
            if let Err(reason) = process::run(&tag, log, cancel, Some(TAG_LIMIT)) {
                self.lock().current.insert(name.clone(), Points::Unknown);
                failed = Some(reason);
            }
        }
        let mut state = self.lock();
        for (name, _) in &tags {
            state.tagging.remove(name);
        }
        drop(state);
        self.freed.notify_all();
        match failed {
            Some(reason) => Err(reason),
            None => Ok(hold),
        }
    }

    /// Records that a build tagged `name` with `image` itself (its `-t` flags).
    pub fn tagged(&self, name: &str, image: &str) {
        self.lock()
            .current
            .insert(name.to_string(), Points::Ref(image.to_string()));
    }

    /// The commands that point every name keg moved at its final image: `owners` maps a
    /// name to the image of the selected node that owns it (when that node has one), else
    /// the name goes back to what it was before the run, or is removed.
    pub fn settle(&self, owners: &HashMap<String, String>) -> Vec<DockerCommand> {
        let state = self.lock();
        let mut names: Vec<&String> = state.original.keys().collect();
        names.sort();
        let mut out = Vec::new();
        for name in names {
            match owners.get(name).or(state.original[name].as_ref()) {
                Some(image) if self.points_at(&state, name, image) => {}
                Some(image) => out.push(self.docker(&["tag", image, name])),
                None => out.push(self.docker(&["image", "rm", "--no-prune", name])),
            }
        }
        out
    }
}

/// How long one `docker tag` may take.
pub const TAG_LIMIT: Duration = Duration::from_secs(60);

impl Names {
    /// `docker [--context C] ARGS...` on this engine.
    fn docker(&self, args: &[&str]) -> DockerCommand {
        DockerCommand::on(&self.docker, args)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::Instant;

    fn images() -> HashMap<String, String> {
        HashMap::from([
            ("base:1".to_string(), "sha256:other".to_string()),
            ("keg/cache:k1".to_string(), "sha256:k1".to_string()),
            ("keg/cache:k2".to_string(), "sha256:k2".to_string()),
            ("same:1".to_string(), "sha256:k1".to_string()),
        ])
    }

    fn pair(name: &str, image: &str) -> (String, String) {
        (name.to_string(), image.to_string())
    }

    #[test]
    fn names_already_right_are_not_retagged_and_settle_restores() {
        let names = Names::new(&images(), Vec::new());
        let never = AtomicBool::new(false);
        // `same:1` already points at k1's image: no `docker tag` runs (none could here).
        let hold = names.hold(&[pair("same:1", "keg/cache:k1")], &[], None, &never);
        assert!(hold.is_ok());
        drop(hold);
        assert!(names.settle(&HashMap::new()).is_empty());
        // A name keg moved goes back to its original image, or to its owner's.
        names.tagged("base:1", "keg/cache:k2");
        names
            .lock()
            .original
            .insert("base:1".into(), Some("sha256:other".into()));
        let back = names.settle(&HashMap::new());
        assert_eq!(back[0].argv, ["docker", "tag", "sha256:other", "base:1"]);
        let owned = names.settle(&HashMap::from([pair("base:1", "keg/cache:k2")]));
        assert!(owned.is_empty(), "{owned:?}");
        names.lock().original.insert("new:1".into(), None);
        let removed = names.settle(&HashMap::new());
        assert_eq!(
            removed.last().unwrap().argv,
            ["docker", "image", "rm", "--no-prune", "new:1"]
        );
    }

    #[test]
    fn a_name_wanted_for_another_image_waits_for_its_holders() {
        let names = Arc::new(Names::new(&images(), Vec::new()));
        let never = Arc::new(AtomicBool::new(false));
        // Two holders of the same name for the same image share it.
        let a = names.hold(&[pair("same:1", "keg/cache:k1")], &[], None, &never);
        let b = names.hold(&[pair("same:1", "keg/cache:k1")], &[], None, &never);
        assert!(a.is_ok() && b.is_ok());
        let waiter = {
            let (names, never) = (Arc::clone(&names), Arc::clone(&never));
            std::thread::spawn(move || {
                let start = Instant::now();
                // The tag itself fails here (no such image in any engine), after the wait.
                let _ = names.hold(&[pair("same:1", "keg/cache:absent")], &[], None, &never);
                start.elapsed()
            })
        };
        std::thread::sleep(Duration::from_millis(300));
        drop(a);
        std::thread::sleep(Duration::from_millis(100));
        drop(b);
        let waited = waiter.join().unwrap();
        assert!(waited >= Duration::from_millis(350), "{waited:?}");
    }

    #[test]
    fn waiting_ends_on_cancel() {
        let names = Names::new(&images(), Vec::new());
        let never = AtomicBool::new(false);
        let _held = names.hold(&[pair("same:1", "keg/cache:k1")], &[], None, &never);
        let cancel = AtomicBool::new(true);
        let err = names
            .hold(&[], &[pair("same:1", "keg/cache:k2")], None, &cancel)
            .err()
            .unwrap();
        assert_eq!(err, "interrupted");
    }
}

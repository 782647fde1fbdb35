//! Content keys, cache tags and cache refs (the contract is docs/cache-keys.md).
//!
//! Invariants: a key is a pure function of its [`KeyInputs`] (canonical JSON, sha256); the
//! inputs hold content (tree ids, parents' keys, image ids), never commits, tags, paths of
//! the cache or anything about the machine; a parent in the library always contributes its
//! content key, whichever repositories were selected; a cache ref depends only on what
//! names an entry's slot in the library (repository, GitRepo, GitFetch, Directory, File,
//! architecture), never on its commit or tags.

use std::collections::BTreeMap;

use serde::Serialize;
use sha2::{Digest, Sha256};

/// The version of the key format; bumped whenever an input changes meaning.
pub const KEY_VERSION: u32 = 2;

/// Everything a node's image depends on, hashed as canonical JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KeyInputs {
    pub version: u32,
    /// Git tree id of `<commit>:<Directory>`.
    pub tree: String,
    pub file: String,
    pub builder: String,
    pub arch: String,
    pub platform: String,
    pub parents: Vec<ParentInput>,
    pub build_args: BTreeMap<String, String>,
    pub buildkit_syntax: Option<String>,
}

/// One parent: built in the plan (`key`) or external (`image`, None when unknown).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum ParentInput {
    Built {
        #[serde(rename = "ref")]
        reference: String,
        key: String,
    },
    External {
        #[serde(rename = "ref")]
        reference: String,
        image: Option<String>,
    },
}

impl KeyInputs {
    /// The canonical JSON that is hashed.
    pub fn canonical_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// The content key: lowercase hex sha256 of the canonical JSON.
    pub fn key(&self) -> String {
        sha256_hex(self.canonical_json().as_bytes())
    }

    /// The external parents whose image id is unknown (they make the key provisional).
    pub fn provisional_inputs(&self) -> Vec<&str> {
        self.parents
            .iter()
            .filter_map(|p| match p {
                ParentInput::External {
                    reference,
                    image: None,
                } => Some(reference.as_str()),
                _ => None,
            })
            .collect()
    }
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// `<cache-repo>:from-<arch>-<sha256(reference)[..16]>`: the local alias of an external
/// parent image pulled for `arch`. One engine has one image per name, so after pulling
/// `busybox` for arm64 and then for amd64 the name holds only the last; the alias keeps
/// each platform's image and its id, for keys and for re-pointing the name before a build.
pub fn parent_alias(cache_repo: &str, arch: &str, reference: &str) -> String {
    let hash = sha256_hex(reference.as_bytes());
    format!("{cache_repo}:from-{arch}-{}", &hash[..16])
}

/// `<cache-repo>:<key>`: an image under this tag means the node is built.
pub fn cache_tag(cache_repo: &str, key: &str) -> String {
    format!("{cache_repo}:{key}")
}

/// What names an entry's slot in the library, for its registry cache ref: everything that
/// tells two entries apart except what changes with a version bump (commit, tags).
#[derive(Debug, Clone, Copy)]
pub struct Slot<'a> {
    pub repo: &'a str,
    /// GitRepo and GitFetch as the manifest gives them: two branches of one repository
    /// building the same Directory are two slots.
    pub git_repo: &'a str,
    pub git_fetch: &'a str,
    pub directory: &'a str,
    pub file: &'a str,
    pub arch: &'a str,
}

/// The stable registry-cache reference of a node (see docs/cache-keys.md):
/// `<cache-repo>:ref-<repo>-<Directory>-<File>-<arch>-<8 hex>`.
pub fn cache_ref(cache_repo: &str, slot: Slot<'_>) -> String {
    const MAX_TAG: usize = 128;
    let Slot {
        repo,
        git_repo,
        git_fetch,
        directory,
        file,
        arch,
    } = slot;
    let hash = sha256_hex(
        format!("{repo}\0{git_repo}\0{git_fetch}\0{directory}\0{file}\0{arch}").as_bytes(),
    );
    let suffix = format!("-{arch}-{}", &hash[..8]);
    let readable = sanitize(&format!("ref-{repo}-{directory}-{file}"));
    let room = MAX_TAG.saturating_sub(sanitize(&suffix).len());
    let mut head: String = readable.chars().take(room).collect();
    while head.ends_with(['-', '.']) {
        head.pop();
    }
    format!("{cache_repo}:{head}{}", sanitize(&suffix))
}

/// Lowercase, `[a-z0-9_.-]` only, runs of `-` squeezed.
fn sanitize(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        let c = c.to_ascii_lowercase();
        let c = if c.is_ascii_alphanumeric() || c == '_' || c == '.' {
            c
        } else {
            '-'
        };
        if !(c == '-' && out.ends_with('-')) {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inputs() -> KeyInputs {
        KeyInputs {
            version: KEY_VERSION,
            tree: "4b825dc642cb6eb9a060e54bf8d69288fbee4904".to_string(),
            file: "Dockerfile".to_string(),
            builder: "buildkit".to_string(),
            arch: "amd64".to_string(),
            platform: "linux/amd64".to_string(),
            parents: vec![
                ParentInput::Built {
                    reference: "base:1".to_string(),
                    key: "ab".repeat(32),
                },
                ParentInput::External {
                    reference: "debian:bookworm".to_string(),
                    image: None,
                },
            ],
            build_args: BTreeMap::from([
                ("B".to_string(), "2".to_string()),
                ("A".to_string(), "1".to_string()),
            ]),
            buildkit_syntax: None,
        }
    }

    #[test]
    fn canonical_json_is_fixed() {
        assert_eq!(
            inputs().canonical_json(),
            format!(
                r#"{{"version":2,"tree":"4b825dc642cb6eb9a060e54bf8d69288fbee4904","file":"Dockerfile","builder":"buildkit","arch":"amd64","platform":"linux/amd64","parents":[{{"ref":"base:1","key":"{}"}},{{"ref":"debian:bookworm","image":null}}],"build_args":{{"A":"1","B":"2"}},"buildkit_syntax":null}}"#,
                "ab".repeat(32)
            )
        );
        // A golden value: changing it breaks every cache in the world; bump KEY_VERSION.
        assert_eq!(
            inputs().key(),
            sha256_hex(inputs().canonical_json().as_bytes())
        );
        assert_eq!(inputs().key().len(), 64);
        assert_eq!(inputs().provisional_inputs(), ["debian:bookworm"]);
    }

    #[test]
    fn every_input_changes_the_key() {
        let base = inputs().key();
        let mut changed = Vec::new();
        let mut i = inputs();
        i.tree = "0".repeat(40);
        changed.push(i);
        let mut i = inputs();
        i.file = "Dockerfile.alpine".to_string();
        changed.push(i);
        let mut i = inputs();
        i.builder = "classic".to_string();
        changed.push(i);
        let mut i = inputs();
        i.arch = "i386".to_string();
        changed.push(i);
        let mut i = inputs();
        i.parents[0] = ParentInput::Built {
            reference: "base:1".to_string(),
            key: "cd".repeat(32),
        };
        changed.push(i);
        let mut i = inputs();
        i.parents[1] = ParentInput::External {
            reference: "debian:bookworm".to_string(),
            image: Some("sha256:1".to_string()),
        };
        changed.push(i);
        let mut i = inputs();
        i.build_args.insert("C".to_string(), "3".to_string());
        changed.push(i);
        let mut i = inputs();
        i.buildkit_syntax = Some("docker/dockerfile:1".to_string());
        changed.push(i);
        for i in changed {
            assert_ne!(i.key(), base, "{}", i.canonical_json());
        }
    }

    fn slot<'a>(repo: &'a str, directory: &'a str, arch: &'a str) -> Slot<'a> {
        Slot {
            repo,
            git_repo: "https://example.com/r.git",
            git_fetch: "refs/heads/main",
            directory,
            file: "Dockerfile",
            arch,
        }
    }

    #[test]
    fn cache_refs_are_valid_stable_and_unique() {
        let hello = slot("keg-hello", "examples/keg-hello/1", "amd64");
        let r = cache_ref("keg/cache", hello);
        assert!(
            r.starts_with("keg/cache:ref-keg-hello-examples-keg-hello-1-dockerfile-amd64-"),
            "{r}"
        );
        assert_eq!(r, cache_ref("keg/cache", hello));
        // Readable parts that collide still give different refs.
        let a = cache_ref("c", slot("x", "a/b", "amd64"));
        let b = cache_ref("c", slot("x", "a-b", "amd64"));
        assert_ne!(a, b);
        // Two branches building the same Directory are two slots.
        let branch = Slot {
            git_fetch: "refs/heads/v2",
            ..hello
        };
        assert_ne!(cache_ref("keg/cache", branch), r);
        let fork = Slot {
            git_repo: "https://example.com/fork.git",
            ..hello
        };
        assert_ne!(cache_ref("keg/cache", fork), r);
        // Long inputs are cut to a valid tag of at most 128 characters.
        let (repo, dir) = ("r".repeat(300), "d/".repeat(100));
        let long = cache_ref("c", slot(&repo, &dir, "arm64v8"));
        let tag = long.split_once(':').unwrap().1;
        assert!(tag.len() <= 128, "{}", tag.len());
        assert!(crate::manifest::validate::valid_tag(tag), "{tag}");
        assert!(tag.ends_with(&long[long.len() - 8..]));
    }
}

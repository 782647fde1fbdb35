//! The registry client against the real registry of scripts/setup-docker
//! (`KEG_TEST_REGISTRY`, default 127.0.0.1:5000), checked against what docker itself says.
//!
//! `#[ignore]`d like the engine tests in tests/build.rs: `scripts/test` (and so CI) runs them
//! with `--include-ignored`, where a missing registry or engine fails them. Each test pushes
//! its own uniquely named repository, and removes its local tags and registry manifests.

mod common;

use std::process::Command;

use keg::registry::{QueryPath, Registry, RegistryOptions, Stats};
use sha2::{Digest, Sha256};

const BASE: &str = "keg-test/busybox:latest";
/// The registry's storage as scripts/setup-docker sets it up (`KEG_REGISTRY_DIR`).
const DEFAULT_STORE: &str = "/var/lib/keg-registry";

fn registry_addr() -> String {
    std::env::var("KEG_TEST_REGISTRY").unwrap_or_else(|_| "127.0.0.1:5000".to_string())
}

fn docker(args: &[&str]) -> String {
    let out = Command::new("docker")
        .args(args)
        .output()
        .expect("docker client");
    assert!(
        out.status.success(),
        "docker {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn require_registry(addr: &str) {
    let answer = ureq::get(&format!("http://{addr}/v2/")).call();
    assert!(
        answer.is_ok(),
        "no registry answers at http://{addr}/v2/ ({:?}): run scripts/setup-docker first",
        answer.err()
    );
}

/// `BASE` pushed as `ADDR/regtest-<unique>/bb:1`.
struct Pushed {
    addr: String,
    path: String,
    tags: Vec<String>,
}

impl Pushed {
    fn new(test: &str) -> Pushed {
        let addr = registry_addr();
        require_registry(&addr);
        let path = format!("{}/bb", common::unique("regtest-", test));
        let pushed = Pushed {
            addr,
            path,
            tags: vec!["1".into()],
        };
        docker(&["tag", BASE, &pushed.image("1")]);
        docker(&["push", &pushed.image("1")]);
        pushed
    }

    fn image(&self, tag: &str) -> String {
        format!("{}/{}:{tag}", self.addr, self.path)
    }

    /// `docker buildx imagetools create -t ADDR/PATH:tag ADDR/PATH:1`: an index of one.
    fn index(&mut self, tag: &str) -> String {
        let image = self.image(tag);
        docker(&[
            "buildx",
            "imagetools",
            "create",
            "-t",
            &image,
            &self.image("1"),
        ]);
        self.tags.push(tag.into());
        image
    }
}

impl Drop for Pushed {
    fn drop(&mut self) {
        let _ = Command::new("docker")
            .args(["rmi", &self.image("1")])
            .output();
        // Registry manifests, indexes first (deleting by digest removes every tag at it).
        let registry = Registry::new();
        for tag in self.tags.iter().rev() {
            if let Ok(Some(m)) = registry.manifest(&self.image(tag)) {
                let url = format!(
                    "http://{}/v2/{}/manifests/{}",
                    self.addr, self.path, m.digest
                );
                let _ = ureq::delete(&url).call();
            }
        }
        // The registry keeps empty repositories after deletes: drop ours, as
        // scripts/check-docker does.
        let dir = std::env::var("KEG_REGISTRY_DIR").unwrap_or_else(|_| DEFAULT_STORE.into());
        let top = self.path.split('/').next().unwrap_or_default();
        let repository = std::path::Path::new(&dir)
            .join("docker/registry/v2/repositories")
            .join(top);
        if top.starts_with("regtest-") && repository.is_dir() {
            let _ = std::fs::remove_dir_all(repository);
        }
    }
}

/// `docker buildx imagetools inspect`'s digest, and its members' digests for an index.
fn buildx_digests(image: &str) -> (String, Vec<String>) {
    let out = docker(&["buildx", "imagetools", "inspect", image]);
    let digest = out
        .lines()
        .find_map(|l| l.strip_prefix("Digest:"))
        .expect("a Digest: line")
        .trim()
        .to_string();
    let members = out
        .lines()
        .filter(|l| l.trim_start().starts_with("Name:"))
        .filter_map(|l| l.split_once('@').map(|(_, d)| d.trim().to_string()))
        .collect();
    (digest, members)
}

/// The id the engine gives `BASE`: its config's digest with a graph-driver image store, its
/// manifest's digest with the containerd image store.
fn local_id() -> String {
    docker(&["image", "inspect", "--format", "{{.Id}}", BASE])
        .trim()
        .to_string()
}

/// The manifest `docker buildx imagetools inspect --raw` shows for `image`.
fn buildx_raw(image: &str) -> serde_json::Value {
    serde_json::from_str(&docker(&[
        "buildx",
        "imagetools",
        "inspect",
        "--raw",
        image,
    ]))
    .unwrap()
}

/// The config digest (the graph-driver image id) of the image pushed as `image`.
fn pushed_config(image: &str) -> String {
    buildx_raw(image)["config"]["digest"]
        .as_str()
        .expect("an image manifest")
        .to_string()
}

fn with_path(path: QueryPath) -> Registry {
    Registry::with_options(RegistryOptions {
        path,
        ..RegistryOptions::from_env()
    })
}

#[test]
#[ignore = "needs the Docker rig (scripts/setup-docker); scripts/test runs it"]
fn pushed_image_matches_docker() {
    let pushed = Pushed::new("image");
    let image = pushed.image("1");
    let registry = with_path(QueryPath::Http);

    let config = pushed_config(&image);
    assert_eq!(registry.image_ids(&image).unwrap(), vec![config.clone()]);
    // Whatever the engine's image store, the local id is one of the pushed image's ids.
    assert!(
        registry
            .image_identities(&image)
            .unwrap()
            .contains(&local_id())
    );
    let (digest, members) = buildx_digests(&image);
    assert!(members.is_empty(), "{members:?}");
    assert_eq!(
        registry.manifest_digests(&image).unwrap(),
        vec![digest.clone()]
    );
    let m = registry.manifest(&image).unwrap().unwrap();
    assert_eq!(m.digest, digest);
    assert!(!m.is_index());
    assert_eq!(
        m.media_type,
        buildx_raw(&image)["mediaType"].as_str().unwrap()
    );
    assert_eq!(m.config_digest, Some(config.clone()));

    // buildx prints the bytes exactly as served: their sha256 is the digest.
    let raw = Command::new("docker")
        .args(["buildx", "imagetools", "inspect", "--raw", &image])
        .output()
        .unwrap();
    assert!(raw.status.success());
    let hex: String = Sha256::digest(&raw.stdout)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let raw_digest = format!("sha256:{hex}");
    assert_eq!(raw_digest, digest, "buildx changed the bytes");

    // The same answer by digest, and through the buildx path.
    let pinned = format!("{}/{}@{digest}", pushed.addr, pushed.path);
    assert_eq!(registry.manifest(&pinned).unwrap().unwrap(), m);
    let slow = with_path(QueryPath::Buildx);
    assert_eq!(slow.manifest(&image).unwrap().unwrap(), m);
    assert_eq!(slow.image_ids(&image).unwrap(), vec![config]);
    assert_eq!(slow.stats().buildx, 2);
    assert_eq!(slow.stats().http, 0);
    assert_eq!(registry.stats().buildx, 0);
}

#[test]
#[ignore = "needs the Docker rig (scripts/setup-docker); scripts/test runs it"]
fn missing_tags_and_repositories_are_absent_not_errors() {
    let pushed = Pushed::new("missing");
    let missing_tag = pushed.image("no-such-tag");
    let missing_repo = format!("{}/{}-nope/bb:1", pushed.addr, pushed.path);
    for path in [QueryPath::Http, QueryPath::Buildx] {
        let registry = with_path(path);
        for image in [&missing_tag, &missing_repo] {
            assert_eq!(registry.manifest(image).unwrap(), None, "{path:?} {image}");
            assert!(registry.image_ids(image).unwrap().is_empty(), "{image}");
            assert!(
                registry.manifest_digests(image).unwrap().is_empty(),
                "{image}"
            );
        }
    }
}

#[test]
#[ignore = "needs the Docker rig (scripts/setup-docker); scripts/test runs it"]
fn indexes_give_their_members() {
    let mut pushed = Pushed::new("index");
    let list = pushed.index("list");
    let registry = with_path(QueryPath::Http);
    let (digest, members) = buildx_digests(&list);
    let (single, _) = buildx_digests(&pushed.image("1"));
    assert_eq!(members, vec![single]);

    let m = registry.manifest(&list).unwrap().unwrap();
    assert!(m.is_index(), "{m:?}");
    assert_eq!(m.digest, digest);
    assert_eq!(m.config_digest, None);
    assert_eq!(m.manifests.len(), 1);
    assert_eq!(m.manifests[0].platform.as_deref(), Some("linux/amd64"));
    assert_eq!(registry.manifest_digests(&list).unwrap(), members);
    let config = pushed_config(&pushed.image("1"));
    assert_eq!(registry.image_ids(&list).unwrap(), vec![config.clone()]);

    let slow = with_path(QueryPath::Buildx);
    assert_eq!(slow.manifest(&list).unwrap().unwrap(), m);
    assert_eq!(slow.image_ids(&list).unwrap(), vec![config]);
}

#[test]
#[ignore = "needs the Docker rig (scripts/setup-docker); scripts/test runs it"]
fn forty_queries_take_the_fast_path() {
    let pushed = Pushed::new("fast");
    let image = pushed.image("1");
    let missing = pushed.image("absent");
    // The default client: HTTP with the buildx fallback, configured from the environment.
    let registry = Registry::new();
    let id = pushed_config(&image);
    std::thread::scope(|scope| {
        for t in 0..8 {
            let (registry, image, missing, id) = (&registry, &image, &missing, &id);
            scope.spawn(move || {
                for i in 0..5 {
                    if (t + i) % 4 == 0 {
                        assert!(registry.manifest(missing).unwrap().is_none());
                    } else {
                        assert_eq!(registry.image_ids(image).unwrap(), vec![id.clone()]);
                    }
                }
            });
        }
    });
    assert_eq!(
        registry.stats(),
        Stats {
            http: 40,
            buildx: 0,
            cached: 0
        }
    );
}

#[test]
#[ignore = "needs the Docker rig (scripts/setup-docker); scripts/test runs it"]
fn unreachable_registries_fail_on_both_paths() {
    // Any port nothing listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = closed.local_addr().unwrap();
    drop(closed);
    let image = format!("{addr}/regtest/bb:1");
    let registry = Registry::new();
    let e = registry.manifest(&image).unwrap_err();
    let message = e.to_string();
    assert!(
        message.contains(&image) && message.contains("buildx"),
        "{message}"
    );
    assert_eq!(registry.stats().buildx, 1);
}

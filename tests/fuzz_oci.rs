//! Property tests of the OCI layout reader (`Builder: oci-import`, [`keg::oci::select`]):
//! whatever the layout in the git tree holds, selecting never panics, ends quickly, keeps its
//! memory bounded, and Ok means what it promises: the chosen manifest, config and every
//! layer are in the tree with the size and digest their descriptors state, for the platform
//! asked for.
//!
//! Layouts are made in memory: valid ones (several platforms, nested indexes, Docker lists),
//! then broken by mutations of their JSON documents and blobs. KEG_FUZZ_CASES sets the
//! number of cases (scripts/fuzz runs a long pass).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use keg::arch::Platform;
use keg::oci::{self, OciError, Selected};
use proptest::prelude::*;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

const LAYER: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
/// Far more than any case needs; a slower one is a hang.
const BOUND: Duration = Duration::from_secs(5);

fn cases() -> u32 {
    std::env::var("KEG_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256)
}

fn sha256(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A layout under `oci/` in a pretend git tree.
#[derive(Debug, Clone, Default)]
struct Layout {
    files: HashMap<String, Vec<u8>>,
}

impl Layout {
    fn blob(&mut self, media_type: &str, bytes: &[u8]) -> Value {
        let hex = sha256(bytes);
        self.files
            .insert(format!("oci/blobs/sha256/{hex}"), bytes.to_vec());
        json!({"mediaType": media_type, "digest": format!("sha256:{hex}"), "size": bytes.len()})
    }

    fn image(&mut self, platform: (&str, &str, Option<&str>), layers: &[Vec<u8>]) -> Value {
        let mut config = json!({"os": platform.0, "architecture": platform.1,
            "rootfs": {"type": "layers", "diff_ids": []}});
        if let Some(v) = platform.2 {
            config["variant"] = json!(v);
        }
        let config = self.blob(oci::OCI_CONFIG, config.to_string().as_bytes());
        let layers: Vec<Value> = layers.iter().map(|l| self.blob(LAYER, l)).collect();
        let manifest = json!({"schemaVersion": 2, "mediaType": oci::OCI_MANIFEST,
            "config": config, "layers": layers});
        self.blob(oci::OCI_MANIFEST, manifest.to_string().as_bytes())
    }

    fn index(manifests: &[Value], media_type: &str) -> Vec<u8> {
        json!({"schemaVersion": 2, "mediaType": media_type, "manifests": manifests})
            .to_string()
            .into_bytes()
    }

    fn select(&self, platform: &Platform) -> Result<Selected, OciError> {
        let read = |path: &str| {
            self.files
                .get(path)
                .cloned()
                .ok_or_else(|| OciError::NotFound {
                    path: path.to_owned(),
                })
        };
        oci::select(&read, "oci/index.json", platform)
    }
}

const PLATFORMS: [(&str, &str, Option<&str>); 5] = [
    ("linux", "amd64", None),
    ("linux", "arm64", Some("v8")),
    ("linux", "arm", Some("v7")),
    ("linux", "386", None),
    ("windows", "amd64", None),
];

fn keg_platform(i: usize) -> Platform {
    let p = PLATFORMS[i % PLATFORMS.len()];
    Platform {
        os: p.0,
        architecture: p.1,
        variant: p.2,
    }
}

/// A valid layout: some images, listed in index.json directly or through nested indexes.
#[derive(Debug, Clone)]
struct Plan {
    images: Vec<(usize, Vec<Vec<u8>>, bool)>,
    nested: bool,
    docker_list: bool,
}

fn plan() -> impl Strategy<Value = Plan> {
    (
        prop::collection::vec(
            (
                0..PLATFORMS.len(),
                prop::collection::vec(prop::collection::vec(any::<u8>(), 0..24), 0..3),
                any::<bool>(),
            ),
            0..4,
        ),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(|(images, nested, docker_list)| Plan {
            images,
            nested,
            docker_list,
        })
}

fn build(plan: &Plan) -> Layout {
    let mut layout = Layout::default();
    let mut descriptors = Vec::new();
    for (p, layers, listed) in &plan.images {
        let mut d = layout.image(PLATFORMS[*p], layers);
        if *listed {
            let (os, arch, variant) = PLATFORMS[*p];
            d["platform"] = json!({"os": os, "architecture": arch});
            if let Some(v) = variant {
                d["platform"]["variant"] = json!(v);
            }
        }
        descriptors.push(d);
    }
    let top = if plan.nested {
        let media = if plan.docker_list {
            oci::DOCKER_LIST
        } else {
            oci::OCI_INDEX
        };
        let inner = Layout::index(&descriptors, media);
        vec![layout.blob(media, &inner)]
    } else {
        descriptors
    };
    layout
        .files
        .insert("oci/index.json".into(), Layout::index(&top, oci::OCI_INDEX));
    layout
}

/// Ways to break a layout.
#[derive(Debug, Clone)]
enum Mutation {
    /// Bytes of one file changed (its digest then no longer matches).
    Bytes(prop::sample::Index, usize, Vec<u8>),
    /// A JSON value somewhere in one document replaced; with `rehash`, the blob is stored
    /// again under its new digest and every reference to the old one is rewritten, so the
    /// change goes past verification to the parsers.
    Json(prop::sample::Index, prop::sample::Index, Value, bool),
    /// A file removed.
    Remove(prop::sample::Index),
}

fn json_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        Just(json!(u64::MAX)),
        Just(json!(-1)),
        Just(json!(2)),
        Just(json!("")),
        Just(json!("sha256:")),
        Just(json!("sha256:../../etc/passwd")),
        Just(json!("sha512:00")),
        Just(json!(oci::OCI_INDEX)),
        Just(json!(oci::DOCKER_LIST)),
        Just(json!(oci::OCI_MANIFEST)),
        Just(json!("application/vnd.oci.image.layer.v1.tar+zstd")),
        Just(json!([])),
        Just(json!({})),
        Just(json!({"os": "linux", "architecture": "amd64"})),
        "[a-z0-9:/.+-]{0,12}".prop_map(Value::from),
    ]
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (
            any::<prop::sample::Index>(),
            any::<usize>(),
            prop::collection::vec(any::<u8>(), 1..4)
        )
            .prop_map(|(f, at, b)| Mutation::Bytes(f, at, b)),
        (
            any::<prop::sample::Index>(),
            any::<prop::sample::Index>(),
            json_value(),
            any::<bool>()
        )
            .prop_map(|(f, at, v, rehash)| Mutation::Json(f, at, v, rehash)),
        any::<prop::sample::Index>().prop_map(Mutation::Remove),
    ]
}

/// Every (pointer to a) value of a JSON document, depth first.
fn pointers(v: &Value, at: String, out: &mut Vec<String>) {
    match v {
        Value::Object(map) => {
            for (k, child) in map {
                pointers(
                    child,
                    format!("{at}/{}", k.replace('~', "~0").replace('/', "~1")),
                    out,
                );
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                pointers(child, format!("{at}/{i}"), out);
            }
        }
        _ => {}
    }
    out.push(at);
}

fn apply(layout: &mut Layout, m: &Mutation) {
    let mut names: Vec<String> = layout.files.keys().cloned().collect();
    names.sort();
    if names.is_empty() {
        return;
    }
    match m {
        Mutation::Bytes(f, at, bytes) => {
            let file = layout.files.get_mut(&names[f.index(names.len())]);
            if let Some(file) = file {
                let at = at % (file.len() + 1);
                file.splice(at..at, bytes.iter().copied());
            }
        }
        Mutation::Remove(f) => {
            layout.files.remove(&names[f.index(names.len())]);
        }
        Mutation::Json(f, at, value, rehash) => {
            let name = names[f.index(names.len())].clone();
            let Ok(mut doc) = serde_json::from_slice::<Value>(&layout.files[&name]) else {
                return;
            };
            let mut all = Vec::new();
            pointers(&doc, String::new(), &mut all);
            let pointer = &all[at.index(all.len())];
            match doc.pointer_mut(pointer) {
                Some(slot) if !pointer.is_empty() => *slot = value.clone(),
                _ => doc = value.clone(),
            }
            let bytes = doc.to_string().into_bytes();
            if *rehash && name != "oci/index.json" {
                let old = name.rsplit('/').next().unwrap_or_default().to_string();
                let new = sha256(&bytes);
                layout.files.remove(&name);
                layout
                    .files
                    .insert(format!("oci/blobs/sha256/{new}"), bytes.clone());
                let len = bytes.len();
                for file in layout.files.values_mut() {
                    if let Ok(text) = std::str::from_utf8(file)
                        && text.contains(&old)
                        && let Ok(mut v) = serde_json::from_str::<Value>(text)
                    {
                        rewrite(&mut v, &old, &new, len);
                        *file = v.to_string().into_bytes();
                    }
                }
                // Parents were rewritten: their digests changed too, so only the top-level
                // index keeps matching; that is the point (deep documents reach the parser).
            } else {
                layout.files.insert(name, bytes);
            }
        }
    }
}

fn rewrite(v: &mut Value, old: &str, new: &str, len: usize) {
    match v {
        Value::Object(map) => {
            if map.get("digest").and_then(Value::as_str) == Some(&format!("sha256:{old}")) {
                map.insert("digest".into(), json!(format!("sha256:{new}")));
                map.insert("size".into(), json!(len));
            }
            for child in map.values_mut() {
                rewrite(child, old, new, len);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|c| rewrite(c, old, new, len)),
        _ => {}
    }
}

/// What Ok promises, checked against the tree itself.
fn check_selected(layout: &Layout, selected: &Selected, want: &Platform) {
    let all = std::iter::once(&selected.manifest)
        .chain(std::iter::once(&selected.config))
        .chain(selected.layers.iter());
    for blob in all {
        let bytes = layout
            .files
            .get(&blob.path)
            .unwrap_or_else(|| panic!("{} is not in the tree", blob.path));
        assert_eq!(bytes.len() as u64, blob.size, "{}", blob.path);
        oci::verify(blob, bytes).unwrap_or_else(|e| panic!("{e}"));
        assert!(blob.path.starts_with("oci/blobs/"), "{}", blob.path);
        assert!(!blob.path.contains(".."), "{}", blob.path);
    }
    assert_eq!(layout.files[&selected.config.path], selected.config_bytes);
    let (os, arch) = (want.os, want.architecture);
    assert!(
        selected.platform.starts_with(&format!("{os}/{arch}")),
        "{} for {os}/{arch}",
        selected.platform
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]

    /// Valid layouts: the platform is found exactly when an image for it is listed.
    #[test]
    fn valid_layouts_select_their_platforms(plan in plan(), want in 0..PLATFORMS.len()) {
        let layout = build(&plan);
        let platform = keg_platform(want);
        let present = plan.images.iter().any(|(p, _, _)| *p == want);
        match layout.select(&platform) {
            Ok(selected) => {
                prop_assert!(present);
                check_selected(&layout, &selected, &platform);
            }
            Err(e) => prop_assert!(!present, "{e}"),
        }
    }

    /// Broken layouts: never a panic or a hang; Ok only for a complete, intact image.
    #[test]
    fn broken_layouts_fail_cleanly(
        plan in plan(),
        mutations in prop::collection::vec(mutation(), 1..4),
        want in 0..PLATFORMS.len(),
    ) {
        let mut layout = build(&plan);
        for m in &mutations {
            apply(&mut layout, m);
        }
        let platform = keg_platform(want);
        let start = Instant::now();
        let result = layout.select(&platform);
        prop_assert!(start.elapsed() < BOUND, "took {:?}", start.elapsed());
        match result {
            Ok(selected) => check_selected(&layout, &selected, &platform),
            Err(e) => prop_assert!(!e.to_string().is_empty()),
        }
    }

    /// Any bytes as index.json.
    #[test]
    fn any_bytes_as_the_index(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        let mut layout = Layout::default();
        layout.files.insert("oci/index.json".into(), bytes);
        prop_assert!(layout.select(&keg_platform(0)).is_err());
    }
}

/// Regression: nested indexes listing the same child index many times, level after level,
/// were walked once per path (16 listings over 8 levels: 16^8 visits, and as many
/// candidates in memory). Each index is now walked once.
#[test]
fn repeated_nested_indexes_are_walked_once() {
    let mut layout = Layout::default();
    let image = layout.image(PLATFORMS[0], &[b"layer".to_vec()]);
    let mut child = vec![image];
    for _ in 0..8 {
        let bytes = Layout::index(&child, oci::OCI_INDEX);
        let d = layout.blob(oci::OCI_INDEX, &bytes);
        child = vec![d; 16];
    }
    layout.files.insert(
        "oci/index.json".into(),
        Layout::index(&child, oci::OCI_INDEX),
    );
    let start = Instant::now();
    let selected = layout.select(&keg_platform(0)).expect("select");
    assert!(start.elapsed() < BOUND, "took {:?}", start.elapsed());
    check_selected(&layout, &selected, &keg_platform(0));
    // Nothing to choose from: the error lists each platform once, not 16^8 times.
    let err = layout
        .select(&keg_platform(1))
        .expect_err("no arm64")
        .to_string();
    assert!(err.len() < 1_000, "{} bytes", err.len());
}

//! Hand-made layouts in memory: platform selection, nested indexes, every verification
//! error, and the archive `docker load` gets.

use std::collections::HashMap;
use std::io::Read;

use serde_json::{Value, json};

use super::*;

const LAYER: &str = "application/vnd.oci.image.layer.v1.tar+gzip";

fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", hex(&Sha256::digest(bytes)))
}

fn linux(architecture: &'static str, variant: Option<&'static str>) -> Platform {
    Platform {
        os: "linux",
        architecture,
        variant,
    }
}

/// An OCI layout under `oci/` in a pretend git tree.
#[derive(Default)]
struct Fake {
    files: HashMap<String, Vec<u8>>,
}

impl Fake {
    /// Stores a blob; returns its descriptor.
    fn blob(&mut self, media_type: &str, bytes: &[u8]) -> Value {
        let digest = sha256(bytes);
        let hex = digest.strip_prefix("sha256:").unwrap();
        self.files
            .insert(format!("oci/blobs/sha256/{hex}"), bytes.to_vec());
        json!({"mediaType": media_type, "digest": digest, "size": bytes.len()})
    }

    fn json_blob(&mut self, media_type: &str, value: &Value) -> Value {
        self.blob(media_type, &serde_json::to_vec(value).unwrap())
    }

    /// An image (config for `platform`, one layer per item); returns the manifest's
    /// descriptor, without a platform.
    fn image(&mut self, platform: &str, layers: &[&[u8]]) -> Value {
        let mut parts = platform.split('/');
        let mut config = json!({
            "os": parts.next().unwrap(),
            "architecture": parts.next().unwrap(),
            "rootfs": {"type": "layers", "diff_ids": []},
        });
        if let Some(variant) = parts.next() {
            config["variant"] = json!(variant);
        }
        let config = self.json_blob(OCI_CONFIG, &config);
        let layers: Vec<Value> = layers.iter().map(|l| self.blob(LAYER, l)).collect();
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": config,
            "layers": layers,
        });
        self.json_blob(OCI_MANIFEST, &manifest)
    }

    fn index_value(manifests: &[Value]) -> Value {
        json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests})
    }

    fn set_index(&mut self, manifests: &[Value]) {
        let bytes = serde_json::to_vec(&Fake::index_value(manifests)).unwrap();
        self.files.insert("oci/index.json".into(), bytes);
    }

    fn reader(&self) -> impl Fn(&str) -> Result<Vec<u8>, OciError> + Sync + '_ {
        |path: &str| {
            self.files
                .get(path)
                .cloned()
                .ok_or_else(|| OciError::NotFound { path: path.into() })
        }
    }

    fn select(&self, platform: Platform) -> Result<Selected, OciError> {
        select(&self.reader(), "oci/index.json", &platform)
    }

    fn path_of(descriptor: &Value) -> String {
        let digest = descriptor["digest"].as_str().unwrap();
        format!(
            "oci/blobs/sha256/{}",
            digest.strip_prefix("sha256:").unwrap()
        )
    }
}

fn with_platform(mut descriptor: Value, platform: &str) -> Value {
    let mut parts = platform.split('/');
    let mut p = json!({"os": parts.next().unwrap(), "architecture": parts.next().unwrap()});
    if let Some(variant) = parts.next() {
        p["variant"] = json!(variant);
    }
    descriptor["platform"] = p;
    descriptor
}

/// amd64, arm/v7 and arm64 (without a variant in the index), each with its own layer.
fn multi() -> (Fake, [Value; 3]) {
    let mut fake = Fake::default();
    let amd64 = fake.image("linux/amd64", &[b"base", b"amd64 layer"]);
    let arm = fake.image("linux/arm/v7", &[b"arm layer"]);
    let arm64 = fake.image("linux/arm64/v8", &[b"arm64 layer"]);
    fake.set_index(&[
        with_platform(amd64.clone(), "linux/amd64"),
        with_platform(arm.clone(), "linux/arm/v7"),
        with_platform(arm64.clone(), "linux/arm64"),
    ]);
    (fake, [amd64, arm, arm64])
}

#[test]
fn selects_by_platform() {
    let (fake, [amd64, arm, arm64]) = multi();
    let s = fake.select(linux("amd64", None)).unwrap();
    assert_eq!(s.manifest.digest, amd64["digest"].as_str().unwrap());
    assert_eq!(s.platform, "linux/amd64");
    assert_eq!(s.index_path, "oci/index.json");
    let layers: Vec<_> = s.layers.iter().map(|l| l.digest.clone()).collect();
    assert_eq!(layers, [sha256(b"base"), sha256(b"amd64 layer")]);
    assert_eq!(s.layers[0].size, 4);
    assert_eq!(s.layers[0].media_type, LAYER);
    assert_eq!(
        s.layers[0].path,
        format!("oci/blobs/sha256/{}", &sha256(b"base")[7..])
    );
    assert_eq!(s.image_id(), sha256(&s.config_bytes));
    assert_eq!(
        s.config.path,
        Fake::path_of(&json!({"digest": s.config.digest}))
    );

    let s = fake.select(linux("arm", Some("v7"))).unwrap();
    assert_eq!(s.manifest.digest, arm["digest"].as_str().unwrap());

    // arm64/v8 matches the index's arm64 without a variant.
    let s = fake.select(linux("arm64", Some("v8"))).unwrap();
    assert_eq!(s.manifest.digest, arm64["digest"].as_str().unwrap());
    assert_eq!(s.platform, "linux/arm64/v8");
}

#[test]
fn exact_variant_beats_missing_variant_and_different_variants_never_match() {
    let mut fake = Fake::default();
    let plain = fake.image("linux/arm", &[b"plain"]);
    let v6 = fake.image("linux/arm/v6", &[b"v6"]);
    let v7 = fake.image("linux/arm/v7", &[b"v7"]);
    fake.set_index(&[
        with_platform(plain.clone(), "linux/arm"),
        with_platform(v6, "linux/arm/v6"),
        with_platform(v7.clone(), "linux/arm/v7"),
    ]);
    let s = fake.select(linux("arm", Some("v7"))).unwrap();
    assert_eq!(s.manifest.digest, v7["digest"].as_str().unwrap());
    // v5 matches neither v6 nor v7, only the one without a variant.
    let s = fake.select(linux("arm", Some("v5"))).unwrap();
    assert_eq!(s.manifest.digest, plain["digest"].as_str().unwrap());

    let mut fake = Fake::default();
    let v9 = fake.image("linux/arm64/v9", &[b"v9"]);
    fake.set_index(&[with_platform(v9, "linux/arm64/v9")]);
    let err = fake.select(linux("arm64", Some("v8"))).unwrap_err();
    assert_eq!(
        err.to_string(),
        "no manifest for platform linux/arm64/v8 in oci/index.json; the index has: linux/arm64/v9"
    );
}

#[test]
fn follows_nested_indexes_and_docker_lists() {
    let mut fake = Fake::default();
    let amd64 = fake.image("linux/amd64", &[b"a"]);
    let s390x = fake.image("linux/s390x", &[b"s"]);
    // index.json -> OCI index -> Docker manifest list -> manifests.
    let list = json!({
        "schemaVersion": 2,
        "mediaType": DOCKER_LIST,
        "manifests": [
            with_platform(amd64.clone(), "linux/amd64"),
            with_platform(s390x.clone(), "linux/s390x"),
        ],
    });
    let list = fake.json_blob(DOCKER_LIST, &list);
    let inner = fake.json_blob(OCI_INDEX, &Fake::index_value(&[list]));
    fake.set_index(&[inner]);
    let s = fake.select(linux("s390x", None)).unwrap();
    assert_eq!(s.manifest.digest, s390x["digest"].as_str().unwrap());
    assert_eq!(s.layers[0].digest, sha256(b"s"));
    let err = fake.select(linux("riscv64", None)).unwrap_err();
    assert_eq!(
        err.to_string(),
        "no manifest for platform linux/riscv64 in oci/index.json; the index has: linux/amd64, linux/s390x"
    );
}

#[test]
fn a_manifest_without_platform_matches_by_its_config() {
    let mut fake = Fake::default();
    let amd64 = fake.image("linux/amd64", &[b"layer"]);
    fake.set_index(std::slice::from_ref(&amd64));
    let s = fake.select(linux("amd64", None)).unwrap();
    assert_eq!(s.manifest.digest, amd64["digest"].as_str().unwrap());
    let err = fake.select(linux("arm64", Some("v8"))).unwrap_err();
    assert_eq!(
        err,
        OciError::NoMatch {
            platform: "linux/arm64/v8".into(),
            path: "oci/index.json".into(),
            available: "linux/amd64".into(),
        }
    );
    assert_eq!(
        err.to_string(),
        "no manifest for platform linux/arm64/v8 in oci/index.json; the index has: linux/amd64"
    );
}

#[test]
fn index_platform_must_agree_with_config() {
    let mut fake = Fake::default();
    let arm64 = fake.image("linux/arm64", &[b"layer"]);
    fake.set_index(&[with_platform(arm64.clone(), "linux/amd64")]);
    let err = fake.select(linux("amd64", None)).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "manifest {} is listed in oci/index.json for linux/amd64, but its config is for linux/arm64",
            arm64["digest"].as_str().unwrap()
        )
    );
}

#[test]
fn wrong_digest_names_the_blob_and_both_digests() {
    let (mut fake, [amd64, ..]) = multi();
    let path = format!("oci/blobs/sha256/{}", &sha256(b"amd64 layer")[7..]);
    fake.files.insert(path.clone(), b"AMD64 layer".to_vec());
    let err = fake.select(linux("amd64", None)).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "blob {path} has digest {} (expected {})",
            sha256(b"AMD64 layer"),
            sha256(b"amd64 layer")
        )
    );
    // The manifest itself is verified too.
    let manifest = Fake::path_of(&amd64);
    let mut bytes = fake.files[&manifest].clone();
    let last = bytes.len() - 1;
    bytes[last] = b' ';
    fake.files.insert(manifest.clone(), bytes);
    let err = fake.select(linux("amd64", None)).unwrap_err();
    assert!(
        matches!(&err, OciError::DigestMismatch { path, .. } if *path == manifest),
        "{err}"
    );
}

#[test]
fn wrong_size_is_reported_before_the_digest() {
    let mut fake = Fake::default();
    let mut layer = fake.blob(LAYER, b"12345");
    layer["size"] = json!(4);
    let config = fake.json_blob(OCI_CONFIG, &json!({"os": "linux", "architecture": "amd64"}));
    let manifest = fake.json_blob(
        OCI_MANIFEST,
        &json!({"schemaVersion": 2, "config": config, "layers": [layer.clone()]}),
    );
    fake.set_index(&[manifest]);
    let err = fake.select(linux("amd64", None)).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "blob {} has 5 bytes (expected 4 for {})",
            Fake::path_of(&layer),
            sha256(b"12345")
        )
    );
}

#[test]
fn missing_blob_and_missing_index() {
    let (mut fake, [amd64, ..]) = multi();
    let layer = format!("oci/blobs/sha256/{}", &sha256(b"base")[7..]);
    fake.files.remove(&layer);
    let err = fake.select(linux("amd64", None)).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "missing blob {}: {layer} does not exist (listed in {})",
            sha256(b"base"),
            Fake::path_of(&amd64)
        )
    );
    fake.files.remove("oci/index.json");
    let err = fake.select(linux("amd64", None)).unwrap_err();
    assert_eq!(
        err.to_string(),
        "missing OCI index: oci/index.json does not exist"
    );
}

#[test]
fn invalid_documents() {
    let mut fake = Fake::default();
    fake.files
        .insert("oci/index.json".into(), b"{not json".to_vec());
    let err = fake.select(linux("amd64", None)).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("invalid JSON in oci/index.json: "),
        "{err}"
    );

    fake.files.insert(
        "oci/index.json".into(),
        br#"{"schemaVersion": 1, "manifests": []}"#.to_vec(),
    );
    let err = fake.select(linux("amd64", None)).unwrap_err();
    assert_eq!(
        err.to_string(),
        "oci/index.json: unsupported schemaVersion 1 (expected 2)"
    );

    fake.files.insert(
        "oci/index.json".into(),
        format!(r#"{{"schemaVersion": 2, "mediaType": "{OCI_MANIFEST}", "manifests": []}}"#)
            .into_bytes(),
    );
    let err = fake.select(linux("amd64", None)).unwrap_err();
    assert!(
        err.to_string().starts_with(&format!(
            "unsupported mediaType {OCI_MANIFEST} for an image index in oci/index.json"
        )),
        "{err}"
    );

    // A digest that would leave blobs/ is refused before anything is read.
    fake.files.insert(
        "oci/index.json".into(),
        format!(
            r#"{{"schemaVersion": 2, "manifests": [{{"mediaType": "{OCI_MANIFEST}", "digest": "sha256:../../etc/passwd", "size": 1}}]}}"#
        )
        .into_bytes(),
    );
    let err = fake.select(linux("amd64", None)).unwrap_err();
    assert!(
        matches!(err, OciError::InvalidDigest { ref digest, .. } if digest == "sha256:../../etc/passwd"),
        "{err}"
    );

    // An empty index.
    fake.set_index(&[]);
    let err = fake.select(linux("amd64", None)).unwrap_err();
    assert_eq!(
        err.to_string(),
        "no manifest for platform linux/amd64 in oci/index.json; the index has: no image manifests"
    );
}

#[test]
fn zstd_and_unknown_layer_types_are_refused() {
    for (media_type, want) in [
        (
            "application/vnd.oci.image.layer.v1.tar+zstd",
            "is zstd-compressed (application/vnd.oci.image.layer.v1.tar+zstd): the Docker engine (20.10) cannot load zstd layers",
        ),
        (
            "application/x-unknown",
            "unsupported mediaType application/x-unknown for layer sha256:",
        ),
    ] {
        let mut fake = Fake::default();
        let layer = fake.blob(media_type, b"layer");
        let config = fake.json_blob(OCI_CONFIG, &json!({"os": "linux", "architecture": "amd64"}));
        let manifest = fake.json_blob(
            OCI_MANIFEST,
            &json!({"schemaVersion": 2, "config": config, "layers": [layer]}),
        );
        fake.set_index(&[manifest]);
        let err = fake.select(linux("amd64", None)).unwrap_err().to_string();
        assert!(err.contains(want), "{err}");
    }
    // zstd content under a gzip media type is caught by its magic number.
    let mut fake = Fake::default();
    let amd64 = fake.image("linux/amd64", &[&[0x28, 0xb5, 0x2f, 0xfd, 0, 0]]);
    fake.set_index(&[amd64]);
    let err = fake.select(linux("amd64", None)).unwrap_err();
    assert!(matches!(err, OciError::Zstd { .. }), "{err}");
}

#[test]
fn a_matching_child_of_unknown_type_is_an_unsupported_media_type() {
    let mut fake = Fake::default();
    let odd = fake.blob("application/vnd.example.artifact", b"{}");
    fake.set_index(&[with_platform(odd, "linux/amd64")]);
    let err = fake.select(linux("amd64", None)).unwrap_err().to_string();
    assert!(
        err.starts_with(
            "unsupported mediaType application/vnd.example.artifact for the linux/amd64 manifest sha256:"
        ),
        "{err}"
    );
}

#[test]
fn sha512_digests_and_a_layout_at_the_root() {
    let mut fake = Fake::default();
    let layer = b"layer";
    let digest = format!("sha512:{}", hex(&Sha512::digest(layer)));
    fake.files
        .insert(format!("blobs/sha512/{}", &digest[7..]), layer.to_vec());
    let config = fake.json_blob(OCI_CONFIG, &json!({"os": "linux", "architecture": "amd64"}));
    let manifest = json!({"schemaVersion": 2, "config": config,
        "layers": [{"mediaType": LAYER, "digest": digest, "size": 5}]});
    let manifest = fake.json_blob(OCI_MANIFEST, &manifest);
    // Move everything from oci/ to the root of the tree.
    fake.files = fake
        .files
        .drain()
        .map(|(k, v)| (k.trim_start_matches("oci/").to_owned(), v))
        .collect();
    let index = serde_json::to_vec(&Fake::index_value(&[manifest])).unwrap();
    fake.files.insert("index.json".into(), index);
    let s = select(
        &fake.reader(),
        &index_path(".", "index.json"),
        &linux("amd64", None),
    )
    .unwrap();
    assert_eq!(s.index_path, "index.json");
    assert_eq!(s.layers[0].path, format!("blobs/sha512/{}", &digest[7..]));
}

#[test]
fn index_paths() {
    assert_eq!(index_path(".", "index.json"), "index.json");
    assert_eq!(index_path("oci/", "index.json"), "oci/index.json");
    assert_eq!(index_path("a/./b", "sub/index.json"), "a/b/sub/index.json");
}

/// The archive's entries: (name, bytes), in order.
fn entries(archive: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut archive = tar::Archive::new(archive);
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        let name = entry.path().unwrap().to_string_lossy().into_owned();
        let mut bytes = Vec::new();
        entry.read_to_end(&mut bytes).unwrap();
        out.push((name, bytes));
    }
    out
}

#[test]
fn archive_has_config_layers_then_manifest_json() {
    let mut fake = Fake::default();
    // The same layer twice: stored once, listed twice.
    let amd64 = fake.image("linux/amd64", &[b"one", b"two", b"one"]);
    fake.set_index(&[amd64]);
    let s = fake.select(linux("amd64", None)).unwrap();
    let mut out = Vec::new();
    let tags = vec!["a:1".to_owned(), "127.0.0.1:5000/b:latest".to_owned()];
    write_archive(&fake.reader(), &s, &tags, &mut out, &AtomicBool::new(false)).unwrap();
    assert_eq!(out.len() % BLOCK, 0);
    assert!(out.ends_with(&[0; 2 * BLOCK]));
    let entries = entries(&out);
    let names: Vec<&str> = entries.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        ["config.json", "layer-1.tar", "layer-2.tar", "manifest.json"]
    );
    assert_eq!(entries[0].1, s.config_bytes);
    assert_eq!(entries[1].1, b"one");
    assert_eq!(entries[2].1, b"two");
    let manifest: Value = serde_json::from_slice(&entries[3].1).unwrap();
    assert_eq!(
        manifest,
        json!([{
            "Config": "config.json",
            "RepoTags": ["a:1", "127.0.0.1:5000/b:latest"],
            "Layers": ["layer-1.tar", "layer-2.tar", "layer-1.tar"],
        }])
    );
}

#[test]
fn archive_stops_before_a_corrupt_blob() {
    let mut fake = Fake::default();
    let amd64 = fake.image("linux/amd64", &[b"good", b"will be altered"]);
    fake.set_index(&[amd64]);
    let s = fake.select(linux("amd64", None)).unwrap();
    fake.files
        .insert(s.layers[1].path.clone(), b"has been altered".to_vec());
    let mut out = Vec::new();
    let err =
        write_archive(&fake.reader(), &s, &[], &mut out, &AtomicBool::new(false)).unwrap_err();
    let Feed::Blob(err) = err else {
        panic!("{err:?}")
    };
    assert_eq!(
        err.to_string(),
        format!(
            "blob {} has 16 bytes (expected 15 for {})",
            s.layers[1].path, s.layers[1].digest
        )
    );
    // config.json and the good layer only: not a byte of the bad blob, no manifest.json,
    // no end-of-archive marker.
    assert_eq!(out.len(), 2 * BLOCK + 2 * BLOCK);
    assert!(!out.windows(13).any(|w| w == b"manifest.json"));
    assert!(!out.windows(7).any(|w| w == b"altered"));

    // A tampered config in a hand-edited Selected is caught too.
    let mut tampered = s.clone();
    tampered.config_bytes.push(b' ');
    let err = write_archive(
        &fake.reader(),
        &tampered,
        &[],
        &mut Vec::new(),
        &AtomicBool::new(false),
    )
    .unwrap_err();
    assert!(
        matches!(err, Feed::Blob(OciError::SizeMismatch { .. })),
        "{err:?}"
    );
}

#[test]
fn archive_stops_when_cancelled() {
    let (fake, _) = multi();
    let s = fake.select(linux("amd64", None)).unwrap();
    let mut out = Vec::new();
    let err = write_archive(&fake.reader(), &s, &[], &mut out, &AtomicBool::new(true)).unwrap_err();
    assert!(matches!(err, Feed::Cancelled), "{err:?}");
    assert!(!out.windows(13).any(|w| w == b"manifest.json"));
}

#[test]
fn repo_tags_and_the_load_command() {
    assert_eq!(repo_tag("a:1").unwrap(), "a:1");
    assert_eq!(repo_tag("a").unwrap(), "a:latest");
    assert_eq!(
        repo_tag("127.0.0.1:5000/x/y").unwrap(),
        "127.0.0.1:5000/x/y:latest"
    );
    assert_eq!(
        repo_tag("127.0.0.1:5000/x/y:2").unwrap(),
        "127.0.0.1:5000/x/y:2"
    );
    assert!(repo_tag("a@sha256:00").is_err());
    assert!(repo_tag("").is_err());
    assert_eq!(load_command().display(), "docker load");
}

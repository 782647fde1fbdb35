//! `Builder: oci-import`: an OCI image layout committed to git, imported into the engine
//! instead of built.
//!
//! Job: in the entry's tree at GitCommit, `Directory/File` is the `index.json` of an OCI
//! image layout whose blobs lie beside it (`<layout>/blobs/<alg>/<hex>`). [`select`] walks
//! the index (nested indexes and Docker manifest lists included) to the one image manifest
//! for the node's platform and checks everything that image needs; [`import`] streams a
//! `docker save`-style archive (config, layers, `manifest.json` with `RepoTags`) from the
//! object database into `docker load`'s stdin and makes sure every tag points at the image.
//!
//! Invariants:
//! - Every blob is verified against its descriptor, size and digest, before it is used:
//!   [`select`] reads and verifies the nested indexes, the manifest, the config and every
//!   layer; [`import`] verifies each blob again as it reads it from git, before a single
//!   byte of it is written to the pipe. Digests are `sha256` or `sha512` in lowercase hex,
//!   so a digest can never name a path outside `blobs/`.
//! - A failed import creates no image: `manifest.json` is the archive's last entry, so
//!   `docker load` cannot create an image from a stream that stops early, and when a blob
//!   fails verification (or keg is cancelled) the `docker load` process group is killed
//!   before its stdin is closed, so the daemon sees a broken upload, not a short archive.
//! - Nothing is checked out and nothing is written to disk but the log: blobs go from the
//!   object database to the pipe one at a time.
//! - `docker load` runs in its own process group, waited for and ended on cancellation
//!   exactly like a build ([`crate::process`]).
//! - zstd layers and unknown layer media types are refused up front: the engine keg
//!   targets (Docker 20.10) cannot load zstd.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, BufWriter, Read, Write};
use std::path::Path;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256, Sha512};
use tar::{EntryType, Header};

use crate::arch::Platform;
use crate::docker::DockerCommand;
use crate::git::{GitCache, GitError, hex};
use crate::process::{self, signal_group};

pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";

/// Layer media types `docker load` can take (plain or gzip-compressed tars).
pub const LAYER_TYPES: &[&str] = &[
    "application/vnd.oci.image.layer.v1.tar",
    "application/vnd.oci.image.layer.v1.tar+gzip",
    "application/vnd.oci.image.layer.nondistributable.v1.tar",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
    "application/vnd.docker.image.rootfs.diff.tar.gzip",
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
];

/// How deep indexes may nest below `index.json`.
const MAX_DEPTH: usize = 8;
const BLOCK: usize = 512;
const ZSTD_MAGIC: &[u8] = &[0x28, 0xb5, 0x2f, 0xfd];

/// What can be wrong with a layout. Messages name the file (a path in the git tree) and,
/// for blobs, the digest.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OciError {
    /// What a reader returns for a path that does not exist; [`select`] turns it into
    /// [`OciError::MissingIndex`] or [`OciError::MissingBlob`].
    #[error("{path} does not exist")]
    NotFound { path: String },
    #[error("cannot read {path}: {message}")]
    Read { path: String, message: String },
    #[error("missing OCI index: {path} does not exist")]
    MissingIndex { path: String },
    #[error("missing blob {digest}: {path} does not exist (listed in {listed_in})")]
    MissingBlob {
        digest: String,
        path: String,
        listed_in: String,
    },
    #[error("invalid JSON in {path}: {message}")]
    InvalidJson { path: String, message: String },
    #[error("{path}: unsupported schemaVersion {found} (expected 2)")]
    SchemaVersion { path: String, found: u64 },
    #[error("unsupported mediaType {media_type} for {what} in {path} (supported: {supported})")]
    UnsupportedMediaType {
        media_type: String,
        what: String,
        path: String,
        supported: String,
    },
    #[error(
        "layer {digest} in {path} is zstd-compressed ({media_type}): the Docker engine (20.10) \
         cannot load zstd layers; recompress the layout with gzip"
    )]
    Zstd {
        digest: String,
        media_type: String,
        path: String,
    },
    #[error("{path} has mediaType {found}, but {listed_in} lists it as {expected}")]
    MediaTypeMismatch {
        path: String,
        found: String,
        expected: String,
        listed_in: String,
    },
    #[error("invalid digest {digest:?} in {path}: {reason}")]
    InvalidDigest {
        digest: String,
        path: String,
        reason: &'static str,
    },
    #[error("blob {path} has digest {actual} (expected {expected})")]
    DigestMismatch {
        path: String,
        expected: String,
        actual: String,
    },
    #[error("blob {path} has {actual} bytes (expected {expected} for {digest})")]
    SizeMismatch {
        path: String,
        digest: String,
        expected: u64,
        actual: u64,
    },
    #[error("no manifest for platform {platform} in {path}; the index has: {available}")]
    NoMatch {
        platform: String,
        path: String,
        available: String,
    },
    #[error(
        "manifest {digest} is listed in {listed_in} for {listed}, but its config is for {actual}"
    )]
    PlatformMismatch {
        digest: String,
        listed_in: String,
        listed: String,
        actual: String,
    },
    #[error("{path}: indexes nest deeper than {MAX_DEPTH} levels")]
    TooDeep { path: String },
}

/// A verified blob of the layout: what its descriptor says and where it is in the tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Blob {
    pub media_type: String,
    pub digest: String,
    pub size: u64,
    /// `<layout>/blobs/<alg>/<hex>`, relative to the root of the git tree.
    pub path: String,
}

/// The image [`select`] chose: everything [`import`] needs, all verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selected {
    /// The `index.json` it was selected from.
    pub index_path: String,
    pub manifest: Blob,
    pub config: Blob,
    pub config_bytes: Vec<u8>,
    /// The image's platform, as its config states it (`linux/arm64/v8`).
    pub platform: String,
    /// In order, base layer first.
    pub layers: Vec<Blob>,
}

impl Selected {
    /// The id an engine with a graph-driver image store gives the image: the sha256 of its
    /// config (whatever the layout's digest algorithm). The containerd image store names it
    /// by a manifest instead; [`Selected::diff_ids`] identify it in both.
    pub fn image_id(&self) -> String {
        format!("sha256:{}", hex(&Sha256::digest(&self.config_bytes)))
    }

    /// The config's `rootfs.diff_ids`: what `docker image inspect` shows as
    /// `.RootFS.Layers` for this image in any image store.
    pub fn diff_ids(&self) -> Vec<String> {
        serde_json::from_slice::<serde_json::Value>(&self.config_bytes)
            .ok()
            .and_then(|config| {
                config["rootfs"]["diff_ids"].as_array().map(|ids| {
                    ids.iter()
                        .filter_map(|id| id.as_str().map(str::to_owned))
                        .collect()
                })
            })
            .unwrap_or_default()
    }
}

/// A reader of files in the layout's tree, by path; [`OciError::NotFound`] when absent.
pub type Reader<'a> = dyn Fn(&str) -> Result<Vec<u8>, OciError> + 'a;

/// `Directory/File` as one path, without `.` or empty components.
pub fn index_path(directory: &str, file: &str) -> String {
    directory
        .split('/')
        .chain(file.split('/'))
        .filter(|part| !part.is_empty() && *part != ".")
        .collect::<Vec<_>>()
        .join("/")
}

/// Reads files of `commit`'s tree from the git cache.
pub fn git_reader<'a>(
    cache: &'a GitCache,
    commit: &'a str,
) -> impl Fn(&str) -> Result<Vec<u8>, OciError> + Send + Sync + 'a {
    move |path: &str| {
        cache.read_file(commit, path).map_err(|e| match e {
            GitError::MissingPath { .. } => OciError::NotFound {
                path: path.to_owned(),
            },
            other => OciError::Read {
                path: path.to_owned(),
                message: other.to_string(),
            },
        })
    }
}

/// [`select`] on `Directory/File` of `commit` in the git cache.
pub fn select_in_git(
    cache: &GitCache,
    commit: &str,
    directory: &str,
    file: &str,
    platform: &Platform,
) -> Result<Selected, OciError> {
    select(
        &git_reader(cache, commit),
        &index_path(directory, file),
        platform,
    )
}

/// Chooses the image manifest for `platform` in the layout whose `index.json` is at
/// `index_path`, following nested indexes, and verifies it, its config and every layer.
///
/// A manifest matches when os and architecture are equal and the variants are, when both
/// are given (arm64 without a variant is arm64/v8); an exact variant match beats a missing
/// variant, and the first of equals wins. A manifest without a platform in its index
/// matches by its config's os, architecture and variant.
///
/// Every blob is read whole and checked against its descriptor (size, then digest), so Ok
/// means the image is complete and intact at this commit; [`import`] checks again anyway.
pub fn select(
    read: &Reader<'_>,
    index_path: &str,
    platform: &Platform,
) -> Result<Selected, OciError> {
    let layout = Layout::new(read, index_path);
    let bytes = read(index_path).map_err(|e| match e {
        OciError::NotFound { path } => OciError::MissingIndex { path },
        other => other,
    })?;
    let mut walk = Walk::default();
    layout.walk(&bytes, index_path, None, 0, &mut walk)?;

    let want = OciPlatform::from(platform);
    let mut best: Option<(u8, usize)> = None;
    let mut available: Vec<String> = Vec::new();
    for (i, candidate) in walk.candidates.iter_mut().enumerate() {
        let candidate_platform = match candidate.platform.clone() {
            Some(p) => p,
            None => {
                // No platform in the index: the config says what the image is for.
                let loaded = layout.load(candidate)?;
                let p = loaded.platform.clone();
                candidate.loaded = Some(loaded);
                p
            }
        };
        let name = candidate_platform.to_string();
        if !available.contains(&name) {
            available.push(name);
        }
        if let Some(score) = want.score(&candidate_platform)
            && best.is_none_or(|(s, _)| score > s)
        {
            best = Some((score, i));
        }
    }
    let Some((_, chosen)) = best else {
        if let Some(c) = walk
            .unsupported
            .iter()
            .find(|c| c.platform.as_ref().is_some_and(|p| want.score(p).is_some()))
        {
            return Err(OciError::UnsupportedMediaType {
                media_type: c.descriptor.media_type.clone(),
                what: format!("the {want} manifest {}", c.descriptor.digest),
                path: c.listed_in.clone(),
                supported: [OCI_MANIFEST, DOCKER_MANIFEST, OCI_INDEX, DOCKER_LIST].join(", "),
            });
        }
        return Err(OciError::NoMatch {
            platform: want.to_string(),
            path: index_path.to_owned(),
            available: if available.is_empty() {
                "no image manifests".to_owned()
            } else {
                available.join(", ")
            },
        });
    };
    let mut candidate = walk.candidates.swap_remove(chosen);
    let loaded = match candidate.loaded.take() {
        Some(loaded) => loaded,
        None => layout.load(&candidate)?,
    };
    if let Some(listed) = &candidate.platform
        && want.score(&loaded.platform).is_none()
    {
        return Err(OciError::PlatformMismatch {
            digest: candidate.descriptor.digest.clone(),
            listed_in: candidate.listed_in.clone(),
            listed: listed.to_string(),
            actual: loaded.platform.to_string(),
        });
    }

    let mut layers = Vec::with_capacity(loaded.layers.len());
    for descriptor in &loaded.layers {
        check_layer_type(descriptor, &loaded.manifest.path)?;
        layers.push(layout.blob_of(descriptor, &loaded.manifest.path)?);
    }
    for layer in &layers {
        let bytes = layout.read_blob(layer, &loaded.manifest.path)?;
        if bytes.starts_with(ZSTD_MAGIC) {
            return Err(OciError::Zstd {
                digest: layer.digest.clone(),
                media_type: layer.media_type.clone(),
                path: layer.path.clone(),
            });
        }
    }
    Ok(Selected {
        index_path: index_path.to_owned(),
        manifest: loaded.manifest,
        config: loaded.config,
        config_bytes: loaded.config_bytes,
        platform: loaded.platform.to_string(),
        layers,
    })
}

/// Checks `bytes` against the blob's size and digest.
pub fn verify(blob: &Blob, bytes: &[u8]) -> Result<(), OciError> {
    let actual = bytes.len() as u64;
    if actual != blob.size {
        return Err(OciError::SizeMismatch {
            path: blob.path.clone(),
            digest: blob.digest.clone(),
            expected: blob.size,
            actual,
        });
    }
    let (algorithm, _) = parse_digest(&blob.digest).map_err(|reason| OciError::InvalidDigest {
        digest: blob.digest.clone(),
        path: blob.path.clone(),
        reason,
    })?;
    let actual = algorithm.digest(bytes);
    if actual != blob.digest {
        return Err(OciError::DigestMismatch {
            path: blob.path.clone(),
            expected: blob.digest.clone(),
            actual,
        });
    }
    Ok(())
}

/// The command [`import`] runs (for plans and logs): the archive goes to its stdin.
pub fn load_command() -> DockerCommand {
    DockerCommand {
        env: BTreeMap::new(),
        argv: vec!["docker".into(), "load".into()],
    }
}

/// Imports the selected image from `commit`'s tree into the engine and points every tag
/// at it. Output of every docker command is appended to `log`. Err(reason) on failure or
/// cancellation; on failure no image was created by this call.
pub fn import(
    cache: &GitCache,
    commit: &str,
    selected: &Selected,
    tags: &[String],
    log: &Path,
    cancel: &AtomicBool,
) -> Result<(), String> {
    let read = &git_reader(cache, commit);
    let tags = tags
        .iter()
        .map(|t| repo_tag(t))
        .collect::<Result<Vec<_>, _>>()?;
    let mut log_file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .map_err(|e| format!("cannot open log {}: {e}", log.display()))?;
    let command = load_command();
    let _ = writeln!(
        log_file,
        "$ {}  # {} from {}: {} layers",
        command.display(),
        selected.manifest.digest,
        selected.index_path,
        selected.layers.len()
    );

    // Its own process group, as for builds: Ctrl-C reaches keg only, and keg ends the
    // whole group on cancellation or when a blob fails verification.
    let mut child = process::spawn(command.to_command(), Stdio::piped())
        .map_err(|e| format!("cannot run docker: {e}"))?;
    let pid = child.id();
    let stdin = child.stdin.take();
    let outputs = [
        child
            .stdout
            .take()
            .map(|s| Box::new(s) as Box<dyn Read + Send>),
        child
            .stderr
            .take()
            .map(|s| Box::new(s) as Box<dyn Read + Send>),
    ];

    let (status, fed, output) = std::thread::scope(|scope| {
        let tags = &tags;
        let feeder = scope.spawn(move || {
            let Some(mut stdin) = stdin else {
                return Err(Feed::Io(io::Error::other("no stdin for docker load")));
            };
            let mut out = BufWriter::with_capacity(64 * 1024, &mut stdin);
            let result = write_archive(read, selected, tags, &mut out, cancel);
            if result.is_err() {
                // Unflushed bytes are dropped, and docker dies before its stdin is closed:
                // the daemon sees an aborted upload, never a complete archive.
                let _ = out.into_parts();
                signal_group(pid, libc::SIGKILL);
            } else {
                drop(out);
            }
            drop(stdin);
            result
        });
        let pumps: Vec<_> = outputs
            .into_iter()
            .flatten()
            .map(|stream| {
                let log = log_file.try_clone().ok();
                scope.spawn(move || pump(stream, log))
            })
            .collect();
        let status = process::wait(&mut child, cancel, Some(process::TRANSFER_LIMIT))
            .map_err(|why| why.to_string());
        let fed = feeder
            .join()
            .unwrap_or_else(|_| Err(Feed::Io(io::Error::other("archive writer panicked"))));
        let output: String = pumps
            .into_iter()
            .map(|p| p.join().unwrap_or_default())
            .collect();
        (status, fed, output)
    });
    match (status, fed) {
        (_, Err(Feed::Blob(e))) => return Err(e.to_string()),
        (_, Err(Feed::Cancelled)) => return Err("interrupted".to_owned()),
        (Err(reason), _) => return Err(reason),
        (Ok(code), _) if code != 0 => {
            return Err(format!(
                "`{}` exited with status {code}: {}",
                command.display(),
                last_line(&output)
            ));
        }
        (Ok(_), Err(Feed::Io(e))) => {
            return Err(format!("streaming the image into docker load failed: {e}"));
        }
        (Ok(_), Ok(())) => {}
    }
    ensure_tags(&selected.diff_ids(), &tags, log, cancel)
}

/// Why writing the archive stopped.
#[derive(Debug)]
enum Feed {
    /// A blob is missing or failed verification.
    Blob(OciError),
    Io(io::Error),
    Cancelled,
}

/// Writes the `docker load` archive: the config, each distinct layer, then `manifest.json`
/// last, then the end-of-archive blocks. Every blob is read and verified before any of it
/// is written; nothing more is written after an error.
fn write_archive(
    read: &Reader<'_>,
    selected: &Selected,
    tags: &[String],
    out: &mut dyn Write,
    cancel: &AtomicBool,
) -> Result<(), Feed> {
    let cancelled = || cancel.load(Ordering::SeqCst);
    verify(&selected.config, &selected.config_bytes).map_err(Feed::Blob)?;
    let config_name = "config.json".to_owned();
    entry(out, &config_name, &selected.config_bytes)?;

    let mut names: HashMap<&str, String> = HashMap::new();
    let mut layers = Vec::with_capacity(selected.layers.len());
    for layer in &selected.layers {
        if let Some(name) = names.get(layer.digest.as_str()) {
            layers.push(name.clone());
            continue;
        }
        if cancelled() {
            return Err(Feed::Cancelled);
        }
        check_layer_type(layer, &selected.manifest.path).map_err(Feed::Blob)?;
        let bytes = read_verified(read, layer, &selected.manifest.path).map_err(Feed::Blob)?;
        let name = format!("layer-{}.tar", names.len() + 1);
        entry(out, &name, &bytes)?;
        names.insert(&layer.digest, name.clone());
        layers.push(name);
    }
    if cancelled() {
        return Err(Feed::Cancelled);
    }

    let manifest = [ArchiveManifest {
        config: config_name,
        repo_tags: tags.to_vec(),
        layers,
    }];
    let json = serde_json::to_vec(&manifest).map_err(|e| Feed::Io(e.into()))?;
    entry(out, "manifest.json", &json)?;
    out.write_all(&[0; 2 * BLOCK]).map_err(Feed::Io)?;
    out.flush().map_err(Feed::Io)
}

/// One regular file in the archive (ustar; names are short and ASCII).
fn entry(out: &mut dyn Write, name: &str, data: &[u8]) -> Result<(), Feed> {
    let mut header = Header::new_ustar();
    header.set_path(name).map_err(Feed::Io)?;
    header.set_entry_type(EntryType::Regular);
    header.set_mode(0o644);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(0);
    header.set_size(data.len() as u64);
    header.set_cksum();
    out.write_all(header.as_bytes()).map_err(Feed::Io)?;
    out.write_all(data).map_err(Feed::Io)?;
    let rem = data.len() % BLOCK;
    if rem != 0 {
        out.write_all(&[0; BLOCK][..BLOCK - rem])
            .map_err(Feed::Io)?;
    }
    Ok(())
}

/// An entry of `docker save`'s `manifest.json`.
#[derive(Serialize)]
struct ArchiveManifest {
    #[serde(rename = "Config")]
    config: String,
    #[serde(rename = "RepoTags")]
    repo_tags: Vec<String>,
    #[serde(rename = "Layers")]
    layers: Vec<String>,
}

/// A tag as `docker load` wants it in `RepoTags`: with an explicit tag (`:latest` added,
/// as `docker tag` would), never a digest.
fn repo_tag(tag: &str) -> Result<String, String> {
    if tag.is_empty() || tag.contains(char::is_whitespace) || tag.contains('@') {
        return Err(format!("cannot tag an imported image as {tag:?}"));
    }
    let name_end = tag.rfind('/').map_or(0, |i| i + 1);
    Ok(if tag[name_end..].contains(':') {
        tag.to_owned()
    } else {
        format!("{tag}:latest")
    })
}

/// Checks that the first tag names the loaded image (its layers are the config's
/// `diff_ids`) and that every other tag points at the same image, fixing tags with
/// `docker tag` (`docker load` moves existing tags itself; this catches anything else).
fn ensure_tags(
    diff_ids: &[String],
    tags: &[String],
    log: &Path,
    cancel: &AtomicBool,
) -> Result<(), String> {
    let Some(first) = tags.first() else {
        return Ok(());
    };
    /// Per tag: its image id and layers, None when it does not exist.
    type Found = Vec<Option<(String, Vec<String>)>>;
    let inspect = |log: &Path| -> Result<Found, String> {
        let mut found = Vec::with_capacity(tags.len());
        for reference in tags {
            let command = DockerCommand {
                env: BTreeMap::new(),
                argv: [
                    "docker",
                    "image",
                    "inspect",
                    "--format",
                    "{{.Id}} {{json .RootFS.Layers}}",
                    reference,
                ]
                .map(String::from)
                .to_vec(),
            };
            let (code, stdout) = capture(&command, log, cancel)?;
            found.push((code == 0).then(|| {
                let (id, layers) = stdout.trim().split_once(' ').unwrap_or((stdout.trim(), ""));
                let layers = serde_json::from_str(layers).unwrap_or_default();
                (id.to_owned(), layers)
            }));
        }
        Ok(found)
    };
    let found = inspect(log)?;
    let id = match &found[0] {
        Some((id, layers)) if layers == diff_ids => id.clone(),
        _ => {
            return Err(format!(
                "docker load succeeded but {first} is not the layout's image"
            ));
        }
    };
    let wrong = |found: &Found| -> Option<usize> {
        (1..tags.len()).find(|&i| found[i].as_ref().map(|(i, _)| i) != Some(&id))
    };
    if wrong(&found).is_none() {
        return Ok(());
    }
    for (i, tag) in tags.iter().enumerate().skip(1) {
        if found[i].as_ref().map(|(i, _)| i) != Some(&id) {
            let command = DockerCommand {
                env: BTreeMap::new(),
                argv: vec!["docker".into(), "tag".into(), first.clone(), tag.clone()],
            };
            process::run(&command, Some(log), cancel, Some(process::QUERY_LIMIT))?;
        }
    }
    let found = inspect(log)?;
    match wrong(&found) {
        None => Ok(()),
        Some(i) => Err(format!(
            "{} is {} after docker tag, not {id}",
            tags[i],
            found[i].as_ref().map_or("missing", |(i, _)| i.as_str())
        )),
    }
}

/// Runs a short docker command, appending its output to `log`; returns the exit code and
/// stdout.
fn capture(
    command: &DockerCommand,
    log: &Path,
    cancel: &AtomicBool,
) -> Result<(i32, String), String> {
    let output = process::output(command, cancel, Some(process::QUERY_LIMIT))?;
    if let Ok(mut file) = OpenOptions::new().create(true).append(true).open(log) {
        let _ = write!(file, "$ {}\n{}", command.display(), output.text);
    }
    Ok((output.code, output.stdout))
}

/// Copies a child's output to the log line by line; returns it too.
fn pump(stream: Box<dyn Read + Send>, mut log: Option<File>) -> String {
    let mut reader = BufReader::new(stream);
    let mut all = String::new();
    let mut line = Vec::new();
    while reader.read_until(b'\n', &mut line).unwrap_or(0) > 0 {
        if let Some(log) = log.as_mut() {
            let _ = log.write_all(&line);
        }
        all.push_str(&String::from_utf8_lossy(&line));
        line.clear();
    }
    all
}

fn last_line(text: &str) -> &str {
    text.lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
        .trim()
}

fn read_verified(read: &Reader<'_>, blob: &Blob, listed_in: &str) -> Result<Vec<u8>, OciError> {
    let bytes = read(&blob.path).map_err(|e| match e {
        OciError::NotFound { path } => OciError::MissingBlob {
            digest: blob.digest.clone(),
            path,
            listed_in: listed_in.to_owned(),
        },
        other => other,
    })?;
    verify(blob, &bytes)?;
    Ok(bytes)
}

fn check_layer_type(layer: &impl LayerLike, listed_in: &str) -> Result<(), OciError> {
    let (media_type, digest) = layer.parts();
    if media_type.contains("zstd") {
        return Err(OciError::Zstd {
            digest: digest.to_owned(),
            media_type: media_type.to_owned(),
            path: listed_in.to_owned(),
        });
    }
    if !LAYER_TYPES.contains(&media_type) {
        return Err(OciError::UnsupportedMediaType {
            media_type: media_type.to_owned(),
            what: format!("layer {digest}"),
            path: listed_in.to_owned(),
            supported: LAYER_TYPES.join(", "),
        });
    }
    Ok(())
}

trait LayerLike {
    fn parts(&self) -> (&str, &str);
}

impl LayerLike for Blob {
    fn parts(&self) -> (&str, &str) {
        (&self.media_type, &self.digest)
    }
}

impl LayerLike for Descriptor {
    fn parts(&self) -> (&str, &str) {
        (&self.media_type, &self.digest)
    }
}

// ---------------------------------------------------------------------------------------
// The layout: JSON documents, digests, the walk.

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Descriptor {
    media_type: String,
    digest: String,
    size: u64,
    #[serde(default)]
    platform: Option<JsonPlatform>,
}

#[derive(Debug, Clone, Deserialize)]
struct JsonPlatform {
    os: String,
    architecture: String,
    #[serde(default)]
    variant: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Index {
    schema_version: u64,
    #[serde(default)]
    media_type: Option<String>,
    manifests: Vec<Descriptor>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Manifest {
    schema_version: u64,
    #[serde(default)]
    media_type: Option<String>,
    config: Descriptor,
    #[serde(default)]
    layers: Vec<Descriptor>,
}

/// The config fields that say what the image runs on.
#[derive(Debug, Deserialize)]
struct Config {
    os: String,
    architecture: String,
    #[serde(default)]
    variant: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct OciPlatform {
    os: String,
    architecture: String,
    variant: Option<String>,
}

impl From<&Platform> for OciPlatform {
    fn from(p: &Platform) -> OciPlatform {
        OciPlatform {
            os: p.os.to_owned(),
            architecture: p.architecture.to_owned(),
            variant: p.variant.map(str::to_owned),
        }
    }
}

impl From<&JsonPlatform> for OciPlatform {
    fn from(p: &JsonPlatform) -> OciPlatform {
        OciPlatform {
            os: p.os.clone(),
            architecture: p.architecture.clone(),
            variant: p.variant.clone().filter(|v| !v.is_empty()),
        }
    }
}

impl std::fmt::Display for OciPlatform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(variant) = &self.variant {
            write!(f, "/{variant}")?;
        }
        Ok(())
    }
}

impl OciPlatform {
    /// How well `have` serves `self` (the wanted platform): 2 for an exact match, 1 when
    /// one side has no variant, None when it does not match.
    fn score(&self, have: &OciPlatform) -> Option<u8> {
        if self.os != have.os || self.architecture != have.architecture {
            return None;
        }
        match (self.normal_variant(), have.normal_variant()) {
            (Some(a), Some(b)) => (a == b).then_some(2),
            (None, None) => Some(2),
            _ => Some(1),
        }
    }

    /// The variant, with arm64's implicit v8 made explicit.
    fn normal_variant(&self) -> Option<&str> {
        match (self.architecture.as_str(), self.variant.as_deref()) {
            ("arm64", None) => Some("v8"),
            (_, v) => v,
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum Algorithm {
    Sha256,
    Sha512,
}

impl Algorithm {
    fn digest(self, bytes: &[u8]) -> String {
        match self {
            Algorithm::Sha256 => format!("sha256:{}", hex(&Sha256::digest(bytes))),
            Algorithm::Sha512 => format!("sha512:{}", hex(&Sha512::digest(bytes))),
        }
    }
}

/// `sha256:<64 hex>` or `sha512:<128 hex>`, lowercase: the algorithm and the hex.
fn parse_digest(digest: &str) -> Result<(Algorithm, &str), &'static str> {
    let (algorithm, encoded) = digest.split_once(':').ok_or("expected <algorithm>:<hex>")?;
    let (algorithm, len) = match algorithm {
        "sha256" => (Algorithm::Sha256, 64),
        "sha512" => (Algorithm::Sha512, 128),
        _ => return Err("only sha256 and sha512 digests are supported"),
    };
    if encoded.len() != len
        || !encoded
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return Err("the encoded part must be lowercase hex of the algorithm's length");
    }
    Ok((algorithm, encoded))
}

/// A manifest reachable from `index.json`.
#[derive(Debug, Clone)]
struct Candidate {
    descriptor: Descriptor,
    platform: Option<OciPlatform>,
    /// The index (a path in the tree) that lists it.
    listed_in: String,
    loaded: Option<Loaded>,
}

/// A verified manifest and config.
#[derive(Debug, Clone)]
struct Loaded {
    manifest: Blob,
    config: Blob,
    config_bytes: Vec<u8>,
    platform: OciPlatform,
    layers: Vec<Descriptor>,
}

#[derive(Default)]
struct Walk {
    candidates: Vec<Candidate>,
    /// Children of unknown media types, kept for a clearer error.
    unsupported: Vec<Candidate>,
    /// Digests of the nested indexes walked so far: each is walked once, however often it
    /// is listed (the same index listed n times on each of 8 levels was n^8 walks, and as
    /// many candidates in memory; tests/fuzz_oci.rs).
    walked: HashSet<String>,
}

struct Layout<'r, 'a> {
    read: &'r Reader<'a>,
    /// The directory holding `index.json` and `blobs/` ("" for the tree's root).
    dir: String,
}

impl<'r, 'a> Layout<'r, 'a> {
    fn new(read: &'r Reader<'a>, index_path: &str) -> Self {
        let dir = index_path
            .rsplit_once('/')
            .map_or("", |(dir, _)| dir)
            .to_owned();
        Layout { read, dir }
    }

    /// The blob a descriptor names, with its path; the digest is checked for form.
    fn blob_of(&self, d: &Descriptor, listed_in: &str) -> Result<Blob, OciError> {
        let (algorithm, encoded) =
            parse_digest(&d.digest).map_err(|reason| OciError::InvalidDigest {
                digest: d.digest.clone(),
                path: listed_in.to_owned(),
                reason,
            })?;
        let name = match algorithm {
            Algorithm::Sha256 => "sha256",
            Algorithm::Sha512 => "sha512",
        };
        let path = if self.dir.is_empty() {
            format!("blobs/{name}/{encoded}")
        } else {
            format!("{}/blobs/{name}/{encoded}", self.dir)
        };
        Ok(Blob {
            media_type: d.media_type.clone(),
            digest: d.digest.clone(),
            size: d.size,
            path,
        })
    }

    fn read_blob(&self, blob: &Blob, listed_in: &str) -> Result<Vec<u8>, OciError> {
        read_verified(self.read, blob, listed_in)
    }

    /// Collects the manifests an index lists, recursing into nested indexes.
    fn walk(
        &self,
        bytes: &[u8],
        path: &str,
        listed_as: Option<(&str, &str)>,
        depth: usize,
        walk: &mut Walk,
    ) -> Result<(), OciError> {
        if depth > MAX_DEPTH {
            return Err(OciError::TooDeep {
                path: path.to_owned(),
            });
        }
        let index: Index = parse_json(bytes, path)?;
        if index.schema_version != 2 {
            return Err(OciError::SchemaVersion {
                path: path.to_owned(),
                found: index.schema_version,
            });
        }
        if let Some(found) = &index.media_type {
            match listed_as {
                Some((expected, listed_in)) if found != expected => {
                    return Err(OciError::MediaTypeMismatch {
                        path: path.to_owned(),
                        found: found.clone(),
                        expected: expected.to_owned(),
                        listed_in: listed_in.to_owned(),
                    });
                }
                None if found != OCI_INDEX && found != DOCKER_LIST => {
                    return Err(OciError::UnsupportedMediaType {
                        media_type: found.clone(),
                        what: "an image index".to_owned(),
                        path: path.to_owned(),
                        supported: [OCI_INDEX, DOCKER_LIST].join(", "),
                    });
                }
                _ => {}
            }
        }
        for descriptor in index.manifests {
            let candidate = Candidate {
                platform: descriptor.platform.as_ref().map(OciPlatform::from),
                descriptor,
                listed_in: path.to_owned(),
                loaded: None,
            };
            match candidate.descriptor.media_type.as_str() {
                OCI_INDEX | DOCKER_LIST => {
                    if !walk.walked.insert(candidate.descriptor.digest.clone()) {
                        continue;
                    }
                    let blob = self.blob_of(&candidate.descriptor, path)?;
                    let bytes = self.read_blob(&blob, path)?;
                    let listed_as = Some((blob.media_type.as_str(), path));
                    self.walk(&bytes, &blob.path, listed_as, depth + 1, walk)?;
                }
                OCI_MANIFEST | DOCKER_MANIFEST => walk.candidates.push(candidate),
                _ => walk.unsupported.push(candidate),
            }
        }
        Ok(())
    }

    /// Reads and verifies a candidate's manifest and config.
    fn load(&self, candidate: &Candidate) -> Result<Loaded, OciError> {
        let listed_in = &candidate.listed_in;
        let manifest = self.blob_of(&candidate.descriptor, listed_in)?;
        let bytes = self.read_blob(&manifest, listed_in)?;
        let parsed: Manifest = parse_json(&bytes, &manifest.path)?;
        if parsed.schema_version != 2 {
            return Err(OciError::SchemaVersion {
                path: manifest.path.clone(),
                found: parsed.schema_version,
            });
        }
        if let Some(found) = &parsed.media_type
            && *found != manifest.media_type
        {
            return Err(OciError::MediaTypeMismatch {
                path: manifest.path.clone(),
                found: found.clone(),
                expected: manifest.media_type.clone(),
                listed_in: listed_in.clone(),
            });
        }
        let config_type = parsed.config.media_type.as_str();
        if config_type != OCI_CONFIG && config_type != DOCKER_CONFIG {
            return Err(OciError::UnsupportedMediaType {
                media_type: config_type.to_owned(),
                what: format!("the config {}", parsed.config.digest),
                path: manifest.path.clone(),
                supported: [OCI_CONFIG, DOCKER_CONFIG].join(", "),
            });
        }
        let config = self.blob_of(&parsed.config, &manifest.path)?;
        let config_bytes = self.read_blob(&config, &manifest.path)?;
        let fields: Config = parse_json(&config_bytes, &config.path)?;
        Ok(Loaded {
            platform: OciPlatform {
                os: fields.os,
                architecture: fields.architecture,
                variant: fields.variant.filter(|v| !v.is_empty()),
            },
            manifest,
            config,
            config_bytes,
            layers: parsed.layers,
        })
    }
}

fn parse_json<'de, T: Deserialize<'de>>(bytes: &'de [u8], path: &str) -> Result<T, OciError> {
    serde_json::from_slice(bytes).map_err(|e| OciError::InvalidJson {
        path: path.to_owned(),
        message: e.to_string(),
    })
}

#[cfg(test)]
mod tests;

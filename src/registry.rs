//! A small blocking client for the registry HTTP API (OCI distribution / Docker registry v2):
//! what does a tag point at?
//!
//! Job: `push` and `put-shared` decide per tag whether the registry is already up to date.
//! [`Registry`] answers that with one `GET /v2/<name>/manifests/<tag>` per tag (plus one per
//! index member for [`Registry::image_ids`]), in process, on shared keep-alive connections,
//! so that a whole library's tags can be asked concurrently in well under a second instead of
//! spawning `docker buildx imagetools inspect` (~150 ms each) per tag. `remote arches` reads
//! manifests as served ([`Registry::raw_manifest`]) and image configs ([`Registry::blob`]).
//!
//! Invariants:
//! - A [`RemoteManifest`]'s `digest` is the sha256 of the exact bytes received. When the
//!   registry sends `Docker-Content-Digest`, or the reference names a digest, they must agree
//!   or the query fails.
//! - "Not found" (HTTP 404, `MANIFEST_UNKNOWN`, `NAME_UNKNOWN`, buildx's "not found") is
//!   `Ok(None)` / an empty list, never an error. Every error names the reference, and the
//!   HTTP status when there is one.
//! - A connection that fails or a 5xx (or 429) answer is tried again over HTTP, up to
//!   [`Registry::with_retries`] times with exponential backoff ([`crate::retry`]); each
//!   retry is noted for the calling thread ([`take_retries`]).
//! - Any other HTTP failure (transport, TLS, an auth scheme or credential this client cannot
//!   use, a 5xx after the retries) is retried once with `docker buildx imagetools inspect
//!   --raw`, which uses docker's own configuration, so keg works wherever docker does;
//!   [`Registry::stats`] counts which path answered.
//! - Every query is bounded: HTTP by the connect and read timeouts (`KEG_REGISTRY_TIMEOUT`
//!   sets the read timeout), `docker buildx imagetools inspect` and credential helpers by a
//!   time limit through [`crate::process`], and Ctrl-C stops them.
//! - Plain HTTP only for loopback hosts (`localhost`, `127.0.0.0/8`, `::1`, as dockerd treats
//!   them) and hosts listed in `KEG_INSECURE_REGISTRIES`; HTTPS everywhere else.
//! - [`Registry`] is `Send + Sync`: one connection pool; bearer tokens cached per
//!   (host, scope) until they expire; credentials looked up at most once per host, and only
//!   when a registry asks for them; manifests fetched by digest (immutable) cached.
//!
//! HTTP client: `ureq` 3, blocking (keg is thread-based, no async runtime), small, with a
//! keep-alive pool shared by all threads. TLS goes through `native-tls`, i.e. the OpenSSL
//! that git2 already links, with the system's root certificates (as docker uses), so no
//! second TLS stack or bundled root store is compiled in.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde::Deserialize;
use sha2::{Digest, Sha256};

/// Docker Hub's registry API host: where `docker.io/...` references are fetched from. The
/// only place this host is named.
pub const DOCKER_HUB_API: &str = "registry-1.docker.io";
/// The domain Docker Hub references normalize to (`busybox` is `docker.io/library/busybox`).
const HUB_DOMAIN: &str = "docker.io";
/// The legacy domain docker also accepts for Hub references.
const HUB_LEGACY_DOMAIN: &str = "index.docker.io";
/// The key docker's config and credential helpers store Hub credentials under.
const HUB_CONFIG_KEY: &str = "https://index.docker.io/v1/";

pub const MEDIA_OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const MEDIA_OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const MEDIA_DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const MEDIA_DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";

/// The `Accept` header of every manifest request: indexes and image manifests, OCI and
/// Docker (no schema 1).
const ACCEPT: &str = "application/vnd.oci.image.index.v1+json, \
application/vnd.oci.image.manifest.v1+json, \
application/vnd.docker.distribution.manifest.list.v2+json, \
application/vnd.docker.distribution.manifest.v2+json";

/// Manifests are at most 4 MiB in the distribution registry; allow some slack.
const MAX_MANIFEST_BYTES: u64 = 8 << 20;
/// Tokens are refreshed this long before the registry says they expire.
const TOKEN_MARGIN: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("invalid image reference {reference:?}: {reason}")]
    InvalidReference { reference: String, reason: String },

    /// No HTTP answer: connection, TLS, timeout, protocol.
    #[error("{reference}: {url}: {message}")]
    Transport {
        reference: String,
        url: String,
        message: String,
        /// A connection that failed or broke (not a TLS or protocol error, nor a timeout
        /// waiting for an answer): worth another attempt.
        transient: bool,
    },

    /// An HTTP status that is neither success nor "not found".
    #[error("{reference}: HTTP {status} from {url}{}", detail_suffix(.detail))]
    Status {
        reference: String,
        url: String,
        status: u16,
        detail: String,
    },

    /// The registry wants authentication this client could not give.
    #[error("{reference}: not authorized by {host}: {reason}")]
    Unauthorized {
        reference: String,
        host: String,
        reason: String,
    },

    #[error("{reference}: docker credentials for {host}: {reason}")]
    Credentials {
        reference: String,
        host: String,
        reason: String,
    },

    #[error("{reference}: digest mismatch: expected {expected}, content is {actual}")]
    DigestMismatch {
        reference: String,
        expected: String,
        actual: String,
    },

    #[error("{reference}: invalid manifest: {reason}")]
    BadManifest { reference: String, reason: String },

    #[error("{reference}: `docker buildx imagetools inspect`: {message}")]
    Buildx { reference: String, message: String },

    /// The HTTP query failed and so did `docker buildx imagetools inspect`.
    #[error("{http}; `docker buildx imagetools inspect` failed too: {buildx}")]
    Fallback {
        http: Box<RegistryError>,
        buildx: String,
    },
}

fn detail_suffix(detail: &str) -> String {
    if detail.is_empty() {
        String::new()
    } else {
        format!(": {detail}")
    }
}

impl RegistryError {
    /// Whether another HTTP attempt may succeed: a failed connection, a 5xx or a 429.
    pub fn transient(&self) -> bool {
        match self {
            RegistryError::Transport { transient, .. } => *transient,
            RegistryError::Status { status, .. } => *status >= 500 || *status == 429,
            _ => false,
        }
    }

    /// Whether the registry could not be reached or gave no answer at all (on every path
    /// tried), as opposed to an answer keg could not use.
    pub fn unreachable(&self) -> bool {
        match self {
            RegistryError::Transport { .. } => true,
            RegistryError::Fallback { http, .. } => http.unreachable(),
            _ => false,
        }
    }

    /// Whether `docker buildx imagetools inspect` may succeed where the HTTP query failed.
    fn worth_fallback(&self) -> bool {
        !matches!(
            self,
            RegistryError::InvalidReference { .. }
                | RegistryError::DigestMismatch { .. }
                | RegistryError::BadManifest { .. }
                | RegistryError::Fallback { .. }
                | RegistryError::Buildx { .. }
        )
    }
}

/// A manifest or index as the registry serves it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteManifest {
    /// `sha256:<hex>` of the exact bytes served.
    pub digest: String,
    pub media_type: String,
    /// The config blob's digest (the image id) of an image manifest.
    pub config_digest: Option<String>,
    /// The members of an index / manifest list, in order.
    pub manifests: Vec<RemoteDescriptor>,
}

impl RemoteManifest {
    pub fn is_index(&self) -> bool {
        is_index_type(&self.media_type)
    }
}

/// One member of an index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteDescriptor {
    pub digest: String,
    pub media_type: String,
    /// `os/arch[/variant]`, when the index says.
    pub platform: Option<String>,
}

/// A manifest or index exactly as the registry served it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawObject {
    pub bytes: Vec<u8>,
    /// `sha256:<hex>` of `bytes`.
    pub digest: String,
    /// The `Content-Type` it was served with, if any.
    pub media_type: Option<String>,
}

/// Which path answered how many manifest queries.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Answered by the registry's HTTP API (found or not found).
    pub http: usize,
    /// Answered by `docker buildx imagetools inspect --raw` after the HTTP query failed.
    pub buildx: usize,
    /// Answered from the cache of manifests fetched by digest.
    pub cached: usize,
}

/// How a [`Registry`] connects and authenticates.
#[derive(Debug, Clone)]
pub struct RegistryOptions {
    /// The directory holding docker's `config.json`; `None`: no credentials.
    pub docker_config: Option<PathBuf>,
    /// Registries (`host` or `host:port`) spoken to over plain HTTP besides loopback ones.
    pub insecure: Vec<String>,
    /// How manifests are fetched.
    pub path: QueryPath,
    pub connect_timeout: Duration,
    pub read_timeout: Duration,
}

impl RegistryOptions {
    /// Docker's config from `$DOCKER_CONFIG` or `~/.docker`, insecure registries from
    /// `KEG_INSECURE_REGISTRIES` (comma-separated), HTTP with the buildx fallback, timeouts
    /// 10 s (connect) / 30 s (each read; `KEG_REGISTRY_TIMEOUT`, a duration such as `30s`,
    /// which also caps the connect timeout).
    pub fn from_env() -> RegistryOptions {
        let docker_config = match std::env::var_os("DOCKER_CONFIG") {
            Some(dir) if !dir.is_empty() => Some(PathBuf::from(dir)),
            _ => std::env::var_os("HOME").map(|home| Path::new(&home).join(".docker")),
        };
        let insecure = std::env::var("KEG_INSECURE_REGISTRIES")
            .unwrap_or_default()
            .split(',')
            .map(|s| {
                let s = s.trim();
                let s = s.strip_prefix("http://").unwrap_or(s);
                s.strip_prefix("https://")
                    .unwrap_or(s)
                    .trim_end_matches('/')
            })
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect();
        let read_timeout = env_read_timeout();
        RegistryOptions {
            docker_config,
            insecure,
            path: QueryPath::HttpThenBuildx,
            connect_timeout: Duration::from_secs(10).min(read_timeout),
            read_timeout,
        }
    }
}

/// `KEG_REGISTRY_TIMEOUT`, else 30 s (an invalid or zero value counts as unset).
fn env_read_timeout() -> Duration {
    std::env::var("KEG_REGISTRY_TIMEOUT")
        .ok()
        .and_then(|text| crate::process::parse_duration(&text).ok())
        .filter(|d| !d.is_zero())
        .unwrap_or(Duration::from_secs(30))
}

/// Which way [`Registry`] fetches manifests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueryPath {
    /// The registry's HTTP API only.
    Http,
    /// The HTTP API; when that fails for a reason other than "not found",
    /// `docker buildx imagetools inspect --raw`.
    HttpThenBuildx,
    /// `docker buildx imagetools inspect --raw` only (slow; for comparisons).
    Buildx,
}

/// The registry client; see the module documentation.
pub struct Registry {
    agent: ureq::Agent,
    insecure: Vec<String>,
    path: QueryPath,
    /// Parsed lazily, on the first challenge that needs credentials.
    docker_config: Option<PathBuf>,
    auth: Mutex<AuthState>,
    /// Manifests fetched by digest, keyed by `domain/path@digest`.
    by_digest: Mutex<HashMap<String, RemoteManifest>>,
    http_count: AtomicUsize,
    buildx_count: AtomicUsize,
    cached_count: AtomicUsize,
    /// HTTP attempts after a transient failure.
    retries: u32,
    /// How long `docker buildx imagetools inspect` may take.
    buildx_limit: Duration,
}

thread_local! {
    /// The retries of this thread's queries, not yet taken.
    static RETRIES: std::cell::RefCell<Vec<crate::retry::Retry>> =
        const { std::cell::RefCell::new(Vec::new()) };
}

/// The retries of the queries this thread made (directly, or through
/// [`Registry::manifests`]) since the last call: for the log, the summary and the events.
pub fn take_retries() -> Vec<crate::retry::Retry> {
    RETRIES.with(|r| std::mem::take(&mut *r.borrow_mut()))
}

fn note_retry(retry: crate::retry::Retry) {
    RETRIES.with(|r| r.borrow_mut().push(retry));
}

#[derive(Default)]
struct AuthState {
    config: Option<Result<DockerConfig, String>>,
    /// The last challenge each host answered with.
    challenges: HashMap<String, Challenge>,
    /// Bearer tokens per (host, scope).
    tokens: HashMap<(String, String), (String, Instant)>,
    /// Credentials per host (`None`: none configured).
    credentials: HashMap<String, Option<Credentials>>,
}

/// Registry queries in flight at once.
pub const QUERY_THREADS: usize = 8;

/// Runs `f` over `items` on `threads` threads, keeping the order.
pub fn concurrently<T: Sync, R: Send>(
    items: &[T],
    threads: usize,
    f: impl Fn(&T) -> R + Sync,
) -> Vec<R> {
    use rayon::prelude::*;
    if items.len() <= 1 {
        return items.iter().map(f).collect();
    }
    match rayon::ThreadPoolBuilder::new()
        .num_threads(threads.clamp(1, items.len().max(1)))
        .build()
    {
        Ok(pool) => pool.install(|| items.par_iter().map(&f).collect()),
        Err(_) => items.iter().map(f).collect(),
    }
}

impl Default for Registry {
    fn default() -> Self {
        Registry::new()
    }
}

impl Registry {
    /// A client configured from the environment ([`RegistryOptions::from_env`]).
    pub fn new() -> Registry {
        Registry::with_options(RegistryOptions::from_env())
    }

    pub fn with_options(options: RegistryOptions) -> Registry {
        let tls = ureq::tls::TlsConfig::builder()
            .provider(ureq::tls::TlsProvider::NativeTls)
            .root_certs(ureq::tls::RootCerts::PlatformVerifier)
            .build();
        // No resolve timeout: ureq resolves before every request, even on a pooled
        // connection, and with a timeout it spawns a thread to do so (doubling the cost of
        // a query on loopback). The system resolver has its own timeouts.
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .user_agent(concat!("keg/", env!("CARGO_PKG_VERSION")))
            .timeout_connect(Some(options.connect_timeout))
            .timeout_per_read(Some(options.read_timeout))
            .timeout_per_write(Some(options.read_timeout))
            .max_idle_connections(64)
            .max_idle_connections_per_host(32)
            .tls_config(tls)
            .build()
            .new_agent();
        Registry {
            agent,
            insecure: options.insecure,
            path: options.path,
            docker_config: options.docker_config,
            auth: Mutex::new(AuthState::default()),
            by_digest: Mutex::new(HashMap::new()),
            http_count: AtomicUsize::new(0),
            buildx_count: AtomicUsize::new(0),
            cached_count: AtomicUsize::new(0),
            retries: 0,
            buildx_limit: options.connect_timeout + options.read_timeout,
        }
    }

    /// The same client, trying a query again up to `retries` times after a failed
    /// connection or a 5xx (none by default).
    pub fn with_retries(mut self, retries: u32) -> Registry {
        self.retries = retries;
        self
    }

    /// How many manifest queries each path answered so far.
    pub fn stats(&self) -> Stats {
        Stats {
            http: self.http_count.load(Ordering::Relaxed),
            buildx: self.buildx_count.load(Ordering::Relaxed),
            cached: self.cached_count.load(Ordering::Relaxed),
        }
    }

    /// The manifest or index a reference points at; `Ok(None)` when the registry answers 404
    /// / `MANIFEST_UNKNOWN` / `NAME_UNKNOWN`.
    pub fn manifest(&self, reference: &str) -> Result<Option<RemoteManifest>, RegistryError> {
        self.fetch(&Reference::parse(reference)?)
    }

    /// The manifest behind each of `references`: one query each, [`QUERY_THREADS`] at a
    /// time, in the order given.
    pub fn manifests(
        &self,
        references: &[String],
    ) -> Vec<Result<Option<RemoteManifest>, RegistryError>> {
        let answers = concurrently(references, QUERY_THREADS, |r| {
            (self.manifest(r), take_retries())
        });
        answers
            .into_iter()
            .map(|(answer, retries)| {
                retries.into_iter().for_each(note_retry);
                answer
            })
            .collect()
    }

    /// Image ids (config digests) behind a tag: one for an image manifest, one per member
    /// (each fetched) for an index; empty when absent.
    pub fn image_ids(&self, reference: &str) -> Result<Vec<String>, RegistryError> {
        let parsed = Reference::parse(reference)?;
        let Some(top) = self.fetch(&parsed)? else {
            return Ok(Vec::new());
        };
        if !top.is_index() {
            return Ok(top.config_digest.into_iter().collect());
        }
        let mut ids = Vec::new();
        for member in &top.manifests {
            let member = self.fetch(&parsed.with_digest(&member.digest))?;
            ids.extend(member.and_then(|m| m.config_digest));
        }
        Ok(ids)
    }

    /// Every id a local image of `reference` can have: the digest of the manifest or index
    /// it points at (an engine with the containerd image store names images so), then the
    /// config digests (a graph-driver image store's ids); empty when absent.
    pub fn image_identities(&self, reference: &str) -> Result<Vec<String>, RegistryError> {
        let Some(top) = self.manifest(reference)? else {
            return Ok(Vec::new());
        };
        let mut ids = vec![top.digest.clone()];
        ids.extend(self.image_ids(reference)?);
        Ok(ids)
    }

    /// Manifest digests behind a tag: the image members of an index (attestation manifests,
    /// whose platform is `unknown/unknown`, left out), or the manifest's own digest; empty
    /// when absent.
    pub fn manifest_digests(&self, reference: &str) -> Result<Vec<String>, RegistryError> {
        Ok(match self.manifest(reference)? {
            None => Vec::new(),
            Some(m) if m.is_index() => m
                .manifests
                .into_iter()
                .filter(|d| d.platform.as_deref() != Some("unknown/unknown"))
                .map(|d| d.digest)
                .collect(),
            Some(m) => vec![m.digest],
        })
    }

    fn fetch(&self, reference: &Reference) -> Result<Option<RemoteManifest>, RegistryError> {
        let key = reference.digest.as_ref().map(|d| reference.pinned_key(d));
        if let Some(key) = &key
            && let Some(hit) = lock(&self.by_digest).get(key)
        {
            self.cached_count.fetch_add(1, Ordering::Relaxed);
            return Ok(Some(hit.clone()));
        }
        let result = self.http_or_buildx(
            reference,
            || self.fetch_http(reference),
            inspect_with_buildx,
        );
        if let (Some(key), Ok(Some(found))) = (key, &result) {
            lock(&self.by_digest).insert(key, found.clone());
        }
        result
    }

    fn fetch_http(&self, reference: &Reference) -> Result<Option<RemoteManifest>, RegistryError> {
        let Some(raw) = self.raw_manifest_http(reference)? else {
            return Ok(None);
        };
        parse_manifest(&raw.bytes, raw.digest, raw.media_type.as_deref())
            .map(Some)
            .map_err(|reason| RegistryError::BadManifest {
                reference: reference.to_string(),
                reason,
            })
    }

    /// The manifest or index a reference points at, exactly as served (`Ok(None)` when
    /// absent), over HTTP with the buildx fallback as for [`Registry::manifest`].
    pub fn raw_manifest(&self, reference: &Reference) -> Result<Option<RawObject>, RegistryError> {
        self.http_or_buildx(
            reference,
            || self.raw_manifest_http(reference),
            raw_with_buildx,
        )
    }

    /// A registry query: `http` (retried for transient faults) unless the query path is
    /// buildx only; `buildx` (`docker buildx imagetools`, bounded by the buildx limit) when
    /// the path is buildx only, or when HTTP failed in a way worth a fallback and the path
    /// allows one. Counts which path answered.
    fn http_or_buildx<T>(
        &self,
        reference: &Reference,
        http: impl Fn() -> Result<T, RegistryError>,
        buildx: impl FnOnce(&Reference, Duration) -> Result<T, String>,
    ) -> Result<T, RegistryError> {
        let answer = match self.path {
            QueryPath::Buildx => Err(None),
            _ => crate::retry::run(
                self.retries,
                &crate::interrupt::INTERRUPTED,
                &format!("of the registry query for {reference}"),
                RegistryError::transient,
                note_retry,
                http,
            )
            .map_err(Some),
        };
        match answer {
            Ok(found) => {
                self.http_count.fetch_add(1, Ordering::Relaxed);
                Ok(found)
            }
            Err(Some(error)) if self.path == QueryPath::Http || !error.worth_fallback() => {
                Err(error)
            }
            Err(error) => {
                self.buildx_count.fetch_add(1, Ordering::Relaxed);
                buildx(reference, self.buildx_limit).map_err(|buildx| match error {
                    Some(http) => RegistryError::Fallback {
                        http: Box::new(http),
                        buildx,
                    },
                    None => RegistryError::Buildx {
                        reference: reference.to_string(),
                        message: buildx,
                    },
                })
            }
        }
    }

    /// A blob of the reference's repository (an image config), verified against its digest.
    pub fn blob(&self, reference: &Reference, digest: &str) -> Result<Vec<u8>, RegistryError> {
        let url = self.api_url(reference, &format!("blobs/{digest}"));
        let name = reference.to_string();
        let reply = crate::retry::run(
            self.retries,
            &crate::interrupt::INTERRUPTED,
            &format!("of the registry query for {name}"),
            RegistryError::transient,
            note_retry,
            || self.get(reference, &url),
        )?;
        let Some(reply) = reply else {
            return Err(RegistryError::Status {
                reference: name,
                url,
                status: 404,
                detail: format!("blob {digest} not found"),
            });
        };
        let actual = sha256_digest(&reply.body);
        if digest.starts_with("sha256:") && actual != digest {
            return Err(RegistryError::DigestMismatch {
                reference: name,
                expected: digest.to_string(),
                actual,
            });
        }
        Ok(reply.body)
    }

    fn api_url(&self, reference: &Reference, object: &str) -> String {
        let host = reference.api_host();
        let scheme = if is_insecure(host, &self.insecure) {
            "http"
        } else {
            "https"
        };
        format!("{scheme}://{host}/v2/{}/{object}", reference.path)
    }

    fn raw_manifest_http(&self, reference: &Reference) -> Result<Option<RawObject>, RegistryError> {
        let name = reference.to_string();
        let url = self.api_url(reference, &format!("manifests/{}", reference.object()));
        let Some(reply) = self.get(reference, &url)? else {
            return Ok(None);
        };
        let digest = sha256_digest(&reply.body);
        for expected in [reply.content_digest.as_deref(), reference.digest.as_deref()]
            .into_iter()
            .flatten()
        {
            if expected.starts_with("sha256:") && expected != digest {
                return Err(RegistryError::DigestMismatch {
                    reference: name,
                    expected: expected.to_string(),
                    actual: digest,
                });
            }
        }
        Ok(Some(RawObject {
            bytes: reply.body,
            digest,
            media_type: reply.content_type,
        }))
    }

    /// One authenticated GET of a registry API URL: `Ok(None)` for "not found", an error for
    /// any other failure.
    fn get(&self, reference: &Reference, url: &str) -> Result<Option<Reply>, RegistryError> {
        let name = reference.to_string();
        let host = reference.api_host();
        let scope = format!("repository:{}:pull", reference.path);
        let mut authorization = self.known_authorization(reference, &scope)?;
        let mut reply = self.send(&name, url, authorization.as_deref())?;
        if reply.status == 401 {
            // Unknown, expired or revoked: ask again, once.
            lock(&self.auth)
                .tokens
                .remove(&(host.to_string(), scope.clone()));
            let challenges = reply
                .www_authenticate
                .iter()
                .flat_map(|h| parse_challenges(h))
                .collect::<Vec<_>>();
            authorization = Some(self.answer_challenge(reference, &scope, &challenges)?);
            reply = self.send(&name, url, authorization.as_deref())?;
        }
        if reply.status == 404 || reply.not_found() {
            return Ok(None);
        }
        if reply.status == 401 || reply.status == 403 {
            return Err(RegistryError::Unauthorized {
                reference: name,
                host: host.to_string(),
                reason: format!(
                    "HTTP {} for {url}{}",
                    reply.status,
                    detail_suffix(&reply.error_detail())
                ),
            });
        }
        if !(200..300).contains(&reply.status) {
            return Err(RegistryError::Status {
                reference: name,
                url: url.to_string(),
                status: reply.status,
                detail: reply.error_detail(),
            });
        }
        Ok(Some(reply))
    }

    /// One GET; the whole body is read, so the connection goes back to the pool.
    fn send(
        &self,
        reference: &str,
        url: &str,
        authorization: Option<&str>,
    ) -> Result<Reply, RegistryError> {
        let mut request = self.agent.get(url).header("Accept", ACCEPT);
        if let Some(value) = authorization {
            request = request.header("Authorization", value);
        }
        let transport = |e: ureq::Error| RegistryError::Transport {
            reference: reference.to_string(),
            url: url.to_string(),
            transient: broken_connection(&e),
            message: e.to_string(),
        };
        let mut response = request.call().map_err(transport)?;
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(String::from)
        };
        let status = response.status().as_u16();
        let content_digest = header("docker-content-digest");
        let content_type = header("content-type");
        let www_authenticate = response
            .headers()
            .get_all("www-authenticate")
            .iter()
            .filter_map(|v| v.to_str().ok().map(String::from))
            .collect();
        let body = response
            .body_mut()
            .with_config()
            .limit(MAX_MANIFEST_BYTES)
            .read_to_vec()
            .map_err(transport)?;
        Ok(Reply {
            status,
            content_digest,
            content_type,
            www_authenticate,
            body,
        })
    }

    /// The `Authorization` to send before any challenge: a cached token, or a new one when
    /// the host is known to want tokens (saves the 401 round trip for each new repository).
    fn known_authorization(
        &self,
        reference: &Reference,
        scope: &str,
    ) -> Result<Option<String>, RegistryError> {
        let host = reference.api_host();
        let challenge = {
            let state = lock(&self.auth);
            if let Some((token, expires)) = state.tokens.get(&(host.to_string(), scope.into()))
                && Instant::now() < *expires
            {
                return Ok(Some(format!("Bearer {token}")));
            }
            match state.challenges.get(host) {
                Some(challenge) => challenge.clone(),
                None => return Ok(None),
            }
        };
        self.answer_challenge(reference, scope, &[challenge])
            .map(Some)
    }

    /// The `Authorization` answering a 401's challenges: a bearer token (anonymous or with
    /// the configured credentials) or basic credentials.
    fn answer_challenge(
        &self,
        reference: &Reference,
        scope: &str,
        challenges: &[Challenge],
    ) -> Result<String, RegistryError> {
        let host = reference.api_host();
        let unauthorized = |reason: String| RegistryError::Unauthorized {
            reference: reference.to_string(),
            host: host.to_string(),
            reason,
        };
        let pick = |scheme: &str| {
            challenges
                .iter()
                .find(|c| c.scheme.eq_ignore_ascii_case(scheme))
        };
        let Some(challenge) = pick("bearer").or_else(|| pick("basic")) else {
            let offered: Vec<&str> = challenges.iter().map(|c| c.scheme.as_str()).collect();
            return Err(unauthorized(if offered.is_empty() {
                "HTTP 401 without a WWW-Authenticate challenge".into()
            } else {
                format!("unsupported authentication scheme {}", offered.join(", "))
            }));
        };
        lock(&self.auth)
            .challenges
            .insert(host.to_string(), challenge.clone());
        let credentials = self.credentials(reference)?;
        if challenge.scheme.eq_ignore_ascii_case("basic") {
            return match credentials {
                Some(Credentials::Basic { username, password }) => {
                    Ok(format!("Basic {}", basic(&username, &password)))
                }
                Some(Credentials::IdentityToken(_)) => Err(unauthorized(
                    "basic authentication wanted, but docker's config has an identity token".into(),
                )),
                None => Err(unauthorized(
                    "basic authentication wanted, but docker's config has no credentials".into(),
                )),
            };
        }
        let (token, lifetime) = self.fetch_token(reference, challenge, scope, credentials)?;
        let expires = Instant::now() + lifetime.saturating_sub(TOKEN_MARGIN);
        lock(&self.auth).tokens.insert(
            (host.to_string(), scope.to_string()),
            (token.clone(), expires),
        );
        Ok(format!("Bearer {token}"))
    }

    /// A bearer token from the challenge's realm (the distribution token protocol; an
    /// identity token is exchanged with the OAuth2 refresh-token grant, as docker does).
    fn fetch_token(
        &self,
        reference: &Reference,
        challenge: &Challenge,
        scope: &str,
        credentials: Option<Credentials>,
    ) -> Result<(String, Duration), RegistryError> {
        let host = reference.api_host();
        let error = |reason: String| RegistryError::Unauthorized {
            reference: reference.to_string(),
            host: host.to_string(),
            reason,
        };
        let realm = challenge
            .params
            .get("realm")
            .filter(|r| r.starts_with("https://") || r.starts_with("http://"))
            .ok_or_else(|| error("bearer challenge without an http(s) realm".into()))?;
        let service = challenge.params.get("service").map(String::as_str);
        let mut form: Vec<(&str, &str)> = Vec::new();
        if let Some(service) = service {
            form.push(("service", service));
        }
        form.push(("scope", scope));
        let response = match &credentials {
            Some(Credentials::IdentityToken(refresh)) => {
                form.extend([
                    ("grant_type", "refresh_token"),
                    ("client_id", "keg"),
                    ("refresh_token", refresh.as_str()),
                ]);
                self.agent
                    .post(realm.as_str())
                    .header("Content-Type", "application/x-www-form-urlencoded")
                    .send(encode_form(&form))
            }
            Some(Credentials::Basic { username, password }) => {
                form.push(("account", username));
                let url = with_query(realm, &encode_form(&form));
                self.agent
                    .get(&url)
                    .header(
                        "Authorization",
                        format!("Basic {}", basic(username, password)),
                    )
                    .call()
            }
            None => self
                .agent
                .get(&with_query(realm, &encode_form(&form)))
                .call(),
        };
        let mut response = response.map_err(|e| error(format!("token request to {realm}: {e}")))?;
        let status = response.status().as_u16();
        let body = response
            .body_mut()
            .with_config()
            .limit(1 << 20)
            .read_to_vec()
            .map_err(|e| error(format!("token request to {realm}: {e}")))?;
        if status != 200 {
            return Err(error(format!(
                "token request to {realm}: HTTP {status}{}",
                detail_suffix(&error_detail(&body))
            )));
        }
        #[derive(Deserialize)]
        struct TokenReply {
            token: Option<String>,
            access_token: Option<String>,
            expires_in: Option<u64>,
        }
        let reply: TokenReply = serde_json::from_slice(&body)
            .map_err(|e| error(format!("token reply from {realm}: {e}")))?;
        let token = reply
            .token
            .filter(|t| !t.is_empty())
            .or(reply.access_token.filter(|t| !t.is_empty()))
            .ok_or_else(|| error(format!("token reply from {realm} has no token")))?;
        // The spec's default lifetime is 60 s.
        Ok((token, Duration::from_secs(reply.expires_in.unwrap_or(60))))
    }

    /// The reference's registry credentials from docker's config, looked up once per host.
    fn credentials(&self, reference: &Reference) -> Result<Option<Credentials>, RegistryError> {
        let host = reference.api_host().to_string();
        let mut state = lock(&self.auth);
        if let Some(known) = state.credentials.get(&host) {
            return Ok(known.clone());
        }
        let error = |reason: String| RegistryError::Credentials {
            reference: reference.to_string(),
            host: host.clone(),
            reason,
        };
        let dir = self.docker_config.clone();
        let config = state.config.get_or_insert_with(|| match dir {
            Some(dir) => DockerConfig::load(&dir),
            None => Ok(DockerConfig::default()),
        });
        let config = config.as_ref().map_err(|e| error(e.clone()))?.clone();
        // A credential helper may take a while (or prompt): don't hold the lock meanwhile.
        drop(state);
        let found = config
            .credentials(&reference.config_key(), &|helper, server| {
                run_helper(helper_command(helper), server)
            })
            .map_err(error)?;
        lock(&self.auth).credentials.insert(host, found.clone());
        Ok(found)
    }
}

/// Whether a transport error is a connection that failed or broke (worth another attempt),
/// not a timeout waiting for an answer, a TLS or a protocol error.
fn broken_connection(error: &ureq::Error) -> bool {
    use std::io::ErrorKind;
    match error {
        ureq::Error::ConnectionFailed | ureq::Error::HostNotFound => true,
        ureq::Error::Timeout(ureq::Timeout::Connect) => true,
        ureq::Error::Io(e) => matches!(
            e.kind(),
            ErrorKind::ConnectionRefused
                | ErrorKind::ConnectionReset
                | ErrorKind::ConnectionAborted
                | ErrorKind::NotConnected
                | ErrorKind::BrokenPipe
                | ErrorKind::UnexpectedEof
        ),
        _ => false,
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// One HTTP answer, body read.
struct Reply {
    status: u16,
    content_digest: Option<String>,
    content_type: Option<String>,
    www_authenticate: Vec<String>,
    body: Vec<u8>,
}

impl Reply {
    /// Whether the body's error codes say the manifest or repository does not exist.
    fn not_found(&self) -> bool {
        !(200..300).contains(&self.status)
            && error_codes(&self.body)
                .iter()
                .any(|(code, _)| code == "MANIFEST_UNKNOWN" || code == "NAME_UNKNOWN")
    }

    fn error_detail(&self) -> String {
        error_detail(&self.body)
    }
}

/// The `(code, message)` pairs of a registry error body (`{"errors":[{"code":..}]}`).
fn error_codes(body: &[u8]) -> Vec<(String, String)> {
    #[derive(Deserialize)]
    struct Errors {
        #[serde(default)]
        errors: Vec<ErrorEntry>,
    }
    #[derive(Deserialize)]
    struct ErrorEntry {
        #[serde(default)]
        code: String,
        #[serde(default)]
        message: String,
    }
    serde_json::from_slice::<Errors>(body)
        .map(|e| e.errors.into_iter().map(|e| (e.code, e.message)).collect())
        .unwrap_or_default()
}

/// A short description of an error body for messages: its error codes, or its first line.
fn error_detail(body: &[u8]) -> String {
    let codes = error_codes(body);
    if !codes.is_empty() {
        return codes
            .iter()
            .map(|(code, message)| format!("{code}: {message}"))
            .collect::<Vec<_>>()
            .join("; ");
    }
    let text = String::from_utf8_lossy(body);
    let line = text.lines().map(str::trim).find(|l| !l.is_empty());
    line.unwrap_or("").chars().take(200).collect()
}

fn sha256_digest(bytes: &[u8]) -> String {
    format!("sha256:{}", crate::git::hex(&Sha256::digest(bytes)))
}

fn basic(username: &str, password: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(format!("{username}:{password}"))
}

fn is_index_type(media_type: &str) -> bool {
    media_type == MEDIA_OCI_INDEX || media_type == MEDIA_DOCKER_LIST
}

// ---------------------------------------------------------------------------------------
// References

/// A parsed image reference, normalized as docker does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    /// The registry as named (`host[:port]`); `docker.io` for Docker Hub.
    pub domain: String,
    /// The repository path, e.g. `library/busybox`.
    pub path: String,
    pub tag: Option<String>,
    /// `algorithm:hex`; takes precedence over the tag.
    pub digest: Option<String>,
}

impl Reference {
    /// Parses `[host[:port]/]path[:tag][@digest]`: no host or a first component without `.`
    /// or `:` (other than `localhost`) means Docker Hub, where one-component names get
    /// `library/`.
    pub fn parse(text: &str) -> Result<Reference, RegistryError> {
        let invalid = |reason: &str| RegistryError::InvalidReference {
            reference: text.to_string(),
            reason: reason.to_string(),
        };
        if text.is_empty() {
            return Err(invalid("empty"));
        }
        if text.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(invalid("contains whitespace"));
        }
        let (name, digest) = match text.split_once('@') {
            Some((name, digest)) => {
                check_digest(digest).map_err(invalid)?;
                (name, Some(digest.to_string()))
            }
            None => (text, None),
        };
        let last_slash = name.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match name[last_slash..].rfind(':') {
            Some(i) => {
                let tag = &name[last_slash + i + 1..];
                check_tag(tag).map_err(invalid)?;
                (&name[..last_slash + i], Some(tag.to_string()))
            }
            None => (name, None),
        };
        let (domain, path) = match name.split_once('/') {
            Some((first, rest))
                if first.contains(['.', ':'])
                    || first == "localhost"
                    || first.chars().any(|c| c.is_ascii_uppercase()) =>
            {
                (first.to_string(), rest.to_string())
            }
            _ => (HUB_DOMAIN.to_string(), name.to_string()),
        };
        if domain.is_empty()
            || !domain
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-.:[]".contains(c))
        {
            return Err(invalid("invalid registry host"));
        }
        let domain = if domain == HUB_LEGACY_DOMAIN {
            HUB_DOMAIN.to_string()
        } else {
            domain
        };
        let path = if domain == HUB_DOMAIN && !path.contains('/') {
            format!("library/{path}")
        } else {
            path
        };
        check_path(&path).map_err(invalid)?;
        Ok(Reference {
            domain,
            path,
            tag,
            digest,
        })
    }

    /// The host the registry API is at: Hub's API host for `docker.io`.
    pub fn api_host(&self) -> &str {
        if self.domain == HUB_DOMAIN {
            DOCKER_HUB_API
        } else {
            &self.domain
        }
    }

    /// What the manifest URL names: the digest, else the tag, else `latest`.
    pub fn object(&self) -> &str {
        self.digest
            .as_deref()
            .or(self.tag.as_deref())
            .unwrap_or("latest")
    }

    /// The same repository at a digest.
    pub fn with_digest(&self, digest: &str) -> Reference {
        Reference {
            domain: self.domain.clone(),
            path: self.path.clone(),
            tag: None,
            digest: Some(digest.to_string()),
        }
    }

    fn pinned_key(&self, digest: &str) -> String {
        format!("{}/{}@{digest}", self.domain, self.path)
    }

    /// The key docker's config and credential helpers use for this registry.
    fn config_key(&self) -> String {
        if self.domain == HUB_DOMAIN {
            HUB_CONFIG_KEY.to_string()
        } else {
            self.domain.clone()
        }
    }
}

/// The fully qualified form, `domain/path:tag` (`:latest` when neither tag nor digest).
impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.domain, self.path)?;
        match (&self.tag, &self.digest) {
            (None, None) => write!(f, ":latest"),
            (tag, digest) => {
                if let Some(tag) = tag {
                    write!(f, ":{tag}")?;
                }
                if let Some(digest) = digest {
                    write!(f, "@{digest}")?;
                }
                Ok(())
            }
        }
    }
}

fn check_digest(digest: &str) -> Result<(), &'static str> {
    let (algorithm, hex) = digest.split_once(':').ok_or("digest without algorithm")?;
    let hex_ok = |len: usize| hex.len() == len && hex.bytes().all(|b| b.is_ascii_hexdigit());
    let ok = match algorithm {
        "sha256" => hex_ok(64),
        "sha512" => hex_ok(128),
        _ => false,
    };
    if ok { Ok(()) } else { Err("invalid digest") }
}

fn check_tag(tag: &str) -> Result<(), &'static str> {
    let mut chars = tag.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_');
    let rest_ok = chars.all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
    if first_ok && rest_ok && tag.len() <= 128 {
        Ok(())
    } else {
        Err("invalid tag")
    }
}

fn check_path(path: &str) -> Result<(), &'static str> {
    for component in path.split('/') {
        let alnum = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
        if component.is_empty()
            || !component.starts_with(alnum)
            || !component.ends_with(alnum)
            || !component.chars().all(|c| alnum(c) || "._-".contains(c))
        {
            return Err(if path.chars().any(|c| c.is_ascii_uppercase()) {
                "repository name must be lowercase"
            } else {
                "invalid repository name"
            });
        }
    }
    Ok(())
}

/// Whether a registry is spoken to over plain HTTP: loopback hosts, as dockerd treats them,
/// and those listed (as `host` or `host:port`).
fn is_insecure(host: &str, listed: &[String]) -> bool {
    let name = if let Some(rest) = host.strip_prefix('[') {
        rest.split(']').next().unwrap_or(rest)
    } else if host.matches(':').count() == 1 {
        host.split(':').next().unwrap_or(host)
    } else {
        host
    };
    name.eq_ignore_ascii_case("localhost")
        || name.parse::<Ipv4Addr>().is_ok_and(|ip| ip.is_loopback())
        || name.parse::<Ipv6Addr>().is_ok_and(|ip| ip.is_loopback())
        || listed.iter().any(|l| l == host || l == name)
}

// ---------------------------------------------------------------------------------------
// Manifests

/// Parses a manifest or index whose digest is known. The media type is the body's, else the
/// `Content-Type`, else inferred from the shape (OCI manifests may omit it).
pub fn parse_manifest(
    bytes: &[u8],
    digest: String,
    content_type: Option<&str>,
) -> Result<RemoteManifest, String> {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Wire {
        schema_version: Option<i64>,
        media_type: Option<String>,
        config: Option<WireDescriptor>,
        manifests: Option<Vec<WireDescriptor>>,
    }
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct WireDescriptor {
        #[serde(default)]
        media_type: String,
        digest: String,
        platform: Option<WirePlatform>,
    }
    #[derive(Deserialize)]
    struct WirePlatform {
        os: String,
        architecture: String,
        variant: Option<String>,
    }
    let wire: Wire = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
    let header_type = content_type
        .map(|t| t.split(';').next().unwrap_or(t).trim())
        .filter(|t| t.starts_with("application/vnd."));
    let media_type = match (wire.media_type, header_type) {
        (Some(t), _) if !t.is_empty() => t,
        (_, Some(t)) => t.to_string(),
        _ if wire.manifests.is_some() => MEDIA_OCI_INDEX.to_string(),
        _ if wire.config.is_some() => MEDIA_OCI_MANIFEST.to_string(),
        _ => return Err("no media type, config or manifests".into()),
    };
    if is_index_type(&media_type) {
        if wire.manifests.is_none() {
            return Err(format!("{media_type} without \"manifests\""));
        }
    } else if (media_type == MEDIA_OCI_MANIFEST || media_type == MEDIA_DOCKER_MANIFEST)
        && wire.config.is_none()
    {
        return Err(format!("{media_type} without \"config\""));
    }
    if wire.schema_version.is_some_and(|v| v != 2) && wire.config.is_some() {
        return Err(format!(
            "unsupported schemaVersion {}",
            wire.schema_version.unwrap_or_default()
        ));
    }
    let manifests = if is_index_type(&media_type) {
        wire.manifests
            .unwrap_or_default()
            .into_iter()
            .map(|d| RemoteDescriptor {
                digest: d.digest,
                media_type: d.media_type,
                platform: d
                    .platform
                    .map(|p| match p.variant.filter(|v| !v.is_empty()) {
                        Some(variant) => format!("{}/{}/{variant}", p.os, p.architecture),
                        None => format!("{}/{}", p.os, p.architecture),
                    }),
            })
            .collect()
    } else {
        Vec::new()
    };
    let config_digest = if is_index_type(&media_type) {
        None
    } else {
        wire.config.map(|c| c.digest)
    };
    Ok(RemoteManifest {
        digest,
        media_type,
        config_digest,
        manifests,
    })
}

/// The fallback: `docker buildx imagetools inspect --raw REF`, which prints the manifest's
/// bytes exactly as served (no newline added: checked against the registry's digest in the
/// tests), so their sha256 is the digest.
fn inspect_with_buildx(
    reference: &Reference,
    limit: Duration,
) -> Result<Option<RemoteManifest>, String> {
    let Some(raw) = raw_with_buildx(reference, limit)? else {
        return Ok(None);
    };
    parse_manifest(&raw.bytes, raw.digest, None)
        .map(Some)
        .map_err(|e| format!("invalid manifest: {e}"))
}

/// The bytes `docker buildx imagetools inspect --raw REF` prints, checked against a pinned
/// digest; the command is bounded by `limit` and stopped by Ctrl-C.
fn raw_with_buildx(reference: &Reference, limit: Duration) -> Result<Option<RawObject>, String> {
    let name = reference.to_string();
    let mut command = Command::new("docker");
    command.args(["buildx", "imagetools", "inspect", "--raw", &name]);
    let output = crate::process::output_with_input(
        command,
        "docker",
        None,
        &crate::interrupt::INTERRUPTED,
        Some(limit),
    )?;
    if output.code != 0 {
        let stderr = &output.stderr;
        if stderr.contains(": not found") || stderr.contains("MANIFEST_UNKNOWN") {
            return Ok(None);
        }
        let last = stderr.lines().rev().find(|l| !l.trim().is_empty());
        return Err(last
            .unwrap_or("failed without a message")
            .trim()
            .to_string());
    }
    let digest = sha256_digest(&output.stdout_bytes);
    if let Some(expected) = &reference.digest
        && expected.starts_with("sha256:")
        && *expected != digest
    {
        return Err(format!(
            "digest mismatch: expected {expected}, got {digest}"
        ));
    }
    Ok(Some(RawObject {
        bytes: output.stdout_bytes,
        digest,
        media_type: None,
    }))
}

// ---------------------------------------------------------------------------------------
// Authentication

/// One challenge of a `WWW-Authenticate` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    /// `Bearer`, `Basic`, ... as sent.
    pub scheme: String,
    /// Parameter names lowercased.
    pub params: BTreeMap<String, String>,
}

/// Parses a `WWW-Authenticate` value: one or more `scheme k=v, k="quoted, \"value\""`
/// challenges (RFC 7235), e.g. `Bearer realm="https://..",service="..",scope=".."`.
pub fn parse_challenges(header: &str) -> Vec<Challenge> {
    let mut challenges: Vec<Challenge> = Vec::new();
    let bytes = header.as_bytes();
    let mut i = 0;
    let skip = |i: &mut usize, set: &[u8]| {
        while *i < bytes.len() && set.contains(&bytes[*i]) {
            *i += 1;
        }
    };
    let token_end = |mut i: usize| {
        while i < bytes.len() && !b" \t,=\"".contains(&bytes[i]) {
            i += 1;
        }
        i
    };
    loop {
        skip(&mut i, b" \t,");
        if i >= bytes.len() {
            break;
        }
        let end = token_end(i);
        if end == i {
            // A stray character: skip it.
            i += 1;
            continue;
        }
        let word = &header[i..end];
        let mut j = end;
        skip(&mut j, b" \t");
        let after_equals = |mut k: usize| {
            skip(&mut k, b" \t");
            k
        };
        if j < bytes.len() && bytes[j] == b'=' && !challenges.is_empty() {
            let mut k = j;
            skip(&mut k, b"=");
            let k = after_equals(k);
            if k >= bytes.len() || bytes[k] == b',' || bytes[j + 1] == b'=' {
                // A `token68` credential ("abc=="): no parameter; skip it.
                i = k;
                continue;
            }
        }
        let is_param = j < bytes.len() && bytes[j] == b'=' && !challenges.is_empty();
        if !is_param {
            challenges.push(Challenge {
                scheme: word.to_string(),
                params: BTreeMap::new(),
            });
            i = end;
            continue;
        }
        // key = value
        i = j + 1;
        skip(&mut i, b" \t");
        let value = if bytes[i] == b'"' {
            let mut value = String::new();
            let mut chars = header[i + 1..].char_indices();
            let mut consumed = header.len() - i - 1;
            while let Some((k, c)) = chars.next() {
                match c {
                    '"' => {
                        consumed = k + 1;
                        break;
                    }
                    '\\' => {
                        if let Some((_, escaped)) = chars.next() {
                            value.push(escaped);
                        }
                    }
                    c => value.push(c),
                }
            }
            i = i + 1 + consumed;
            value
        } else {
            let end = token_end(i);
            let value = header[i..end].to_string();
            i = end;
            value
        };
        if let Some(current) = challenges.last_mut() {
            current.params.insert(word.to_ascii_lowercase(), value);
        }
    }
    challenges
}

/// Registry credentials from docker's config.
#[derive(Clone, PartialEq, Eq)]
pub enum Credentials {
    Basic {
        username: String,
        password: String,
    },
    /// An OAuth2 refresh token (`identitytoken`, or a helper's `<token>` user).
    IdentityToken(String),
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Credentials::Basic { username, .. } => write!(f, "Basic({username}, ***)"),
            Credentials::IdentityToken(_) => write!(f, "IdentityToken(***)"),
        }
    }
}

/// Runs credential helper `name` for `server` (see [`run_helper`]).
pub type HelperRunner<'a> = dyn Fn(&str, &str) -> Result<Option<Credentials>, String> + 'a;

/// The parts of docker's `config.json` that name credentials.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct DockerConfig {
    #[serde(default)]
    auths: BTreeMap<String, AuthEntry>,
    #[serde(default, rename = "credHelpers")]
    cred_helpers: BTreeMap<String, String>,
    #[serde(default, rename = "credsStore")]
    creds_store: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
struct AuthEntry {
    auth: Option<String>,
    username: Option<String>,
    password: Option<String>,
    identitytoken: Option<String>,
}

impl DockerConfig {
    /// Reads `DIR/config.json`; a missing file is an empty config.
    pub fn load(dir: &Path) -> Result<DockerConfig, String> {
        let path = dir.join("config.json");
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map_err(|e| format!("reading {}: {e}", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(DockerConfig::default()),
            Err(e) => Err(format!("reading {}: {e}", path.display())),
        }
    }

    /// The credentials for a registry (`host[:port]`, or Hub's config key), as docker finds
    /// them: its `credHelpers` entry, else `credsStore`, else `auths`. `run_helper(name,
    /// server)` asks `docker-credential-<name>`.
    pub fn credentials(
        &self,
        key: &str,
        run_helper: &HelperRunner<'_>,
    ) -> Result<Option<Credentials>, String> {
        let wanted = config_host(key);
        let helper = self
            .cred_helpers
            .iter()
            .find(|(k, _)| config_host(k) == wanted)
            .map(|(_, v)| v)
            .or(self.creds_store.as_ref())
            .filter(|h| !h.is_empty());
        if let Some(helper) = helper
            && let Some(found) = run_helper(helper, key)?
        {
            return Ok(Some(found));
        }
        let Some(entry) = self
            .auths
            .iter()
            .find(|(k, _)| config_host(k) == wanted)
            .map(|(_, v)| v)
        else {
            return Ok(None);
        };
        if let Some(token) = entry.identitytoken.as_ref().filter(|t| !t.is_empty()) {
            return Ok(Some(Credentials::IdentityToken(token.clone())));
        }
        if let Some(auth) = entry.auth.as_ref().filter(|a| !a.is_empty()) {
            let decoded = base64::engine::general_purpose::STANDARD_PAD_INDIFFERENT
                .decode(auth.trim())
                .map_err(|e| format!("auths.{key}.auth is not base64: {e}"))?;
            let decoded =
                String::from_utf8(decoded).map_err(|_| format!("auths.{key}.auth is not UTF-8"))?;
            let (username, password) = decoded
                .split_once(':')
                .ok_or_else(|| format!("auths.{key}.auth is not user:password"))?;
            return Ok(Some(Credentials::Basic {
                username: username.to_string(),
                password: password.to_string(),
            }));
        }
        match (&entry.username, &entry.password) {
            (Some(username), Some(password)) if !username.is_empty() => {
                Ok(Some(Credentials::Basic {
                    username: username.clone(),
                    password: password.clone(),
                }))
            }
            _ => Ok(None),
        }
    }
}

/// A config key as a host: `https://host/v1/` -> `host`; Hub's names -> one name.
fn config_host(key: &str) -> &str {
    let key = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
        .unwrap_or(key);
    let host = key.split('/').next().unwrap_or(key);
    if host == HUB_DOMAIN || host == HUB_LEGACY_DOMAIN || host == DOCKER_HUB_API {
        HUB_DOMAIN
    } else {
        host
    }
}

fn helper_command(helper: &str) -> Command {
    let mut command = Command::new(format!("docker-credential-{helper}"));
    command.arg("get");
    command
}

/// Runs a credential helper's `get` (`command`) with `server` on stdin; `Ok(None)` when it
/// has no credentials for it.
pub fn run_helper(command: Command, server: &str) -> Result<Option<Credentials>, String> {
    let program = command.get_program().to_string_lossy().into_owned();
    let output = crate::process::output_with_input(
        command,
        &program,
        Some(server.as_bytes()),
        &crate::interrupt::INTERRUPTED,
        Some(crate::process::QUERY_LIMIT),
    )
    .map_err(|e| format!("running {program}: {e}"))?;
    let stdout = &output.stdout;
    if output.code != 0 {
        let stderr = &output.stderr;
        if stdout.contains("credentials not found") || stderr.contains("credentials not found") {
            return Ok(None);
        }
        let message = format!("{stdout} {stderr}");
        return Err(format!(
            "{program} get failed (exit status {}): {}",
            output.code,
            message.trim()
        ));
    }
    #[derive(Deserialize)]
    #[serde(rename_all = "PascalCase")]
    struct HelperReply {
        #[serde(default)]
        username: String,
        #[serde(default)]
        secret: String,
    }
    let reply: HelperReply = serde_json::from_str(stdout)
        .map_err(|e| format!("{program} get printed invalid JSON: {e}"))?;
    Ok(match (reply.username.as_str(), reply.secret) {
        (_, secret) if secret.is_empty() => None,
        ("<token>", secret) => Some(Credentials::IdentityToken(secret)),
        (username, secret) => Some(Credentials::Basic {
            username: username.to_string(),
            password: secret,
        }),
    })
}

fn encode_form(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", percent_encode(k), percent_encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn with_query(url: &str, query: &str) -> String {
    let separator = if url.contains('?') { '&' } else { '?' };
    format!("{url}{separator}{query}")
}

#[cfg(test)]
mod tests;

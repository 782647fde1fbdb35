//! Table tests for references, challenges, manifests and docker's config; the HTTP flows
//! (tokens, basic auth, not found, digests) against an in-process fake registry on loopback.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;

use super::*;

const D1: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
const D2: &str = "sha256:2222222222222222222222222222222222222222222222222222222222222222";
const D3: &str = "sha256:3333333333333333333333333333333333333333333333333333333333333333";

#[test]
fn references_parse_like_docker() {
    // input -> "domain path tag digest object" ("-": none); D1, D2 stand for digests.
    let table = [
        ("busybox", "docker.io library/busybox - - latest"),
        ("busybox:1.36", "docker.io library/busybox 1.36 - 1.36"),
        ("tianon/true", "docker.io tianon/true - - latest"),
        ("docker.io/busybox", "docker.io library/busybox - - latest"),
        (
            "index.docker.io/library/busybox:x",
            "docker.io library/busybox x - x",
        ),
        ("docker.io/a/b/c:t", "docker.io a/b/c t - t"),
        ("127.0.0.1:5000/bb", "127.0.0.1:5000 bb - - latest"),
        ("127.0.0.1:5000/a/bb:1", "127.0.0.1:5000 a/bb 1 - 1"),
        ("localhost/bb:2", "localhost bb 2 - 2"),
        (
            "localhost:5000/x_y.z-w/bb",
            "localhost:5000 x_y.z-w/bb - - latest",
        ),
        ("ghcr.io/o/r:v1.2.3", "ghcr.io o/r v1.2.3 - v1.2.3"),
        ("[::1]:5000/bb:1", "[::1]:5000 bb 1 - 1"),
        ("Registry/bb", "Registry bb - - latest"),
        ("busybox@D1", "docker.io library/busybox - D1 D1"),
        ("h.io/bb:1@D2", "h.io bb 1 D2 D2"),
    ];
    let digests = |text: &str| text.replace("D1", D1).replace("D2", D2);
    for (input, want) in table {
        let input = digests(input);
        let r = Reference::parse(&input).unwrap_or_else(|e| panic!("{input}: {e}"));
        let got = format!(
            "{} {} {} {} {}",
            r.domain,
            r.path,
            r.tag.as_deref().unwrap_or("-"),
            r.digest.as_deref().unwrap_or("-"),
            r.object()
        );
        assert_eq!(got, digests(want), "{input}");
        let host = if r.domain == "docker.io" {
            DOCKER_HUB_API
        } else {
            &r.domain
        };
        assert_eq!(r.api_host(), host, "{input}");
    }
}

#[test]
fn references_display_fully_qualified() {
    let table = [
        ("busybox", "docker.io/library/busybox:latest"),
        ("127.0.0.1:5000/a/bb:1", "127.0.0.1:5000/a/bb:1"),
        (
            &format!("bb@{D1}") as &str,
            &format!("docker.io/library/bb@{D1}"),
        ),
        (&format!("h.io/bb:1@{D1}"), &format!("h.io/bb:1@{D1}")),
    ];
    for (input, shown) in table {
        assert_eq!(
            Reference::parse(input).unwrap().to_string(),
            shown,
            "{input}"
        );
    }
    let pinned = Reference::parse("h.io/bb:1").unwrap().with_digest(D2);
    assert_eq!(pinned.to_string(), format!("h.io/bb@{D2}"));
}

#[test]
fn invalid_references_are_rejected() {
    let table = [
        ("", "empty"),
        ("bb:", "invalid tag"),
        ("bb:-x", "invalid tag"),
        ("bb@sha256:abc", "invalid digest"),
        ("bb@md5:0123", "invalid digest"),
        ("bb@1111", "digest without algorithm"),
        ("Busybox", "must be lowercase"),
        ("h.io/Bb", "must be lowercase"),
        ("h.io/a//b", "invalid repository name"),
        ("h.io/-a", "invalid repository name"),
        ("h.io/", "invalid repository name"),
        ("a b", "whitespace"),
        ("h_x.io/a", "invalid registry host"),
    ];
    for (input, reason) in table {
        match Reference::parse(input) {
            Err(e @ RegistryError::InvalidReference { .. }) => {
                assert!(e.to_string().contains(reason), "{input}: {e}")
            }
            other => panic!("{input}: {other:?}"),
        }
    }
}

#[test]
fn loopback_and_listed_registries_use_plain_http() {
    let listed = vec!["reg.lan:5000".to_string(), "other.lan".to_string()];
    let table = [
        ("localhost", true),
        ("localhost:5000", true),
        ("LOCALHOST:5000", true),
        ("127.0.0.1:5000", true),
        ("127.1.2.3", true),
        ("[::1]:5000", true),
        ("::1", true),
        ("reg.lan:5000", true),
        ("reg.lan", false),
        ("other.lan:443", true),
        ("128.0.0.1:5000", false),
        ("10.0.0.1:5000", false),
        ("localhost.example", false),
        (DOCKER_HUB_API, false),
    ];
    for (host, plain) in table {
        assert_eq!(is_insecure(host, &listed), plain, "{host}");
    }
}

#[test]
fn www_authenticate_challenges_parse() {
    let params = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    let bearer = Challenge {
        scheme: "Bearer".into(),
        params: params(&[
            ("realm", "https://auth.example/token"),
            ("service", "registry.example"),
            ("scope", "repository:library/busybox:pull"),
        ]),
    };
    let table: Vec<(&str, Vec<Challenge>)> = vec![
        (
            r#"Bearer realm="https://auth.example/token",service="registry.example",scope="repository:library/busybox:pull""#,
            vec![bearer.clone()],
        ),
        (
            r#"Bearer realm = "https://auth.example/token" , Service=registry.example, scope="repository:library/busybox:pull""#,
            vec![bearer.clone()],
        ),
        (
            r#"Basic realm="Registry Realm""#,
            vec![Challenge {
                scheme: "Basic".into(),
                params: params(&[("realm", "Registry Realm")]),
            }],
        ),
        (
            r#"Basic realm="a, \"b\"", Bearer realm="https://t/x",scope="s:a,b""#,
            vec![
                Challenge {
                    scheme: "Basic".into(),
                    params: params(&[("realm", r#"a, "b""#)]),
                },
                Challenge {
                    scheme: "Bearer".into(),
                    params: params(&[("realm", "https://t/x"), ("scope", "s:a,b")]),
                },
            ],
        ),
        (
            "Negotiate abc==, Basic",
            vec![
                Challenge {
                    scheme: "Negotiate".into(),
                    params: BTreeMap::new(),
                },
                Challenge {
                    scheme: "Basic".into(),
                    params: BTreeMap::new(),
                },
            ],
        ),
        ("", vec![]),
        (
            "Bearer realm=, Basic",
            vec![
                Challenge {
                    scheme: "Bearer".into(),
                    params: BTreeMap::new(),
                },
                Challenge {
                    scheme: "Basic".into(),
                    params: BTreeMap::new(),
                },
            ],
        ),
        (r#"Bearer realm="unterminated"#, {
            let mut c = Challenge {
                scheme: "Bearer".into(),
                params: BTreeMap::new(),
            };
            c.params.insert("realm".into(), "unterminated".into());
            vec![c]
        }),
    ];
    for (header, want) in table {
        assert_eq!(parse_challenges(header), want, "{header}");
    }
}

fn docker_manifest(config: &str) -> String {
    format!(
        r#"{{"schemaVersion":2,"mediaType":"{MEDIA_DOCKER_MANIFEST}","config":{{"mediaType":"application/vnd.docker.container.image.v1+json","size":1,"digest":"{config}"}},"layers":[]}}"#
    )
}

fn oci_index(members: &[(&str, &str)]) -> String {
    let members: Vec<String> = members
        .iter()
        .map(|(digest, platform)| {
            let mut parts = platform.split('/');
            let (os, arch, variant) = (parts.next(), parts.next(), parts.next());
            let variant = variant.map_or(String::new(), |v| format!(r#","variant":"{v}""#));
            format!(
                r#"{{"mediaType":"{MEDIA_OCI_MANIFEST}","digest":"{digest}","size":1,"platform":{{"os":"{}","architecture":"{}"{variant}}}}}"#,
                os.unwrap(),
                arch.unwrap()
            )
        })
        .collect();
    format!(
        r#"{{"schemaVersion":2,"mediaType":"{MEDIA_OCI_INDEX}","manifests":[{}]}}"#,
        members.join(",")
    )
}

#[test]
fn manifests_and_indexes_parse() {
    let m = parse_manifest(docker_manifest(D1).as_bytes(), D3.into(), None).unwrap();
    assert_eq!(
        m,
        RemoteManifest {
            digest: D3.into(),
            media_type: MEDIA_DOCKER_MANIFEST.into(),
            config_digest: Some(D1.into()),
            manifests: vec![],
        }
    );
    assert!(!m.is_index());

    let index = oci_index(&[(D1, "linux/amd64"), (D2, "linux/arm/v7")]);
    let m = parse_manifest(index.as_bytes(), D3.into(), None).unwrap();
    assert!(m.is_index());
    assert_eq!(m.config_digest, None);
    assert_eq!(
        m.manifests,
        vec![
            RemoteDescriptor {
                digest: D1.into(),
                media_type: MEDIA_OCI_MANIFEST.into(),
                platform: Some("linux/amd64".into()),
            },
            RemoteDescriptor {
                digest: D2.into(),
                media_type: MEDIA_OCI_MANIFEST.into(),
                platform: Some("linux/arm/v7".into()),
            },
        ]
    );

    // A Docker manifest list; a member without a platform.
    let list = format!(
        r#"{{"schemaVersion":2,"mediaType":"{MEDIA_DOCKER_LIST}","manifests":[{{"mediaType":"{MEDIA_DOCKER_MANIFEST}","digest":"{D1}","size":3}}]}}"#
    );
    let m = parse_manifest(list.as_bytes(), D3.into(), None).unwrap();
    assert!(m.is_index());
    assert_eq!(m.manifests[0].platform, None);

    // OCI may omit mediaType: then the Content-Type, else the shape, says.
    let bare_manifest =
        format!(r#"{{"schemaVersion":2,"config":{{"digest":"{D1}"}},"layers":[]}}"#);
    let bare_index = format!(r#"{{"schemaVersion":2,"manifests":[{{"digest":"{D1}"}}]}}"#);
    let table = [
        (&bare_manifest, None, MEDIA_OCI_MANIFEST),
        (
            &bare_manifest,
            Some("application/vnd.docker.distribution.manifest.v2+json; charset=utf-8"),
            MEDIA_DOCKER_MANIFEST,
        ),
        (&bare_manifest, Some("application/json"), MEDIA_OCI_MANIFEST),
        (&bare_index, None, MEDIA_OCI_INDEX),
        (&bare_index, Some(MEDIA_DOCKER_LIST), MEDIA_DOCKER_LIST),
    ];
    for (body, content_type, media_type) in table {
        let m = parse_manifest(body.as_bytes(), D3.into(), content_type).unwrap();
        assert_eq!(m.media_type, media_type, "{body} {content_type:?}");
    }
    let m = parse_manifest(bare_manifest.as_bytes(), D3.into(), None).unwrap();
    assert_eq!(m.config_digest.as_deref(), Some(D1));

    let bad = [
        ("not json", "expected"),
        ("{}", "no media type"),
        (
            &format!(r#"{{"mediaType":"{MEDIA_OCI_INDEX}"}}"#) as &str,
            "without \"manifests\"",
        ),
        (
            &format!(r#"{{"mediaType":"{MEDIA_DOCKER_MANIFEST}","layers":[]}}"#),
            "without \"config\"",
        ),
        (
            &format!(r#"{{"schemaVersion":3,"config":{{"digest":"{D1}"}}}}"#),
            "schemaVersion 3",
        ),
    ];
    for (body, reason) in bad {
        let e = parse_manifest(body.as_bytes(), D3.into(), None).unwrap_err();
        assert!(e.contains(reason), "{body}: {e}");
    }
}

#[test]
fn registry_error_bodies_are_summarized() {
    let body =
        br#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown","detail":{}}]}"#;
    assert_eq!(error_detail(body), "MANIFEST_UNKNOWN: manifest unknown");
    assert_eq!(
        error_detail(b"\n  upstream timed out\nmore"),
        "upstream timed out"
    );
    assert_eq!(error_detail(b""), "");
}

fn config_dir(json: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("config.json"), json).unwrap();
    dir
}

fn b64(text: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(text)
}

fn basic_creds(user: &str, pass: &str) -> Option<Credentials> {
    Some(Credentials::Basic {
        username: user.into(),
        password: pass.into(),
    })
}

#[test]
fn docker_config_credentials() {
    let dir = config_dir(&format!(
        r#"{{
          "auths": {{
            "https://index.docker.io/v1/": {{"auth": "{}"}},
            "reg.example:5000": {{"auth": "{}"}},
            "http://plain.example/v2/": {{"username": "u2", "password": "p2"}},
            "token.example": {{"identitytoken": "refresh"}},
            "empty.example": {{}},
            "broken.example": {{"auth": "!!"}}
          }},
          "credHelpers": {{"helped.example": "fake"}},
          "HttpHeaders": {{"X": "y"}}
        }}"#,
        b64("hubuser:hub:pass"),
        b64("u1:p1"),
    ));
    let config = DockerConfig::load(dir.path()).unwrap();
    let asked = Mutex::new(Vec::new());
    let helper = |name: &str, server: &str| {
        lock(&asked).push(format!("{name} {server}"));
        Ok(if server == "helped.example" {
            basic_creds("h", "s")
        } else {
            None
        })
    };
    let table = [
        (HUB_CONFIG_KEY, basic_creds("hubuser", "hub:pass")),
        ("reg.example:5000", basic_creds("u1", "p1")),
        ("reg.example", None),
        ("plain.example", basic_creds("u2", "p2")),
        (
            "token.example",
            Some(Credentials::IdentityToken("refresh".into())),
        ),
        ("empty.example", None),
        ("helped.example", basic_creds("h", "s")),
        ("unknown.example", None),
    ];
    for (key, want) in table {
        assert_eq!(config.credentials(key, &helper).unwrap(), want, "{key}");
    }
    assert_eq!(*lock(&asked), vec!["fake helped.example"]);
    let e = config.credentials("broken.example", &helper).unwrap_err();
    assert!(e.contains("not base64"), "{e}");

    // credsStore answers for every registry; `auths` when it has nothing.
    let dir = config_dir(&format!(
        r#"{{"credsStore": "store", "auths": {{"reg.example": {{"auth": "{}"}}}}}}"#,
        b64("a:b")
    ));
    let config = DockerConfig::load(dir.path()).unwrap();
    let store = |name: &str, server: &str| {
        assert_eq!(name, "store");
        Ok((server == HUB_CONFIG_KEY).then(|| Credentials::IdentityToken("t".into())))
    };
    assert_eq!(
        config.credentials(HUB_CONFIG_KEY, &store).unwrap(),
        Some(Credentials::IdentityToken("t".into()))
    );
    assert_eq!(
        config.credentials("reg.example", &store).unwrap(),
        basic_creds("a", "b")
    );
    let failing = |_: &str, _: &str| Err("helper broke".to_string());
    assert_eq!(
        config.credentials("reg.example", &failing).unwrap_err(),
        "helper broke"
    );

    // No file: no credentials. A broken file: an error naming it.
    let empty = tempfile::tempdir().unwrap();
    let config = DockerConfig::load(empty.path()).unwrap();
    assert_eq!(config.credentials("reg.example", &failing).unwrap(), None);
    let broken = config_dir("{");
    let e = DockerConfig::load(broken.path()).unwrap_err();
    assert!(e.contains("config.json"), "{e}");
}

#[test]
fn credential_helpers_are_run_with_the_server_on_stdin() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("docker-credential-fake");
    std::fs::write(
        &script,
        r#"read -r server
case "$1 $server" in
  "get reg.example:5000") echo '{"ServerURL":"reg.example:5000","Username":"u","Secret":"s"}' ;;
  "get token.example") echo '{"Username":"<token>","Secret":"refresh"}' ;;
  "get broken.example") echo 'not json' ;;
  "get failing.example") echo 'boom' >&2; exit 3 ;;
  *) echo 'credentials not found in native keychain'; exit 1 ;;
esac
"#,
    )
    .unwrap();
    // Run through `sh`: executing a file just written races with other tests' forks (ETXTBSY).
    let helper = || {
        let mut command = Command::new("sh");
        command.arg(&script).arg("get");
        command
    };
    assert_eq!(
        run_helper(helper(), "reg.example:5000").unwrap(),
        basic_creds("u", "s")
    );
    assert_eq!(
        run_helper(helper(), "token.example").unwrap(),
        Some(Credentials::IdentityToken("refresh".into()))
    );
    assert_eq!(run_helper(helper(), "other.example").unwrap(), None);
    let e = run_helper(helper(), "broken.example").unwrap_err();
    assert!(e.contains("invalid JSON"), "{e}");
    let e = run_helper(helper(), "failing.example").unwrap_err();
    assert!(e.contains("boom"), "{e}");
    let e = run_helper(helper_command("keg-test-no-such-helper"), "x").unwrap_err();
    assert!(
        e.contains("docker-credential-keg-test-no-such-helper"),
        "{e}"
    );
}

#[test]
fn credentials_never_show_in_debug_output() {
    let shown = format!(
        "{:?} {:?}",
        basic_creds("user", "hunter2"),
        Credentials::IdentityToken("refresh-secret".into())
    );
    assert!(
        !shown.contains("hunter2") && !shown.contains("refresh-secret"),
        "{shown}"
    );
}

#[test]
fn registry_is_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<Registry>();
}

// ---------------------------------------------------------------------------------------
// A fake registry: HTTP/1.1 with keep-alive on a loopback port, one thread per connection,
// answering from a closure and logging every request.

struct FakeRequest {
    method: String,
    target: String,
    headers: HashMap<String, String>,
    body: String,
}

impl FakeRequest {
    fn authorization(&self) -> &str {
        self.headers
            .get("authorization")
            .map_or("-", String::as_str)
    }
}

struct FakeResponse {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

fn respond(status: u16, headers: &[(&str, &str)], body: impl Into<Vec<u8>>) -> FakeResponse {
    FakeResponse {
        status,
        headers: headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        body: body.into(),
    }
}

type Handler = dyn Fn(&FakeRequest) -> FakeResponse + Send + Sync;

struct Fake {
    addr: String,
    /// `METHOD target authorization` per request.
    log: Arc<Mutex<Vec<String>>>,
    connections: Arc<AtomicUsize>,
}

impl Fake {
    fn start(
        handler: impl Fn(&Fake, &FakeRequest) -> FakeResponse + Send + Sync + 'static,
    ) -> Fake {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let fake = Fake {
            addr: addr.clone(),
            log: Arc::default(),
            connections: Arc::default(),
        };
        let shared = Fake {
            addr,
            log: fake.log.clone(),
            connections: fake.connections.clone(),
        };
        let shared = Arc::new(shared);
        let handler: Arc<Handler> = {
            let shared = shared.clone();
            Arc::new(move |request| handler(&shared, request))
        };
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { break };
                shared.connections.fetch_add(1, Ordering::SeqCst);
                let (handler, log) = (handler.clone(), shared.log.clone());
                std::thread::spawn(move || serve_connection(stream, &*handler, &log));
            }
        });
        fake
    }

    fn log(&self) -> Vec<String> {
        lock(&self.log).clone()
    }

    fn registry(&self, docker_config: Option<&Path>) -> Registry {
        Registry::with_options(RegistryOptions {
            docker_config: docker_config.map(Path::to_path_buf),
            insecure: Vec::new(),
            path: QueryPath::Http,
            connect_timeout: Duration::from_secs(5),
            read_timeout: Duration::from_secs(5),
        })
    }
}

fn serve_connection(stream: TcpStream, handler: &Handler, log: &Mutex<Vec<String>>) {
    let mut writer = stream.try_clone().unwrap();
    let mut reader = BufReader::new(stream);
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let mut parts = line.split_whitespace();
        let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
        let mut headers = HashMap::new();
        loop {
            let mut header = String::new();
            if reader.read_line(&mut header).unwrap_or(0) == 0 {
                return;
            }
            let header = header.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((k, v)) = header.split_once(':') {
                headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
            }
        }
        let length = headers
            .get("content-length")
            .and_then(|l| l.parse().ok())
            .unwrap_or(0);
        let mut body = vec![0; length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let request = FakeRequest {
            method: method.into(),
            target: target.into(),
            headers,
            body: String::from_utf8_lossy(&body).into_owned(),
        };
        lock(log).push(format!(
            "{} {} {}",
            request.method,
            request.target,
            request.authorization()
        ));
        let response = handler(&request);
        let mut head = format!(
            "HTTP/1.1 {} Fake\r\nContent-Length: {}\r\n",
            response.status,
            response.body.len()
        );
        for (k, v) in &response.headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str("\r\n");
        // One write: head and body in two would meet Nagle and delayed ACKs (40 ms each).
        let mut bytes = head.into_bytes();
        bytes.extend_from_slice(&response.body);
        if writer.write_all(&bytes).is_err() {
            return;
        }
    }
}

fn manifest_response(body: &str) -> FakeResponse {
    let digest = sha256_digest(body.as_bytes());
    respond(
        200,
        &[
            ("Content-Type", MEDIA_DOCKER_MANIFEST),
            ("Docker-Content-Digest", &digest),
        ],
        body,
    )
}

const UNKNOWN: &str = r#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}"#;

#[test]
fn bearer_tokens_are_fetched_with_credentials_and_cached_per_scope() {
    let manifest = docker_manifest(D1);
    let body = manifest.clone();
    let fake = Fake::start(move |fake, request| {
        if request.target.starts_with("/token?") {
            assert_eq!(request.authorization(), format!("Basic {}", b64("u:p")));
            let token = if request.target.contains("scope=repository%3Aa%2Fone%3Apull") {
                "T-one"
            } else {
                "T-two"
            };
            return respond(
                200,
                &[],
                format!(r#"{{"token":"{token}","expires_in":300}}"#),
            );
        }
        let wanted = if request.target.starts_with("/v2/a/one/") {
            "Bearer T-one"
        } else {
            "Bearer T-two"
        };
        if request.authorization() != wanted {
            let challenge = format!(
                r#"Bearer realm="http://{}/token",service="fake",scope="repository:x:pull""#,
                fake.addr
            );
            return respond(401, &[("WWW-Authenticate", &challenge)], UNKNOWN);
        }
        match request.target.as_str() {
            "/v2/a/one/manifests/1" | "/v2/a/two/manifests/1" => manifest_response(&body),
            _ => respond(404, &[], UNKNOWN),
        }
    });
    let config = config_dir(&format!(
        r#"{{"auths":{{"{}":{{"auth":"{}"}}}}}}"#,
        fake.addr,
        b64("u:p")
    ));
    let registry = fake.registry(Some(config.path()));
    let one = format!("{}/a/one:1", fake.addr);
    let m = registry.manifest(&one).unwrap().unwrap();
    assert_eq!(m.digest, sha256_digest(manifest.as_bytes()));
    assert_eq!(m.config_digest.as_deref(), Some(D1));
    assert_eq!(registry.image_ids(&one).unwrap(), vec![D1.to_string()]);
    assert_eq!(
        registry.manifest_digests(&one).unwrap(),
        vec![m.digest.clone()]
    );
    // Another repository: the host's challenge is known, so its token comes first.
    let two = format!("{}/a/two:1", fake.addr);
    assert!(registry.manifest(&two).unwrap().is_some());
    assert_eq!(
        registry
            .manifest(&format!("{}/a/two:2", fake.addr))
            .unwrap(),
        None
    );
    assert_eq!(
        fake.log(),
        vec![
            "GET /v2/a/one/manifests/1 -".to_string(),
            "GET /token?service=fake&scope=repository%3Aa%2Fone%3Apull&account=u Basic dTpw".into(),
            "GET /v2/a/one/manifests/1 Bearer T-one".into(),
            "GET /v2/a/one/manifests/1 Bearer T-one".into(),
            "GET /v2/a/one/manifests/1 Bearer T-one".into(),
            "GET /token?service=fake&scope=repository%3Aa%2Ftwo%3Apull&account=u Basic dTpw".into(),
            "GET /v2/a/two/manifests/1 Bearer T-two".into(),
            "GET /v2/a/two/manifests/2 Bearer T-two".into(),
        ]
    );
    assert_eq!(
        registry.stats(),
        Stats {
            http: 5,
            buildx: 0,
            cached: 0
        }
    );
    // Keep-alive: one connection to the fake for all of that.
    assert_eq!(fake.connections.load(Ordering::SeqCst), 1);
}

#[test]
fn anonymous_tokens_identity_tokens_and_expiry() {
    let fake = Fake::start(move |fake, request| {
        if request.target.starts_with("/token") {
            return if request.method == "POST" {
                assert!(
                    request.body.contains("grant_type=refresh_token")
                        && request.body.contains("refresh_token=R")
                        && request.body.contains("scope=repository%3Ab%3Apull"),
                    "{}",
                    request.body
                );
                respond(200, &[], r#"{"access_token":"A","expires_in":1}"#)
            } else {
                respond(200, &[], r#"{"token":"anon"}"#)
            };
        }
        let token = if request.target.starts_with("/v2/b/") {
            "Bearer A"
        } else {
            "Bearer anon"
        };
        if request.authorization() != token {
            let challenge = format!(r#"Bearer realm="http://{}/token?x=1""#, fake.addr);
            return respond(401, &[("WWW-Authenticate", &challenge)], "");
        }
        manifest_response(&docker_manifest(D2))
    });
    // Anonymous: no docker config at all.
    let registry = fake.registry(None);
    assert!(
        registry
            .manifest(&format!("{}/a:1", fake.addr))
            .unwrap()
            .is_some()
    );
    assert_eq!(
        fake.log()[1],
        "GET /token?x=1&scope=repository%3Aa%3Apull -",
        "{:?}",
        fake.log()
    );
    // An identity token is exchanged by POST; a token that expires is fetched again.
    let config = config_dir(&format!(
        r#"{{"auths":{{"{}":{{"identitytoken":"R"}}}}}}"#,
        fake.addr
    ));
    let registry = fake.registry(Some(config.path()));
    let b = format!("{}/b:1", fake.addr);
    assert!(registry.manifest(&b).unwrap().is_some());
    assert!(registry.manifest(&b).unwrap().is_some());
    let posts = fake.log().iter().filter(|l| l.starts_with("POST")).count();
    // expires_in 1 s is within the refresh margin: every query gets a fresh token.
    assert_eq!(posts, 2, "{:?}", fake.log());
}

#[test]
fn basic_challenges_send_basic_credentials() {
    let fake = Fake::start(move |_, request| {
        if request.authorization() != format!("Basic {}", b64("u:p")) {
            return respond(401, &[("WWW-Authenticate", r#"Basic realm="fake""#)], "");
        }
        manifest_response(&docker_manifest(D1))
    });
    let config = config_dir(&format!(
        r#"{{"auths":{{"http://{}/v2/":{{"username":"u","password":"p"}}}}}}"#,
        fake.addr
    ));
    let registry = fake.registry(Some(config.path()));
    let reference = format!("{}/a:1", fake.addr);
    assert_eq!(
        registry.image_ids(&reference).unwrap(),
        vec![D1.to_string()]
    );
    assert_eq!(
        registry.image_ids(&reference).unwrap(),
        vec![D1.to_string()]
    );
    // Only the first query meets the challenge.
    assert_eq!(fake.log().len(), 3, "{:?}", fake.log());

    // Without credentials: an error naming the reference, not a silent "absent".
    let registry = fake.registry(None);
    let e = registry.manifest(&reference).unwrap_err();
    assert!(matches!(e, RegistryError::Unauthorized { .. }), "{e:?}");
    let message = e.to_string();
    assert!(
        message.contains(&reference) && message.contains("no credentials"),
        "{message}"
    );
}

#[test]
fn not_found_errors_and_digest_checks() {
    let good = docker_manifest(D1);
    let good_digest = sha256_digest(good.as_bytes());
    let fake = Fake::start(move |_, request| match request.target.as_str() {
        "/v2/a/manifests/404" => respond(404, &[], ""),
        "/v2/a/manifests/unknown-name" => respond(
            400,
            &[],
            r#"{"errors":[{"code":"NAME_UNKNOWN","message":"repository name not known"}]}"#,
        ),
        "/v2/a/manifests/500" => respond(
            500,
            &[],
            r#"{"errors":[{"code":"UNKNOWN","message":"storage broke"}]}"#,
        ),
        "/v2/a/manifests/wrong-digest" => {
            respond(200, &[("Docker-Content-Digest", D3)], docker_manifest(D1))
        }
        "/v2/a/manifests/denied" => respond(401, &[("WWW-Authenticate", "Negotiate")], ""),
        "/v2/a/manifests/garbage" => respond(200, &[], "<html>"),
        _ => manifest_response(&good),
    });
    let registry = fake.registry(None);
    let at = |object: &str| format!("{}/a:{object}", fake.addr);
    assert_eq!(registry.manifest(&at("404")).unwrap(), None);
    assert_eq!(registry.manifest(&at("unknown-name")).unwrap(), None);
    assert_eq!(
        registry.image_ids(&at("404")).unwrap(),
        Vec::<String>::new()
    );
    assert_eq!(
        registry.manifest_digests(&at("404")).unwrap(),
        Vec::<String>::new()
    );

    let e = registry.manifest(&at("500")).unwrap_err();
    let message = e.to_string();
    assert!(
        matches!(e, RegistryError::Status { status: 500, .. }),
        "{e:?}"
    );
    assert!(
        message.contains(&at("500"))
            && message.contains("HTTP 500")
            && message.contains("storage broke"),
        "{message}"
    );
    let e = registry.manifest(&at("wrong-digest")).unwrap_err();
    assert!(matches!(e, RegistryError::DigestMismatch { .. }), "{e:?}");
    let e = registry.manifest(&at("denied")).unwrap_err();
    assert!(
        e.to_string()
            .contains("unsupported authentication scheme Negotiate"),
        "{e}"
    );
    let e = registry.manifest(&at("garbage")).unwrap_err();
    assert!(matches!(e, RegistryError::BadManifest { .. }), "{e:?}");

    // By digest: the content must have that digest.
    let pinned = format!("{}/a@{good_digest}", fake.addr);
    assert_eq!(
        registry.manifest(&pinned).unwrap().unwrap().digest,
        good_digest
    );
    let e = registry
        .manifest(&format!("{}/a@{D2}", fake.addr))
        .unwrap_err();
    assert!(matches!(e, RegistryError::DigestMismatch { .. }), "{e:?}");

    // Nothing listens: a transport error naming the reference.
    let closed = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = closed.local_addr().unwrap();
    drop(closed);
    let e = registry.manifest(&format!("{addr}/a:1")).unwrap_err();
    assert!(matches!(e, RegistryError::Transport { .. }), "{e:?}");
    assert!(e.to_string().contains(&format!("{addr}/a:1")), "{e}");
}

#[test]
fn transient_faults_are_retried_and_noted() {
    let good = docker_manifest(D1);
    let body = good.clone();
    let answered = Arc::new(AtomicUsize::new(0));
    let count = answered.clone();
    let fake = Fake::start(move |_, request| match request.target.as_str() {
        "/v2/a/manifests/flaky" if count.fetch_add(1, Ordering::SeqCst) < 2 => respond(
            503,
            &[],
            r#"{"errors":[{"code":"UNAVAILABLE","message":"try later"}]}"#,
        ),
        "/v2/a/manifests/broken" => respond(500, &[], ""),
        "/v2/a/manifests/denied" => respond(403, &[], ""),
        _ => manifest_response(&body),
    });
    let at = |object: &str| format!("{}/a:{object}", fake.addr);
    let registry = fake.registry(None).with_retries(2);
    let _ = take_retries();
    let found = registry.manifest(&at("flaky")).unwrap().unwrap();
    assert_eq!(found.digest, sha256_digest(good.as_bytes()));
    let notes: Vec<String> = take_retries().iter().map(|r| r.to_string()).collect();
    assert_eq!(notes.len(), 2, "{notes:?}");
    assert!(
        notes[0].starts_with(&format!(
            "attempt 1 of the registry query for {} failed (",
            at("flaky")
        )) && notes[0].contains("HTTP 503")
            && notes[0].ends_with("retried after 1s")
            && notes[1].ends_with("retried after 2s"),
        "{notes:?}"
    );
    // Retries exhausted: the last error; a 4xx is never retried.
    let e = registry.manifest(&at("broken")).unwrap_err();
    assert!(matches!(e, RegistryError::Status { status: 500, .. }));
    assert_eq!(take_retries().len(), 2);
    registry.manifest(&at("denied")).unwrap_err();
    assert_eq!(take_retries().len(), 0);
    // A refused connection is retried and, after the retries, unreachable.
    let closed = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = closed.local_addr().unwrap();
    drop(closed);
    let e = fake
        .registry(None)
        .with_retries(1)
        .manifest(&format!("{addr}/a:1"))
        .unwrap_err();
    assert!(e.transient() && e.unreachable(), "{e:?}");
    assert_eq!(take_retries().len(), 1);
    // Through `manifests`, the retries of every reference reach the caller's thread.
    count_reset(&answered);
    let answers = registry.manifests(&[at("flaky"), at("other")]);
    assert!(
        answers
            .iter()
            .all(|a| a.as_ref().is_ok_and(Option::is_some))
    );
    assert_eq!(take_retries().len(), 2);
}

fn count_reset(count: &AtomicUsize) {
    count.store(0, Ordering::SeqCst);
}

#[test]
fn index_members_are_fetched_once_per_digest() {
    let m1 = docker_manifest(D1);
    let m2 = docker_manifest(D2);
    let (d1, d2) = (sha256_digest(m1.as_bytes()), sha256_digest(m2.as_bytes()));
    let index = oci_index(&[(&d1, "linux/amd64"), (&d2, "linux/arm64/v8")]);
    let fake = Fake::start(move |_, request| {
        let object = request.target.rsplit('/').next().unwrap();
        match object {
            "list" | "list2" => respond(200, &[("Content-Type", MEDIA_OCI_INDEX)], index.clone()),
            o if o == d1 => manifest_response(&m1),
            o if o == d2 => manifest_response(&m2),
            _ => respond(404, &[], ""),
        }
    });
    let registry = fake.registry(None);
    let list = format!("{}/a:list", fake.addr);
    let members = registry.manifest(&list).unwrap().unwrap();
    assert!(members.is_index());
    assert_eq!(
        members.manifests[1].platform.as_deref(),
        Some("linux/arm64/v8")
    );
    let digests = registry.manifest_digests(&list).unwrap();
    assert_eq!(digests.len(), 2);
    assert_eq!(
        registry.image_ids(&list).unwrap(),
        vec![D1.to_string(), D2.to_string()]
    );
    // Another tag of the same index: its members come from the cache.
    assert_eq!(
        registry
            .image_ids(&format!("{}/a:list2", fake.addr))
            .unwrap(),
        vec![D1.to_string(), D2.to_string()]
    );
    assert_eq!(
        registry.stats(),
        Stats {
            http: 6,
            buildx: 0,
            cached: 2
        }
    );
}

#[test]
fn concurrent_queries_share_the_client() {
    let body = docker_manifest(D1);
    let fake = Fake::start(move |_, _| manifest_response(&body));
    let registry = fake.registry(None);
    std::thread::scope(|scope| {
        for t in 0..4 {
            let (registry, addr) = (&registry, &fake.addr);
            scope.spawn(move || {
                for i in 0..10 {
                    let ids = registry.image_ids(&format!("{addr}/r{t}:{i}")).unwrap();
                    assert_eq!(ids, vec![D1.to_string()]);
                }
            });
        }
    });
    assert_eq!(registry.stats().http, 40);
    assert!(fake.connections.load(Ordering::SeqCst) <= 4);
}

//! The Docker engine: the exact argv of a build, and batched engine queries.
//!
//! Invariants: argv construction is pure (unit-tested without Docker); every query of the
//! engine state is one `docker` call for the whole plan, never one per node, run through
//! [`crate::process`] with a time limit and stopped by Ctrl-C.

use std::collections::{BTreeMap, HashMap};
use std::process::Command;

use serde::Serialize;

use crate::manifest::Builder;
use crate::process;

/// How the engine is asked to build: flags shared by every node.
#[derive(Debug, Clone, Default)]
pub struct BuildSettings {
    /// `--build-arg K=V` (part of the content key).
    pub build_args: BTreeMap<String, String>,
    /// BASHBREW_BUILDKIT_SYNTAX: `--build-arg BUILDKIT_SYNTAX=...` for BuildKit builds.
    pub buildkit_syntax: Option<String>,
    /// Extra `--cache-from` specs, verbatim.
    pub cache_from: Vec<String>,
    /// Extra `--cache-to` specs, verbatim.
    pub cache_to: Vec<String>,
    /// Any other build flags, verbatim.
    pub build_opts: Vec<String>,
    /// Whether the cache repository is in a registry: then every BuildKit build imports
    /// and exports the node's registry cache at its cache ref.
    pub registry_cache: bool,
    /// `--classic-labels`: the OCI labels on classic builds too. The classic builder adds
    /// one LABEL step (a container commit) per `--label`: on Docker 26 with the containerd
    /// image store, three labels made a trivial build 2x slower (docs/performance.md), so
    /// classic builds get none by default, as with bashbrew. BuildKit writes labels into the
    /// image config at no cost: BuildKit builds always get them.
    pub classic_labels: bool,
    /// What the engine can do (detected at run time; everything when planning without one).
    pub features: Features,
}

/// What the engine and its buildx can do, detected with one `docker info`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Features {
    /// `--build-context NAME=docker-image://LOCAL`: parents pinned without touching names
    /// (buildx >= 0.8 and an engine >= 23, whose BuildKit resolves local images).
    pub named_contexts: bool,
    /// `--cache-to type=registry,mode=max` with the default docker driver (the containerd
    /// image store); without it the registry cache travels inline in a pushed image.
    pub cache_export: bool,
}

impl Default for Features {
    /// A modern engine: what `plan` describes when no engine answers.
    fn default() -> Features {
        Features {
            named_contexts: true,
            cache_export: true,
        }
    }
}

impl Features {
    /// `KEG_ENGINE_FEATURES`: a comma list (`named-contexts`, `cache-export`, or `none`)
    /// that limits what is used to what it names, to run the fallbacks on a modern engine.
    pub const ENV: &'static str = "KEG_ENGINE_FEATURES";

    pub fn limited_by(self, spec: Option<&str>) -> Features {
        let Some(spec) = spec else { return self };
        let allowed: Vec<&str> = spec.split(',').map(str::trim).collect();
        Features {
            named_contexts: self.named_contexts && allowed.contains(&"named-contexts"),
            cache_export: self.cache_export && allowed.contains(&"cache-export"),
        }
    }
}

/// What one node's build needs to know to produce its argv.
#[derive(Debug, Clone)]
pub struct BuildSpec<'a> {
    pub builder: Builder,
    pub platform: &'a str,
    pub file: &'a str,
    /// The cache tag first, then every image tag.
    pub tags: Vec<String>,
    pub cache_ref: &'a str,
    /// The parents' cache refs, imported too: a child starts from its parents' layers.
    pub parent_cache_refs: Vec<String>,
    /// Parents pinned to local images: (reference as written in the Dockerfile, image).
    pub contexts: Vec<(String, String)>,
    /// OCI labels and SOURCE_DATE_EPOCH build metadata.
    pub labels: Vec<(String, String)>,
    pub source_date_epoch: Option<i64>,
    /// How the command reaches its builder (the local engine by default).
    pub via: Via,
    /// Where a BuildKit build's image goes: the local engine (`-t` tags), or pushed.
    pub output: Output,
}

/// How a command reaches its builder: `docker [--context C]` and, for BuildKit builds on a
/// builder that is not a context's docker driver, `--builder NAME`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Via {
    /// The argv start; empty means `docker`.
    pub docker: Vec<String>,
    /// `--builder NAME` or nothing.
    pub builder: Vec<String>,
}

impl Via {
    fn docker(&self) -> Vec<String> {
        if self.docker.is_empty() {
            vec!["docker".into()]
        } else {
            self.docker.clone()
        }
    }
}

/// Where a BuildKit build's image goes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Output {
    /// Into the engine, under every `-t` tag.
    #[default]
    Local,
    /// Pushed to the registry as `name` (the cache tag), its digest written to
    /// `metadata_file` (buildx's `containerimage.digest`).
    Push { name: String, metadata_file: String },
}

/// A command: environment additions and argv (argv[0] is `docker`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DockerCommand {
    pub env: BTreeMap<String, String>,
    pub argv: Vec<String>,
}

impl DockerCommand {
    /// `docker ARGS...`, no environment additions.
    pub fn docker(args: &[&str]) -> DockerCommand {
        DockerCommand::on(&[], args)
    }

    /// `PREFIX... ARGS...` (`PREFIX` empty: `docker`), e.g. `docker --context C tag ...`.
    pub fn on(prefix: &[String], args: &[&str]) -> DockerCommand {
        let mut argv = if prefix.is_empty() {
            vec!["docker".to_string()]
        } else {
            prefix.to_vec()
        };
        argv.extend(args.iter().map(|a| a.to_string()));
        DockerCommand {
            env: BTreeMap::new(),
            argv,
        }
    }

    /// A shell-like rendering for people (`DOCKER_BUILDKIT=0 docker build ...`).
    pub fn display(&self) -> String {
        let env = self.env.iter().map(|(k, v)| format!("{k}={}", quote(v)));
        let argv = self.argv.iter().map(|a| quote(a));
        env.chain(argv).collect::<Vec<_>>().join(" ")
    }

    pub fn to_command(&self) -> Command {
        let mut cmd = Command::new(&self.argv[0]);
        cmd.args(&self.argv[1..]).envs(&self.env);
        cmd
    }
}

impl process::Program for DockerCommand {
    fn command(&self) -> Command {
        self.to_command()
    }

    fn display(&self) -> String {
        DockerCommand::display(self)
    }

    fn name(&self) -> String {
        self.argv[0].clone()
    }
}

fn quote(arg: &str) -> String {
    let plain = !arg.is_empty()
        && arg
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:=@,+%".contains(c));
    if plain {
        arg.to_string()
    } else {
        format!("'{}'", arg.replace('\'', r"'\''"))
    }
}

/// The argv that builds one node from a context tar on stdin.
///
/// BuildKit builds on an engine with named contexts get every pinned parent as
/// `--build-context REF=docker-image://IMAGE`, so the names in the Dockerfile are never
/// looked up; classic builds (and engines without named contexts) get nothing here: the
/// executor points the names at the pinned images just before the build.
pub fn build_command(spec: &BuildSpec<'_>, settings: &BuildSettings) -> DockerCommand {
    let mut env = BTreeMap::new();
    let mut argv: Vec<String> = spec.via.docker();
    let buildkit = spec.builder == Builder::Buildkit;
    let pushed = buildkit && matches!(spec.output, Output::Push { .. });
    if buildkit {
        argv.extend(["buildx".into(), "build".into()]);
        argv.extend(spec.via.builder.iter().cloned());
        // No attestations unless asked for (`--build-opt --provenance=...`): they carry the
        // time of the build, and an image is a plain manifest per platform.
        argv.extend(["--progress=plain".into(), "--provenance=false".into()]);
        argv.extend(["--platform".into(), spec.platform.to_string()]);
    } else {
        env.insert("DOCKER_BUILDKIT".to_string(), "0".to_string());
        argv.extend(["build".into(), "--rm".into(), "--force-rm".into()]);
        env.insert(
            "DOCKER_DEFAULT_PLATFORM".to_string(),
            spec.platform.to_string(),
        );
    }
    argv.extend(["-f".into(), spec.file.to_string()]);
    if let (true, Output::Push { name, .. }) = (pushed, &spec.output) {
        argv.extend([
            "--output".into(),
            format!("type=image,name={name},push=true"),
        ]);
    } else {
        for tag in &spec.tags {
            argv.extend(["-t".into(), tag.clone()]);
        }
    }
    if buildkit && settings.features.named_contexts {
        for (reference, image) in &spec.contexts {
            argv.extend([
                "--build-context".into(),
                format!("{reference}=docker-image://{image}"),
            ]);
        }
    }
    if buildkit && let Some(syntax) = &settings.buildkit_syntax {
        argv.extend(["--build-arg".into(), format!("BUILDKIT_SYNTAX={syntax}")]);
    }
    for (k, v) in &settings.build_args {
        argv.extend(["--build-arg".into(), format!("{k}={v}")]);
    }
    if let Some(epoch) = spec.source_date_epoch {
        argv.extend(["--build-arg".into(), format!("SOURCE_DATE_EPOCH={epoch}")]);
    }
    if buildkit || settings.classic_labels {
        for (k, v) in &spec.labels {
            argv.extend(["--label".into(), format!("{k}={v}")]);
        }
    }
    if buildkit {
        if settings.registry_cache {
            for reference in std::iter::once(spec.cache_ref)
                .chain(spec.parent_cache_refs.iter().map(String::as_str))
            {
                argv.extend([
                    "--cache-from".into(),
                    format!("type=registry,ref={reference}"),
                ]);
            }
            let to = if exports_registry_cache(settings) || pushed {
                format!("type=registry,ref={},mode=max", spec.cache_ref)
            } else {
                "type=inline".to_string()
            };
            argv.extend(["--cache-to".into(), to]);
        } else {
            argv.extend(["--cache-to".into(), "type=inline".into()]);
        }
        for spec in &settings.cache_from {
            argv.extend(["--cache-from".into(), spec.clone()]);
        }
        for spec in &settings.cache_to {
            argv.extend(["--cache-to".into(), spec.clone()]);
        }
    } else {
        for image in &settings.cache_from {
            argv.extend(["--cache-from".into(), image.clone()]);
        }
    }
    argv.extend(settings.build_opts.iter().cloned());
    if let (true, Output::Push { metadata_file, .. }) = (pushed, &spec.output) {
        argv.extend(["--metadata-file".into(), metadata_file.clone()]);
    }
    argv.push("-".into());
    DockerCommand { env, argv }
}

/// Whether BuildKit builds on the local engine export their registry cache themselves
/// (mode=max); else the cache travels inline in an image pushed to the cache ref.
pub fn exports_registry_cache(settings: &BuildSettings) -> bool {
    settings.registry_cache && settings.features.cache_export
}

/// Whether an image repository names a registry (`host.domain/…`, `host:port/…`,
/// `localhost/…`), as docker decides it.
pub fn in_registry(repository: &str) -> bool {
    repository
        .split_once('/')
        .is_some_and(|(host, _)| host.contains('.') || host.contains(':') || host == "localhost")
}

/// A reachable Docker engine.
#[derive(Debug, Clone)]
pub struct Engine {
    pub server_version: String,
    /// The engine's own platform, `os/arch` (e.g. `linux/amd64`).
    pub platform: String,
    /// What it can do (before any `KEG_ENGINE_FEATURES` limit).
    pub features: Features,
}

/// Why no engine could be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NoEngine {
    /// There is no `docker` client on PATH.
    NoClient,
    /// The client runs, but no daemon answers it: what it said.
    NoDaemon(String),
    /// Ctrl-C or SIGTERM stopped the query.
    Interrupted,
}

impl Engine {
    /// What builds may use: the engine's features (a modern engine's without one), limited
    /// by `KEG_ENGINE_FEATURES`.
    pub fn features(engine: Option<&Engine>) -> Features {
        engine
            .map_or_else(Features::default, |e| e.features)
            .limited_by(std::env::var(Features::ENV).ok().as_deref())
    }

    /// The engine, with one `docker info`: its version, platform, storage and buildx.
    pub fn detect() -> Result<Engine, NoEngine> {
        let info = DockerCommand::docker(&[
            "info",
            "--format",
            "{{.ServerVersion}}|{{.OSType}}|{{.Architecture}}|{{json .DriverStatus}}|{{range .ClientInfo.Plugins}}{{.Name}}={{.Version}} {{end}}",
        ]);
        if !on_path("docker") {
            return Err(NoEngine::NoClient);
        }
        let output = query(&info).map_err(|e| {
            if crate::interrupt::interrupted() {
                NoEngine::Interrupted
            } else {
                NoEngine::NoDaemon(e)
            }
        })?;
        match parse_info(output.stdout.trim()) {
            Some(engine) if output.code == 0 => Ok(engine),
            _ => {
                let said = output.stderr.lines().find(|l| !l.trim().is_empty());
                Err(NoEngine::NoDaemon(said.unwrap_or("").trim().to_string()))
            }
        }
    }

    /// Whether the engine runs `platform` (`os/arch[/variant]`) natively, not emulated.
    pub fn is_native(&self, platform: &str) -> bool {
        platform == self.platform || platform.starts_with(&format!("{}/", self.platform))
    }

    /// The platform (`os/arch[/variant]`) of each of `references`, which must all exist
    /// locally: one engine call.
    pub fn platforms(references: &[&str]) -> std::io::Result<Vec<String>> {
        if references.is_empty() {
            return Ok(Vec::new());
        }
        let mut args = vec![
            "image",
            "inspect",
            "--format",
            "{{.Os}}/{{.Architecture}}/{{.Variant}}",
        ];
        args.extend(references);
        let output = query(&DockerCommand::docker(&args)).map_err(std::io::Error::other)?;
        let lines: Vec<String> = output
            .stdout
            .lines()
            .map(|l| l.trim_end_matches('/').to_string())
            .collect();
        if output.code != 0 || lines.len() != references.len() {
            return Err(std::io::Error::other("docker image inspect failed"));
        }
        Ok(lines)
    }

    /// The id of one local image (`docker image inspect`), None when it does not exist.
    pub fn image_id(reference: &str) -> Option<String> {
        let inspect =
            DockerCommand::docker(&["image", "inspect", "--format", "{{.Id}}", reference]);
        let output = query(&inspect).ok()?;
        let id = output.stdout.trim().to_string();
        (output.code == 0 && !id.is_empty()).then_some(id)
    }

    /// Every local image reference (`repo:tag`) with its image id: one engine call (tried
    /// up to twice more when it fails: a listing can race with an image's removal).
    pub fn images(&self) -> std::io::Result<HashMap<String, String>> {
        self.list_images(&[])
    }

    /// `docker image ls` with `filters` (`--filter` values), tried again on failure.
    fn list_images(&self, filters: &[String]) -> std::io::Result<HashMap<String, String>> {
        let mut args: Vec<&str> = vec![
            "image",
            "ls",
            "--no-trunc",
            "--format",
            "{{.Repository}}:{{.Tag}} {{.ID}}",
        ];
        for filter in filters {
            args.extend(["--filter", filter.as_str()]);
        }
        let list = DockerCommand::docker(&args);
        let interrupted = &crate::interrupt::INTERRUPTED;
        let listed = crate::retry::run(
            2,
            interrupted,
            "of the engine's image list",
            |_: &String| !crate::interrupt::interrupted(),
            |_| {},
            || {
                let output = query(&list)?;
                if output.code != 0 {
                    let said = output.stderr.lines().rev().find(|l| !l.trim().is_empty());
                    return Err(format!(
                        "`{}` failed: {}",
                        list.display(),
                        said.unwrap_or("").trim()
                    ));
                }
                Ok(output.stdout)
            },
        );
        Ok(parse_image_list(&listed.map_err(std::io::Error::other)?))
    }

    /// The local images of `repositories` only (every tag of each), as [`Engine::images`]
    /// gives them: one `docker image ls` with a `reference` filter per repository. With the
    /// containerd image store the daemon measures every image it lists: listing all of the
    /// rig's ~220 images took 1.9 s, a filtered listing 55 ms (docs/performance.md, "Cold
    /// start"), and a build lists twice. An empty set lists nothing.
    pub fn images_of(
        &self,
        repositories: &std::collections::BTreeSet<String>,
    ) -> std::io::Result<HashMap<String, String>> {
        if repositories.is_empty() {
            return Ok(HashMap::new());
        }
        let filters: Vec<String> = repositories
            .iter()
            .map(|repository| format!("reference={repository}"))
            .collect();
        self.list_images(&filters)
    }
}

/// The repository of an image reference: `name[:tag][@digest]` without its tag and digest
/// (a `:` before the last `/` is a registry's port).
pub fn repository_of(reference: &str) -> &str {
    let name = reference.split('@').next().unwrap_or(reference);
    match name.rfind(':') {
        Some(colon) if !name[colon..].contains('/') => &name[..colon],
        _ => name,
    }
}

/// Runs an engine query: bounded by [`process::QUERY_LIMIT`], stopped by Ctrl-C.
fn query(command: &DockerCommand) -> Result<process::Output, String> {
    process::output(
        command,
        &crate::interrupt::INTERRUPTED,
        Some(process::QUERY_LIMIT),
    )
}

/// Whether `program` is an executable file in a directory of PATH.
fn on_path(program: &str) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::env::var_os("PATH").is_some_and(|path| {
        std::env::split_paths(&path).any(|dir| {
            std::fs::metadata(dir.join(program))
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
    })
}

/// Parses `docker info`'s line (see [`Engine::detect`]).
fn parse_info(line: &str) -> Option<Engine> {
    let mut parts = line.splitn(5, '|');
    let (version, os, machine, driver, plugins) = (
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next().unwrap_or(""),
    );
    if version.is_empty() || os.is_empty() {
        return None;
    }
    let arch = match machine {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "armv7l" | "armv6l" | "armhf" => "arm",
        "i386" | "i686" => "386",
        other => other,
    };
    let buildx = plugins
        .split_whitespace()
        .find_map(|p| p.strip_prefix("buildx="))
        .unwrap_or("");
    let at_least = |text: &str, want: (u64, u64)| {
        let mut numbers = text
            .trim_start_matches('v')
            .split(|c: char| !c.is_ascii_digit())
            .map(|n| n.parse::<u64>().ok());
        match (numbers.next().flatten(), numbers.next().flatten()) {
            (Some(major), Some(minor)) => (major, minor) >= want,
            _ => false,
        }
    };
    Some(Engine {
        server_version: version.to_string(),
        platform: format!("{os}/{arch}"),
        features: Features {
            named_contexts: at_least(version, (23, 0)) && at_least(buildx, (0, 8)),
            cache_export: driver.contains("io.containerd.snapshotter"),
        },
    })
}

/// Whether an image's platform (`os/arch[/variant]`) is `wanted`'s; a variant counts only
/// when both name one.
pub fn platform_matches(image: &str, wanted: &str) -> bool {
    let mut a = image.split('/');
    let mut b = wanted.split('/');
    let (os, arch, variant) = (a.next(), a.next(), a.next().filter(|v| !v.is_empty()));
    let (w_os, w_arch, w_variant) = (b.next(), b.next(), b.next().filter(|v| !v.is_empty()));
    os == w_os
        && arch == w_arch
        && (variant.is_none() || w_variant.is_none() || variant == w_variant)
}

/// Parses `repo:tag id` lines, skipping untagged images.
pub fn parse_image_list(text: &str) -> HashMap<String, String> {
    text.lines()
        .filter_map(|line| line.split_once(' '))
        .filter(|(reference, _)| !reference.contains("<none>"))
        .map(|(reference, id)| (reference.to_string(), id.trim().to_string()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(builder: Builder) -> BuildSpec<'static> {
        BuildSpec {
            builder,
            platform: "linux/arm64/v8",
            file: "Dockerfile",
            tags: vec!["keg/cache:abc".into(), "hello:1".into()],
            cache_ref: "127.0.0.1:5000/keg/cache:ref-hello-x",
            parent_cache_refs: vec!["127.0.0.1:5000/keg/cache:ref-base-y".into()],
            contexts: vec![("base:1".into(), "keg/cache:def".into())],
            labels: vec![("org.opencontainers.image.revision".into(), "c0ffee".into())],
            source_date_epoch: Some(1700000000),
            via: Via::default(),
            output: Output::Local,
        }
    }

    #[test]
    fn repositories_of_references() {
        for (reference, repository) in [
            ("debian:bookworm", "debian"),
            ("debian", "debian"),
            ("127.0.0.1:5000/keg/cache:abc", "127.0.0.1:5000/keg/cache"),
            ("127.0.0.1:5000/keg/cache", "127.0.0.1:5000/keg/cache"),
            ("busybox@sha256:0123", "busybox"),
            ("busybox:1@sha256:0123", "busybox"),
        ] {
            assert_eq!(repository_of(reference), repository, "{reference}");
        }
    }

    #[test]
    fn buildkit_argv() {
        let settings = BuildSettings {
            buildkit_syntax: Some("docker/dockerfile:1".into()),
            build_args: BTreeMap::from([("A".into(), "1".into())]),
            registry_cache: true,
            ..BuildSettings::default()
        };
        let cmd = build_command(&spec(Builder::Buildkit), &settings);
        assert!(cmd.env.is_empty());
        assert_eq!(
            cmd.argv.join(" "),
            "docker buildx build --progress=plain --provenance=false --platform linux/arm64/v8 -f Dockerfile -t keg/cache:abc -t hello:1 --build-context base:1=docker-image://keg/cache:def --build-arg BUILDKIT_SYNTAX=docker/dockerfile:1 --build-arg A=1 --build-arg SOURCE_DATE_EPOCH=1700000000 --label org.opencontainers.image.revision=c0ffee --cache-from type=registry,ref=127.0.0.1:5000/keg/cache:ref-hello-x --cache-from type=registry,ref=127.0.0.1:5000/keg/cache:ref-base-y --cache-to type=registry,ref=127.0.0.1:5000/keg/cache:ref-hello-x,mode=max -"
        );
        // An older engine: parents are pinned by name, the cache travels inline.
        let old = BuildSettings {
            features: Features {
                named_contexts: false,
                cache_export: false,
            },
            ..settings
        };
        let argv = build_command(&spec(Builder::Buildkit), &old).argv.join(" ");
        assert!(!argv.contains("--build-context"), "{argv}");
        assert!(argv.contains("--cache-to type=inline -"), "{argv}");
    }

    #[test]
    fn engine_features_from_docker_info() {
        let modern = parse_info(
            r#"26.1.5+dfsg1|linux|x86_64|[["driver-type","io.containerd.snapshotter.v1"]]|buildx=0.13.1+ds1 compose=2.1"#,
        )
        .unwrap();
        assert_eq!(modern.platform, "linux/amd64");
        assert_eq!(modern.features, Features::default());
        let old = parse_info(
            r#"20.10.24+dfsg1|linux|aarch64|[["Backing Filesystem","extfs"]]|buildx=v0.13.1 "#,
        )
        .unwrap();
        assert_eq!(old.platform, "linux/arm64");
        assert_eq!(
            old.features,
            Features {
                named_contexts: false,
                cache_export: false
            }
        );
        let no_buildx = parse_info("26.1.5|linux|x86_64|[]|").unwrap();
        assert!(!no_buildx.features.named_contexts);
        assert!(parse_info("|||").is_none());
        assert_eq!(
            Features::default().limited_by(Some("cache-export")),
            Features {
                named_contexts: false,
                cache_export: true
            }
        );
        assert_eq!(
            Features::default().limited_by(Some("none")),
            Features {
                named_contexts: false,
                cache_export: false
            }
        );
        assert_eq!(Features::default().limited_by(None), Features::default());
    }

    #[test]
    fn classic_argv_and_display() {
        let settings = BuildSettings {
            buildkit_syntax: Some("ignored/for:classic".into()),
            cache_from: vec!["hello:1".into()],
            build_opts: vec!["--network=host".into()],
            ..BuildSettings::default()
        };
        let cmd = build_command(&spec(Builder::Classic), &settings);
        assert_eq!(
            cmd.display(),
            "DOCKER_BUILDKIT=0 DOCKER_DEFAULT_PLATFORM=linux/arm64/v8 docker build --rm --force-rm -f Dockerfile -t keg/cache:abc -t hello:1 --build-arg SOURCE_DATE_EPOCH=1700000000 --cache-from hello:1 --network=host -"
        );
        // Labels on classic builds only when asked for: each is a step of its own.
        let labelled = BuildSettings {
            classic_labels: true,
            ..settings
        };
        let argv = build_command(&spec(Builder::Classic), &labelled)
            .argv
            .join(" ");
        assert!(
            argv.contains("--build-arg SOURCE_DATE_EPOCH=1700000000 --label org.opencontainers.image.revision=c0ffee --cache-from"),
            "{argv}"
        );
    }

    #[test]
    fn a_pool_builder_pushes_by_key_and_writes_its_digest() {
        let settings = BuildSettings {
            registry_cache: true,
            cache_to: vec!["type=gha".into()],
            features: Features {
                named_contexts: true,
                cache_export: false,
            },
            ..BuildSettings::default()
        };
        let mut on_fleet = spec(Builder::Buildkit);
        on_fleet.via = Via {
            docker: Vec::new(),
            builder: vec!["--builder".into(), "fleet".into()],
        };
        on_fleet.output = Output::Push {
            name: "127.0.0.1:5000/keg/cache:abc".into(),
            metadata_file: "/tmp/m.json".into(),
        };
        let argv = build_command(&on_fleet, &settings).argv.join(" ");
        assert!(
            argv.starts_with("docker buildx build --builder fleet --progress=plain"),
            "{argv}"
        );
        assert!(
            argv.contains("--output type=image,name=127.0.0.1:5000/keg/cache:abc,push=true"),
            "{argv}"
        );
        assert!(!argv.contains(" -t "), "{argv}");
        assert!(argv.contains("--cache-to type=registry,ref=127.0.0.1:5000/keg/cache:ref-hello-x,mode=max --cache-to type=gha"), "{argv}");
        assert!(argv.ends_with("--metadata-file /tmp/m.json -"), "{argv}");
        // A context's docker driver: reached with --context, no --builder.
        let mut on_node = spec(Builder::Classic);
        on_node.via.docker = vec!["docker".into(), "--context".into(), "keg-node-2".into()];
        let classic = build_command(&on_node, &settings);
        assert!(
            classic
                .argv
                .join(" ")
                .starts_with("docker --context keg-node-2 build --rm")
        );
    }

    #[test]
    fn registry_detection() {
        for (repo, want) in [
            ("keg/cache", false),
            ("127.0.0.1:5000/keg/cache", true),
            ("localhost/cache", true),
            ("registry.example.com/a/b", true),
            ("cache", false),
        ] {
            assert_eq!(in_registry(repo), want, "{repo}");
        }
    }

    #[test]
    fn platforms_match_with_optional_variants() {
        for (image, wanted, want) in [
            ("linux/arm64", "linux/arm64/v8", true),
            ("linux/arm64/v8", "linux/arm64/v8", true),
            ("linux/arm/v6", "linux/arm/v7", false),
            ("linux/amd64", "linux/arm64/v8", false),
            ("windows/amd64", "linux/amd64", false),
        ] {
            assert_eq!(platform_matches(image, wanted), want, "{image} {wanted}");
        }
    }

    #[test]
    fn image_list_parsing() {
        let images =
            parse_image_list("a:1 sha256:aa\n<none>:<none> sha256:bb\nr:5000/x/y:2 sha256:cc\n");
        assert_eq!(images.len(), 2);
        assert_eq!(images["r:5000/x/y:2"], "sha256:cc");
    }
}

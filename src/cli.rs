//! Command-line flags (clap), validated once into a [`Config`] and a [`Command`].
//!
//! Invariant: everything after this module works with checked values; flags and the
//! bashbrew environment variables (BASHBREW_LIBRARY, BASHBREW_ARCH, BASHBREW_NAMESPACE,
//! BASHBREW_CONSTRAINTS, BASHBREW_CACHE, BASHBREW_ARCH_NAMESPACES, BASHBREW_DEBUG,
//! BASHBREW_CONFIG, BASHBREW_PULL) mean what they mean in bashbrew, every global flag works
//! before or after the command, and bashbrew's command aliases (`ls`, `offspring`, ...) are
//! accepted. Values from bashbrew's `--config` flags file are applied by `config_file`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::arch;
use crate::config::Config;
use crate::error::Error;

#[derive(Debug, Parser)]
#[command(
    name = "keg",
    version,
    about = "Build whole libraries of container images from Official Images manifests",
    long_about = "keg reads a library of Official Images manifest files (the docker-library \
        `library/` format), plans every build across repositories, and builds them in \
        parallel. Its commands, flags and environment variables follow bashbrew's.",
    disable_help_flag = true,
    disable_version_flag = true
)]
pub struct Cli {
    /// Print help (`-?` too, as in bashbrew)
    #[arg(short = 'h', long = "help", short_alias = '?', action = clap::ArgAction::Help, global = true)]
    help: Option<bool>,
    /// Print the version (`-v` too, as in bashbrew)
    #[arg(short = 'V', long = "version", short_alias = 'v', action = clap::ArgAction::Version)]
    version: Option<bool>,
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// Where the manifest files are
    #[arg(
        long,
        global = true,
        env = "BASHBREW_LIBRARY",
        default_value = "library"
    )]
    pub library: PathBuf,
    /// Which architecture to act for; `plan`, `build`, `tag` and `push` take several
    /// (repeat, or comma-separate) or `all` (every architecture the selected entries support)
    #[arg(
        long,
        global = true,
        env = "BASHBREW_ARCH",
        value_delimiter = ',',
        default_value = arch::DEFAULT
    )]
    pub arch: Vec<String>,
    /// A namespace to prefix image names with (`NS/repo:tag`)
    #[arg(long, global = true, env = "BASHBREW_NAMESPACE", default_value = "")]
    pub namespace: String,
    /// A constraint this host satisfies, matched against entries' Constraints (repeatable)
    #[arg(
        long = "constraint",
        global = true,
        env = "BASHBREW_CONSTRAINTS",
        value_delimiter = ','
    )]
    pub constraints: Vec<String>,
    /// Skip entries that have no Constraints at all
    #[arg(long, global = true)]
    pub exclusive_constraints: bool,
    /// Keep the order of the arguments (no dependency sort)
    #[arg(long, global = true)]
    pub no_sort: bool,
    /// Where keg keeps its git cache and logs [default: ~/.cache/keg]
    #[arg(long, global = true, env = "BASHBREW_CACHE")]
    pub cache: Option<PathBuf>,
    /// Fetch GitRepos starting with URL_PREFIX from LOCAL_URL_OR_PATH instead (repeatable;
    /// env KEG_GIT_MIRRORS, comma-separated)
    #[arg(
        long = "git-mirror",
        global = true,
        env = "KEG_GIT_MIRRORS",
        value_delimiter = ',',
        value_name = "URL_PREFIX=LOCAL_URL_OR_PATH"
    )]
    pub git_mirrors: Vec<String>,
    /// Commits of history fetched with each commit over a network (0: the whole history)
    #[arg(
        long,
        global = true,
        env = "KEG_GIT_DEPTH",
        default_value_t = 1,
        value_name = "N"
    )]
    pub git_depth: u32,
    /// Fetch whole histories (the same as --git-depth 0)
    #[arg(long, global = true)]
    pub unshallow: bool,
    /// Repositories fetched at the same time
    #[arg(
        long,
        global = true,
        env = "KEG_FETCH_JOBS",
        default_value_t = 16,
        value_name = "N"
    )]
    pub fetch_jobs: usize,
    /// How many times a transient fault is retried, with exponential backoff: a git fetch
    /// or a registry connection that fails, a registry's 5xx, an engine or builder that stops
    /// answering (never a failed RUN step)
    #[arg(
        long,
        global = true,
        env = "KEG_RETRIES",
        default_value_t = 2,
        value_name = "N"
    )]
    pub retries: u32,
    /// One architecture's namespace, ARCH=NS, e.g. arm64v8=127.0.0.1:5000/arm64v8, for
    /// tag, push, put-shared, build --push and the archNamespace template function
    /// (repeatable, or comma-separated)
    #[arg(
        long = "arch-namespace",
        global = true,
        env = "BASHBREW_ARCH_NAMESPACES",
        value_delimiter = ',',
        value_name = "ARCH=NS"
    )]
    pub arch_namespaces: Vec<String>,
    /// Show the docker and git operations as they run (on stderr)
    #[arg(
        long,
        global = true,
        env = "BASHBREW_DEBUG",
        value_parser = clap::builder::BoolishValueParser::new()
    )]
    pub debug: bool,
    /// Where bashbrew's `flags` file of default flags is [default: ~/.config/bashbrew]
    #[arg(long, global = true, env = "BASHBREW_CONFIG", value_name = "DIR")]
    pub config: Option<PathBuf>,
}

/// How builds are made: shared by `plan` (keys, argv) and `build`.
#[derive(Debug, Args, Clone)]
pub struct BuildArgs {
    /// Where cache tags live (`REPO:<key>`); a registry repository (`HOST[:PORT]/REPO`) also
    /// turns on the per-node registry cache
    #[arg(long, env = "KEG_CACHE_REPO", default_value = "keg/cache")]
    pub cache_repo: String,
    /// A build argument, part of every cache key (repeatable)
    #[arg(long = "build-arg", value_name = "K=V")]
    pub build_args: Vec<String>,
    /// The BuildKit Dockerfile frontend for buildkit builds (`--build-arg BUILDKIT_SYNTAX=`)
    #[arg(long, env = "BASHBREW_BUILDKIT_SYNTAX", hide_env_values = true)]
    pub buildkit_syntax: Option<String>,
    /// Extra `--cache-from` for buildx, verbatim (repeatable; e.g. type=gha)
    #[arg(long = "cache-from", value_name = "SPEC")]
    pub cache_from: Vec<String>,
    /// Extra `--cache-to` for buildx, verbatim (repeatable)
    #[arg(long = "cache-to", value_name = "SPEC")]
    pub cache_to: Vec<String>,
    /// Any other build flag, verbatim (repeatable)
    #[arg(long = "build-opt", value_name = "ARG", allow_hyphen_values = true)]
    pub build_opts: Vec<String>,
    /// Put the OCI labels on `Builder: classic` images too (the classic builder makes one
    /// extra step per label; BuildKit images always get them)
    #[arg(long)]
    pub classic_labels: bool,
}

impl BuildArgs {
    pub fn settings(&self) -> Result<crate::docker::BuildSettings, Error> {
        let mut build_args = std::collections::BTreeMap::new();
        for arg in &self.build_args {
            let (k, v) = arg
                .split_once('=')
                .filter(|(k, _)| !k.is_empty())
                .ok_or_else(|| Error::Usage {
                    option: "--build-arg",
                    value: arg.clone(),
                    expected: "expected K=V".to_string(),
                })?;
            build_args.insert(k.to_string(), v.to_string());
        }
        let cache_repo = self.cache_repo.trim_end_matches('/');
        if cache_repo.is_empty()
            || cache_repo.contains(':') && !crate::docker::in_registry(cache_repo)
        {
            return Err(Error::Usage {
                option: "--cache-repo",
                value: self.cache_repo.clone(),
                expected: "expected an image repository without a tag, e.g. keg/cache or 127.0.0.1:5000/keg/cache".to_string(),
            });
        }
        Ok(crate::docker::BuildSettings {
            build_args,
            buildkit_syntax: self.buildkit_syntax.clone().filter(|s| !s.is_empty()),
            cache_from: self.cache_from.clone(),
            cache_to: self.cache_to.clone(),
            build_opts: self.build_opts.clone(),
            registry_cache: crate::docker::in_registry(cache_repo),
            classic_labels: self.classic_labels,
            features: crate::docker::Features::default(),
        })
    }
}

/// `90`, `90s`, `30m`, `1h30m`, `250ms`: a duration; 0 means none.
pub fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    crate::process::parse_duration(text)
}

fn parse_shard(spec: &str) -> Result<(usize, usize), String> {
    crate::shard::parse_shard_spec(spec)
}

/// Where images are tagged and pushed (`tag`, `push`, `put-shared`, `build --push`); the
/// per-architecture namespaces are the global `--arch-namespace`.
#[derive(Debug, Args, Clone)]
pub struct TargetArgs {
    /// The namespace to tag and push into (`NS/repo:tag`) [default: --namespace]
    #[arg(long)]
    pub target_namespace: Option<String>,
}

/// `--progress`: buildx's flag and values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ProgressArg {
    Auto,
    Tty,
    Plain,
    Json,
}

impl From<ProgressArg> for crate::report::Mode {
    fn from(progress: ProgressArg) -> crate::report::Mode {
        match progress {
            ProgressArg::Auto => crate::report::Mode::Auto,
            ProgressArg::Tty => crate::report::Mode::Tty,
            ProgressArg::Plain => crate::report::Mode::Plain,
            ProgressArg::Json => crate::report::Mode::Json,
        }
    }
}

/// `--pull`: when external parent images are pulled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum PullArg {
    Always,
    Missing,
    Never,
}

impl From<PullArg> for crate::exec::Pull {
    fn from(pull: PullArg) -> crate::exec::Pull {
        match pull {
            PullArg::Always => crate::exec::Pull::Always,
            PullArg::Missing => crate::exec::Pull::Missing,
            PullArg::Never => crate::exec::Pull::Never,
        }
    }
}

/// Options of the commands that follow parents and children.
#[derive(Debug, Args)]
pub struct LineageArgs {
    /// Print each image only once
    #[arg(long, visible_alias = "unique")]
    pub uniq: bool,
    /// Skip entries whose Architectures or Constraints exclude this host
    #[arg(long)]
    pub apply_constraints: bool,
    /// Skip entries that do not support --arch
    #[arg(long)]
    pub arch_filter: bool,
}

/// Arguments naming repositories.
#[derive(Debug, Args)]
pub struct RepoArgs {
    /// Every repository in the library
    #[arg(long)]
    pub all: bool,
    /// Repositories: `repo`, `repo:tag` or a path to a manifest file
    #[arg(value_name = "REPO", id = "repo")]
    pub repos: Vec<String>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// List repositories and tags (like `bashbrew list`)
    #[command(visible_alias = "ls")]
    List {
        #[command(flatten)]
        repos: RepoArgs,
        /// Only the first tag of each entry
        #[arg(long, visible_alias = "unique")]
        uniq: bool,
        /// Only repository names (or the tags of a `repo:tag` argument)
        #[arg(long = "repos", id = "only_repos")]
        only_repos: bool,
        /// Skip entries whose Architectures or Constraints exclude this host
        #[arg(long)]
        apply_constraints: bool,
        /// Skip entries that do not support --arch
        #[arg(long)]
        arch_filter: bool,
        /// Sort repositories and entries so that parents come before children
        #[arg(long)]
        build_order: bool,
    },
    /// Fetch every selected entry's GitCommit into the git cache
    Fetch {
        #[command(flatten)]
        repos: RepoArgs,
        /// Skip entries whose Architectures or Constraints exclude this host
        #[arg(long)]
        apply_constraints: bool,
        /// Skip entries that do not support --arch
        #[arg(long)]
        arch_filter: bool,
    },
    /// Print each tag's parent images (`repo:tag: parent parent`, like `bashbrew from`)
    From {
        #[command(flatten)]
        repos: RepoArgs,
        #[command(flatten)]
        lineage: LineageArgs,
    },
    /// Print the parents of images, recursively (like `bashbrew parents`)
    #[command(visible_aliases = ["ancestors", "progenitors"])]
    Parents {
        /// Images or repositories: `repo`, `repo:tag`
        #[arg(value_name = "REPO", required = true)]
        repos: Vec<String>,
        /// How many levels to walk (0: all)
        #[arg(long, default_value_t = 0)]
        depth: usize,
        #[command(flatten)]
        lineage: LineageArgs,
    },
    /// Print the library's images built on the given images, recursively (like `bashbrew
    /// children`); an argument may be any image reference, e.g. an external base image
    #[command(visible_aliases = ["offspring", "descendants", "progeny"])]
    Children {
        /// Images or repositories: `repo`, `repo:tag`, or any image reference
        #[arg(value_name = "IMAGE", required = true)]
        images: Vec<String>,
        /// How many levels to walk (0: all)
        #[arg(long, default_value_t = 0)]
        depth: usize,
        #[command(flatten)]
        lineage: LineageArgs,
    },
    /// Write an entry's build context (a deterministic tar of its git tree) to stdout
    Context {
        /// The entry: `repo:tag`
        #[arg(value_name = "REPO:TAG")]
        entry: String,
        /// Print the sha256 of the tar instead of the tar
        #[arg(long)]
        sha256: bool,
    },
    /// Plan the builds: nodes, order, cache keys and commands, without building (no Docker
    /// needed; with an engine, also whether each node is already built)
    Plan {
        #[command(flatten)]
        repos: RepoArgs,
        /// The plan as JSON for CI (see docs/plan.md)
        #[arg(long, conflicts_with_all = ["dot", "explain"])]
        json: bool,
        /// The graph for graphviz
        #[arg(long, conflicts_with = "explain")]
        dot: bool,
        /// Only part I of N balanced parts made of whole connected components
        #[arg(long, value_name = "I/N", value_parser = parse_shard)]
        shard: Option<(usize, usize)>,
        /// A CI strategy matrix of at most N shards: a JSON list of {shard, nodes, command}
        /// whose commands (`keg build --shard I/N ...`) build the plan once between them
        #[arg(long, value_name = "N", conflicts_with_all = ["json", "dot", "explain", "shard"])]
        matrix: Option<usize>,
        /// Print what each selected node's cache key hashed
        #[arg(long)]
        explain: bool,
        /// Also write the planned graph as one self-contained HTML page
        #[arg(long, value_name = "FILE.html")]
        report: Option<PathBuf>,
        #[command(flatten)]
        build: BuildArgs,
    },
    /// Build the plan for real on a Docker engine: every ready node at once, cached nodes
    /// skipped, a failure stopping only what depends on it
    Build {
        #[command(flatten)]
        repos: RepoArgs,
        /// Builds at a time [default: twice the number of CPUs, at least 4]
        #[arg(long, short = 'j')]
        jobs: Option<usize>,
        /// Print what would happen and the exact commands; change nothing
        #[arg(long)]
        dry_run: bool,
        /// Keep building what does not depend on a failure (the default)
        #[arg(long, overrides_with = "fail_fast")]
        keep_going: bool,
        /// Start no new build after the first failure
        #[arg(long, overrides_with = "keep_going")]
        fail_fast: bool,
        /// When to pull external parent images
        #[arg(long, value_enum, env = "BASHBREW_PULL", default_value = "missing")]
        pull: PullArg,
        /// Tag only the first tag of each entry
        #[arg(long, visible_alias = "unique")]
        uniq: bool,
        /// Where every build's full log goes [default: <cache>/logs]
        #[arg(long)]
        log_dir: Option<PathBuf>,
        /// A buildx builder to build on (repeatable; env KEG_BUILDERS or BUILDX_BUILDER, a comma
        /// list): nodes go to builders that support their platform, natively first, --jobs at
        /// a time on each; with several, or one that is not the local engine, results go to
        /// the registry --cache-repo by key
        #[arg(
            long = "builder",
            env = "KEG_BUILDERS",
            value_delimiter = ',',
            value_name = "NAME"
        )]
        builders: Vec<String>,
        /// With builders: also pull every built or cached selected node into the local engine
        /// and tag its names
        #[arg(long)]
        load: bool,
        /// How progress is shown: `auto` (bars on a terminal, else plain lines), `tty`,
        /// `plain` (timestamped lines), `json` (one JSON event per line on stdout, see
        /// docs/plan.md; everything for people goes to stderr)
        #[arg(long, value_enum, env = "KEG_PROGRESS", default_value = "auto")]
        progress: ProgressArg,
        /// Without a terminal, a line saying what is still running after this long without
        /// output (e.g. 30s, 5m; 0: never)
        #[arg(long, env = "KEG_HEARTBEAT", value_name = "DURATION", default_value = "30s", value_parser = parse_duration)]
        heartbeat: std::time::Duration,
        /// Only part I of N balanced parts of the plan (whole connected components), as
        /// `plan --shard` prints it
        #[arg(long, value_name = "I/N", value_parser = parse_shard)]
        shard: Option<(usize, usize)>,
        /// Never build an ancestor of the selection: one without an image for its key (in the
        /// engine or the registry cache) is an error naming it
        #[arg(long)]
        no_parents: bool,
        /// Stop a build that runs longer than this (e.g. 90s, 30m, 1h30m; 0: no limit)
        #[arg(long, env = "KEG_BUILD_TIMEOUT", value_name = "DURATION", value_parser = parse_duration)]
        timeout: Option<std::time::Duration>,
        /// Push each node's tags to its target namespace as soon as it is built (or found
        /// cached), so later shards can pull it; implied by --target-namespace
        #[arg(long)]
        push: bool,
        /// Write one self-contained HTML page of the run: the graph coloured by result, a
        /// timeline per builder, durations, the critical path and each log
        #[arg(long, value_name = "FILE.html")]
        report: Option<PathBuf>,
        #[command(flatten)]
        target: TargetArgs,
        #[command(flatten)]
        build: BuildArgs,
    },
    /// Tag each node's images as TARGET/repo:tag (like `bashbrew tag`); with several
    /// --arch, each architecture into its --arch-namespace
    Tag {
        #[command(flatten)]
        repos: RepoArgs,
        /// Only the first tag of each entry
        #[arg(long, visible_alias = "unique")]
        uniq: bool,
        /// Print the commands; change nothing
        #[arg(long)]
        dry_run: bool,
        #[command(flatten)]
        target: TargetArgs,
        #[command(flatten)]
        build: BuildArgs,
    },
    /// Push each node's tags, skipping tags the registry already has (like `bashbrew
    /// push`); shared tags are never pushed, see put-shared
    Push {
        #[command(flatten)]
        repos: RepoArgs,
        /// Only the first tag of each entry
        #[arg(long, visible_alias = "unique")]
        uniq: bool,
        /// Print what would be pushed and the commands; change nothing
        #[arg(long)]
        dry_run: bool,
        /// Push even when the registry already has the image
        #[arg(long)]
        force: bool,
        #[command(flatten)]
        target: TargetArgs,
        #[command(flatten)]
        build: BuildArgs,
    },
    /// Put the multi-architecture manifest lists of every tag and shared tag, from the
    /// per-architecture images in their --arch-namespace (like `bashbrew put-shared`)
    PutShared {
        #[command(flatten)]
        repos: RepoArgs,
        /// Print the lists and commands; change nothing
        #[arg(long)]
        dry_run: bool,
        /// Put lists even when their members are unchanged
        #[arg(long)]
        force: bool,
        /// Only the --arch images, in lists under each entry's shared tags
        #[arg(long)]
        single_arch: bool,
        #[command(flatten)]
        target: TargetArgs,
    },
    /// Clean up: repack the git cache, drop pins of commits no manifest of the library
    /// names, and remove cache images (`<cache-repo>:<key>`) whose key is in no current plan
    Gc {
        /// Print what would be dropped; change nothing
        #[arg(long)]
        dry_run: bool,
        /// Keep this many of the most recent other builds of each node
        #[arg(long, default_value_t = 1, value_name = "N")]
        keep: usize,
        /// Copy the objects borrowed from local mirrors through alternates (mirrors that
        /// could not be hard-linked) into the cache and forget those mirrors
        #[arg(long)]
        dissociate: bool,
        #[command(flatten)]
        build: BuildArgs,
    },
    /// Print the normalized manifests (like `bashbrew cat`), or each repository through a
    /// Go text/template (`--format`, see docs/compat.md)
    Cat {
        #[command(flatten)]
        repos: RepoArgs,
        /// Print the parsed model as JSON instead (see docs/manifest.md)
        #[arg(long, conflicts_with_all = ["format", "format_file"])]
        json: bool,
        /// Print each repository with this Go text/template (bashbrew's data model)
        #[arg(long, short = 'f', value_name = "FORMAT")]
        format: Option<String>,
        /// Use the contents of FILE for --format (wins over --format)
        #[arg(long, short = 'F', value_name = "FILE")]
        format_file: Option<PathBuf>,
        /// Sort the repositories so that parents come before children
        #[arg(long)]
        build_order: bool,
    },
    /// Query registries (like `bashbrew remote`)
    Remote {
        #[command(subcommand)]
        command: RemoteCommand,
    },
    /// Print a shell completion script (see the README for where to put it)
    Completions {
        /// The shell
        #[arg(value_enum)]
        shell: clap_complete::Shell,
        /// A script that asks keg on every TAB, so repository and `repo:tag` arguments
        /// complete from the library directory
        #[arg(long)]
        dynamic: bool,
    },
    /// Print the keg(1) man page (roff), or write every page into a directory
    Man {
        /// Write keg.1 and one keg-COMMAND.1 per command into DIR
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
    },
}

/// `remote` subcommands.
#[derive(Debug, Subcommand)]
pub enum RemoteCommand {
    /// Print the architectures of images in their registry, with their manifest digests
    /// (like `bashbrew remote arches`)
    Arches {
        /// Machine-readable JSON instead of text
        #[arg(long)]
        json: bool,
        /// Image references: `[registry/]repo[:tag][@digest]`
        #[arg(value_name = "IMAGE", required = true)]
        images: Vec<String>,
    },
}

impl GlobalArgs {
    /// Validates the global flags into a [`Config`].
    pub fn config(self) -> Result<Config, Error> {
        let args = self;
        let mut arches: Vec<String> = Vec::new();
        let mut all_arches = false;
        for a in args.arch.iter().map(|a| a.trim()).filter(|a| !a.is_empty()) {
            if a == "all" {
                all_arches = true;
            } else if !arch::is_known(a) {
                return Err(Error::Usage {
                    option: "--arch",
                    value: a.to_string(),
                    expected: format!(
                        "expected all or one of {}",
                        arch::names().collect::<Vec<_>>().join(", ")
                    ),
                });
            } else if !arches.iter().any(|x| x == a) {
                arches.push(a.to_string());
            }
        }
        if arches.is_empty() && !all_arches {
            arches.push(arch::DEFAULT.to_string());
        }
        let cache = args.cache.unwrap_or_else(default_cache);
        let git_mirrors = args
            .git_mirrors
            .iter()
            .filter(|m| !m.trim().is_empty())
            .map(|m| {
                crate::git::parse_mirror(m).map_err(|e| Error::Usage {
                    option: "--git-mirror",
                    value: m.clone(),
                    expected: e.to_string(),
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Config {
            library: args.library,
            arch: arches
                .first()
                .cloned()
                .unwrap_or_else(|| arch::DEFAULT.to_string()),
            arches,
            all_arches,
            namespace: args.namespace,
            constraints: args
                .constraints
                .into_iter()
                .filter(|c| !c.is_empty())
                .collect(),
            exclusive_constraints: args.exclusive_constraints,
            no_sort: args.no_sort,
            cache,
            git_mirrors,
            fetch: crate::git::FetchSettings {
                depth: if args.unshallow { 0 } else { args.git_depth },
                jobs: args.fetch_jobs.max(1),
            },
            retries: args.retries,
            arch_namespaces: args.arch_namespaces,
            debug: args.debug,
        })
    }
}

/// keg's default cache, or bashbrew's (`$XDG_CACHE_HOME/bashbrew`, `~/.cache/bashbrew`) when
/// keg runs as `bashbrew` (a symlink or a copy by that name): scripts written for bashbrew
/// reach its cache by that path (`git -C ~/.cache/bashbrew/git fetch ...` in bashbrew's CI
/// matrix generator).
fn default_cache() -> PathBuf {
    let keg = crate::config::default_cache();
    let invoked_as = std::env::args_os()
        .next()
        .map(PathBuf::from)
        .and_then(|p| p.file_name().map(|n| n.to_os_string()));
    match invoked_as {
        Some(name) if name == "bashbrew" => keg.with_file_name("bashbrew"),
        _ => keg,
    }
}

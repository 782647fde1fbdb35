//! Command-line flags (clap), validated once into a [`Config`] and a [`Command`].
//!
//! Invariant: everything after this module works with checked values; flags and the
//! bashbrew environment variables (BASHBREW_LIBRARY, BASHBREW_ARCH, BASHBREW_NAMESPACE,
//! BASHBREW_CONSTRAINTS, BASHBREW_CACHE) mean what they mean in bashbrew.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::arch;
use crate::error::Error;

#[derive(Debug, Parser)]
#[command(
    name = "keg",
    version,
    about = "Build whole libraries of container images from Official Images manifests",
    long_about = "keg reads a library of Official Images manifest files (the docker-library \
        `library/` format), plans every build across repositories, and builds them in \
        parallel. Its commands, flags and environment variables follow bashbrew's."
)]
pub struct Cli {
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
    /// Which architecture to act for
    #[arg(long, global = true, env = "BASHBREW_ARCH", default_value = arch::DEFAULT)]
    pub arch: String,
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
    List {
        #[command(flatten)]
        repos: RepoArgs,
        /// Only the first tag of each entry
        #[arg(long)]
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
    },
    /// Print the normalized manifests (like `bashbrew cat`)
    Cat {
        #[command(flatten)]
        repos: RepoArgs,
        /// Print the parsed model as JSON instead (see docs/manifest.md)
        #[arg(long)]
        json: bool,
    },
}

/// Validated global settings.
#[derive(Debug, Clone)]
pub struct Config {
    pub library: PathBuf,
    pub arch: String,
    pub namespace: String,
    pub constraints: Vec<String>,
    pub exclusive_constraints: bool,
    pub no_sort: bool,
    pub cache: PathBuf,
}

impl Config {
    pub fn from_args(args: GlobalArgs) -> Result<Config, Error> {
        if !arch::is_known(&args.arch) {
            return Err(Error::Usage {
                option: "--arch",
                value: args.arch,
                expected: format!(
                    "expected one of {}",
                    arch::names().collect::<Vec<_>>().join(", ")
                ),
            });
        }
        let cache = args.cache.unwrap_or_else(default_cache);
        Ok(Config {
            library: args.library,
            arch: args.arch,
            namespace: args.namespace,
            constraints: args
                .constraints
                .into_iter()
                .filter(|c| !c.is_empty())
                .collect(),
            exclusive_constraints: args.exclusive_constraints,
            no_sort: args.no_sort,
            cache,
        })
    }

    /// `NS/repo` or `repo` (bashbrew's `path.Join(namespace, repo)`).
    pub fn image_repo(&self, repo: &str) -> String {
        let ns = self.namespace.trim_matches('/');
        if ns.is_empty() {
            repo.to_string()
        } else {
            format!("{ns}/{repo}")
        }
    }
}

fn default_cache() -> PathBuf {
    let home = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir);
    home.join("keg")
}

//! keg builds whole libraries of container images from Official Images manifests.
//!
//! The pipeline, one module per stage: [`manifest`] (parse and validate one file) ->
//! [`library`] (find files, resolve repository arguments) -> [`git`] / [`dockerfile`] /
//! [`context`] (sources at a commit) -> plan (graph, cache keys) -> [`exec`] (build) ->
//! report (what people and CI see). [`run`] reads like that pipeline.

pub mod arch;
pub mod cli;
pub mod context;
pub mod dockerfile;
pub mod error;
pub mod exec;
pub mod git;
pub mod library;
pub mod manifest;
pub mod query;
pub mod shard;
pub mod span;

use std::io::Write;

use clap::Parser;

pub use error::Error;

/// Entry point used by `main.rs`: parses flags, runs, prints errors; returns the exit code.
pub fn main() -> i32 {
    let cli = cli::Cli::parse();
    match run(cli) {
        Ok(()) => 0,
        Err(Error::Output(e)) if e.kind() == std::io::ErrorKind::BrokenPipe => 0,
        Err(error) => {
            eprintln!("{error}");
            error.exit_code()
        }
    }
}

/// Runs one command.
pub fn run(cli: cli::Cli) -> Result<(), Error> {
    let config = cli::Config::from_args(cli.global)?;
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    match cli.command {
        cli::Command::List {
            repos,
            uniq,
            only_repos,
            apply_constraints,
            arch_filter,
        } => {
            let loaded = load(&config, &repos)?;
            let options = query::ListOptions {
                uniq,
                only_repos,
                apply_constraints,
                arch_filter,
            };
            query::list(&config, &loaded.repos, options, &mut out)
        }
        cli::Command::Cat { repos, json } => {
            let loaded = load(&config, &repos)?;
            if json {
                query::cat_json(&loaded.repos, &mut out)
            } else {
                query::cat(&loaded.repos, &mut out)
            }
        }
    }
    .map_err(Error::Output)?;
    out.flush().map_err(Error::Output)
}

/// Resolves repository arguments and loads their manifests, printing warnings.
fn load(config: &cli::Config, args: &cli::RepoArgs) -> Result<library::Loaded, Error> {
    let names = library::arguments(&config.library, args.all, &args.repos)?;
    let loaded = library::load(&config.library, &names)?;
    for warning in &loaded.warnings {
        eprintln!("{warning}\n");
    }
    Ok(loaded)
}

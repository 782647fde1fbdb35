//! keg builds whole libraries of container images from Official Images manifests.
//!
//! The pipeline, one module per stage: [`manifest`] (parse and validate one file) ->
//! [`library`] (find files, resolve repository arguments) -> [`git`] / [`dockerfile`] /
//! [`context`] via [`sources`] (each entry's commit, Dockerfile and parents) -> plan
//! (graph, cache keys) -> [`exec`] (build; [`oci`] imports `Builder: oci-import` layouts
//! instead) -> report (what people and CI see). Beside the pipeline, bashbrew's query
//! commands: [`cat`] (`cat --format`, Go templates from [`template`]) and [`remote`]
//! (`remote arches`). [`run`] dispatches each command to the stages it needs.

pub mod arch;
pub mod builders;
pub mod cat;
pub mod cli;
pub mod complete;
pub mod config;
pub mod config_file;
pub mod context;
pub mod debug;
pub mod docker;
pub mod dockerfile;
pub mod error;
pub mod exec;
pub mod gc;
pub mod git;
pub mod html;
pub mod interrupt;
pub mod library;
pub mod lineage;
pub mod manifest;
pub mod oci;
pub mod order;
pub mod plan;
pub mod process;
pub mod publish;
pub mod query;
pub mod record;
pub mod registry;
pub mod remote;
pub mod report;
pub mod retry;
pub mod session;
pub mod shard;
pub mod sources;
pub mod span;
pub mod template;
pub mod utc;

use std::io::Write;

use clap::{CommandFactory, FromArgMatches};

pub use error::Error;

use cli::{Command, RepoArgs};
use lineage::Filter;
use session::Session;

/// Entry point used by `main.rs`: parses flags (and bashbrew's `--config` flags file),
/// runs, prints errors; returns the exit code.
pub fn main() -> i32 {
    // A completion request (`KEG_COMPLETE=bash keg -- ...`) is answered and exits here.
    complete::complete_env();
    let matches = cli::Cli::command().get_matches();
    let mut cli = match cli::Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    let dir = config_file::config_dir(cli.global.config.as_deref());
    let flags = config_file::load(&dir).and_then(|file| match file {
        Some(file) => {
            for warning in &file.warnings {
                eprintln!("{warning}\n");
            }
            config_file::apply(&file, &mut cli, &matches)
        }
        None => Ok(()),
    });
    if let Err(error) = flags {
        eprintln!("{error}");
        return error.exit_code();
    }
    match run(cli) {
        Ok(()) => 0,
        Err(Error::Output(e)) if e.kind() == std::io::ErrorKind::BrokenPipe => 0,
        Err(error) => {
            // After Ctrl-C or SIGTERM, whatever failed failed because of it (a docker query
            // stopped half-way): keg was interrupted.
            let error = if interrupt::interrupted() {
                Error::Interrupted
            } else {
                error
            };
            if let Error::Interrupted = error {
                // Nothing may outlive keg, whatever stopped waiting for it.
                process::kill_all();
            }
            eprintln!("{error}");
            error.exit_code()
        }
    }
}

/// Runs one command.
pub fn run(cli: cli::Cli) -> Result<(), Error> {
    // Commands about keg itself need no valid settings.
    match &cli.command {
        Command::Completions { shell, dynamic } => {
            let mut out = std::io::stdout().lock();
            return complete::completions(*shell, *dynamic, &mut out);
        }
        Command::Man { dir } => {
            let mut out = std::io::stdout().lock();
            return complete::man(dir.as_deref(), &mut out);
        }
        _ => {}
    }
    let config = cli.global.config()?;
    // Before the first external process (docker, a credential helper) of every command
    // that runs any: from here on, Ctrl-C and SIGTERM stop keg's children, not keg alone.
    if matches!(
        cli.command,
        Command::Plan { .. }
            | Command::Build { .. }
            | Command::Tag { .. }
            | Command::Push { .. }
            | Command::PutShared { .. }
            | Command::Remote { .. }
            | Command::Cat {
                format: Some(_),
                ..
            }
            | Command::Cat {
                format_file: Some(_),
                ..
            }
    ) {
        interrupt::install();
    }
    if config.debug {
        debug::enable(&config.cache);
    }
    let mut session = Session::new(config);
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    match cli.command {
        Command::List {
            repos,
            uniq,
            only_repos,
            apply_constraints,
            arch_filter,
            build_order,
        } => {
            let mut repos = load(&session, &repos)?;
            if build_order {
                repos = lineage::build_order(&session, &repos, apply_constraints)?;
            }
            let options = query::ListOptions {
                uniq,
                only_repos,
                apply_constraints,
                arch_filter,
            };
            query::list(&session.config, &repos, options, &mut out).map_err(Error::Output)?;
        }
        Command::Cat {
            repos,
            json,
            format,
            format_file,
            build_order,
        } => {
            // bashbrew reads the template file before loading anything; --format-file wins.
            let file_path = format_file
                .as_ref()
                .map(|p| p.to_string_lossy().into_owned());
            let source = match (&file_path, &format) {
                (Some(path), _) => Some(cat::Source::File {
                    path,
                    text: std::fs::read_to_string(path).map_err(|source| Error::Io {
                        context: "failed reading --format-file",
                        path: path.into(),
                        source,
                    })?,
                }),
                (None, Some(text)) => Some(cat::Source::Format(text)),
                (None, None) => None,
            };
            let mut repos = load(&session, &repos)?;
            if build_order {
                repos = lineage::sort_repos(&session, &repos, false)?;
            }
            match source {
                Some(source) => {
                    let template = cat::parse(&source)?;
                    // Templates read sources and ask docker; they change nothing.
                    interrupt::abortable(|| cat::cat(&session, &repos, &template, &mut out))?;
                }
                None if json => query::cat_json(&repos, &mut out).map_err(Error::Output)?,
                None => query::cat(&repos, &mut out).map_err(Error::Output)?,
            }
        }
        Command::Remote {
            command: cli::RemoteCommand::Arches { json, images },
        } => {
            out.flush().map_err(Error::Output)?;
            let registry = registry::Registry::new().with_retries(session.config.retries);
            interrupt::abortable(|| remote::arches(&registry, &images, json, &mut out))?;
        }
        Command::Fetch {
            repos,
            apply_constraints,
            arch_filter,
        } => {
            let repos = load(&session, &repos)?;
            let filter = Filter {
                apply_constraints,
                arch_filter,
            };
            lineage::fetch(&session, &repos, filter)?;
        }
        Command::From { repos, lineage } => {
            let repos = load(&session, &repos)?;
            lineage::from(&session, &repos, lineage.uniq, filter(&lineage), &mut out)?;
        }
        Command::Parents {
            repos,
            depth,
            lineage,
        } => {
            let filter = filter(&lineage);
            lineage::parents(&mut session, &repos, depth, lineage.uniq, filter, &mut out)?;
        }
        Command::Children {
            images,
            depth,
            lineage,
        } => {
            let all = load(
                &session,
                &RepoArgs {
                    all: true,
                    repos: Vec::new(),
                },
            )?;
            let filter = filter(&lineage);
            lineage::children(
                &session,
                &all,
                &images,
                depth,
                lineage.uniq,
                filter,
                &mut out,
            )?;
        }
        Command::Plan {
            repos: repo_args,
            json,
            dot,
            shard,
            matrix,
            explain,
            report,
            build,
        } => {
            let repos = load(&session, &repo_args)?;
            let engine = docker::Engine::detect().ok();
            let mut settings = build.settings()?;
            settings.features = docker::Engine::features(engine.as_ref());
            let options = plan::PlanOptions {
                arches: session.config.plan_arches(&repos),
                uniq: false,
                cache_repo: build.cache_repo.trim_end_matches('/').to_string(),
                build: settings,
                engine_platform: engine.as_ref().map(|e| e.platform.clone()),
            };
            // Planned once without images, then with the engine's images of what that plan
            // names: a filtered listing (see docker::Engine::images_of).
            let mut plan = interrupt::abortable(|| plan::make(&session, &repos, &options, None))?;
            if let Some(engine) = engine
                && let Ok(images) =
                    engine.images_of(&plan::engine_interest(&plan, &options.cache_repo))
            {
                plan =
                    interrupt::abortable(|| plan::make(&session, &repos, &options, Some(&images)))?;
            }
            if let Some((part, parts)) = shard {
                plan = plan.shard(part, parts);
            }
            if let Some(path) = &report {
                html::write(path, &record::RunRecord::from_plan(&plan, command_line()))?;
            }
            if let Some(parts) = matrix {
                if parts == 0 {
                    return Err(Error::Usage {
                        option: "--matrix",
                        value: "0".to_string(),
                        expected: "expected at least 1 shard".to_string(),
                    });
                }
                let command = |part: usize, parts: usize| {
                    matrix_command(&session.config, &repo_args, &build, part, parts)
                };
                plan.write_matrix(&mut out, parts, command)
            } else if json {
                plan.write_json(&mut out)
            } else if dot {
                plan.write_dot(&mut out)
            } else if explain {
                plan.write_explain(&mut out, |_| true)
            } else {
                plan.write_text(&mut out)
            }
            .map_err(Error::Output)?;
        }
        Command::Build {
            repos,
            jobs,
            dry_run,
            keep_going: _,
            fail_fast,
            pull,
            uniq,
            log_dir,
            builders,
            load: load_results,
            progress,
            heartbeat,
            shard,
            no_parents,
            timeout,
            push,
            report,
            target,
            build,
        } => {
            let repos = load(&session, &repos)?;
            let arches = session.config.plan_arches(&repos);
            let publish = if push || target.target_namespace.is_some() {
                let targets = targets(&session.config, &target, true)?;
                targets.check(&arches, "build --push")?;
                Some(publish::PublishOptions {
                    targets,
                    dry_run,
                    force: false,
                    uniq,
                    retries: session.config.retries,
                })
            } else {
                None
            };
            let jobs = jobs.unwrap_or_else(exec::default_jobs);
            let recorder = report
                .as_ref()
                .map(|_| std::sync::Arc::new(record::RunRecorder::new(command_line(), jobs)));
            let options = exec::BuildOptions {
                recorder: recorder.clone(),
                publish,
                plan: plan::PlanOptions {
                    arches,
                    uniq,
                    cache_repo: build.cache_repo.trim_end_matches('/').to_string(),
                    build: build.settings()?,
                    engine_platform: None,
                },
                jobs,
                dry_run,
                fail_fast,
                pull: pull.into(),
                log_dir: log_dir.unwrap_or_else(|| session.config.cache.join("logs")),
                no_parents,
                timeout: timeout.filter(|t| !t.is_zero()),
                builders: builder_names(builders),
                load: load_results,
                retries: session.config.retries,
                shard,
                progress: progress.into(),
                heartbeat: Some(heartbeat).filter(|h| !h.is_zero()),
            };
            out.flush().map_err(Error::Output)?;
            let result = exec::build(&session, &repos, &options);
            // The page is written whatever the build's result: failures are what it is for.
            if let (Some(path), Some(recorder)) = (&report, &recorder) {
                html::write(path, &recorder.record())?;
                eprintln!("report: {}", path.display());
            }
            result?;
        }
        Command::Tag {
            repos,
            uniq,
            dry_run,
            target,
            build,
        } => {
            let repos = load(&session, &repos)?;
            let options = publish::PublishOptions {
                targets: targets(&session.config, &target, false)?,
                dry_run,
                force: false,
                uniq,
                retries: session.config.retries,
            };
            let (plan, images) = plan_with_images(&session, &repos, &build, uniq, &options, "tag")?;
            let registry = registry::Registry::new().with_retries(session.config.retries);
            publish::tag(
                &session.config,
                &plan,
                &images,
                &options,
                &registry,
                &mut out,
            )?;
        }
        Command::Push {
            repos,
            uniq,
            dry_run,
            force,
            target,
            build,
        } => {
            let repos = load(&session, &repos)?;
            let options = publish::PublishOptions {
                targets: targets(&session.config, &target, true)?,
                dry_run,
                force,
                uniq,
                retries: session.config.retries,
            };
            let (plan, images) =
                plan_with_images(&session, &repos, &build, uniq, &options, "push")?;
            let registry = registry::Registry::new().with_retries(session.config.retries);
            let mut err = std::io::stderr();
            publish::push(
                &session.config,
                &plan,
                &images,
                &options,
                &registry,
                &mut out,
                &mut err,
            )?;
        }
        Command::PutShared {
            repos,
            dry_run,
            force,
            single_arch,
            target,
        } => {
            let repos = load(&session, &repos)?;
            let targets = targets(&session.config, &target, true)?;
            let Some(target_namespace) = targets.default.clone() else {
                return Err(Error::Flags(
                    "either --target-namespace or --namespace is required for put-shared"
                        .to_string(),
                ));
            };
            let options = publish::SharedOptions {
                target_namespace,
                arch_namespaces: targets.per_arch,
                single_arch,
                dry_run,
                force,
                retries: session.config.retries,
            };
            let registry = registry::Registry::new().with_retries(session.config.retries);
            let mut err = std::io::stderr();
            publish::put_shared(
                &session.config,
                &repos,
                &options,
                &registry,
                &mut out,
                &mut err,
            )?;
        }
        Command::Gc {
            dry_run,
            keep,
            dissociate,
            build,
        } => {
            let repos = load(
                &session,
                &RepoArgs {
                    all: true,
                    repos: Vec::new(),
                },
            )?;
            let options = gc::GcOptions {
                dry_run,
                keep,
                dissociate,
                plan: plan::PlanOptions {
                    arches: Vec::new(),
                    uniq: false,
                    cache_repo: build.cache_repo.trim_end_matches('/').to_string(),
                    build: build.settings()?,
                    engine_platform: None,
                },
            };
            gc::gc(&session, &repos, &options, &mut out)?;
        }
        Command::Context { entry, sha256 } => {
            let repos = load(
                &session,
                &RepoArgs {
                    all: false,
                    repos: vec![entry],
                },
            )?;
            query::context(&session, &repos[0], sha256, &mut out)?;
        }
        // Answered above, before the settings.
        Command::Completions { .. } | Command::Man { .. } => {}
    }
    out.flush().map_err(Error::Output)
}

/// `--builder` (or KEG_BUILDERS), else BUILDX_BUILDER: a comma list of builder names.
fn builder_names(given: Vec<String>) -> Vec<String> {
    let names: Vec<String> = if given.is_empty() {
        std::env::var("BUILDX_BUILDER")
            .unwrap_or_default()
            .split(',')
            .map(str::to_string)
            .collect()
    } else {
        given
    };
    let mut out: Vec<String> = Vec::new();
    for name in names.iter().map(|n| n.trim()).filter(|n| !n.is_empty()) {
        if !out.iter().any(|o| o == name) {
            out.push(name.to_string());
        }
    }
    out
}

/// The target namespaces; `--namespace` counts only when `namespace_is_target` (push,
/// put-shared), as in bashbrew (`tag` tags from `--namespace`).
fn targets(
    config: &config::Config,
    args: &cli::TargetArgs,
    namespace_is_target: bool,
) -> Result<publish::Targets, Error> {
    let namespace = if namespace_is_target {
        config.namespace.as_str()
    } else {
        ""
    };
    publish::Targets::new(
        args.target_namespace.as_deref(),
        namespace,
        &config.arch_namespaces,
    )
}

/// The plan `tag` and `push` act on, with the engine's images (empty without an engine in
/// a dry run).
fn plan_with_images(
    session: &Session,
    repos: &[library::Repo],
    build: &cli::BuildArgs,
    uniq: bool,
    options: &publish::PublishOptions,
    command: &str,
) -> Result<(plan::Plan, std::collections::HashMap<String, String>), Error> {
    let arches = session.config.plan_arches(repos);
    options.targets.check(&arches, command)?;
    let engine = match docker::Engine::detect() {
        Ok(engine) => Some(engine),
        Err(_) if options.dry_run => None,
        Err(why) => return Err(why.into()),
    };
    let images = match &engine {
        Some(engine) => engine.images().map_err(|e| Error::Engine(e.to_string()))?,
        None => Default::default(),
    };
    let mut settings = build.settings()?;
    settings.features = docker::Engine::features(engine.as_ref());
    let plan_options = plan::PlanOptions {
        arches,
        uniq,
        cache_repo: build.cache_repo.trim_end_matches('/').to_string(),
        build: settings,
        engine_platform: engine.map(|e| e.platform),
    };
    let plan = interrupt::abortable(|| plan::make(session, repos, &plan_options, Some(&images)))?;
    Ok((plan, images))
}

fn filter(args: &cli::LineageArgs) -> Filter {
    Filter {
        apply_constraints: args.apply_constraints,
        arch_filter: args.arch_filter,
    }
}

/// This run's command line, for report titles (`keg build --all`).
/// `keg [global flags] build --shard I/N [build flags] REPO...`: the command of one matrix
/// shard, made of this invocation's settings (the git cache and mirrors are the CI machine's
/// own: BASHBREW_CACHE, KEG_GIT_MIRRORS).
fn matrix_command(
    config: &config::Config,
    repos: &RepoArgs,
    build: &cli::BuildArgs,
    part: usize,
    parts: usize,
) -> String {
    let mut words: Vec<String> = vec!["keg".into()];
    let mut flag = |name: &str, value: &str| {
        words.push(name.to_string());
        words.push(value.to_string());
    };
    flag("--library", &config.library.display().to_string());
    let arches = if config.all_arches {
        "all".to_string()
    } else {
        config.arches.join(",")
    };
    flag("--arch", &arches);
    if !config.namespace.is_empty() {
        flag("--namespace", &config.namespace);
    }
    for constraint in &config.constraints {
        flag("--constraint", constraint);
    }
    if config.exclusive_constraints {
        words.push("--exclusive-constraints".into());
    }
    words.push("build".into());
    words.push("--shard".into());
    words.push(format!("{part}/{parts}"));
    words.push("--cache-repo".into());
    words.push(build.cache_repo.clone());
    for (name, values) in [
        ("--build-arg", &build.build_args),
        ("--cache-from", &build.cache_from),
        ("--cache-to", &build.cache_to),
    ] {
        for value in values {
            words.push(name.into());
            words.push(value.clone());
        }
    }
    for value in &build.build_opts {
        words.push(format!("--build-opt={value}"));
    }
    if let Some(syntax) = &build.buildkit_syntax {
        words.push("--buildkit-syntax".into());
        words.push(syntax.clone());
    }
    if repos.all {
        words.push("--all".into());
    }
    words.extend(repos.repos.iter().cloned());
    words
        .iter()
        .map(|w| shell_word(w))
        .collect::<Vec<_>>()
        .join(" ")
}

/// A word as a POSIX shell reads it back.
fn shell_word(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:=@,+%".contains(c));
    if plain {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', "'\\''"))
    }
}

fn command_line() -> String {
    let mut words = vec!["keg".to_string()];
    words.extend(std::env::args().skip(1).map(|a| {
        if a.is_empty() || a.contains(|c: char| c.is_whitespace() || "'\"$`\\".contains(c)) {
            format!("'{}'", a.replace('\'', "'\\''"))
        } else {
            a
        }
    }));
    words.join(" ")
}

/// Resolves repository arguments and loads their manifests, printing warnings.
fn load(session: &Session, args: &RepoArgs) -> Result<Vec<library::Repo>, Error> {
    let library = &session.config.library;
    let names = library::arguments(library, args.all, &args.repos)?;
    let loaded = library::load(library, &names)?;
    for warning in &loaded.warnings {
        eprintln!("{warning}\n");
    }
    Ok(loaded.repos)
}

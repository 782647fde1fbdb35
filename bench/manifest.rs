//! Benchmark: parse + validate + list of the Official Images corpus, in process.
//!
//! Usage: `cargo bench --bench manifest [-- LIBRARY_DIR]` (default
//! `../shared/corpus/official-images/library`). Prints the median and minimum of repeated
//! runs (`KEG_BENCH_RUNS`, default 50) of:
//!
//! - `syntax`: the grammar alone (pest pairs to raw paragraphs), one thread;
//! - `parse+validate`: `keg::manifest::parse` of every file, one thread;
//! - `parse+validate+list`: the same plus the `list` lines, one thread;
//! - `load+list --all`: what `keg list --all` does after startup: list the library
//!   directory, read and validate every file on the rayon pool (`library::load`) and write
//!   the `list` output (`query::list`) into memory.
//!
//! Files are read once up front except for `load+list --all`, which reads them every run.
//! `KEG_BENCH_PROFILE=N` instead runs `parse+validate+list` N times untimed, for `perf` or
//! `valgrind --tool=callgrind`.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use keg::config::Config;
use keg::query::{self, ListOptions};

fn main() {
    let dir = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with('-'))
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("../shared/corpus/official-images/library"));
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|e| {
            let path = e.expect("directory entry").path();
            let bytes = std::fs::read(&path).expect("reading a manifest");
            (path.to_string_lossy().into_owned(), bytes)
        })
        .collect();
    files.sort();
    let total: usize = files.iter().map(|(_, b)| b.len()).sum();

    if let Some(n) = env_number("KEG_BENCH_PROFILE") {
        for _ in 0..n {
            std::hint::black_box(files.iter().map(|(n, b)| listed(n, b)).sum::<usize>());
        }
        return;
    }

    println!("{} files, {} bytes", files.len(), total);
    let syntax = measure(|| {
        files
            .iter()
            .map(|(_, bytes)| {
                keg::manifest::parse::paragraphs(&String::from_utf8_lossy(bytes)).len()
            })
            .sum()
    });
    report("syntax (grammar -> paragraphs), 1 thread", syntax, total);
    let validate = measure(|| {
        files
            .iter()
            .map(|(name, bytes)| parsed(name, bytes).manifest.entries.len())
            .sum()
    });
    report("parse+validate, 1 thread", validate, total);
    let list = measure(|| files.iter().map(|(n, b)| listed(n, b)).sum());
    report("parse+validate+list, 1 thread", list, total);

    let config = Config {
        library: dir.clone(),
        arch: "amd64".to_string(),
        arches: vec!["amd64".to_string()],
        all_arches: false,
        namespace: String::new(),
        constraints: Vec::new(),
        exclusive_constraints: false,
        no_sort: false,
        cache: PathBuf::from("/nonexistent"),
        git_mirrors: Vec::new(),
        fetch: Default::default(),
        retries: 0,
        arch_namespaces: Vec::new(),
        debug: false,
    };
    let all = measure(|| load_and_list(&config, &dir));
    report(
        &format!(
            "load+list --all (reads files), {} threads",
            rayon::current_num_threads()
        ),
        all,
        total,
    );
}

fn parsed(name: &str, bytes: &[u8]) -> keg::manifest::Parsed {
    keg::manifest::parse(name, bytes).expect("corpus manifests are valid")
}

/// Parses one file and renders its `list` lines as `keg list` does; returns their length.
fn listed(name: &str, bytes: &[u8]) -> usize {
    let parsed = parsed(name, bytes);
    let repo = Path::new(name)
        .file_name()
        .map_or(name.into(), |n| n.to_string_lossy());
    let mut out = Vec::new();
    for entry in &parsed.manifest.entries {
        for tag in entry.tags.iter().chain(&entry.shared_tags) {
            out.extend_from_slice(repo.as_bytes());
            out.push(b':');
            out.extend_from_slice(tag.as_bytes());
            out.push(b'\n');
        }
    }
    out.len()
}

fn load_and_list(config: &Config, dir: &Path) -> usize {
    let names = keg::library::arguments(dir, true, &[]).expect("listing the library");
    let loaded = keg::library::load(dir, &names).expect("corpus manifests are valid");
    let mut out = Vec::new();
    query::list(config, &loaded.repos, ListOptions::default(), &mut out).expect("in memory");
    out.len()
}

fn env_number(name: &str) -> Option<usize> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

fn measure(mut run: impl FnMut() -> usize) -> Vec<Duration> {
    let runs = env_number("KEG_BENCH_RUNS").unwrap_or(50).max(1);
    std::hint::black_box(run()); // warm-up
    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs {
        let start = Instant::now();
        std::hint::black_box(run());
        times.push(start.elapsed());
    }
    times.sort();
    times
}

fn report(label: &str, times: Vec<Duration>, bytes: usize) {
    let median = times[times.len() / 2];
    let mb_s = bytes as f64 / median.as_secs_f64() / 1e6;
    println!(
        "{label}: median {:.2} ms, min {:.2} ms ({mb_s:.0} MB/s)",
        median.as_secs_f64() * 1e3,
        times[0].as_secs_f64() * 1e3
    );
}

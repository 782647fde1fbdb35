//! Benchmark: parse + validate + list of the Official Images corpus, in process.
//!
//! Usage: `cargo bench --bench manifest [-- LIBRARY_DIR]` (default
//! `../shared/corpus/official-images/library`). Prints the median and minimum of repeated
//! runs for one thread (files parsed one after another) and for the rayon pool (files
//! parsed in parallel, as `keg list --all` does).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use rayon::prelude::*;

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
    println!("{} files, {} bytes", files.len(), total);

    let serial = measure(|| {
        files
            .iter()
            .map(|(name, bytes)| entries(name, bytes))
            .sum::<usize>()
    });
    let parallel = measure(|| {
        files
            .par_iter()
            .map(|(name, bytes)| entries(name, bytes))
            .sum::<usize>()
    });
    report("parse+validate+list, 1 thread", serial, total);
    report(
        &format!(
            "parse+validate+list, {} threads",
            rayon::current_num_threads()
        ),
        parallel,
        total,
    );
}

/// Parses one file and renders its `list` lines; returns the number of lines.
fn entries(name: &str, bytes: &[u8]) -> usize {
    let parsed = keg::manifest::parse(name, bytes).expect("corpus manifests are valid");
    parsed
        .manifest
        .entries
        .iter()
        .flat_map(|e| e.tags.iter().chain(&e.shared_tags))
        .map(|tag| format!("{name}:{tag}").len())
        .filter(|len| *len > 0)
        .count()
}

fn measure(mut run: impl FnMut() -> usize) -> Vec<Duration> {
    let mut times = Vec::new();
    for _ in 0..50 {
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

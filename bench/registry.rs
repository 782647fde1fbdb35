//! Benchmark: manifest queries against a registry, in process (HTTP) vs
//! `docker buildx imagetools inspect --raw` (the fallback).
//!
//! Usage: `cargo bench --bench registry [-- REFERENCE [COUNT]]` (default
//! `$KEG_TEST_REGISTRY/keg-test/busybox:latest`, i.e. the rig's registry copy of the base
//! image, and 80 queries). Prints the median and minimum of repeated runs of COUNT queries
//! one after another and on 8 threads; buildx runs once per mode (~50-150 ms per query).
//! Under `cargo test --all-targets` (no `--bench` flag) it only smoke-tests: 8 queries, one
//! run each.

use std::time::{Duration, Instant};

use keg::registry::{QueryPath, Registry, RegistryOptions};

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let registry = std::env::var("KEG_TEST_REGISTRY").unwrap_or_else(|_| "127.0.0.1:5000".into());
    let reference = args
        .first()
        .cloned()
        .unwrap_or_else(|| format!("{registry}/keg-test/busybox:latest"));
    let bench = std::env::args().any(|a| a == "--bench");
    let count: usize = args
        .get(1)
        .map_or(if bench { 80 } else { 8 }, |c| c.parse().expect("COUNT"));
    let http_runs = if bench { 9 } else { 1 };
    println!("{count} manifest queries of {reference}");
    for (path, runs) in [(QueryPath::Http, http_runs), (QueryPath::Buildx, 1)] {
        for threads in [1, 8] {
            let mut times: Vec<Duration> = (0..runs)
                .map(|_| {
                    // A new client per run: connections and tokens are set up inside the timing.
                    let client = Registry::with_options(RegistryOptions {
                        path,
                        ..RegistryOptions::from_env()
                    });
                    time(&client, &reference, count, threads)
                })
                .collect();
            times.sort();
            println!(
                "{path:?}, {threads} thread(s): median {:>9.1?}, min {:>9.1?}",
                times[times.len() / 2],
                times[0]
            );
        }
    }
}

fn time(client: &Registry, reference: &str, count: usize, threads: usize) -> Duration {
    let start = Instant::now();
    std::thread::scope(|scope| {
        for t in 0..threads {
            scope.spawn(move || {
                for _ in (t..count).step_by(threads) {
                    let found = client.manifest(reference).expect("query");
                    assert!(found.is_some(), "{reference} is not in the registry");
                }
            });
        }
    });
    start.elapsed()
}

//! A synthetic run for report tests and pictures.

use keg::record::{NodeOutcome, Phase, RecordNode, RunKind, RunRecord};

/// A build of `n` nodes shaped like a nightly run of a large library: a few bases with many
/// children, chains, singletons; failures and the nodes they skip, cache hits, waits for a
/// builder. Deterministic.
pub fn synthetic(n: usize, jobs: usize) -> RunRecord {
    let mut r = RunRecord::new(
        RunKind::Build,
        format!("keg build --all --jobs {jobs}"),
        jobs,
    );
    r.started_at = "2026-12-01T02:00:00Z".into();
    let mut seed = 7u64;
    let mut rand = move |m: u64| {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (seed >> 33) % m.max(1)
    };
    let repos = [
        "alpine", "debian", "ubuntu", "python", "node", "golang", "php", "ruby", "postgres",
        "redis", "nginx", "httpd", "openjdk", "rust", "mysql", "mongo",
    ];
    for i in 0..n {
        let repo = repos[i % repos.len()];
        let id = format!("{repo}:{}.{}-v{i}@amd64", 1 + i / 40, i % 7);
        r.nodes.push(RecordNode {
            id: id.clone(),
            repo: repo.into(),
            tags: vec![format!("{}.{}-v{i}", 1 + i / 40, i % 7)],
            arch: "amd64".into(),
            builder: if i % 5 == 0 { "classic" } else { "buildkit" }.into(),
            key: format!("{i:064x}"),
            outcome: NodeOutcome::Planned,
            reason: None,
            lane: None,
            ready_ms: None,
            started_ms: None,
            finished_ms: None,
            decided_ms: None,
            log: Some(format!("/var/cache/keg/logs/20261201T020000Z/{id}.log")),
            retries: 0,
            push_error: None,
            ancestor: false,
        });
    }
    for i in 1..n {
        let k = rand(10);
        if k < 3 && i > 3 {
            r.edges.push((rand(3) as usize, i));
        } else if k < 6 && i > 10 {
            r.edges.push((i - 1 - rand(8) as usize, i));
        }
    }
    let mut parents = vec![Vec::new(); n];
    for &(p, c) in &r.edges {
        parents[c].push(p);
    }
    let start = 1_500;
    let mut lanes = vec![start; jobs];
    for (i, parents) in parents.iter().enumerate() {
        let ready = parents
            .iter()
            .map(|&p| {
                r.nodes[p]
                    .finished_ms
                    .or(r.nodes[p].decided_ms)
                    .unwrap_or(start)
            })
            .max()
            .unwrap_or(start);
        let doomed = parents.iter().any(|&p| {
            matches!(
                r.nodes[p].outcome,
                NodeOutcome::Failed | NodeOutcome::Skipped
            )
        });
        let roll = rand(100);
        let node = &mut r.nodes[i];
        if doomed {
            node.outcome = NodeOutcome::Skipped;
            node.reason = Some("depends on a node that failed".into());
            node.decided_ms = Some(ready);
            node.log = None;
        } else if roll < 35 {
            node.outcome = NodeOutcome::Cached;
            node.decided_ms = Some(start);
            node.log = None;
        } else {
            let lane = (0..jobs).min_by_key(|&l| lanes[l]).unwrap_or(0);
            let began = lanes[lane].max(ready);
            let took = 2_000 + rand(60_000) + if rand(12) == 0 { 180_000 } else { 0 };
            node.lane = Some(lane);
            node.ready_ms = Some(ready);
            node.started_ms = Some(began);
            node.finished_ms = Some(began + took);
            lanes[lane] = began + took;
            if roll > 96 {
                node.outcome = NodeOutcome::Failed;
                node.reason = Some(
                    "docker build failed: exit status 1 (RUN make returned a non-zero code: 2)"
                        .into(),
                );
            } else {
                node.outcome = NodeOutcome::Built;
            }
        }
    }
    r.duration_ms = lanes.iter().copied().max().unwrap_or(0) + 800;
    r.phases = vec![Phase {
        arch: "amd64".into(),
        start_ms: start,
        end_ms: r.duration_ms,
    }];
    r
}

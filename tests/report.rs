//! The HTML report (`plan --report`, `build --report`) in a real browser: headless Chromium
//! loads the page; the test reads the DOM it rendered (every node drawn, none overlapping,
//! labels inside their boxes, the timeline's bars), clicks and filters through the page's
//! script, checks that nothing was logged to the console, that no request left the page,
//! and that a screenshot has real content (pixels decoded by the browser, compared with a
//! blank page's).
//!
//! The build test runs the bundled library/ on the real engine (`#[ignore]`d: scripts/test
//! runs it with the Docker rig).

mod browser;
mod common;

use std::path::Path;
use std::process::Command;

use browser::Browser;
use keg::record::{NodeOutcome, Phase, RecordNode, RunKind, RunRecord};

/// The page's colours for nodes to build and built nodes (src/html.rs).
const PLANNED: (u8, u8, u8) = (0x4c, 0x6e, 0xf5);
const BUILT: (u8, u8, u8) = (0x2f, 0x9e, 0x44);

fn url(path: &Path) -> String {
    format!(
        "file://{}",
        path.canonicalize().expect("report path").display()
    )
}

/// What a test checks of every page: it rendered all `nodes`, its script ran, nothing was
/// logged or requested, and its screenshot is far from blank. Returns the browser and page.
/// `colour`: one the page must show (the stroke of its most common result).
fn check_page(path: &Path, nodes: usize, colour: (u8, u8, u8)) -> (Browser, browser::Page) {
    let mut b = Browser::start();
    let page = b.open(&url(path), 1400, 1000);
    assert_eq!(
        b.eval(&page, "document.documentElement.getAttribute('data-ready')"),
        nodes.to_string(),
        "the page's script did not run to its end"
    );
    assert_eq!(
        b.eval(&page, "document.querySelectorAll('#dag .n').length"),
        nodes
    );
    assert_eq!(
        b.eval(&page, "document.querySelectorAll('#table tbody tr').length"),
        nodes
    );
    // Every node box is laid out, none overlaps another, every label fits in its box.
    let layout = b.eval(
        &page,
        r#"(function () {
  var boxes = Array.prototype.map.call(document.querySelectorAll('#dag .n rect'), function (r) { return r.getBoundingClientRect(); });
  var empty = boxes.filter(function (r) { return r.width < 10 || r.height < 10; }).length, overlaps = 0;
  var sorted = boxes.slice().sort(function (a, b) { return a.left - b.left || a.top - b.top; });
  for (var i = 0; i < sorted.length; i++) for (var j = i + 1; j < sorted.length && sorted[j].left < sorted[i].right; j++) {
    var a = sorted[i], b = sorted[j];
    if (a.left < b.right && b.left < a.right && a.top < b.bottom && b.top < a.bottom) overlaps++;
  }
  var spill = 0;
  document.querySelectorAll('#dag .n').forEach(function (g) {
    var r = g.querySelector('rect').getBoundingClientRect();
    g.querySelectorAll('text').forEach(function (t) { var q = t.getBoundingClientRect(); if (q.left < r.left - 1 || q.right > r.right + 1) spill++; });
  });
  return {empty: empty, overlaps: overlaps, spill: spill};
})()"#,
    );
    assert_eq!(layout["empty"], 0, "{layout}");
    assert_eq!(layout["overlaps"], 0, "{layout}");
    assert_eq!(layout["spill"], 0, "labels overflow their boxes: {layout}");
    let shot = b.screenshot(&page, false);
    let blank_page = b.open("about:blank", 1400, 1000);
    let blank = b.screenshot(&blank_page, false);
    let px = b.pixels(&shot, colour);
    let blank_px = b.pixels(&blank, colour);
    assert_eq!((px.width, px.height), (1400, 1000), "{px:?}");
    assert!(blank_px.ink < 0.001, "{blank_px:?}");
    assert!(px.ink > 0.02, "the screenshot is nearly blank: {px:?}");
    assert!(
        px.near > 0.0005,
        "the screenshot lacks the colour {colour:?}: {px:?}"
    );
    assert!(
        px.colours > 50,
        "the screenshot has too few colours: {px:?}"
    );
    assert!(
        shot.len() > 5 * blank.len(),
        "{} vs {}",
        shot.len(),
        blank.len()
    );
    assert_eq!(b.problems(), Vec::<String>::new(), "console problems");
    assert_eq!(
        b.network_requests(),
        Vec::<String>::new(),
        "requests left the page"
    );
    (b, page)
}

/// The bundled library's plan: five nodes over three repositories, no timeline.
#[test]
fn plan_report_of_the_bundled_library() {
    let test = common::Test::new();
    let root = env!("CARGO_MANIFEST_DIR");
    let path = test.path().join("plan.html");
    let run = test.run(&[
        "--library",
        &format!("{root}/library"),
        "plan",
        "--all",
        "--report",
        path.to_str().expect("utf-8"),
    ]);
    run.success();
    assert!(run.stdout.starts_with("plan: 5 nodes"), "{run:#?}");
    let (mut b, page) = check_page(&path, 5, PLANNED);
    assert_eq!(
        b.eval(&page, "document.querySelectorAll('#gantt').length"),
        0
    );
    assert_eq!(
        b.eval(&page, "document.querySelectorAll('#dag .edge').length"),
        5
    );
    let names = b.eval(
        &page,
        "Array.prototype.map.call(document.querySelectorAll('#dag .n text'), function (t) { return t.textContent; }).sort().join(' ')",
    );
    assert_eq!(
        names,
        "keg-base:1.0 keg-hello:1.0 keg-hello:1.0-slim keg-tools:1.0 keg-tools:1.0-mini"
    );
    // The longest chain to build is keg-base -> keg-hello -> keg-tools (or -mini): 3 nodes.
    assert_eq!(
        b.eval(&page, "document.querySelectorAll('#dag .n.crit').length"),
        3
    );
}

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

/// Hundreds of nodes: the page stays readable (no overlaps, labels fit) and its script
/// selects, filters and searches.
#[test]
fn report_of_hundreds_of_nodes() {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("run.html");
    let record = synthetic(400, 6);
    keg::html::write(&path, &record).expect("write");
    let (mut b, page) = check_page(&path, 400, BUILT);
    let bars = record
        .nodes
        .iter()
        .filter(|n| n.started_ms.is_some())
        .count();
    assert_eq!(
        b.eval(&page, "document.querySelectorAll('#gantt .bar').length"),
        bars
    );
    let lanes = b.eval(
        &page,
        "Array.prototype.filter.call(document.querySelectorAll('#gantt .lane-label'), function (t) { return /^builder /.test(t.textContent); }).length",
    );
    assert_eq!(lanes, 6);
    // Selecting a node lights it with its ancestors and descendants and shows its details.
    let base = record.edges.iter().map(|e| e.0).min().expect("an edge");
    let family = 1 + record.edges.iter().filter(|e| e.0 == base).count();
    let lit = b.eval(
        &page,
        &format!(
            "document.querySelector('#dag .n[data-i=\"{base}\"]').dispatchEvent(new MouseEvent('click', {{bubbles: true}})); \
             [document.querySelectorAll('#dag .n.lit').length, document.getElementById('details').hidden, document.querySelector('#details h3').textContent]"
        ),
    );
    assert!(lit[0].as_u64().expect("count") >= family as u64, "{lit}");
    assert_eq!(lit[1], false);
    assert_eq!(lit[2], record.nodes[base].id);
    // Escape clears; the "failed" chip keeps only failed rows.
    let failed = record
        .nodes
        .iter()
        .filter(|n| n.outcome == NodeOutcome::Failed)
        .count();
    let shown = b.eval(
        &page,
        "document.dispatchEvent(new KeyboardEvent('keydown', {key: 'Escape'})); \
         document.querySelector('.chip.failed').click(); \
         document.querySelectorAll('#table tbody tr:not(.hide)').length",
    );
    assert_eq!(shown, failed);
    let found = b.eval(
        &page,
        "document.querySelector('.chip.failed').click(); var s = document.getElementById('search'); s.value = 'V17@'; \
         s.dispatchEvent(new Event('input')); document.querySelectorAll('#table tbody tr:not(.hide)').length",
    );
    assert_eq!(found, 1);
    assert_eq!(b.problems(), Vec::<String>::new());
}

/// Writes a sample page of $KEG_SAMPLE_NODES (300) nodes to $KEG_SAMPLE_REPORT, for people to
/// look at (scripts/report-screenshot).
#[test]
#[ignore = "writes a sample page; scripts/report-screenshot runs it"]
fn write_sample_report() {
    let path = std::env::var("KEG_SAMPLE_REPORT").unwrap_or_else(|_| "sample.html".into());
    let n = std::env::var("KEG_SAMPLE_NODES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300);
    keg::html::write(Path::new(&path), &synthetic(n, 6)).expect("write");
}

fn docker(args: &[&str]) -> String {
    let out = Command::new("docker")
        .args(args)
        .output()
        .expect("the docker client is needed (scripts/setup-docker)");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The bundled library built on the real engine, with `--report`: the page shows every node
/// in the graph and on the timeline, each with its log.
#[test]
#[ignore = "needs the Docker rig (scripts/setup-docker); scripts/test runs it"]
fn build_report_of_the_bundled_library() {
    let ok = Command::new("docker")
        .args(["version", "--format", "{{.Server.Version}}"])
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(ok, "no Docker engine: run scripts/setup-docker first");
    let test = common::Test::new();
    let root = env!("CARGO_MANIFEST_DIR");
    let cache_repo = format!("{}/cache", common::unique("kr", "report"));
    let names = ["keg-base", "keg-hello", "keg-tools"];
    let before = docker(&["image", "ls", "--format", "{{.Repository}}:{{.Tag}}"]);
    let path = test.path().join("build.html");
    let run = test.run(&[
        "--library",
        &format!("{root}/library"),
        "build",
        "--all",
        "--jobs",
        "2",
        "--pull",
        "never",
        "--cache-repo",
        &cache_repo,
        "--report",
        path.to_str().expect("utf-8"),
    ]);
    // Clean up first: this run's cache tags, and the library's tags unless they were there.
    let after = docker(&["image", "ls", "--format", "{{.Repository}}:{{.Tag}}"]);
    let mine: Vec<&str> = after
        .lines()
        .filter(|l| {
            l.starts_with(&cache_repo)
                || names.iter().any(|n| l.starts_with(&format!("{n}:")))
                    && !before.lines().any(|b| b == *l)
        })
        .collect();
    if !mine.is_empty() {
        let mut args = vec!["rmi", "-f"];
        args.extend(mine);
        docker(&args);
    }
    run.success();
    assert!(run.stderr.contains("report: "), "{run:#?}");
    let record_nodes = 5;
    let (mut b, page) = check_page(&path, record_nodes, BUILT);
    assert_eq!(
        b.eval(
            &page,
            "document.querySelectorAll('#gantt .bar.built').length"
        ),
        5
    );
    assert_eq!(
        b.eval(&page, "document.querySelectorAll('#dag .n.built').length"),
        5
    );
    assert_eq!(
        b.eval(&page, "document.querySelectorAll('#table a.log').length"),
        5
    );
    // Each log link names an existing log of this run.
    let logs = b.eval(
        &page,
        "Array.prototype.map.call(document.querySelectorAll('#table a.log'), function (a) { return decodeURIComponent(a.getAttribute('href').replace('file://', '')); })",
    );
    for log in logs.as_array().expect("logs") {
        let log = log.as_str().expect("path");
        assert!(Path::new(log).is_file(), "{log}");
    }
    // Parents end before children start, on the page's own numbers.
    let json = b.eval(&page, "document.getElementById('keg-run').textContent");
    let record: RunRecord = serde_json::from_str(json.as_str().expect("json")).expect("record");
    for &(p, c) in &record.edges {
        assert!(
            record.nodes[p].finished_ms <= record.nodes[c].started_ms,
            "{} ended after {} started",
            record.nodes[p].id,
            record.nodes[c].id
        );
    }
}

/// Saves a screenshot of the page $KEG_SCREENSHOT_HTML to $KEG_SCREENSHOT_PNG, the viewport
/// $KEG_SCREENSHOT_SIZE (`1400x1000`) wide and, with KEG_SCREENSHOT_FULL=1, the whole page
/// tall (scripts/report-screenshot). Fails on console problems, as the tests above.
#[test]
#[ignore = "takes a screenshot; scripts/report-screenshot runs it"]
fn screenshot() {
    let html = std::env::var("KEG_SCREENSHOT_HTML").expect("KEG_SCREENSHOT_HTML");
    let png = std::env::var("KEG_SCREENSHOT_PNG").expect("KEG_SCREENSHOT_PNG");
    let size = std::env::var("KEG_SCREENSHOT_SIZE").unwrap_or_else(|_| "1400x1000".into());
    let (w, h) = size
        .split_once('x')
        .and_then(|(w, h)| Some((w.parse().ok()?, h.parse().ok()?)))
        .expect("KEG_SCREENSHOT_SIZE: WIDTHxHEIGHT");
    let full = std::env::var("KEG_SCREENSHOT_FULL").is_ok_and(|v| v == "1");
    let mut b = Browser::start();
    let page = b.open(&url(Path::new(&html)), w, h);
    if let Ok(script) = std::env::var("KEG_SCREENSHOT_SCRIPT") {
        b.eval(&page, &script);
    }
    let shot = b.screenshot(&page, full);
    std::fs::write(&png, shot).expect("write the screenshot");
    assert_eq!(b.problems(), Vec::<String>::new());
}

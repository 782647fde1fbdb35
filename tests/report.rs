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
use browser::sample::synthetic;
use common::docker_stdout as docker;
use keg::record::{NodeOutcome, RunRecord};

/// The page's colours for nodes to build and built nodes (src/html.rs).
const PLANNED: (u8, u8, u8) = (0x4c, 0x6e, 0xf5);
const BUILT: (u8, u8, u8) = (0x2f, 0x9e, 0x44);

/// What a test checks of every page: it rendered all `nodes`, its script ran, nothing was
/// logged or requested, and its screenshot is far from blank. Returns the browser and page.
/// `colour`: one the page must show (the stroke of its most common result).
fn check_page(path: &Path, nodes: usize, colour: (u8, u8, u8)) -> (Browser, browser::Page) {
    let mut b = Browser::start();
    let page = b.open(&browser::file_url(path), 1400, 1000);
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
    // A cache repository of its own: with an engine, no node is already built.
    let cache_repo = format!("{}/cache", common::unique("kr", "plan"));
    let run = test.run(&[
        "--library",
        &format!("{root}/library"),
        "plan",
        "--all",
        "--cache-repo",
        &cache_repo,
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

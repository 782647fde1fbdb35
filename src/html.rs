//! The run report: one self-contained HTML page drawn from a [`RunRecord`] (`build --report`,
//! `plan --report`).
//!
//! The page has a summary, the graph (each connected component laid out in layers, left to
//! right, packed onto the page; coloured by result; the critical path in orange), for builds
//! a timeline with one lane per builder, and a table of every node with a waterfall bar
//! (wait, run, cache hit or skip on the run's time scale) and its log.
//!
//! Invariants: [`render`] is a pure function of the record (same record, same bytes); the
//! page loads nothing (inline CSS, SVG and script, no URL but `file:` log links and `#`
//! anchors); every text from the record is escaped; the layout is computed here, so the page
//! reads without its script, which only adds filtering, search, highlighting and sorting.

use std::collections::HashMap;
use std::fmt::Write as _;

use crate::record::{NodeOutcome, RunKind, RunRecord};

const NODE_W: f64 = 210.0;
const NODE_H: f64 = 24.0;
const COL_GAP: f64 = 54.0;
const ROW_GAP: f64 = 8.0;
const BLOCK_GAP: f64 = 28.0;
/// The graph's packing width; a component wider than this sets its own.
const GRAPH_W: f64 = 1240.0;
/// Rows per column before a layer wraps into another column.
const MAX_ROWS: usize = 24;
const LANE_H: f64 = 26.0;
const LABEL_W: f64 = 120.0;
const PLOT_W: f64 = 1110.0;

/// Writes the page for `record` to `path`.
pub fn write(path: &std::path::Path, record: &RunRecord) -> Result<(), crate::error::Error> {
    std::fs::write(path, render(record)).map_err(|source| crate::error::Error::Io {
        context: "writing the report",
        path: path.to_path_buf(),
        source,
    })
}

/// The whole page.
pub fn render(record: &RunRecord) -> String {
    let (critical, critical_total) = record.critical_path();
    let on_path: Vec<bool> = {
        let mut v = vec![false; record.nodes.len()];
        for &i in &critical {
            v[i] = true;
        }
        v
    };
    let one_arch = record.nodes.windows(2).all(|w| w[0].arch == w[1].arch);
    let names: Vec<String> = record
        .nodes
        .iter()
        .map(|n| {
            if one_arch {
                n.id.rsplit_once('@')
                    .map_or(n.id.as_str(), |(a, _)| a)
                    .to_string()
            } else {
                n.id.clone()
            }
        })
        .collect();
    let ctx = Ctx {
        record,
        on_path,
        critical,
        critical_total,
        names,
    };
    let mut page = String::with_capacity(64 * 1024 + record.nodes.len() * 1500);
    let title = format!(
        "keg {} · {} node{} · {}",
        kind_word(record.kind),
        record.nodes.len(),
        if record.nodes.len() == 1 { "" } else { "s" },
        record.started_at
    );
    let _ = write!(
        page,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; \
         style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:\">\n\
         <title>{}</title>\n<style>{CSS}</style>\n</head>\n<body class=\"{}\">\n",
        esc(&title),
        kind_word(record.kind)
    );
    header(&ctx, &mut page);
    graph(&ctx, &mut page);
    if record.kind == RunKind::Build {
        timeline(&ctx, &mut page);
    }
    table(&ctx, &mut page);
    page.push_str(
        "<aside id=\"details\" hidden><button type=\"button\" id=\"close\" \
         aria-label=\"close\">×</button><div id=\"details-body\"></div></aside>\n",
    );
    let json = serde_json::to_string(record)
        .unwrap_or_else(|_| "{}".to_string())
        .replace('<', "\\u003c");
    let _ = write!(
        page,
        "<script type=\"application/json\" id=\"keg-run\">{json}</script>\n<script>{JS}</script>\n</body>\n</html>\n"
    );
    page
}

struct Ctx<'a> {
    record: &'a RunRecord,
    on_path: Vec<bool>,
    critical: Vec<usize>,
    critical_total: u64,
    /// Display names (ids without `@arch` when every node has the same one).
    names: Vec<String>,
}

fn kind_word(kind: RunKind) -> &'static str {
    match kind {
        RunKind::Plan => "plan",
        RunKind::Build => "build",
    }
}

fn header(ctx: &Ctx<'_>, page: &mut String) {
    let r = ctx.record;
    let _ = write!(
        page,
        "<header>\n<h1><span class=\"brand\">keg</span> {}</h1>\n<p class=\"cmd\"><code>{}</code></p>\n<ul class=\"facts\">",
        kind_word(r.kind),
        esc(&r.command)
    );
    let mut fact = |k: &str, v: String| {
        let _ = write!(page, "<li><span>{}</span> {}</li>", esc(k), esc(&v));
    };
    fact(
        "started",
        r.started_at.replace('T', " ").replace('Z', " UTC"),
    );
    let arches: Vec<&str> = {
        let mut a: Vec<&str> = r.nodes.iter().map(|n| n.arch.as_str()).collect();
        a.dedup();
        let mut seen = Vec::new();
        for x in a {
            if !seen.contains(&x) {
                seen.push(x);
            }
        }
        seen
    };
    if !arches.is_empty() {
        fact("architectures", arches.join(", "));
    }
    match r.kind {
        RunKind::Build => {
            fact("wall time", duration(r.duration_ms));
            let busy: u64 = r.nodes.iter().map(|n| n.run_ms()).sum();
            fact("build time, summed", duration(busy));
            fact("builders", r.jobs.to_string());
            fact(
                "critical path",
                format!(
                    "{} over {} node{}",
                    duration(ctx.critical_total),
                    ctx.critical.len(),
                    if ctx.critical.len() == 1 { "" } else { "s" }
                ),
            );
        }
        RunKind::Plan => {
            fact(
                "longest chain to build",
                format!(
                    "{} node{}",
                    ctx.critical_total,
                    if ctx.critical_total == 1 { "" } else { "s" }
                ),
            );
        }
    }
    page.push_str("</ul>\n</header>\n<div class=\"bar-top\"><div class=\"chips\" role=\"group\" aria-label=\"filter by result\">");
    for outcome in NodeOutcome::ALL {
        let count = r.nodes.iter().filter(|n| n.outcome == outcome).count();
        if count == 0 {
            continue;
        }
        let _ = write!(
            page,
            "<button type=\"button\" class=\"chip {c}\" data-filter=\"{c}\" aria-pressed=\"false\"><b>{count}</b> {}</button>",
            outcome.label(),
            c = outcome.class()
        );
    }
    page.push_str(
        "<input type=\"search\" id=\"search\" placeholder=\"find a node…\" aria-label=\"find a node\">\
         </div>\n<nav><a href=\"#graph\">graph</a>",
    );
    if r.kind == RunKind::Build {
        page.push_str("<a href=\"#timeline\">timeline</a>");
    }
    page.push_str("<a href=\"#nodes\">nodes</a></nav>\n</div>\n");
}

/// A node's place in the graph.
#[derive(Clone, Copy, Default)]
struct Place {
    x: f64,
    y: f64,
    /// The x of the first column of the node's layer (a layer taller than [`MAX_ROWS`]
    /// wraps into several columns; edges reach the later ones through the row gaps).
    entry: f64,
}

/// Lays out every connected component in layers (left to right) and packs the components
/// in rows; returns each node's place and the drawing's size.
fn layout(record: &RunRecord, names: &[String]) -> (Vec<Place>, f64, f64) {
    let n = record.nodes.len();
    let mut parents: Vec<Vec<usize>> = vec![Vec::new(); n];
    let mut children: Vec<Vec<usize>> = vec![Vec::new(); n];
    for &(p, c) in &record.edges {
        if p < n && c < n && p != c {
            parents[c].push(p);
            children[p].push(c);
        }
    }
    // Components (union-find).
    let mut up: Vec<usize> = (0..n).collect();
    fn root(up: &mut [usize], mut i: usize) -> usize {
        while up[i] != i {
            up[i] = up[up[i]];
            i = up[i];
        }
        i
    }
    for &(p, c) in &record.edges {
        if p < n && c < n {
            let (a, b) = (root(&mut up, p), root(&mut up, c));
            if a != b {
                up[a.max(b)] = a.min(b);
            }
        }
    }
    let mut groups: HashMap<usize, Vec<usize>> = HashMap::new();
    for i in 0..n {
        let r = root(&mut up, i);
        groups.entry(r).or_default().push(i);
    }
    let mut comps: Vec<Vec<usize>> = groups.into_values().collect();
    comps.sort_by(|a, b| {
        b.len()
            .cmp(&a.len())
            .then_with(|| names[a[0]].cmp(&names[b[0]]))
    });

    // Layers: the longest path from a root (cycles, never in a valid plan, are cut).
    let mut layer = vec![0usize; n];
    let mut state = vec![0u8; n];
    for start in 0..n {
        let mut stack = vec![(start, false)];
        while let Some((i, done)) = stack.pop() {
            if done {
                layer[i] = parents[i]
                    .iter()
                    .filter(|&&p| state[p] == 2)
                    .map(|&p| layer[p] + 1)
                    .max()
                    .unwrap_or(0);
                state[i] = 2;
                continue;
            }
            if state[i] != 0 {
                continue;
            }
            state[i] = 1;
            stack.push((i, true));
            stack.extend(
                parents[i]
                    .iter()
                    .filter(|&&p| state[p] == 0)
                    .map(|&p| (p, false)),
            );
        }
    }

    let mut places = vec![Place::default(); n];
    let (mut cursor_x, mut cursor_y, mut shelf_h, mut width) = (0.0f64, 0.0f64, 0.0f64, 0.0f64);
    // Single nodes are packed as a grid after the connected ones.
    let (multi, single): (Vec<Vec<usize>>, Vec<Vec<usize>>) =
        comps.into_iter().partition(|c| c.len() > 1);
    let mut blocks: Vec<(Vec<Cell>, f64, f64)> = Vec::new();
    for comp in &multi {
        blocks.push(layout_component(comp, &layer, &parents, &children, names));
    }
    for chunk in single.chunks(MAX_ROWS) {
        let mut cells = Vec::new();
        for (row, comp) in chunk.iter().enumerate() {
            cells.push((comp[0], 0.0, row as f64 * (NODE_H + ROW_GAP), 0.0));
        }
        let h = chunk.len() as f64 * (NODE_H + ROW_GAP) - ROW_GAP;
        blocks.push((cells, NODE_W, h));
    }
    for (cells, w, h) in blocks {
        if cursor_x > 0.0 && cursor_x + w > GRAPH_W {
            cursor_x = 0.0;
            cursor_y += shelf_h + BLOCK_GAP;
            shelf_h = 0.0;
        }
        for (i, x, y, entry) in cells {
            places[i] = Place {
                x: cursor_x + x,
                y: cursor_y + y,
                entry: cursor_x + entry,
            };
        }
        width = width.max(cursor_x + w);
        shelf_h = shelf_h.max(h);
        cursor_x += w + BLOCK_GAP;
    }
    (places, width, cursor_y + shelf_h)
}

/// A node's cell in its block: (node, x, y, x of its layer's first column).
type Cell = (usize, f64, f64, f64);

/// One component: its cells relative to its block, and the block's size.
fn layout_component(
    comp: &[usize],
    layer: &[usize],
    parents: &[Vec<usize>],
    children: &[Vec<usize>],
    names: &[String],
) -> (Vec<Cell>, f64, f64) {
    let depth = comp.iter().map(|&i| layer[i]).max().unwrap_or(0);
    let mut layers: Vec<Vec<usize>> = vec![Vec::new(); depth + 1];
    for &i in comp {
        layers[layer[i]].push(i);
    }
    for l in &mut layers {
        l.sort_by(|&a, &b| names[a].cmp(&names[b]));
    }
    // Barycenter sweeps: down by parents, up by children, down again.
    let mut pos: HashMap<usize, f64> = HashMap::new();
    let set_pos = |layers: &Vec<Vec<usize>>, pos: &mut HashMap<usize, f64>| {
        for l in layers {
            for (k, &i) in l.iter().enumerate() {
                pos.insert(i, k as f64);
            }
        }
    };
    set_pos(&layers, &mut pos);
    let bary = |i: usize, of: &[usize], pos: &HashMap<usize, f64>| -> f64 {
        let v: Vec<f64> = of.iter().filter_map(|j| pos.get(j).copied()).collect();
        if v.is_empty() {
            pos.get(&i).copied().unwrap_or(0.0)
        } else {
            v.iter().sum::<f64>() / v.len() as f64
        }
    };
    for sweep in 0..3 {
        let range: Vec<usize> = if sweep == 1 {
            (0..layers.len()).rev().collect()
        } else {
            (0..layers.len()).collect()
        };
        for l in range {
            let mut keyed: Vec<(f64, usize)> = layers[l]
                .iter()
                .map(|&i| {
                    let of = if sweep == 1 {
                        &children[i]
                    } else {
                        &parents[i]
                    };
                    (bary(i, of, &pos), i)
                })
                .collect();
            keyed.sort_by(|a, b| {
                a.0.total_cmp(&b.0)
                    .then_with(|| names[a.1].cmp(&names[b.1]))
            });
            layers[l] = keyed.into_iter().map(|(_, i)| i).collect();
            for (k, &i) in layers[l].iter().enumerate() {
                pos.insert(i, k as f64);
            }
        }
    }
    let rows = layers
        .iter()
        .map(|l| l.len().min(MAX_ROWS))
        .max()
        .unwrap_or(1);
    let height = rows as f64 * (NODE_H + ROW_GAP) - ROW_GAP;
    let mut cells = Vec::new();
    let mut x = 0.0;
    for l in &layers {
        // A short layer is centred against the tallest; the columns of a wrapped layer
        // share its first column's rows, so the gaps between rows line up across them.
        let first = l.len().min(MAX_ROWS);
        let top = ((height - (first as f64 * (NODE_H + ROW_GAP) - ROW_GAP)) / 2.0).max(0.0);
        let entry = x;
        for column in l.chunks(MAX_ROWS) {
            for (k, &i) in column.iter().enumerate() {
                cells.push((i, x, top + k as f64 * (NODE_H + ROW_GAP), entry));
            }
            x += NODE_W + COL_GAP;
        }
    }
    (cells, x - COL_GAP, height)
}

fn graph(ctx: &Ctx<'_>, page: &mut String) {
    let r = ctx.record;
    let (places, w, h) = layout(r, &ctx.names);
    let pad = 12.0;
    let _ = write!(
        page,
        "<section id=\"graph\">\n<h2>Graph <small>{} node{}, {} edge{}; each group of connected \
         images left to right, parents first</small></h2>\n",
        r.nodes.len(),
        if r.nodes.len() == 1 { "" } else { "s" },
        r.edges.len(),
        if r.edges.len() == 1 { "" } else { "s" },
    );
    legend(r, page);
    if r.nodes.is_empty() {
        page.push_str("<p class=\"empty\">Nothing to build.</p>\n</section>\n");
        return;
    }
    let _ = write!(
        page,
        "<div class=\"scroll\"><svg id=\"dag\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{:.0}\" height=\"{:.0}\" viewBox=\"{:.0} {:.0} {:.0} {:.0}\" role=\"img\" aria-label=\"dependency graph\">\n\
         <defs><marker id=\"arrow\" viewBox=\"0 0 8 8\" refX=\"7\" refY=\"4\" markerWidth=\"7\" markerHeight=\"7\" orient=\"auto\"><path d=\"M0,0 L8,4 L0,8 z\" class=\"arrowhead\"/></marker>\
         <marker id=\"arrow-crit\" viewBox=\"0 0 8 8\" refX=\"7\" refY=\"4\" markerWidth=\"6\" markerHeight=\"6\" orient=\"auto\"><path d=\"M0,0 L8,4 L0,8 z\" class=\"arrowhead crit\"/></marker></defs>\n<g class=\"edges\">",
        w + 2.0 * pad,
        h + 2.0 * pad,
        -pad,
        -pad,
        w + 2.0 * pad,
        h + 2.0 * pad
    );
    // Critical edges last, so they are drawn on top.
    let mut edges: Vec<&(usize, usize)> = r.edges.iter().collect();
    let crit_edge =
        |&&(p, c): &&(usize, usize)| ctx.critical.windows(2).any(|w| w[0] == p && w[1] == c);
    edges.sort_by_key(|e| crit_edge(e));
    for e in edges {
        let (p, c) = *e;
        if p >= places.len() || c >= places.len() {
            continue;
        }
        let (a, b) = (places[p], places[c]);
        let (x1, y1) = (a.x + NODE_W, a.y + NODE_H / 2.0);
        let (x2, y2) = (b.x - 2.0, b.y + NODE_H / 2.0);
        let d = if b.x > b.entry + 1.0 && b.entry > x1 {
            // Into a wrapped column: to the layer's first column, then along the gap
            // above the child's row, then down into it.
            let gy = b.y - ROW_GAP / 2.0;
            let ex = b.entry - 6.0;
            let dx = ((ex - x1) / 2.0).max(12.0);
            format!(
                "M{x1:.1},{y1:.1} C{:.1},{y1:.1} {:.1},{gy:.1} {ex:.1},{gy:.1} L{:.1},{gy:.1} C{:.1},{gy:.1} {:.1},{y2:.1} {x2:.1},{y2:.1}",
                x1 + dx,
                ex - dx,
                x2 - 14.0,
                x2 - 6.0,
                x2 - 10.0
            )
        } else {
            let dx = ((x2 - x1) / 2.0).max(24.0);
            format!(
                "M{x1:.1},{y1:.1} C{:.1},{y1:.1} {:.1},{y2:.1} {x2:.1},{y2:.1}",
                x1 + dx,
                x2 - dx
            )
        };
        let crit = crit_edge(&e);
        let _ = write!(
            page,
            "<path class=\"edge{}\" data-p=\"{p}\" data-c=\"{c}\" d=\"{d}\" marker-end=\"url(#{})\"/>",
            if crit { " crit" } else { "" },
            if crit { "arrow-crit" } else { "arrow" }
        );
    }
    page.push_str("</g>\n<g class=\"nodes\">");
    for (i, node) in r.nodes.iter().enumerate() {
        let pl = places[i];
        let time = if node.started_ms.is_some() && node.finished_ms.is_some() {
            duration(node.run_ms())
        } else {
            String::new()
        };
        let room = if time.is_empty() {
            30
        } else {
            30 - time.len() - 1
        };
        let _ = write!(
            page,
            "<g class=\"n {}{}\" data-i=\"{i}\" transform=\"translate({:.1},{:.1})\" tabindex=\"0\"><title>{}</title><rect width=\"{NODE_W}\" height=\"{NODE_H}\" rx=\"5\"/><text x=\"9\" y=\"16\">{}</text>",
            node.outcome.class(),
            if ctx.on_path[i] { " crit" } else { "" },
            pl.x,
            pl.y,
            esc(&tooltip(node, &ctx.names[i])),
            esc(&ellipsis(&ctx.names[i], room))
        );
        if !time.is_empty() {
            let _ = write!(
                page,
                "<text class=\"t\" x=\"{:.0}\" y=\"16\">{}</text>",
                NODE_W - 8.0,
                esc(&time)
            );
        }
        page.push_str("</g>");
    }
    page.push_str("</g>\n</svg></div>\n</section>\n");
}

fn legend(r: &RunRecord, page: &mut String) {
    page.push_str("<p class=\"legend\">");
    for outcome in NodeOutcome::ALL {
        if r.nodes.iter().any(|n| n.outcome == outcome) {
            let _ = write!(
                page,
                "<span><i class=\"sw {}\"></i>{}</span>",
                outcome.class(),
                outcome.label()
            );
        }
    }
    page.push_str("<span><i class=\"sw critline\"></i>critical path</span>");
    if r.kind == RunKind::Build {
        page.push_str("<span><i class=\"sw wait\"></i>waiting for a builder</span>");
    }
    page.push_str("</p>\n");
}

fn tooltip(node: &crate::record::RecordNode, name: &str) -> String {
    let mut t = format!("{name} — {}", node.outcome.label());
    if node.started_ms.is_some() && node.finished_ms.is_some() {
        let _ = write!(t, " in {}", duration(node.run_ms()));
    }
    if let Some(reason) = &node.reason {
        let _ = write!(t, "\n{}", reason);
    }
    if let Some(push) = &node.push_error {
        let _ = write!(t, "\npush failed: {push}");
    }
    if node.ancestor {
        t.push_str("\n(an ancestor of the selection)");
    }
    t
}

/// `0`, `30s`, `5m`, `1h 30m`.
fn tick_label(ms: u64) -> String {
    match ms {
        0 => "0".to_string(),
        ms if ms % 3_600_000 == 0 => format!("{}h", ms / 3_600_000),
        ms if ms >= 3_600_000 && ms % 60_000 == 0 => {
            format!("{}h {:02}m", ms / 3_600_000, ms % 3_600_000 / 60_000)
        }
        ms if ms % 60_000 == 0 => format!("{}m", ms / 60_000),
        ms if ms >= 60_000 && ms % 1_000 == 0 => {
            format!("{}m {:02}s", ms / 60_000, ms % 60_000 / 1_000)
        }
        ms if ms % 1_000 == 0 => format!("{}s", ms / 1_000),
        ms => format!("{:.1}s", ms as f64 / 1_000.0),
    }
}

/// A round tick step for a span of `total` milliseconds: about eight ticks, at seconds,
/// minutes or hours people count in.
fn tick_step(total: u64) -> u64 {
    const STEPS: [u64; 18] = [
        100, 200, 500, 1_000, 2_000, 5_000, 10_000, 15_000, 30_000, 60_000, 120_000, 300_000,
        600_000, 900_000, 1_800_000, 3_600_000, 7_200_000, 21_600_000,
    ];
    let target = total / 8;
    STEPS
        .iter()
        .copied()
        .find(|&s| s >= target)
        .unwrap_or(43_200_000)
}

/// The run's length on the time axes: its last node's end or the run's own duration, at
/// least 1 ms.
fn span_ms(r: &RunRecord) -> u64 {
    r.nodes
        .iter()
        .filter_map(|n| n.finished_ms.or(n.decided_ms))
        .max()
        .unwrap_or(0)
        .max(r.duration_ms)
        .max(1)
}

fn timeline(ctx: &Ctx<'_>, page: &mut String) {
    let r = ctx.record;
    let total = span_ms(r);
    let x = |ms: u64| LABEL_W + ms as f64 / total as f64 * PLOT_W;
    let lanes = r
        .nodes
        .iter()
        .filter_map(|n| n.lane)
        .max()
        .map_or(0, |l| l + 1);
    let cached: Vec<usize> = (0..r.nodes.len())
        .filter(|&i| {
            matches!(
                r.nodes[i].outcome,
                NodeOutcome::Cached | NodeOutcome::Unneeded
            )
        })
        .collect();
    let unrun: Vec<usize> = (0..r.nodes.len())
        .filter(|&i| {
            r.nodes[i].started_ms.is_none()
                && !matches!(
                    r.nodes[i].outcome,
                    NodeOutcome::Cached | NodeOutcome::Unneeded
                )
        })
        .collect();
    let rows = lanes + usize::from(!cached.is_empty()) + usize::from(!unrun.is_empty());
    let top = 22.0;
    let height = top + rows.max(1) as f64 * LANE_H + 8.0;
    let width = LABEL_W + PLOT_W + 16.0;
    let _ = write!(
        page,
        "<section id=\"timeline\">\n<h2>Timeline <small>one lane per builder (--jobs {}); {} in all</small></h2>\n\
         <div class=\"scroll\"><svg id=\"gantt\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{width:.0}\" height=\"{height:.0}\" viewBox=\"0 0 {width:.0} {height:.0}\" role=\"img\" aria-label=\"timeline\">\n\
         <defs><pattern id=\"hatch\" width=\"6\" height=\"6\" patternUnits=\"userSpaceOnUse\" patternTransform=\"rotate(45)\"><rect width=\"6\" height=\"6\" class=\"hatch-bg\"/><line x1=\"0\" y1=\"0\" x2=\"0\" y2=\"6\" class=\"hatch-line\"/></pattern></defs>\n",
        r.jobs,
        duration(total)
    );
    // Axis and grid.
    let step = tick_step(total);
    let mut t = 0;
    while t <= total {
        let _ = write!(
            page,
            "<line class=\"grid\" x1=\"{0:.1}\" y1=\"{1:.0}\" x2=\"{0:.1}\" y2=\"{2:.0}\"/><text class=\"tick\" x=\"{0:.1}\" y=\"14\">{3}</text>",
            x(t),
            top - 4.0,
            height - 6.0,
            esc(&tick_label(t))
        );
        t += step;
    }
    // Before each architecture's builds: planning, pulls, cache checks.
    let mut prev_end = 0;
    for p in &r.phases {
        if p.start_ms > prev_end {
            let (x1, x2) = (x(prev_end), x(p.start_ms));
            let _ = write!(
                page,
                "<g class=\"prep\"><title>before the builds{}: planning, pulls, cache checks ({})</title><rect x=\"{x1:.1}\" y=\"{:.0}\" width=\"{:.1}\" height=\"{:.0}\"/>",
                if r.phases.len() > 1 {
                    format!(" of {}", p.arch)
                } else {
                    String::new()
                },
                duration(p.start_ms - prev_end),
                top,
                x2 - x1,
                rows.max(1) as f64 * LANE_H
            );
            if x2 - x1 > 60.0 {
                let _ = write!(
                    page,
                    "<text x=\"{:.1}\" y=\"{:.0}\">preparing</text>",
                    (x1 + x2) / 2.0,
                    top + rows.max(1) as f64 * LANE_H / 2.0 + 4.0
                );
            }
            page.push_str("</g>");
        }
        prev_end = p.end_ms;
    }
    // Phases (one per architecture).
    if r.phases.len() > 1 {
        for p in &r.phases {
            let _ = write!(
                page,
                "<line class=\"phase\" x1=\"{0:.1}\" y1=\"{1:.0}\" x2=\"{0:.1}\" y2=\"{2:.0}\"/><text class=\"phase-label\" x=\"{3:.1}\" y=\"{4:.0}\">{5}</text>",
                x(p.start_ms),
                top - 4.0,
                height - 6.0,
                x(p.start_ms) + 4.0,
                height - 10.0,
                esc(&p.arch)
            );
        }
    }
    let mut row = 0usize;
    let row_y = |row: usize| top + row as f64 * LANE_H;
    for lane in 0..lanes {
        let y = row_y(row);
        let _ = write!(
            page,
            "<rect class=\"lane{}\" x=\"{LABEL_W}\" y=\"{y:.0}\" width=\"{PLOT_W}\" height=\"{LANE_H}\"/><text class=\"lane-label\" x=\"{:.0}\" y=\"{:.0}\">builder {}</text>",
            if lane % 2 == 1 { " odd" } else { "" },
            LABEL_W - 10.0,
            y + 17.0,
            lane + 1
        );
        for (i, node) in r.nodes.iter().enumerate() {
            if node.lane != Some(lane) {
                continue;
            }
            let (Some(s), Some(f)) = (node.started_ms, node.finished_ms) else {
                continue;
            };
            let (x1, x2) = (x(s), x(f).max(x(s) + 2.0));
            let _ = write!(
                page,
                "<g class=\"bar {}{}\" data-i=\"{i}\"><title>{}</title><rect x=\"{x1:.1}\" y=\"{:.0}\" width=\"{:.1}\" height=\"{:.0}\" rx=\"3\"/>",
                node.outcome.class(),
                if ctx.on_path[i] { " crit" } else { "" },
                esc(&tooltip(node, &ctx.names[i])),
                y + 3.0,
                x2 - x1,
                LANE_H - 6.0
            );
            let chars = ((x2 - x1 - 8.0) / 6.6).floor();
            if chars >= 4.0 {
                let _ = write!(
                    page,
                    "<text x=\"{:.1}\" y=\"{:.0}\">{}</text>",
                    x1 + 4.0,
                    y + 17.0,
                    esc(&ellipsis(&ctx.names[i], chars as usize))
                );
            }
            page.push_str("</g>");
        }
        row += 1;
    }
    let marks = |label: &str, nodes: &[usize], row: usize, page: &mut String| {
        let y = row_y(row);
        let _ = write!(
            page,
            "<rect class=\"lane{}\" x=\"{LABEL_W}\" y=\"{y:.0}\" width=\"{PLOT_W}\" height=\"{LANE_H}\"/><text class=\"lane-label\" x=\"{:.0}\" y=\"{:.0}\">{} ({})</text>",
            if row % 2 == 1 { " odd" } else { "" },
            LABEL_W - 10.0,
            y + 17.0,
            esc(label),
            nodes.len()
        );
        for &i in nodes {
            let node = &r.nodes[i];
            let at = node.decided_ms.unwrap_or(0);
            let cx = x(at);
            let _ = write!(
                page,
                "<g class=\"mark {}\" data-i=\"{i}\"><title>{}</title><path d=\"M{cx:.1},{:.1} l5,8 l-5,8 l-5,-8 z\"/></g>",
                node.outcome.class(),
                esc(&tooltip(node, &ctx.names[i])),
                y + 5.0
            );
        }
    };
    if !cached.is_empty() {
        let unneeded = cached
            .iter()
            .any(|&i| r.nodes[i].outcome == NodeOutcome::Unneeded);
        let label = if unneeded {
            "cached, unneeded"
        } else {
            "cached"
        };
        marks(label, &cached, row, page);
        row += 1;
    }
    if !unrun.is_empty() {
        marks("did not run", &unrun, row, page);
    }
    page.push_str("</svg></div>\n</section>\n");
}

fn table(ctx: &Ctx<'_>, page: &mut String) {
    let r = ctx.record;
    let build = r.kind == RunKind::Build;
    let total = span_ms(r) as f64;
    let mut order: Vec<usize> = (0..r.nodes.len()).collect();
    if build {
        order.sort_by_key(|&i| {
            let n = &r.nodes[i];
            (
                n.started_ms.is_none(),
                n.started_ms.or(n.decided_ms).unwrap_or(u64::MAX),
                i,
            )
        });
    }
    let mut deps: Vec<Vec<usize>> = vec![Vec::new(); r.nodes.len()];
    for &(p, c) in &r.edges {
        if c < deps.len() {
            deps[c].push(p);
        }
    }
    let _ = write!(
        page,
        "<section id=\"nodes\">\n<h2>Nodes <small>{}</small></h2>\n<div class=\"scroll\"><table id=\"table\">\n<thead><tr><th data-sort=\"text\">node</th><th data-sort=\"text\">result</th>",
        if build {
            "in start order; bars on the timeline's scale: hatched while waiting for a builder"
        } else {
            "in build order"
        }
    );
    if build {
        page.push_str(
            "<th data-sort=\"num\">builder</th><th data-sort=\"num\" class=\"num\">wait</th><th data-sort=\"num\" class=\"num\">time</th><th class=\"wf-h\">timeline</th><th>log</th>",
        );
    } else {
        page.push_str(
            "<th data-sort=\"text\">builder</th><th data-sort=\"text\">key</th><th>built on</th>",
        );
    }
    page.push_str("</tr></thead>\n<tbody>\n");
    for &i in &order {
        let n = &r.nodes[i];
        let _ = write!(
            page,
            "<tr class=\"{}{}\" data-i=\"{i}\" id=\"row-{i}\"><td class=\"id\"><a href=\"#row-{i}\" title=\"{}\">{}</a>{}</td><td><span class=\"pill {}\">{}</span>{}</td>",
            n.outcome.class(),
            if ctx.on_path[i] { " crit" } else { "" },
            esc(&n.id),
            esc(&ctx.names[i]),
            if ctx.on_path[i] {
                "<span class=\"cp\" title=\"on the critical path\"></span>"
            } else {
                ""
            },
            n.outcome.class(),
            n.outcome.label(),
            n.reason
                .as_ref()
                .map(|reason| format!("<div class=\"reason\">{}</div>", esc(reason)))
                .unwrap_or_default()
                + &n.push_error
                    .as_ref()
                    .map(|e| format!("<div class=\"reason push\">push failed: {}</div>", esc(e)))
                    .unwrap_or_default()
                + if n.ancestor {
                    "<span class=\"anc\" title=\"not selected: built for its children\">ancestor</span>"
                } else {
                    ""
                }
        );
        if build {
            let lane = n.lane.map_or(String::new(), |l| (l + 1).to_string());
            let (wait, time) = if n.started_ms.is_some() {
                (duration(n.wait_ms()), duration(n.run_ms()))
            } else {
                (String::new(), String::new())
            };
            let _ = write!(
                page,
                "<td class=\"num\" data-v=\"{}\">{lane}</td><td class=\"num\" data-v=\"{}\">{}</td><td class=\"num\" data-v=\"{}\">{}</td><td class=\"wf\"><div class=\"track\">",
                n.lane.map_or(-1, |l| l as i64),
                n.wait_ms(),
                esc(&wait),
                n.run_ms(),
                esc(&time)
            );
            let pct = |ms: u64| ms as f64 / total * 100.0;
            if let (Some(s), Some(f)) = (n.started_ms, n.finished_ms) {
                let ready = n.ready_ms.unwrap_or(s);
                if s > ready {
                    let _ = write!(
                        page,
                        "<i class=\"w\" style=\"left:{:.3}%;width:{:.3}%\"></i>",
                        pct(ready),
                        pct(s - ready)
                    );
                }
                let _ = write!(
                    page,
                    "<i class=\"r {}\" style=\"left:{:.3}%;width:max(2px,{:.3}%)\"></i>",
                    n.outcome.class(),
                    pct(s),
                    pct(f.saturating_sub(s))
                );
            } else if let Some(d) = n.decided_ms {
                let _ = write!(
                    page,
                    "<i class=\"m {}\" style=\"left:{:.3}%\"></i>",
                    n.outcome.class(),
                    pct(d)
                );
            }
            page.push_str("</div></td><td>");
            if let Some(log) = &n.log {
                let _ = write!(
                    page,
                    "<a class=\"log\" href=\"{}\" title=\"{}\">log</a>",
                    esc(&file_url(log)),
                    esc(log)
                );
            }
            page.push_str("</td></tr>\n");
        } else {
            let built_on: Vec<String> = deps[i]
                .iter()
                .map(|&p| {
                    format!(
                        "<a href=\"#row-{p}\">{}</a>",
                        esc(&ctx.names.get(p).cloned().unwrap_or_default())
                    )
                })
                .collect();
            let _ = writeln!(
                page,
                "<td>{}</td><td><code title=\"{}\">{}</code></td><td>{}</td></tr>",
                esc(&n.builder),
                esc(&n.key),
                esc(&ellipsis(&n.key, 16)),
                built_on.join(", ")
            );
        }
    }
    page.push_str("</tbody></table></div>\n</section>\n");
}

/// `file:` URL of a log path (absolute paths; others are left relative).
fn file_url(path: &str) -> String {
    let mut out = String::new();
    if path.starts_with('/') {
        out.push_str("file://");
    }
    for b in path.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'/' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            _ => {
                let _ = write!(out, "%{b:02X}");
            }
        }
    }
    out
}

/// `12.3s`, `4m 05s`, `1h 02m`.
pub fn duration(ms: u64) -> String {
    if ms < 60_000 {
        format!("{:.1}s", ms as f64 / 1000.0)
    } else if ms < 3_600_000 {
        format!("{}m {:02}s", ms / 60_000, ms % 60_000 / 1000)
    } else {
        format!("{}h {:02}m", ms / 3_600_000, ms % 3_600_000 / 60_000)
    }
}

fn ellipsis(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let keep = max.saturating_sub(1);
    let mut s: String = text.chars().take(keep).collect();
    s.push('…');
    s
}

/// HTML text and attribute escaping.
pub fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if c.is_control() && c != '\n' && c != '\t' => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}

const CSS: &str = r##"
:root{--built:#2f9e44;--built-bg:#d3f9d8;--cached:#1c7ed6;--cached-bg:#e7f5ff;--failed:#e03131;--failed-bg:#ffe3e3;--skipped:#f08c00;--skipped-bg:#fff4e6;--notstarted:#868e96;--notstarted-bg:#f1f3f5;--pulled:#0c8599;--pulled-bg:#e3fafc;--unneeded:#adb5bd;--unneeded-bg:#f8f9fa;--planned:#4c6ef5;--planned-bg:#edf2ff;--blocked:#c92a2a;--blocked-bg:#fff5f5;--crit:#e8590c;--ink:#212529;--muted:#6c757d;--line:#dee2e6;--bg:#fff;--panel:#f8f9fa}
*{box-sizing:border-box}
body{margin:0;font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;color:var(--ink);background:var(--bg)}
header{padding:18px 28px 4px;background:var(--panel)}
.bar-top{position:sticky;top:0;z-index:5;background:var(--panel);border-bottom:1px solid var(--line);padding:8px 28px 10px;display:flex;flex-wrap:wrap;gap:8px 20px;align-items:center}
h1{margin:0;font-size:22px;font-weight:650}.brand{color:var(--crit)}
.cmd{margin:4px 0 8px}.cmd code{background:#fff;border:1px solid var(--line);border-radius:4px;padding:2px 6px;font-size:12.5px}
.facts{list-style:none;margin:0 0 6px;padding:0;display:flex;flex-wrap:wrap;gap:6px 22px}
.facts span{color:var(--muted);margin-right:2px}
.chips{display:flex;flex-wrap:wrap;gap:8px;align-items:center}
.chip{border:1px solid var(--line);background:#fff;border-radius:999px;padding:3px 12px 3px 10px;font:inherit;cursor:pointer;display:inline-flex;gap:6px;align-items:center}
.chip::before{content:"";width:10px;height:10px;border-radius:3px;background:var(--c)}
.chip[aria-pressed=true]{border-color:var(--ink);box-shadow:0 0 0 1px var(--ink) inset}
#search{padding:4px 10px;border:1px solid var(--line);border-radius:6px;font:inherit;min-width:220px}
nav{margin-left:auto;display:flex;gap:16px}nav a{color:var(--muted);text-decoration:none;font-size:13px}nav a:hover{color:var(--ink)}
section{padding:14px 28px 6px}
h2{font-size:17px;margin:6px 0 8px}h2 small{font-weight:400;color:var(--muted);font-size:13px;margin-left:8px}
.legend{display:flex;flex-wrap:wrap;gap:14px;margin:0 0 8px;color:var(--muted);font-size:13px}
.legend span{display:inline-flex;align-items:center;gap:6px}
.sw{display:inline-block;width:14px;height:12px;border-radius:3px;border:2px solid var(--c);background:var(--cb)}
.sw.critline{border:none;height:4px;background:var(--crit);border-radius:2px}
.sw.wait{border:1px solid #adb5bd;background:repeating-linear-gradient(45deg,#e9ecef 0 3px,#ced4da 3px 5px)}
.built{--c:var(--built);--cb:var(--built-bg)}.cached{--c:var(--cached);--cb:var(--cached-bg)}.failed{--c:var(--failed);--cb:var(--failed-bg)}.skipped{--c:var(--skipped);--cb:var(--skipped-bg)}.notstarted{--c:var(--notstarted);--cb:var(--notstarted-bg)}.planned{--c:var(--planned);--cb:var(--planned-bg)}.pulled{--c:var(--pulled);--cb:var(--pulled-bg)}.unneeded{--c:var(--unneeded);--cb:var(--unneeded-bg)}.blocked{--c:var(--blocked);--cb:var(--blocked-bg)}
.scroll{overflow:auto;max-width:100%;border:1px solid var(--line);border-radius:8px;background:#fff}
#graph .scroll{max-height:78vh}#gantt{display:block;max-width:100%;height:auto}
svg text{font:12px system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;fill:var(--ink)}
.edge{fill:none;stroke:#adb5bd;stroke-width:1.3}.edge.crit{stroke:var(--crit);stroke-width:2.6}
.arrowhead{fill:#adb5bd}.arrowhead.crit{fill:var(--crit)}
.n{cursor:pointer}.n rect{fill:var(--cb);stroke:var(--c);stroke-width:1.5}
.n.skipped rect,.n.notstarted rect,.n.blocked rect{stroke-dasharray:4 3}
.n.failed rect{stroke-width:2.2}
.n.crit rect{stroke:var(--crit);stroke-width:3}
.n text.t{text-anchor:end;fill:var(--muted);font-size:11px}
.n:hover rect,.n:focus rect{filter:brightness(.95);stroke-width:3}
svg .dim{opacity:.16}.lit rect{stroke-width:3}
.grid{stroke:#e9ecef}.tick{fill:var(--muted);font-size:11px;text-anchor:middle}
.phase{stroke:var(--ink);stroke-dasharray:5 4}.phase-label{font-weight:600;fill:var(--ink)}
.lane{fill:transparent}.lane.odd{fill:rgba(0,0,0,.028)}.lane-label{text-anchor:end;fill:var(--muted)}
.bar rect{fill:var(--c);stroke:#fff;stroke-width:1}.bar text{fill:#fff;font-size:11.5px;pointer-events:none}
.bar.crit rect{stroke:var(--crit);stroke-width:2.5}
.bar{cursor:pointer}.mark path{fill:var(--c);stroke:#fff;stroke-width:1}.mark{cursor:pointer}
.prep rect{fill:#f1f3f5;stroke:none}.prep text{fill:var(--muted);text-anchor:middle;font-size:11px;font-style:italic}
.hatch-bg{fill:#e9ecef}.hatch-line{stroke:#ced4da;stroke-width:3}
table{border-collapse:collapse;width:100%;font-size:13px}
th{position:sticky;top:0;background:var(--panel);text-align:left;font-weight:600;padding:6px 10px;border-bottom:1px solid var(--line);cursor:default;white-space:nowrap}
th[data-sort]{cursor:pointer}th[data-sort]:hover{color:var(--cached)}
td{padding:4px 10px;border-bottom:1px solid #f1f3f5;vertical-align:top}
td.id{white-space:nowrap}td.id a{color:var(--ink);text-decoration:none;font-weight:550}td.id a:hover{text-decoration:underline}
.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
.pill{display:inline-block;padding:0 8px;border-radius:999px;font-size:12px;background:var(--cb);color:var(--c);border:1px solid var(--c);white-space:nowrap}
.reason.push{color:var(--failed)}.anc{font-size:11px;color:var(--muted);margin-left:6px;border:1px solid var(--line);border-radius:4px;padding:0 4px}
.cp{display:inline-block;width:8px;height:8px;border-radius:50%;background:var(--crit);margin-left:7px;vertical-align:1px}
.reason{color:var(--muted);font-size:12px;max-width:520px;white-space:pre-wrap;overflow-wrap:anywhere}
td.wf{width:38%;min-width:260px}.track{position:relative;height:14px;background:#f8f9fa;border-radius:3px;margin-top:3px}
.track i{position:absolute;top:0;height:14px;border-radius:3px}
.track i.w{background:repeating-linear-gradient(45deg,#e9ecef 0 3px,#ced4da 3px 5px)}
.track i.r{background:var(--c)}.track i.m{width:10px;height:10px;top:2px;margin-left:-5px;transform:rotate(45deg);background:var(--c);border-radius:2px}
tr.crit .track i.r{box-shadow:0 0 0 2px var(--crit)}
tr.hide{display:none}tr.sel td{background:#fff9db}
a.log{color:var(--cached)}
code{font-family:ui-monospace,"DejaVu Sans Mono",monospace;font-size:12px}
#details{position:fixed;right:18px;bottom:18px;width:380px;max-height:60vh;overflow:auto;background:#fff;border:1px solid var(--line);border-radius:10px;box-shadow:0 8px 30px rgba(0,0,0,.15);padding:14px 16px;z-index:10;font-size:13px}
#details h3{margin:0 22px 6px 0;font-size:15px;overflow-wrap:anywhere}#details dl{display:grid;grid-template-columns:max-content 1fr;gap:3px 10px;margin:0}
#details dt{color:var(--muted)}#details dd{margin:0;overflow-wrap:anywhere}
#close{position:absolute;top:6px;right:8px;border:none;background:none;font-size:20px;cursor:pointer;color:var(--muted)}
.empty{color:var(--muted)}
@media print{.bar-top{position:static}#details{display:none}.scroll{max-height:none;overflow:visible}}
"##;

const JS: &str = r##"
"use strict";
(function () {
  var run = JSON.parse(document.getElementById("keg-run").textContent);
  var nodes = run.nodes, n = nodes.length;
  var parents = [], children = [];
  for (var i = 0; i < n; i++) { parents.push([]); children.push([]); }
  run.edges.forEach(function (e) { parents[e[1]].push(e[0]); children[e[0]].push(e[1]); });
  var graphNodes = Array.prototype.slice.call(document.querySelectorAll("#dag .n"));
  var edges = Array.prototype.slice.call(document.querySelectorAll("#dag .edge"));
  var rows = Array.prototype.slice.call(document.querySelectorAll("#table tbody tr"));
  var filters = {}, query = "", selected = null;

  function walk(start, next) {
    var seen = {}, stack = [start];
    while (stack.length) {
      var i = stack.pop();
      if (seen[i]) continue;
      seen[i] = true;
      next[i].forEach(function (j) { stack.push(j); });
    }
    return seen;
  }
  function ms(v) {
    if (v === undefined || v === null) return "";
    if (v < 60000) return (v / 1000).toFixed(1) + "s";
    var m = Math.floor(v / 60000), s = Math.floor(v % 60000 / 1000);
    return m + "m " + (s < 10 ? "0" : "") + s + "s";
  }
  function matches(i) {
    var node = nodes[i];
    var active = Object.keys(filters).filter(function (k) { return filters[k]; });
    var byResult = active.length === 0 || active.indexOf(outcomeClass(node.outcome)) >= 0;
    var byText = !query || node.id.toLowerCase().indexOf(query) >= 0;
    return byResult && byText;
  }
  function outcomeClass(o) { return o === "not-started" ? "notstarted" : o; }
  function apply() {
    var lit = null;
    if (selected !== null) {
      var up = walk(selected, parents), down = walk(selected, children);
      lit = {};
      Object.keys(up).forEach(function (k) { lit[k] = true; });
      Object.keys(down).forEach(function (k) { lit[k] = true; });
    }
    graphNodes.forEach(function (g) {
      var i = +g.getAttribute("data-i");
      var on = lit ? !!lit[i] : matches(i);
      g.classList.toggle("dim", !on);
      g.classList.toggle("lit", !!(lit && lit[i]));
    });
    edges.forEach(function (e) {
      var p = +e.getAttribute("data-p"), c = +e.getAttribute("data-c");
      var on = lit ? (lit[p] && lit[c]) : (matches(p) && matches(c));
      e.classList.toggle("dim", !on);
    });
    document.querySelectorAll("#gantt .bar, #gantt .mark").forEach(function (b) {
      var i = +b.getAttribute("data-i");
      b.classList.toggle("dim", lit ? !lit[i] : !matches(i));
    });
    rows.forEach(function (r) {
      var i = +r.getAttribute("data-i");
      r.classList.toggle("hide", lit ? !lit[i] : !matches(i));
      r.classList.toggle("sel", i === selected);
    });
  }
  function esc(s) {
    return String(s).replace(/[&<>"']/g, function (c) {
      return { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c];
    });
  }
  function show(i) {
    var node = nodes[i], box = document.getElementById("details");
    var dl = [["result", node.outcome.replace("-", " ")], ["architecture", node.arch],
      ["builder", node.builder + (node.lane !== undefined ? " · lane " + (node.lane + 1) : "")],
      ["tags", node.tags.join(", ")], ["key", node.key]];
    if (node.started_ms !== undefined) {
      dl.push(["waited", ms((node.started_ms || 0) - (node.ready_ms || node.started_ms || 0))]);
      dl.push(["ran", ms((node.finished_ms || 0) - node.started_ms) + " (from " + ms(node.started_ms) + ")"]);
    }
    if (node.retries) dl.push(["retries", String(node.retries)]);
    if (node.reason) dl.push(["why", node.reason]);
    dl.push(["built on", parents[i].map(function (p) { return nodes[p].id; }).join(", ") || "—"]);
    dl.push(["needed by", children[i].length + " node" + (children[i].length === 1 ? "" : "s")]);
    var html = "<h3>" + esc(node.id) + "</h3><dl>" + dl.map(function (d) {
      return "<dt>" + esc(d[0]) + "</dt><dd>" + esc(d[1]) + "</dd>";
    }).join("") + "</dl>";
    var row = document.getElementById("row-" + i), link = row && row.querySelector("a.log");
    if (link) html += '<p><a class="log" href="' + esc(link.getAttribute("href")) + '">open the log</a></p>';
    document.getElementById("details-body").innerHTML = html;
    box.hidden = false;
  }
  function select(i) {
    selected = (selected === i) ? null : i;
    if (selected === null) document.getElementById("details").hidden = true; else show(i);
    apply();
  }
  document.addEventListener("click", function (ev) {
    var t = ev.target.closest ? ev.target.closest("[data-i]") : null;
    if (t && (t.closest("#dag") || t.closest("#gantt"))) { select(+t.getAttribute("data-i")); return; }
    if (t && ev.target.closest("td.id")) { ev.preventDefault(); select(+t.getAttribute("data-i")); return; }
    if (ev.target.closest && ev.target.closest("svg") && !t) { selected = null; document.getElementById("details").hidden = true; apply(); }
  });
  document.addEventListener("keydown", function (ev) {
    if (ev.key === "Escape") { selected = null; document.getElementById("details").hidden = true; apply(); }
    if (ev.key === "Enter" && ev.target.getAttribute && ev.target.getAttribute("data-i") !== null && ev.target.closest("#dag")) {
      select(+ev.target.getAttribute("data-i"));
    }
  });
  document.getElementById("close").addEventListener("click", function () {
    selected = null; document.getElementById("details").hidden = true; apply();
  });
  document.querySelectorAll(".chip").forEach(function (c) {
    c.addEventListener("click", function () {
      var k = c.getAttribute("data-filter");
      filters[k] = !filters[k];
      c.setAttribute("aria-pressed", filters[k] ? "true" : "false");
      selected = null; apply();
    });
  });
  document.getElementById("search").addEventListener("input", function (ev) {
    query = ev.target.value.trim().toLowerCase(); selected = null; apply();
  });
  document.querySelectorAll("th[data-sort]").forEach(function (th) {
    var asc = true;
    th.addEventListener("click", function () {
      var body = document.querySelector("#table tbody"), num = th.getAttribute("data-sort") === "num";
      var index = Array.prototype.indexOf.call(th.parentNode.children, th);
      rows.sort(function (a, b) {
        var x = a.children[index], y = b.children[index];
        var u = num ? +(x.getAttribute("data-v") || 0) : x.textContent;
        var v = num ? +(y.getAttribute("data-v") || 0) : y.textContent;
        return (u < v ? -1 : u > v ? 1 : 0) * (asc ? 1 : -1);
      });
      asc = !asc;
      rows.forEach(function (r) { body.appendChild(r); });
    });
  });
  document.documentElement.setAttribute("data-ready", String(n));
})();
"##;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{Phase, RecordNode};

    fn node(id: &str, outcome: NodeOutcome, times: Option<(u64, u64, u64)>) -> RecordNode {
        RecordNode {
            id: id.to_string(),
            repo: id.split(':').next().unwrap_or(id).to_string(),
            tags: vec!["1".to_string()],
            arch: "amd64".to_string(),
            builder: "buildkit".to_string(),
            key: "k".repeat(64),
            outcome,
            reason: None,
            lane: times.map(|_| 0),
            ready_ms: times.map(|t| t.0),
            started_ms: times.map(|t| t.1),
            finished_ms: times.map(|t| t.2),
            decided_ms: None,
            log: times.map(|_| format!("/tmp/logs/{id} x.log")),
            retries: 0,
            push_error: None,
            ancestor: false,
        }
    }

    fn record() -> RunRecord {
        let mut r = RunRecord::new(RunKind::Build, "keg build --all".to_string(), 2);
        r.started_at = "2026-01-02T03:04:05Z".to_string();
        r.duration_ms = 9_000;
        r.nodes = vec![
            node("base:1@amd64", NodeOutcome::Built, Some((0, 0, 3_000))),
            node(
                "app:1@amd64",
                NodeOutcome::Built,
                Some((3_000, 3_500, 8_000)),
            ),
            node("<evil>&:1@amd64", NodeOutcome::Failed, Some((0, 100, 400))),
            node("child:1@amd64", NodeOutcome::Skipped, None),
            node("old:1@amd64", NodeOutcome::Cached, None),
        ];
        r.nodes[3].reason = Some("depends on <evil>, which failed".to_string());
        r.nodes[3].decided_ms = Some(400);
        r.nodes[4].decided_ms = Some(0);
        r.edges = vec![(0, 1), (2, 3)];
        r.phases = vec![Phase {
            arch: "amd64".to_string(),
            start_ms: 0,
            end_ms: 9_000,
        }];
        r
    }

    #[test]
    fn critical_path_follows_run_time() {
        let (path, total) = record().critical_path();
        assert_eq!(path, [0, 1]);
        assert_eq!(total, 7_500);
    }

    #[test]
    fn page_is_self_contained_escaped_and_deterministic() {
        let r = record();
        let page = render(&r);
        assert_eq!(page, render(&r));
        assert!(page.starts_with("<!DOCTYPE html>"));
        // Nothing is loaded from anywhere: no src/href to other documents but file: logs,
        // anchors, and the SVG namespace.
        for needle in ["src=", "@import", "url(http", "<link", "https:"] {
            assert!(!page.contains(needle), "{needle}");
        }
        assert!(!page.contains("<evil>"));
        assert!(page.contains("&lt;evil&gt;&amp;:1"));
        assert!(page.contains("href=\"file:///tmp/logs/base%3A1%40amd64%20x.log\""));
        // Every node is drawn once in the graph and has one table row.
        assert_eq!(page.matches("<g class=\"n ").count(), 5);
        assert_eq!(page.matches("<tr class=").count(), 5);
        // The critical path (base -> app) is marked on both nodes and their edge.
        assert_eq!(page.matches("<g class=\"n built crit\"").count(), 2);
        assert_eq!(page.matches("class=\"edge crit\"").count(), 1);
        // Timeline: one builder lane, a cached row and a did-not-run row.
        assert!(page.contains(">builder 1</text>"));
        assert!(page.contains(">cached (1)</text>"));
        assert!(page.contains(">did not run (1)</text>"));
        // The embedded record parses back to the same value.
        let start = page.find("id=\"keg-run\">").expect("json") + "id=\"keg-run\">".len();
        let end = start + page[start..].find("</script>").expect("end");
        let back: RunRecord = serde_json::from_str(&page[start..end]).expect("record json");
        assert_eq!(back, r);
    }

    #[test]
    fn layout_keeps_nodes_apart_at_hundreds() {
        let mut r = RunRecord::new(RunKind::Plan, "keg plan --all".to_string(), 0);
        for i in 0..400 {
            r.nodes.push(node(
                &format!("repo{i}:1@amd64"),
                NodeOutcome::Planned,
                None,
            ));
        }
        // A base with 60 children, chains of 5, and 200 singletons.
        for c in 1..=60 {
            r.edges.push((0, c));
        }
        for chain in 0..20 {
            let s = 61 + chain * 6;
            for k in 0..5 {
                r.edges.push((s + k, s + k + 1));
            }
        }
        let names: Vec<String> = r.nodes.iter().map(|n| n.id.clone()).collect();
        let (places, w, h) = layout(&r, &names);
        // Packed: the drawing is at most three times the area of the boxes and their gaps.
        let cells = 400.0 * (NODE_W + COL_GAP) * (NODE_H + ROW_GAP);
        assert!(w * h < 3.0 * cells, "{w} x {h}");
        assert!(w < 2_000.0, "{w}");
        let mut boxes: Vec<(i64, i64)> = places.iter().map(|p| (p.x as i64, p.y as i64)).collect();
        boxes.sort();
        boxes.dedup();
        assert_eq!(boxes.len(), 400, "two nodes share a place");
        for &(p, c) in &r.edges {
            assert!(places[p].x < places[c].x || places[p].y != places[c].y);
        }
        let page = render(&r);
        assert_eq!(page.matches("<g class=\"n planned").count(), 400);
    }

    #[test]
    fn durations() {
        assert_eq!(duration(0), "0.0s");
        assert_eq!(duration(12_340), "12.3s");
        assert_eq!(duration(245_000), "4m 05s");
        assert_eq!(duration(3_720_000), "1h 02m");
        assert_eq!(tick_step(9_000), 2_000);
        assert_eq!(tick_step(26 * 60_000), 300_000);
        assert_eq!(tick_label(300_000), "5m");
        assert_eq!(tick_label(90_000), "1m 30s");
        assert_eq!(tick_label(5_400_000), "1h 30m");
        assert_eq!(tick_label(500), "0.5s");
        assert_eq!(ellipsis("abcdef", 4), "abc…");
    }
}

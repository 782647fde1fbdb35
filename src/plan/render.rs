//! Plans for people (levels of the graph), for CI (`--json`, docs/plan.md), for graphviz
//! (`--dot`), and `--explain` (what a key hashed); and cutting a plan into CI shards.
//!
//! Invariants: every rendering is deterministic (node order, then plan order); a shard is a
//! plan of whole connected components, closed under `depends_on`.

use std::collections::HashMap;
use std::io::{self, Write};

use super::{Node, Plan, graph};
use crate::shard;

impl Plan {
    fn index(&self) -> HashMap<&str, usize> {
        self.nodes
            .iter()
            .enumerate()
            .map(|(i, n)| (n.id.as_str(), i))
            .collect()
    }

    /// (parent, child) index pairs.
    pub fn edges(&self) -> Vec<(usize, usize)> {
        let index = self.index();
        self.nodes
            .iter()
            .enumerate()
            .flat_map(|(child, node)| {
                node.depends_on
                    .iter()
                    .filter_map(|id| index.get(id.as_str()).map(|&p| (p, child)))
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    /// Node indexes in build order.
    pub fn order_indexes(&self) -> Vec<usize> {
        let index = self.index();
        self.order
            .iter()
            .filter_map(|id| index.get(id.as_str()).copied())
            .collect()
    }

    /// Part `part` (1-based) of `parts` balanced parts, each made of whole connected
    /// components (longest-processing-time first, one unit per node).
    pub fn shard(&self, part: usize, parts: usize) -> Plan {
        let weights = vec![1u64; self.nodes.len()];
        let chosen: Vec<usize> = shard::shard(&weights, &self.edges(), parts)
            .ok()
            .and_then(|mut all| (part >= 1 && part <= all.len()).then(|| all.swap_remove(part - 1)))
            .unwrap_or_default();
        let keep: std::collections::HashSet<&str> =
            chosen.iter().map(|&i| self.nodes[i].id.as_str()).collect();
        Plan {
            version: self.version,
            nodes: self
                .nodes
                .iter()
                .filter(|n| keep.contains(n.id.as_str()))
                .cloned()
                .collect(),
            order: self
                .order
                .iter()
                .filter(|id| keep.contains(id.as_str()))
                .cloned()
                .collect(),
        }
    }

    /// `--matrix N`: a JSON list of `{shard: "I/N", nodes: [ids], command}`, one per
    /// non-empty shard of at most `parts`, each shard's command made by `command(I, N)`.
    pub fn write_matrix(
        &self,
        out: &mut impl Write,
        parts: usize,
        command: impl Fn(usize, usize) -> String,
    ) -> io::Result<()> {
        #[derive(serde::Serialize)]
        struct Shard {
            shard: String,
            nodes: Vec<String>,
            command: String,
        }
        let mut shards = Vec::new();
        for part in 1..=parts {
            let nodes = self.shard(part, parts).order;
            if !nodes.is_empty() {
                shards.push(Shard {
                    shard: format!("{part}/{parts}"),
                    nodes,
                    command: command(part, parts),
                });
            }
        }
        serde_json::to_writer_pretty(&mut *out, &shards)?;
        writeln!(out)
    }

    pub fn write_json(&self, out: &mut impl Write) -> io::Result<()> {
        serde_json::to_writer_pretty(&mut *out, self)?;
        writeln!(out)
    }

    pub fn write_dot(&self, out: &mut impl Write) -> io::Result<()> {
        writeln!(out, "digraph keg {{")?;
        writeln!(out, "  rankdir=LR;")?;
        writeln!(out, "  node [shape=box, fontname=\"monospace\"];")?;
        let mut externals: Vec<&str> = Vec::new();
        for node in &self.nodes {
            writeln!(
                out,
                "  {} [label={}];",
                dot_id(&node.id),
                dot_id(&format!(
                    "{}\\n{} {}",
                    node.id,
                    node.builder.as_str(),
                    &node.key[..12]
                ))
            )?;
            for parent in node.parents.iter().filter(|p| p.node.is_none()) {
                if !externals.contains(&parent.reference.as_str()) {
                    externals.push(&parent.reference);
                }
            }
        }
        for external in &externals {
            writeln!(out, "  {} [style=dashed];", dot_id(external))?;
        }
        for node in &self.nodes {
            for parent in &node.parents {
                let from = parent.node.as_deref().unwrap_or(&parent.reference);
                writeln!(out, "  {} -> {};", dot_id(from), dot_id(&node.id))?;
            }
        }
        writeln!(out, "}}")
    }

    pub fn write_text(&self, out: &mut impl Write) -> io::Result<()> {
        let order = self.order_indexes();
        let levels = graph::levels(self.nodes.len(), &self.edges(), &order);
        let built = self.nodes.iter().filter(|n| n.built == Some(true)).count();
        let known = self.nodes.iter().any(|n| n.built.is_some());
        let mut arches: Vec<&str> = self.nodes.iter().map(|n| n.arch.as_str()).collect();
        arches.sort_unstable();
        arches.dedup();
        write!(out, "plan: {} nodes", self.nodes.len())?;
        let ancestors = self.nodes.iter().filter(|n| !n.selected).count();
        if ancestors > 0 {
            write!(
                out,
                " ({} selected, {ancestors} ancestor{} planned for {} key{})",
                self.nodes.len() - ancestors,
                if ancestors == 1 { "" } else { "s" },
                if ancestors == 1 { "its" } else { "their" },
                if ancestors == 1 { "" } else { "s" },
            )?;
        }
        if !arches.is_empty() {
            write!(out, " for {}", arches.join(", "))?;
        }
        if known {
            write!(
                out,
                ", {} built, {} to build",
                built,
                self.nodes.len() - built
            )?;
        } else {
            write!(out, " (no Docker engine: build status unknown)")?;
        }
        writeln!(out)?;
        let depth = levels.iter().copied().max().map_or(0, |m| m + 1);
        for level in 0..depth {
            writeln!(out, "\nlevel {level}")?;
            for &i in order.iter().filter(|&&i| levels[i] == level) {
                write_node(out, &self.nodes[i])?;
            }
        }
        Ok(())
    }

    /// What the keys of the nodes matching `pred` hashed.
    pub fn write_explain(
        &self,
        out: &mut impl Write,
        pred: impl Fn(&Node) -> bool,
    ) -> io::Result<()> {
        for (i, node) in self.nodes.iter().filter(|n| pred(n)).enumerate() {
            if i > 0 {
                writeln!(out)?;
            }
            writeln!(out, "node: {}", node.id)?;
            writeln!(out, "key: {}", node.key)?;
            let provisional = node.inputs.provisional_inputs();
            if provisional.is_empty() {
                writeln!(out, "provisional inputs: none")?;
            } else {
                writeln!(
                    out,
                    "provisional inputs: {} (image id unknown: no engine, or not pulled yet)",
                    provisional.join(", ")
                )?;
            }
            writeln!(out, "hashed (sha256 of this exact line):")?;
            writeln!(out, "{}", node.inputs.canonical_json())?;
        }
        Ok(())
    }
}

fn write_node(out: &mut impl Write, node: &Node) -> io::Result<()> {
    let status = match (&node.blocked, node.built) {
        (Some(_), _) => "blocked",
        (None, Some(true)) => "built",
        (None, Some(false)) => "to build",
        (None, None) => "unknown",
    };
    let provisional = if node.provisional {
        " (provisional)"
    } else {
        ""
    };
    let ancestor = if node.selected { "" } else { "  (ancestor)" };
    writeln!(
        out,
        "  {}  [{}]  key {}{provisional}  {status}{ancestor}",
        node.id,
        node.builder.as_str(),
        &node.key[..12]
    )?;
    if node.images.is_empty() {
        writeln!(out, "      tags: {} only", node.cache_tag)?;
    } else {
        writeln!(out, "      tags: {}", node.images.join(" "))?;
    }
    if !node.parents.is_empty() {
        let parents: Vec<String> = node
            .parents
            .iter()
            .map(|p| match &p.node {
                Some(id) => format!("{} ({id})", p.reference),
                None => p.reference.clone(),
            })
            .collect();
        writeln!(out, "      from: {}", parents.join(", "))?;
    }
    if let Some(reason) = &node.blocked {
        writeln!(out, "      blocked: {reason}")?;
    }
    Ok(())
}

fn dot_id(text: &str) -> String {
    format!(
        "\"{}\"",
        text.replace('\\', "\\\\")
            .replace('"', "\\\"")
            .replace("\\\\n", "\\n")
    )
}

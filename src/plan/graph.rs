//! The plan's graph: build order, cycles, levels, connected parts (petgraph).
//!
//! Invariants: the order is deterministic (bashbrew's pass-based topological sort over
//! nodes in library order, see [`crate::order`]); a cycle is reported with every member,
//! `a:1@amd64 -> b:2@amd64 -> a:1@amd64`.

use petgraph::graph::{DiGraph, NodeIndex};

use crate::error::Error;
use crate::order::Network;

/// Node indexes in build order; `edges` are (parent, child).
pub fn order(ids: &[String], edges: &[(usize, usize)]) -> Result<Vec<usize>, Error> {
    let mut net = Network::default();
    for id in ids {
        net.add_node(id);
    }
    for &(parent, child) in edges {
        net.add_edge(parent, child);
    }
    net.sort().map_err(|cycle| Error::Cycle {
        cycle: cycle.to_string(),
    })
}

/// The plan as a petgraph graph (node weight: index into the plan's nodes).
pub fn digraph(n: usize, edges: &[(usize, usize)]) -> (DiGraph<usize, ()>, Vec<NodeIndex>) {
    let mut graph = DiGraph::with_capacity(n, edges.len());
    let ids: Vec<NodeIndex> = (0..n).map(|i| graph.add_node(i)).collect();
    for &(parent, child) in edges {
        graph.update_edge(ids[parent], ids[child], ());
    }
    (graph, ids)
}

/// Each node's level: 0 without parents in the plan, else one more than its deepest parent.
/// `order` must be a topological order.
pub fn levels(n: usize, edges: &[(usize, usize)], order: &[usize]) -> Vec<usize> {
    let mut parents: Vec<Vec<usize>> = vec![Vec::new(); n];
    for &(parent, child) in edges {
        parents[child].push(parent);
    }
    let mut level = vec![0; n];
    for &node in order {
        level[node] = parents[node]
            .iter()
            .map(|&p| level[p] + 1)
            .max()
            .unwrap_or(0);
    }
    level
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_levels_and_cycles() {
        let ids: Vec<String> = ["a@amd64", "b@amd64", "c@amd64"].map(String::from).to_vec();
        let order = order(&ids, &[(2, 0), (0, 1)]).unwrap();
        assert_eq!(order, [2, 0, 1]);
        assert_eq!(levels(3, &[(2, 0), (0, 1)], &order), [1, 2, 0]);
        let err = super::order(&ids, &[(0, 1), (1, 0)]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "dependency cycle: a@amd64 -> b@amd64 -> a@amd64"
        );
        let (graph, _) = digraph(3, &[(0, 1), (0, 1)]);
        assert_eq!(graph.edge_count(), 1);
    }
}

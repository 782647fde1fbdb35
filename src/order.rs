//! bashbrew's build order: the topological sort it uses (pault.ag/go/topsort) and the
//! repository and entry sorts built on it (`cmd/bashbrew/sort.go`).
//!
//! The sort works in passes over the nodes in insertion order; each pass emits, in order,
//! every node whose inbound edges all come from emitted nodes (including nodes emitted
//! earlier in the same pass). Invariants: the output is deterministic and equal to
//! bashbrew's; a cycle is an error naming every member of one cycle, in edge order, never a
//! hang.

use petgraph::algo::tarjan_scc;
use petgraph::graph::DiGraph;

/// A cycle found while sorting: member names in edge order, the first repeated at the end
/// when rendered (`a -> b -> a`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cycle(pub Vec<String>);

impl std::fmt::Display for Cycle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut names = self.0.clone();
        if let Some(first) = self.0.first() {
            names.push(first.clone());
        }
        write!(f, "{}", names.join(" -> "))
    }
}

/// A graph of named nodes in insertion order.
#[derive(Debug, Default, Clone)]
pub struct Network {
    names: Vec<String>,
    /// Name -> index, so adding n nodes is linear, not quadratic.
    index: std::collections::HashMap<String, usize>,
    /// (from, to) index pairs: `to` must come after `from`.
    edges: Vec<(usize, usize)>,
}

impl Network {
    /// Adds a node, or returns the index of the existing node with that name.
    pub fn add_node(&mut self, name: &str) -> usize {
        if let Some(&i) = self.index.get(name) {
            return i;
        }
        self.names.push(name.to_string());
        self.index.insert(name.to_string(), self.names.len() - 1);
        self.names.len() - 1
    }

    pub fn add_edge(&mut self, from: usize, to: usize) {
        self.edges.push((from, to));
    }

    /// Node indexes in bashbrew's order, or the cycle that prevents one.
    pub fn sort(&self) -> Result<Vec<usize>, Cycle> {
        let n = self.names.len();
        let mut inbound: Vec<Vec<usize>> = vec![Vec::new(); n];
        for &(from, to) in &self.edges {
            inbound[to].push(from);
        }
        let mut marked = vec![false; n];
        let mut order = Vec::with_capacity(n);
        while order.len() < n {
            let before = order.len();
            for node in 0..n {
                if !marked[node] && inbound[node].iter().all(|&i| marked[i]) {
                    marked[node] = true;
                    order.push(node);
                }
            }
            if order.len() == before {
                return Err(self.cycle(&marked));
            }
        }
        Ok(order)
    }

    /// One cycle among the unmarked nodes, starting at its earliest member.
    fn cycle(&self, marked: &[bool]) -> Cycle {
        let mut graph = DiGraph::<usize, ()>::new();
        let ids: Vec<_> = (0..self.names.len()).map(|i| graph.add_node(i)).collect();
        for &(from, to) in &self.edges {
            if !marked[from] && !marked[to] {
                graph.add_edge(ids[from], ids[to], ());
            }
        }
        let component = tarjan_scc(&graph)
            .into_iter()
            .filter(|c| c.len() > 1 || graph.contains_edge(c[0], c[0]))
            .map(|c| {
                let mut members: Vec<usize> = c.iter().map(|&id| graph[id]).collect();
                members.sort_unstable();
                members
            })
            .min()
            .unwrap_or_default();
        // The shortest cycle through the earliest member (BFS inside the component;
        // self-edges only count for a component of one).
        let Some(&start) = component.first() else {
            return Cycle(Vec::new());
        };
        let inside = |from: usize, to: usize| {
            component.contains(&from)
                && component.contains(&to)
                && (from != to || component.len() == 1)
        };
        let mut came_from: Vec<Option<usize>> = vec![None; self.names.len()];
        let mut queue = std::collections::VecDeque::from([start]);
        let mut last = start;
        'search: while let Some(node) = queue.pop_front() {
            let mut next: Vec<usize> = self
                .edges
                .iter()
                .filter(|&&(from, to)| from == node && inside(from, to))
                .map(|&(_, to)| to)
                .collect();
            next.sort_unstable();
            for to in next {
                if to == start {
                    last = node;
                    break 'search;
                }
                if came_from[to].is_none() {
                    came_from[to] = Some(node);
                    queue.push_back(to);
                }
            }
        }
        let mut path = vec![last];
        while let Some(&node) = path.last() {
            match came_from[node] {
                Some(previous) if node != start => path.push(previous),
                _ => break,
            }
        }
        path.reverse();
        Cycle(path.into_iter().map(|i| self.names[i].clone()).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn network(names: &[&str], edges: &[(usize, usize)]) -> Network {
        let mut net = Network::default();
        for name in names {
            net.add_node(name);
        }
        for &(a, b) in edges {
            net.add_edge(a, b);
        }
        net
    }

    #[test]
    fn passes_emit_in_insertion_order() {
        // a waits for c: the first pass emits b and c, the second a.
        let net = network(&["a", "b", "c"], &[(2, 0)]);
        assert_eq!(net.sort().unwrap(), vec![1, 2, 0]);
        // A node whose parent was emitted earlier in the same pass comes in that pass.
        let net = network(&["a", "b", "c"], &[(0, 2)]);
        assert_eq!(net.sort().unwrap(), vec![0, 1, 2]);
        let net = network(&["x", "y", "z", "w"], &[(3, 0), (0, 1), (1, 2)]);
        assert_eq!(net.sort().unwrap(), vec![3, 0, 1, 2]);
    }

    #[test]
    fn cycles_name_every_member() {
        let net = network(&["free", "a", "b", "c"], &[(1, 2), (2, 3), (3, 1)]);
        assert_eq!(net.sort().unwrap_err().to_string(), "a -> b -> c -> a");
        let net = network(&["a", "b"], &[(0, 1), (1, 0), (0, 0)]);
        assert_eq!(net.sort().unwrap_err().to_string(), "a -> b -> a");
        let net = network(&["self"], &[(0, 0)]);
        assert_eq!(net.sort().unwrap_err().to_string(), "self -> self");
    }
}

//! Splitting a plan into balanced CI shards, so each CI job builds its part with no waiting on
//! another.
//!
//! [`shard`] groups nodes into connected components over the dependency edges (ignoring their
//! direction) and deals whole components out to the parts, longest processing time first:
//! the heaviest remaining component goes to the currently lightest part.
//!
//! Invariants:
//! - the parts partition the nodes: every node is in exactly one part;
//! - each part is closed under dependency edges in both directions: a node's dependencies and
//!   dependents are in its part;
//! - the result depends only on the weights, the set of edges and the number of parts, never
//!   on edge order: components are taken heaviest first (ties: lowest node index first), and a
//!   component goes to the lightest part (ties: lowest part index);
//! - each part lists its nodes in ascending order; parts may be empty;
//! - the heaviest part is at most `4/3 - 1/(3 * parts)` times the best possible one (Graham's
//!   bound for longest processing time first).

use std::cmp::Reverse;
use std::error::Error;
use std::fmt;

/// Invalid input to [`shard`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ShardError {
    /// Zero parts were requested.
    NoParts,
    /// An edge named a node outside `0..len`.
    UnknownNode { node: usize, len: usize },
}

impl fmt::Display for ShardError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoParts => write!(f, "cannot split a plan into 0 shards"),
            Self::UnknownNode { node, len } => {
                write!(f, "unknown node {node} (the plan has {len} nodes)")
            }
        }
    }
}

impl Error for ShardError {}

/// Splits the nodes `0..weights.len()` into `parts` parts, keeping every connected component
/// (over `(dependent, dependency)` edges) whole and balancing the summed weights.
///
/// Returns exactly `parts` parts, each in ascending node order; one `Vec` is allocated per
/// part, so `parts` should be a CI job count rather than an arbitrary user number.
pub fn shard(
    weights: &[u64],
    edges: &[(usize, usize)],
    parts: usize,
) -> Result<Vec<Vec<usize>>, ShardError> {
    if parts == 0 {
        return Err(ShardError::NoParts);
    }
    let mut components = components(weights.len(), edges)?;
    let weight_of = |component: &[usize]| {
        component
            .iter()
            .fold(0u64, |sum, &node| sum.saturating_add(weights[node]))
    };
    // Each component lists its nodes ascending, so `component[0]` is its lowest node.
    components.sort_by_cached_key(|component| (Reverse(weight_of(component)), component[0]));

    let mut loads = vec![0u64; parts];
    let mut shards = vec![Vec::new(); parts];
    for component in components {
        let lightest = (0..parts)
            .min_by_key(|&part| (loads[part], part))
            .unwrap_or(0);
        loads[lightest] = loads[lightest].saturating_add(weight_of(&component));
        shards[lightest].extend(component);
    }
    for part in &mut shards {
        part.sort_unstable();
    }
    Ok(shards)
}

/// Parses a 1-based `--shard I/N` value into `(I, N)`, with `1 <= I <= N`.
pub fn parse_shard_spec(spec: &str) -> Result<(usize, usize), String> {
    let parsed = spec.split_once('/').and_then(|(index, count)| {
        let index: usize = index.parse().ok()?;
        let count: usize = count.parse().ok()?;
        (1 <= index && index <= count).then_some((index, count))
    });
    parsed.ok_or_else(|| format!("invalid --shard {spec:?}: expected I/N with 1 <= I <= N"))
}

/// The connected components of the undirected graph over `0..len`, each listing its nodes
/// ascending, in order of their lowest node.
fn components(len: usize, edges: &[(usize, usize)]) -> Result<Vec<Vec<usize>>, ShardError> {
    let mut sets = DisjointSets::new(len);
    for &(a, b) in edges {
        for node in [a, b] {
            if node >= len {
                return Err(ShardError::UnknownNode { node, len });
            }
        }
        sets.union(a, b);
    }
    let mut component_of_root = vec![None; len];
    let mut components: Vec<Vec<usize>> = Vec::new();
    for node in 0..len {
        let root = sets.find(node);
        let index = *component_of_root[root].get_or_insert_with(|| {
            components.push(Vec::new());
            components.len() - 1
        });
        components[index].push(node);
    }
    Ok(components)
}

/// Union-find whose root is always the lowest node of its set.
struct DisjointSets {
    parent: Vec<usize>,
}

impl DisjointSets {
    fn new(len: usize) -> Self {
        Self {
            parent: (0..len).collect(),
        }
    }

    fn find(&mut self, mut node: usize) -> usize {
        while self.parent[node] != node {
            self.parent[node] = self.parent[self.parent[node]];
            node = self.parent[node];
        }
        node
    }

    fn union(&mut self, a: usize, b: usize) {
        let (a, b) = (self.find(a), self.find(b));
        let (low, high) = if a < b { (a, b) } else { (b, a) };
        self.parent[high] = low;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(part: &[usize], weights: &[u64]) -> u64 {
        part.iter().map(|&node| weights[node]).sum()
    }

    #[test]
    fn independent_nodes_follow_longest_processing_time_first() {
        let weights = [3, 3, 2, 2, 2];
        let parts = shard(&weights, &[], 2).unwrap();
        assert_eq!(parts, [vec![0, 2, 4], vec![1, 3]]);
    }

    #[test]
    fn components_stay_whole() {
        // 0 - 1 - 2 is one component of weight 3; 3 and 4 weigh 1 each.
        let parts = shard(&[1, 1, 1, 1, 1], &[(1, 0), (2, 1)], 2).unwrap();
        assert_eq!(parts, [vec![0, 1, 2], vec![3, 4]]);
    }

    #[test]
    fn component_order_ties_go_to_the_lowest_node() {
        // Components {1, 3} and {0, 2} weigh 2 each; {0, 2} goes first, to part 0.
        let parts = shard(&[1, 1, 1, 1], &[(3, 1), (2, 0)], 2).unwrap();
        assert_eq!(parts, [vec![0, 2], vec![1, 3]]);
    }

    #[test]
    fn part_ties_go_to_the_lowest_part() {
        let parts = shard(&[5, 1], &[], 3).unwrap();
        assert_eq!(parts, [vec![0], vec![1], vec![]]);
    }

    #[test]
    fn more_parts_than_components_leaves_parts_empty() {
        let parts = shard(&[1, 1, 1], &[(1, 0), (2, 1)], 4).unwrap();
        assert_eq!(parts, [vec![0, 1, 2], vec![], vec![], vec![]]);
        assert_eq!(shard(&[], &[], 2).unwrap(), [Vec::<usize>::new(), vec![]]);
    }

    #[test]
    fn one_part_holds_everything() {
        let parts = shard(&[4, 0, 7], &[(2, 0)], 1).unwrap();
        assert_eq!(parts, [vec![0, 1, 2]]);
    }

    #[test]
    fn invalid_input_is_an_error() {
        assert_eq!(shard(&[1], &[], 0), Err(ShardError::NoParts));
        assert_eq!(
            shard(&[1, 1], &[(0, 5)], 2),
            Err(ShardError::UnknownNode { node: 5, len: 2 })
        );
    }

    #[test]
    fn edge_order_does_not_matter() {
        let weights = [2, 7, 1, 8, 2, 8, 1, 8];
        let edges = [(1, 0), (3, 2), (5, 4), (4, 6), (7, 6)];
        let mut reversed = edges;
        reversed.reverse();
        let flipped: Vec<(usize, usize)> = edges.iter().map(|&(a, b)| (b, a)).collect();
        let expected = shard(&weights, &edges, 3).unwrap();
        assert_eq!(shard(&weights, &reversed, 3).unwrap(), expected);
        assert_eq!(shard(&weights, &flipped, 3).unwrap(), expected);
    }

    #[test]
    fn parse_accepts_valid_specs() {
        assert_eq!(parse_shard_spec("1/1"), Ok((1, 1)));
        assert_eq!(parse_shard_spec("2/3"), Ok((2, 3)));
        assert_eq!(parse_shard_spec("10/10"), Ok((10, 10)));
    }

    #[test]
    fn parse_rejects_invalid_specs() {
        for spec in [
            "3/2", "0/2", "1/0", "0/0", "a/2", "1/b", "2", "", "/", "1/2/3", "-1/2", " 1/2",
        ] {
            assert_eq!(
                parse_shard_spec(spec),
                Err(format!(
                    "invalid --shard {spec:?}: expected I/N with 1 <= I <= N"
                )),
                "spec {spec:?}"
            );
        }
        assert_eq!(
            parse_shard_spec("3/2").unwrap_err(),
            r#"invalid --shard "3/2": expected I/N with 1 <= I <= N"#
        );
    }

    /// Deterministic xorshift64 generator.
    struct XorShift(u64);

    impl XorShift {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }

        fn below(&mut self, bound: usize) -> usize {
            (self.next() % bound as u64) as usize
        }
    }

    /// The smallest possible heaviest-part load, trying every assignment of components.
    fn brute_force_optimum(component_weights: &[u64], parts: usize) -> u64 {
        fn best(rest: &[u64], loads: &mut [u64]) -> u64 {
            let Some((&weight, rest)) = rest.split_first() else {
                return loads.iter().copied().max().unwrap_or(0);
            };
            let mut result = u64::MAX;
            for part in 0..loads.len() {
                loads[part] += weight;
                result = result.min(best(rest, loads));
                loads[part] -= weight;
            }
            result
        }
        best(component_weights, &mut vec![0; parts])
    }

    #[test]
    fn random_plans_are_partitioned_closed_and_balanced() {
        let mut rng = XorShift(0x2545_F491_4F6C_DD1D);
        for _ in 0..300 {
            let n = rng.below(12);
            let parts = 1 + rng.below(3);
            let weights: Vec<u64> = (0..n).map(|_| rng.below(20) as u64).collect();
            let edges: Vec<(usize, usize)> = if n == 0 {
                Vec::new()
            } else {
                (0..rng.below(n + 1))
                    .map(|_| (rng.below(n), rng.below(n)))
                    .collect()
            };
            let result = shard(&weights, &edges, parts).unwrap();
            assert_eq!(result, shard(&weights, &edges, parts).unwrap());
            assert_eq!(result.len(), parts);

            let mut part_of = vec![None; n];
            for (index, part) in result.iter().enumerate() {
                assert!(part.is_sorted());
                for &node in part {
                    assert_eq!(part_of[node], None, "node {node} in two parts");
                    part_of[node] = Some(index);
                }
            }
            assert!(part_of.iter().all(Option::is_some), "a node is missing");
            for &(a, b) in &edges {
                assert_eq!(part_of[a], part_of[b], "edge ({a}, {b}) crosses parts");
            }

            let component_weights: Vec<u64> = components(n, &edges)
                .unwrap()
                .iter()
                .map(|component| load(component, &weights))
                .collect();
            let optimum = brute_force_optimum(&component_weights, parts);
            let heaviest = result
                .iter()
                .map(|part| load(part, &weights))
                .max()
                .unwrap_or(0);
            let parts = parts as u64;
            assert!(
                3 * parts * heaviest <= (4 * parts - 1) * optimum,
                "heaviest part {heaviest} exceeds Graham's bound for optimum {optimum}"
            );
        }
    }
}

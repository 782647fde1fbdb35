//! A generic ready queue for running a dependency graph in parallel.
//!
//! [`DependencyQueue`] knows nothing about what it schedules (compare cargo's
//! `dependency_queue.rs`): nodes are the indices `0..n` of the plan, edges are
//! `(dependent, dependency)` pairs, and each node has a cost in any unit (1 per node,
//! estimated seconds, ...). The caller pops ready nodes, runs them wherever it likes and
//! reports each result with [`DependencyQueue::finish`].
//!
//! Invariants:
//! - the graph is acyclic: [`DependencyQueue::new`] rejects cycles and names one, so a queue
//!   that is not stopped never hangs: until it is done, some node is ready or running;
//! - [`DependencyQueue::pop`] hands a node out at most once, and only once every dependency
//!   has succeeded (cached nodes count as succeeded);
//! - among ready nodes, the one with the longest remaining critical path (its cost plus the
//!   costliest chain through its transitive dependents) comes first; ties go to the lower index;
//! - every node ends in exactly one state: succeeded, failed, or skipped because a
//!   dependency failed; after [`DependencyQueue::stop`], unstarted nodes stay not started;
//! - misuse (an unknown node, finishing a node twice) is reported as a [`QueueError`]; no
//!   method panics on caller input.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::error::Error;
use std::fmt;

/// How a node's work ended, as reported to [`DependencyQueue::finish`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Success,
    Failed,
}

/// Where a node stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeState {
    /// Some dependency has not finished yet.
    Waiting,
    /// Every dependency succeeded; [`DependencyQueue::pop`] may hand the node out.
    Ready,
    /// Handed out by [`DependencyQueue::pop`], not finished yet.
    Running,
    /// Finished successfully, or marked done up front (cached).
    Succeeded,
    /// Finished with a failure.
    Failed,
    /// Never run because its transitive dependency `failed_ancestor` failed.
    Skipped { failed_ancestor: usize },
}

/// A node that will never run because a node it transitively depends on failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Skipped {
    pub node: usize,
    pub failed_ancestor: usize,
}

/// Progress counters; every node is counted in exactly one of the state fields, so they
/// add up to `total`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub waiting: usize,
    pub ready: usize,
    pub running: usize,
    pub succeeded: usize,
    pub failed: usize,
    pub skipped: usize,
    pub total: usize,
}

impl Counts {
    fn slot(&mut self, state: NodeState) -> &mut usize {
        match state {
            NodeState::Waiting => &mut self.waiting,
            NodeState::Ready => &mut self.ready,
            NodeState::Running => &mut self.running,
            NodeState::Succeeded => &mut self.succeeded,
            NodeState::Failed => &mut self.failed,
            NodeState::Skipped { .. } => &mut self.skipped,
        }
    }
}

/// Misuse of the queue, reported instead of panicking.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueueError {
    /// An edge or a call named a node outside `0..len`.
    UnknownNode { node: usize, len: usize },
    /// The edges contain a cycle. Each member depends on the next one, and the last one on
    /// the first; the lowest index comes first.
    Cycle(Vec<usize>),
    /// [`DependencyQueue::finish`] on a node that already succeeded, failed or was skipped.
    AlreadyFinished { node: usize, state: NodeState },
}

impl fmt::Display for QueueError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UnknownNode { node, len } => {
                write!(f, "unknown node {node} (the queue has {len} nodes)")
            }
            Self::Cycle(members) => {
                write!(f, "dependency cycle: ")?;
                for member in members {
                    write!(f, "{member} -> ")?;
                }
                match members.first() {
                    Some(first) => write!(f, "{first} (each depends on the next)"),
                    None => write!(f, "(empty)"),
                }
            }
            Self::AlreadyFinished { node, state } => {
                write!(f, "node {node} cannot be finished again: it is {state:?}")
            }
        }
    }
}

impl Error for QueueError {}

/// Hands out ready nodes of a dependency graph, longest critical path first.
///
/// A driver pops while it has idle workers and finishes nodes as their results arrive:
///
/// ```
/// use keg::exec::queue::{DependencyQueue, Outcome};
///
/// // Node 1 depends on node 0; node 2 is independent.
/// let mut queue = DependencyQueue::new(&[1, 1, 1], &[(1, 0)])?;
/// let mut log = Vec::new();
/// while !queue.is_done() {
///     let started: Vec<usize> = std::iter::from_fn(|| queue.pop()).collect();
///     if started.is_empty() {
///         break; // only after stop(): nothing is ready and nothing is running
///     }
///     for node in started {
///         log.push(node);
///         for skipped in queue.finish(node, Outcome::Success)? {
///             println!("skipped {}: depends on {}", skipped.node, skipped.failed_ancestor);
///         }
///     }
/// }
/// assert_eq!(log, [0, 2, 1]);
/// # Ok::<(), keg::exec::queue::QueueError>(())
/// ```
#[derive(Debug, Clone)]
pub struct DependencyQueue {
    /// `dependents[node]`: the nodes that depend on `node`, ascending, without duplicates.
    dependents: Vec<Vec<usize>>,
    /// Dependencies of each node that have not succeeded yet.
    unfinished_dependencies: Vec<usize>,
    critical_path: Vec<u64>,
    states: Vec<NodeState>,
    /// Ready nodes keyed by priority. Entries of nodes finished up front while ready are
    /// stale and dropped by `pop`.
    ready: BinaryHeap<(u64, Reverse<usize>)>,
    counts: Counts,
    stopped: bool,
}

impl DependencyQueue {
    /// Builds a queue over the nodes `0..costs.len()`, where `costs[node]` weighs the node's
    /// work and each edge `(dependent, dependency)` says `dependent` needs `dependency`
    /// first. Duplicate edges are ignored. Fails on an edge naming an unknown node and on a
    /// cycle (a self-edge is a cycle of one).
    pub fn new(costs: &[u64], edges: &[(usize, usize)]) -> Result<Self, QueueError> {
        let len = costs.len();
        let mut dependencies = vec![Vec::new(); len];
        for &(dependent, dependency) in edges {
            for node in [dependent, dependency] {
                if node >= len {
                    return Err(QueueError::UnknownNode { node, len });
                }
            }
            dependencies[dependent].push(dependency);
        }
        for list in &mut dependencies {
            list.sort_unstable();
            list.dedup();
        }
        let mut dependents = vec![Vec::new(); len];
        for (node, list) in dependencies.iter().enumerate() {
            for &dependency in list {
                dependents[dependency].push(node);
            }
        }

        let order = topological_order(&dependencies, &dependents)?;
        let mut critical_path = vec![0; len];
        for &node in order.iter().rev() {
            let longest_after = dependents[node]
                .iter()
                .map(|&dependent| critical_path[dependent])
                .max()
                .unwrap_or(0);
            critical_path[node] = costs[node].saturating_add(longest_after);
        }

        let unfinished_dependencies: Vec<usize> = dependencies.iter().map(Vec::len).collect();
        let mut queue = Self {
            dependents,
            unfinished_dependencies,
            critical_path,
            states: vec![NodeState::Waiting; len],
            ready: BinaryHeap::new(),
            counts: Counts {
                waiting: len,
                total: len,
                ..Counts::default()
            },
            stopped: false,
        };
        for node in 0..len {
            if queue.unfinished_dependencies[node] == 0 {
                queue.make_ready(node);
            }
        }
        Ok(queue)
    }

    /// Number of nodes.
    pub fn len(&self) -> usize {
        self.states.len()
    }

    pub fn is_empty(&self) -> bool {
        self.states.is_empty()
    }

    /// Hands out the ready node with the longest remaining critical path (ties: lowest
    /// index) and marks it running. `None` when nothing is ready right now or the queue is
    /// stopped.
    pub fn pop(&mut self) -> Option<usize> {
        if self.stopped {
            return None;
        }
        while let Some((_, Reverse(node))) = self.ready.pop() {
            if self.states[node] == NodeState::Ready {
                self.set_state(node, NodeState::Running);
                return Some(node);
            }
        }
        None
    }

    /// Records how `node` ended and returns the nodes skipped because of it (ascending;
    /// empty unless `outcome` is [`Outcome::Failed`]).
    ///
    /// The node need not have been popped: `Success` on a waiting or ready node marks it done
    /// up front (already cached), so its dependents can become ready without it ever
    /// running, and its dependents are not skipped if one of its own dependencies fails later.
    /// `Failed` on such a node marks it failed up front (e.g. its sources are unavailable).
    ///
    /// A failure skips every transitive dependent that has not started, stopping at nodes
    /// that are already done. Finishing a node that already succeeded, failed or was skipped
    /// is an error and changes nothing.
    pub fn finish(&mut self, node: usize, outcome: Outcome) -> Result<Vec<Skipped>, QueueError> {
        let state = self.state(node)?;
        match state {
            NodeState::Waiting | NodeState::Ready | NodeState::Running => {}
            NodeState::Succeeded | NodeState::Failed | NodeState::Skipped { .. } => {
                return Err(QueueError::AlreadyFinished { node, state });
            }
        }
        match outcome {
            Outcome::Success => {
                self.set_state(node, NodeState::Succeeded);
                for index in 0..self.dependents[node].len() {
                    let dependent = self.dependents[node][index];
                    self.unfinished_dependencies[dependent] -= 1;
                    if self.unfinished_dependencies[dependent] == 0
                        && self.states[dependent] == NodeState::Waiting
                    {
                        self.make_ready(dependent);
                    }
                }
                Ok(Vec::new())
            }
            Outcome::Failed => {
                self.set_state(node, NodeState::Failed);
                Ok(self.skip_dependents_of(node))
            }
        }
    }

    /// Stops handing out work (for `--fail-fast` or Ctrl-C): `pop` returns `None` from now
    /// on, while running nodes can still be finished.
    pub fn stop(&mut self) {
        self.stopped = true;
    }

    pub fn is_stopped(&self) -> bool {
        self.stopped
    }

    /// Whether every node succeeded, failed or was skipped.
    pub fn is_done(&self) -> bool {
        self.counts.succeeded + self.counts.failed + self.counts.skipped == self.counts.total
    }

    /// Nodes that never started and are not skipped (waiting or ready), ascending; after
    /// [`stop`](Self::stop) and once nothing is running, these are the "not started" nodes.
    pub fn not_started(&self) -> Vec<usize> {
        self.nodes_where(|state| matches!(state, NodeState::Waiting | NodeState::Ready))
    }

    pub fn counts(&self) -> Counts {
        self.counts
    }

    pub fn state(&self, node: usize) -> Result<NodeState, QueueError> {
        self.states
            .get(node)
            .copied()
            .ok_or(QueueError::UnknownNode {
                node,
                len: self.len(),
            })
    }

    /// The node's cost plus the costliest chain through its transitive dependents.
    pub fn critical_path(&self, node: usize) -> Result<u64, QueueError> {
        self.critical_path
            .get(node)
            .copied()
            .ok_or(QueueError::UnknownNode {
                node,
                len: self.len(),
            })
    }

    fn make_ready(&mut self, node: usize) {
        self.set_state(node, NodeState::Ready);
        self.ready.push((self.critical_path[node], Reverse(node)));
    }

    fn set_state(&mut self, node: usize, state: NodeState) {
        *self.counts.slot(self.states[node]) -= 1;
        *self.counts.slot(state) += 1;
        self.states[node] = state;
    }

    fn skip_dependents_of(&mut self, failed: usize) -> Vec<Skipped> {
        let mut skipped = Vec::new();
        let mut stack = vec![failed];
        while let Some(node) = stack.pop() {
            for index in 0..self.dependents[node].len() {
                let dependent = self.dependents[node][index];
                if matches!(
                    self.states[dependent],
                    NodeState::Waiting | NodeState::Ready
                ) {
                    self.set_state(
                        dependent,
                        NodeState::Skipped {
                            failed_ancestor: failed,
                        },
                    );
                    skipped.push(Skipped {
                        node: dependent,
                        failed_ancestor: failed,
                    });
                    stack.push(dependent);
                }
            }
        }
        skipped.sort_unstable_by_key(|skip| skip.node);
        skipped
    }

    fn nodes_where(&self, keep: impl Fn(NodeState) -> bool) -> Vec<usize> {
        (0..self.len())
            .filter(|&node| keep(self.states[node]))
            .collect()
    }
}

/// Orders the nodes so that every dependency comes before its dependents (Kahn), or
/// returns one cycle.
fn topological_order(
    dependencies: &[Vec<usize>],
    dependents: &[Vec<usize>],
) -> Result<Vec<usize>, QueueError> {
    let mut unprocessed: Vec<usize> = dependencies.iter().map(Vec::len).collect();
    let mut frontier: VecDeque<usize> = (0..dependencies.len())
        .filter(|&node| unprocessed[node] == 0)
        .collect();
    let mut order = Vec::with_capacity(dependencies.len());
    while let Some(node) = frontier.pop_front() {
        order.push(node);
        for &dependent in &dependents[node] {
            unprocessed[dependent] -= 1;
            if unprocessed[dependent] == 0 {
                frontier.push_back(dependent);
            }
        }
    }
    if order.len() == dependencies.len() {
        Ok(order)
    } else {
        Err(QueueError::Cycle(find_cycle(dependencies, &unprocessed)))
    }
}

/// Finds a cycle among the nodes Kahn's algorithm could not order (`unprocessed > 0`).
/// Each such node has an unordered dependency, so walking from one along unordered
/// dependencies must revisit a node; the revisited stretch is the cycle.
fn find_cycle(dependencies: &[Vec<usize>], unprocessed: &[usize]) -> Vec<usize> {
    let is_stuck = |node: usize| unprocessed[node] > 0;
    let Some(start) = (0..dependencies.len()).find(|&node| is_stuck(node)) else {
        return Vec::new();
    };
    let mut position_in_walk = vec![None; dependencies.len()];
    let mut walk = Vec::new();
    let mut node = start;
    while position_in_walk[node].is_none() {
        position_in_walk[node] = Some(walk.len());
        walk.push(node);
        match dependencies[node]
            .iter()
            .copied()
            .find(|&next| is_stuck(next))
        {
            Some(next) => node = next,
            None => return walk,
        }
    }
    let mut cycle = walk.split_off(position_in_walk[node].unwrap_or(0));
    if let Some(lowest) = (0..cycle.len()).min_by_key(|&index| cycle[index]) {
        cycle.rotate_left(lowest);
    }
    cycle
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unit(n: usize) -> Vec<u64> {
        vec![1; n]
    }

    fn queue(costs: &[u64], edges: &[(usize, usize)]) -> DependencyQueue {
        DependencyQueue::new(costs, edges).expect("valid acyclic graph")
    }

    fn succeed(queue: &mut DependencyQueue, node: usize) {
        assert_eq!(queue.finish(node, Outcome::Success), Ok(Vec::new()));
    }

    fn pop_all(queue: &mut DependencyQueue) -> Vec<usize> {
        std::iter::from_fn(|| queue.pop()).collect()
    }

    #[test]
    fn empty_queue_is_done() {
        let mut queue = queue(&[], &[]);
        assert!(queue.is_done());
        assert!(queue.is_empty());
        assert_eq!(queue.pop(), None);
    }

    #[test]
    fn diamond() {
        // 1 and 2 depend on 0; 3 depends on 1 and 2.
        let mut queue = queue(&unit(4), &[(1, 0), (2, 0), (3, 1), (3, 2)]);
        assert_eq!(pop_all(&mut queue), [0]);
        succeed(&mut queue, 0);
        assert_eq!(pop_all(&mut queue), [1, 2]);
        succeed(&mut queue, 2);
        assert_eq!(queue.pop(), None, "3 still waits for 1");
        succeed(&mut queue, 1);
        assert_eq!(pop_all(&mut queue), [3]);
        succeed(&mut queue, 3);
        assert!(queue.is_done());
    }

    #[test]
    fn chain_runs_in_order() {
        // 0 <- 1 <- 2 <- 3, indices reversed relative to the chain direction.
        let mut queue = queue(&unit(4), &[(0, 1), (1, 2), (2, 3)]);
        let mut order = Vec::new();
        while let Some(node) = queue.pop() {
            assert_eq!(queue.pop(), None, "a chain has one ready node at a time");
            order.push(node);
            succeed(&mut queue, node);
        }
        assert_eq!(order, [3, 2, 1, 0]);
        assert!(queue.is_done());
    }

    #[test]
    fn independent_components_are_all_ready() {
        let mut queue = queue(&unit(5), &[(1, 0), (3, 2)]);
        assert_eq!(pop_all(&mut queue), [0, 2, 4]);
        assert_eq!(queue.counts().running, 3);
        succeed(&mut queue, 2);
        assert_eq!(pop_all(&mut queue), [3]);
    }

    #[test]
    fn duplicate_edges_count_once() {
        let mut queue = queue(&unit(2), &[(1, 0), (1, 0)]);
        assert_eq!(queue.pop(), Some(0));
        succeed(&mut queue, 0);
        assert_eq!(queue.pop(), Some(1));
    }

    #[test]
    fn critical_path_is_cost_plus_longest_chain_of_dependents() {
        // 1 -> 0, 2 -> 1, 3 -> 0: 0's longest chain is 0, 1, 2.
        let queue = queue(&[2, 3, 5, 1], &[(1, 0), (2, 1), (3, 0)]);
        let paths: Vec<u64> = (0..4)
            .map(|node| queue.critical_path(node).unwrap())
            .collect();
        assert_eq!(paths, [10, 8, 5, 1]);
    }

    #[test]
    fn long_chain_head_comes_before_short_independent_node() {
        // Node 0 stands alone; 1 <- 2 <- 3 is a chain.
        let mut queue = queue(&unit(4), &[(2, 1), (3, 2)]);
        assert_eq!(queue.pop(), Some(1));
        assert_eq!(queue.pop(), Some(0));
    }

    #[test]
    fn costs_weigh_in_priority() {
        // A single expensive node beats a chain of cheap ones.
        let mut queue = queue(&[1, 1, 1, 10], &[(1, 0), (2, 1)]);
        assert_eq!(pop_all(&mut queue), [3, 0]);
    }

    #[test]
    fn ties_go_to_the_lower_index() {
        let mut queue = queue(&[2, 1, 2, 2], &[]);
        assert_eq!(pop_all(&mut queue), [0, 2, 3, 1]);
    }

    #[test]
    fn failure_skips_exactly_the_transitive_dependents() {
        // 0 <- 1 <- 2 <- 4, 1 <- 3, 0 <- 5 <- 6, and 7 alone; 4 also depends on 5.
        let edges = [(1, 0), (2, 1), (4, 2), (3, 1), (5, 0), (6, 5), (4, 5)];
        let mut queue = queue(&unit(8), &edges);
        assert_eq!(pop_all(&mut queue), [0, 7]);
        succeed(&mut queue, 0);
        assert_eq!(pop_all(&mut queue), [1, 5]);
        let skipped = queue.finish(1, Outcome::Failed).unwrap();
        let skip = |node| Skipped {
            node,
            failed_ancestor: 1,
        };
        assert_eq!(skipped, [skip(2), skip(3), skip(4)]);
        assert_eq!(
            queue.state(4),
            Ok(NodeState::Skipped { failed_ancestor: 1 })
        );
        succeed(&mut queue, 5);
        assert_eq!(pop_all(&mut queue), [6]);
        succeed(&mut queue, 6);
        succeed(&mut queue, 7);
        assert!(queue.is_done());
        let counts = queue.counts();
        assert_eq!((counts.succeeded, counts.failed, counts.skipped), (4, 1, 3));
    }

    #[test]
    fn cached_node_releases_dependents_without_running() {
        let mut queue = queue(&unit(3), &[(1, 0), (2, 1)]);
        succeed(&mut queue, 0);
        succeed(&mut queue, 1);
        assert_eq!(
            pop_all(&mut queue),
            [2],
            "cached nodes are never handed out"
        );
    }

    #[test]
    fn cached_node_shields_its_dependents_from_a_failure() {
        // 2 -> 1 -> 0 and 3 -> 0; 1 is already built.
        let mut queue = queue(&unit(4), &[(1, 0), (2, 1), (3, 0)]);
        succeed(&mut queue, 1);
        assert_eq!(pop_all(&mut queue), [0, 2]);
        let skipped = queue.finish(0, Outcome::Failed).unwrap();
        assert_eq!(
            skipped,
            [Skipped {
                node: 3,
                failed_ancestor: 0
            }]
        );
        assert_eq!(queue.state(1), Ok(NodeState::Succeeded));
        succeed(&mut queue, 2);
        assert!(queue.is_done());
    }

    #[test]
    fn failed_up_front_skips_dependents() {
        let mut queue = queue(&unit(3), &[(1, 0)]);
        let skipped = queue.finish(0, Outcome::Failed).unwrap();
        assert_eq!(
            skipped,
            [Skipped {
                node: 1,
                failed_ancestor: 0
            }]
        );
        assert_eq!(pop_all(&mut queue), [2]);
    }

    #[test]
    fn stop_hands_out_nothing_and_lists_not_started() {
        let mut queue = queue(&unit(4), &[(1, 0), (3, 2)]);
        assert_eq!(queue.pop(), Some(0));
        queue.stop();
        assert!(queue.is_stopped());
        assert_eq!(queue.pop(), None);
        succeed(&mut queue, 0);
        assert_eq!(queue.pop(), None, "1 became ready but the queue is stopped");
        assert_eq!(queue.counts().running, 0);
        assert_eq!(queue.not_started(), [1, 2, 3]);
        assert!(!queue.is_done());
    }

    #[test]
    fn cycle_is_reported_in_dependency_order() {
        // 0 -> 1 -> 2 -> 3 -> 1, where "->" means "depends on"; 4 depends on the cycle.
        let error =
            DependencyQueue::new(&unit(5), &[(0, 1), (1, 2), (2, 3), (3, 1), (4, 3)]).unwrap_err();
        assert_eq!(error, QueueError::Cycle(vec![1, 2, 3]));
        assert_eq!(
            error.to_string(),
            "dependency cycle: 1 -> 2 -> 3 -> 1 (each depends on the next)"
        );
    }

    #[test]
    fn cycle_starts_at_its_lowest_member() {
        let error = DependencyQueue::new(&unit(4), &[(3, 1), (1, 2), (2, 3)]).unwrap_err();
        assert_eq!(error, QueueError::Cycle(vec![1, 2, 3]));
    }

    #[test]
    fn self_edge_is_a_cycle() {
        let error = DependencyQueue::new(&unit(3), &[(1, 0), (2, 2)]).unwrap_err();
        assert_eq!(error, QueueError::Cycle(vec![2]));
    }

    #[test]
    fn unknown_nodes_are_errors() {
        let error = DependencyQueue::new(&unit(2), &[(1, 2)]).unwrap_err();
        assert_eq!(error, QueueError::UnknownNode { node: 2, len: 2 });
        let mut queue = queue(&unit(2), &[]);
        let unknown = QueueError::UnknownNode { node: 9, len: 2 };
        assert_eq!(queue.finish(9, Outcome::Success), Err(unknown.clone()));
        assert_eq!(queue.state(9), Err(unknown.clone()));
        assert_eq!(queue.critical_path(9), Err(unknown));
    }

    #[test]
    fn finishing_twice_is_an_error_and_changes_nothing() {
        let mut queue = queue(&unit(3), &[(1, 0)]);
        assert_eq!(queue.pop(), Some(0));
        queue.finish(0, Outcome::Failed).unwrap();
        let before = queue.counts();
        assert_eq!(
            queue.finish(0, Outcome::Success),
            Err(QueueError::AlreadyFinished {
                node: 0,
                state: NodeState::Failed
            })
        );
        assert_eq!(
            queue.finish(1, Outcome::Success),
            Err(QueueError::AlreadyFinished {
                node: 1,
                state: NodeState::Skipped { failed_ancestor: 0 }
            })
        );
        assert_eq!(queue.counts(), before);
    }

    #[test]
    fn counts_track_every_transition() {
        let mut queue = queue(&unit(3), &[(1, 0), (2, 0)]);
        let counts = |waiting, ready, running, succeeded, failed, skipped| Counts {
            waiting,
            ready,
            running,
            succeeded,
            failed,
            skipped,
            total: 3,
        };
        assert_eq!(queue.counts(), counts(2, 1, 0, 0, 0, 0));
        queue.pop();
        assert_eq!(queue.counts(), counts(2, 0, 1, 0, 0, 0));
        succeed(&mut queue, 0);
        assert_eq!(queue.counts(), counts(0, 2, 0, 1, 0, 0));
        queue.pop();
        assert_eq!(queue.counts(), counts(0, 1, 1, 1, 0, 0));
        queue.finish(1, Outcome::Failed).unwrap();
        assert_eq!(queue.counts(), counts(0, 1, 0, 1, 1, 0));
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

        fn chance(&mut self, percent: u64) -> bool {
            self.next() % 100 < percent
        }
    }

    /// A random DAG over shuffled labels, as `(dependent, dependency)` edges.
    fn random_dag(rng: &mut XorShift, n: usize) -> Vec<(usize, usize)> {
        let mut labels: Vec<usize> = (0..n).collect();
        for i in (1..n).rev() {
            labels.swap(i, rng.below(i + 1));
        }
        let mut edges = Vec::new();
        for later in 0..n {
            for earlier in 0..later {
                if rng.chance(15) {
                    edges.push((labels[later], labels[earlier]));
                }
            }
        }
        edges
    }

    /// Longest cost-weighted path from each node along "is depended on by" edges, by
    /// plain memoized recursion over the edge list.
    fn brute_force_critical_paths(costs: &[u64], edges: &[(usize, usize)]) -> Vec<u64> {
        fn path(
            node: usize,
            costs: &[u64],
            edges: &[(usize, usize)],
            memo: &mut [Option<u64>],
        ) -> u64 {
            if let Some(known) = memo[node] {
                return known;
            }
            let longest_after = edges
                .iter()
                .filter(|&&(_, dependency)| dependency == node)
                .map(|&(dependent, _)| path(dependent, costs, edges, memo))
                .max()
                .unwrap_or(0);
            let result = costs[node] + longest_after;
            memo[node] = Some(result);
            result
        }
        let mut memo = vec![None; costs.len()];
        (0..costs.len())
            .map(|node| path(node, costs, edges, &mut memo))
            .collect()
    }

    /// Nodes reachable from `failed` along "is depended on by" edges, passing only through
    /// nodes for which `unstarted` holds.
    fn brute_force_reachable(
        failed: usize,
        edges: &[(usize, usize)],
        unstarted: &[bool],
    ) -> Vec<usize> {
        let mut reached = vec![false; unstarted.len()];
        let mut changed = true;
        while changed {
            changed = false;
            for &(dependent, dependency) in edges {
                if (dependency == failed || reached[dependency])
                    && unstarted[dependent]
                    && !reached[dependent]
                {
                    reached[dependent] = true;
                    changed = true;
                }
            }
        }
        (0..unstarted.len()).filter(|&node| reached[node]).collect()
    }

    #[test]
    fn random_dags_pop_each_node_once_after_its_dependencies() {
        let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
        for _ in 0..300 {
            let n = 1 + rng.below(30);
            let edges = random_dag(&mut rng, n);
            let costs: Vec<u64> = (0..n).map(|_| 1 + rng.below(9) as u64).collect();
            let expected_paths = brute_force_critical_paths(&costs, &edges);
            let mut queue = queue(&costs, &edges);
            for (node, &expected) in expected_paths.iter().enumerate() {
                assert_eq!(queue.critical_path(node), Ok(expected));
            }

            let mut popped = vec![false; n];
            let mut running: Vec<usize> = Vec::new();
            while !queue.is_done() {
                let states: Vec<NodeState> =
                    (0..n).map(|node| queue.state(node).unwrap()).collect();
                let unstarted: Vec<bool> = states
                    .iter()
                    .map(|state| matches!(state, NodeState::Waiting | NodeState::Ready))
                    .collect();
                let action = rng.below(10);
                if action == 0 {
                    // Finish an unstarted node up front: cached, or known bad.
                    let Some(node) = (0..n).find(|&node| unstarted[node] && rng.chance(30)) else {
                        continue;
                    };
                    let outcome = if rng.chance(70) {
                        Outcome::Success
                    } else {
                        Outcome::Failed
                    };
                    let skipped = queue.finish(node, outcome).unwrap();
                    check_skipped(node, outcome, &skipped, &edges, &unstarted);
                } else if action < 6 || running.is_empty() {
                    let expected = (0..n)
                        .filter(|&node| states[node] == NodeState::Ready)
                        .max_by_key(|&node| (expected_paths[node], Reverse(node)));
                    let node = queue.pop();
                    assert_eq!(node, expected);
                    let Some(node) = node else {
                        assert!(
                            !running.is_empty(),
                            "nothing ready or running, yet not done"
                        );
                        continue;
                    };
                    assert!(!popped[node], "node {node} popped twice");
                    popped[node] = true;
                    for &(dependent, dependency) in &edges {
                        if dependent == node {
                            assert_eq!(states[dependency], NodeState::Succeeded);
                        }
                    }
                    running.push(node);
                } else {
                    let node = running.swap_remove(rng.below(running.len()));
                    let outcome = if rng.chance(15) {
                        Outcome::Failed
                    } else {
                        Outcome::Success
                    };
                    let skipped = queue.finish(node, outcome).unwrap();
                    check_skipped(node, outcome, &skipped, &edges, &unstarted);
                }
            }
            assert!(running.is_empty());
            for (node, &was_popped) in popped.iter().enumerate() {
                if let NodeState::Skipped { failed_ancestor } = queue.state(node).unwrap() {
                    assert!(!was_popped);
                    assert_eq!(queue.state(failed_ancestor), Ok(NodeState::Failed));
                }
            }
            let counts = queue.counts();
            assert_eq!(counts.succeeded + counts.failed + counts.skipped, n);
        }
    }

    fn check_skipped(
        node: usize,
        outcome: Outcome,
        skipped: &[Skipped],
        edges: &[(usize, usize)],
        unstarted: &[bool],
    ) {
        let expected: Vec<Skipped> = match outcome {
            Outcome::Success => Vec::new(),
            Outcome::Failed => brute_force_reachable(node, edges, unstarted)
                .into_iter()
                .map(|skipped| Skipped {
                    node: skipped,
                    failed_ancestor: node,
                })
                .collect(),
        };
        assert_eq!(skipped, expected);
    }
}

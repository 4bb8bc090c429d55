//! The execution graph: which step must finish before which.
//!
//! A [`StepGraph`] holds the steps of one plan by their typed ids. Its one
//! invariant: it never invents or drops a step. An edge that names a step the
//! graph does not hold is an error ([`GraphError::MissingStep`]), never a
//! silent no-op, so a planner pass that assumed a step which is not there is
//! caught (after OpenTofu's `graph_builder.go`, which validates after its
//! passes). The planner's passes that add edges live in `plan::passes`.
//!
//! [`shortest_cycle`] is the one cycle search of the crate: the config layer
//! names cycles between blocks with it, the plan cycles between steps (it
//! depends on petgraph alone, so the config layer may use it). [`config`]
//! draws the configuration's own graph for `cutover graph`.

pub mod config;

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use petgraph::graph::{DiGraph, NodeIndex};
use petgraph::visit::EdgeRef;
use petgraph::Direction;

use crate::addr::StepId;

/// A graph of steps, by step id.
#[derive(Debug, Default, Clone)]
pub struct StepGraph {
    graph: DiGraph<StepId, ()>,
    index: BTreeMap<StepId, NodeIndex>,
    edges: BTreeSet<(NodeIndex, NodeIndex)>,
}

/// A graph that cannot be built or ordered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GraphError {
    /// Two steps have the same id.
    #[error("two steps have the id {0}")]
    DuplicateStep(StepId),
    /// An edge names a step that is not in the graph (boxed: three ids
    /// would make every result of the planner this large).
    #[error("{} -> {}: the graph has no step {}", .0.from, .0.to, .0.missing)]
    MissingStep(Box<MissingEdge>),
    /// A step would wait for itself.
    #[error("step {0} would wait for itself")]
    SelfEdge(StepId),
    /// The steps form a cycle, named in full (`a -> b -> a`).
    #[error("dependency cycle between steps: {}", names(.0))]
    Cycle(Vec<StepId>),
}

fn names(ids: &[StepId]) -> String {
    ids.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(" -> ")
}

impl StepGraph {
    /// A graph with one node per step id, no edges. Nodes are kept in id
    /// order, whatever the order given, so ties in [`StepGraph::order`] are
    /// broken the same way from run to run.
    pub fn new(ids: impl IntoIterator<Item = StepId>) -> Result<Self, GraphError> {
        let mut sorted: Vec<StepId> = ids.into_iter().collect();
        sorted.sort();
        let mut g = StepGraph::default();
        for id in sorted {
            if g.index.contains_key(&id) {
                return Err(GraphError::DuplicateStep(id));
            }
            let ix = g.graph.add_node(id.clone());
            g.index.insert(id, ix);
        }
        Ok(g)
    }

    /// Whether the graph holds the step `id`.
    pub fn contains(&self, id: &StepId) -> bool {
        self.index.contains_key(id)
    }

    /// `before` must finish before `after` starts. Both must be steps of
    /// the graph. A duplicate edge is dropped in O(log n) (petgraph's
    /// `update_edge` is linear).
    pub fn add_edge(&mut self, before: &StepId, after: &StepId) -> Result<(), GraphError> {
        let missing = |m: &StepId| {
            GraphError::MissingStep(Box::new(MissingEdge {
                from: before.clone(),
                to: after.clone(),
                missing: m.clone(),
            }))
        };
        let a = *self.index.get(before).ok_or_else(|| missing(before))?;
        let b = *self.index.get(after).ok_or_else(|| missing(after))?;
        if a == b {
            return Err(GraphError::SelfEdge(before.clone()));
        }
        if self.edges.insert((a, b)) {
            self.graph.add_edge(a, b, ());
        }
        Ok(())
    }

    /// The steps `id` depends on directly, sorted.
    pub fn dependencies(&self, id: &StepId) -> Vec<StepId> {
        let Some(&ix) = self.index.get(id) else {
            return Vec::new();
        };
        let mut deps: Vec<StepId> = self
            .graph
            .edges_directed(ix, Direction::Incoming)
            .map(|e| self.graph[e.source()].clone())
            .collect();
        deps.sort();
        deps
    }

    /// A topological order of the steps. Among the steps that are ready at
    /// once, the one with the smallest `rank` comes first, then the smallest
    /// id, so the order is stable from run to run (the planner ranks by
    /// phase: every step before the switch, then the switches, then what
    /// runs after them).
    pub fn order_by<R: Ord>(&self, rank: impl Fn(&StepId) -> R) -> Result<Vec<StepId>, GraphError> {
        if let Some(cycle) = self.cycle() {
            return Err(GraphError::Cycle(cycle));
        }
        let mut indegree: Vec<usize> = self
            .graph
            .node_indices()
            .map(|n| {
                self.graph
                    .neighbors_directed(n, Direction::Incoming)
                    .count()
            })
            .collect();
        let key = |n: NodeIndex| (rank(&self.graph[n]), n);
        let mut ready: BTreeSet<(R, NodeIndex)> = self
            .graph
            .node_indices()
            .filter(|n| indegree[n.index()] == 0)
            .map(key)
            .collect();
        let mut out = Vec::with_capacity(self.graph.node_count());
        while let Some((_, n)) = ready.pop_first() {
            out.push(self.graph[n].clone());
            for m in self.graph.neighbors_directed(n, Direction::Outgoing) {
                indegree[m.index()] -= 1;
                if indegree[m.index()] == 0 {
                    ready.insert(key(m));
                }
            }
        }
        Ok(out)
    }

    /// A topological order, ties broken by id.
    pub fn order(&self) -> Result<Vec<StepId>, GraphError> {
        self.order_by(|_| ())
    }

    /// A cycle of the graph, named from its smallest id, if there is one.
    fn cycle(&self) -> Option<Vec<StepId>> {
        let scc = petgraph::algo::tarjan_scc(&self.graph)
            .into_iter()
            .filter(|c| c.len() > 1)
            .min_by_key(|c| c.iter().min().copied())?;
        let start = *scc.iter().min()?;
        let path = shortest_cycle(&self.graph, &scc, start);
        Some(path.iter().map(|n| self.graph[*n].clone()).collect())
    }

    /// Graphviz DOT of the steps and their order.
    pub fn dot(&self) -> String {
        let g = self.graph.map(|_, n| n.to_string(), |_, _| "");
        format!(
            "{}",
            petgraph::dot::Dot::with_config(&g, &[petgraph::dot::Config::EdgeNoLabel])
        )
    }
}

/// An edge with an end the graph does not hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MissingEdge {
    /// The edge's first end.
    pub from: StepId,
    /// The edge's second end.
    pub to: StepId,
    /// The end that is missing.
    pub missing: StepId,
}

/// The shortest cycle through `start`, a node of `component` (a strongly
/// connected component of `graph` with more than one node, or one with a
/// self-loop), as the list of its nodes with `start` at both ends:
/// `a -> b -> c -> a`. Found by a breadth-first search inside the
/// component, successors in index order, so a message names a real cycle,
/// the same one every run, not just the members of the component.
pub fn shortest_cycle<N, E>(
    graph: &DiGraph<N, E>,
    component: &[NodeIndex],
    start: NodeIndex,
) -> Vec<NodeIndex> {
    let members: BTreeSet<NodeIndex> = component.iter().copied().collect();
    let mut parent: BTreeMap<NodeIndex, NodeIndex> = BTreeMap::new();
    let mut queue = VecDeque::from([start]);
    let mut last = None;
    'search: while let Some(n) = queue.pop_front() {
        let mut next: Vec<NodeIndex> = graph.neighbors_directed(n, Direction::Outgoing).collect();
        next.sort();
        for m in next {
            if m == start {
                last = Some(n);
                break 'search;
            }
            if members.contains(&m) && !parent.contains_key(&m) {
                parent.insert(m, n);
                queue.push_back(m);
            }
        }
    }
    let Some(mut cur) = last else {
        return vec![start, start];
    };
    // Walked back from the node before `start` to `start` itself, then
    // turned around and closed.
    let mut back = vec![cur];
    while let Some(&p) = parent.get(&cur) {
        back.push(p);
        cur = p;
    }
    if back.last() != Some(&start) {
        back.push(start);
    }
    back.reverse();
    back.push(start);
    back
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(n: &str) -> StepId {
        StepId::Environment(n.into())
    }
    fn gate(n: &str) -> StepId {
        StepId::Health(n.into())
    }
    fn cut(n: &str) -> StepId {
        StepId::Cutover(n.into())
    }

    #[test]
    fn an_edge_to_a_missing_step_is_an_error_not_a_no_op() {
        let mut g = StepGraph::new([cut("public")]).unwrap();
        let err = g.add_edge(&gate("green"), &cut("public")).unwrap_err();
        assert_eq!(
            err,
            GraphError::MissingStep(Box::new(MissingEdge {
                from: gate("green"),
                to: cut("public"),
                missing: gate("green")
            }))
        );
        assert_eq!(
            err.to_string(),
            "health.green -> cutover.public: the graph has no step health.green"
        );
    }

    #[test]
    fn duplicate_steps_and_self_edges_are_refused() {
        assert_eq!(
            StepGraph::new([env("a"), env("a")]).unwrap_err(),
            GraphError::DuplicateStep(env("a"))
        );
        let mut g = StepGraph::new([env("a")]).unwrap();
        assert_eq!(
            g.add_edge(&env("a"), &env("a")),
            Err(GraphError::SelfEdge(env("a")))
        );
    }

    #[test]
    fn order_is_topological_with_ties_broken_by_rank_then_id() {
        let mut g =
            StepGraph::new([cut("public"), gate("green"), env("green"), env("blue")]).unwrap();
        g.add_edge(&env("green"), &gate("green")).unwrap();
        g.add_edge(&gate("green"), &cut("public")).unwrap();
        g.add_edge(&cut("public"), &env("blue")).unwrap();
        assert_eq!(
            g.order().unwrap(),
            [env("green"), gate("green"), cut("public"), env("blue")]
        );
        assert_eq!(g.dependencies(&cut("public")), [gate("green")]);

        // Without edges, the rank decides before the id does.
        let g = StepGraph::new([env("a"), cut("z"), gate("b")]).unwrap();
        let rank = |id: &StepId| matches!(id, StepId::Cutover(_));
        assert_eq!(g.order_by(rank).unwrap(), [env("a"), gate("b"), cut("z")]);
    }

    #[test]
    fn duplicate_edges_are_dropped() {
        let mut g = StepGraph::new([env("a"), env("b")]).unwrap();
        g.add_edge(&env("a"), &env("b")).unwrap();
        g.add_edge(&env("a"), &env("b")).unwrap();
        assert_eq!(g.graph.edge_count(), 1);
    }

    #[test]
    fn a_cycle_is_named_in_full_from_its_smallest_step() {
        let mut g = StepGraph::new([env("a"), env("b"), env("c"), env("d")]).unwrap();
        g.add_edge(&env("b"), &env("c")).unwrap();
        g.add_edge(&env("c"), &env("a")).unwrap();
        g.add_edge(&env("a"), &env("b")).unwrap();
        g.add_edge(&env("c"), &env("d")).unwrap();
        let err = g.order().unwrap_err();
        assert_eq!(
            err.to_string(),
            "dependency cycle between steps: environment.a -> environment.b -> environment.c -> environment.a"
        );
    }

    #[test]
    fn the_shortest_cycle_is_chosen_inside_a_component() {
        // a -> b -> c -> d -> a, and a shortcut b -> a.
        let mut g: DiGraph<&str, ()> = DiGraph::new();
        let [a, b, c, d] = ["a", "b", "c", "d"].map(|n| g.add_node(n));
        for (x, y) in [(a, b), (b, c), (c, d), (d, a), (b, a)] {
            g.add_edge(x, y, ());
        }
        let cycle: Vec<&str> = shortest_cycle(&g, &[a, b, c, d], a)
            .into_iter()
            .map(|n| g[n])
            .collect();
        assert_eq!(cycle, ["a", "b", "a"]);
    }
}

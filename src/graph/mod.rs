//! The execution graph: which step must finish before which.
//!
//! The planner hands over a flat list of steps; the graph is built by named
//! passes, each testable alone (after OpenTofu's graph builder):
//!
//! 1. [`add_reference_edges`]: an environment whose configuration refers to
//!    another environment is changed after it;
//! 2. [`add_cutover_edges`]: the ordering rules of the cut-over (DESIGN.md §3,
//!    rules 1 and 2): every change to an environment a router will send
//!    traffic to, then that environment's health gate, then the cut-over; and a
//!    change to a colour the cut-over takes traffic away from only after it;
//! 3. [`check_cycles`]: a cycle is named in full.
//!
//! Invariant: the graph only ever adds edges between steps of one plan; it
//! never invents or drops a step.

use std::collections::{BTreeMap, BTreeSet};

use petgraph::graph::{DiGraph, NodeIndex};
use petgraph::visit::EdgeRef;

use crate::config::model::{Address, Config};

/// What the graph needs to know about one step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    /// A change to an environment.
    Environment {
        /// The environment.
        name: String,
        /// Whether a cut-over in this plan takes traffic away from it (so the
        /// change must run after that cut-over).
        drained_by: Vec<String>,
    },
    /// The health gate of an environment.
    HealthGate {
        /// The environment.
        environment: String,
    },
    /// A router switching to `to`.
    Cutover {
        /// The router.
        router: String,
        /// The colour it switches to.
        to: String,
    },
    /// Pointing a router's preview at `to`: after `to` changed, before the
    /// router's cut-over.
    Preview {
        /// The router.
        router: String,
        /// The colour the preview shows.
        to: String,
        /// Whether `to` is the colour this plan's cut-over drains: the
        /// preview then moves to it only after the cut-over.
        after_cutover: bool,
    },
    /// Waiting after a router's cut-over before its drained colours change.
    Drain {
        /// The router.
        router: String,
    },
    /// Forgetting a router (no ordering constraint).
    Forget {
        /// The router.
        router: String,
    },
}

/// A graph of steps, by step id.
#[derive(Debug, Default)]
pub struct StepGraph {
    graph: DiGraph<String, ()>,
    index: BTreeMap<String, NodeIndex>,
    edges: BTreeSet<(NodeIndex, NodeIndex)>,
}

/// A cycle found in the graph, named in full (`a -> b -> a`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("dependency cycle between steps: {0}")]
pub struct CycleError(pub String);

impl StepGraph {
    /// A graph with one node per step id, no edges.
    pub fn new<'a>(ids: impl IntoIterator<Item = &'a str>) -> Self {
        let mut g = StepGraph::default();
        for id in ids {
            let ix = g.graph.add_node(id.to_string());
            g.index.insert(id.to_string(), ix);
        }
        g
    }

    /// `before` must finish before `after` starts. Unknown ids are ignored
    /// (a pass may name a step that this plan does not have). Duplicate edges
    /// are dropped in O(log n) (petgraph's `update_edge` is linear).
    pub fn add_edge(&mut self, before: &str, after: &str) {
        let (Some(&a), Some(&b)) = (self.index.get(before), self.index.get(after)) else {
            return;
        };
        if a != b && self.edges.insert((a, b)) {
            self.graph.add_edge(a, b, ());
        }
    }

    /// The ids a step depends on, sorted.
    pub fn dependencies(&self, id: &str) -> Vec<String> {
        let Some(&ix) = self.index.get(id) else {
            return Vec::new();
        };
        let mut deps: Vec<String> = self
            .graph
            .edges_directed(ix, petgraph::Direction::Incoming)
            .map(|e| self.graph[e.source()].clone())
            .collect();
        deps.sort();
        deps
    }

    /// A topological order of the step ids, ties broken by the order the
    /// steps were given (so the order is stable from run to run).
    pub fn order(&self) -> Result<Vec<String>, CycleError> {
        check_cycles(self)?;
        // Kahn's algorithm over petgraph's structure with a sorted ready set,
        // because petgraph's toposort gives no control over ties and the plan
        // order must be stable for review.
        let mut indegree: BTreeMap<NodeIndex, usize> = self
            .graph
            .node_indices()
            .map(|n| {
                (
                    n,
                    self.graph
                        .neighbors_directed(n, petgraph::Direction::Incoming)
                        .count(),
                )
            })
            .collect();
        let mut ready: BTreeSet<NodeIndex> = indegree
            .iter()
            .filter(|(_, d)| **d == 0)
            .map(|(n, _)| *n)
            .collect();
        let mut out = Vec::with_capacity(self.graph.node_count());
        while let Some(n) = ready.pop_first() {
            out.push(self.graph[n].clone());
            for m in self
                .graph
                .neighbors_directed(n, petgraph::Direction::Outgoing)
            {
                let d = indegree.get_mut(&m).expect("every node has an indegree");
                *d -= 1;
                if *d == 0 {
                    ready.insert(m);
                }
            }
        }
        Ok(out)
    }

    /// Graphviz DOT of the steps and their order.
    pub fn dot(&self) -> String {
        let g = self.graph.map(|_, n| n.clone(), |_, _| "");
        format!(
            "{}",
            petgraph::dot::Dot::with_config(&g, &[petgraph::dot::Config::EdgeNoLabel])
        )
    }
}

/// Pass 1: an environment that refers to another environment is changed
/// after it.
pub fn add_reference_edges(graph: &mut StepGraph, config: &Config) {
    for (from, to) in &config.references {
        if let (Address::Environment(a), Address::Environment(b)) = (from, to) {
            graph.add_edge(&format!("environment.{b}"), &format!("environment.{a}"));
        }
    }
}

/// Pass 2: the cut-over rules. For every cut-over to `X`: the change to `X`,
/// then `X`'s health gate, then the cut-over. For every environment the
/// cut-over drains: the cut-over, then its change.
pub fn add_cutover_edges(graph: &mut StepGraph, nodes: &BTreeMap<String, Node>) {
    for (id, node) in nodes {
        match node {
            Node::HealthGate { environment } => {
                graph.add_edge(&format!("environment.{environment}"), id);
            }
            Node::Cutover { to, .. } => {
                graph.add_edge(&format!("environment.{to}"), id);
                graph.add_edge(&format!("health.{to}"), id);
            }
            Node::Environment { drained_by, .. } => {
                for router in drained_by {
                    graph.add_edge(&format!("cutover.{router}"), id);
                    graph.add_edge(&format!("drain.{router}"), id);
                }
            }
            Node::Drain { router } => {
                graph.add_edge(&format!("cutover.{router}"), id);
            }
            Node::Preview {
                router,
                to,
                after_cutover,
            } => {
                graph.add_edge(&format!("environment.{to}"), id);
                if *after_cutover {
                    graph.add_edge(&format!("cutover.{router}"), id);
                } else {
                    graph.add_edge(id, &format!("cutover.{router}"));
                }
            }
            Node::Forget { .. } => {}
        }
    }
}

/// Pass 3: refuse a cycle, naming it in full.
pub fn check_cycles(graph: &StepGraph) -> Result<(), CycleError> {
    for scc in petgraph::algo::tarjan_scc(&graph.graph) {
        if scc.len() > 1 {
            let members: BTreeSet<NodeIndex> = scc.iter().copied().collect();
            let start = *members.first().expect("non-empty component");
            // Walk a shortest path from `start` back to itself inside the
            // component, so the message is a real cycle, not just its members.
            let mut prev: BTreeMap<NodeIndex, NodeIndex> = BTreeMap::new();
            let mut queue = std::collections::VecDeque::from([start]);
            let mut last = start;
            'search: while let Some(n) = queue.pop_front() {
                for m in graph
                    .graph
                    .neighbors_directed(n, petgraph::Direction::Outgoing)
                {
                    if m == start {
                        last = n;
                        break 'search;
                    }
                    if members.contains(&m) && !prev.contains_key(&m) {
                        prev.insert(m, n);
                        queue.push_back(m);
                    }
                }
            }
            let mut path = vec![start, last];
            let mut cur = last;
            while let Some(&p) = prev.get(&cur) {
                path.push(p);
                cur = p;
            }
            path.dedup();
            path.reverse();
            path.insert(0, start);
            path.dedup();
            let names: Vec<String> = path.iter().map(|n| graph.graph[*n].clone()).collect();
            return Err(CycleError(names.join(" -> ")));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nodes(list: &[(&str, Node)]) -> BTreeMap<String, Node> {
        list.iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect()
    }

    #[test]
    fn change_then_gate_then_cutover_then_drained_change() {
        let n = nodes(&[
            (
                "environment.blue",
                Node::Environment {
                    name: "blue".into(),
                    drained_by: vec!["public".into()],
                },
            ),
            (
                "environment.green",
                Node::Environment {
                    name: "green".into(),
                    drained_by: vec![],
                },
            ),
            (
                "health.green",
                Node::HealthGate {
                    environment: "green".into(),
                },
            ),
            (
                "cutover.public",
                Node::Cutover {
                    router: "public".into(),
                    to: "green".into(),
                },
            ),
        ]);
        let mut g = StepGraph::new(n.keys().map(String::as_str));
        add_cutover_edges(&mut g, &n);
        let order = g.order().unwrap();
        assert_eq!(
            order,
            vec![
                "environment.green",
                "health.green",
                "cutover.public",
                "environment.blue"
            ]
        );
        assert_eq!(
            g.dependencies("cutover.public"),
            vec!["environment.green", "health.green"]
        );
    }

    #[test]
    fn preview_of_the_idle_colour_comes_before_the_cutover_and_of_the_drained_one_after() {
        let before = nodes(&[
            (
                "environment.green",
                Node::Environment {
                    name: "green".into(),
                    drained_by: vec![],
                },
            ),
            (
                "preview.public",
                Node::Preview {
                    router: "public".into(),
                    to: "green".into(),
                    after_cutover: false,
                },
            ),
            (
                "cutover.public",
                Node::Cutover {
                    router: "public".into(),
                    to: "green".into(),
                },
            ),
        ]);
        let mut g = StepGraph::new(before.keys().map(String::as_str));
        add_cutover_edges(&mut g, &before);
        assert_eq!(
            g.order().unwrap(),
            vec!["environment.green", "preview.public", "cutover.public"]
        );

        let after = nodes(&[
            (
                "preview.public",
                Node::Preview {
                    router: "public".into(),
                    to: "blue".into(),
                    after_cutover: true,
                },
            ),
            (
                "cutover.public",
                Node::Cutover {
                    router: "public".into(),
                    to: "green".into(),
                },
            ),
        ]);
        let mut g = StepGraph::new(after.keys().map(String::as_str));
        add_cutover_edges(&mut g, &after);
        assert_eq!(g.order().unwrap(), vec!["cutover.public", "preview.public"]);
    }

    #[test]
    fn independent_steps_have_no_edges() {
        let n = nodes(&[
            (
                "environment.a",
                Node::Environment {
                    name: "a".into(),
                    drained_by: vec![],
                },
            ),
            (
                "environment.b",
                Node::Environment {
                    name: "b".into(),
                    drained_by: vec![],
                },
            ),
        ]);
        let mut g = StepGraph::new(n.keys().map(String::as_str));
        add_cutover_edges(&mut g, &n);
        assert!(g.dependencies("environment.a").is_empty());
        assert!(g.dependencies("environment.b").is_empty());
    }

    #[test]
    fn cycle_is_named_in_full() {
        let mut g = StepGraph::new(["a", "b", "c"]);
        g.add_edge("a", "b");
        g.add_edge("b", "c");
        g.add_edge("c", "a");
        let err = g.order().unwrap_err().to_string();
        assert!(err.ends_with("a -> b -> c -> a"), "{err}");
    }

    #[test]
    fn duplicate_edges_are_dropped() {
        let mut g = StepGraph::new(["a", "b"]);
        g.add_edge("a", "b");
        g.add_edge("a", "b");
        assert_eq!(g.graph.edge_count(), 1);
    }
}

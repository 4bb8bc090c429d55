//! The configuration's dependency graph, for `cutover graph`: every
//! environment and router, each router's `live` edge, and every reference
//! between blocks.

use std::collections::BTreeMap;

use petgraph::graph::{DiGraph, NodeIndex};

use crate::addr::Address;
use crate::config::model::Config;

/// The graph of `config` in Graphviz DOT.
pub fn dot(config: &Config) -> String {
    let mut graph = DiGraph::<String, &str>::new();
    let mut index: BTreeMap<Address, NodeIndex> = BTreeMap::new();
    let mut node = |graph: &mut DiGraph<String, &str>, a: &Address| {
        *index
            .entry(a.clone())
            .or_insert_with(|| graph.add_node(a.to_string()))
    };
    for name in config.environments.keys() {
        node(&mut graph, &Address::environment(name));
    }
    for (name, router) in &config.routers {
        let r = node(&mut graph, &Address::router(name));
        let e = node(&mut graph, &Address::environment(&router.live));
        graph.add_edge(r, e, "live");
    }
    for (from, to) in &config.references {
        let a = node(&mut graph, from);
        let b = node(&mut graph, to);
        if graph.find_edge(a, b).is_none() {
            graph.add_edge(a, b, "");
        }
    }
    format!("{}", petgraph::dot::Dot::new(&graph))
}

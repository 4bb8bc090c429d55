//! The dependency graph between blocks: which block refers to which, the
//! order to evaluate them in, and every cycle, named in full.

use std::collections::{BTreeMap, BTreeSet};

use hcl_edit::expr::Expression;
use hcl_edit::structure::Body;
use petgraph::algo::tarjan_scc;
use petgraph::graph::{DiGraph, NodeIndex};

use super::blocks::static_environment;
use super::diag::Diagnostic;
use super::model::{Address, Span};
use super::refs::{self, RefKey};
use super::schema::Decls;
use super::source::SourceMap;

/// The graph of one configuration.
pub(crate) struct Deps {
    /// Every reference between declared blocks: `from` refers to `to`,
    /// with which instances of `to` it can reach (config::instances).
    pub edges: Vec<(Address, Address, RefKey)>,
    /// Every block, dependencies first.
    pub order: Vec<Address>,
    /// One diagnostic per dependency cycle.
    pub cycles: Vec<Diagnostic>,
}

/// Every address declared in `decls`.
pub(crate) fn declared(decls: &Decls<'_>) -> BTreeSet<Address> {
    let mut out = BTreeSet::new();
    out.extend(decls.variables.keys().cloned().map(Address::Variable));
    out.extend(decls.locals.keys().cloned().map(Address::Local));
    out.extend(decls.environments.keys().cloned().map(Address::Environment));
    out.extend(decls.routers.keys().cloned().map(Address::Router));
    out.extend(decls.outputs.keys().cloned().map(Address::Output));
    out
}

fn body_exprs<'b>(body: &'b Body, out: &mut Vec<&'b Expression>) {
    out.extend(body.attributes().map(|a| &a.value));
    for block in body.blocks() {
        body_exprs(&block.body, out);
    }
}

/// Each block's address, where it is, and the expressions it holds.
fn nodes<'a>(decls: &'a Decls<'a>) -> Vec<(Address, &'a Span, Vec<&'a Expression>)> {
    let mut out = Vec::new();
    for (name, d) in &decls.variables {
        out.push((Address::Variable(name.clone()), &d.span, Vec::new()));
    }
    for (name, l) in &decls.locals {
        out.push((Address::Local(name.clone()), &l.span, vec![&l.attr.value]));
    }
    let blocks = [
        (
            &decls.environments,
            Address::Environment as fn(String) -> Address,
        ),
        (&decls.routers, Address::Router),
        (&decls.outputs, Address::Output),
    ];
    for (table, make) in blocks {
        for (name, d) in table {
            let mut exprs = Vec::new();
            body_exprs(&d.block.body, &mut exprs);
            out.push((make(name.clone()), &d.span, exprs));
        }
    }
    out
}

/// Build the graph, order it, and report its cycles.
pub(crate) fn build(decls: &Decls<'_>, map: &SourceMap) -> Deps {
    let nodes = nodes(decls);
    let mut graph: DiGraph<Address, ()> = DiGraph::new();
    let index: BTreeMap<Address, NodeIndex> = nodes
        .iter()
        .map(|(a, _, _)| (a.clone(), graph.add_node(a.clone())))
        .collect();
    let spans: BTreeMap<&Address, &Span> = nodes.iter().map(|(a, s, _)| (a, *s)).collect();
    let mut edges = Vec::new();
    let mut seen = BTreeSet::new();
    for (from, _, exprs) in &nodes {
        let mut targets: Vec<(Address, RefKey)> = exprs
            .iter()
            .flat_map(|e| refs::scan(e).refs)
            .map(|r| (r.addr, r.key))
            .collect();
        if let Address::Router(name) = from {
            // `live = "green"` names an environment without a reference.
            for attribute in ["live", "preview"] {
                let value = decls
                    .routers
                    .get(name)
                    .and_then(|d| d.block.body.get_attribute(attribute));
                // `live = "green[\"api\"]"`: an instance of `green`.
                targets.extend(
                    value
                        .and_then(|l| static_environment(&l.value))
                        .map(|name| {
                            let key = cutover_provider::name::key_of(&name)
                                .map_or(RefKey::Any, RefKey::Literal);
                            let block = cutover_provider::name::block_of(&name).to_owned();
                            (Address::Environment(block), key)
                        }),
                );
            }
        }
        for (to, key) in targets {
            let Some(&to_ix) = index.get(&to) else {
                continue;
            };
            if matches!(to, Address::Output(_))
                || !seen.insert((from.clone(), to.clone(), key.clone()))
            {
                continue;
            }
            if !graph.contains_edge(index[from], to_ix) {
                graph.add_edge(index[from], to_ix, ());
            }
            edges.push((from.clone(), to, key));
        }
    }
    let mut order = Vec::new();
    let mut cycles = Vec::new();
    // Tarjan gives the strongly connected components in reverse topological
    // order: what a block refers to comes before the block.
    for scc in tarjan_scc(&graph) {
        let cyclic = scc.len() > 1 || graph.contains_edge(scc[0], scc[0]);
        if cyclic {
            cycles.push(cycle_diagnostic(&graph, &scc, &spans, map));
        }
        order.extend(scc.iter().map(|&ix| graph[ix].clone()));
    }
    Deps {
        edges,
        order,
        cycles,
    }
}

/// Name one cycle through `scc`, starting at the block written first.
fn cycle_diagnostic(
    graph: &DiGraph<Address, ()>,
    scc: &[NodeIndex],
    spans: &BTreeMap<&Address, &Span>,
    map: &SourceMap,
) -> Diagnostic {
    let position = |ix: &NodeIndex| spans.get(&graph[*ix]).map(|s| (s.file.clone(), s.start));
    let start = *scc.iter().min_by_key(|ix| position(ix)).unwrap_or(&scc[0]);
    let names: Vec<String> = crate::graph::shortest_cycle(graph, scc, start)
        .iter()
        .map(|ix| graph[*ix].to_string())
        .collect();
    let span = spans
        .get(&graph[start])
        .map(|s| (*s).clone())
        .unwrap_or_default();
    map.diag(&span, format!("dependency cycle: {}", names.join(" -> ")))
        .with_help("break the cycle: a block cannot depend, directly or through others, on itself")
}

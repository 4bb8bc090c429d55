//! `moved { from = environment.green, to = environment.green["api"] }`:
//! what the state records under one address is another's now, as
//! Terraform's `moved` blocks say. Adopting `for_each` for a live pair of
//! colours renames them; without a `moved` block the plan would destroy the
//! old colour (refused while it serves: rule 3) and make a new one.
//!
//! The addresses are read, not evaluated: each is `environment.NAME` or
//! `router.NAME`, with an instance key or not. A move of a whole block
//! (`environment.a` to `environment.b`, both with `for_each`) moves every
//! instance of its key.

use cutover_provider::name::instance_name;
use hcl_edit::expr::{Expression, TraversalOperator};

use super::eval::Evaluator;
use super::model::{Address, Config, Move, Span};
use super::schema::{self, Decl, Schema};

/// The moves of every `moved` block, checked against the configuration
/// (its environments and routers already built).
pub(crate) fn moves(ev: &mut Evaluator<'_>, decls: &[Decl<'_>], config: &Config) -> Vec<Move> {
    let mut out: Vec<Move> = Vec::new();
    for decl in decls {
        let s = Schema {
            what: "moved",
            attrs: &["from", "to"],
            required: &["from", "to"],
            blocks: &[],
        };
        super::blocks::check_decl(ev, decl, &s);
        let body = &decl.block.body;
        let from = body
            .get_attribute("from")
            .and_then(|a| address(ev, decl, &a.value, "from"));
        let to = body
            .get_attribute("to")
            .and_then(|a| address(ev, decl, &a.value, "to"));
        let (Some((from, from_span)), Some((to, to_span))) = (from, to) else {
            continue;
        };
        let refusal = if std::mem::discriminant(&from) != std::mem::discriminant(&to) {
            Some((
                &to_span,
                format!("`from` is {from} and `to` is {to}: a move keeps the kind of block"),
                None,
            ))
        } else if from == to {
            Some((&to_span, format!("`from` and `to` are both {from}"), None))
        } else if in_config(config, &from, false) {
            Some((
                &from_span,
                format!("{from} is still in the configuration: `from` names what the state records under an address the configuration no longer has"),
                Some("remove or rename the block that still makes it, or remove this moved block"),
            ))
        } else if !in_config(config, &to, true) {
            Some((
                &to_span,
                format!("{to} is not in the configuration: `to` names the block or instance that now stands for {from}"),
                None,
            ))
        } else if let Some(first) = out.iter().find(|m| m.from == from) {
            let at = schema::at(&first.span);
            Some((
                &from_span,
                format!("{from} is moved twice (the first at {at})"),
                None,
            ))
        } else {
            None
        };
        match refusal {
            Some((span, message, help)) => {
                let span = span.clone();
                match help {
                    Some(h) => ev.error_help(&span, message, h),
                    None => ev.error(&span, message),
                }
            }
            None => out.push(Move {
                from,
                to,
                span: decl.span.clone(),
            }),
        }
    }
    out
}

/// Whether `addr` is an environment or router of `config` (or, when
/// `block` is true, a block with instances there).
fn in_config(config: &Config, addr: &Address, block: bool) -> bool {
    use cutover_provider::name::instances_in;
    match addr {
        Address::Environment(n) => {
            config.environments.contains_key(n)
                || (block && instances_in(&config.environments, n).next().is_some())
        }
        Address::Router(n) => {
            config.routers.contains_key(n)
                || (block && instances_in(&config.routers, n).next().is_some())
        }
        _ => false,
    }
}

/// `environment.NAME`, `environment.NAME["KEY"]`, `router.NAME[0]`.
fn address(
    ev: &mut Evaluator<'_>,
    decl: &Decl<'_>,
    expr: &Expression,
    attribute: &str,
) -> Option<(Address, Span)> {
    let span = ev.span_of(decl.file, expr);
    let parsed = match expr {
        Expression::Traversal(t) => match (&t.expr, t.operators.as_slice()) {
            (Expression::Variable(root), [name, rest @ ..]) if rest.len() <= 1 => {
                let TraversalOperator::GetAttr(name) = name.value() else {
                    return bad(ev, &span, attribute);
                };
                let key = match rest.first() {
                    None => None,
                    Some(op) => match super::instances::literal_key(op.value()) {
                        Some(key) => Some(key),
                        None => return bad(ev, &span, attribute),
                    },
                };
                let name = match &key {
                    Some(k) => instance_name(name.as_str(), k),
                    None => name.as_str().to_owned(),
                };
                match root.as_str() {
                    "environment" => Some(Address::Environment(name)),
                    "router" => Some(Address::Router(name)),
                    _ => None,
                }
            }
            _ => None,
        },
        _ => None,
    };
    match parsed {
        Some(addr) => Some((addr, span)),
        None => bad(ev, &span, attribute),
    }
}

fn bad<T>(ev: &mut Evaluator<'_>, span: &Span, attribute: &str) -> Option<T> {
    ev.error_help(
        span,
        format!("`{attribute}` must be the address of an environment or a router"),
        "write e.g. environment.green, environment.green[\"api\"] or router.public",
    );
    None
}

//! Finding what an expression refers to, before evaluating it.
//!
//! The scan gives the graph its edges (`var.x`, `local.y`, `environment.z`,
//! `router.r`, each with its byte range for diagnostics), and finds names
//! and functions that do not exist and calls of `try` and `can` that cannot
//! be made.

use std::ops::Range;

use hcl_edit::expr::{Expression, ForExpr, FuncCall, Traversal, TraversalOperator};
use hcl_edit::template::ForTemplateExpr;
use hcl_edit::visit::{self, Visit};
use hcl_edit::Span as _;

use super::functions;
use super::model::Address;

/// A reference to another block, and where it is written.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct RefSite {
    /// What is referred to.
    pub addr: Address,
    /// The bytes of `root.name`.
    pub range: Range<usize>,
    /// Which instances of a block with `for_each` or `count` it can reach.
    pub key: RefKey,
}

/// Which instances of the block referred to a reference can reach, as far
/// as the expression says without evaluating it: what orders one
/// instance's change after another's (config::instances).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum RefKey {
    /// Any of them (`environment.blue`, `environment.blue[local.k]`).
    Any,
    /// The one of the referring instance's own key: `environment.blue[each.key]`
    /// or `environment.blue[count.index]`.
    Own,
    /// One named by a literal: `environment.blue["api"]`, `environment.blue[0]`.
    Literal(cutover_provider::name::InstanceKey),
}

/// A use of `each.key`, `each.value` or `count.index`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct MetaRef {
    /// `each` or `count`.
    pub root: &'static str,
    /// The bytes of `each.key`.
    pub range: Range<usize>,
}

/// A name or function that does not exist.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Problem {
    /// Where.
    pub range: Range<usize>,
    /// What is wrong.
    pub message: String,
    /// What to do.
    pub help: Option<String>,
}

/// What one expression refers to.
#[derive(Debug, Default)]
pub(crate) struct Scan {
    /// References to blocks.
    pub refs: Vec<RefSite>,
    /// Unknown names and functions.
    pub problems: Vec<Problem>,
    /// Whether it calls `sensitive()`, which marks a value (config::marks).
    pub marks_values: bool,
    /// The built-in functions it calls: only these are declared in its
    /// evaluation context (declaring every function for every attribute was
    /// a third of a whole `validate`).
    pub functions: Vec<&'static str>,
    /// Whether it calls a function that reads the configuration directory.
    pub reads_files: bool,
    /// Its uses of `each` and `count`.
    pub meta: Vec<MetaRef>,
}

/// Scan `expr`.
pub(crate) fn scan(expr: &Expression) -> Scan {
    let mut scanner = Scanner {
        scan: Scan::default(),
        scope: Vec::new(),
    };
    scanner.visit_expr(expr);
    scanner.scan
}

const ROOTS: &[&str] = &["var", "local", "environment", "router"];

/// The names a block with `for_each` or `count` gives its expressions, and
/// their attributes.
const META: &[(&str, &[&str])] = &[("each", &["key", "value"]), ("count", &["index"])];

struct Scanner {
    scan: Scan,
    /// Names bound by enclosing `for` expressions.
    scope: Vec<String>,
}

impl Scanner {
    fn address(root: &str, name: String) -> Address {
        match root {
            "var" => Address::Variable(name),
            "local" => Address::Local(name),
            "environment" => Address::Environment(name),
            _ => Address::Router(name),
        }
    }

    fn problem(&mut self, range: Option<Range<usize>>, message: String, help: Option<String>) {
        let range = range.unwrap_or(0..0);
        self.scan.problems.push(Problem {
            range,
            message,
            help,
        });
    }

    fn unknown_name(&mut self, name: &str, range: Option<Range<usize>>) {
        let help = super::source::did_you_mean(
            name,
            ROOTS
                .iter()
                .copied()
                .chain(self.scope.iter().map(String::as_str)),
        )
        .unwrap_or_else(|| {
            "references start with `var.`, `local.`, `environment.` or `router.`".into()
        });
        self.problem(range, format!("unknown name `{name}`"), Some(help));
    }

    fn traversal_root(&mut self, node: &Traversal, root: &str) -> bool {
        let start = node.expr.span().map_or(0, |r| r.start);
        let first = node.operators.first();
        let name = match first.map(|op| op.value()) {
            Some(TraversalOperator::GetAttr(ident)) => Some(ident.as_str().to_string()),
            Some(TraversalOperator::Index(Expression::String(s))) => Some(s.value().clone()),
            _ => None,
        };
        let Some(name) = name else {
            let help = format!("write `{root}.NAME`");
            self.problem(
                node.expr.span(),
                format!("`{root}` must be followed by a name"),
                Some(help),
            );
            return false;
        };
        let end = first
            .and_then(|op| op.span())
            .map_or(start, |r| r.end.max(start));
        let key = match (root, node.operators.get(1).map(|op| op.value())) {
            ("environment" | "router", Some(op @ TraversalOperator::Index(index))) => {
                ref_key(op, index, &self.scope)
            }
            _ => RefKey::Any,
        };
        self.scan.refs.push(RefSite {
            addr: Self::address(root, name),
            range: start..end,
            key,
        });
        true
    }

    /// `each.key`, `each.value`, `count.index`; anything else of theirs is a
    /// problem.
    fn meta_root(&mut self, node: &Traversal, root: &'static str, attrs: &[&str]) {
        let start = node.expr.span().map_or(0, |r| r.start);
        let first = node.operators.first();
        let attr = match first.map(|op| op.value()) {
            Some(TraversalOperator::GetAttr(ident)) => Some(ident.as_str()),
            _ => None,
        };
        let end = first
            .and_then(|op| op.span())
            .map_or(start, |r| r.end.max(start));
        match attr {
            Some(a) if attrs.contains(&a) => self.scan.meta.push(MetaRef {
                root,
                range: start..end,
            }),
            _ => {
                let forms: Vec<String> = attrs.iter().map(|a| format!("`{root}.{a}`")).collect();
                self.problem(
                    Some(start..end),
                    format!("`{root}` has only {}", forms.join(" and ")),
                    None,
                );
            }
        }
    }
}

/// What an index right after `environment.NAME` selects. `each` or
/// `count` bound by an enclosing `for` (`scope`) is not the instance's.
fn ref_key(op: &TraversalOperator, index: &Expression, scope: &[String]) -> RefKey {
    if let Some(key) = super::instances::literal_key(op) {
        return RefKey::Literal(key);
    }
    match index {
        Expression::Traversal(t) => match (&t.expr, t.operators.as_slice()) {
            (Expression::Variable(v), [op]) if !scope.iter().any(|s| s == v.as_str()) => {
                match (v.as_str(), op.value()) {
                    ("each", TraversalOperator::GetAttr(a)) if a.as_str() == "key" => RefKey::Own,
                    ("count", TraversalOperator::GetAttr(a)) if a.as_str() == "index" => {
                        RefKey::Own
                    }
                    _ => RefKey::Any,
                }
            }
            _ => RefKey::Any,
        },
        _ => RefKey::Any,
    }
}

impl Visit for Scanner {
    fn visit_expr(&mut self, node: &Expression) {
        if let Expression::Variable(var) = node {
            let name = var.as_str();
            if self.scope.iter().any(|s| s == name) {
                return;
            }
            if let Some((root, attrs)) = META.iter().find(|(r, _)| *r == name) {
                let forms: Vec<String> = attrs.iter().map(|a| format!("`{root}.{a}`")).collect();
                self.problem(
                    node.span(),
                    format!(
                        "`{root}` must be followed by an attribute: {}",
                        forms.join(" or ")
                    ),
                    None,
                );
            } else if ROOTS.contains(&name) {
                let help = format!("write `{name}.NAME`");
                self.problem(
                    node.span(),
                    format!("`{name}` must be followed by a name"),
                    Some(help),
                );
            } else {
                self.unknown_name(name, node.span());
            }
            return;
        }
        visit::visit_expr(self, node);
    }

    fn visit_traversal(&mut self, node: &Traversal) {
        if let Expression::Variable(var) = &node.expr {
            let root = var.as_str();
            if ROOTS.contains(&root) && !self.scope.iter().any(|s| s == root) {
                if self.traversal_root(node, root) {
                    for op in node.operators.iter().skip(1) {
                        self.visit_traversal_operator(op);
                    }
                }
                return;
            }
            let meta = META.iter().find(|(r, _)| *r == root);
            if let (Some((root, attrs)), false) = (meta, self.scope.iter().any(|s| s == root)) {
                self.meta_root(node, root, attrs);
                for op in node.operators.iter().skip(1) {
                    self.visit_traversal_operator(op);
                }
                return;
            }
        }
        visit::visit_traversal(self, node);
    }

    fn visit_func_call(&mut self, node: &FuncCall) {
        let name = node.name.name.as_str();
        self.scan.marks_values |= name == "sensitive";
        let known = functions::NAMES.iter().find(|n| **n == name);
        if let (Some(known), true) = (known, node.name.namespace.is_empty()) {
            if !self.scan.functions.contains(known) {
                self.scan.functions.push(known);
            }
        }
        self.scan.reads_files |= matches!(name, "file" | "fileexists" | "templatefile");
        if let Some(message) = lazy_call_problem(node) {
            self.problem(node.span(), message, None);
        }
        if !node.name.namespace.is_empty() || known.is_none() {
            let help = super::source::did_you_mean(name, functions::NAMES.iter().copied())
                .unwrap_or_else(|| format!("the functions are: {}", functions::NAMES.join(", ")));
            self.problem(
                node.name.name.span().or(node.span()),
                format!("unknown function `{name}`"),
                Some(help),
            );
        }
        visit::visit_func_args(self, &node.args);
    }

    fn visit_for_expr(&mut self, node: &ForExpr) {
        self.visit_expr(&node.intro.collection_expr);
        let depth = self.scope.len();
        self.scope
            .extend(node.intro.key_var.iter().map(|k| k.as_str().to_string()));
        self.scope.push(node.intro.value_var.as_str().to_string());
        if let Some(key) = &node.key_expr {
            self.visit_expr(key);
        }
        self.visit_expr(&node.value_expr);
        if let Some(cond) = &node.cond {
            self.visit_expr(&cond.expr);
        }
        self.scope.truncate(depth);
    }

    fn visit_for_template_expr(&mut self, node: &ForTemplateExpr) {
        self.visit_expr(&node.collection_expr);
        let depth = self.scope.len();
        self.scope
            .extend(node.key_var.iter().map(|k| k.as_str().to_string()));
        self.scope.push(node.value_var.as_str().to_string());
        self.visit_template(&node.template);
        self.scope.truncate(depth);
    }
}

/// What is wrong with a call of `try` or `can`, whose arguments are
/// expressions (config::rewrite): `can` takes one, `try` at least one, and
/// neither a list expanded with `...`.
fn lazy_call_problem(call: &FuncCall) -> Option<String> {
    let name = call.name.name.as_str();
    if !call.name.namespace.is_empty() || !matches!(name, "try" | "can") {
        return None;
    }
    if call.args.expand_final() {
        return Some(format!(
            "`{name}` takes expressions, not a list expanded with `...`"
        ));
    }
    match (name, call.args.len()) {
        ("can", 1) => None,
        ("can", n) => Some(format!("`can` takes exactly one expression, not {n}")),
        ("try", 0) => Some("`try` takes at least one expression".into()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Expression {
        let body = hcl_edit::parser::parse_body(&format!("x = {s}\n")).unwrap();
        body.get_attribute("x").unwrap().value.clone()
    }

    #[test]
    fn finds_references_with_ranges() {
        let scan = scan(&parse("\"${var.a}-${environment.green.release}\""));
        let addrs: Vec<_> = scan.refs.iter().map(|r| r.addr.to_string()).collect();
        assert_eq!(addrs, ["var.a", "environment.green"]);
        // `x = "${` is 7 bytes.
        assert_eq!(scan.refs[0].range, 7..12);
    }

    #[test]
    fn for_variables_are_not_references() {
        let scan = scan(&parse("[for s in var.list : upper(s)]"));
        assert_eq!(scan.refs.len(), 1);
        assert!(scan.problems.is_empty(), "{:?}", scan.problems);
    }

    #[test]
    fn unknown_names_and_functions_are_problems() {
        let scan = scan(&parse("uper(foo)"));
        let messages: Vec<_> = scan.problems.iter().map(|p| p.message.as_str()).collect();
        assert_eq!(messages, ["unknown function `uper`", "unknown name `foo`"]);
        assert_eq!(
            scan.problems[0].help.as_deref(),
            Some("did you mean `upper`?")
        );
    }
}

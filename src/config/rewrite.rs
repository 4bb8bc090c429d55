//! Expressions rewritten before hcl-rs evaluates them, where evaluating
//! them as written would be wrong.
//!
//! - The arithmetic and comparison operators become calls of the checked
//!   operators of config::functions::operators (exact whole numbers, an
//!   error for a division by zero or a result out of range, numeric strings
//!   converted as Terraform does), each with the byte range it was written
//!   at, so that its errors are located.
//! - `try(a, b)` and `can(a)`: hcl-rs evaluates a function's arguments
//!   before calling it, and a function is a plain `fn` that cannot see the
//!   names in scope. So each argument is set aside unevaluated, as a
//!   *thunk*, and the call becomes `__try(scope, 0, 1)`: the thunks' indexes
//!   and an object of the names bound around the call by `for` expressions
//!   and `%{ for }` directives (which hcl-rs evaluates, so the thunk can be
//!   evaluated later with them: config::lazy).
//!
//! [`restore`] turns a rewritten expression back into what was written, for
//! error messages that quote it.

use std::ops::Range;

use hcl_edit::expr::{
    BinaryOp, BinaryOperator, Expression, ForExpr, FuncArgs, FuncCall, Object, ObjectKey,
    ObjectValue, UnaryOp, UnaryOperator,
};
use hcl_edit::template::ForTemplateExpr;
use hcl_edit::visit_mut::{self, VisitMut};
use hcl_edit::{Ident, Span as _};

use super::functions::operators;

/// An expression ready for hcl-rs.
#[derive(Debug, Clone)]
pub(crate) struct Prepared {
    /// The rewritten expression.
    pub expr: hcl::Expression,
    /// The arguments of `try` and `can`, unevaluated (rewritten too).
    pub thunks: Vec<hcl::Expression>,
    /// The internal functions the rewritten expression calls.
    pub internal: Vec<&'static str>,
}

/// The internal name of `try`, and of `can`.
pub(crate) const TRY: &str = "__try";
/// See [`TRY`].
pub(crate) const CAN: &str = "__can";

/// Rewrite `expr` (written in the file where its spans are).
pub(crate) fn prepare(mut expr: Expression) -> Prepared {
    let mut r = Rewriter::default();
    r.visit_expr_mut(&mut expr);
    Prepared {
        expr: expr.into(),
        thunks: r.thunks,
        internal: r.internal,
    }
}

#[derive(Default)]
struct Rewriter {
    /// Names bound by the `for`s around the node, innermost last.
    scope: Vec<String>,
    thunks: Vec<hcl::Expression>,
    internal: Vec<&'static str>,
}

impl Rewriter {
    fn uses(&mut self, name: &'static str) {
        if !self.internal.contains(&name) {
            self.internal.push(name);
        }
    }

    /// `name(args...)`, an internal function.
    fn call(&mut self, name: &'static str, args: Vec<Expression>) -> Expression {
        self.uses(name);
        FuncCall::new(Ident::new(name), FuncArgs::from(args)).into()
    }

    /// `{ x = x, ... }` for every name in scope.
    fn scope_object(&self) -> Expression {
        let mut object = Object::new();
        for name in &self.scope {
            let ident = Ident::new(name.as_str());
            object.insert(
                ObjectKey::from(ident.clone()),
                ObjectValue::new(Expression::from(ident)),
            );
        }
        object.into()
    }

    fn with_scope(&mut self, names: Vec<String>, f: impl FnOnce(&mut Self)) {
        let depth = self.scope.len();
        for name in names {
            self.scope.retain(|n| *n != name);
            self.scope.push(name);
        }
        f(self);
        self.scope.truncate(depth);
    }

    fn lazy_call(&mut self, name: &'static str, call: &mut FuncCall) -> Expression {
        let mut args = vec![self.scope_object()];
        for arg in call.args.iter_mut() {
            self.visit_expr_mut(arg);
            args.push(Expression::from(self.thunks.len() as u64));
            self.thunks.push(arg.clone().into());
        }
        self.call(name, args)
    }
}

fn range_args(range: Option<Range<usize>>) -> [Expression; 2] {
    let r = range.unwrap_or(0..0);
    [
        Expression::from(r.start as u64),
        Expression::from(r.end as u64),
    ]
}

fn operator_name(op: BinaryOperator) -> Option<&'static str> {
    Some(match op {
        BinaryOperator::Plus => "__add",
        BinaryOperator::Minus => "__sub",
        BinaryOperator::Mul => "__mul",
        BinaryOperator::Div => "__div",
        BinaryOperator::Mod => "__mod",
        BinaryOperator::Less => "__lt",
        BinaryOperator::LessEq => "__le",
        BinaryOperator::Greater => "__gt",
        BinaryOperator::GreaterEq => "__ge",
        _ => return None,
    })
}

impl VisitMut for Rewriter {
    fn visit_expr_mut(&mut self, expr: &mut Expression) {
        let range = expr.span();
        match expr {
            Expression::FuncCall(call) if call.name.namespace.is_empty() => {
                match call.name.name.as_str() {
                    "try" => *expr = self.lazy_call(TRY, call),
                    "can" => *expr = self.lazy_call(CAN, call),
                    _ => visit_mut::visit_expr_mut(self, expr),
                }
            }
            Expression::BinaryOp(op) => {
                // Taken before the operand is rewritten (which has no span).
                let rhs_range = op.rhs_expr.span();
                visit_mut::visit_binary_op_mut(self, op);
                if let Some(name) = operator_name(*op.operator.value()) {
                    let [start, end] = range_args(range);
                    let [rstart, rend] = range_args(rhs_range);
                    let (lhs, rhs) = (op.lhs_expr.clone(), op.rhs_expr.clone());
                    *expr = self.call(name, vec![lhs, rhs, start, end, rstart, rend]);
                }
            }
            Expression::UnaryOp(op) => {
                visit_mut::visit_unary_op_mut(self, op);
                if *op.operator.value() == UnaryOperator::Neg {
                    let [start, end] = range_args(range);
                    // The operand's range too, as for a binary operator.
                    let operand = op.expr.clone();
                    *expr = self.call(
                        "__neg",
                        vec![operand, start.clone(), end.clone(), start, end],
                    );
                }
            }
            _ => visit_mut::visit_expr_mut(self, expr),
        }
    }

    fn visit_for_expr_mut(&mut self, node: &mut ForExpr) {
        self.visit_expr_mut(&mut node.intro.collection_expr);
        let mut names: Vec<String> = node.intro.key_var.iter().map(|k| k.to_string()).collect();
        names.push(node.intro.value_var.to_string());
        self.with_scope(names, |r| {
            if let Some(key) = &mut node.key_expr {
                r.visit_expr_mut(key);
            }
            r.visit_expr_mut(&mut node.value_expr);
            if let Some(cond) = &mut node.cond {
                r.visit_expr_mut(&mut cond.expr);
            }
        });
    }

    fn visit_for_template_expr_mut(&mut self, node: &mut ForTemplateExpr) {
        self.visit_expr_mut(&mut node.collection_expr);
        let mut names: Vec<String> = node.key_var.iter().map(|k| k.to_string()).collect();
        names.push(node.value_var.to_string());
        self.with_scope(names, |r| r.visit_template_mut(&mut node.template));
    }
}

/// `expr` (rewritten) as it was written: operators for the operator
/// functions, `try(...)` and `can(...)` with their thunks (`thunks`) put
/// back.
pub(crate) fn restore(expr: &hcl::Expression, thunks: &[hcl::Expression]) -> hcl::Expression {
    let mut edit = Expression::from(expr.clone());
    Restorer { thunks }.visit_expr_mut(&mut edit);
    edit.into()
}

struct Restorer<'t> {
    thunks: &'t [hcl::Expression],
}

impl VisitMut for Restorer<'_> {
    fn visit_expr_mut(&mut self, expr: &mut Expression) {
        visit_mut::visit_expr_mut(self, expr);
        let Expression::FuncCall(call) = expr else {
            return;
        };
        let name = call.name.name.as_str();
        let args: Vec<Expression> = call.args.iter().cloned().collect();
        *expr = match (name, args.as_slice()) {
            (TRY | CAN, [_, ids @ ..]) => {
                let thunks = ids.iter().map(|id| {
                    let i = match id {
                        Expression::Number(n) => n.as_u64().unwrap_or(u64::MAX),
                        _ => u64::MAX,
                    };
                    self.thunks
                        .get(i as usize)
                        .map_or(Expression::null(), |t| restore(t, self.thunks).into())
                });
                let public = if name == TRY { "try" } else { "can" };
                FuncCall::new(Ident::new(public), thunks.collect::<FuncArgs>()).into()
            }
            ("__neg", [operand, ..]) => UnaryOp::new(UnaryOperator::Neg, operand.clone()).into(),
            (name, [lhs, rhs, ..]) => match symbol_operator(name) {
                Some(op) => BinaryOp::new(lhs.clone(), op, rhs.clone()).into(),
                None => return,
            },
            _ => return,
        };
    }
}

fn symbol_operator(name: &str) -> Option<BinaryOperator> {
    Some(match operators::symbol(name)? {
        "+" => BinaryOperator::Plus,
        "-" => BinaryOperator::Minus,
        "*" => BinaryOperator::Mul,
        "/" => BinaryOperator::Div,
        "%" => BinaryOperator::Mod,
        "<" => BinaryOperator::Less,
        "<=" => BinaryOperator::LessEq,
        ">" => BinaryOperator::Greater,
        ">=" => BinaryOperator::GreaterEq,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Expression {
        hcl_edit::parser::parse_expr(s).unwrap()
    }

    #[test]
    fn operators_become_checked_calls_with_their_ranges() {
        let p = prepare(parse("1 + 2 * -x"));
        assert_eq!(
            p.expr.to_string(),
            "__add(1, __mul(2, __neg(x, 8, 10, 8, 10), 4, 10, 8, 10), 0, 10, 4, 10)"
        );
        assert_eq!(p.internal, ["__neg", "__mul", "__add"]);
        assert_eq!(restore(&p.expr, &p.thunks).to_string(), "1 + 2 * -x");
    }

    #[test]
    fn try_arguments_become_thunks_with_the_names_in_scope() {
        let p = prepare(parse("[for k, v in m : try(v.a / 2, k)]"));
        assert_eq!(
            p.expr.to_string(),
            "[for k, v in m : __try({ k = k, v = v }, 0, 1)]"
        );
        assert_eq!(p.thunks[0].to_string(), "__div(v.a, 2, 21, 28, 27, 28)");
        assert_eq!(p.thunks[1].to_string(), "k");
        assert_eq!(
            restore(&p.expr, &p.thunks).to_string(),
            "[for k, v in m : try(v.a / 2, k)]"
        );
        let p = prepare(parse("\"%{ for x in xs }${can(x.y)}%{ endfor }\""));
        let text = p.expr.to_string();
        assert!(text.contains("__can({x = x,}, 0)"), "{text}");
    }
}

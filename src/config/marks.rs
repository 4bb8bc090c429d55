//! Sensitivity as a mark on values, as Terraform's cty marks are.
//!
//! A value is marked by `sensitive = true` on its variable (or output) and
//! by the `sensitive()` function; [`Marks`] says which parts of a value are
//! marked, mirroring its shape: a marked element of a list marks that
//! element, a marked value in a map marks that key's value, not its
//! siblings. [`of`] computes the marks of an expression from the marks of
//! what it refers to: they travel through templates, functions, conditionals
//! (`c ? a : b` has the marks of the branch taken, and all of them when `c`
//! is marked), `for` expressions (element by element) and collections; only
//! `nonsensitive()` removes them.
//!
//! What is shown or stored replaces each marked part with a marker that names
//! no part of it but changes when it changes ([`Marks::redact`]):
//! `(sensitive:1a2b3c4d5e6f)`, the first 12 hex digits of its SHA-256. Nothing
//! unmarked is ever replaced, whatever text it shares with a secret.

use std::collections::{BTreeMap, BTreeSet};

use hcl::eval::{Context, Evaluate};
use hcl::expr::{
    BinaryOp, Conditional, Expression, ForExpr, FuncCall, ObjectKey, Operation, TemplateExpr,
    Traversal, TraversalOperator,
};
use hcl::template::{Directive, Element, Template};
use hcl::Value;
use serde_json::Value as Json;
use sha2::{Digest, Sha256};

/// Which parts of a value are sensitive.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Marks {
    /// Nothing is.
    #[default]
    Clear,
    /// The whole value is, because of these origins (`var.api_token`,
    /// `sensitive()`, `output.x`).
    Sensitive(BTreeSet<String>),
    /// A list: the marks of each element (those past the end are clear).
    Items(Vec<Marks>),
    /// A map or object: the marks of each key's value (absent keys are clear).
    Fields(BTreeMap<String, Marks>),
}

/// The prefix every marker starts with.
pub const MARKER_PREFIX: &str = "(sensitive:";

/// The marker that stands for the text `secret`.
pub fn marker(secret: &str) -> String {
    let digest = Sha256::digest(secret.as_bytes());
    let hex: String = digest.iter().take(6).map(|b| format!("{b:02x}")).collect();
    format!("{MARKER_PREFIX}{hex})")
}

/// Whether `text` is a marker (a value already shown as one).
pub fn is_marker(text: &str) -> bool {
    text.len() == MARKER_PREFIX.len() + 13
        && text.starts_with(MARKER_PREFIX)
        && text.ends_with(')')
        && text[MARKER_PREFIX.len()..text.len() - 1]
            .bytes()
            .all(|b| b.is_ascii_hexdigit())
}

/// The marker of a JSON value: of its text when it is a string, else of its
/// JSON form.
pub fn marker_of(value: &Json) -> String {
    match value {
        Json::String(s) => marker(s),
        other => marker(&other.to_string()),
    }
}

impl Marks {
    /// The whole value is sensitive because of `origin`.
    pub fn sensitive(origin: impl Into<String>) -> Marks {
        Marks::Sensitive(BTreeSet::from([origin.into()]))
    }

    /// The marks of a list; `Clear` when no element is marked.
    pub fn items(items: Vec<Marks>) -> Marks {
        if items.iter().all(Marks::is_clear) {
            Marks::Clear
        } else {
            Marks::Items(items)
        }
    }

    /// The marks of a map; `Clear` when no value is marked.
    pub fn fields(fields: impl IntoIterator<Item = (String, Marks)>) -> Marks {
        let fields: BTreeMap<String, Marks> =
            fields.into_iter().filter(|(_, m)| !m.is_clear()).collect();
        if fields.is_empty() {
            Marks::Clear
        } else {
            Marks::Fields(fields)
        }
    }

    /// Whether nothing is marked.
    pub fn is_clear(&self) -> bool {
        matches!(self, Marks::Clear)
    }

    /// Every origin of a mark anywhere in the value.
    pub fn origins(&self) -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        self.collect_origins(&mut out);
        out
    }

    fn collect_origins(&self, out: &mut BTreeSet<String>) {
        match self {
            Marks::Clear => {}
            Marks::Sensitive(o) => out.extend(o.iter().cloned()),
            Marks::Items(items) => items.iter().for_each(|m| m.collect_origins(out)),
            Marks::Fields(fields) => fields.values().for_each(|m| m.collect_origins(out)),
        }
    }

    /// The marks of a value computed from all of this one (a function's
    /// result, an operation's): wholly sensitive when any part is.
    pub fn whole(&self) -> Marks {
        match self {
            Marks::Clear => Marks::Clear,
            Marks::Sensitive(_) => self.clone(),
            _ => Marks::Sensitive(self.origins()),
        }
    }

    /// The marks of a value computed from both: wholly sensitive when any
    /// part of either is.
    pub fn union(&self, other: &Marks) -> Marks {
        let mut origins = self.origins();
        other.collect_origins(&mut origins);
        if origins.is_empty() {
            Marks::Clear
        } else {
            Marks::Sensitive(origins)
        }
    }

    /// The marks of the value under `key` of a map.
    pub fn attr(&self, key: &str) -> Marks {
        match self {
            Marks::Sensitive(_) => self.clone(),
            Marks::Fields(f) => f.get(key).cloned().unwrap_or_default(),
            Marks::Clear | Marks::Items(_) => Marks::Clear,
        }
    }

    /// The marks of element `i` of a list.
    pub fn index(&self, i: usize) -> Marks {
        match self {
            Marks::Sensitive(_) => self.clone(),
            Marks::Items(items) => items.get(i).cloned().unwrap_or_default(),
            Marks::Clear | Marks::Fields(_) => Marks::Clear,
        }
    }

    /// `value` with every marked part replaced by its marker. A part that is
    /// a marker already stays as it is, so that redacting twice is
    /// redacting once.
    pub fn redact(&self, value: &Json) -> Json {
        match (self, value) {
            (Marks::Clear, _) => value.clone(),
            (Marks::Sensitive(_), Json::String(s)) if is_marker(s) => value.clone(),
            (Marks::Sensitive(_), _) => Json::String(marker_of(value)),
            (Marks::Items(marks), Json::Array(items)) => Json::Array(
                items
                    .iter()
                    .enumerate()
                    .map(|(i, v)| marks.get(i).map_or_else(|| v.clone(), |m| m.redact(v)))
                    .collect(),
            ),
            (Marks::Fields(marks), Json::Object(map)) => Json::Object(
                map.iter()
                    .map(|(k, v)| {
                        let v = marks.get(k).map_or_else(|| v.clone(), |m| m.redact(v));
                        (k.clone(), v)
                    })
                    .collect(),
            ),
            // A shape that does not match the value's: hide it all rather
            // than guess.
            (_, _) => Json::String(marker_of(value)),
        }
    }

    /// `text` redacted as a string value with these marks.
    pub fn redact_text(&self, text: &str) -> String {
        if self.is_clear() {
            return text.to_owned();
        }
        match self.redact(&Json::String(text.to_owned())) {
            Json::String(s) => s,
            other => other.to_string(),
        }
    }

    /// The text of every marked string or number in `value` (its JSON text
    /// for a marked list or map as well), for hiding them in text cutover
    /// did not build: a provider's error, a command's output.
    pub fn texts(&self, value: &Json, out: &mut BTreeSet<String>) {
        match (self, value) {
            (Marks::Clear, _) => {}
            (Marks::Sensitive(_), _) => leaf_texts(value, out),
            (Marks::Items(marks), Json::Array(items)) => {
                for (m, v) in marks.iter().zip(items) {
                    m.texts(v, out);
                }
            }
            (Marks::Fields(marks), Json::Object(map)) => {
                for (k, m) in marks {
                    if let Some(v) = map.get(k) {
                        m.texts(v, out);
                    }
                }
            }
            (_, _) => leaf_texts(value, out),
        }
    }

    /// The text of every string and number in `value` that is not marked.
    pub fn clear_texts(&self, value: &Json, out: &mut Vec<String>) {
        match (self, value) {
            (Marks::Sensitive(_), _) => {}
            (_, Json::String(s)) => out.push(s.clone()),
            (_, Json::Number(n)) => out.push(n.to_string()),
            (_, Json::Array(items)) => {
                for (i, v) in items.iter().enumerate() {
                    self.index(i).clear_texts(v, out);
                }
            }
            (_, Json::Object(map)) => {
                for (k, v) in map {
                    out.push(k.clone());
                    self.attr(k).clear_texts(v, out);
                }
            }
            (_, Json::Bool(_) | Json::Null) => {}
        }
    }

    /// How `shown` (a value as a saved plan holds it) compares with `real`
    /// (the configuration's now) redacted with these marks.
    pub fn difference(&self, shown: &Json, real: &Json) -> Difference {
        match (self, shown, real) {
            (Marks::Clear, _, _) => {
                if shown == real {
                    Difference::Same
                } else {
                    Difference::Clear
                }
            }
            (Marks::Sensitive(origins), _, _) => {
                if *shown == self.redact(real) {
                    Difference::Same
                } else {
                    Difference::Marked(origins.clone())
                }
            }
            (Marks::Items(marks), Json::Array(a), Json::Array(b)) if a.len() == b.len() => {
                first_difference(
                    a.iter()
                        .zip(b)
                        .enumerate()
                        .map(|(i, (x, y))| marks.get(i).unwrap_or(&Marks::Clear).difference(x, y)),
                )
            }
            (Marks::Fields(marks), Json::Object(a), Json::Object(b))
                if a.len() == b.len() && a.keys().all(|k| b.contains_key(k)) =>
            {
                first_difference(
                    a.iter()
                        .map(|(k, x)| marks.get(k).unwrap_or(&Marks::Clear).difference(x, &b[k])),
                )
            }
            (_, _, _) => {
                if *shown == self.redact(real) {
                    Difference::Same
                } else {
                    Difference::Clear
                }
            }
        }
    }
}

/// How a value held by a saved plan compares with the configuration's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Difference {
    /// The same, marked parts included.
    Same,
    /// A part that is not marked differs.
    Clear,
    /// A marked part differs: it came from these origins.
    Marked(BTreeSet<String>),
}

fn first_difference(diffs: impl Iterator<Item = Difference>) -> Difference {
    let mut marked = None;
    for d in diffs {
        match d {
            Difference::Same => {}
            Difference::Clear => return Difference::Clear,
            Difference::Marked(o) => {
                marked.get_or_insert(o);
            }
        }
    }
    marked.map_or(Difference::Same, Difference::Marked)
}

fn leaf_texts(value: &Json, out: &mut BTreeSet<String>) {
    match value {
        Json::String(s) => {
            out.insert(s.clone());
        }
        Json::Number(n) => {
            out.insert(n.to_string());
        }
        Json::Bool(_) | Json::Null => {}
        Json::Array(items) => {
            out.insert(value.to_string());
            items.iter().for_each(|v| leaf_texts(v, out));
        }
        Json::Object(map) => {
            out.insert(value.to_string());
            for (k, v) in map {
                out.insert(k.clone());
                leaf_texts(v, out);
            }
        }
    }
}

/// What an expression is evaluated against, for computing its marks: the
/// values and marks of the roots it refers to (`var`, `local`, ...) and of
/// the names a `for` binds around it.
pub(crate) struct Scope<'a> {
    /// The values of the roots.
    pub roots: &'a BTreeMap<&'static str, Value>,
    /// The marks of the roots (a root absent here is clear).
    pub marks: &'a BTreeMap<&'static str, Marks>,
    /// Names bound by enclosing `for` expressions, innermost last.
    pub bindings: Vec<(String, Value, Marks)>,
}

impl Scope<'_> {
    fn marks_of_name(&self, name: &str) -> Marks {
        if let Some((_, _, m)) = self.bindings.iter().rev().find(|(n, _, _)| n == name) {
            return m.clone();
        }
        self.marks.get(name).cloned().unwrap_or_default()
    }

    /// Evaluate a part of the expression (a condition, a key, a collection),
    /// `None` when it fails (then marks are taken conservatively).
    fn evaluate(&self, expr: &Expression) -> Option<Value> {
        let mut ctx = Context::new();
        super::functions::declare(&mut ctx);
        for (root, value) in self.roots {
            ctx.declare_var(*root, value.clone());
        }
        for (name, value, _) in &self.bindings {
            ctx.declare_var(name.as_str(), value.clone());
        }
        super::eval::guarded(|| expr.evaluate(&ctx)).ok()?.ok()
    }

    fn bind(&self, more: impl IntoIterator<Item = (String, Value, Marks)>) -> Scope<'_> {
        let mut bindings = self.bindings.clone();
        bindings.extend(more);
        Scope {
            roots: self.roots,
            marks: self.marks,
            bindings,
        }
    }
}

/// The marks of the value of `expr` in `scope`.
pub(crate) fn of(expr: &Expression, scope: &Scope<'_>) -> Marks {
    match expr {
        Expression::Null | Expression::Bool(_) | Expression::Number(_) | Expression::String(_) => {
            Marks::Clear
        }
        Expression::Array(items) => Marks::items(items.iter().map(|e| of(e, scope)).collect()),
        Expression::Object(object) => {
            let mut fields = Vec::new();
            let mut keys = Marks::Clear;
            for (key, value) in object {
                let name = match key {
                    ObjectKey::Identifier(id) => id.to_string(),
                    ObjectKey::Expression(key_expr) => {
                        keys = keys.union(&of(key_expr, scope));
                        match scope.evaluate(key_expr) {
                            Some(Value::String(s)) => s,
                            Some(other) => other.to_string(),
                            None => return conservative(expr, scope),
                        }
                    }
                    _ => return conservative(expr, scope),
                };
                fields.push((name, of(value, scope)));
            }
            // A marked key hides the map it is in.
            if keys.is_clear() {
                Marks::fields(fields)
            } else {
                keys.union(&Marks::fields(fields))
            }
        }
        Expression::TemplateExpr(t) => template(t, scope),
        Expression::Variable(v) => scope.marks_of_name(v.as_str()),
        Expression::Traversal(t) => traversal(t, scope),
        Expression::FuncCall(call) => func_call(call, scope),
        Expression::Parenthesis(inner) => of(inner, scope),
        Expression::Conditional(c) => conditional(c, scope),
        Expression::Operation(op) => match op.as_ref() {
            Operation::Unary(u) => of(&u.expr, scope).whole(),
            Operation::Binary(BinaryOp {
                lhs_expr, rhs_expr, ..
            }) => of(lhs_expr, scope).union(&of(rhs_expr, scope)),
        },
        Expression::ForExpr(f) => for_expr(f, scope),
        // Expression is non-exhaustive.
        #[allow(unreachable_patterns)]
        _ => conservative(expr, scope),
    }
}

fn traversal(t: &Traversal, scope: &Scope<'_>) -> Marks {
    traverse(of(&t.expr, scope), &t.operators, scope)
}

fn traverse(marks: Marks, ops: &[TraversalOperator], scope: &Scope<'_>) -> Marks {
    let Some((op, rest)) = ops.split_first() else {
        return marks;
    };
    if let Marks::Sensitive(_) = marks {
        return marks;
    }
    match op {
        TraversalOperator::GetAttr(name) => traverse(marks.attr(name.as_str()), rest, scope),
        TraversalOperator::LegacyIndex(i) => traverse(marks.index(*i as usize), rest, scope),
        TraversalOperator::Index(key) => {
            let key_marks = of(key, scope);
            if !key_marks.is_clear() {
                // Which element was taken is itself sensitive.
                return key_marks.union(&marks);
            }
            let next = match scope.evaluate(key) {
                Some(Value::Number(n)) => match n.as_u64() {
                    Some(i) => marks.index(i as usize),
                    None => marks.whole(),
                },
                Some(Value::String(s)) => marks.attr(&s),
                _ => marks.whole(),
            };
            traverse(next, rest, scope)
        }
        TraversalOperator::AttrSplat | TraversalOperator::FullSplat => match marks {
            Marks::Items(items) => Marks::items(
                items
                    .into_iter()
                    .map(|m| traverse(m, rest, scope))
                    .collect(),
            ),
            // A splat of one value (not a list) is a list of it.
            Marks::Fields(_) => Marks::items(vec![traverse(marks, rest, scope)]),
            other => other,
        },
    }
}

fn func_call(call: &FuncCall, scope: &Scope<'_>) -> Marks {
    let args: Vec<Marks> = call.args.iter().map(|a| of(a, scope)).collect();
    let all = || args.iter().fold(Marks::Clear, |acc, m| acc.union(m));
    match call.name.name.as_str() {
        "sensitive" => all().union(&Marks::sensitive("sensitive()")),
        "nonsensitive" => Marks::Clear,
        // `try` and `can` (config::rewrite): the scope object, then the
        // indexes of the arguments set aside.
        super::rewrite::TRY | super::rewrite::CAN => {
            let frame = super::lazy::current();
            let thunks = call.args.iter().skip(1).map(|id| match id {
                Expression::Number(n) => n.as_u64().and_then(|i| frame.thunks.get(i as usize)),
                _ => None,
            });
            thunks.fold(Marks::Clear, |acc, t| match t {
                Some(t) => acc.union(&of(t, scope)),
                None => acc.union(&Marks::sensitive("try()")),
            })
        }
        // Collections put together keep each part's marks, unless a whole
        // argument is marked (its keys or length would show otherwise).
        "merge" if !call.expand_final && !args.iter().any(is_wholly_marked) => {
            let mut fields: BTreeMap<String, Marks> = BTreeMap::new();
            for (arg, marks) in call.args.iter().zip(&args) {
                match scope.evaluate(arg) {
                    Some(Value::Object(map)) => {
                        for key in map.keys() {
                            fields.insert(key.clone(), marks.attr(key));
                        }
                    }
                    Some(Value::Null) => {}
                    _ => return all(),
                }
            }
            Marks::fields(fields)
        }
        "concat" if !call.expand_final && !args.iter().any(is_wholly_marked) => {
            let mut items = Vec::new();
            for (arg, marks) in call.args.iter().zip(&args) {
                match scope.evaluate(arg) {
                    Some(Value::Array(list)) => {
                        items.extend((0..list.len()).map(|i| marks.index(i)));
                    }
                    _ => return all(),
                }
            }
            Marks::items(items)
        }
        _ => all(),
    }
}

fn is_wholly_marked(marks: &Marks) -> bool {
    matches!(marks, Marks::Sensitive(_))
}

fn conditional(c: &Conditional, scope: &Scope<'_>) -> Marks {
    let cond = of(&c.cond_expr, scope);
    if !cond.is_clear() {
        // Which branch was taken is itself sensitive.
        return cond
            .union(&of(&c.true_expr, scope))
            .union(&of(&c.false_expr, scope));
    }
    match scope.evaluate(&c.cond_expr) {
        Some(Value::Bool(true)) => of(&c.true_expr, scope),
        Some(Value::Bool(false)) => of(&c.false_expr, scope),
        _ => of(&c.true_expr, scope).union(&of(&c.false_expr, scope)),
    }
}

fn for_expr(f: &ForExpr, scope: &Scope<'_>) -> Marks {
    let collection = of(&f.collection_expr, scope);
    if let Marks::Sensitive(_) = collection {
        return collection;
    }
    let elements: Vec<(Value, Value, Marks)> = match scope.evaluate(&f.collection_expr) {
        Some(Value::Array(items)) => items
            .into_iter()
            .enumerate()
            .map(|(i, v)| {
                (
                    Value::Number(hcl::Number::from(i as u64)),
                    v,
                    collection.index(i),
                )
            })
            .collect(),
        Some(Value::Object(map)) => map
            .into_iter()
            .map(|(k, v)| {
                let m = collection.attr(&k);
                (Value::String(k), v, m)
            })
            .collect(),
        _ => return conservative(&Expression::ForExpr(Box::new(f.clone())), scope),
    };
    let mut items = Vec::new();
    let mut groups: BTreeMap<String, Vec<Marks>> = BTreeMap::new();
    let mut hidden = Marks::Clear;
    for (key, value, marks) in elements {
        let mut bound = vec![(f.value_var.to_string(), value, marks)];
        if let Some(k) = &f.key_var {
            bound.insert(0, (k.to_string(), key, Marks::Clear));
        }
        let inner = scope.bind(bound);
        if let Some(cond) = &f.cond_expr {
            let m = of(cond, &inner);
            hidden = hidden.union(&m);
            if let Some(Value::Bool(false)) = inner.evaluate(cond) {
                continue;
            }
        }
        let value_marks = of(&f.value_expr, &inner);
        match &f.key_expr {
            None => items.push(value_marks),
            Some(key_expr) => {
                hidden = hidden.union(&of(key_expr, &inner));
                let name = match inner.evaluate(key_expr) {
                    Some(Value::String(s)) => s,
                    Some(other) => other.to_string(),
                    None => return conservative(&Expression::ForExpr(Box::new(f.clone())), scope),
                };
                groups.entry(name).or_default().push(value_marks);
            }
        }
    }
    let result = match (&f.key_expr, f.grouping) {
        (None, _) => Marks::items(items),
        (Some(_), true) => Marks::fields(groups.into_iter().map(|(k, v)| (k, Marks::items(v)))),
        (Some(_), false) => Marks::fields(
            groups
                .into_iter()
                .map(|(k, mut v)| (k, v.pop().unwrap_or_default())),
        ),
    };
    // A marked condition or key decides what the result holds: all of it is
    // sensitive then.
    if hidden.is_clear() {
        result
    } else {
        hidden.union(&result)
    }
}

fn template(t: &TemplateExpr, scope: &Scope<'_>) -> Marks {
    match Template::from_expr(t) {
        Ok(parsed) => template_marks(&parsed, scope),
        Err(_) => Marks::Clear,
    }
}

/// A string built from a template is one value: marked when any part of
/// what it interpolates is.
fn template_marks(t: &Template, scope: &Scope<'_>) -> Marks {
    let mut marks = Marks::Clear;
    for element in t.elements() {
        let m = match element {
            Element::Literal(_) => Marks::Clear,
            Element::Interpolation(i) => of(&i.expr, scope),
            Element::Directive(d) => match d.as_ref() {
                Directive::If(d) => {
                    let mut m =
                        of(&d.cond_expr, scope).union(&template_marks(&d.true_template, scope));
                    if let Some(f) = &d.false_template {
                        m = m.union(&template_marks(f, scope));
                    }
                    m
                }
                Directive::For(d) => {
                    let collection = of(&d.collection_expr, scope);
                    let mut bound =
                        vec![(d.value_var.to_string(), Value::Null, collection.whole())];
                    if let Some(k) = &d.key_var {
                        bound.push((k.to_string(), Value::Null, Marks::Clear));
                    }
                    collection.union(&template_marks(&d.template, &scope.bind(bound)))
                }
            },
        };
        marks = marks.union(&m);
    }
    marks
}

/// The marks of `expr` when it cannot be followed value by value: those of
/// everything it refers to (following attribute names and literal indices),
/// as a whole.
fn conservative(expr: &Expression, scope: &Scope<'_>) -> Marks {
    match expr {
        Expression::Variable(v) => scope.marks_of_name(v.as_str()).whole(),
        Expression::Traversal(t) => {
            let mut marks = of_static(&t.expr, scope);
            for op in &t.operators {
                marks = match op {
                    TraversalOperator::GetAttr(name) => marks.attr(name.as_str()),
                    TraversalOperator::LegacyIndex(i) => marks.index(*i as usize),
                    TraversalOperator::Index(Expression::Number(n)) => n
                        .as_u64()
                        .map_or_else(|| marks.whole(), |i| marks.index(i as usize)),
                    TraversalOperator::Index(Expression::String(s)) => marks.attr(s),
                    TraversalOperator::Index(key) => {
                        return marks.union(&conservative(key, scope));
                    }
                    TraversalOperator::AttrSplat | TraversalOperator::FullSplat => {
                        return marks.whole();
                    }
                };
            }
            marks.whole()
        }
        other => {
            let mut marks = Marks::Clear;
            for child in children(other) {
                marks = marks.union(&conservative(child, scope));
            }
            marks
        }
    }
}

fn of_static(expr: &Expression, scope: &Scope<'_>) -> Marks {
    match expr {
        Expression::Variable(v) => scope.marks_of_name(v.as_str()),
        other => conservative(other, scope),
    }
}

/// The sub-expressions of `expr` (for templates: every expression in them).
fn children(expr: &Expression) -> Vec<&Expression> {
    match expr {
        Expression::Array(items) => items.iter().collect(),
        Expression::Object(o) => o
            .iter()
            .flat_map(|(k, v)| match k {
                ObjectKey::Expression(k) => vec![k, v],
                _ => vec![v],
            })
            .collect(),
        Expression::Traversal(t) => vec![&t.expr],
        Expression::FuncCall(c) => c.args.iter().collect(),
        Expression::Parenthesis(e) => vec![e],
        Expression::Conditional(c) => vec![&c.cond_expr, &c.true_expr, &c.false_expr],
        Expression::Operation(op) => match op.as_ref() {
            Operation::Unary(u) => vec![&u.expr],
            Operation::Binary(b) => vec![&b.lhs_expr, &b.rhs_expr],
        },
        Expression::ForExpr(f) => {
            let mut out = vec![&f.collection_expr, &f.value_expr];
            out.extend(f.key_expr.iter());
            out.extend(f.cond_expr.iter());
            out
        }
        _ => vec![],
    }
}

#[cfg(test)]
#[path = "marks_tests.rs"]
mod tests;

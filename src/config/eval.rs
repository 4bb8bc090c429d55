//! Evaluating one expression at a time, with hcl-rs.
//!
//! hcl-rs errors carry no position, so each attribute is evaluated alone and
//! its errors are reported at its own span. The context for one evaluation
//! holds only the values that expression refers to (found by [`refs::scan`]),
//! so evaluating N attributes costs N small contexts rather than one context
//! that grows with the configuration.

use std::cell::Cell;
use std::collections::{BTreeMap, BTreeSet};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::Once;

use hcl::{Map, Value};
use hcl_edit::expr::Expression;
use hcl_edit::Span as _;

use super::diag::Diagnostic;
use super::lazy::{self, Frame};
use super::marks::{self, Marks};
use super::model::{Address, Span};
use super::refs::{self, Scan};
use super::rewrite;
use super::source::{did_you_mean, SourceMap};

/// An evaluated expression.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Evaluated {
    /// The value.
    pub value: Value,
    /// Which parts of it are sensitive (config::marks).
    pub marks: Marks,
}

/// Evaluates expressions against the values of the blocks evaluated so far,
/// collecting diagnostics.
pub(crate) struct Evaluator<'m> {
    /// Spans and source lines.
    pub map: &'m SourceMap,
    /// Every declared address: a reference to anything else is undefined.
    pub declared: BTreeSet<Address>,
    /// The value of every block evaluated so far; a declared address with no
    /// value has failed, and what depends on it is skipped silently.
    pub values: BTreeMap<Address, Value>,
    /// The marks of every value evaluated so far that has any (a sensitive
    /// variable, a value computed from one); absent means clear.
    pub marks: BTreeMap<Address, Marks>,
    /// Every problem found.
    pub diags: Vec<Diagnostic>,
    /// The configuration directory, against which relative file paths in
    /// attributes (`ca_file`) resolve.
    pub dir: PathBuf,
    /// The instance of a block with `for_each` or `count` being evaluated:
    /// what `each` or `count` is.
    pub instance: Option<super::instances::Instance>,
    /// The blocks with `for_each` or `count` evaluated so far, and their
    /// instances' keys.
    pub expanded: super::instances::Keys,
}

impl<'m> Evaluator<'m> {
    /// A new evaluator over the files in `map`.
    pub(crate) fn new(map: &'m SourceMap) -> Self {
        Evaluator {
            map,
            declared: BTreeSet::new(),
            values: BTreeMap::new(),
            marks: BTreeMap::new(),
            diags: Vec::new(),
            dir: PathBuf::new(),
            instance: None,
            expanded: BTreeMap::new(),
        }
    }

    /// Record the marks of the value of `addr` (nothing when clear).
    pub(crate) fn marks_insert(&mut self, addr: Address, marks: Marks) {
        if !marks.is_clear() {
            self.marks.insert(addr, marks);
        }
    }

    /// The span of `expr` in `file`.
    pub(crate) fn span_of(&self, file: &Path, expr: &Expression) -> Span {
        self.map.span(file, expr.span().unwrap_or(0..0))
    }

    /// Report `message` at `span`.
    pub(crate) fn error(&mut self, span: &Span, message: impl Into<String>) {
        let d = self.map.diag(span, message);
        self.diags.push(d);
    }

    /// Report `message` at `span`, with a hint.
    pub(crate) fn error_help(
        &mut self,
        span: &Span,
        message: impl Into<String>,
        help: impl Into<String>,
    ) {
        let d = self.map.diag(span, message).with_help(help);
        self.diags.push(d);
    }

    /// Evaluate `expr`, written in `file`. `None` when it failed (reported)
    /// or depends on a block that failed (already reported there).
    pub(crate) fn eval(&mut self, file: &Path, expr: &Expression) -> Option<Evaluated> {
        if let Some(value) = super::literal::value(expr) {
            return Some(Evaluated {
                value,
                marks: Marks::Clear,
            });
        }
        let scan = refs::scan(expr);
        let roots = self.roots(file, &scan)?;
        // The roots are kept for the marks only when there are marks.
        let marked = self.marked_roots(&scan).map(|m| (m, roots.clone()));
        // Maps iterate in key order, as Terraform's (config::key_order).
        let mut sorted = expr.clone();
        super::key_order::sort_literals(&mut sorted);
        let prepared = rewrite::prepare(sorted);
        let span = self.span_of(file, expr);
        let frame = Frame {
            vars: match prepared.thunks.is_empty() {
                true => Vec::new(),
                false => roots
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.clone()))
                    .collect(),
            },
            thunks: prepared.thunks.clone(),
            dir: scan.reads_files.then(|| Rc::from(self.dir.as_path())),
            in_template: false,
        };
        let result = lazy::with_frame(frame, || {
            let value = lazy::evaluate(&prepared, roots, &scan.functions)?;
            let marks = marked.map_or(Marks::Clear, |(marks, roots)| {
                let scope = marks::Scope {
                    roots: &roots,
                    marks: &marks,
                    bindings: Vec::new(),
                };
                marks::of(&prepared.expr, &scope)
            });
            Ok::<_, lazy::Failure>((value, marks))
        });
        match result {
            Ok((mut value, marks)) => {
                super::key_order::sort_value(&mut value);
                Some(Evaluated { value, marks })
            }
            Err(failure) => {
                let message = self.shown_error(file, &scan, &short_values(&failure.message));
                // An error that knows its place (an operator's) is shown
                // there, with nothing more to say where.
                match failure.range.filter(|r| r.end > r.start) {
                    Some(r) => {
                        let span = self.map.span(file, r);
                        self.error(&span, message);
                    }
                    None => {
                        self.error(&span, format!("cannot evaluate this expression: {message}"))
                    }
                }
                None
            }
        }
    }

    /// The marks of the roots `scan` refers to (`var` with the marks of
    /// each variable, ...), when the marks of its value must be computed:
    /// only when it refers to something marked or calls `sensitive()`, so
    /// that a configuration without secrets pays nothing for them.
    fn marked_roots(&self, scan: &Scan) -> Option<BTreeMap<&'static str, Marks>> {
        let mut fields: BTreeMap<&'static str, BTreeMap<String, Marks>> = BTreeMap::new();
        for r in &scan.refs {
            if let Some(m) = self.marks.get(&r.addr) {
                let (root, name) = split_address(&r.addr);
                fields
                    .entry(root)
                    .or_default()
                    .insert(name.to_owned(), m.clone());
            }
        }
        if fields.is_empty() && !scan.marks_values {
            return None;
        }
        Some(
            fields
                .into_iter()
                .map(|(root, f)| (root, Marks::fields(f)))
                .collect(),
        )
    }

    /// hcl-rs's error `message` for an expression of `file`, as it may be
    /// shown: hcl-rs quotes values and the expression's text, so the text
    /// of a sensitive value it refers to is replaced by its marker, and an
    /// expression of a var file (whose lines are never quoted) is not shown.
    fn shown_error(&self, file: &Path, scan: &Scan, message: &str) -> String {
        if self.map.is_unquoted(file) {
            return "its text is not shown (a var file holds values, sensitive ones too)"
                .to_owned();
        }
        let mut texts = BTreeSet::new();
        for r in &scan.refs {
            if let (Some(m), Some(v)) = (self.marks.get(&r.addr), self.values.get(&r.addr)) {
                m.texts(&to_json(v), &mut texts);
            }
        }
        let mut texts: Vec<String> = texts.into_iter().filter(|t| !t.is_empty()).collect();
        texts.sort_by_key(|t| std::cmp::Reverse(t.len()));
        texts.iter().fold(message.to_owned(), |m, t| {
            m.replace(t.as_str(), &marks::marker(t))
        })
    }

    /// Report unknown names and undefined references; the values of the
    /// roots `scan` refers to (`var`, `local`, ...), holding only what it
    /// refers to.
    fn roots(&mut self, file: &Path, scan: &Scan) -> Option<BTreeMap<&'static str, Value>> {
        let mut ok = true;
        for p in &scan.problems {
            let span = self.map.span(file, p.range.clone());
            let mut d = self.map.diag(&span, p.message.clone());
            d.help = p.help.clone();
            self.diags.push(d);
            ok = false;
        }
        let mut roots: BTreeMap<&'static str, Map<String, Value>> = BTreeMap::new();
        for m in &scan.meta {
            match self.instance.as_ref().and_then(|i| i.meta(m.root)) {
                Some(fields) => {
                    roots.insert(m.root, fields);
                }
                None => {
                    let span = self.map.span(file, m.range.clone());
                    let message = match m.root {
                        "each" => {
                            "`each.key` and `each.value` exist only in a block with `for_each`"
                        }
                        _ => "`count.index` exists only in a block with `count`",
                    };
                    self.error_help(
                        &span,
                        message,
                        "they are the instance's key and value, in the arguments of an environment or router block that makes several",
                    );
                    ok = false;
                }
            }
        }
        for r in &scan.refs {
            if !self.declared.contains(&r.addr) {
                let span = self.map.span(file, r.range.clone());
                self.undefined(&span, &r.addr);
                ok = false;
                continue;
            }
            let Some(value) = self.values.get(&r.addr) else {
                ok = false;
                continue;
            };
            let (root, name) = split_address(&r.addr);
            // Another reference to the same block has put it there (the
            // same part: every reference to it reaches the same instance,
            // or it is whole).
            if roots.get(root).is_some_and(|m| m.contains_key(name)) {
                continue;
            }
            let part = self
                .instance_reached(scan, r)
                .and_then(|key| one_instance(value, key));
            roots
                .entry(root)
                .or_default()
                .insert(name.to_string(), part.unwrap_or_else(|| value.clone()));
        }
        if !ok {
            return None;
        }
        Some(
            roots
                .into_iter()
                .map(|(root, members)| (root, Value::Object(members)))
                .collect(),
        )
    }

    /// The one instance of block `r.addr` that every reference of `scan`
    /// to that block reaches (`environment.blue[each.key]`, or
    /// `environment.blue["api"]`), or `None` when one of them may reach any
    /// (`environment.blue`, `environment.blue[local.k]`): only that
    /// instance then goes into the context. Putting the whole block there
    /// made N instances that refer to their own key cost O(N²): each one's
    /// context held a copy of all N.
    fn instance_reached<'s>(
        &'s self,
        scan: &'s Scan,
        r: &'s refs::RefSite,
    ) -> Option<&'s cutover_provider::name::InstanceKey> {
        let key_of = |site: &'s refs::RefSite| match &site.key {
            refs::RefKey::Any => None,
            refs::RefKey::Own => self.instance.as_ref().map(|i| &i.key),
            refs::RefKey::Literal(k) => Some(k),
        };
        let key = key_of(r)?;
        scan.refs
            .iter()
            .filter(|other| other.addr == r.addr)
            .all(|other| key_of(other) == Some(key))
            .then_some(key)
    }

    /// Report a reference to something not declared, suggesting a close name.
    pub(crate) fn undefined(&mut self, span: &Span, addr: &Address) {
        let (root, name) = split_address(addr);
        let same_kind: Vec<&str> = self
            .declared
            .iter()
            .map(split_address)
            .filter(|(r, _)| *r == root)
            .map(|(_, n)| n)
            .collect();
        let kind = match root {
            "var" => "variable",
            "local" => "local value",
            other => other,
        };
        let message = format!("undefined {kind} `{addr}`");
        match did_you_mean(name, same_kind.iter().copied()) {
            Some(help) => {
                self.error_help(span, message, help.replacen('`', &format!("`{root}."), 1))
            }
            None => self.error(span, message),
        }
    }
}

/// The value of block `whole` as an expression that reaches only its
/// instance `key` sees it: a map holding only that instance (`for_each`),
/// or a list in which it is at its index, every other element null
/// (`count`; nulls are cheap to make, and the index stays the same).
/// `None` when `whole` has no such instance, so that the expression fails
/// on the whole value, with the same error as before.
fn one_instance(whole: &Value, key: &cutover_provider::name::InstanceKey) -> Option<Value> {
    use cutover_provider::name::InstanceKey;
    let part = match (whole, key) {
        (Value::Object(all), InstanceKey::Str(k)) => {
            let one = all.get(k)?;
            Value::Object(Map::from_iter([(k.clone(), one.clone())]))
        }
        (Value::Array(all), InstanceKey::Index(i)) => {
            let i = usize::try_from(*i).ok()?;
            let one = all.get(i)?;
            let mut items = vec![Value::Null; i];
            items.push(one.clone());
            Value::Array(items)
        }
        _ => return None,
    };
    Some(part)
}

/// How many lines of a value an error quotes before it says how many more
/// there are.
const QUOTED_LINES: usize = 4;

/// `message` with every value it quotes between backticks cut to a few
/// lines: hcl-rs quotes whole values, and one wrong call on a list of 1,000
/// elements made an error of 1,006 lines.
pub(crate) fn short_values(message: &str) -> String {
    let mut out = String::new();
    for (i, part) in message.split('`').enumerate() {
        if i > 0 {
            out.push('`');
        }
        let lines: Vec<&str> = part.lines().collect();
        // Odd parts are quoted; a quote of a few lines stays as it is, but
        // for a line too long to read (a value or expression on one line).
        if i % 2 == 0 {
            out.push_str(part);
            continue;
        }
        if lines.len() <= QUOTED_LINES + 2 {
            out.push_str(&short_line(part));
            continue;
        }
        let (head, rest) = lines.split_at(QUOTED_LINES);
        let (hidden, last) = rest.split_at(rest.len() - 1);
        let head: Vec<String> = head.iter().map(|l| short_line(l)).collect();
        out.push_str(&head.join("\n"));
        out.push_str(&format!("\n  ... ({} more elements)\n", hidden.len()));
        out.push_str(last[0]);
    }
    out
}

/// How many characters of one quoted line an error shows.
const QUOTED_CHARS: usize = 200;

/// `text` with each line over [`QUOTED_CHARS`] cut, saying how much more
/// there is.
fn short_line(text: &str) -> String {
    let cut = |line: &str| {
        let n = line.chars().count();
        if n <= QUOTED_CHARS {
            return line.to_owned();
        }
        let head: String = line.chars().take(QUOTED_CHARS).collect();
        format!("{head}... ({} more characters)", n - QUOTED_CHARS)
    };
    text.split('\n').map(cut).collect::<Vec<_>>().join("\n")
}

thread_local! {
    /// Set while this thread evaluates under [`guarded`].
    static GUARDED: Cell<bool> = const { Cell::new(false) };
}

/// Run `f`, turning a panic into `Err`. hcl-rs panics on some arithmetic
/// (`x % 0`, integer overflow); such a panic is caught here and reported as
/// a diagnostic, without the panic message that the default hook would
/// print. Only this thread, only while in `f`, is kept quiet.
pub(crate) fn guarded<T>(f: impl FnOnce() -> T) -> Result<T, ()> {
    static QUIET_HOOK: Once = Once::new();
    QUIET_HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !GUARDED.with(Cell::get) {
                previous(info);
            }
        }));
    });
    // Nested (a `try` inside an evaluation): the outer one stays quiet.
    let outer = GUARDED.with(|g| g.replace(true));
    let result = catch_unwind(AssertUnwindSafe(f));
    GUARDED.with(|g| g.set(outer));
    result.map_err(|_| ())
}

/// `var.x` -> ("var", "x"): the variable and key an address is found under
/// in an evaluation context.
pub(crate) fn split_address(addr: &Address) -> (&'static str, &str) {
    match addr {
        Address::Variable(n) => ("var", n),
        Address::Local(n) => ("local", n),
        Address::Environment(n) => ("environment", n),
        Address::Router(n) => ("router", n),
        Address::Output(n) => ("output", n),
    }
}

/// An hcl value as JSON.
pub(crate) fn to_json(value: &Value) -> serde_json::Value {
    serde_json::to_value(value).unwrap_or(serde_json::Value::Null)
}

/// A JSON value as an hcl value.
pub(crate) fn from_json(value: &serde_json::Value) -> Value {
    hcl::to_value(value).unwrap_or(Value::Null)
}

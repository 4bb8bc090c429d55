//! Evaluating a prepared expression (config::rewrite) with hcl-rs, and the
//! functions that need more than the values of their arguments: `try` and
//! `can` evaluate their arguments themselves, one by one, and `file`,
//! `fileexists` and `templatefile` read the configuration directory.
//!
//! A function of hcl-rs is a plain `fn(FuncArgs)`: it cannot capture what it
//! needs. So each evaluation runs inside a [`Frame`], kept on a per-thread
//! stack, that holds the values the expression's thunks see, the thunks
//! themselves and the configuration directory. A frame is pushed by
//! [`with_frame`] and popped when it returns, a panic included, so that a
//! `templatefile` inside a `try` (each pushing its own) leaves the stack as
//! it found it.

use std::cell::RefCell;
use std::path::Path;
use std::rc::Rc;

use hcl::eval::{Context, ErrorKind, Evaluate, FuncArgs};
use hcl::Value;

use super::functions::{self, operators};
use super::rewrite::{self, Prepared, CAN, TRY};

/// What the functions of one evaluation can see.
#[derive(Debug, Default)]
pub(crate) struct Frame {
    /// The names a thunk is evaluated with, besides the names its `for`s
    /// bind: the roots (`var`, `local`, ...), or a template's variables.
    pub vars: Vec<(String, Value)>,
    /// The unevaluated arguments of `try` and `can`.
    pub thunks: Vec<hcl::Expression>,
    /// The configuration directory, when the expression reads files.
    pub dir: Option<Rc<Path>>,
    /// Inside a template of `templatefile` (which may not call itself).
    pub in_template: bool,
}

thread_local! {
    static FRAMES: RefCell<Vec<Rc<Frame>>> = const { RefCell::new(Vec::new()) };
}

/// Run `f` with `frame` as the current frame.
pub(crate) fn with_frame<T>(frame: Frame, f: impl FnOnce() -> T) -> T {
    struct Pop;
    impl Drop for Pop {
        fn drop(&mut self) {
            FRAMES.with(|s| s.borrow_mut().pop());
        }
    }
    FRAMES.with(|s| s.borrow_mut().push(Rc::new(frame)));
    let _pop = Pop;
    f()
}

/// The current frame (a default one outside any evaluation).
pub(crate) fn current() -> Rc<Frame> {
    FRAMES
        .with(|s| s.borrow().last().cloned())
        .unwrap_or_default()
}

/// Why an evaluation failed, as it may be reported.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Failure {
    /// What went wrong.
    pub message: String,
    /// Where, when the error knows (an operator's): a byte range of the
    /// expression's file.
    pub range: Option<std::ops::Range<usize>>,
}

/// Evaluate `prepared` with `vars` declared and the functions `calls` (and
/// the internal functions it calls), in the current frame.
pub(crate) fn evaluate<'a>(
    prepared: &Prepared,
    vars: impl IntoIterator<Item = (&'a str, Value)>,
    calls: &[&str],
) -> Result<Value, Failure> {
    let mut ctx = Context::new();
    functions::declare_only(&mut ctx, calls);
    functions::declare_only(&mut ctx, &prepared.internal);
    for (name, value) in vars {
        ctx.declare_var(name, value);
    }
    run(&prepared.expr, &ctx, &prepared.thunks)
}

/// Evaluate `prepared`, which refers to no variables, in a frame of its own
/// (a `--var` value written in HCL, a test's expression).
pub(crate) fn evaluate_alone(prepared: &Prepared, calls: &[&str]) -> Result<Value, Failure> {
    let frame = Frame {
        thunks: prepared.thunks.clone(),
        ..Frame::default()
    };
    with_frame(frame, || evaluate(prepared, [], calls))
}

/// Evaluate `expr` in `ctx`, a panic of hcl-rs's caught.
fn run(
    expr: &hcl::Expression,
    ctx: &Context<'_>,
    thunks: &[hcl::Expression],
) -> Result<Value, Failure> {
    match super::eval::guarded(|| expr.evaluate(ctx)) {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(e)) => Err(describe(&e, thunks)),
        Err(()) => Err(Failure {
            message: "cannot evaluate this expression (an arithmetic error in hcl-rs)".into(),
            range: None,
        }),
    }
}

/// hcl-rs's error as cutover reports it: an internal function's error as
/// what it stands for, and the expression it quotes as it was written.
pub(crate) fn describe(e: &hcl::eval::Error, thunks: &[hcl::Expression]) -> Failure {
    let (range, message) = match e.kind() {
        ErrorKind::FuncCall(name, msg) if operators::symbol(name.name.as_str()).is_some() => {
            let (range, text) = operators::split_located(msg);
            (range, text.to_owned())
        }
        ErrorKind::FuncCall(name, msg) if [TRY, CAN].contains(&name.name.as_str()) => {
            let public = &name.name.as_str()[2..];
            (None, format!("error calling function `{public}`: {msg}"))
        }
        other => (None, other.to_string()),
    };
    let message = match e.expr() {
        Some(expr) if range.is_none() => {
            format!(
                "{message} in expression `{}`",
                rewrite::restore(expr, thunks)
            )
        }
        _ => message,
    };
    Failure { message, range }
}

/// Evaluate thunk `id` of the current frame with the names in `scope`.
fn thunk(frame: &Frame, scope: &Value, id: &Value) -> Result<Value, Failure> {
    let expr = id
        .as_u64()
        .and_then(|i| frame.thunks.get(i as usize))
        .ok_or_else(|| Failure {
            message: "internal error: an unknown argument".into(),
            range: None,
        })?;
    let mut ctx = Context::new();
    functions::declare(&mut ctx);
    for (name, value) in &frame.vars {
        ctx.declare_var(name.as_str(), value.clone());
    }
    for (name, value) in scope.as_object().into_iter().flatten() {
        ctx.declare_var(name.as_str(), value.clone());
    }
    run(expr, &ctx, &frame.thunks)
}

/// `try(a, b, ...)`: the value of the first argument that evaluates
/// without an error.
pub(super) fn try_(args: FuncArgs) -> Result<Value, String> {
    let frame = current();
    let mut errors = Vec::new();
    for id in args.iter().skip(1) {
        match thunk(&frame, &args[0], id) {
            Ok(value) => return Ok(value),
            Err(f) => errors.push(format!("- {}", f.message)),
        }
    }
    Err(format!(
        "no expression succeeded:\n{}\nAt least one expression must produce a successful result.",
        errors.join("\n")
    ))
}

/// `can(a)`: whether `a` evaluates without an error.
pub(super) fn can(args: FuncArgs) -> Result<Value, String> {
    let frame = current();
    let ok = args
        .iter()
        .skip(1)
        .all(|id| thunk(&frame, &args[0], id).is_ok());
    Ok(Value::Bool(ok))
}

//! The shape of the language: which blocks exist, which labels and arguments
//! each takes. Checked before evaluation so that a misspelt name is reported
//! with a suggestion, and later stages can rely on the shape.

use std::collections::BTreeMap;
use std::path::Path;

use hcl_edit::structure::{Attribute, Block, Body};
use hcl_edit::Span as _;

use super::diag::Diagnostic;
use super::model::Span;
use super::parse::File;
use super::source::{did_you_mean, SourceMap};

/// The top-level block types.
pub(crate) const BLOCK_TYPES: &[&str] = &[
    "variable",
    "locals",
    "environment",
    "router",
    "output",
    "notify",
    "cutover",
    "moved",
];

/// A labelled top-level block (or one instance of a block with `for_each`
/// or `count`, whose name is the instance's: config::instances).
#[derive(Clone)]
pub(crate) struct Decl<'a> {
    /// The label.
    pub name: String,
    /// The file it is in.
    pub file: &'a Path,
    /// The block.
    pub block: &'a Block,
    /// The span of the header (`environment "blue"`).
    pub span: Span,
}

/// One attribute of a `locals` block.
pub(crate) struct LocalDecl<'a> {
    /// The file it is in.
    pub file: &'a Path,
    /// The attribute.
    pub attr: &'a Attribute,
    /// The span of the attribute's key.
    pub span: Span,
}

/// Every top-level declaration, by kind and name (duplicates already reported).
#[derive(Default)]
pub(crate) struct Decls<'a> {
    pub variables: BTreeMap<String, Decl<'a>>,
    pub locals: BTreeMap<String, LocalDecl<'a>>,
    pub environments: BTreeMap<String, Decl<'a>>,
    pub routers: BTreeMap<String, Decl<'a>>,
    pub outputs: BTreeMap<String, Decl<'a>>,
    pub notify: BTreeMap<String, Decl<'a>>,
    pub settings: Option<Decl<'a>>,
    /// `moved {}` blocks, in the order written.
    pub moved: Vec<Decl<'a>>,
}

/// The allowed content of a block body.
pub(crate) struct Schema<'s> {
    /// What the body belongs to, for messages: `environment "blue"`.
    pub what: &'s str,
    /// Allowed arguments.
    pub attrs: &'s [&'s str],
    /// Arguments that must be present.
    pub required: &'s [&'s str],
    /// Allowed nested blocks.
    pub blocks: &'s [&'s str],
}

/// The span of a block's header: its type and labels.
pub(crate) fn header_span(map: &SourceMap, file: &Path, block: &Block) -> Span {
    let start = block.ident.span().or(block.span()).map_or(0, |r| r.start);
    let end = block
        .labels
        .last()
        .and_then(|l| l.span())
        .or(block.ident.span())
        .map_or(start, |r| r.end);
    map.span(file, start..end)
}

/// The span of an attribute's key.
pub(crate) fn key_span(map: &SourceMap, file: &Path, attr: &Attribute) -> Span {
    let range = attr.key.span().or(attr.span()).unwrap_or(0..0);
    map.span(file, range)
}

/// Sort every top-level block of `files` by kind, reporting unknown blocks,
/// wrong labels and duplicate names.
pub(crate) fn classify<'a>(
    files: &'a [File],
    map: &SourceMap,
    diags: &mut Vec<Diagnostic>,
) -> Decls<'a> {
    let mut decls = Decls::default();
    for file in files {
        for structure in file.body.iter() {
            if let Some(attr) = structure.as_attribute() {
                let span = key_span(map, &file.name, attr);
                diags.push(
                    map.diag(
                        &span,
                        format!(
                            "unexpected argument `{}` outside any block",
                            attr.key.as_str()
                        ),
                    )
                    .with_help(format!(
                        "arguments belong inside a block: {}",
                        BLOCK_TYPES.join(", ")
                    )),
                );
            } else if let Some(block) = structure.as_block() {
                classify_block(&mut decls, &file.name, block, map, diags);
            }
        }
    }
    decls
}

fn classify_block<'a>(
    decls: &mut Decls<'a>,
    file: &'a Path,
    block: &'a Block,
    map: &SourceMap,
    diags: &mut Vec<Diagnostic>,
) {
    let kind = block.ident.as_str();
    let span = header_span(map, file, block);
    let wants_label = !matches!(kind, "locals" | "cutover" | "moved");
    if !BLOCK_TYPES.contains(&kind) {
        let help = did_you_mean(kind, BLOCK_TYPES.iter().copied())
            .unwrap_or_else(|| format!("the block types are: {}", BLOCK_TYPES.join(", ")));
        let ident = map.span_or(file, block.ident.span(), &span);
        diags.push(
            map.diag(&ident, format!("unknown block type `{kind}`"))
                .with_help(help),
        );
        return;
    }
    if wants_label != (block.labels.len() == 1) || block.labels.len() > 1 {
        let msg = if wants_label {
            format!("a `{kind}` block takes exactly one label, its name")
        } else {
            format!("a `{kind}` block takes no labels")
        };
        let help = if wants_label {
            format!("write: {kind} \"NAME\" {{ ... }}")
        } else {
            format!("write: {kind} {{ ... }}")
        };
        diags.push(map.diag(&span, msg).with_help(help));
        return;
    }
    let decl = |name: String| Decl {
        name,
        file,
        block,
        span: span.clone(),
    };
    match kind {
        "locals" => classify_locals(decls, file, &block.body, map, diags),
        "moved" => decls.moved.push(decl(String::new())),
        "cutover" => match &decls.settings {
            Some(first) => diags.push(map.diag(
                &span,
                format!(
                    "duplicate `cutover` block (the first is at {})",
                    at(&first.span)
                ),
            )),
            None => decls.settings = Some(decl(String::new())),
        },
        _ => {
            let name = block.labels[0].as_str().to_string();
            if matches!(kind, "environment" | "router") && !label_ok(&name) {
                let label = map.span_or(file, block.labels[0].span(), &span);
                diags.push(
                    map.diag(&label, format!("`{name}` cannot name {}", if kind == "router" { "a router" } else { "an environment" }))
                        .with_help("a name holds no brackets, quotes, dots, backslashes or spaces: those belong to the names of instances, e.g. green[\"api\"]"),
                );
                return;
            }
            let table = match kind {
                "variable" => &mut decls.variables,
                "environment" => &mut decls.environments,
                "router" => &mut decls.routers,
                "notify" => &mut decls.notify,
                _ => &mut decls.outputs,
            };
            if let Some(first) = table.get(&name) {
                diags.push(map.diag(
                    &span,
                    format!(
                        "duplicate {kind} \"{name}\" (the first is at {})",
                        at(&first.span)
                    ),
                ));
            } else {
                table.insert(name.clone(), decl(name));
            }
        }
    }
}

fn classify_locals<'a>(
    decls: &mut Decls<'a>,
    file: &'a Path,
    body: &'a Body,
    map: &SourceMap,
    diags: &mut Vec<Diagnostic>,
) {
    for structure in body.iter() {
        if let Some(attr) = structure.as_attribute() {
            let span = key_span(map, file, attr);
            let name = attr.key.as_str().to_string();
            if let Some(first) = decls.locals.get(&name) {
                diags.push(map.diag(
                    &span,
                    format!(
                        "duplicate local \"{name}\" (the first is at {})",
                        at(&first.span)
                    ),
                ));
            } else {
                decls.locals.insert(name, LocalDecl { file, attr, span });
            }
        } else if let Some(block) = structure.as_block() {
            let span = map.span_or(file, block.ident.span(), &Span::default());
            diags.push(
                map.diag(
                    &span,
                    format!("unexpected block `{}` in `locals`", block.ident.as_str()),
                )
                .with_help("a `locals` block holds only `name = value` arguments"),
            );
        }
    }
}

/// Whether an environment's or router's label can name it: not empty, and
/// none of the characters of an instance's name (cutover_provider::name).
fn label_ok(name: &str) -> bool {
    !name.is_empty()
        && !name.chars().any(|c| {
            matches!(c, '[' | ']' | '"' | '.' | '\\') || c.is_whitespace() || c.is_control()
        })
}

/// A block or an instance as messages name it: `environment "green"`, or
/// `environment.green["api"]` for an instance.
pub(crate) fn what(kind: &str, name: &str) -> String {
    match cutover_provider::name::key_of(name) {
        Some(_) => format!("{kind}.{name}"),
        None => format!("{kind} \"{name}\""),
    }
}

/// `main.hcl:3:1`
pub(crate) fn at(span: &Span) -> String {
    format!("{}:{}:{}", span.file.display(), span.line, span.column)
}

/// Check `body` against `schema`: unknown or repeated arguments, unknown
/// blocks, missing required arguments (reported at `header`).
pub(crate) fn check_body(
    map: &SourceMap,
    file: &Path,
    body: &Body,
    schema: &Schema<'_>,
    header: &Span,
    diags: &mut Vec<Diagnostic>,
) {
    let mut seen: BTreeMap<&str, Span> = BTreeMap::new();
    for structure in body.iter() {
        if let Some(attr) = structure.as_attribute() {
            let key = attr.key.as_str();
            let span = key_span(map, file, attr);
            if !schema.attrs.contains(&key) {
                diags.push(unknown(
                    map,
                    &span,
                    "argument",
                    key,
                    schema.what,
                    schema.attrs,
                ));
            } else if let Some(first) = seen.get(key) {
                diags.push(map.diag(
                    &span,
                    format!(
                        "argument `{key}` is set twice (the first is at {})",
                        at(first)
                    ),
                ));
            } else {
                seen.insert(key, span);
            }
        } else if let Some(block) = structure.as_block() {
            let kind = block.ident.as_str();
            if !schema.blocks.contains(&kind) {
                let span = map.span_or(file, block.ident.span(), header);
                let left_out = crate::registry::LEFT_OUT.iter().find(|(k, _)| *k == kind);
                diags.push(match left_out {
                    // A backend this build was made without: say how to get it.
                    Some((_, feature)) => map
                        .diag(
                            &span,
                            format!("this cutover was built without the `{kind}` backend"),
                        )
                        .with_help(format!(
                            "build cutover with its `{feature}` feature (on by default): cargo install --path . --features {feature}"
                        )),
                    None => unknown(map, &span, "block", kind, schema.what, schema.blocks),
                });
            }
        }
    }
    for required in schema.required {
        if !seen.contains_key(required) {
            diags.push(
                map.diag(
                    header,
                    format!("missing required argument `{required}` in {}", schema.what),
                )
                .with_help(format!("add `{required} = ...` to the block")),
            );
        }
    }
}

fn unknown(
    map: &SourceMap,
    span: &Span,
    thing: &str,
    name: &str,
    what: &str,
    valid: &[&str],
) -> Diagnostic {
    let help = did_you_mean(name, valid.iter().copied()).unwrap_or_else(|| {
        if valid.is_empty() {
            format!("{what} takes no {thing}s")
        } else {
            format!("the valid {thing}s are: {}", valid.join(", "))
        }
    });
    map.diag(span, format!("unknown {thing} `{name}` in {what}"))
        .with_help(help)
}

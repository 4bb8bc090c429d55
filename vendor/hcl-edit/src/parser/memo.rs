//! cutover: memoised template elements.
//!
//! A template's interpolations (`${ ... }`) and directives (`%{ ... }`) are
//! parsed by the same parsers wherever the template stands, so what they
//! parse at an offset, at a nesting depth, is always the same. The parser
//! can still reach one offset along several paths: a heredoc's body is
//! tried first, and when it fails the heredoc is taken as empty and the
//! same text is parsed again after its delimiter (where a `"` opens a
//! string template holding the same directive). When each element holds
//! the next, the work doubles with every level: a kilobyte of nested
//! heredocs and directives took seconds to refuse. Remembering each
//! element's outcome (the value or the error, how far it read, the operator
//! depth it left behind) makes every element parse once per depth.

use super::prelude::*;

use std::cell::RefCell;
use std::rc::Rc;

use fnv::FnvHashMap;
use winnow::error::ErrMode;
use winnow::stream::Location;

use crate::template::{Directive, Interpolation};

/// An element's outcome at an offset.
#[derive(Debug, Clone)]
pub(super) struct Outcome<O> {
    result: Result<O, ErrMode<ContextError>>,
    /// How many bytes past the offset the parser stood when it returned.
    consumed: usize,
    /// The operator depth its parse left in its own scope.
    operator_depth: usize,
}

type Table<O> = FnvHashMap<(usize, usize), Outcome<O>>;

/// The outcomes of one parse, shared by every copy of the parser state (the
/// state is not part of a checkpoint, so backtracking keeps them).
#[derive(Debug, Default, Clone)]
pub(super) struct Memo(Rc<Tables>);

#[derive(Debug, Default)]
pub(super) struct Tables {
    interpolations: RefCell<Table<Interpolation>>,
    directives: RefCell<Table<Directive>>,
}

pub(super) fn interpolations(tables: &Tables) -> &RefCell<Table<Interpolation>> {
    &tables.interpolations
}

pub(super) fn directives(tables: &Tables) -> &RefCell<Table<Directive>> {
    &tables.directives
}

/// Runs `parser` once per offset and nesting depth (at depth 1 and deeper);
/// later calls there get its outcome again, the input advanced as far as the
/// first call left it.
///
/// `parser` must not read the operator depth of the scope it is called in
/// (interpolations and directives parse their expressions in scopes of
/// their own), so it is run in a scope of its own, which the enclosing one
/// takes the maximum of, as [`super::nesting::operator_scope`] does.
pub(super) fn memoized<'i, O, P>(
    table: fn(&Tables) -> &RefCell<Table<O>>,
    mut parser: P,
) -> impl ModalParser<Input<'i>, O, ContextError>
where
    O: Clone,
    P: ModalParser<Input<'i>, O, ContextError>,
{
    move |input: &mut Input<'i>| {
        // The elements of a template that is not nested in anything (a
        // template parsed on its own, which hcl-rs does at every evaluation
        // of a string template, or the top level of an attribute's value)
        // are reached along a fixed number of paths: parsing them again
        // costs a constant factor, remembering them would cost a table and
        // a copy of every element on every evaluation.
        if input.state.depth == 0 {
            return parser.parse_next(input);
        }
        let start = input.current_token_start();
        let key = (start, input.state.depth);
        let tables = input.state.memo.0.clone();
        let known = table(&tables).borrow().get(&key).cloned();
        let outcome = match known {
            Some(outcome) => {
                input.next_slice(outcome.consumed);
                outcome
            }
            None => {
                let outer = input.state.operator_depth;
                input.state.operator_depth = 0;
                let result = parser.parse_next(input);
                let operator_depth = input.state.operator_depth;
                input.state.operator_depth = outer;
                let Some(consumed) = input.current_token_start().checked_sub(start) else {
                    // A parser that returns before its start cannot be
                    // replayed by advancing: leave it unremembered.
                    input.state.operator_depth = outer.max(operator_depth);
                    return result;
                };
                let outcome = Outcome {
                    result,
                    consumed,
                    operator_depth,
                };
                table(&tables).borrow_mut().insert(key, outcome.clone());
                outcome
            }
        };
        input.state.operator_depth = input.state.operator_depth.max(outcome.operator_depth);
        outcome.result
    }
}

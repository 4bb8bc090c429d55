//! The configuration's `moved` blocks, applied to the state: a plan is made
//! against the state as it will be once what it records under each `from`
//! is recorded under its `to` (config::moved), and shows each move; apply
//! makes those renames durable before any step runs, so that a crash after
//! them leaves a state the next plan reads as moved already.

use serde::{Deserialize, Serialize};

use super::PlanError;
use crate::addr::Address;
use crate::config::model::Move;
use crate::state::journal::Entry;
use crate::state::model::State;

/// One address the state's record moves from, to another.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Moved {
    /// `environment.green`
    pub from: String,
    /// `environment.green["api"]`
    pub to: String,
}

impl Moved {
    /// Both addresses, when they parse.
    pub(crate) fn addresses(&self) -> Option<(Address, Address)> {
        Some((
            Address::parse_resource(&self.from)?,
            Address::parse_resource(&self.to)?,
        ))
    }
}

/// The renames `moves` make in `state`, one per record moved, in order: a
/// move whose `from` the state does not record (made already, or never
/// applied) makes none; one whose `to` the state records already is
/// refused.
pub fn resolve(state: &State, moves: &[Move]) -> Result<Vec<Moved>, PlanError> {
    let mut state = state.clone();
    let mut out = Vec::new();
    for m in moves {
        for (from, to) in pairs(&state, &m.from, &m.to) {
            if recorded(&state, &to) {
                return Err(PlanError::Moved(format!(
                    "{from} cannot move to {to} (the moved block at {}): the state records both; remove the moved block if {to} already stands for it, or remove {from} from the state",
                    format_args!("{}:{}:{}", m.span.file.display(), m.span.line, m.span.column)
                )));
            }
            let moved = Moved {
                from: from.to_string(),
                to: to.to_string(),
            };
            rename(&mut state, &moved);
            out.push(moved);
        }
    }
    Ok(out)
}

/// The records a move of `from` to `to` takes: the one of that address, or,
/// for a block's address, each of its instances (to the instance of the
/// same key).
fn pairs(state: &State, from: &Address, to: &Address) -> Vec<(Address, Address)> {
    let (names, from_name, to_name): (Vec<&String>, &str, &str) = match (from, to) {
        (Address::Environment(f), Address::Environment(t)) => {
            (state.environments.keys().collect(), f, t)
        }
        (Address::Router(f), Address::Router(t)) => (state.routers.keys().collect(), f, t),
        _ => return Vec::new(),
    };
    let make = |n: String| from.with_name(n);
    if names.iter().any(|n| n.as_str() == from_name) {
        return vec![(from.clone(), to.clone())];
    }
    let keyed = cutover_provider::name::key_of(from_name).is_some()
        || cutover_provider::name::key_of(to_name).is_some();
    if keyed {
        return Vec::new();
    }
    names
        .iter()
        .filter_map(|n| match cutover_provider::name::split(n) {
            Some((block, Some(key))) if block == from_name => Some((
                make((*n).clone()),
                make(cutover_provider::name::instance_name(to_name, &key)),
            )),
            _ => None,
        })
        .collect()
}

fn recorded(state: &State, addr: &Address) -> bool {
    match addr {
        Address::Environment(n) => state.environments.contains_key(n),
        Address::Router(n) => state.routers.contains_key(n),
        _ => false,
    }
}

/// `state` with `moved` made, in order.
pub fn renamed(state: &State, moved: &[Moved]) -> State {
    let mut state = state.clone();
    for m in moved {
        rename(&mut state, m);
    }
    state
}

/// Make one move: the record, and every router's mention of a colour that
/// moved.
fn rename(state: &mut State, m: &Moved) {
    match m.addresses() {
        Some((Address::Environment(from), Address::Environment(to))) => {
            if let Some(rec) = state.environments.remove(&from) {
                state.environments.insert(to.clone(), rec);
            }
            for router in state.routers.values_mut() {
                for colour in [&mut router.live, &mut router.previous, &mut router.preview] {
                    if colour.as_deref() == Some(from.as_str()) {
                        *colour = Some(to.clone());
                    }
                }
            }
        }
        Some((Address::Router(from), Address::Router(to))) => {
            if let Some(rec) = state.routers.remove(&from) {
                state.routers.insert(to.clone(), rec);
            }
            if let Some(pending) = state.unchecked.remove(&from) {
                state.unchecked.insert(to, pending);
            }
        }
        _ => {}
    }
}

/// The journal entries that make `moved` in `state`: every record that
/// differs once they are made.
pub fn entries(state: &State, moved: &[Moved]) -> Vec<Entry> {
    if moved.is_empty() {
        return Vec::new();
    }
    let after = renamed(state, moved);
    let mut out = Vec::new();
    // Removals first: a name freed by one move may be taken by the next.
    for name in state.environments.keys() {
        if !after.environments.contains_key(name) {
            out.push(Entry::Environment(name.clone(), None));
        }
    }
    for name in state.routers.keys() {
        if !after.routers.contains_key(name) {
            out.push(Entry::Router(name.clone(), None));
        }
    }
    for name in state.unchecked.keys() {
        if !after.unchecked.contains_key(name) {
            out.push(Entry::Unchecked(name.clone(), Vec::new()));
        }
    }
    for (name, rec) in &after.environments {
        if state.environments.get(name) != Some(rec) {
            out.push(Entry::Environment(name.clone(), Some(rec.clone())));
        }
    }
    for (name, rec) in &after.routers {
        if state.routers.get(name) != Some(rec) {
            out.push(Entry::Router(name.clone(), Some(rec.clone())));
        }
    }
    for (name, pending) in &after.unchecked {
        if state.unchecked.get(name) != Some(pending) {
            out.push(Entry::Unchecked(name.clone(), pending.clone()));
        }
    }
    out
}

#[cfg(test)]
#[path = "moves_tests.rs"]
mod tests;

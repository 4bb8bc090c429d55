//! Tests of the `moved` blocks' renames of the state.

use super::*;
use crate::config::model::{Move, Span};
use crate::state::model::{EnvironmentState, RouterState};

fn env(release: &str) -> EnvironmentState {
    EnvironmentState {
        backend: "process".into(),
        release: release.into(),
        endpoints: vec!["127.0.0.1:1".into()],
        settings: serde_json::json!({}),
        identity: Some(format!("pid-of-{release}")),
        private: serde_json::Value::Null,
    }
}

fn state() -> State {
    let mut s = crate::state::empty_state();
    s.serial = 7;
    s.environments.insert("blue".into(), env("1.0"));
    s.environments.insert("green".into(), env("1.1"));
    s.routers.insert(
        "public".into(),
        RouterState {
            backend: "haproxy".into(),
            live: Some("green".into()),
            previous: Some("blue".into()),
            preview: Some("blue".into()),
            rolled_back: false,
        },
    );
    s.unchecked.insert("public".into(), vec!["errors".into()]);
    s
}

fn mv(from: Address, to: Address) -> Move {
    Move {
        from,
        to,
        span: Span::default(),
    }
}

fn env_addr(n: &str) -> Address {
    Address::Environment(n.into())
}

#[test]
fn a_colour_and_its_router_move_with_every_mention_of_them() {
    let s = state();
    let moves = [
        mv(env_addr("blue"), env_addr(r#"blue["web"]"#)),
        mv(env_addr("green"), env_addr(r#"green["web"]"#)),
        mv(
            Address::Router("public".into()),
            Address::Router(r#"svc["web"]"#.into()),
        ),
    ];
    let moved = resolve(&s, &moves).unwrap();
    let texts: Vec<(&str, &str)> = moved
        .iter()
        .map(|m| (m.from.as_str(), m.to.as_str()))
        .collect();
    assert_eq!(
        texts,
        [
            ("environment.blue", r#"environment.blue["web"]"#),
            ("environment.green", r#"environment.green["web"]"#),
            ("router.public", r#"router.svc["web"]"#),
        ]
    );
    let after = renamed(&s, &moved);
    assert_eq!(
        after.environments.keys().collect::<Vec<_>>(),
        [r#"blue["web"]"#, r#"green["web"]"#]
    );
    // The record itself is kept: the process is not started again.
    assert_eq!(
        after.environments[r#"green["web"]"#],
        s.environments["green"]
    );
    let r = &after.routers[r#"svc["web"]"#];
    assert_eq!(r.live.as_deref(), Some(r#"green["web"]"#));
    assert_eq!(r.previous.as_deref(), Some(r#"blue["web"]"#));
    assert_eq!(r.preview.as_deref(), Some(r#"blue["web"]"#));
    assert_eq!(after.unchecked[r#"svc["web"]"#], ["errors"]);
    assert!(!after.routers.contains_key("public"));
    // Made already: nothing more to move.
    assert_eq!(resolve(&after, &moves).unwrap(), []);
}

#[test]
fn a_block_moves_every_instance_to_the_same_key() {
    let mut s = crate::state::empty_state();
    s.environments.insert(r#"old["a"]"#.into(), env("a"));
    s.environments.insert(r#"old["b"]"#.into(), env("b"));
    s.environments.insert("older".into(), env("x"));
    let moved = resolve(&s, &[mv(env_addr("old"), env_addr("new"))]).unwrap();
    let after = renamed(&s, &moved);
    assert_eq!(
        after.environments.keys().collect::<Vec<_>>(),
        [r#"new["a"]"#, r#"new["b"]"#, "older"]
    );
    assert_eq!(after.environments[r#"new["b"]"#].release, "b");
}

#[test]
fn a_move_onto_a_recorded_address_is_refused() {
    let mut s = state();
    s.environments.insert(r#"green["web"]"#.into(), env("2.0"));
    let e = resolve(&s, &[mv(env_addr("green"), env_addr(r#"green["web"]"#))]).unwrap_err();
    assert!(
        e.to_string()
            .starts_with(r#"environment.green cannot move to environment.green["web"]"#),
        "{e}"
    );
    assert!(e.to_string().contains("the state records both"), "{e}");
}

#[test]
fn the_entries_remove_the_old_records_and_write_the_new_ones() {
    let s = state();
    let moved = resolve(
        &s,
        &[
            mv(env_addr("green"), env_addr(r#"green["web"]"#)),
            mv(
                Address::Router("public".into()),
                Address::Router(r#"svc["web"]"#.into()),
            ),
        ],
    )
    .unwrap();
    let entries = entries(&s, &moved);
    let mut after = s.clone();
    for e in entries.clone() {
        e.apply_to(&mut after);
    }
    let expected = renamed(&s, &moved);
    assert_eq!(after.environments, expected.environments);
    assert_eq!(after.routers, expected.routers);
    assert_eq!(after.unchecked, expected.unchecked);
    // Removals come first, then the records written.
    let kinds: Vec<String> = entries
        .iter()
        .map(|e| match e {
            Entry::Environment(n, None) => format!("-environment.{n}"),
            Entry::Environment(n, Some(_)) => format!("+environment.{n}"),
            Entry::Router(n, None) => format!("-router.{n}"),
            Entry::Router(n, Some(_)) => format!("+router.{n}"),
            Entry::Unchecked(n, v) if v.is_empty() => format!("-unchecked.{n}"),
            Entry::Unchecked(n, _) => format!("+unchecked.{n}"),
            Entry::Checked(..) => "checked".into(),
        })
        .collect();
    assert_eq!(
        kinds,
        [
            "-environment.green",
            "-router.public",
            "-unchecked.public",
            r#"+environment.green["web"]"#,
            r#"+router.svc["web"]"#,
            r#"+unchecked.svc["web"]"#,
        ]
    );
    assert!(super::entries(&s, &[]).is_empty());
}

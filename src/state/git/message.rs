//! The commit messages of the git backend: `git log` of the state branch is
//! the audit trail, so each commit says what changed, from which serial to
//! which, and who did it.

use crate::state::lock::LockInfo;
use crate::state::model::State;

use super::plumbing::Who;

/// The author and committer of what `holder` does.
pub(crate) fn who(holder: &LockInfo) -> Who {
    Who {
        name: holder.user.clone(),
        email: format!("{}@{}", holder.user, holder.host),
    }
}

/// The records (`environment.green`, `router.public`) that differ between
/// `before` and `after`, sorted.
fn changed_records(before: Option<&State>, after: &State) -> Vec<String> {
    fn diff<V: PartialEq>(
        kind: &str,
        before: Option<&std::collections::BTreeMap<String, V>>,
        after: &std::collections::BTreeMap<String, V>,
        out: &mut Vec<String>,
    ) {
        let mut names: Vec<&String> = after.keys().collect();
        if let Some(before) = before {
            names.extend(before.keys());
        }
        names.sort();
        names.dedup();
        for name in names {
            if before.and_then(|b| b.get(name)) != after.get(name) {
                out.push(format!("{kind}.{name}"));
            }
        }
    }
    let mut out = Vec::new();
    diff(
        "environment",
        before.map(|b| &b.environments),
        &after.environments,
        &mut out,
    );
    diff(
        "router",
        before.map(|b| &b.routers),
        &after.routers,
        &mut out,
    );
    out
}

/// The subject's account of a change: `serial 4 -> 5 (router.public)`, or
/// `new state, serial 0` when there was none.
fn change(before: Option<&State>, after: &State) -> String {
    let records = changed_records(before, after);
    let records = if records.is_empty() {
        String::new()
    } else {
        format!(" ({})", records.join(", "))
    };
    match before {
        Some(b) => format!("serial {} -> {}{records}", b.serial, after.serial),
        None => format!("new state, serial {}{records}", after.serial),
    }
}

/// The lines that say who did it.
fn holder_lines(holder: &LockInfo) -> String {
    format!(
        "by {}@{} (pid {}): `{}`\nlock {}, taken {}",
        holder.user,
        holder.host,
        holder.pid,
        holder.command.join(" "),
        holder.id,
        holder.created
    )
}

/// The message of a state write by `holder`, which holds the lock:
/// `cutover apply: serial 4 -> 5 (router.public)`.
pub(crate) fn state_write(holder: &LockInfo, before: Option<&State>, after: &State) -> String {
    format!(
        "cutover {}: {}\n\nlineage {}\n{}\n",
        holder.operation,
        change(before, after),
        after.lineage,
        holder_lines(holder)
    )
}

/// The message of the fold `cutover force-unlock`, run by `by`, makes of
/// the journal the lock's holder `lost` left.
pub(crate) fn forced_fold(by: &LockInfo, lost: &LockInfo, before: &State, after: &State) -> String {
    format!(
        "cutover force-unlock: fold the journal of {}: {}\n\n\
         The journal was left on the lock by `{}` (lock {}).\nlineage {}\n{}\n",
        lost.describe(),
        change(Some(before), after),
        lost.command.join(" "),
        lost.id,
        after.lineage,
        holder_lines(by)
    )
}

/// The message of a commit on the lock ref: `what` (`lock`, `journal`, ...)
/// by `holder`.
pub(crate) fn lock_commit(holder: &LockInfo, what: &str) -> String {
    format!(
        "cutover {what}: {} by {}@{} (pid {})\n\n{}\n",
        holder.operation,
        holder.user,
        holder.host,
        holder.pid,
        holder_lines(holder)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::model::RouterState;

    fn holder() -> LockInfo {
        LockInfo {
            id: "0b8e4c6e-0000-4000-8000-000000000001".into(),
            pid: 4242,
            host: "build-01".into(),
            user: "alice".into(),
            operation: "apply".into(),
            created: "2024-05-01T12:00:00Z".into(),
            command: vec!["cutover".into(), "apply".into(), "--auto-approve".into()],
        }
    }

    fn router(live: &str) -> RouterState {
        RouterState {
            backend: "haproxy".into(),
            live: Some(live.into()),
            previous: None,
            preview: None,
            rolled_back: false,
        }
    }

    #[test]
    fn a_state_commit_says_what_changed_and_who_did_it() {
        let mut before = crate::state::new_state();
        before.lineage = "L".into();
        before.serial = 4;
        before.routers.insert("public".into(), router("blue"));
        before.routers.insert("admin".into(), router("blue"));
        let mut after = before.clone();
        after.serial = 6;
        after.routers.insert("public".into(), router("green"));
        after.routers.remove("admin");
        assert_eq!(
            state_write(&holder(), Some(&before), &after),
            "cutover apply: serial 4 -> 6 (router.admin, router.public)\n\n\
             lineage L\n\
             by alice@build-01 (pid 4242): `cutover apply --auto-approve`\n\
             lock 0b8e4c6e-0000-4000-8000-000000000001, taken 2024-05-01T12:00:00Z\n"
        );
        let first = state_write(
            &LockInfo {
                operation: "init".into(),
                ..holder()
            },
            None,
            &before,
        );
        assert!(
            first
                .starts_with("cutover init: new state, serial 4 (router.admin, router.public)\n\n"),
            "{first}"
        );
        assert_eq!(
            who(&holder()),
            Who {
                name: "alice".into(),
                email: "alice@build-01".into()
            }
        );
    }

    #[test]
    fn a_forced_fold_names_the_lost_holder() {
        let before = crate::state::new_state();
        let mut after = before.clone();
        after.serial = 1;
        after.routers.insert("public".into(), router("green"));
        let by = LockInfo {
            operation: "force-unlock".into(),
            user: "bob".into(),
            ..holder()
        };
        let text = forced_fold(&by, &holder(), &before, &after);
        assert!(
            text.starts_with(
                "cutover force-unlock: fold the journal of an apply (pid 4242 on host build-01, \
                 since 2024-05-01T12:00:00Z): serial 0 -> 1 (router.public)\n\n"
            ),
            "{text}"
        );
        assert!(text.contains("by bob@build-01"), "{text}");
    }
}

//! The view of `cutover approve`: who waits, for which routers, until
//! when, and what this approval did; for people and as JSON.

use std::time::{Duration, SystemTime};

use serde_json::{json, Value};

use crate::state::approval::{Approved, Pause};

/// The human view of `approved`, on `state`, read at `now`.
pub fn approved(state: &str, approved: &Approved, now: SystemTime) -> String {
    let pause = &approved.pause;
    let requested = addresses(&approved.requested);
    let mut out = if approved.now.is_empty() {
        format!("Nothing to approve: {requested} approved already.\n")
    } else {
        format!(
            "Approved {} for the apply waiting on {}.\n",
            addresses(&approved.now),
            crate::state::named(state)
        )
    };
    out.push_str(&format!(
        "  waiting: {} (lock {})\n  until:   {}{}\n",
        pause.holder,
        pause.lock_id,
        pause.deadline_text(),
        remaining(pause, now)
    ));
    let width = pause.routers.iter().map(|r| r.len()).max().unwrap_or(0) + "router.".len();
    for router in &pause.routers {
        let what = match pause.approved.get(router) {
            Some(a) if approved.now.contains(router) => format!("approved now by {}", a.by),
            Some(a) => format!("approved by {} at {}", a.by, at(a.at_unix_ms)),
            None => "waiting for approval".to_owned(),
        };
        let address = format!("router.{router}");
        out.push_str(&format!("  {address:<width$}  {what}\n"));
    }
    out.push_str(if pause.is_approved() {
        "Every router it waits for is approved: the apply goes on to its cut-over.\n"
    } else {
        "The apply goes on once every router it waits for is approved.\n"
    });
    out
}

/// The JSON view: the pause as stored, what this call approved, and what
/// is still awaited.
pub fn approved_json(state: &str, approved: &Approved) -> Value {
    json!({
        "state": state,
        "requested": approved.requested,
        "approved_now": approved.now,
        "awaiting": approved.pause.awaiting(),
        "pause": approved.pause,
    })
}

fn addresses(routers: &[String]) -> String {
    let list: Vec<String> = routers.iter().map(|r| format!("router.{r}")).collect();
    list.join(", ")
}

fn at(unix_ms: u64) -> String {
    let time = SystemTime::UNIX_EPOCH + Duration::from_millis(unix_ms);
    humantime::format_rfc3339_seconds(time).to_string()
}

/// ` (in 4m 59s)`, or nothing once it has passed.
fn remaining(pause: &Pause, now: SystemTime) -> String {
    match pause.deadline().duration_since(now) {
        Ok(left) => {
            let left = Duration::from_secs(left.as_secs());
            format!(" (in {})", humantime::format_duration(left))
        }
        Err(_) => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::state::approval::Approval;

    fn approved_one() -> Approved {
        let mut approvals = BTreeMap::new();
        let at_unix_ms = 1_714_566_000_000;
        approvals.insert(
            "admin".to_owned(),
            Approval {
                by: "carol@ci".into(),
                at_unix_ms,
            },
        );
        approvals.insert(
            "public".to_owned(),
            Approval {
                by: "bob@laptop".into(),
                at_unix_ms,
            },
        );
        Approved {
            pause: Pause {
                lock_id: "L1".into(),
                routers: vec!["admin".into(), "public".into(), "web".into()],
                deadline_unix_ms: 1_714_566_300_000,
                holder: "alice@build-01 pid 4242".into(),
                approved: approvals,
            },
            requested: vec!["public".into()],
            now: vec!["public".into()],
        }
    }

    #[test]
    fn the_view_says_who_waits_until_when_and_each_router_s_approval() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_millis(1_714_566_001_500);
        let text = approved("/srv/app/cutover.state.json", &approved_one(), now);
        assert_eq!(
            text,
            "Approved router.public for the apply waiting on the state /srv/app/cutover.state.json.
  waiting: alice@build-01 pid 4242 (lock L1)
  until:   2024-05-01T12:25:00Z (in 4m 58s)
  router.admin   approved by carol@ci at 2024-05-01T12:20:00Z
  router.public  approved now by bob@laptop
  router.web     waiting for approval
The apply goes on once every router it waits for is approved.
"
        );
        let mut again = approved_one();
        again.now.clear();
        again.pause.routers.pop();
        let late = SystemTime::UNIX_EPOCH + Duration::from_millis(1_714_566_400_000);
        let text = approved("pg", &again, late);
        assert!(
            text.starts_with("Nothing to approve: router.public approved already.\n"),
            "{text}"
        );
        assert!(text.contains("until:   2024-05-01T12:25:00Z\n"), "{text}");
        assert!(
            text.ends_with("the apply goes on to its cut-over.\n"),
            "{text}"
        );
    }

    #[test]
    fn the_json_view_holds_the_pause_and_what_is_awaited() {
        let value = approved_json("pg", &approved_one());
        assert_eq!(value["approved_now"], json!(["public"]));
        assert_eq!(value["awaiting"], json!(["web"]));
        assert_eq!(value["pause"]["approved"]["admin"]["by"], "carol@ci");
        assert_eq!(value["pause"]["deadline_unix_ms"], 1_714_566_300_000u64);
    }
}

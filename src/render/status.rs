//! `cutover status` as a table for people (the JSON is the
//! [`Status`](crate::engine::status::Status) itself).

use crate::engine::status::Status;

/// Columns padded to their widest cell, two spaces apart.
fn table(rows: &[Vec<String>]) -> String {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|cell| cell.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in rows {
        let mut line = String::from("  ");
        for (c, cell) in row.iter().enumerate() {
            line.push_str(cell);
            if c + 1 < row.len() {
                let pad = widths[c] - cell.chars().count() + 2;
                line.extend(std::iter::repeat_n(' ', pad));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

fn or_dash(value: Option<&str>) -> String {
    value.unwrap_or("-").to_owned()
}

/// The status as text.
pub fn status(status: &Status) -> String {
    let mut out = String::new();
    let mut errors = Vec::new();
    if !status.routers.is_empty() {
        let mut rows = vec![[
            "ROUTER",
            "KIND",
            "LIVE",
            "CONFIGURED",
            "PREVIOUS",
            "PREVIEW",
        ]
        .map(String::from)
        .to_vec()];
        for r in &status.routers {
            let live = match (&r.error, &r.live, &r.raw) {
                (Some(_), _, _) => "unread".to_owned(),
                (None, Some(live), _) => live.clone(),
                (None, None, Some(raw)) => format!("{raw} (no colour)"),
                (None, None, None) => "-".to_owned(),
            };
            rows.push(vec![
                r.name.clone(),
                r.backend.clone(),
                live,
                r.configured.clone(),
                or_dash(r.previous.as_deref()),
                or_dash(r.preview.as_deref()),
            ]);
            // A fleet: what each instance serves, under its router.
            for i in &r.instances {
                let live = match (&i.live, &i.raw) {
                    (Some(live), _) => live.clone(),
                    (None, Some(raw)) => format!("{raw} (no colour)"),
                    (None, None) => "-".to_owned(),
                };
                rows.push(vec![
                    format!("  {}", i.name),
                    "instance".to_owned(),
                    live,
                    String::new(),
                    String::new(),
                    or_dash(i.preview.as_deref()),
                ]);
            }
            if let Some(e) = &r.error {
                errors.push(format!("router.{}: {e}", r.name));
            }
        }
        out.push_str("Routers (read from each router now):\n");
        out.push_str(&table(&rows));
    }
    if !status.environments.is_empty() {
        let mut rows = vec![
            ["ENVIRONMENT", "RELEASE", "CONFIGURED", "HEALTH", "LIVE ON"]
                .map(String::from)
                .to_vec(),
        ];
        for e in &status.environments {
            let health = match (&e.error, e.healthy, e.exists) {
                (Some(_), _, _) => "unread",
                (None, true, _) => "healthy",
                (None, false, true) => "unhealthy",
                (None, false, false) => "down",
            };
            rows.push(vec![
                e.name.clone(),
                or_dash(e.release.as_deref()),
                e.configured_release.clone(),
                health.to_owned(),
                if e.live_on.is_empty() {
                    "-".to_owned()
                } else {
                    e.live_on.join(", ")
                },
            ]);
            if let Some(err) = &e.error {
                errors.push(format!("environment.{}: {err}", e.name));
            }
        }
        if !out.is_empty() {
            out.push('\n');
        }
        out.push_str("Environments (health: one probe just now):\n");
        out.push_str(&table(&rows));
    }
    if !status.drift.is_empty() {
        out.push_str("\nChanges outside cutover since the last apply:\n");
        for d in &status.drift {
            out.push_str(&format!("  # {}\n", d.message));
        }
    }
    if !errors.is_empty() {
        out.push_str("\nCould not be read:\n");
        for e in errors {
            out.push_str(&format!("  {e}\n"));
        }
    }
    if out.is_empty() {
        out.push_str("The configuration has no routers and no environments.\n");
    }
    out
}

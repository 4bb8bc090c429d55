//! Reading HAProxy's runtime API replies.
//!
//! The runtime API answers in text made for people (`show map`, `get map`,
//! `show backend`) or CSV (`show stat`). These parsers are kept apart from the
//! socket code so that each format can be tested against captured replies.

/// One entry of a map as HAProxy holds it at runtime.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct MapEntry {
    /// The entry's key (HAProxy keys hold no whitespace).
    pub key: String,
    /// The entry's value: everything after the key.
    pub value: String,
}

/// Parse the reply to `show map <map>`: one `<ref> <key> <value>` line per entry,
/// e.g. `0x55dff6ee4d50 public blue`.
///
/// Returns `None` when the reply is not a listing (an error message such as
/// `Unknown map identifier.`), so that the caller can report it verbatim.
pub(crate) fn parse_show_map(reply: &str) -> Option<Vec<MapEntry>> {
    let mut entries = Vec::new();
    for line in reply.lines().filter(|l| !l.trim().is_empty()) {
        let mut parts = line.splitn(3, ' ');
        let reference = parts.next()?;
        if !reference.starts_with("0x") {
            return None;
        }
        let key = parts.next()?;
        let value = parts.next().unwrap_or("");
        entries.push(MapEntry {
            key: key.to_string(),
            value: value.to_string(),
        });
    }
    Some(entries)
}

/// The answer to `get map <map> <key>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum GetMap {
    /// The key matched; this is the value HAProxy would use.
    Found(String),
    /// No entry matched.
    NotFound,
}

/// Parse the reply to `get map <map> <key>`, e.g.
/// `type=str, case=sensitive, found=yes, idx=tree, key="public", value="blue", type="str"`.
pub(crate) fn parse_get_map(reply: &str) -> Option<GetMap> {
    let line = reply.lines().next()?;
    if line.contains("found=no") {
        return Some(GetMap::NotFound);
    }
    if !line.contains("found=yes") {
        return None;
    }
    // The value is quoted and may itself hold `, `: take from `value="` to the
    // `"` that ends it, i.e. the one followed by `, type=` or the end of line.
    let start = line.find("value=\"")? + "value=\"".len();
    let rest = &line[start..];
    let end = rest.rfind("\", type=").or_else(|| rest.rfind('"'))?;
    Some(GetMap::Found(rest[..end].to_string()))
}

/// Parse the reply to `show backend`: a `# name` header, then one name a line.
pub(crate) fn parse_show_backend(reply: &str) -> Vec<String> {
    reply
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_string)
        .collect()
}

/// One server of a backend, as `show stat` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ServerStatus {
    /// The server's name in the backend (`svname`).
    pub name: String,
    /// HAProxy's status text: `UP`, `UP 1/3`, `DOWN`, `DOWN 1/2`, `MAINT`,
    /// `no check`, ...
    pub status: String,
    /// HAProxy's own health check of the server, when it runs one.
    pub check: Option<HealthCheck>,
    /// Whether an agent check runs too (`agent-check`).
    pub agent: bool,
}

/// HAProxy's health check of one server, as `show stat` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct HealthCheck {
    /// Passing checks in a row that bring a server up (`rise`), when shown.
    pub rise: Option<u32>,
    /// The last check's result, e.g. `L4OK`, `L4CON`, `L7STS`.
    pub last: String,
    /// What the last check said, e.g. `Connection refused`, when anything.
    pub said: String,
}

/// What HAProxy's view of a server means for a switch to its backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Readiness {
    /// HAProxy sends new traffic to it now.
    Serves,
    /// It takes no traffic, but HAProxy's own check (or agent) can bring it
    /// up by itself: worth waiting for.
    Rising,
    /// It takes no traffic and nothing but an operator will change that.
    Never,
}

impl ServerStatus {
    /// Whether HAProxy would send new traffic to this server now, may soon,
    /// or will not (see docs/haproxy.md, "Readiness").
    ///
    /// - `UP`, and `UP 2/3` (up, its checks starting to fail: it still takes
    ///   traffic), and `no check` (never checked, always used): serves.
    /// - `DOWN`, `DOWN 1/2` (going up: one pass of the two `rise` needs),
    ///   `DOWN (agent)`, of a server HAProxy checks: rising. Right after
    ///   cutover's own health gate passed, this is HAProxy's check not having
    ///   run or passed often enough yet.
    /// - `MAINT` (set by an operator, `disabled`, or `MAINT (via b/s)` from
    ///   a tracked server), `MAINT (resolution)`, `DRAIN`, `NOLB` (their
    ///   going-down forms too), a `DOWN` server HAProxy does not check, and
    ///   any status this does not know: never.
    pub fn readiness(&self) -> Readiness {
        let status = self.status.as_str();
        let word = status.split(' ').next().unwrap_or_default();
        match word {
            "UP" => Readiness::Serves,
            _ if status == "no check" => Readiness::Serves,
            "DOWN" if self.check.is_some() || self.agent => Readiness::Rising,
            _ => Readiness::Never,
        }
    }

    /// `green/s1 is DOWN 1/2 (rise 2, last check L4OK)`, for messages.
    pub fn describe(&self, backend: &str) -> String {
        let mut text = format!("{backend}/{} is {}", self.name, self.status);
        if let Some(check) = self
            .check
            .as_ref()
            .filter(|_| self.readiness() != Readiness::Serves)
        {
            let mut details = Vec::new();
            if let Some(rise) = check.rise {
                details.push(format!("rise {rise}"));
            }
            if !check.last.is_empty() {
                let said = if check.said.is_empty() {
                    String::new()
                } else {
                    format!(": {}", check.said)
                };
                details.push(format!("last check {}{said}", check.last));
            }
            if !details.is_empty() {
                text.push_str(&format!(" ({})", details.join(", ")));
            }
        }
        text
    }
}

/// Parse the CSV reply to `show stat <backend> 4 -1` (servers only) into the
/// servers of `backend`. Returns `None` when the reply is not CSV with the
/// expected columns (e.g. `No such proxy.`). The check columns are optional
/// (`check_rise` is newer than `check_status`).
pub(crate) fn parse_show_stat(reply: &str, backend: &str) -> Option<Vec<ServerStatus>> {
    let mut lines = reply.lines();
    let header = lines.next()?.strip_prefix("# ")?;
    let columns: Vec<&str> = header.split(',').collect();
    let column = |name: &str| columns.iter().position(|c| *c == name);
    let (px, sv, status) = (column("pxname")?, column("svname")?, column("status")?);
    let (check_status, last_chk, check_rise) = (
        column("check_status"),
        column("last_chk"),
        column("check_rise"),
    );
    let agent_status = column("agent_status");
    let mut servers = Vec::new();
    for line in lines.filter(|l| !l.trim().is_empty()) {
        let fields: Vec<&str> = line.split(',').collect();
        let field = |i: usize| fields.get(i).copied().unwrap_or("");
        let optional = |i: Option<usize>| i.map(field).unwrap_or("");
        // `show stat` also has FRONTEND/BACKEND summary rows; with type 4 it
        // should not print them, but skip them anyway.
        if field(px) != backend || matches!(field(sv), "FRONTEND" | "BACKEND") {
            continue;
        }
        // A check in progress is shown as `* L4OK`.
        let last = optional(check_status).trim_start_matches("* ");
        let rise = optional(check_rise).parse().ok();
        let check = (!last.is_empty() || rise.is_some()).then(|| HealthCheck {
            rise,
            last: last.to_string(),
            said: optional(last_chk).to_string(),
        });
        servers.push(ServerStatus {
            name: field(sv).to_string(),
            status: field(status).to_string(),
            check,
            agent: !optional(agent_status).is_empty(),
        });
    }
    Some(servers)
}

/// Parse the reply to `show map` (no argument): the maps HAProxy has loaded,
/// e.g. `2 (/etc/haproxy/live.map) pattern loaded from file ...`.
pub(crate) fn parse_map_list(reply: &str) -> Vec<String> {
    reply
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let start = l.find(" (")? + 2;
            let end = l[start..].find(") ")? + start;
            Some(l[start..end].to_string())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn show_map_lists_entries_in_order() {
        let reply = "0x55dff6ee4d50 public blue\n0x55dff6ee4de0 other green with space\n\n";
        let entries = parse_show_map(reply).unwrap();
        assert_eq!(
            entries,
            vec![
                MapEntry {
                    key: "public".into(),
                    value: "blue".into()
                },
                MapEntry {
                    key: "other".into(),
                    value: "green with space".into()
                },
            ]
        );
    }

    #[test]
    fn show_map_of_empty_map_is_empty() {
        assert_eq!(parse_show_map("\n"), Some(vec![]));
        assert_eq!(parse_show_map(""), Some(vec![]));
    }

    #[test]
    fn show_map_error_is_not_a_listing() {
        assert_eq!(
            parse_show_map("Unknown map identifier. Please use #<id> or <file>.\n"),
            None
        );
    }

    #[test]
    fn get_map_found_and_not_found() {
        let found = "type=str, case=sensitive, found=yes, idx=tree, key=\"public\", value=\"blue\", type=\"str\"\n";
        assert_eq!(parse_get_map(found), Some(GetMap::Found("blue".into())));
        let missing = "type=str, case=sensitive, found=no\n";
        assert_eq!(parse_get_map(missing), Some(GetMap::NotFound));
        assert_eq!(parse_get_map("Unknown map identifier.\n"), None);
    }

    #[test]
    fn get_map_value_with_comma_and_quote() {
        let reply = "type=str, case=sensitive, found=yes, idx=tree, key=\"k\", value=\"a, \"b\"\", type=\"str\"\n";
        assert_eq!(parse_get_map(reply), Some(GetMap::Found("a, \"b\"".into())));
    }

    #[test]
    fn show_backend_names() {
        assert_eq!(
            parse_show_backend("# name\nblue\ngreen\n\n"),
            vec!["blue".to_string(), "green".to_string()]
        );
    }

    /// As HAProxy 2.6 answers (columns cut to those read, in its order).
    const STAT: &str = "# pxname,svname,status,check_status,last_chk,agent_status,check_rise,check_fall,check_health\n\
green,up,UP,L7OK,HTTP status check returned code <200>,,2,3,4\n\
green,going_down,UP 2/3,L4CON,Connection refused,,2,3,3\n\
green,unchecked,no check,,,,,,\n\
green,rising,DOWN 1/2,L4OK,,,2,3,1\n\
green,down,DOWN,* L4CON,Connection refused,,2,3,0\n\
green,agent,DOWN (agent),,,L7STS,,,\n\
green,down_unchecked,DOWN,,,,,,\n\
green,maint,MAINT,,,,,,\n\
green,tracked,MAINT (via blue/s1),,,,,,\n\
green,drain,DRAIN,L4OK,,,2,3,4\n\
green,nolb,NOLB,L7STS,HTTP status check returned code <404>,,2,3,4\n\
green,BACKEND,UP,,,,,,\n\n";

    #[test]
    fn show_stat_servers_and_what_they_mean_for_a_switch() {
        use Readiness::*;
        let servers = parse_show_stat(STAT, "green").unwrap();
        let seen: Vec<(&str, Readiness)> = servers
            .iter()
            .map(|s| (s.name.as_str(), s.readiness()))
            .collect();
        assert_eq!(
            seen,
            vec![
                ("up", Serves),
                ("going_down", Serves),
                ("unchecked", Serves),
                ("rising", Rising),
                ("down", Rising),
                ("agent", Rising),
                ("down_unchecked", Never),
                ("maint", Never),
                ("tracked", Never),
                ("drain", Never),
                ("nolb", Never),
            ]
        );
        assert_eq!(
            servers[3].describe("green"),
            "green/rising is DOWN 1/2 (rise 2, last check L4OK)"
        );
        assert_eq!(
            servers[4].describe("green"),
            "green/down is DOWN (rise 2, last check L4CON: Connection refused)"
        );
        assert_eq!(servers[0].describe("green"), "green/up is UP");
        assert_eq!(servers[7].describe("green"), "green/maint is MAINT");
    }

    #[test]
    fn show_stat_without_check_columns() {
        // An older HAProxy: no check_rise, no agent columns.
        let reply = "# pxname,svname,status,check_status\ngreen,s1,DOWN 1/2,L4OK\ngreen,s2,DOWN,\n";
        let servers = parse_show_stat(reply, "green").unwrap();
        assert_eq!(servers[0].readiness(), Readiness::Rising);
        assert_eq!(servers[1].readiness(), Readiness::Never);
    }

    #[test]
    fn show_stat_error_is_not_csv() {
        assert_eq!(parse_show_stat("No such proxy.\n", "green"), None);
    }

    #[test]
    fn show_stat_other_backend_is_ignored() {
        assert_eq!(parse_show_stat(STAT, "blue"), Some(vec![]));
    }

    #[test]
    fn map_list_gives_file_names() {
        let reply = "# id (file) description\n2 (/tmp/hx/live.map) pattern loaded from file '/tmp/hx/live.map' used by map at file 'h.cfg' line 10. curr_ver=0 next_ver=0 entry_cnt=2\n\n";
        assert_eq!(parse_map_list(reply), vec!["/tmp/hx/live.map".to_string()]);
    }
}

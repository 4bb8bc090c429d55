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
    /// HAProxy's status text: `UP`, `UP 1/2`, `DOWN`, `MAINT`, `no check`, ...
    pub status: String,
}

impl ServerStatus {
    /// Whether HAProxy would send new traffic to this server now.
    ///
    /// `UP 1/2` is a server still up while its checks start failing; `no check`
    /// is a server HAProxy does not check and so always uses. `NOLB`, `DRAIN`,
    /// `MAINT` and `DOWN` (including `DOWN 1/2`, going up) take no new traffic.
    pub fn takes_traffic(&self) -> bool {
        self.status == "no check" || self.status.starts_with("UP")
    }
}

/// Parse the CSV reply to `show stat <backend> 4 -1` (servers only) into the
/// servers of `backend`. Returns `None` when the reply is not CSV with the
/// expected columns (e.g. `No such proxy.`).
pub(crate) fn parse_show_stat(reply: &str, backend: &str) -> Option<Vec<ServerStatus>> {
    let mut lines = reply.lines();
    let header = lines.next()?.strip_prefix("# ")?;
    let columns: Vec<&str> = header.split(',').collect();
    let column = |name: &str| columns.iter().position(|c| *c == name);
    let (px, sv, status) = (column("pxname")?, column("svname")?, column("status")?);
    let mut servers = Vec::new();
    for line in lines.filter(|l| !l.trim().is_empty()) {
        let fields: Vec<&str> = line.split(',').collect();
        let field = |i: usize| fields.get(i).copied().unwrap_or("");
        // `show stat` also has FRONTEND/BACKEND summary rows; with type 4 it
        // should not print them, but skip them anyway.
        if field(px) != backend || matches!(field(sv), "FRONTEND" | "BACKEND") {
            continue;
        }
        servers.push(ServerStatus {
            name: field(sv).to_string(),
            status: field(status).to_string(),
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

    const STAT: &str = "# pxname,svname,qcur,qmax,scur,smax,slim,stot,bin,bout,dreq,dresp,ereq,econ,eresp,wretr,wredis,status,weight,act\n\
green,s1,0,0,0,0,,0,0,0,,0,,0,0,0,0,no check,1,1\n\
green,s2,0,0,0,0,,0,0,0,,0,,0,0,0,0,DOWN,1,1\n\
green,s3,0,0,0,0,,0,0,0,,0,,0,0,0,0,UP 1/2,1,1\n\
green,s4,0,0,0,0,,0,0,0,,0,,0,0,0,0,MAINT (via blue/s1),1,1\n\
green,BACKEND,0,0,0,0,,0,0,0,,0,,0,0,0,0,UP,1,1\n\n";

    #[test]
    fn show_stat_servers_and_their_status() {
        let servers = parse_show_stat(STAT, "green").unwrap();
        let seen: Vec<(&str, &str, bool)> = servers
            .iter()
            .map(|s| (s.name.as_str(), s.status.as_str(), s.takes_traffic()))
            .collect();
        assert_eq!(
            seen,
            vec![
                ("s1", "no check", true),
                ("s2", "DOWN", false),
                ("s3", "UP 1/2", true),
                ("s4", "MAINT (via blue/s1)", false),
            ]
        );
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

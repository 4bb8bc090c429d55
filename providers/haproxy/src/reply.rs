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

/// Parse the CSV reply to `show stat <backend> 2 -1` (the backend's own row)
/// into the sessions the backend holds now: its `BACKEND` row's `scur`,
/// which counts every stream that uses the backend — on one of its servers,
/// or still queued for one — not an idle keep-alive connection (whose next
/// request is routed again). `None` when the reply is not CSV with that row
/// and column (e.g. `No such proxy.`).
pub(crate) fn parse_backend_sessions(reply: &str, backend: &str) -> Option<u64> {
    let mut lines = reply.lines();
    let header = lines.next()?.strip_prefix("# ")?;
    let columns: Vec<&str> = header.split(',').collect();
    let column = |name: &str| columns.iter().position(|c| *c == name);
    let (px, sv, scur) = (column("pxname")?, column("svname")?, column("scur")?);
    lines.find_map(|line| {
        let fields: Vec<&str> = line.split(',').collect();
        let is_row = fields.get(px) == Some(&backend) && fields.get(sv) == Some(&"BACKEND");
        is_row.then(|| fields.get(scur)?.parse().ok())?
    })
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

    /// HAProxy 2.6.12's reply to `show stat blue 2 -1`, whole, while one
    /// streamed response was on its way through it to blue (the second
    /// line's `scur`, the fifth column, is 1); then after the client closed.
    const BACKEND_STAT_ONE: &str = "# pxname,svname,qcur,qmax,scur,smax,slim,stot,bin,bout,dreq,dresp,ereq,econ,eresp,wretr,wredis,status,weight,act,bck,chkfail,chkdown,lastchg,downtime,qlimit,pid,iid,sid,throttle,lbtot,tracked,type,rate,rate_lim,rate_max,check_status,check_code,check_duration,hrsp_1xx,hrsp_2xx,hrsp_3xx,hrsp_4xx,hrsp_5xx,hrsp_other,hanafail,req_rate,req_rate_max,req_tot,cli_abrt,srv_abrt,comp_in,comp_out,comp_byp,comp_rsp,lastsess,last_chk,last_agt,qtime,ctime,rtime,ttime,agent_status,agent_code,agent_duration,check_desc,agent_desc,check_rise,check_fall,check_health,agent_rise,agent_fall,agent_health,addr,cookie,mode,algo,conn_rate,conn_rate_max,conn_tot,intercepted,dcon,dses,wrew,connect,reuse,cache_lookups,cache_hits,srv_icur,src_ilim,qtime_max,ctime_max,rtime_max,ttime_max,eint,idle_conn_cur,safe_conn_cur,used_conn_cur,need_conn_est,uweight,agg_server_status,agg_server_check_status,agg_check_status,-,ssl_sess,ssl_reused_sess,ssl_failed_handshake,h2_headers_rcvd,h2_data_rcvd,h2_settings_rcvd,h2_rst_stream_rcvd,h2_goaway_rcvd,h2_detected_conn_protocol_errors,h2_detected_strm_protocol_errors,h2_rst_stream_resp,h2_goaway_resp,h2_open_connections,h2_backend_open_streams,h2_total_connections,h2_backend_total_streams,h1_open_connections,h1_open_streams,h1_total_connections,h1_total_streams,h1_bytes_in,h1_bytes_out,h1_spliced_bytes_in,h1_spliced_bytes_out,\n\
blue,BACKEND,0,0,1,1,1,1,0,0,0,0,,0,0,0,0,UP,1,1,0,,0,2,0,,1,3,0,,1,,1,1,,1,,,,0,0,0,0,0,0,,,,0,0,0,0,0,0,0,1,,,0,0,0,0,,,,,,,,,,,,,,http,roundrobin,,,,,,,0,1,0,0,0,,,0,0,0,0,0,,,,,1,0,0,0,-,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,1,1,1,1,155,27,0,0,\n\n";

    /// The same backend's row after the client closed (`cli_abrt` 1).
    const BACKEND_ROW_IDLE: &str = "blue,BACKEND,0,0,0,1,1,1,38,135,0,0,,0,0,0,0,UP,1,1,0,,0,2,0,,1,3,0,,1,,1,1,,1,,,,0,1,0,0,0,0,,,,1,1,0,0,0,0,0,1,,,0,0,28,528,,,,,,,,,,,,,,http,roundrobin,,,,,,,0,1,0,0,0,,,0,0,28,528,0,,,,,1,0,0,0,-,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,1,1,162,27,0,0,";

    #[test]
    fn backend_sessions_are_its_scur() {
        assert_eq!(parse_backend_sessions(BACKEND_STAT_ONE, "blue"), Some(1));
        let header = BACKEND_STAT_ONE.lines().next().unwrap();
        let idle = format!("{header}\n{BACKEND_ROW_IDLE}\n\n");
        assert_eq!(parse_backend_sessions(&idle, "blue"), Some(0));
        // Another backend's row, or the servers' rows only, are no answer.
        assert_eq!(parse_backend_sessions(BACKEND_STAT_ONE, "green"), None);
        let servers_only = "# pxname,svname,scur\nblue,s1,3\n";
        assert_eq!(parse_backend_sessions(servers_only, "blue"), None);
        assert_eq!(parse_backend_sessions("No such proxy.\n\n", "blue"), None);
        assert_eq!(
            parse_backend_sessions("# pxname,svname\nblue,BACKEND\n", "blue"),
            None
        );
    }

    #[test]
    fn map_list_gives_file_names() {
        let reply = "# id (file) description\n2 (/tmp/hx/live.map) pattern loaded from file '/tmp/hx/live.map' used by map at file 'h.cfg' line 10. curr_ver=0 next_ver=0 entry_cnt=2\n\n";
        assert_eq!(parse_map_list(reply), vec!["/tmp/hx/live.map".to_string()]);
    }
}

//! The include file cutover owns: what it says, and reading it back.
//!
//! nginx has no runtime API, so a cut-over is a new file and a reload. The
//! file holds the upstream the operator's `proxy_pass` names, with the
//! colour's endpoints, and a *marker*: a tiny loopback server that answers
//! `<colour> <generation>`. The file on disk only says what nginx would load;
//! the marker says what the running workers loaded, and the generation (new
//! for every write) tells a reload that happened from one that did not.
//!
//! ```nginx
//! upstream cutover_public {
//!     server 127.0.0.1:9102;
//! }
//! server {
//!     listen 127.0.0.1:8099;
//!     server_name cutover-public;
//!     access_log off;
//!     location = /cutover/public {
//!         default_type text/plain;
//!         return 200 "green 1718000000123456789\n";
//!     }
//!     location / {
//!         return 404;
//!     }
//! }
//! ```

use std::fs;
use std::net::SocketAddr;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::settings::Owned;

/// What the marker says when no colour is routed (a preview removed).
pub(crate) const NONE: &str = "none";

/// What an include file routes to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Routing {
    /// The colour's name, or [`NONE`].
    pub colour: String,
    /// The write's generation: unique per write.
    pub generation: String,
    /// The upstream's servers (`host:port`).
    pub servers: Vec<String>,
}

/// A generation no earlier write has used: nanoseconds since the epoch.
pub(crate) fn new_generation() -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    now.as_nanos().to_string()
}

/// Whether `text` can go into the file as one nginx word (endpoints, colour
/// names): nothing that nginx's parser or the marker's quoted string would
/// read specially.
pub(crate) fn is_word(text: &str) -> bool {
    !text.is_empty()
        && !text.chars().any(|c| {
            c.is_whitespace()
                || c.is_control()
                || matches!(c, ';' | '{' | '}' | '"' | '\'' | '\\' | '$' | '#')
        })
}

/// The include file for `routing` (whose words the caller has checked with
/// [`is_word`]). An empty server list renders a server marked `down`, so the
/// upstream exists for `proxy_pass` and answers 502.
pub(crate) fn render(router: &str, owned: &Owned, marker: SocketAddr, routing: &Routing) -> String {
    let mut servers = String::new();
    for server in &routing.servers {
        servers.push_str(&format!("    server {server};\n"));
    }
    if routing.servers.is_empty() {
        servers.push_str("    server 127.0.0.1:1 down;\n");
    }
    format!(
        "# Managed by cutover for router \"{router}\": rewritten on every cut-over, so\n\
         # edit cutover's configuration, not this file. Include it at http level and\n\
         # send traffic with `proxy_pass http://{upstream};`.\n\
         upstream {upstream} {{\n\
         {servers}\
         }}\n\
         server {{\n\
         \x20   listen {marker};\n\
         \x20   server_name {server_name};\n\
         \x20   access_log off;\n\
         \x20   location = {location} {{\n\
         \x20       default_type text/plain;\n\
         \x20       return 200 \"{colour} {generation}\\n\";\n\
         \x20   }}\n\
         \x20   location / {{\n\
         \x20       return 404;\n\
         \x20   }}\n\
         }}\n",
        upstream = owned.upstream,
        server_name = owned.server_name,
        location = owned.location,
        colour = routing.colour,
        generation = routing.generation,
    )
}

/// Read back what an include file routes to: the marker's colour and
/// generation and the upstream's servers. `None` when the file has no marker
/// for `owned` (not written by cutover, or edited beyond recognition).
pub(crate) fn parse(text: &str, owned: &Owned) -> Option<Routing> {
    let mut lines = text.lines().map(strip_comment);
    let upstream_open = format!("upstream {} {{", owned.upstream);
    let mut servers = Vec::new();
    let mut lines_after_upstream = lines.clone();
    if lines_after_upstream.any(|l| squash(l) == upstream_open) {
        for line in lines_after_upstream.by_ref() {
            if line.starts_with('}') {
                break;
            }
            if let Some(rest) = line.strip_prefix("server ") {
                let server = rest.trim_end_matches(';').split_whitespace().next();
                servers.extend(server.map(str::to_string));
            }
        }
    }
    let location_open = format!("location = {} {{", owned.location);
    lines.find(|l| squash(l) == location_open)?;
    let body = lines
        .take_while(|l| !l.starts_with('}'))
        .find_map(|l| l.strip_prefix("return 200 \""))?;
    let (colour, generation) =
        parse_marker_body(body.split('"').next()?.replace("\\n", "\n").as_str())?;
    Some(Routing {
        colour,
        generation,
        servers,
    })
}

/// The marker's answer, `<colour> <generation>`, split.
pub(crate) fn parse_marker_body(body: &str) -> Option<(String, String)> {
    let mut words = body.split_whitespace();
    let colour = words.next()?.to_string();
    let generation = words.next()?.to_string();
    words.next().is_none().then_some((colour, generation))
}

fn strip_comment(line: &str) -> &str {
    line.split('#').next().unwrap_or_default().trim()
}

/// `line` with runs of blanks made one space.
fn squash(line: &str) -> String {
    line.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Replace the include with `contents` (cutover_provider::atomic): a crash
/// at any moment leaves the old or the new file. A symlink is followed; the
/// mode and owner are kept, and a new file is readable by nginx's master,
/// often another user than cutover. The temporary name (`.NAME.cutover-
/// XXXXXX.tmp`) matches no `include *.conf` glob.
pub(crate) fn write_atomically(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let how = cutover_provider::atomic::Replace {
        temp_prefix: &format!(".{name}.cutover-"),
        new_mode: 0o644,
        follow_symlink: true,
    };
    cutover_provider::atomic::replace(path, contents, &how)
}

/// Put back what was at `path` before cutover wrote it: its bytes, or no file.
pub(crate) fn restore(path: &Path, previous: Option<&[u8]>) -> std::io::Result<()> {
    match previous {
        Some(bytes) => write_atomically(path, bytes),
        None => match fs::remove_file(path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn owned() -> Owned {
        Owned {
            path: PathBuf::from("/etc/nginx/cutover/public.conf"),
            upstream: "cutover_public".into(),
            server_name: "cutover-public".into(),
            location: "/cutover/public".into(),
        }
    }

    fn routing(colour: &str, servers: &[&str]) -> Routing {
        Routing {
            colour: colour.into(),
            generation: "42".into(),
            servers: servers.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn renders_upstream_and_marker() {
        let text = render(
            "public",
            &owned(),
            "127.0.0.1:8099".parse().unwrap(),
            &routing("green", &["127.0.0.1:9102", "[::1]:9103"]),
        );
        assert!(text.contains(
            "upstream cutover_public {\n    server 127.0.0.1:9102;\n    server [::1]:9103;\n}\n"
        ));
        assert!(text.contains("    listen 127.0.0.1:8099;\n    server_name cutover-public;\n"));
        assert!(text.contains("    location = /cutover/public {\n"));
        assert!(text.contains("        return 200 \"green 42\\n\";\n"));
    }

    #[test]
    fn round_trips() {
        let marker = "127.0.0.1:8099".parse().unwrap();
        for r in [
            routing("green", &["127.0.0.1:9102"]),
            routing("blue", &["127.0.0.1:1", "127.0.0.1:2"]),
            routing(NONE, &[]),
        ] {
            let text = render("public", &owned(), marker, &r);
            let mut expected = r.clone();
            if expected.servers.is_empty() {
                expected.servers = vec!["127.0.0.1:1".into()];
            }
            assert_eq!(parse(&text, &owned()), Some(expected), "{text}");
        }
    }

    #[test]
    fn parses_a_hand_edited_file() {
        let text = "# mine\nupstream   cutover_public  {\n  server 10.0.0.1:80 max_fails=2; # old\n  server 10.0.0.2:80;\n}\nserver {\n location = /cutover/public {\n   return 200 \"blue 7\\n\";\n }\n}\n";
        assert_eq!(
            parse(text, &owned()),
            Some(Routing {
                colour: "blue".into(),
                generation: "7".into(),
                servers: vec!["10.0.0.1:80".into(), "10.0.0.2:80".into()],
            })
        );
    }

    #[test]
    fn another_routers_file_is_not_ours() {
        let mut other = owned();
        other.upstream = "cutover_admin".into();
        other.location = "/cutover/admin".into();
        let text = render(
            "admin",
            &other,
            "127.0.0.1:8099".parse().unwrap(),
            &routing("green", &["127.0.0.1:9102"]),
        );
        assert_eq!(parse(&text, &owned()), None);
        assert_eq!(parse("", &owned()), None);
    }

    #[test]
    fn marker_bodies() {
        assert_eq!(
            parse_marker_body("green 42\n"),
            Some(("green".into(), "42".into()))
        );
        assert_eq!(parse_marker_body("green"), None);
        assert_eq!(parse_marker_body("green 42 x"), None);
        assert_eq!(parse_marker_body("<html>404</html>"), None);
    }

    #[test]
    fn words() {
        assert!(is_word("127.0.0.1:9102"));
        assert!(is_word("[::1]:9102"));
        assert!(is_word("unix:/run/app.sock"));
        for bad in ["", "a b", "a;b", "a{", "a\"", "$x", "a#b", "a\nb"] {
            assert!(!is_word(bad), "{bad:?}");
        }
    }

    #[test]
    fn atomic_write_and_restore() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("public.conf");
        write_atomically(&path, b"one").unwrap();
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o644);
        fs::set_permissions(&path, fs::Permissions::from_mode(0o640)).unwrap();
        write_atomically(&path, b"two").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"two");
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o640);
        restore(&path, Some(b"one")).unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"one");
        restore(&path, None).unwrap();
        assert!(!path.exists());
        assert_eq!(
            fs::read_dir(dir.path()).unwrap().count(),
            0,
            "no temporary file left"
        );
    }
}

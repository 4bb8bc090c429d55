//! The connection settings: where the connection string comes from, what
//! the state is called in messages (never the string itself: it may hold a
//! password), TLS, and the time limits that turn a server that went away
//! into an error within seconds.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tokio_postgres::config::Host;
use tokio_postgres::Config;
use tokio_postgres_rustls::MakeRustlsConnect;

use crate::config::ca::read_ca_file;
use crate::config::model::PgSettings;

/// The environment variable holding the connection string when the
/// configuration has no `conn_str` (so that no password sits in it).
pub const CONN_STR_ENV: &str = "CUTOVER_PG_CONN_STR";

/// How long one TCP connection attempt may take (libpq's
/// `connect_timeout`), unless the connection string says otherwise.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long sent data may stay unacknowledged before the kernel gives the
/// connection up (a server that vanished from the network).
const TCP_USER_TIMEOUT: Duration = Duration::from_secs(10);
/// TCP keepalives on an idle session (the lock session is idle for a whole
/// apply): the first probe after 5s, then every 2s, 3 probes.
const KEEPALIVE_IDLE: Duration = Duration::from_secs(5);
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(2);
const KEEPALIVE_RETRIES: u32 = 3;
/// tokio-postgres's default `keepalives_idle`, kept when changed.
const DEFAULT_KEEPALIVE_IDLE: Duration = Duration::from_secs(2 * 60 * 60);

/// The connection string of `settings`: `conn_str`, else the environment's
/// [`CONN_STR_ENV`].
pub(super) fn conn_str(settings: &PgSettings) -> Result<String, String> {
    let given = |s: &String| !s.trim().is_empty();
    settings
        .conn_str
        .clone()
        .filter(given)
        .or_else(|| std::env::var(CONN_STR_ENV).ok().filter(given))
        .ok_or_else(|| {
            format!(
                "no connection string: set the environment variable {CONN_STR_ENV} \
                 (postgres://USER:PASSWORD@HOST:PORT/DB?sslmode=require), or `conn_str` in \
                 the backend \"pg\" block"
            )
        })
}

/// Parse `conn` and bound its time limits. The error never quotes the
/// string (tokio-postgres's parse errors name only the option).
pub(super) fn parse(conn: &str) -> Result<Config, String> {
    let mut config: Config =
        verify_modes_as_require(conn)
            .parse()
            .map_err(|e: tokio_postgres::Error| {
                // The kind ("invalid connection string") goes without saying.
                let why =
                    std::error::Error::source(&e).map_or_else(|| e.to_string(), |s| s.to_string());
                format!("the connection string cannot be used: {why}")
            })?;
    bound(&mut config);
    if config.get_application_name().is_none() {
        config.application_name("cutover");
    }
    Ok(config)
}

/// libpq's `sslmode=verify-full` and `verify-ca`, which tokio-postgres
/// does not parse, as `require`: cutover verifies the server's certificate
/// and its host name whenever it uses TLS (see the module's documentation),
/// so `require` already means `verify-full`. A connection string shared
/// with psql then works unchanged.
fn verify_modes_as_require(conn: &str) -> String {
    let mut out = conn.to_owned();
    for mode in ["verify-full", "verify-ca"] {
        let option = format!("sslmode={mode}");
        let mut from = 0;
        while let Some(at) = out[from..].find(&option).map(|i| i + from) {
            let end = at + option.len();
            let starts = at == 0 || matches!(out.as_bytes()[at - 1], b' ' | b'\t' | b'?' | b'&');
            let ends = end == out.len() || matches!(out.as_bytes()[end], b' ' | b'\t' | b'&');
            if starts && ends {
                out.replace_range(at..end, "sslmode=require");
                from = at + "sslmode=require".len();
            } else {
                from = end;
            }
        }
    }
    out
}

/// Time limits, where the connection string sets none.
fn bound(config: &mut Config) {
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(CONNECT_TIMEOUT);
    }
    if config.get_tcp_user_timeout().is_none() {
        config.tcp_user_timeout(TCP_USER_TIMEOUT);
    }
    if config.get_keepalives() {
        if config.get_keepalives_idle() == DEFAULT_KEEPALIVE_IDLE {
            config.keepalives_idle(KEEPALIVE_IDLE);
        }
        if config.get_keepalives_interval().is_none() {
            config.keepalives_interval(KEEPALIVE_INTERVAL);
        }
        if config.get_keepalives_retries().is_none() {
            config.keepalives_retries(KEEPALIVE_RETRIES);
        }
    }
}

/// Where the state is, for messages: `host:port/dbname` (several hosts
/// joined by commas). No user, no password.
pub(super) fn location(config: &Config) -> String {
    let hosts: Vec<String> = if config.get_hosts().is_empty() {
        config
            .get_hostaddrs()
            .iter()
            .map(ToString::to_string)
            .collect()
    } else {
        config
            .get_hosts()
            .iter()
            .map(|h| match h {
                Host::Tcp(name) => name.clone(),
                Host::Unix(path) => path.display().to_string(),
            })
            .collect()
    };
    let ports = config.get_ports();
    let at: Vec<String> = hosts
        .iter()
        .enumerate()
        .map(|(i, host)| {
            let port = ports.get(i).or(ports.first()).copied().unwrap_or(5432);
            if host.contains(':') && !host.starts_with('/') {
                format!("[{host}]:{port}")
            } else {
                format!("{host}:{port}")
            }
        })
        .collect();
    let db = config
        .get_dbname()
        .or(config.get_user())
        .unwrap_or("(no database)");
    format!("{}/{db}", at.join(","))
}

/// The TLS connector: rustls with the ring provider, trusting the
/// operating system's CAs and `ca_file`, as the health checks do
/// (src/engine/health/client.rs says why each).
pub(super) fn tls(ca_file: Option<&Path>) -> Result<MakeRustlsConnect, String> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
    if let Some(path) = ca_file {
        let certs = read_ca_file(path).map_err(|e| format!("`ca_file` {}: {e}", path.display()))?;
        for cert in certs {
            roots
                .add(cert)
                .map_err(|e| format!("`ca_file` {}: {e}", path.display()))?;
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("cannot set up TLS: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    // PostgreSQL 17 checks the protocol a TLS client names, when it names one.
    config.alpn_protocols = vec![b"postgresql".to_vec()];
    Ok(MakeRustlsConnect::new(config))
}

/// A tokio-postgres error as one clause: the server's message (with its
/// detail and hint) for an error the server sent, else the client's, with
/// its cause.
pub(super) fn cause(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => {
            let mut text = db.message().to_owned();
            if let Some(detail) = db.detail() {
                text.push_str(&format!(" ({detail})"));
            }
            if let Some(hint) = db.hint() {
                text.push_str(&format!("; {hint}"));
            }
            text
        }
        None => {
            // tokio-postgres's Display names the kind only ("error
            // performing TLS handshake"): the why is in the sources.
            let mut text = e.to_string();
            let mut source = std::error::Error::source(e);
            while let Some(s) = source {
                let clause = s.to_string();
                if !text.ends_with(&clause) {
                    text.push_str(": ");
                    text.push_str(&clause);
                }
                source = s.source();
            }
            text
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(conn_str: Option<&str>) -> PgSettings {
        PgSettings {
            conn_str: conn_str.map(str::to_owned),
            name: "default".into(),
            schema: "public".into(),
            ca_file: None,
            span: crate::config::model::Span {
                file: "main.hcl".into(),
                line: 1,
                column: 1,
                start: 0,
                end: 0,
            },
        }
    }

    #[test]
    fn the_location_names_no_user_nor_password() {
        let url = "postgres://alice:s3cret@db.example:6543/app?sslmode=require";
        assert_eq!(location(&parse(url).unwrap()), "db.example:6543/app");
        let kv = "host=10.0.0.5,10.0.0.6 port=5433 user=bob password=s3cret dbname=ops";
        assert_eq!(
            location(&parse(kv).unwrap()),
            "10.0.0.5:5433,10.0.0.6:5433/ops"
        );
        let v6 = "host=::1 user=bob password=s3cret";
        assert_eq!(location(&parse(v6).unwrap()), "[::1]:5432/bob");
    }

    #[test]
    fn a_bad_connection_string_is_refused_without_quoting_it() {
        for bad in [
            "postgres://alice:s3cret@db:notaport/app",
            "host=db password=s3cret sslmode=sometimes",
            "host=db password=s3cret nonsense=1",
            "host=db password='s3cret",
        ] {
            let e = parse(bad).unwrap_err();
            assert!(!e.contains("s3cret"), "{e}");
            assert!(e.starts_with("the connection string cannot be used"), "{e}");
        }
    }

    #[test]
    fn verify_full_is_require_with_verification() {
        assert_eq!(
            verify_modes_as_require("host=db sslmode=verify-full user=x"),
            "host=db sslmode=require user=x"
        );
        assert_eq!(
            verify_modes_as_require("postgres://db/app?sslmode=verify-ca&x=1"),
            "postgres://db/app?sslmode=require&x=1"
        );
        // Not an option of its own: left as it is.
        assert_eq!(
            verify_modes_as_require("password=xsslmode=verify-full"),
            "password=xsslmode=verify-full"
        );
        let config = parse("host=db sslmode=verify-full").unwrap();
        assert_eq!(
            config.get_ssl_mode(),
            tokio_postgres::config::SslMode::Require
        );
    }

    #[test]
    fn time_limits_are_bounded_unless_the_string_sets_them() {
        let config = parse("host=db").unwrap();
        assert_eq!(config.get_connect_timeout(), Some(&CONNECT_TIMEOUT));
        assert_eq!(config.get_keepalives_idle(), KEEPALIVE_IDLE);
        assert_eq!(config.get_application_name(), Some("cutover"));
        let config = parse("host=db connect_timeout=3 application_name=ci").unwrap();
        assert_eq!(config.get_connect_timeout(), Some(&Duration::from_secs(3)));
        assert_eq!(config.get_application_name(), Some("ci"));
    }

    #[test]
    fn the_connection_string_comes_from_the_block_or_the_environment() {
        assert_eq!(
            conn_str(&settings(Some("host=db"))).unwrap(),
            "host=db".to_owned()
        );
        // No test sets the variable; a developer's shell might.
        if std::env::var_os(CONN_STR_ENV).is_none() {
            let e = conn_str(&settings(None)).unwrap_err();
            assert!(e.contains(CONN_STR_ENV), "{e}");
            let e = conn_str(&settings(Some("  "))).unwrap_err();
            assert!(e.contains("no connection string"), "{e}");
        }
    }
}

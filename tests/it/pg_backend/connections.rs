//! Reaching the database: the connection string from the environment
//! (never printed), what happens without one or with a wrong password or
//! nobody listening, and TLS by `sslmode`, verified.

use std::time::{Duration, Instant};

use super::{pg_block, postgres, Checkout, DB};
use crate::postgres_support::{Postgres, PASSWORD};

#[test]
fn pg_without_a_connection_string_or_with_a_wrong_password_is_a_clear_error() {
    let pg = postgres();
    let config = pg_block("default", "");
    let none = Checkout::with_conn(String::new(), &config);
    // validate needs no connection.
    none.run(&["validate"]).code(0);
    none.run_unchecked(&["plan"])
        .code(1)
        .stderr_has("PostgreSQL state \"default\"")
        .stderr_has("CUTOVER_PG_CONN_STR");

    let wrong = pg.conn_str(DB).replace(PASSWORD, "not-the-password");
    let run = Checkout::with_conn(wrong, &config)
        .run_unchecked(&["plan"])
        .code(1)
        .stderr_has("password authentication failed");
    assert!(!run.stderr.contains("not-the-password"), "{}", run.stderr);

    // Nothing listens: refused at once, naming where.
    let closed = format!(
        "host=127.0.0.1 port={} user=postgres password={PASSWORD} dbname={DB}",
        crate::haproxy_support::free_port()
    );
    let started = Instant::now();
    let run = Checkout::with_conn(closed, &config)
        .run_unchecked(&["plan"])
        .code(1)
        .stderr_has("cannot connect to PostgreSQL");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    assert!(run.stderr.contains("127.0.0.1:"), "{}", run.stderr);
}

/// A CA and a server certificate it signs for 127.0.0.1 and localhost, as
/// PEM: (ca, cert, key).
fn certificates() -> (String, String, String) {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
    let key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()])
        .unwrap()
        .signed_by(&key, &ca)
        .unwrap();
    (ca.pem(), leaf.pem(), key.serialize_pem())
}

#[test]
fn pg_sslmode_require_needs_tls_and_a_certificate_it_can_verify() {
    // A server without TLS: `require` refuses to go on in clear.
    let plain = postgres();
    let conn = plain
        .conn_str(DB)
        .replace("sslmode=disable", "sslmode=require");
    Checkout::with_conn(conn, &pg_block("default", ""))
        .run_unchecked(&["plan"])
        .code(1)
        .stderr_has("PostgreSQL state \"default\"")
        .stderr_has("server does not support TLS");
    drop(plain);

    // A server that takes TCP connections over TLS only.
    let mut pg = Postgres::init();
    let (ca, cert, key) = certificates();
    pg.enable_tls(&cert, &key);
    let hba = pg.data_dir().join("pg_hba.conf");
    let text = std::fs::read_to_string(&hba).unwrap();
    std::fs::write(&hba, text.replace("\nhost ", "\nhostssl ")).unwrap();
    pg.start_server();
    pg.create_db(DB);
    let verify_full = pg
        .conn_str(DB)
        .replace("sslmode=disable", "sslmode=verify-full");

    // Its CA is not the system's: refused, saying why.
    let untrusted = Checkout::with_conn(verify_full.clone(), &pg_block("default", ""));
    untrusted
        .run_unchecked(&["plan"])
        .code(1)
        .stderr_has("UnknownIssuer");
    // With it as `ca_file`: works, over TLS (the server takes nothing else).
    let trusted = Checkout::with_conn(
        verify_full,
        &pg_block("default", "    ca_file = \"ca.pem\"\n"),
    );
    trusted.case.write("ca.pem", &ca);
    trusted.run(&["init"]).code(0).stdout_has("Created state");
    assert_eq!(pg.psql(DB, "select count(*) from cutover_states"), "1");
    // A host name the certificate does not name is refused.
    let conn = format!(
        "host=not-in-the-certificate.test hostaddr=127.0.0.1 port={} user=postgres \
         password={PASSWORD} dbname={DB} sslmode=require",
        pg.port
    );
    let wrong_name = Checkout::with_conn(conn, &pg_block("default", "    ca_file = \"ca.pem\"\n"));
    wrong_name.case.write("ca.pem", &ca);
    wrong_name
        .run_unchecked(&["plan"])
        .code(1)
        .stderr_has("certificate not valid for name \"not-in-the-certificate.test\"");
}

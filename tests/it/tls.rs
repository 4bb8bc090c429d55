//! Health gates over HTTPS, end to end: demo-apps serving TLS with a
//! certificate from a CA made by the test, a real HAProxy router, and
//! `health { url = "https://..." ca_file = "ca.pem" }` gating the cut-over.

use std::path::Path;

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, KeyUsagePurpose,
};

use crate::crash::Rig;
use crate::support::Case;

/// Write into `dir` a new CA (`ca.pem`) and a server certificate it signs
/// for 127.0.0.1 and localhost (`server.pem`, `server.key`).
fn write_certificates(dir: &Path) {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(DnType::CommonName, "cutover tests CA");
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
    let key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()])
        .unwrap()
        .signed_by(&key, &ca)
        .unwrap();
    std::fs::write(dir.join("ca.pem"), ca.pem()).unwrap();
    std::fs::write(dir.join("server.pem"), leaf.pem()).unwrap();
    std::fs::write(dir.join("server.key"), key.serialize_pem()).unwrap();
}

/// A demo-app environment serving HTTPS, checked over HTTPS (status and
/// release), trusting `ca.pem` when `ca_file` is true.
fn tls_env(rig: &Rig, name: &str, release: &str, ca_file: bool) -> String {
    let dir = rig.case.path();
    let (cert, key) = (dir.join("server.pem"), dir.join("server.key"));
    let port = rig.port(name);
    let ca = if ca_file {
        "ca_file      = \"ca.pem\""
    } else {
        ""
    };
    let health = format!(
        "url          = \"https://127.0.0.1:{port}/healthz\"
    release_path = \"https://127.0.0.1:{port}/version\"
    {ca}
    interval     = \"50ms\"
    timeout      = \"3s\""
    );
    let flags = [
        "--tls-cert",
        cert.to_str().unwrap(),
        "--tls-key",
        key.to_str().unwrap(),
    ];
    rig.process_env(name, release, &flags, &health)
}

fn config(rig: &Rig, green_release: &str, green_ca_file: bool, live: &str) -> String {
    format!(
        "{}{}{}",
        tls_env(rig, "blue", "1", true),
        tls_env(rig, "green", green_release, green_ca_file),
        rig.router(live)
    )
}

#[test]
fn an_https_health_check_with_its_ca_file_gates_the_cutover() {
    let rig = Rig::start();
    write_certificates(rig.case.path());
    rig.write(&config(&rig, "1", true, "blue"));
    rig.run(&["apply", "--auto-approve"]).code(0);
    rig.assert_routes_to("blue");

    rig.write(&config(&rig, "2", true, "green"));
    rig.run(&["plan"]).code(0).stdout_has(&format!(
        "GET https://127.0.0.1:{}/healthz -> 200",
        rig.green
    ));
    let apply = rig.run(&["apply", "--auto-approve"]).code(0);
    assert!(
        apply.stdout.contains("health.green"),
        "the gate ran:\n{}",
        apply.stdout
    );
    rig.assert_routes_to("green");
    // The green demo-app really runs release 2 (and speaks only TLS).
    let state = rig.state();
    assert_eq!(state["environments"]["green"]["release"], "2", "{state}");
}

#[test]
fn an_https_health_check_without_its_ca_fails_the_gate_as_tls_unknown_issuer() {
    let rig = Rig::start();
    write_certificates(rig.case.path());
    rig.write(&config(&rig, "1", true, "blue"));
    rig.run(&["apply", "--auto-approve"]).code(0);
    rig.assert_routes_to("blue");

    // Green's new release is checked without trusting the test CA.
    rig.write(&config(&rig, "2", false, "green"));
    let apply = rig.run(&["apply", "--auto-approve"]).code(1);
    let want = format!(
        "environment.green did not pass its health check within 3s: waited for GET https://127.0.0.1:{port}/healthz -> 200; \
         last: https://127.0.0.1:{port}/healthz: TLS: unknown issuer: the certificate is not signed by a trusted CA",
        port = rig.green
    );
    assert!(apply.stderr.contains(&want), "{}", apply.stderr);
    rig.assert_routes_to("blue");
}

/// A missing `ca_file` is a configuration error at the attribute, for
/// `validate` and `plan` alike, before anything is contacted.
#[test]
fn a_missing_ca_file_is_a_config_error_at_its_place_for_tls_checks() {
    let case = Case::with_main(
        r#"environment "green" {
  release  = "1"
  endpoint = "127.0.0.1:1"
  health {
    url     = "https://127.0.0.1:1/healthz"
    ca_file = "certs/ca.pem"
  }
}
"#,
    );
    for command in ["validate", "plan"] {
        let run = case.run(&[command]).code(1);
        let want = format!(
            "error: `ca_file` \"certs/ca.pem\" cannot be used: cannot read it: No such file or directory (os error 2)\n \
             --> main.hcl:6:15\n  |\n\
             6 |     ca_file = \"certs/ca.pem\"\n  |               ^^^^^^^^^^^^^^\n  \
             = help: `ca_file` names a PEM file of CA certificates, relative to the configuration directory ({})\n",
            std::fs::canonicalize(case.path()).unwrap().display()
        );
        assert!(
            run.stderr.contains(&want),
            "{command}:\n{}\nwant:\n{want}",
            run.stderr
        );
    }
}

//! The HTTP clients that health checks run on: one per distinct `ca_file`
//! (the system's CAs alone being one more), built on first use and shared by
//! every probe after it, so that thousands of gates reuse a few pools of
//! kept-alive connections instead of building a client (and re-reading the
//! trust store) per probe.
//!
//! # TLS
//!
//! - **rustls with the `ring` crypto provider.** ring compiles a small C
//!   and assembly core with `cc` alone; aws-lc-rs, reqwest's default,
//!   compiles all of AWS-LC (and wants cmake for FIPS and some targets).
//!   Measured on reqwest alone, cold release builds: TLS with ring added
//!   about 50 s of CPU and 2.3 MB to the binary, with aws-lc-rs about 105 s
//!   and 4.5 MB. A health check needs neither aws-lc's FIPS mode nor its
//!   post-quantum key exchange. The provider is given to each client's
//!   config explicitly rather than installed process wide, so nothing
//!   depends on who installed what first.
//! - **The operating system's trust store** (`rustls-native-certs`: the
//!   distribution's bundle, or `SSL_CERT_FILE` / `SSL_CERT_DIR`), read once
//!   per process, plus the `ca_file` of the check. Health endpoints are
//!   mostly internal services signed by the operator's own CA, which is
//!   installed in the OS store (as curl, HAProxy and nginx on the same host
//!   expect); a bundle compiled into the binary (webpki-roots) would ignore
//!   it and go stale with the binary.
//! - An empty system store is not an error: plain `http://` checks keep
//!   working on a minimal container, and an `https://` check there fails
//!   with "unknown issuer" unless it has a `ca_file`. (This is why the config
//!   is built here rather than by rustls-platform-verifier, which refuses to
//!   build a client at all when the system has no CA.)

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use rustls_pki_types::CertificateDer;

use crate::config::ca::{read_ca_file, CaFileError};

/// Why no client could be built for a check.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The check's `ca_file` can no longer be used (it was checked when the
    /// configuration was loaded, so it changed since, e.g. under a saved plan).
    #[error("`ca_file` {}: {source}", path.display())]
    CaFile {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        #[source]
        source: CaFileError,
    },
    /// rustls refused the TLS settings.
    #[error("cannot set up TLS: {0}")]
    Tls(#[source] rustls::Error),
    /// reqwest could not build the client.
    #[error("cannot build the HTTP client: {0}")]
    Build(#[source] reqwest::Error),
}

/// The shared clients, by the `ca_file` they trust (`None`: system CAs only).
#[derive(Debug, Default)]
pub(super) struct Clients {
    system_roots: OnceLock<Vec<CertificateDer<'static>>>,
    by_ca_file: Mutex<HashMap<Option<PathBuf>, reqwest::Client>>,
}

impl Clients {
    /// The client for checks that trust `ca_file` (and the system's CAs),
    /// built on the first call for that file.
    pub(super) fn get(&self, ca_file: Option<&Path>) -> Result<reqwest::Client, ClientError> {
        let key = ca_file.map(Path::to_path_buf);
        // Building under the lock makes concurrent first gates share one
        // client; it happens once per CA set, and takes milliseconds.
        let mut clients = self
            .by_ca_file
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(client) = clients.get(&key) {
            return Ok(client.clone());
        }
        let client = self.build(ca_file)?;
        clients.insert(key, client.clone());
        Ok(client)
    }

    /// How many clients have been built (one per distinct CA set).
    #[cfg(test)]
    pub(super) fn built(&self) -> usize {
        self.by_ca_file
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .len()
    }

    fn build(&self, ca_file: Option<&Path>) -> Result<reqwest::Client, ClientError> {
        let mut roots = rustls::RootCertStore::empty();
        // Certificates of the system store that rustls cannot use are
        // skipped, as every TLS client does: one odd file in
        // /etc/ssl/certs must not stop every check.
        roots.add_parsable_certificates(self.system_roots().iter().cloned());
        if let Some(path) = ca_file {
            let certs = read_ca_file(path).map_err(|source| ClientError::CaFile {
                path: path.to_path_buf(),
                source,
            })?;
            for cert in certs {
                roots.add(cert).map_err(ClientError::Tls)?;
            }
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(ClientError::Tls)?
            .with_root_certificates(roots)
            .with_no_client_auth();
        // reqwest is built with HTTP/1 only.
        tls.alpn_protocols = vec![b"http/1.1".to_vec()];
        reqwest::Client::builder()
            .no_proxy()
            .pool_idle_timeout(Duration::from_secs(30))
            .dns_resolver(Resolver)
            .tls_backend_preconfigured(tls)
            .build()
            .map_err(ClientError::Build)
    }

    fn system_roots(&self) -> &[CertificateDer<'static>] {
        self.system_roots.get_or_init(|| {
            // Errors (an unreadable file in the store) leave the certificates
            // that could be read; none at all is handled by the caller.
            rustls_native_certs::load_native_certs().certs
        })
    }
}

/// A host name that did not resolve: the error the resolver gives reqwest,
/// so that [`super::failure::classify`] can tell it apart by type.
#[derive(Debug, thiserror::Error)]
#[error("cannot resolve {host}: {source}")]
pub(super) struct NameNotResolved {
    /// The name.
    pub host: String,
    /// What the system resolver said.
    #[source]
    pub source: std::io::Error,
}

/// The system resolver (getaddrinfo on a blocking thread, as reqwest's own),
/// failing with a [`NameNotResolved`].
struct Resolver;

impl Resolve for Resolver {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().to_string();
        Box::pin(async move {
            let found = tokio::net::lookup_host((host.as_str(), 0))
                .await
                .map(|addrs| addrs.collect::<Vec<_>>());
            match found {
                Ok(addrs) if !addrs.is_empty() => Ok(Box::new(addrs.into_iter()) as Addrs),
                Ok(_) => Err(Box::new(NameNotResolved {
                    host,
                    source: std::io::Error::new(std::io::ErrorKind::NotFound, "no address"),
                }) as _),
                Err(source) => Err(Box::new(NameNotResolved { host, source }) as _),
            }
        })
    }
}

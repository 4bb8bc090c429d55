//! `ca_file`: a PEM bundle of CA certificates that a `health {}` or
//! `verify {}` check trusts for `https://` URLs, in addition to the system's.
//!
//! The file is read here, when the configuration is loaded, so that a missing
//! or broken bundle is a config error at the attribute (`validate` and `plan`
//! find it) rather than a health gate that fails in the middle of an apply.
//! The engine reads it again with the same function when it builds the HTTP
//! client, so both agree on what a usable bundle is.

use std::io::Read;
use std::path::Path;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;

/// The largest bundle accepted. A system bundle of every public CA is about
/// 200 KiB; the limit keeps a mistaken path (a disk image, a log) from being
/// read whole.
const MAX_BYTES: u64 = 16 * 1024 * 1024;

/// Why a `ca_file` cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum CaFileError {
    /// The file cannot be opened or read (missing, unreadable).
    #[error("cannot read it: {0}")]
    Read(#[source] std::io::Error),
    /// The path names a directory, a device or a pipe.
    #[error("it is not a regular file")]
    NotAFile,
    /// The file is larger than any CA bundle.
    #[error("it is larger than {} MiB: not a CA bundle", MAX_BYTES / (1024 * 1024))]
    TooLarge,
    /// A PEM section is malformed (bad base64, no end line...).
    #[error("it is not valid PEM: {0}")]
    Pem(#[source] rustls_pki_types::pem::Error),
    /// The file holds no `BEGIN CERTIFICATE` section at all.
    #[error("it holds no PEM certificate (-----BEGIN CERTIFICATE-----)")]
    NoCertificates,
    /// A certificate section does not hold an X.509 certificate usable as a
    /// trust anchor.
    #[error("certificate {index} of the file cannot be used as a CA: {source}")]
    BadCertificate {
        /// 1-based position of the certificate in the file.
        index: usize,
        /// What rustls found wrong with it.
        #[source]
        source: rustls::Error,
    },
}

/// Read the CA certificates of the PEM bundle at `path`: every
/// `CERTIFICATE` section, in file order (other sections, such as a key, are
/// ignored). Fails unless there is at least one and each can be a trust anchor.
pub fn read_ca_file(path: &Path) -> Result<Vec<CertificateDer<'static>>, CaFileError> {
    // Checked before opening too: opening a named pipe blocks until
    // something writes to it.
    if !std::fs::metadata(path)
        .map_err(CaFileError::Read)?
        .is_file()
    {
        return Err(CaFileError::NotAFile);
    }
    let file = std::fs::File::open(path).map_err(CaFileError::Read)?;
    if !file.metadata().map_err(CaFileError::Read)?.is_file() {
        return Err(CaFileError::NotAFile);
    }
    let mut bytes = Vec::new();
    file.take(MAX_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(CaFileError::Read)?;
    if bytes.len() as u64 > MAX_BYTES {
        return Err(CaFileError::TooLarge);
    }
    let certs = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(CaFileError::Pem)?;
    if certs.is_empty() {
        return Err(CaFileError::NoCertificates);
    }
    let mut store = rustls::RootCertStore::empty();
    for (i, cert) in certs.iter().enumerate() {
        store
            .add(cert.clone())
            .map_err(|source| CaFileError::BadCertificate {
                index: i + 1,
                source,
            })?;
    }
    Ok(certs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn a_bundle_of_two_cas_reads_both() {
        let dir = tempfile::tempdir().unwrap();
        let a = rcgen::generate_simple_self_signed(["a.test".to_string()]).unwrap();
        let b = rcgen::generate_simple_self_signed(["b.test".to_string()]).unwrap();
        // A key in the bundle is skipped, not an error.
        let text = format!(
            "{}{}{}",
            a.cert.pem(),
            a.signing_key.serialize_pem(),
            b.cert.pem()
        );
        let certs = read_ca_file(&write(dir.path(), "ca.pem", &text)).unwrap();
        assert_eq!(certs.len(), 2);
        assert_eq!(certs[1].as_ref(), b.cert.der().as_ref());
    }

    #[test]
    fn every_unusable_file_is_named_for_what_is_wrong() {
        let dir = tempfile::tempdir().unwrap();
        let missing = read_ca_file(&dir.path().join("nope.pem")).unwrap_err();
        assert!(
            matches!(&missing, CaFileError::Read(e) if e.kind() == std::io::ErrorKind::NotFound),
            "{missing:?}"
        );
        assert!(matches!(
            read_ca_file(dir.path()).unwrap_err(),
            CaFileError::NotAFile
        ));
        assert!(matches!(
            read_ca_file(Path::new("/dev/zero")).unwrap_err(),
            CaFileError::NotAFile
        ));
        let fifo = dir.path().join("fifo.pem");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).unwrap();
        assert!(matches!(
            read_ca_file(&fifo).unwrap_err(),
            CaFileError::NotAFile
        ));
        let empty = write(dir.path(), "empty.pem", "");
        assert!(matches!(
            read_ca_file(&empty).unwrap_err(),
            CaFileError::NoCertificates
        ));
        let text = write(dir.path(), "text.pem", "hello, not a certificate\n");
        assert!(matches!(
            read_ca_file(&text).unwrap_err(),
            CaFileError::NoCertificates
        ));
        let truncated = write(
            dir.path(),
            "truncated.pem",
            "-----BEGIN CERTIFICATE-----\nMIIB\n",
        );
        let err = read_ca_file(&truncated).unwrap_err();
        assert!(matches!(err, CaFileError::Pem(_)), "{err:?}");
        // Valid PEM and base64, but not DER of a certificate.
        let garbage = write(
            dir.path(),
            "garbage.pem",
            "-----BEGIN CERTIFICATE-----\naGVsbG8gd29ybGQ=\n-----END CERTIFICATE-----\n",
        );
        let err = read_ca_file(&garbage).unwrap_err();
        assert!(
            matches!(err, CaFileError::BadCertificate { index: 1, .. }),
            "{err:?}"
        );
        assert!(err.to_string().starts_with("certificate 1 of the file"));
    }
}

//! `--tls-cert F --tls-key F`: HTTPS, with HTTP/2 offered by ALPN next to
//! HTTP/1.1.
//!
//! The certificate and key are read and checked against each other before the
//! server binds, so a wrong file is an error at start, not a handshake failure
//! every client sees later.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::{self, ServerConfig};
use tokio_rustls::TlsAcceptor;

/// The PEM files of `--tls-cert` and `--tls-key`.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read the TLS {what} {path}: {err}; pass a readable PEM file to --tls-{what}")]
    Read { what: &'static str, path: PathBuf, err: std::io::Error },
    #[error("{path}: no PEM certificate (\"-----BEGIN CERTIFICATE-----\") in it; --tls-cert takes the certificate chain, leaf first")]
    NoCert { path: PathBuf },
    #[error("{path}: no PEM private key (PKCS#8, PKCS#1 or SEC1) in it{detail}; --tls-key takes the key of the certificate")]
    NoKey { path: PathBuf, detail: String },
    #[error("{path}: not valid PEM ({err}); --tls-{what} takes a PEM file")]
    Pem { what: &'static str, path: PathBuf, err: String },
    #[error("the key {key} does not fit the certificate {cert} ({err}); pass the key the certificate was issued for")]
    Mismatch { cert: PathBuf, key: PathBuf, err: rustls::Error },
}

fn read(what: &'static str, path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|err| TlsError::Read { what, path: path.to_path_buf(), err })
}

/// The acceptor for `files`: the chain and key parsed and matched.
pub fn acceptor(files: &TlsFiles) -> Result<TlsAcceptor, TlsError> {
    let cert_pem = read("cert", &files.cert)?;
    let key_pem = read("key", &files.key)?;
    let certs = CertificateDer::pem_slice_iter(&cert_pem).collect::<Result<Vec<_>, _>>().map_err(|e| TlsError::Pem {
        what: "cert",
        path: files.cert.clone(),
        err: e.to_string(),
    })?;
    if certs.is_empty() {
        return Err(TlsError::NoCert { path: files.cert.clone() });
    }
    let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| match e {
        rustls::pki_types::pem::Error::NoItemsFound => TlsError::NoKey { path: files.key.clone(), detail: String::new() },
        e => TlsError::NoKey { path: files.key.clone(), detail: format!(" ({e})") },
    })?;
    // The provider named, not the process default: the s3 store's reqwest
    // links the same aws-lc-rs, and an implicit default would fail if another
    // dependency ever enabled a second one.
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|err| TlsError::Mismatch { cert: files.cert.clone(), key: files.key.clone(), err })?
        .with_no_client_auth();
    // `with_single_cert` checks that the key's public half is the leaf's.
    let mut config =
        builder.with_single_cert(certs, key).map_err(|err| TlsError::Mismatch { cert: files.cert.clone(), key: files.key.clone(), err })?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// True when the first bytes a client sent start a TLS handshake (a record of
/// type 22); a plain HTTP request starts with its method's letters.
pub fn looks_like_tls(first: &[u8]) -> bool {
    first.first() == Some(&0x16)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plain_http_request_is_not_a_tls_handshake() {
        assert!(!looks_like_tls(b"GET / HTTP/1.1\r\n"));
        assert!(looks_like_tls(&[0x16, 0x03, 0x01, 0x02, 0x00]));
        assert!(!looks_like_tls(b""));
    }

    #[test]
    fn missing_files_and_files_without_pem_say_which_option_to_fix() {
        let dir = tempfile::tempdir().unwrap();
        let junk = dir.path().join("junk.pem");
        std::fs::write(&junk, "not a certificate\n").unwrap();
        let missing = TlsFiles { cert: dir.path().join("nope.pem"), key: junk.clone() };
        let e = acceptor(&missing).err().unwrap().to_string();
        assert!(e.contains("nope.pem") && e.contains("--tls-cert"), "{e}");
        let no_cert = TlsFiles { cert: junk.clone(), key: junk.clone() };
        let e = acceptor(&no_cert).err().unwrap().to_string();
        assert!(e.contains("no PEM certificate") && e.contains("--tls-cert"), "{e}");
    }
}

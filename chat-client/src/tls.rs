//! TLS for `https` and `wss` servers: the CA roots a client trusts (the system's, as
//! rustls-native-certs finds them, plus the caller's PEM certificates), the one rustls
//! configuration made from them when the client is built and shared by its REST calls
//! and its WebSockets, and the words a failed handshake is reported in. A server's
//! certificate is always verified, against those roots and the URL's host: nothing here
//! can turn that off. It knows nothing of HTTP or of the contract.
//!
//! rustls on its `ring` provider (not aws-lc-rs, whose build needs cmake), given to the
//! configuration explicitly: no process-wide default provider is installed or relied on.
//! The approach is chat-http's `webhooks_tls.rs`; the code is not shared, since a client
//! must not depend on the server.

use std::sync::Arc;

use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use rustls::{CertificateError, ClientConfig, RootCertStore};

/// The rustls configuration of one client, made once from its roots.
pub(crate) fn config(extra_ca_pem: &[Vec<u8>]) -> Result<Arc<ClientConfig>, String> {
    let mut roots = system_roots();
    for pem in extra_ca_pem {
        for cert in parse_pem(pem)? {
            roots
                .add(cert)
                .map_err(|e| format!("not a usable CA certificate: {e}"))?;
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("ring's provider supports the default protocol versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    // HTTP/1.1 only (reqwest is built without HTTP/2; a WebSocket upgrade is HTTP/1.1).
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// The system's CA roots (`/etc/ssl/certs`, or `SSL_CERT_FILE`, `SSL_CERT_DIR`); none
/// when there are none, or when they cannot be read (then only the caller's are trusted).
fn system_roots() -> RootCertStore {
    let mut roots = RootCertStore::empty();
    roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
    roots
}

/// The certificates in a PEM file, at least one.
fn parse_pem(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("not PEM: {e}"))?;
    if certs.is_empty() {
        return Err("holds no PEM certificate (-----BEGIN CERTIFICATE-----)".into());
    }
    Ok(certs)
}

/// The reason a call failed in its TLS handshake, found anywhere in `e`'s causes; `None`
/// when the failure was not TLS's (a refused connection, a timeout).
pub(crate) fn failure(e: &(dyn std::error::Error + 'static)) -> Option<String> {
    let mut cause = Some(e);
    while let Some(e) = cause {
        if let Some(tls) = e.downcast_ref::<rustls::Error>() {
            return Some(describe(tls));
        }
        cause = match e.downcast_ref::<std::io::Error>() {
            // An io::Error answers `source()` with the source of the error it wraps,
            // skipping that error (rustls' own, or another io::Error around it, as
            // hyper-rustls makes): step into it instead.
            Some(io) => io
                .get_ref()
                .map(|inner| inner as &(dyn std::error::Error + 'static)),
            None => e.source(),
        };
    }
    None
}

/// A failed handshake in words for the operator, with the common certificate failures
/// explained, rustls' name for each in brackets.
fn describe(e: &rustls::Error) -> String {
    match e {
        rustls::Error::InvalidCertificate(cert) => {
            let why = match cert {
                CertificateError::UnknownIssuer => {
                    "is not trusted: it is not signed by a CA this client trusts (the \
                     system's, or one added as a CA certificate)"
                }
                CertificateError::NotValidForName
                | CertificateError::NotValidForNameContext { .. } => "does not name the URL's host",
                CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
                    "has expired"
                }
                CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
                    "is not valid yet"
                }
                CertificateError::Revoked => "was revoked",
                _ => "is not valid",
            };
            format!("the server's certificate {why} ({cert:?})")
        }
        other => format!("TLS handshake failed: {other}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extra_ca_certificates_must_be_pem() {
        let refused = |pem: &str| config(&[pem.as_bytes().to_vec()]).unwrap_err();
        assert_eq!(
            refused(""),
            "holds no PEM certificate (-----BEGIN CERTIFICATE-----)"
        );
        assert_eq!(
            refused("not a certificate\n"),
            "holds no PEM certificate (-----BEGIN CERTIFICATE-----)"
        );
        assert!(
            refused("-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n")
                .starts_with("not PEM: ")
        );
        let garbage = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
        assert!(refused(garbage).starts_with("not a usable CA certificate: "));
        assert!(config(&[]).is_ok());
    }

    #[test]
    fn a_certificate_failure_is_found_under_io_errors() {
        let tls = rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer);
        let io = std::io::Error::new(std::io::ErrorKind::InvalidData, tls);
        // hyper-rustls wraps tokio-rustls' io::Error in another one.
        let io = std::io::Error::other(io);
        let reason = failure(&io).unwrap();
        assert!(
            reason.starts_with("the server's certificate is not trusted"),
            "{reason}"
        );
        assert!(reason.ends_with("(UnknownIssuer)"), "{reason}");
        let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        assert_eq!(failure(&refused), None);
    }
}

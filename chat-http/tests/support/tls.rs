//! A test certificate authority for chat-http's https webhook tests (included with
//! `#[path]` by the test binaries and by `src/webhooks_tls.rs`'s unit tests): a CA made
//! at test time with rcgen, its certificate as PEM (what `--webhook-ca` reads), and
//! rustls acceptors for receivers whose certificates it signs. Nothing is read from disk
//! and nothing is trusted beyond the test that made it.
#![allow(dead_code)]

use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, KeyUsagePurpose,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio_rustls::TlsAcceptor;

/// A CA that signs receivers' certificates.
pub(crate) struct TestCa {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

impl TestCa {
    /// A new CA named `name` (its subject's common name).
    pub(crate) fn new(name: &str) -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        params.distinguished_name.push(DnType::CommonName, name);
        let issuer = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
        Self { issuer }
    }

    /// The CA's certificate, PEM: what a `--webhook-ca` file holds.
    pub(crate) fn pem(&self) -> String {
        self.issuer.pem()
    }

    /// Writes [`TestCa::pem`] to `ca.pem` in `dir`; returns the file's path.
    pub(crate) fn pem_file(&self, dir: &std::path::Path) -> std::path::PathBuf {
        let file = dir.join("ca.pem");
        std::fs::write(&file, self.pem()).unwrap();
        file
    }

    /// A TLS acceptor presenting a certificate for `names` (DNS names or IP addresses)
    /// signed by this CA, with the chain a server sends (its own certificate, then the
    /// CA's), offering HTTP/1.1 by ALPN.
    pub(crate) fn acceptor(&self, names: &[&str]) -> TlsAcceptor {
        let key = KeyPair::generate().unwrap();
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let cert = CertificateParams::new(names)
            .unwrap()
            .signed_by(&key, &self.issuer)
            .unwrap();
        let chain: Vec<CertificateDer<'static>> =
            vec![cert.der().clone(), self.issuer.der().clone()];
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .unwrap();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        TlsAcceptor::from(Arc::new(config))
    }
}

//! The amqps listener's TLS setup, shared by every shard: the rustls
//! `ServerConfig` built from `--tls-cert`, `--tls-key` and `--tls-ca` (TLS
//! 1.2 and 1.3, the ring provider), replaced whole by `reload_tls` (new
//! connections get the new one; established ones keep the session they
//! have), and the bound on handshakes in progress.

use crate::shard::TlsOptions;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{CipherSuite, RootCertStore, ServerConfig};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};

/// What every shard's amqps listener shares.
pub struct TlsContext {
    pub options: TlsOptions,
    config: RwLock<Arc<ServerConfig>>,
    in_progress: AtomicUsize,
}

impl TlsContext {
    /// Reads the certificate files; Err says which one is wrong and how.
    pub fn new(options: TlsOptions) -> Result<TlsContext, String> {
        let config = build(&options)?;
        Ok(TlsContext {
            options,
            config: RwLock::new(Arc::new(config)),
            in_progress: AtomicUsize::new(0),
        })
    }

    /// The configuration a new connection's handshake uses.
    pub fn current(&self) -> Arc<ServerConfig> {
        self.config
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Reads the files again and, if they are good, uses them for every new
    /// connection (RabbitMQ: `ssl:clear_pem_cache()`). On error the old
    /// configuration stays.
    pub fn reload(&self) -> Result<(), String> {
        let config = Arc::new(build(&self.options)?);
        *self.config.write().unwrap_or_else(|e| e.into_inner()) = config;
        Ok(())
    }

    /// Counts a handshake in; None when `--tls-max-handshakes` are already
    /// in progress. The permit counts it out when dropped.
    pub fn begin_handshake(self: &Arc<TlsContext>) -> Option<HandshakePermit> {
        let max = self.options.max_handshakes;
        let mut now = self.in_progress.load(Ordering::Relaxed);
        loop {
            if now >= max {
                return None;
            }
            match self.in_progress.compare_exchange_weak(
                now,
                now + 1,
                Ordering::AcqRel,
                Ordering::Relaxed,
            ) {
                Ok(_) => return Some(HandshakePermit(self.clone(), now + 1)),
                Err(seen) => now = seen,
            }
        }
    }
}

/// One handshake in progress (see `TlsContext::begin_handshake`), and
/// how many were in progress, this one included, when it began.
pub struct HandshakePermit(Arc<TlsContext>, usize);

impl HandshakePermit {
    pub fn in_progress_at_start(&self) -> usize {
        self.1
    }
}

impl Drop for HandshakePermit {
    fn drop(&mut self) {
        self.0.in_progress.fetch_sub(1, Ordering::AcqRel);
    }
}

fn build(options: &TlsOptions) -> Result<ServerConfig, String> {
    // AES-128-GCM first, and the server's order wins (as Go's crypto/tls
    // on AES hardware): TLS's security margin either way, less CPU per byte
    // than AES-256 for every connection.
    let mut provider = rustls::crypto::ring::default_provider();
    provider.cipher_suites.sort_by_key(|s| {
        !matches!(
            s.suite(),
            CipherSuite::TLS13_AES_128_GCM_SHA256
                | CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256
                | CipherSuite::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256
        )
    });
    let provider = Arc::new(provider);
    let certs = read_certs(&options.cert)?;
    if certs.is_empty() {
        return Err(format!(
            "no certificate in --tls-cert {}",
            options.cert.display()
        ));
    }
    let key = PrivateKeyDer::from_pem_file(&options.key).map_err(|e| {
        format!(
            "cannot read a private key from --tls-key {}: {e}",
            options.key.display()
        )
    })?;
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| format!("TLS setup: {e}"))?;
    let builder = if options.verify_peer {
        let ca = options
            .ca
            .as_ref()
            .ok_or("--tls-verify-peer needs --tls-ca")?;
        let mut roots = RootCertStore::empty();
        for cert in read_certs(ca)? {
            roots
                .add(cert)
                .map_err(|e| format!("bad CA certificate in --tls-ca {}: {e}", ca.display()))?;
        }
        if roots.is_empty() {
            return Err(format!("no certificate in --tls-ca {}", ca.display()));
        }
        let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
        let verifier = if options.fail_if_no_peer_cert {
            verifier
        } else {
            verifier.allow_unauthenticated()
        };
        let verifier = verifier
            .build()
            .map_err(|e| format!("client certificate verifier: {e}"))?;
        builder.with_client_cert_verifier(verifier)
    } else {
        builder.with_no_client_auth()
    };
    // Records are the TLS maximum (16 KiB of plaintext, rustls' default):
    // fewer, larger records cost less per byte.
    let mut config = builder
        .with_single_cert(certs, key)
        .map_err(|e| format!("--tls-cert / --tls-key: {e}"))?;
    config.ignore_client_order = true;
    Ok(config)
}

fn read_certs(path: &std::path::Path) -> Result<Vec<CertificateDer<'static>>, String> {
    CertificateDer::pem_file_iter(path)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("cannot read certificates from {}: {e}", path.display()))
}

//! HTTPS: the node's certificate and key (`http.tls_cert`, `http.tls_key`, or `run --tls-cert
//! FILE --tls-key FILE`), loaded from PEM files and swapped atomically on reload (SIGHUP).
//!
//! [`Tls::load`] reads the certificate chain and the private key and checks that they belong
//! together before the node serves anything, so a wrong pair is an error at start that names the
//! file and the problem, not a handshake failure in every browser. [`Tls::reload`] reads the same
//! paths again and, if the new pair is good, puts it in place for the connections that come next;
//! connections already open keep the configuration they were made with. A failed reload leaves
//! the running certificate in place.
//!
//! Crypto is rustls with the ring provider, the same one the outbound agent (ureq) uses, so the
//! node carries one crypto library.

use crate::config::HttpConfig;
use rustls::ServerConfig;
use rustls::crypto::CryptoProvider;
use rustls::sign::{CertifiedKey, SingleCertAndKey};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use sha2::Digest;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

/// Why the certificate or key cannot be used. Every message names the file and what to do.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// Only one of the two paths is set.
    #[error(
        "HTTPS needs both a certificate and its key: set http.tls_cert and http.tls_key (or \
         --tls-cert FILE --tls-key FILE); only the {missing} is missing"
    )]
    Incomplete {
        /// `certificate` or `key`.
        missing: &'static str,
    },
    /// The file cannot be read.
    #[error("cannot read {}: {source}", .path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The certificate file holds no PEM certificate.
    #[error(
        "{}: no certificate in the file (expected a PEM block -----BEGIN CERTIFICATE-----){hint}",
        .path.display()
    )]
    NoCertificate {
        /// The file.
        path: PathBuf,
        /// A hint when the file holds something else.
        hint: &'static str,
    },
    /// The certificate file is not well-formed PEM.
    #[error("{}: not a readable PEM certificate chain: {reason}", .path.display())]
    BadCertificate {
        /// The file.
        path: PathBuf,
        /// The parser's reason.
        reason: String,
    },
    /// The key file holds no PEM private key.
    #[error(
        "{}: no private key in the file (expected a PEM block -----BEGIN PRIVATE KEY-----, \
         -----BEGIN RSA PRIVATE KEY----- or -----BEGIN EC PRIVATE KEY-----){hint}",
        .path.display()
    )]
    NoKey {
        /// The file.
        path: PathBuf,
        /// A hint when the file holds something else.
        hint: &'static str,
    },
    /// The key is PEM but not a key this node can sign with.
    #[error(
        "{}: the private key cannot be used: {reason} (supported: RSA, ECDSA P-256/P-384, \
         Ed25519)",
        .path.display()
    )]
    BadKey {
        /// The file.
        path: PathBuf,
        /// The crypto library's reason.
        reason: String,
    },
    /// The key is not the key of the certificate.
    #[error(
        "{} does not match the certificate in {}: the key's public half differs from the \
         certificate's; give the key the certificate was issued for",
        .key.display(),
        .cert.display()
    )]
    Mismatch {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
    },
    /// rustls refused the pair (a certificate it cannot parse, for instance).
    #[error("{}: {reason}", .cert.display())]
    Config {
        /// The certificate file.
        cert: PathBuf,
        /// rustls's reason.
        reason: String,
    },
}

/// The node's HTTPS configuration: the files it came from and the current rustls configuration.
/// Cheap to share (`Arc<Tls>`); [`Tls::reload`] swaps the configuration under a lock.
pub struct Tls {
    cert: PathBuf,
    key: PathBuf,
    current: RwLock<Arc<ServerConfig>>,
    fingerprint: RwLock<String>,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tls")
            .field("cert", &self.cert)
            .field("key", &self.key)
            .field("fingerprint", &self.fingerprint())
            .finish_non_exhaustive()
    }
}

impl Tls {
    /// The HTTPS configuration `[http]` asks for: `None` without `tls_cert` and `tls_key`, an
    /// error if only one is set or the pair is unusable.
    pub fn from_config(http: &HttpConfig) -> Result<Option<Tls>, TlsError> {
        match (&http.tls_cert, &http.tls_key) {
            (None, None) => Ok(None),
            (Some(_), None) => Err(TlsError::Incomplete { missing: "key" }),
            (None, Some(_)) => Err(TlsError::Incomplete {
                missing: "certificate",
            }),
            (Some(cert), Some(key)) => Tls::load(cert, key).map(Some),
        }
    }

    /// Loads a PEM certificate chain (leaf first) and its PEM private key (PKCS#8, PKCS#1 or
    /// SEC1) and checks that the key is the certificate's.
    pub fn load(cert: &Path, key: &Path) -> Result<Tls, TlsError> {
        let (config, fingerprint) = build(cert, key)?;
        tracing::info!(
            cert = %cert.display(),
            sha256 = %fingerprint,
            "TLS certificate loaded"
        );
        Ok(Tls {
            cert: cert.to_path_buf(),
            key: key.to_path_buf(),
            current: RwLock::new(config),
            fingerprint: RwLock::new(fingerprint),
        })
    }

    /// Reads the same files again; on success new connections use the new pair (open ones keep
    /// theirs), on failure the running pair stays. Logs either way.
    pub fn reload(&self) -> Result<(), TlsError> {
        match build(&self.cert, &self.key) {
            Ok((config, fingerprint)) => {
                *self.current.write().unwrap_or_else(|p| p.into_inner()) = config;
                tracing::info!(
                    cert = %self.cert.display(),
                    sha256 = %fingerprint,
                    "TLS certificate reloaded"
                );
                *self.fingerprint.write().unwrap_or_else(|p| p.into_inner()) = fingerprint;
                Ok(())
            }
            Err(e) => {
                tracing::error!(
                    error = %e,
                    sha256 = %self.fingerprint(),
                    "TLS certificate not reloaded; the running one stays"
                );
                Err(e)
            }
        }
    }

    /// The acceptor for the next connection (the configuration in place now).
    pub fn acceptor(&self) -> tokio_rustls::TlsAcceptor {
        tokio_rustls::TlsAcceptor::from(self.config())
    }

    /// The rustls configuration in place now.
    pub fn config(&self) -> Arc<ServerConfig> {
        self.current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// SHA-256 of the leaf certificate (DER), hex: what `openssl x509 -fingerprint -sha256`
    /// shows, without the colons.
    pub fn fingerprint(&self) -> String {
        self.fingerprint
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The certificate file.
    pub fn cert_path(&self) -> &Path {
        &self.cert
    }

    /// The key file.
    pub fn key_path(&self) -> &Path {
        &self.key
    }
}

/// The crypto provider: ring, as the outbound agent uses.
fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        path: path.to_path_buf(),
        source,
    })
}

fn contains(hay: &[u8], needle: &str) -> bool {
    hay.windows(needle.len()).any(|w| w == needle.as_bytes())
}

/// Reads and checks the pair; returns the server configuration and the leaf's fingerprint.
fn build(cert_path: &Path, key_path: &Path) -> Result<(Arc<ServerConfig>, String), TlsError> {
    let cert_pem = read(cert_path)?;
    let key_pem = read(key_path)?;
    let chain = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::BadCertificate {
            path: cert_path.to_path_buf(),
            reason: e.to_string(),
        })?;
    if chain.is_empty() {
        let hint = if contains(&cert_pem, "PRIVATE KEY-----") {
            ": this file holds a private key; are the certificate and the key swapped?"
        } else {
            ""
        };
        return Err(TlsError::NoCertificate {
            path: cert_path.to_path_buf(),
            hint,
        });
    }
    let key = match PrivateKeyDer::from_pem_slice(&key_pem) {
        Ok(k) => k,
        Err(rustls_pki_types::pem::Error::NoItemsFound) => {
            let hint = if contains(&key_pem, "ENCRYPTED PRIVATE KEY-----") {
                ": the key is encrypted; the node cannot ask for a passphrase, so store it \
                 decrypted (openssl pkey -in KEY -out KEY.plain) with mode 0640"
            } else if contains(&key_pem, "BEGIN CERTIFICATE-----") {
                ": this file holds a certificate; are the certificate and the key swapped?"
            } else {
                ""
            };
            return Err(TlsError::NoKey {
                path: key_path.to_path_buf(),
                hint,
            });
        }
        Err(e) => {
            return Err(TlsError::BadKey {
                path: key_path.to_path_buf(),
                reason: e.to_string(),
            });
        }
    };
    warn_if_world_readable(key_path);
    let provider = provider();
    let signing_key =
        provider
            .key_provider
            .load_private_key(key)
            .map_err(|e| TlsError::BadKey {
                path: key_path.to_path_buf(),
                reason: e.to_string(),
            })?;
    let certified = CertifiedKey::new(chain, signing_key);
    match certified.keys_match() {
        Ok(()) => {}
        Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::KeyMismatch)) => {
            return Err(TlsError::Mismatch {
                cert: cert_path.to_path_buf(),
                key: key_path.to_path_buf(),
            });
        }
        // A key type that cannot tell its public half: nothing to compare (ring's keys all can).
        Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::Unknown)) => {}
        Err(e) => {
            return Err(TlsError::Config {
                cert: cert_path.to_path_buf(),
                reason: format!("the certificate cannot be parsed: {e}"),
            });
        }
    }
    let fingerprint = hex::encode(sha2::Sha256::digest(certified.cert[0].as_ref()));
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Config {
            cert: cert_path.to_path_buf(),
            reason: e.to_string(),
        })?
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(SingleCertAndKey::from(certified)));
    // The server speaks HTTP/1.1 only (src/http/server.rs).
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok((Arc::new(config), fingerprint))
}

/// A private key anyone on the machine can read is worth a line in the log (not an error: the
/// file may sit in a directory that others cannot enter).
fn warn_if_world_readable(path: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(meta) = std::fs::metadata(path)
            && meta.permissions().mode() & 0o004 != 0
        {
            tracing::warn!(
                key = %path.display(),
                "the TLS private key is readable by every user; chmod 640 it (owner root, group \
                 of the service user)"
            );
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A self-signed certificate for `localhost` and 127.0.0.1: (cert PEM, key PEM, cert DER).
    pub(crate) fn self_signed() -> (String, String, Vec<u8>) {
        let names = vec!["localhost".to_string(), "127.0.0.1".to_string()];
        let rcgen::CertifiedKey { cert, signing_key } =
            rcgen::generate_simple_self_signed(names).expect("rcgen makes a certificate");
        (cert.pem(), signing_key.serialize_pem(), cert.der().to_vec())
    }

    /// Writes `cert` and `key` into `dir` as cert.pem and key.pem; returns their paths.
    pub(crate) fn write_pair(dir: &Path, cert: &str, key: &str) -> (PathBuf, PathBuf) {
        let (c, k) = (dir.join("cert.pem"), dir.join("key.pem"));
        std::fs::write(&c, cert).expect("write cert");
        std::fs::write(&k, key).expect("write key");
        (c, k)
    }

    #[test]
    fn loads_a_matching_pair() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (cert, key, der) = self_signed();
        let (c, k) = write_pair(dir.path(), &cert, &key);
        let tls = Tls::load(&c, &k).expect("a matching pair loads");
        assert_eq!(tls.fingerprint(), hex::encode(sha2::Sha256::digest(&der)));
        assert_eq!(tls.config().alpn_protocols, vec![b"http/1.1".to_vec()]);
    }

    #[test]
    fn a_key_of_another_certificate_is_a_mismatch() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (cert, _, _) = self_signed();
        let (_, other_key, _) = self_signed();
        let (c, k) = write_pair(dir.path(), &cert, &other_key);
        let err = Tls::load(&c, &k).expect_err("mismatched pair");
        assert!(matches!(err, TlsError::Mismatch { .. }), "{err:?}");
        let msg = err.to_string();
        assert!(
            msg.contains("key.pem") && msg.contains("cert.pem") && msg.contains("does not match"),
            "{msg}"
        );
    }

    #[test]
    fn missing_files_name_the_path() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (cert, key, _) = self_signed();
        let (c, k) = write_pair(dir.path(), &cert, &key);
        let gone = dir.path().join("nope.pem");
        for (cp, kp) in [(&gone, &k), (&c, &gone)] {
            let err = Tls::load(cp, kp).expect_err("missing file");
            assert!(matches!(err, TlsError::Read { .. }), "{err:?}");
            let msg = err.to_string();
            assert!(
                msg.contains("nope.pem") && msg.contains("No such file"),
                "{msg}"
            );
        }
    }

    #[test]
    fn empty_or_swapped_files_say_what_is_missing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (cert, key, _) = self_signed();
        // Swapped: the certificate file holds the key and the other way round.
        let (c, k) = write_pair(dir.path(), &key, &cert);
        let err = Tls::load(&c, &k).expect_err("swapped");
        assert!(matches!(err, TlsError::NoCertificate { .. }), "{err:?}");
        assert!(err.to_string().contains("swapped"), "{err}");
        // A certificate without any key.
        let (c, k) = write_pair(dir.path(), &cert, "not a key\n");
        let err = Tls::load(&c, &k).expect_err("no key");
        assert!(matches!(err, TlsError::NoKey { .. }), "{err:?}");
        assert!(err.to_string().contains("no private key"), "{err}");
        // An empty certificate file.
        let (c, k) = write_pair(dir.path(), "", &key);
        let err = Tls::load(&c, &k).expect_err("no cert");
        assert!(matches!(err, TlsError::NoCertificate { .. }), "{err:?}");
    }

    #[test]
    fn only_one_path_is_incomplete() {
        let http = HttpConfig {
            tls_cert: Some("/etc/cert.pem".into()),
            ..HttpConfig::default()
        };
        let err = Tls::from_config(&http).expect_err("only a certificate");
        assert!(err.to_string().contains("only the key is missing"), "{err}");
        assert!(
            Tls::from_config(&HttpConfig::default())
                .expect("no TLS")
                .is_none()
        );
    }

    #[test]
    fn a_failed_reload_keeps_the_running_pair() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (cert, key, der) = self_signed();
        let (c, k) = write_pair(dir.path(), &cert, &key);
        let tls = Tls::load(&c, &k).expect("loads");
        let before = tls.config();
        // A new certificate with the old key: mismatch, refused.
        let (cert2, key2, der2) = self_signed();
        std::fs::write(&c, &cert2).expect("write");
        let err = tls.reload().expect_err("mismatch");
        assert!(matches!(err, TlsError::Mismatch { .. }), "{err:?}");
        assert!(Arc::ptr_eq(&before, &tls.config()));
        assert_eq!(tls.fingerprint(), hex::encode(sha2::Sha256::digest(&der)));
        // Its key too: accepted, swapped.
        std::fs::write(&k, &key2).expect("write");
        tls.reload().expect("a good pair reloads");
        assert!(!Arc::ptr_eq(&before, &tls.config()));
        assert_eq!(tls.fingerprint(), hex::encode(sha2::Sha256::digest(&der2)));
    }
}

//! The one outbound HTTP agent: the chain's RPC client and the WHIP publisher both use it.
//!
//! Blocking `ureq` (each caller runs on its own thread or in `spawn_blocking`), TLS through
//! rustls with Mozilla's roots built in, or a target's own CA file. Servers are addressed
//! directly: a proxy from the environment must not silently sit between the node and its light
//! client sources or relays. Redirects are the caller's to follow (WHIP follows at most five,
//! RPC none), and a status is an answer, not an error, so callers read error bodies.

use std::path::Path;
use std::time::Duration;

/// Which certificates an https endpoint must chain to: `ca_file` (PEM), or the built-in public
/// roots.
pub fn roots(ca_file: Option<&Path>) -> Result<ureq::tls::RootCerts, String> {
    match ca_file {
        Some(path) => crate::config::publish::load_ca_file(path).map(ureq::tls::RootCerts::from),
        None => Ok(ureq::tls::RootCerts::WebPki),
    }
}

/// An agent whose every call ends within `timeout` (connecting within at most 5 s of it),
/// trusting `roots`.
pub fn agent(timeout: Duration, roots: ureq::tls::RootCerts) -> ureq::Agent {
    ureq::Agent::config_builder()
        .tls_config(ureq::tls::TlsConfig::builder().root_certs(roots).build())
        .timeout_global(Some(timeout))
        .timeout_connect(Some(timeout.min(Duration::from_secs(5))))
        .http_status_as_error(false)
        .proxy(None)
        .max_redirects(0)
        .user_agent(concat!("sutantra/", env!("CARGO_PKG_VERSION")))
        .build()
        .into()
}

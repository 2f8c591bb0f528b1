//! `[http]`: the HTTP server: listen address, token, TLS, CORS, connection and request limits,
//! snapshots.

use serde::Deserialize;
use std::net::SocketAddr;
use std::path::PathBuf;

/// `[http]`.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    /// Listen address.
    pub listen: SocketAddr,
    /// Largest request body (SDP offers) in bytes.
    pub max_body_bytes: usize,
    /// Bearer token required on WHEP requests, if set.
    pub token: Option<String>,
    /// Serve WHEP without a token on a non-loopback address (an explicit opt-out: the node
    /// refuses to start on such an address without a token otherwise).
    pub allow_anonymous: bool,
    /// Origins (`https://host:port`) whose pages may call WHEP from a browser; empty: only the
    /// node's own page (same origin).
    pub cors_origins: Vec<String>,
    /// PEM certificate chain: serve HTTPS (with `tls_key`); reloaded on SIGHUP.
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of `tls_cert`.
    pub tls_key: Option<PathBuf>,
    /// TCP connections open at once; more are refused (closed at once), not queued.
    pub max_connections: usize,
    /// TCP connections open at once from one client address (loopback is not limited).
    pub max_connections_per_ip: usize,
    /// A client must send a request's headers within this time, in ms.
    pub header_timeout_ms: u64,
    /// A request body must arrive within this time, in ms.
    pub body_timeout_ms: u64,
    /// A kept-alive connection with no request in flight is closed after this time, in ms.
    pub idle_timeout_ms: u64,
    /// WHEP offers per second from one client address (loopback is not limited); 0: no limit.
    pub offers_per_s: u32,
    /// Offers one client address may send in a burst above `offers_per_s`.
    pub offer_burst: u32,
    /// JPEG quality of `/snapshot.jpg` and `sutantra snapshot` (1-100).
    pub snapshot_quality: u8,
    /// A snapshot is encoded at most once per this many ms; requests in between get the same
    /// bytes, so polling costs one encode per interval however many clients poll.
    pub snapshot_interval_ms: u64,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            max_body_bytes: 64 * 1024,
            token: None,
            allow_anonymous: false,
            cors_origins: Vec::new(),
            tls_cert: None,
            tls_key: None,
            max_connections: 256,
            max_connections_per_ip: 16,
            header_timeout_ms: 5_000,
            body_timeout_ms: 5_000,
            idle_timeout_ms: 30_000,
            offers_per_s: 2,
            offer_burst: 8,
            snapshot_quality: 80,
            snapshot_interval_ms: 1_000,
        }
    }
}

/// Checks one `http.cors_origins` entry: `scheme://host[:port]`, nothing after it, or `*`
/// is refused (the point of the list).
pub fn check_origin(origin: &str) -> Result<(), String> {
    let rest = origin
        .strip_prefix("https://")
        .or_else(|| origin.strip_prefix("http://"))
        .ok_or_else(|| {
            format!("`{origin}` is not an origin: write it as https://HOST[:PORT] (no path)")
        })?;
    if rest.is_empty() || rest.contains(['/', '?', '#', '*', ' ']) {
        return Err(format!(
            "`{origin}` is not an origin: write it as https://HOST[:PORT], without a path or \
             wildcard"
        ));
    }
    Ok(())
}

//! `[http]`: the HTTP server: listen address, body limit, token, connections.

use serde::Deserialize;
use std::net::SocketAddr;

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
    /// Concurrent HTTP requests served at once.
    pub max_connections: usize,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            max_body_bytes: 64 * 1024,
            token: None,
            max_connections: 64,
        }
    }
}

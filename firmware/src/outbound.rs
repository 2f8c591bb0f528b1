//! The one outbound HTTP agent: the chain's RPC client and the WHIP publisher both use it.
//!
//! Blocking `ureq` (each caller runs on its own thread or in `spawn_blocking`), TLS through
//! rustls with Mozilla's roots built in, or a target's own CA file. Servers are addressed
//! directly: a proxy from the environment must not silently sit between the node and its light
//! client sources or relays. The agent follows no redirect by itself (`max_redirects(0)`: a 3xx
//! is handed back as an answer): the caller decides, so the rules live in one place each. WHIP
//! follows at most five, never from https to http, and sends `Authorization` only to the
//! configured endpoint's [`Origin`]; the RPC client follows none. A status is an answer, not an
//! error, so callers read error bodies.

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
        // No implicit redirects; and should one ever be followed, never with the credentials.
        .max_redirects(0)
        .redirect_auth_headers(ureq::config::RedirectAuthHeaders::Never)
        .user_agent(concat!("sutantra/", env!("CARGO_PKG_VERSION")))
        .build()
        .into()
}

/// A URL's origin (RFC 6454): scheme, host and port, with the scheme's default port filled in
/// and the scheme and host in lower case. Credentials go only to the origin they were configured
/// for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// `http` or `https`.
    pub scheme: String,
    /// The host name or address (IPv6 in brackets, as in the URL).
    pub host: String,
    /// The port (80 or 443 when the URL gives none).
    pub port: u16,
}

impl Origin {
    /// The origin of an absolute `http` or `https` URL; `None` for anything else.
    pub fn of(url: &str) -> Option<Origin> {
        let uri: ureq::http::Uri = url.trim().parse().ok()?;
        let scheme = uri.scheme_str()?.to_ascii_lowercase();
        let default = match scheme.as_str() {
            "http" => 80,
            "https" => 443,
            _ => return None,
        };
        let host = uri.host()?.to_ascii_lowercase();
        if host.is_empty() {
            return None;
        }
        Some(Origin {
            scheme,
            host,
            port: uri.port_u16().unwrap_or(default),
        })
    }

    /// `https`.
    pub fn is_https(&self) -> bool {
        self.scheme == "https"
    }
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}://{}:{}", self.scheme, self.host, self.port)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_compare_scheme_host_and_port() {
        let o = |u: &str| Origin::of(u);
        assert_eq!(
            o("http://Relay.Example:80/whip"),
            o("http://relay.example/x?y=1")
        );
        assert_eq!(
            o("https://relay.example/whip"),
            o("https://relay.example:443/")
        );
        assert_ne!(
            o("http://relay.example/whip"),
            o("https://relay.example/whip")
        );
        assert_ne!(o("http://127.0.0.1:9000/a"), o("http://127.0.0.1:9001/a"));
        assert_ne!(o("http://relay.example/"), o("http://relay.example.evil/"));
        assert_ne!(
            o("http://a@relay.example/"),
            o("http://relay.example@evil.example/")
        );
        assert_eq!(
            o("http://[::1]:8080/whip")
                .map(|o| o.to_string())
                .as_deref(),
            Some("http://[::1]:8080")
        );
        assert_eq!(o("ftp://relay.example/"), None);
        assert_eq!(o("/whip/abc"), None);
        assert_eq!(o("not a url"), None);
    }
}

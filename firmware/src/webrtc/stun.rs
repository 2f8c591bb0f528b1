//! STUN servers: parse the configured list and resolve host names ourselves, with a deadline.
//!
//! A DNS lookup that hangs inside the WebRTC stack blocks a connection's driver for seconds (no
//! candidates at all), so host names are resolved here, in parallel, bounded by a timeout, and
//! cached; the stack only ever sees IP literals. A server whose name does not resolve in time is
//! left out of that answer and tried again later: host candidates never wait for STUN.

use crate::config::webrtc::parse_stun_url;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Resolves the configured STUN servers to `stun:IP:PORT` URLs, with a cache.
#[derive(Debug)]
pub struct StunResolver {
    servers: Vec<(String, u16)>,
    timeout: Duration,
    cache: Mutex<Option<(Instant, Vec<String>)>>,
}

/// How long a successful resolution is reused.
const CACHE_FOR: Duration = Duration::from_secs(300);
/// How long a failed (empty) resolution is reused before trying again.
const RETRY_AFTER: Duration = Duration::from_secs(30);

impl StunResolver {
    /// A resolver for validated `stun:` URLs; `timeout` bounds each resolution round.
    pub fn new(urls: &[String], timeout: Duration) -> Self {
        Self {
            servers: urls.iter().filter_map(|u| parse_stun_url(u).ok()).collect(),
            timeout,
            cache: Mutex::new(None),
        }
    }

    /// The servers as IP-literal URLs, resolving (bounded by the timeout) when the cache is old.
    pub async fn urls(&self) -> Vec<String> {
        if self.servers.is_empty() {
            return Vec::new();
        }
        if let Ok(cache) = self.cache.lock()
            && let Some((at, urls)) = cache.as_ref()
        {
            let max_age = if urls.is_empty() {
                RETRY_AFTER
            } else {
                CACHE_FOR
            };
            if at.elapsed() < max_age {
                return urls.clone();
            }
        }
        let timeout = self.timeout;
        let lookups = self.servers.iter().map(|(host, port)| {
            let target = format!("{host}:{port}");
            let host = host.clone();
            async move {
                match tokio::time::timeout(timeout, tokio::net::lookup_host(target)).await {
                    Ok(Ok(addrs)) => addrs
                        .filter(SocketAddr::is_ipv4)
                        .map(|a| format!("stun:{}:{}", a.ip(), a.port()))
                        .next(),
                    Ok(Err(e)) => {
                        tracing::debug!(server = %host, error = %e, "STUN server does not resolve");
                        None
                    }
                    Err(_) => {
                        tracing::debug!(server = %host, "STUN server lookup timed out");
                        None
                    }
                }
            }
        });
        let mut urls = Vec::new();
        for r in futures_join_all(lookups).await {
            urls.extend(r);
        }
        if urls.len() < self.servers.len() {
            tracing::info!(
                resolved = urls.len(),
                configured = self.servers.len(),
                "some STUN servers did not resolve; answering with host candidates and the rest"
            );
        }
        if let Ok(mut cache) = self.cache.lock() {
            *cache = Some((Instant::now(), urls.clone()));
        }
        urls
    }
}

/// Runs futures concurrently and collects their outputs in order (small, no extra crate).
async fn futures_join_all<F>(futs: impl Iterator<Item = F>) -> Vec<F::Output>
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    let mut set = Vec::new();
    for f in futs {
        set.push(tokio::spawn(f));
    }
    let mut out = Vec::with_capacity(set.len());
    for h in set {
        if let Ok(v) = h.await {
            out.push(v);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_default_list() {
        for u in crate::config::DEFAULT_STUN_SERVERS {
            parse_stun_url(u).expect(u);
        }
        assert_eq!(
            parse_stun_url("stun:stun.relay.metered.ca:80"),
            Ok(("stun.relay.metered.ca".into(), 80))
        );
        assert_eq!(parse_stun_url("stun:1.2.3.4"), Ok(("1.2.3.4".into(), 3478)));
        assert_eq!(
            parse_stun_url("stun:[::1]:19302"),
            Ok(("::1".into(), 19302))
        );
    }

    #[test]
    fn rejects_bad_urls() {
        for u in [
            "turn:x:1",
            "stun:",
            "stun:host:0",
            "stun:host:http",
            "stun:[::1",
        ] {
            assert!(parse_stun_url(u).is_err(), "{u}");
        }
    }

    #[tokio::test]
    async fn literal_addresses_resolve_without_dns() {
        let r = StunResolver::new(&["stun:127.0.0.1:3478".into()], Duration::from_millis(300));
        assert_eq!(r.urls().await, vec!["stun:127.0.0.1:3478".to_string()]);
    }
}

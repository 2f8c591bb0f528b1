//! `[webrtc]`: viewer sessions: STUN servers, viewer limit, queues, ports, addresses.

use serde::Deserialize;
use std::net::IpAddr;

/// The default STUN list: four operators, so one outage or block does not leave the node without
/// a server-reflexive candidate.
pub const DEFAULT_STUN_SERVERS: &[&str] = &[
    "stun:global.stun.twilio.com:3478",
    "stun:stun.relay.metered.ca:80",
    "stun:stun.cloudflare.com:3478",
    "stun:stun.l.google.com:19302",
];

/// `[webrtc]`.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebRtcConfig {
    /// ICE servers (`stun:host:port`); an empty list means host candidates only.
    pub ice_servers: Vec<String>,
    /// Most viewers at once; more get 503 with Retry-After.
    pub max_viewers: usize,
    /// Packets queued per viewer before the oldest is dropped.
    pub viewer_queue_packets: usize,
    /// Largest RTP payload in bytes (VP8 descriptor included).
    pub rtp_payload_bytes: usize,
    /// Local addresses to gather host candidates on; empty means every interface address,
    /// loopback included.
    pub bind_addrs: Vec<IpAddr>,
    /// First UDP port of the fixed range (0: ephemeral ports).
    pub udp_port_min: u16,
    /// Last UDP port of the fixed range.
    pub udp_port_max: u16,
    /// Public addresses to advertise as host candidates beside the local ones (1:1 NAT, a
    /// board behind a port forward).
    pub public_ips: Vec<IpAddr>,
    /// How long the WHEP answer may wait for STUN (server-reflexive) candidates, in ms.
    pub gather_timeout_ms: u64,
    /// Sessions answered but not yet connected (ICE and DTLS) at once; a new offer beyond this
    /// evicts the oldest. They do not count against `max_viewers` until connected. The default
    /// equals the default viewer limit, so a burst of that many real viewers arriving at once
    /// (every page reloading after a restart) does not evict itself.
    pub max_connecting: usize,
    /// How long an answered session may take to connect before it is dropped, in ms.
    pub connect_timeout_ms: u64,
}

impl Default for WebRtcConfig {
    fn default() -> Self {
        Self {
            ice_servers: DEFAULT_STUN_SERVERS.iter().map(|s| s.to_string()).collect(),
            max_viewers: 16,
            viewer_queue_packets: 512,
            rtp_payload_bytes: 1200,
            bind_addrs: Vec::new(),
            udp_port_min: 0,
            udp_port_max: 0,
            public_ips: Vec::new(),
            gather_timeout_ms: 800,
            max_connecting: 16,
            connect_timeout_ms: 10_000,
        }
    }
}

/// Parses `stun:host:port` (port defaults to 3478). Returns `(host, port)` or the reason.
pub fn parse_stun_url(url: &str) -> Result<(String, u16), String> {
    let rest = url.strip_prefix("stun:").ok_or_else(|| {
        format!("`{url}` is not a STUN URL: write it as stun:HOST:PORT (e.g. stun:stun.l.google.com:19302)")
    })?;
    let rest = rest.split('?').next().unwrap_or(rest);
    if rest.is_empty() {
        return Err(format!("`{url}` has no host: write it as stun:HOST:PORT"));
    }
    // [v6]:port, host:port, or host.
    let (host, port) = if let Some(v6) = rest.strip_prefix('[') {
        let (h, tail) = v6
            .split_once(']')
            .ok_or_else(|| format!("`{url}`: unclosed [ in an IPv6 address"))?;
        let port = match tail.strip_prefix(':') {
            Some(p) => p,
            None if tail.is_empty() => "3478",
            None => return Err(format!("`{url}`: expected :PORT after the IPv6 address")),
        };
        (h.to_string(), port)
    } else {
        match rest.rsplit_once(':') {
            Some((h, p)) => (h.to_string(), p),
            None => (rest.to_string(), "3478"),
        }
    };
    let port: u16 = port
        .parse()
        .ok()
        .filter(|p| *p != 0)
        .ok_or_else(|| format!("`{url}`: port `{port}` is not a number from 1 to 65535"))?;
    if host.is_empty() {
        return Err(format!("`{url}` has no host: write it as stun:HOST:PORT"));
    }
    Ok((host, port))
}

//! `[webrtc]`: viewer sessions: STUN servers, viewer limit, queues, ports, addresses, the
//! playout delay asked of viewers.

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
    /// Negotiate the playout-delay RTP header extension with viewers that offer it (Chrome,
    /// Edge, Safari do) and put [`playout_delay_ms`](Self::playout_delay_ms) on every packet.
    pub playout_delay: bool,
    /// `[min, max]` playout delay asked of such viewers, in ms (multiples of 10, at most
    /// 40950). `[0, 0]`: show each frame as soon as it is decoded, no smoothing.
    pub playout_delay_ms: PlayoutDelayMs,
}

/// The playout delay asked of viewers, `[min, max]` in ms: `playout_delay_ms = [0, 0]`.
///
/// The playout-delay extension (<http://www.webrtc.org/experiments/rtp-hdrext/playout-delay>)
/// carries both in 10 ms units, 12 bits each, so a value must be a multiple of 10 from 0 to
/// 40950, with min <= max. Checked as the file is read, so a bad value is reported at its line.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(try_from = "[u32; 2]", into = "[u32; 2]")]
pub struct PlayoutDelayMs {
    /// The shortest delay, ms.
    pub min: u16,
    /// The longest delay, ms.
    pub max: u16,
}

impl PlayoutDelayMs {
    /// The largest delay the extension carries (4095 units of 10 ms).
    pub const LIMIT_MS: u32 = 40_950;

    /// Both values in the extension's 10 ms units.
    pub fn units(self) -> (u16, u16) {
        (self.min / 10, self.max / 10)
    }
}

impl TryFrom<[u32; 2]> for PlayoutDelayMs {
    type Error = String;

    fn try_from([min, max]: [u32; 2]) -> Result<Self, String> {
        let accepted = format!(
            "write [MIN, MAX] in ms, multiples of 10 from 0 to {}, MIN <= MAX (e.g. [0, 0]: \
             show frames at once; [0, 200]: let the browser smooth jitter up to 200 ms)",
            Self::LIMIT_MS
        );
        if min > Self::LIMIT_MS || max > Self::LIMIT_MS {
            return Err(format!("[{min}, {max}] is out of range: {accepted}"));
        }
        if min % 10 != 0 || max % 10 != 0 {
            return Err(format!(
                "[{min}, {max}]: the extension carries 10 ms steps: {accepted}"
            ));
        }
        if min > max {
            return Err(format!("[{min}, {max}]: MIN is above MAX: {accepted}"));
        }
        // Both fit: LIMIT_MS < u16::MAX.
        Ok(Self {
            min: min as u16,
            max: max as u16,
        })
    }
}

impl From<PlayoutDelayMs> for [u32; 2] {
    fn from(d: PlayoutDelayMs) -> Self {
        [u32::from(d.min), u32::from(d.max)]
    }
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
            playout_delay: true,
            playout_delay_ms: PlayoutDelayMs::default(),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    struct Doc {
        webrtc: WebRtcConfig,
    }

    fn parse(text: &str) -> Result<WebRtcConfig, String> {
        toml::from_str::<Doc>(text)
            .map(|d| d.webrtc)
            .map_err(|e| e.message().to_string())
    }

    #[test]
    fn playout_delay_defaults_to_zero_and_on() {
        let c = WebRtcConfig::default();
        assert!(c.playout_delay);
        assert_eq!(c.playout_delay_ms, PlayoutDelayMs { min: 0, max: 0 });
        let c =
            parse("[webrtc]\nplayout_delay = false\nplayout_delay_ms = [0, 200]\n").expect("ok");
        assert!(!c.playout_delay);
        assert_eq!(c.playout_delay_ms.units(), (0, 20));
        let c = parse("[webrtc]\nplayout_delay_ms = [40950, 40950]\n").expect("ok");
        assert_eq!(c.playout_delay_ms.units(), (4095, 4095));
    }

    #[test]
    fn playout_delay_out_of_range_or_off_the_10_ms_grid_is_refused() {
        for (bad, why) in [
            ("[0, 40960]", "out of range"),
            ("[5, 10]", "10 ms steps"),
            ("[100, 50]", "MIN is above MAX"),
        ] {
            let e = parse(&format!("[webrtc]\nplayout_delay_ms = {bad}\n")).expect_err(bad);
            assert!(e.contains(why), "{bad}: {e}");
        }
        assert!(parse("[webrtc]\nplayout_delay_ms = [0]\n").is_err());
    }

    #[test]
    fn playout_delay_round_trips_as_an_array() {
        let c = WebRtcConfig {
            playout_delay_ms: PlayoutDelayMs { min: 10, max: 100 },
            ..Default::default()
        };
        let v = serde_json::to_value(&c).expect("json");
        assert_eq!(
            v.get("playout_delay_ms"),
            Some(&serde_json::json!([10, 100]))
        );
    }
}

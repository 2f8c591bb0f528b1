//! Check: the STUN servers resolve (short timeout). Only a WARN: viewers on the same network
//! connect without STUN.

use super::{NET_TIMEOUT, Outcome};
use crate::config::Config;
use std::net::ToSocketAddrs;

/// Resolves each STUN server.
pub fn check(cfg: &Config) -> Outcome {
    let servers: Vec<(String, u16)> = cfg
        .webrtc
        .ice_servers
        .iter()
        .filter_map(|u| crate::config::webrtc::parse_stun_url(u).ok())
        .collect();
    let fix = "check DNS and outbound network, or set [webrtc] ice_servers; viewers on the \
               same network still connect";
    if servers.is_empty() {
        return Outcome::warn(
            "stun",
            "no STUN servers configured: viewers outside this network may not connect",
            fix,
        );
    }
    let n = servers.len();
    let lookups: Vec<_> = servers
        .into_iter()
        .map(|(host, port)| {
            let name = format!("{host}:{port}");
            let (tx, rx) = std::sync::mpsc::channel();
            let target = name.clone();
            let _ = std::thread::Builder::new()
                .name("check-stun".into())
                .spawn(move || {
                    let ok = target
                        .to_socket_addrs()
                        .map(|mut a| a.next().is_some())
                        .unwrap_or(false);
                    let _ = tx.send(ok);
                });
            (name, rx)
        })
        .collect();
    let deadline = std::time::Instant::now() + NET_TIMEOUT;
    let failed: Vec<String> = lookups
        .into_iter()
        .filter(|(_, rx)| {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            !rx.recv_timeout(left).unwrap_or(false)
        })
        .map(|(name, _)| name)
        .collect();
    if failed.is_empty() {
        Outcome::ok("stun", format!("{n} STUN server(s) resolve"))
    } else {
        Outcome::warn(
            "stun",
            format!(
                "{} of {n} STUN servers do not resolve (limit {}s): {}",
                failed.len(),
                NET_TIMEOUT.as_secs(),
                failed.join(", ")
            ),
            fix,
        )
    }
}

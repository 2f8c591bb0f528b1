//! Check: the fixed UDP port range for WebRTC (`[webrtc] udp_port_min..udp_port_max`) has free
//! ports for the configured number of viewers.

use super::Outcome;
use crate::config::Config;
use std::net::{Ipv4Addr, UdpSocket};

/// Ports tried at most.
const MAX_TRIED: u32 = 4096;

/// Free ports in the range.
pub fn check(cfg: &Config) -> Outcome {
    let w = &cfg.webrtc;
    if w.udp_port_min == 0 {
        return Outcome::ok("udp", "no fixed port range: sessions use ephemeral ports");
    }
    let (lo, hi) = (u32::from(w.udp_port_min), u32::from(w.udp_port_max));
    let hi = hi.min(lo + MAX_TRIED - 1);
    let free = (lo..=hi)
        .filter_map(|p| u16::try_from(p).ok())
        .filter(|p| UdpSocket::bind((Ipv4Addr::UNSPECIFIED, *p)).is_ok())
        .count();
    let detail = format!("{free} of the ports {lo}..{hi} are free");
    let fix = "stop what holds them (`ss -ulpn`) or set another [webrtc] udp_port_min/max";
    if free == 0 {
        Outcome::fail("udp", detail, fix)
    } else if free < w.max_viewers {
        Outcome::warn(
            "udp",
            format!("{detail}, fewer than max_viewers ({})", w.max_viewers),
            fix,
        )
    } else {
        Outcome::ok("udp", detail)
    }
}

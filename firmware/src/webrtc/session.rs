//! What the sessions of both directions (WHEP viewers, WHIP publishers) share once their
//! connection is built: the event handler and the wait for gathering, the negotiated payload
//! type, the writer that drains a fan-out queue into a track, the local addresses to bind, and the
//! public addresses added to an answer for a 1:1 NAT.

use crate::media::{OutPacket, SharedFanout};
use std::net::IpAddr;
use std::sync::Arc;
use tokio::sync::mpsc;
use webrtc::media_stream::track_local::TrackLocal;
use webrtc::media_stream::track_local::static_rtp::TrackLocalStaticRTP;
use webrtc::peer_connection::{
    PeerConnectionEventHandler, RTCIceGatheringState, RTCPeerConnectionState,
};

/// Writes everything queued for `id` in the fan-out to `track`, stamped with this connection's SSRC
/// and negotiated payload type (viewers and publishers alike). Stops at the first write error
/// and returns its text (truncated: the stack's error embeds the whole packet).
/// An RTP header without extensions or CSRCs.
/// Packets a writer moves out of the fan-out per wake-up.
pub(crate) const WRITE_BATCH: usize = 64;

const RTP_HEADER_BYTES: usize = 12;

pub(crate) async fn send_queued(
    fanout: &SharedFanout,
    id: sutantra_core::fanout::ViewerId,
    track: &TrackLocalStaticRTP,
    ssrc: u32,
    pt: u8,
    batch: &mut Vec<Arc<OutPacket>>,
) -> Result<usize, String> {
    let mut bytes = 0;
    loop {
        batch.clear();
        fanout.drain(id, batch, WRITE_BATCH);
        if batch.is_empty() {
            return Ok(bytes);
        }
        for p in batch.iter() {
            bytes += RTP_HEADER_BYTES + p.payload.len();
            let packet = rtc::rtp::Packet {
                header: rtc::rtp::Header {
                    version: 2,
                    marker: p.marker,
                    payload_type: pt,
                    sequence_number: p.seq,
                    timestamp: p.timestamp,
                    ssrc,
                    ..Default::default()
                },
                payload: p.payload.clone(),
            };
            if let Err(e) = track.write_rtp(packet).await {
                let mut text = e.to_string();
                text.truncate(120);
                return Err(text);
            }
        }
    }
}

/// Waits until ICE gathering completes, at most until `deadline` (host candidates are there from
/// the start; only STUN can be slow).
pub(crate) async fn wait_gathering(
    events: &mut mpsc::Receiver<PcEvent>,
    deadline: tokio::time::Instant,
) {
    let _ = tokio::time::timeout_at(deadline, async {
        while let Some(ev) = events.recv().await {
            if let PcEvent::GatheringComplete = ev {
                return;
            }
        }
    })
    .await;
}

/// What a connection's handler reports to its session task (viewers and publishers).
#[derive(Debug)]
pub(crate) enum PcEvent {
    GatheringComplete,
    State(RTCPeerConnectionState),
}

/// Forwards connection events to the session task without ever blocking the driver.
pub(crate) struct Handler {
    pub(crate) events: mpsc::Sender<PcEvent>,
}

#[async_trait::async_trait]
impl PeerConnectionEventHandler for Handler {
    async fn on_ice_gathering_state_change(&self, state: RTCIceGatheringState) {
        if state == RTCIceGatheringState::Complete {
            let _ = self.events.try_send(PcEvent::GatheringComplete);
        }
    }

    async fn on_connection_state_change(&self, state: RTCPeerConnectionState) {
        // Never block the connection's driver: a full queue drops the event (the session task
        // only needs the latest states, and it also watches writes failing).
        let _ = self.events.try_send(PcEvent::State(state));
    }
}

/// Every IPv4 address of the machine's interfaces, loopback included (binding 0.0.0.0 would
/// skip loopback and, on a host with only loopback, advertise an unusable 0.0.0.0).
pub fn local_ips() -> Vec<IpAddr> {
    let mut ips: Vec<IpAddr> = if_addrs::get_if_addrs()
        .map(|ifs| {
            ifs.into_iter()
                .map(|i| i.ip())
                .filter(|ip| ip.is_ipv4())
                .collect()
        })
        .unwrap_or_default();
    if !ips.iter().any(|ip| ip.is_loopback()) {
        ips.push(IpAddr::from([127, 0, 0, 1]));
    }
    ips.sort();
    ips.dedup();
    ips
}

/// Adds, for every non-loopback host candidate, the same candidate on each public address
/// (a board behind a 1:1 port forward is reached on its public IP and the same port).
pub fn add_public_candidates(sdp: &str, public_ips: &[IpAddr]) -> String {
    if public_ips.is_empty() {
        return sdp.to_string();
    }
    let mut out = String::with_capacity(sdp.len() + 256);
    let mut added = std::collections::HashSet::new();
    for line in sdp.split_inclusive('\n') {
        out.push_str(line);
        let l = line.trim_end();
        let Some(cand) = l.strip_prefix("a=candidate:") else {
            continue;
        };
        let f: Vec<&str> = cand.split_whitespace().collect();
        // foundation component transport priority ip port "typ" type ...
        if f.len() < 8 || f[6] != "typ" || f[7] != "host" || !f[2].eq_ignore_ascii_case("udp") {
            continue;
        }
        let Ok(ip) = f[4].parse::<IpAddr>() else {
            continue;
        };
        if ip.is_loopback() {
            continue;
        }
        for (i, public) in public_ips.iter().enumerate() {
            if !added.insert((public.to_string(), f[5].to_string())) {
                continue;
            }
            let prio = f[3]
                .parse::<u32>()
                .unwrap_or(1)
                .saturating_sub(1 + i as u32);
            out.push_str(&format!(
                "a=candidate:{}{} {} {} {} {} {} typ host\r\n",
                f[0],
                9 + i,
                f[1],
                f[2],
                prio,
                public,
                f[5]
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_candidates_are_added_beside_host_ones() {
        let sdp = "v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\n\
                   a=candidate:1 1 udp 2130706431 192.168.1.5 40000 typ host\r\n\
                   a=candidate:2 1 udp 2130706431 127.0.0.1 40001 typ host\r\n";
        let out = add_public_candidates(sdp, &["203.0.113.7".parse().expect("ip")]);
        assert!(
            out.contains("a=candidate:19 1 udp 2130706430 203.0.113.7 40000 typ host\r\n"),
            "{out}"
        );
        assert_eq!(
            out.matches("203.0.113.7").count(),
            1,
            "loopback is not mapped"
        );
        assert_eq!(add_public_candidates(sdp, &[]), sdp);
    }

    #[test]
    fn local_ips_include_loopback() {
        assert!(local_ips().iter().any(|ip| ip.is_loopback()));
    }
}

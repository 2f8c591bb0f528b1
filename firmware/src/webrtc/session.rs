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
use webrtc::media_stream::track_remote::TrackRemote;
use webrtc::peer_connection::{
    PeerConnectionEventHandler, RTCIceGatheringState, RTCPeerConnectionState,
};

/// Packets a writer moves out of the fan-out per wake-up.
pub(crate) const WRITE_BATCH: usize = 64;

/// An RTP header without extensions or CSRCs.
const RTP_HEADER_BYTES: usize = 12;

/// A header extension a writer puts on every packet: the id the peer negotiated for it and its
/// value (RFC 8285 one-byte form, so ids 1 to 14 and at most 16 bytes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PacketExtension {
    id: u8,
    value: bytes::Bytes,
}

impl PacketExtension {
    /// The playout-delay extension (`[min, max]` in its 10 ms units, 12 bits each) under the
    /// negotiated `id`; `None` when `id` does not fit the one-byte form (then it is not sent).
    pub(crate) fn playout_delay(id: u16, min_units: u16, max_units: u16) -> Option<Self> {
        let id = u8::try_from(id).ok().filter(|id| (1..=14).contains(id))?;
        let (min, max) = (min_units.min(0x0fff), max_units.min(0x0fff));
        let value = [
            (min >> 4) as u8,
            ((min << 4) as u8) | (max >> 8) as u8,
            max as u8,
        ];
        Some(Self {
            id,
            value: bytes::Bytes::copy_from_slice(&value),
        })
    }

    /// Bytes it adds to a packet as its only extension: the extension block's 4-byte header, its
    /// own 1-byte header and value, padded to 32 bits.
    fn wire_bytes(&self) -> usize {
        4 + (1 + self.value.len()).next_multiple_of(4)
    }
}

/// Writes everything queued for `id` in the fan-out to `track`, stamped with this connection's
/// SSRC and negotiated payload type (viewers and publishers alike). Stops at the first write
/// error and returns its text (truncated: the stack's error embeds the whole packet). Returns
/// the bytes written (RTP headers included).
pub(crate) async fn send_queued(
    fanout: &SharedFanout,
    id: sutantra_core::fanout::ViewerId,
    track: &TrackLocalStaticRTP,
    ssrc: u32,
    pt: u8,
    batch: &mut Vec<Arc<OutPacket>>,
) -> Result<usize, String> {
    send_queued_with(fanout, id, track, (ssrc, pt), None, batch).await
}

/// [`send_queued`], with `extension` (if any) on every packet: a viewer's playout delay. Every
/// packet, not only until the viewer has acknowledged one: libwebrtc reads it from the first
/// packet of each frame, a lost first packet would lose it, and it costs 4 bytes a packet (8 when
/// it is the packet's only extension; a browser viewer also negotiates transport-cc).
pub(crate) async fn send_queued_with(
    fanout: &SharedFanout,
    id: sutantra_core::fanout::ViewerId,
    track: &TrackLocalStaticRTP,
    (ssrc, pt): (u32, u8),
    extension: Option<&PacketExtension>,
    batch: &mut Vec<Arc<OutPacket>>,
) -> Result<usize, String> {
    let header_bytes = RTP_HEADER_BYTES + extension.map_or(0, PacketExtension::wire_bytes);
    let mut bytes = 0;
    loop {
        batch.clear();
        fanout.drain(id, batch, WRITE_BATCH);
        if batch.is_empty() {
            return Ok(bytes);
        }
        for p in batch.iter() {
            bytes += header_bytes + p.payload.len();
            let mut header = rtc::rtp::Header {
                version: 2,
                marker: p.marker,
                payload_type: pt,
                sequence_number: p.seq,
                timestamp: p.timestamp,
                ssrc,
                ..Default::default()
            };
            if let Some(ext) = extension {
                // The one-byte form always takes an id of 1..=14 and 3 bytes.
                header
                    .set_extension(ext.id, ext.value.clone())
                    .map_err(|e| format!("header extension: {e}"))?;
            }
            let packet = rtc::rtp::Packet {
                header,
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

/// Forwards connection events (and, for a receiving connection, the remote tracks) to the
/// session task without ever blocking the driver.
pub(crate) struct Handler {
    pub(crate) events: mpsc::Sender<PcEvent>,
    /// Where the remote tracks go (a relay's upstream); `None`: the connection only sends.
    pub(crate) tracks: Option<mpsc::Sender<Arc<dyn TrackRemote>>>,
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

    async fn on_track(&self, track: Arc<dyn TrackRemote>) {
        if let Some(tracks) = &self.tracks {
            let _ = tracks.try_send(track);
        }
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
    use rtc::shared::marshal::{Marshal, Unmarshal};

    #[test]
    fn playout_delay_is_encoded_as_the_extension_crate_reads_it() {
        let ext = PacketExtension::playout_delay(5, 0, 0).expect("id 5 fits");
        assert_eq!(&ext.value[..], &[0, 0, 0]);
        let ext = PacketExtension::playout_delay(3, 10, 4095).expect("id 3 fits");
        let mut buf = &ext.value[..];
        let parsed =
            rtc::rtp::extension::playout_delay_extension::PlayoutDelayExtension::unmarshal(
                &mut buf,
            )
            .expect("parses");
        assert_eq!((parsed.min_delay, parsed.max_delay), (10, 4095));
        assert_eq!(ext.wire_bytes(), 8);
        // Two-byte ids are not sent (the one-byte form takes 1..=14).
        assert!(PacketExtension::playout_delay(15, 0, 0).is_none());
        assert!(PacketExtension::playout_delay(0, 0, 0).is_none());
    }

    #[test]
    fn a_packet_with_the_extension_marshals_with_it() {
        let ext = PacketExtension::playout_delay(6, 0, 20).expect("fits");
        let mut header = rtc::rtp::Header {
            version: 2,
            payload_type: 96,
            sequence_number: 7,
            ssrc: 1,
            ..Default::default()
        };
        header
            .set_extension(ext.id, ext.value.clone())
            .expect("set");
        let packet = rtc::rtp::Packet {
            header,
            payload: bytes::Bytes::from_static(&[0x10, 1, 2, 3]),
        };
        let wire = packet.marshal().expect("marshal");
        assert_eq!(wire.len(), RTP_HEADER_BYTES + ext.wire_bytes() + 4);
        let mut r = &wire[..];
        let back = rtc::rtp::Packet::unmarshal(&mut r).expect("unmarshal");
        assert_eq!(
            back.header.get_extension(6).as_deref(),
            Some(&ext.value[..])
        );
    }

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

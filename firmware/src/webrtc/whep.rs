//! WHEP viewer sessions on the `webrtc` crate (0.21).
//!
//! One peer connection and one local track per viewer (a track bound to two connections
//! serves only the last one). A session answers the offer with every host candidate (no trickle),
//! waits a bounded time for STUN candidates, then lives in its own task: when ICE and DTLS are up
//! it joins the [`Hub`], asks for a keyframe, and writes its queue of shared packets, stamping its
//! own SSRC and the payload type the viewer negotiated. PLI and FIR from the viewer request a
//! keyframe (rate-limited by the encoder). NACKs are answered by the stack's responder from its
//! bounded history of sent packets.

use crate::config::WebRtcConfig;
use crate::media::{Hub, OutPacket};
use crate::stats::Stats;
use crate::webrtc::stun::StunResolver;
use rtc::interceptor::Registry;
use rtc::media_stream::MediaStreamTrack;
use rtc::peer_connection::configuration::media_engine::{MIME_TYPE_VP8, MediaEngine};
use rtc::rtp_transceiver::rtp_sender::{
    RTCPFeedback, RTCRtpCodec, RTCRtpCodecParameters, RTCRtpCodingParameters,
    RTCRtpEncodingParameters, RtpCodecKind,
};
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;
use webrtc::media_stream::track_local::static_rtp::TrackLocalStaticRTP;
use webrtc::media_stream::track_local::{TrackLocal, TrackLocalEvent};
use webrtc::peer_connection::{
    PeerConnection, PeerConnectionBuilder, PeerConnectionEventHandler, RTCConfigurationBuilder,
    RTCIceGatheringState, RTCIceServer, RTCPeerConnectionState, RTCSessionDescription,
    SettingEngineBuilder, register_default_interceptors,
};

/// Payload type we offer for VP8 when we are asked to choose (the viewer's offer decides).
const VP8_PAYLOAD_TYPE: u8 = 96;
/// How long a new session may take to connect before it is dropped.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// Packets a writer moves out of the hub per wake-up.
const WRITE_BATCH: usize = 64;

/// Why a WHEP offer was not answered.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// The offer is not usable (HTTP 400).
    #[error("{0}")]
    BadOffer(String),
    /// The viewer limit is reached (HTTP 503).
    #[error("the node serves at most {0} viewers; try again later")]
    Full(usize),
    /// Something failed on our side (HTTP 500).
    #[error("{0}")]
    Internal(String),
}

struct Session {
    pc: Arc<dyn PeerConnection>,
    stop: Arc<tokio::sync::Notify>,
    /// When the offer was answered, seconds since the UNIX epoch (`sutantra viewers`).
    since_unix: u64,
    /// Its place in the hub once connected (`None` while connecting).
    hub_id: Option<sutantra_core::fanout::ViewerId>,
}

/// One session as `sutantra viewers` lists it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SessionSummary {
    /// The WHEP session id (`sutantra viewers --kick ID`).
    pub id: String,
    /// `connecting` or `streaming`.
    pub state: &'static str,
    /// When it started, seconds since the UNIX epoch.
    pub since_unix: u64,
    /// Packets waiting in its queue.
    pub packets_queued: usize,
    /// Packets dropped from its queue because it fell behind.
    pub packets_dropped: u64,
    /// Packets it has taken from its queue.
    pub packets_sent: u64,
}

/// All viewer sessions of the node.
pub struct Viewers {
    cfg: WebRtcConfig,
    hub: Arc<Hub>,
    stats: Arc<Stats>,
    stun: StunResolver,
    bind_ips: Vec<IpAddr>,
    next_port: AtomicU16,
    sessions: Mutex<HashMap<String, Session>>,
}

impl std::fmt::Debug for Viewers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Viewers")
            .field("bind_ips", &self.bind_ips)
            .field("sessions", &self.count())
            .finish_non_exhaustive()
    }
}

impl Viewers {
    /// Sessions per `cfg`, fed from `hub`.
    pub fn new(cfg: WebRtcConfig, hub: Arc<Hub>, stats: Arc<Stats>) -> Self {
        let bind_ips = if cfg.bind_addrs.is_empty() {
            local_ips()
        } else {
            cfg.bind_addrs.clone()
        };
        let stun = StunResolver::new(
            &cfg.ice_servers,
            Duration::from_millis((cfg.gather_timeout_ms / 2).min(300)),
        );
        let next_port = AtomicU16::new(cfg.udp_port_min);
        Self {
            cfg,
            hub,
            stats,
            stun,
            bind_ips,
            next_port,
            sessions: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Session>> {
        self.sessions.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Sessions open now (connecting or connected).
    pub fn count(&self) -> usize {
        self.lock().len()
    }

    /// The open sessions, oldest first.
    pub fn list(&self) -> Vec<SessionSummary> {
        let mut out: Vec<SessionSummary> = self
            .lock()
            .iter()
            .map(|(id, s)| {
                let st = s.hub_id.and_then(|h| self.hub.viewer_stats(h));
                SessionSummary {
                    id: id.clone(),
                    state: if s.hub_id.is_some() {
                        "streaming"
                    } else {
                        "connecting"
                    },
                    since_unix: s.since_unix,
                    packets_queued: st.as_ref().map_or(0, |v| v.queued),
                    packets_dropped: st.as_ref().map_or(0, |v| v.dropped),
                    packets_sent: st.as_ref().map_or(0, |v| v.sent),
                }
            })
            .collect();
        out.sort_by(|a, b| a.since_unix.cmp(&b.since_unix).then(a.id.cmp(&b.id)));
        out
    }

    /// Ends session `id`; false when there is no such session.
    pub async fn end(&self, id: &str) -> bool {
        let session = self.lock().remove(id);
        match session {
            Some(s) => {
                s.stop.notify_one();
                let _ = s.pc.close().await;
                true
            }
            None => false,
        }
    }

    /// Ends every session (shutdown).
    pub async fn end_all(&self) {
        let ids: Vec<String> = self.lock().keys().cloned().collect();
        for id in ids {
            self.end(&id).await;
        }
    }

    /// Answers a WHEP offer: returns the session id and the SDP answer.
    pub async fn offer(
        self: &Arc<Self>,
        offer_sdp: String,
    ) -> Result<(String, String), SessionError> {
        if self.count() >= self.cfg.max_viewers {
            self.stats.viewers_refused.fetch_add(1, Ordering::Relaxed);
            return Err(SessionError::Full(self.cfg.max_viewers));
        }
        let offer = RTCSessionDescription::offer(offer_sdp).map_err(|e| {
            SessionError::BadOffer(format!("the body is not a usable SDP offer: {e}"))
        })?;
        if !offer.sdp.contains("m=video") {
            return Err(SessionError::BadOffer(
                "the offer has no video section (m=video): add a recvonly video transceiver".into(),
            ));
        }
        if !offer.sdp.to_ascii_uppercase().contains("VP8/90000") {
            return Err(SessionError::BadOffer(
                "the offer does not accept VP8 (a=rtpmap:... VP8/90000): this node sends VP8"
                    .into(),
            ));
        }

        // One budget for the whole answer: STUN name resolution and gathering both come out of it.
        let deadline =
            tokio::time::Instant::now() + Duration::from_millis(self.cfg.gather_timeout_ms);
        let (events_tx, events_rx) = mpsc::channel(32);
        let (pc, track) = self.build_connection(events_tx).await?;
        let pc: Arc<dyn PeerConnection> = Arc::new(pc);
        let answer = async {
            pc.set_remote_description(offer)
                .await
                .map_err(|e| SessionError::BadOffer(format!("the offer was refused: {e}")))?;
            let answer = pc
                .create_answer(None)
                .await
                .map_err(|e| SessionError::BadOffer(format!("no answer to this offer: {e}")))?;
            pc.set_local_description(answer)
                .await
                .map_err(|e| SessionError::Internal(format!("set_local_description: {e}")))?;
            Ok::<(), SessionError>(())
        }
        .await;
        if let Err(e) = answer {
            let _ = pc.close().await;
            return Err(e);
        }
        let mut events_rx = events_rx;
        wait_gathering(&mut events_rx, deadline).await;
        let Some(local) = pc.local_description().await else {
            let _ = pc.close().await;
            return Err(SessionError::Internal("no local description".into()));
        };
        let sdp = add_public_candidates(&local.sdp, &self.cfg.public_ips);

        let id = format!("{:016x}", rand::random::<u64>());
        let stop = Arc::new(tokio::sync::Notify::new());
        let admitted = {
            let mut sessions = self.lock();
            let room = sessions.len() < self.cfg.max_viewers;
            if room {
                sessions.insert(
                    id.clone(),
                    Session {
                        pc: pc.clone(),
                        stop: stop.clone(),
                        since_unix: std::time::SystemTime::now()
                            .duration_since(std::time::UNIX_EPOCH)
                            .map_or(0, |d| d.as_secs()),
                        hub_id: None,
                    },
                );
            }
            room
        };
        if !admitted {
            let _ = pc.close().await;
            self.stats.viewers_refused.fetch_add(1, Ordering::Relaxed);
            return Err(SessionError::Full(self.cfg.max_viewers));
        }
        self.stats.viewers_joined.fetch_add(1, Ordering::Relaxed);
        let this = self.clone();
        let sid = id.clone();
        tokio::spawn(async move {
            let reason = this.run_session(&sid, pc, track, events_rx, stop).await;
            if this.lock().remove(&sid).is_some() {
                tracing::info!(viewer = %sid, reason, "viewer left");
            } else {
                tracing::info!(viewer = %sid, reason = "ended by DELETE", "viewer left");
            }
        });
        Ok((id, sdp))
    }

    async fn build_connection(
        &self,
        events: mpsc::Sender<PcEvent>,
    ) -> Result<(impl PeerConnection + use<>, Arc<TrackLocalStaticRTP>), SessionError> {
        let internal =
            |what: &str, e: &dyn std::fmt::Display| SessionError::Internal(format!("{what}: {e}"));
        let vp8 = RTCRtpCodec {
            mime_type: MIME_TYPE_VP8.to_owned(),
            clock_rate: 90_000,
            channels: 0,
            sdp_fmtp_line: String::new(),
            rtcp_feedback: [("nack", ""), ("nack", "pli"), ("ccm", "fir")]
                .into_iter()
                .map(|(typ, parameter)| RTCPFeedback {
                    typ: typ.into(),
                    parameter: parameter.into(),
                })
                .collect(),
        };
        // The interceptor registry is consumed by a connection, so each attempt builds its own.
        let engine = || -> Result<(MediaEngine, Registry), SessionError> {
            let mut media = MediaEngine::default();
            media
                .register_codec(
                    RTCRtpCodecParameters {
                        rtp_codec: vp8.clone(),
                        payload_type: VP8_PAYLOAD_TYPE,
                    },
                    RtpCodecKind::Video,
                )
                .map_err(|e| internal("register VP8", &e))?;
            let registry = register_default_interceptors(Registry::new(), &mut media)
                .map_err(|e| internal("interceptors", &e))?
                .with(
                    crate::webrtc::keyframe::SLOT,
                    crate::webrtc::keyframe::KeyframeRequestForwarder::default(),
                );
            Ok((media, registry))
        };
        let ice_servers = self.stun.urls().await;
        let config = RTCConfigurationBuilder::new()
            .with_ice_servers(if ice_servers.is_empty() {
                vec![]
            } else {
                vec![RTCIceServer {
                    urls: ice_servers,
                    ..Default::default()
                }]
            })
            .build();
        let settings = SettingEngineBuilder::new()
            // Answer as the DTLS server (`a=setup:passive`), so the viewer sends the first
            // flight. As the client, webrtc 0.21's driver queues our ClientHello while it
            // handles the ICE "connected" event and sends it only on its next timer tick, about
            // 200 ms later (seen in its trace: `Send ClientHello` ... 199 ms ... `ice write`);
            // flights that answer a received packet go out at once. Measured, WHEP POST to
            // first decoded frame at an aiortc viewer: 250 -> 70-90 ms (BENCHMARKS.md).
            .with_answering_dtls_role(rtc::peer_connection::transport::RTCDtlsRole::Server)
            .with_multicast_dns_mode(rtc::ice::mdns::MulticastDnsMode::Disabled)
            .with_ice_timeouts(
                Some(Duration::from_secs(5)),
                Some(Duration::from_secs(15)),
                Some(Duration::from_secs(2)),
            )
            .build();
        let handler = Arc::new(Handler { events });

        // A fixed port range serves one connection per port: try ports until one binds.
        let attempts = if self.cfg.udp_port_min == 0 {
            1
        } else {
            (self.cfg.udp_port_max - self.cfg.udp_port_min) as usize + 1
        };
        let mut last_err = String::new();
        for _ in 0..attempts {
            let port = self.take_port();
            let addrs: Vec<String> = self
                .bind_ips
                .iter()
                .map(|ip| std::net::SocketAddr::new(*ip, port).to_string())
                .collect();
            let (media, registry) = engine()?;
            let built = PeerConnectionBuilder::new()
                .with_configuration(config.clone())
                .with_media_engine(media)
                .with_setting_engine(settings.clone())
                .with_interceptor_registry(registry)
                .with_handler(handler.clone() as Arc<dyn PeerConnectionEventHandler>)
                .with_udp_addrs(addrs)
                .build()
                .await;
            match built {
                Ok(pc) => {
                    let track = Arc::new(TrackLocalStaticRTP::new(MediaStreamTrack::new(
                        "sutantra".to_string(),
                        "video".to_string(),
                        "sutantra-camera".to_string(),
                        RtpCodecKind::Video,
                        vec![RTCRtpEncodingParameters {
                            rtp_coding_parameters: RTCRtpCodingParameters {
                                ssrc: Some(rand::random::<u32>()),
                                ..Default::default()
                            },
                            codec: vp8.clone(),
                            ..Default::default()
                        }],
                    )));
                    pc.add_track(track.clone() as Arc<dyn TrackLocal>)
                        .await
                        .map_err(|e| internal("add track", &e))?;
                    return Ok((pc, track));
                }
                Err(e) => last_err = e.to_string(),
            }
        }
        Err(SessionError::Internal(format!(
            "no UDP port free for a new viewer ({last_err}); widen webrtc.udp_port_min..udp_port_max"
        )))
    }

    fn take_port(&self) -> u16 {
        let (min, max) = (self.cfg.udp_port_min, self.cfg.udp_port_max);
        if min == 0 {
            return 0;
        }
        let p = self
            .next_port
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |p| {
                Some(if p >= max { min } else { p + 1 })
            })
            .unwrap_or(min);
        p.clamp(min, max)
    }

    /// The life of one session after the answer: connect, stream, clean up. Returns why it ended.
    async fn run_session(
        &self,
        id: &str,
        pc: Arc<dyn PeerConnection>,
        track: Arc<TrackLocalStaticRTP>,
        mut events: mpsc::Receiver<PcEvent>,
        stop: Arc<tokio::sync::Notify>,
    ) -> &'static str {
        // Wait for the connection.
        let connected = tokio::time::timeout(CONNECT_TIMEOUT, async {
            loop {
                tokio::select! {
                    ev = events.recv() => match ev {
                        Some(PcEvent::State(RTCPeerConnectionState::Connected)) => return Ok(()),
                        Some(PcEvent::State(RTCPeerConnectionState::Failed)) => return Err("ICE/DTLS failed"),
                        Some(PcEvent::State(RTCPeerConnectionState::Closed)) | None => return Err("closed before connecting"),
                        Some(_) => {}
                    },
                    _ = stop.notified() => return Err("ended by DELETE"),
                }
            }
        })
        .await
        .unwrap_or(Err("did not connect within 30 s"));
        if let Err(reason) = connected {
            let _ = pc.close().await;
            return reason;
        }
        let (ssrc, pt) = match negotiated(&pc, &track).await {
            Some(v) => v,
            None => {
                let _ = pc.close().await;
                return "no negotiated VP8 sender";
            }
        };
        let Some((viewer, wake)) = self.hub.join() else {
            let _ = pc.close().await;
            return "viewer limit reached in the hub";
        };
        self.stats.viewers.fetch_add(1, Ordering::Relaxed);
        if let Some(s) = self.lock().get_mut(id) {
            s.hub_id = Some(viewer);
        }
        tracing::info!(viewer = %id, ssrc, payload_type = pt, viewers = self.hub.viewers(), "viewer joined");

        let rtcp_task = {
            let (track, hub, stats) = (track.clone(), self.hub.clone(), self.stats.clone());
            tokio::spawn(async move {
                while let Some(TrackLocalEvent::OnRtcpPacket(packets)) = track.poll().await {
                    let wants_key = packets
                        .iter()
                        .any(|p| crate::webrtc::keyframe::is_keyframe_request(p.as_ref()));
                    if wants_key {
                        stats.keyframe_requests.fetch_add(1, Ordering::Relaxed);
                        hub.request_keyframe(viewer);
                    }
                }
            })
        };

        let mut batch: Vec<Arc<OutPacket>> = Vec::with_capacity(WRITE_BATCH);
        let reason = loop {
            tokio::select! {
                _ = wake.notified() => {}
                ev = events.recv() => match ev {
                    Some(PcEvent::State(RTCPeerConnectionState::Failed)) => break "connection failed",
                    Some(PcEvent::State(RTCPeerConnectionState::Closed)) | None => break "connection closed",
                    Some(PcEvent::State(s)) => {
                        tracing::debug!(viewer = %id, state = %s, "connection state");
                        continue;
                    }
                    Some(PcEvent::GatheringComplete) => continue,
                },
                _ = stop.notified() => break "ended by DELETE",
            }
            // The hub starts a joining viewer at a keyframe (one is requested on join), so it
            // never sees an undecodable picture.
            if let Err(e) = send_queued(&self.hub, viewer, &track, ssrc, pt, &mut batch).await {
                tracing::debug!(viewer = %id, error = %e, "write failed");
                break "write failed";
            }
        };
        rtcp_task.abort();
        self.hub.leave(viewer);
        self.stats.viewers.fetch_sub(1, Ordering::Relaxed);
        let _ = pc.close().await;
        reason
    }
}

/// Writes everything queued for `id` in the hub to `track`, stamped with this connection's SSRC
/// and negotiated payload type (viewers and publishers alike). Stops at the first write error
/// and returns its text (truncated: the stack's error embeds the whole packet).
/// An RTP header without extensions or CSRCs.
const RTP_HEADER_BYTES: usize = 12;

pub(crate) async fn send_queued(
    hub: &Hub,
    id: sutantra_core::fanout::ViewerId,
    track: &TrackLocalStaticRTP,
    ssrc: u32,
    pt: u8,
    batch: &mut Vec<Arc<OutPacket>>,
) -> Result<usize, String> {
    let mut bytes = 0;
    loop {
        batch.clear();
        hub.drain(id, batch, WRITE_BATCH);
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

/// The SSRC of our track and the payload type the peer negotiated for VP8 (viewers and
/// publishers).
pub(crate) async fn negotiated(
    pc: &Arc<dyn PeerConnection>,
    track: &Arc<TrackLocalStaticRTP>,
) -> Option<(u32, u8)> {
    use webrtc::media_stream::Track;
    let ssrc = *track.ssrcs().await.first()?;
    for sender in pc.get_senders().await {
        if let Ok(params) = sender.get_parameters().await
            && let Some(codec) = params
                .rtp_parameters
                .codecs
                .iter()
                .find(|c| c.rtp_codec.mime_type.eq_ignore_ascii_case(MIME_TYPE_VP8))
        {
            return Some((ssrc, codec.payload_type));
        }
    }
    None
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

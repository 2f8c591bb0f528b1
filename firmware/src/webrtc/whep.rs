//! WHEP viewer sessions on the `webrtc` crate (0.21).
//!
//! One peer connection and one local track per viewer (a track bound to two connections
//! serves only the last one). A session answers the offer with every host candidate (no trickle),
//! waits a bounded time for STUN candidates, then lives in its own task: when ICE and DTLS are up
//! it joins the [`SharedFanout`], asks for a keyframe, and writes its queue of shared packets, stamping its
//! own SSRC and the payload type the viewer negotiated. PLI and FIR from the viewer request a
//! keyframe (rate-limited by the encoder). NACKs are answered by the stack's responder from its
//! bounded history of sent packets.

use crate::config::WebRtcConfig;
use crate::media::{OutPacket, SharedFanout};
use crate::stats::Stats;
use crate::webrtc::peer::{PeerSpec, negotiated};
use crate::webrtc::session::{
    Handler, PcEvent, add_public_candidates, local_ips, send_queued, wait_gathering,
};
use crate::webrtc::stun::StunResolver;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;
use webrtc::media_stream::track_local::static_rtp::TrackLocalStaticRTP;
use webrtc::media_stream::track_local::{TrackLocal, TrackLocalEvent};
use webrtc::peer_connection::{
    PeerConnection, PeerConnectionEventHandler, RTCIceServer, RTCPeerConnectionState,
    RTCSessionDescription,
};

/// How long a new session may take to connect before it is dropped.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

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
    /// Its place in the fan-out once connected (`None` while connecting).
    fanout_id: Option<sutantra_core::fanout::ViewerId>,
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
    fanout: Arc<SharedFanout>,
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
    /// Sessions per `cfg`, fed from `fanout`.
    pub fn new(cfg: WebRtcConfig, fanout: Arc<SharedFanout>, stats: Arc<Stats>) -> Self {
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
            fanout,
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
                let st = s.fanout_id.and_then(|h| self.fanout.viewer_stats(h));
                SessionSummary {
                    id: id.clone(),
                    state: if s.fanout_id.is_some() {
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
                        fanout_id: None,
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
        let stun = self.stun.urls().await;
        let spec = PeerSpec::viewer(if stun.is_empty() {
            vec![]
        } else {
            vec![RTCIceServer {
                urls: stun,
                ..Default::default()
            }]
        });
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
            let builder = spec
                .builder(
                    |registry| {
                        registry.with(
                            crate::webrtc::keyframe::SLOT,
                            crate::webrtc::keyframe::KeyframeRequestForwarder::default(),
                        )
                    },
                    handler.clone() as Arc<dyn PeerConnectionEventHandler>,
                    addrs,
                )
                .map_err(SessionError::Internal)?;
            match builder.build().await {
                Ok(pc) => {
                    let track = spec.vp8_track(rand::random::<u32>());
                    pc.add_track(track.clone() as Arc<dyn TrackLocal>)
                        .await
                        .map_err(|e| SessionError::Internal(format!("add track: {e}")))?;
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
        let Some((viewer, wake)) = self.fanout.join() else {
            let _ = pc.close().await;
            return "viewer limit reached in the fanout";
        };
        self.stats.viewers.fetch_add(1, Ordering::Relaxed);
        if let Some(s) = self.lock().get_mut(id) {
            s.fanout_id = Some(viewer);
        }
        tracing::info!(viewer = %id, ssrc, payload_type = pt, viewers = self.fanout.viewers(), "viewer joined");

        let rtcp_task = {
            let (track, fanout, stats) = (track.clone(), self.fanout.clone(), self.stats.clone());
            tokio::spawn(async move {
                while let Some(TrackLocalEvent::OnRtcpPacket(packets)) = track.poll().await {
                    let wants_key = packets
                        .iter()
                        .any(|p| crate::webrtc::keyframe::is_keyframe_request(p.as_ref()));
                    if wants_key {
                        stats.keyframe_requests.fetch_add(1, Ordering::Relaxed);
                        fanout.request_keyframe(viewer);
                    }
                }
            })
        };

        let mut batch: Vec<Arc<OutPacket>> =
            Vec::with_capacity(crate::webrtc::session::WRITE_BATCH);
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
            // The fan-out starts a joining viewer at a keyframe (one is requested on join), so it
            // never sees an undecodable picture.
            if let Err(e) = send_queued(&self.fanout, viewer, &track, ssrc, pt, &mut batch).await {
                tracing::debug!(viewer = %id, error = %e, "write failed");
                break "write failed";
            }
        };
        rtcp_task.abort();
        self.fanout.leave(viewer);
        self.stats.viewers.fetch_sub(1, Ordering::Relaxed);
        let _ = pc.close().await;
        reason
    }
}

//! WHEP viewer sessions on the `webrtc` crate (0.21).
//!
//! Admission: a session counts against `webrtc.max_viewers` only once its ICE and DTLS are
//! connected. Until then it is one of at most `webrtc.max_connecting` sessions being set up:
//! a new offer beyond that evicts the oldest answered one, and an answered session that has not
//! connected within `webrtc.connect_timeout_ms` is dropped. An offer whose client hangs up before
//! the answer is sent (hyper drops the request's future) closes its peer connection at once
//! through a drop guard. So clients that abort requests, or take answers and never start ICE,
//! cannot keep real viewers out, and leave no UDP socket behind.
//!
//! One peer connection and one local track per viewer (a track bound to two connections
//! serves only the last one). A session answers the offer with every host candidate (no trickle),
//! waits a bounded time for STUN candidates, then lives in its own task: when ICE and DTLS are up
//! it joins the [`SharedFanout`], asks for a keyframe, and writes its queue of shared packets, stamping its
//! own SSRC and the payload type the viewer negotiated. PLI and FIR from the viewer request a
//! keyframe (rate-limited by the encoder). NACKs are answered by the stack's responder from its
//! bounded history of sent packets.
//!
//! Playout delay: with `webrtc.playout_delay` on (the default), a viewer whose offer has the
//! playout-delay header extension (Chrome's does) gets it in the answer, and every packet sent
//! to it carries `webrtc.playout_delay_ms` (default `[0, 0]`: show each frame once decoded,
//! without the receiver's smoothing delay). Offers without it are answered as before.

use crate::config::WebRtcConfig;
use crate::media::{OutPacket, SharedFanout};
use crate::stats::Stats;
use crate::webrtc::peer::{PLAYOUT_DELAY_URI, PeerSpec, negotiated, negotiated_extension};
use crate::webrtc::session::{
    Handler, PacketExtension, PcEvent, add_public_candidates, local_ips, send_queued_with,
    wait_gathering,
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

/// Media sections an offer may carry (a WHEP viewer needs one video section; audio beside it
/// is answered as inactive).
pub const MAX_MEDIA_SECTIONS: usize = 4;
/// ICE candidates an offer may carry.
pub const MAX_CANDIDATES: usize = 32;

/// Why a WHEP offer was not answered.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// The offer is not usable (HTTP 400).
    #[error("{0}")]
    BadOffer(String),
    /// The viewer limit is reached (HTTP 503).
    #[error("the node serves at most {0} viewers; try again later")]
    Full(usize),
    /// Every set-up slot is taken by an offer still being answered (HTTP 503, retry soon).
    #[error(
        "{0} viewer sessions are being set up right now (webrtc.max_connecting); try again in a \
         second"
    )]
    Busy(usize),
    /// Something failed on our side (HTTP 500).
    #[error("{0}")]
    Internal(String),
}

/// Where a session is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// The offer is being answered inside its HTTP request (not evictable: its request owns it).
    Answering,
    /// Answered; waiting for ICE and DTLS.
    Connecting,
    /// Connected and in the fan-out: one of `max_viewers`.
    Streaming(sutantra_core::fanout::ViewerId),
}

struct Session {
    /// Set once answered (the request's guard owns the connection until then).
    pc: Option<Arc<dyn PeerConnection>>,
    stop: Arc<tokio::sync::Notify>,
    /// When the offer arrived, seconds since the UNIX epoch (`sutantra viewers`).
    since_unix: u64,
    /// When the offer arrived (eviction order).
    started: tokio::time::Instant,
    phase: Phase,
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

    /// Sessions open now (being answered, connecting or connected).
    pub fn count(&self) -> usize {
        self.lock().len()
    }

    /// The viewer limit (`webrtc.max_viewers`).
    pub fn max_viewers(&self) -> usize {
        self.cfg.max_viewers
    }

    /// Sessions connected now (the ones that count against `max_viewers`).
    pub fn streaming(&self) -> usize {
        self.lock()
            .values()
            .filter(|s| matches!(s.phase, Phase::Streaming(_)))
            .count()
    }

    /// The open sessions, oldest first.
    pub fn list(&self) -> Vec<SessionSummary> {
        let mut out: Vec<SessionSummary> = self
            .lock()
            .iter()
            .map(|(id, s)| {
                let st = match s.phase {
                    Phase::Streaming(h) => self.fanout.viewer_stats(h),
                    _ => None,
                };
                SessionSummary {
                    id: id.clone(),
                    state: if matches!(s.phase, Phase::Streaming(_)) {
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
                if let Some(pc) = s.pc {
                    let _ = pc.close().await;
                }
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
        let offer = RTCSessionDescription::offer(offer_sdp).map_err(|e| {
            SessionError::BadOffer(format!("the body is not a usable SDP offer: {e}"))
        })?;
        check_offer(&offer.sdp).map_err(SessionError::BadOffer)?;
        let (id, stop) = self.admit()?;
        // The request's future may be dropped at any await: hyper drops it when the client hangs
        // up. So the answer is built in a task of its own, which is never cancelled mid-step (a
        // peer connection dropped halfway through being built would keep its sockets), and which
        // sees the request go through `alive` between steps and then closes what it built.
        let (alive, gone) = tokio::sync::oneshot::channel::<()>();
        let this = self.clone();
        let task = tokio::spawn(async move { this.answer(id, stop, offer, gone).await });
        let result = task
            .await
            .map_err(|e| SessionError::Internal(format!("answering the offer failed: {e}")));
        drop(alive);
        result?
    }

    /// Builds the answer for session `id` (admitted, in `Answering`), then hands the connection
    /// to the session's own task. `gone` resolves when the request has gone away.
    async fn answer(
        self: Arc<Self>,
        id: String,
        stop: Arc<tokio::sync::Notify>,
        offer: RTCSessionDescription,
        mut gone: tokio::sync::oneshot::Receiver<()>,
    ) -> Result<(String, String), SessionError> {
        let hung_up = || SessionError::Internal("the client hung up before its answer".into());
        let mut guard = AnswerGuard {
            viewers: self.clone(),
            id: id.clone(),
            pc: None,
        };

        // One budget for the whole answer: STUN name resolution and gathering both come out of it.
        let deadline =
            tokio::time::Instant::now() + Duration::from_millis(self.cfg.gather_timeout_ms);
        let (events_tx, events_rx) = mpsc::channel(32);
        let (pc, track) = self.build_connection(events_tx).await?;
        let pc: Arc<dyn PeerConnection> = Arc::new(pc);
        guard.pc = Some(pc.clone());
        if request_gone(&mut gone) {
            return Err(hung_up());
        }
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
        let mut events_rx = events_rx;
        tokio::select! {
            () = wait_gathering(&mut events_rx, deadline) => {}
            _ = &mut gone => return Err(hung_up()),
        }
        if request_gone(&mut gone) {
            return Err(hung_up());
        }
        let Some(local) = pc.local_description().await else {
            return Err(SessionError::Internal("no local description".into()));
        };
        let sdp = add_public_candidates(&local.sdp, &self.cfg.public_ips);

        // Hand the connection to the session; it may have been ended meanwhile (shutdown).
        {
            let mut sessions = self.lock();
            let Some(s) = sessions.get_mut(&id) else {
                return Err(SessionError::Internal(
                    "the session was ended while its offer was answered".into(),
                ));
            };
            s.pc = Some(pc.clone());
            s.phase = Phase::Connecting;
        }
        guard.disarm();
        self.stats.viewers_joined.fetch_add(1, Ordering::Relaxed);
        let this = self.clone();
        let sid = id.clone();
        tokio::spawn(async move {
            // The session runs in a task of its own, so a panic in it (our code or the WebRTC
            // stack's, on input from this viewer) ends this viewer only: the task unwinds, its
            // guards leave the fan-out, and this task still removes the session and closes the
            // connection. Other viewers and the encoder never see it.
            let inner = {
                let (this, sid, pc) = (this.clone(), sid.clone(), pc.clone());
                tokio::spawn(
                    async move { this.run_session(&sid, pc, track, events_rx, stop).await },
                )
            };
            let reason = match inner.await {
                Ok(reason) => reason,
                Err(e) => {
                    this.stats.session_panics.fetch_add(1, Ordering::Relaxed);
                    tracing::error!(viewer = %sid, error = %e, "a viewer's session stopped on an internal error; the other viewers go on");
                    let _ = pc.close().await;
                    "internal error (its task panicked)"
                }
            };
            // The heap it freed goes back to the kernel by `ops::memory`'s trimmer.
            if this.lock().remove(&sid).is_some() {
                tracing::info!(viewer = %sid, reason, "viewer left");
            } else {
                tracing::info!(viewer = %sid, reason = "ended (DELETE, kick or eviction)", "viewer left");
            }
        });
        Ok((id, sdp))
    }

    /// Takes a set-up slot for a new offer: refuses at the viewer limit, evicts the oldest
    /// answered-but-unconnected session when every slot is taken, refuses (busy) when every slot
    /// is an offer still being answered. Returns the new session's id and stop signal.
    fn admit(&self) -> Result<(String, Arc<tokio::sync::Notify>), SessionError> {
        let mut sessions = self.lock();
        let streaming = sessions
            .values()
            .filter(|s| matches!(s.phase, Phase::Streaming(_)))
            .count();
        if streaming >= self.cfg.max_viewers {
            self.stats.viewers_refused.fetch_add(1, Ordering::Relaxed);
            return Err(SessionError::Full(self.cfg.max_viewers));
        }
        let setting_up = sessions.len() - streaming;
        if setting_up >= self.cfg.max_connecting {
            let oldest = sessions
                .iter()
                .filter(|(_, s)| s.phase == Phase::Connecting)
                .min_by_key(|(_, s)| s.started)
                .map(|(id, _)| id.clone());
            let Some(oldest) = oldest else {
                self.stats.viewers_refused.fetch_add(1, Ordering::Relaxed);
                return Err(SessionError::Busy(self.cfg.max_connecting));
            };
            if let Some(evicted) = sessions.remove(&oldest) {
                // Its task closes the connection when it sees the signal.
                evicted.stop.notify_one();
                self.stats
                    .sessions_abandoned
                    .fetch_add(1, Ordering::Relaxed);
                tracing::info!(viewer = %oldest, "unconnected session evicted by a newer offer");
            }
        }
        let id = format!("{:016x}", rand::random::<u64>());
        let stop = Arc::new(tokio::sync::Notify::new());
        sessions.insert(
            id.clone(),
            Session {
                pc: None,
                stop: stop.clone(),
                since_unix: std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs()),
                started: tokio::time::Instant::now(),
                phase: Phase::Answering,
            },
        );
        Ok((id, stop))
    }

    async fn build_connection(
        &self,
        events: mpsc::Sender<PcEvent>,
    ) -> Result<(impl PeerConnection + use<>, Arc<TrackLocalStaticRTP>), SessionError> {
        let stun = self.stun.urls().await;
        let mut spec = PeerSpec::viewer(if stun.is_empty() {
            vec![]
        } else {
            vec![RTCIceServer {
                urls: stun,
                ..Default::default()
            }]
        });
        spec.playout_delay = self.cfg.playout_delay;
        let handler = Arc::new(Handler {
            events,
            tracks: None,
        });

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
                    if let Err(e) = pc.add_track(track.clone() as Arc<dyn TrackLocal>).await {
                        let _ = pc.close().await;
                        return Err(SessionError::Internal(format!("add track: {e}")));
                    }
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
        let connect_timeout = Duration::from_millis(self.cfg.connect_timeout_ms);
        let connected = tokio::time::timeout(connect_timeout, async {
            loop {
                tokio::select! {
                    ev = events.recv() => match ev {
                        Some(PcEvent::State(RTCPeerConnectionState::Connected)) => return Ok(()),
                        Some(PcEvent::State(RTCPeerConnectionState::Failed)) => return Err("ICE/DTLS failed"),
                        Some(PcEvent::State(RTCPeerConnectionState::Closed)) | None => return Err("closed before connecting"),
                        Some(_) => {}
                    },
                    _ = stop.notified() => return Err("ended before connecting (DELETE or evicted)"),
                }
            }
        })
        .await
        .unwrap_or(Err("did not connect within webrtc.connect_timeout_ms"));
        if let Err(reason) = connected {
            if self.lock().contains_key(id) {
                self.stats
                    .sessions_abandoned
                    .fetch_add(1, Ordering::Relaxed);
            }
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
        // Now it counts against max_viewers: others may have connected first.
        let joined = {
            let mut sessions = self.lock();
            let streaming = sessions
                .values()
                .filter(|s| matches!(s.phase, Phase::Streaming(_)))
                .count();
            match sessions.get_mut(id) {
                None => Err("ended before streaming"),
                Some(_) if streaming >= self.cfg.max_viewers => Err("viewer limit reached"),
                Some(s) => match self.fanout.join() {
                    Some((viewer, wake)) => {
                        s.phase = Phase::Streaming(viewer);
                        Ok((viewer, wake))
                    }
                    None => Err("viewer limit reached in the fanout"),
                },
            }
        };
        let (viewer, wake) = match joined {
            Ok(v) => v,
            Err(reason) => {
                if reason != "ended before streaming" {
                    self.stats.viewers_refused.fetch_add(1, Ordering::Relaxed);
                }
                let _ = pc.close().await;
                return reason;
            }
        };
        // The playout delay goes on every packet when the viewer negotiated the extension.
        let playout = if self.cfg.playout_delay {
            negotiated_extension(&pc, PLAYOUT_DELAY_URI).await
        } else {
            None
        };
        let extension = playout.and_then(|ext_id| {
            let (min, max) = self.cfg.playout_delay_ms.units();
            let ext = PacketExtension::playout_delay(ext_id, min, max);
            if ext.is_none() {
                tracing::warn!(viewer = %id, ext_id, "playout-delay extension id above 14 (two-byte form): not sent");
            }
            ext
        });
        self.stats.viewers.fetch_add(1, Ordering::Relaxed);
        tracing::info!(viewer = %id, ssrc, payload_type = pt, playout_delay_ext = ?playout, viewers = self.fanout.viewers(), "viewer joined");
        let mut joined = Joined {
            fanout: &self.fanout,
            stats: &self.stats,
            viewer,
            rtcp: None,
        };

        joined.rtcp = Some({
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
        });

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
            let sent = send_queued_with(
                &self.fanout,
                viewer,
                &track,
                (ssrc, pt),
                extension.as_ref(),
                &mut batch,
            )
            .await;
            if let Err(e) = sent {
                tracing::debug!(viewer = %id, error = %e, "write failed");
                break "write failed";
            }
        };
        drop(joined);
        let _ = pc.close().await;
        reason
    }
}

/// A viewer in the fan-out. Dropping it (at the end of the session, or while its task unwinds
/// from a panic) stops its RTCP reader, leaves the fan-out and counts the viewer out, so a
/// session that dies on an internal error does not keep a viewer slot.
struct Joined<'a> {
    fanout: &'a SharedFanout,
    stats: &'a Stats,
    viewer: sutantra_core::fanout::ViewerId,
    rtcp: Option<tokio::task::JoinHandle<()>>,
}

impl Drop for Joined<'_> {
    fn drop(&mut self) {
        if let Some(task) = self.rtcp.take() {
            task.abort();
        }
        self.fanout.leave(self.viewer);
        self.stats.viewers.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Whether the request that `gone` belongs to has gone away (its sender was dropped).
fn request_gone(gone: &mut tokio::sync::oneshot::Receiver<()>) -> bool {
    matches!(
        gone.try_recv(),
        Err(tokio::sync::oneshot::error::TryRecvError::Closed)
    )
}

/// Owns a session while its offer is answered inside the HTTP request: dropped before
/// [`AnswerGuard::disarm`] (an error, or the client hung up), it
/// removes the session and closes its peer connection, so no half-built connection outlives its
/// request.
struct AnswerGuard {
    viewers: Arc<Viewers>,
    id: String,
    pc: Option<Arc<dyn PeerConnection>>,
}

impl AnswerGuard {
    fn disarm(mut self) {
        self.pc = None;
        self.id.clear();
    }
}

impl Drop for AnswerGuard {
    fn drop(&mut self) {
        if self.id.is_empty() {
            return;
        }
        let removed = self.viewers.lock().remove(&self.id).is_some();
        if removed {
            self.viewers
                .stats
                .sessions_abandoned
                .fetch_add(1, Ordering::Relaxed);
        }
        if let Some(pc) = self.pc.take() {
            // close() is async; the runtime is there (we are inside a request's task).
            if let Ok(rt) = tokio::runtime::Handle::try_current() {
                rt.spawn(async move {
                    let _ = pc.close().await;
                });
            }
        }
    }
}

/// Refuses offers this node will not answer, before any resource is spent on them: no video
/// section, no VP8, a data channel (`m=application`), more than [`MAX_MEDIA_SECTIONS`] media
/// sections or more than [`MAX_CANDIDATES`] candidates. The reason is the HTTP 400 body.
pub fn check_offer(sdp: &str) -> Result<(), String> {
    let mut media = 0usize;
    let mut video = false;
    let mut candidates = 0usize;
    for line in sdp.lines() {
        let line = line.trim_end_matches('\r');
        if let Some(m) = line.strip_prefix("m=") {
            media += 1;
            let kind = m.split(' ').next().unwrap_or("");
            if kind.eq_ignore_ascii_case("application") {
                return Err(
                    "the offer asks for a data channel (m=application); this node \
                            serves video only: offer a recvonly video transceiver without a \
                            data channel"
                        .into(),
                );
            }
            if kind.eq_ignore_ascii_case("video") {
                video = true;
            }
            if media > MAX_MEDIA_SECTIONS {
                return Err(format!(
                    "the offer has more than {MAX_MEDIA_SECTIONS} media sections (m=); a viewer \
                     needs one video section"
                ));
            }
        } else if line.starts_with("a=candidate:") {
            candidates += 1;
            if candidates > MAX_CANDIDATES {
                return Err(format!(
                    "the offer has more than {MAX_CANDIDATES} ICE candidates; send at most \
                     {MAX_CANDIDATES}"
                ));
            }
        }
    }
    if !video {
        return Err(
            "the offer has no video section (m=video): add a recvonly video transceiver".into(),
        );
    }
    if !sdp.to_ascii_uppercase().contains("VP8/90000") {
        return Err(
            "the offer does not accept VP8 (a=rtpmap:... VP8/90000): this node sends VP8".into(),
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const OFFER: &str = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n\
        m=video 9 UDP/TLS/RTP/SAVPF 96\r\nc=IN IP4 0.0.0.0\r\na=rtpmap:96 VP8/90000\r\n\
        a=recvonly\r\na=candidate:1 1 udp 2130706431 127.0.0.1 5000 typ host\r\n";

    /// What a session's own task gives: a panic in it (here on purpose, in the field a bug met
    /// on one viewer's input) unwinds only that task, its `Joined` guard frees the viewer's
    /// fan-out slot and count, and another viewer keeps its slot and its packets.
    #[tokio::test]
    async fn a_panicking_session_task_frees_its_slot_and_spares_the_others() {
        let fanout = Arc::new(SharedFanout::new(4, 64).expect("fanout"));
        let stats = Arc::new(Stats::new());
        let (other, _) = fanout.join().expect("a slot for the other viewer");
        let (f, s) = (fanout.clone(), stats.clone());
        let task = tokio::spawn(async move {
            let (viewer, _wake) = f.join().expect("a slot");
            s.viewers.fetch_add(1, Ordering::Relaxed);
            let _joined = Joined {
                fanout: &f,
                stats: &s,
                viewer,
                rtcp: None,
            };
            assert_eq!(f.viewers(), 2);
            panic!("a bug met on one viewer's input");
        });
        let err = task.await.expect_err("the session's task panicked");
        assert!(err.is_panic());
        assert_eq!(fanout.viewers(), 1, "the panicked viewer's slot was freed");
        assert_eq!(stats.viewers.load(Ordering::Relaxed), 0);
        // The other viewer is still served: a keyframe's packet reaches its queue.
        let packet = Arc::new(OutPacket {
            seq: 1,
            timestamp: 90,
            marker: true,
            keyframe_start: true,
            payload: bytes::Bytes::from_static(&[0x10, 0, 0, 0]),
        });
        fanout.broadcast(&[packet]);
        let mut out = Vec::new();
        fanout.drain(other, &mut out, 8);
        assert_eq!(out.len(), 1, "the other viewer got the packet");
    }

    #[test]
    fn a_plain_video_offer_passes() {
        assert_eq!(check_offer(OFFER), Ok(()));
    }

    #[test]
    fn data_channels_are_refused() {
        let sdp = format!(
            "{OFFER}m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\nc=IN IP4 0.0.0.0\r\n"
        );
        let e = check_offer(&sdp).expect_err("refused");
        assert!(e.contains("m=application"), "{e}");
    }

    #[test]
    fn too_many_media_sections_are_refused() {
        let mut sdp = OFFER.to_string();
        for _ in 0..MAX_MEDIA_SECTIONS {
            sdp.push_str("m=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=rtpmap:111 opus/48000/2\r\n");
        }
        let e = check_offer(&sdp).expect_err("refused");
        assert!(e.contains("media sections"), "{e}");
        // Exactly the limit is fine.
        let mut ok = OFFER.to_string();
        for _ in 1..MAX_MEDIA_SECTIONS {
            ok.push_str("m=audio 9 UDP/TLS/RTP/SAVPF 111\r\n");
        }
        assert_eq!(check_offer(&ok), Ok(()));
    }

    #[test]
    fn too_many_candidates_are_refused() {
        let mut sdp = OFFER.to_string();
        for i in 0..MAX_CANDIDATES {
            sdp.push_str(&format!(
                "a=candidate:{i} 1 udp 1 10.0.0.{} 5000 typ host\r\n",
                i % 250
            ));
        }
        let e = check_offer(&sdp).expect_err("refused");
        assert!(e.contains("ICE candidates"), "{e}");
    }

    #[test]
    fn offers_without_video_or_vp8_are_refused() {
        let e = check_offer("v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\n").expect_err("no video");
        assert!(e.contains("m=video"), "{e}");
        let e = check_offer(&OFFER.replace("VP8/90000", "H264/90000")).expect_err("no vp8");
        assert!(e.contains("VP8"), "{e}");
    }
}

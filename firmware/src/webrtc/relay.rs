//! The relay source (`whep:URL`): the node subscribes to another WHEP server (another node, or
//! any WHEP server) and forwards its VP8 RTP to its own viewers without decoding or encoding.
//!
//! One tokio task takes the place of the capture and encode threads. It builds a receive-only
//! peer connection (the offerer, like a WHIP publisher), POSTs the offer with the same HTTP
//! exchange as WHIP ([`whip_http`]: token only to the configured origin, no https-to-http
//! redirects), and once the upstream's track arrives it hands every RTP packet to the core's
//! [`Rewriter`], which keeps the viewers' stream one continuous stream across upstream
//! reconnects (its own sequence numbers, timestamps and VP8 PictureIDs; nothing of a new upstream
//! session before its first keyframe), then to the [`SharedFanout`] like the encode thread's
//! packets. Viewers never notice an upstream change beyond a frozen picture: their sessions,
//! SSRCs and NACK histories (the stack's responder answers their NACKs from what was sent to
//! them) are their own.
//!
//! Keyframes: a viewer that joins or sends PLI/FIR marks the fan-out, and this task sends one
//! PLI upstream per `encoder.min_keyframe_gap_ms` at most (many joins, one request); after a
//! reconnect it asks until the keyframe comes. The upstream decides the picture: size, rate and
//! bitrate are its own, so `[encoder]` does not apply (its keyframe gap does).
//!
//! When the upstream fails, ends or goes silent, the session is DELETEd (best effort) and a new
//! one is made with capped exponential backoff and jitter, the viewers staying connected. The
//! upstream's state, RTT (from the ICE checks) and loss (gaps in its sequence numbers) are in
//! `Stats::upstream`: `status`, `/healthz` and `/metrics` show them.

use crate::config::WebRtcConfig;
use crate::media::control::MediaControl;
use crate::media::{OutPacket, SharedFanout};
use crate::stats::Stats;
use crate::webrtc::peer::PeerSpec;
use crate::webrtc::session::{Handler, PcEvent};
use crate::webrtc::stun::StunResolver;
use crate::webrtc::whip::whip_http;
use crate::webrtc::whip::{Endpoint, Posted, offer_and_post};
use bytes::Bytes;
use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;
use rtc::rtp_transceiver::{RTCRtpTransceiverDirection, RTCRtpTransceiverInit};
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use sutantra_core::backoff::Backoff;
use sutantra_core::fanout::KeyframeLimiter;
use sutantra_core::relay::Rewriter;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use webrtc::media_stream::track_remote::{TrackRemote, TrackRemoteEvent};
use webrtc::peer_connection::{
    PeerConnection, PeerConnectionEventHandler, RTCIceServer, RTCPeerConnectionState,
    RTCSessionDescription,
};

/// From the answer to the first packet of the upstream's track.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);
/// An upstream that sends nothing this long is gone (its process died without closing, or the
/// path broke): a node sends 30 frames a second, its "no signal" slate included, so 1.5 s of
/// nothing is not a slow frame. (A paused upstream sends nothing either: then the attempts
/// that follow fail and back off.)
const SILENCE: Duration = Duration::from_millis(1500);
/// After a session that streamed ends, the first new attempt comes this soon: the viewers are
/// waiting, and an upstream that is still away refuses at once (then the backoff grows).
const RETRY_AFTER_END: Duration = Duration::from_millis(100);
/// A connection that stays disconnected this long is torn down and made again.
const DISCONNECTED_GRACE: Duration = Duration::from_secs(2);
/// First retry delay; doubles per failure up to `RETRY_MAX`, with jitter.
const RETRY_MIN: Duration = Duration::from_millis(500);
/// Longest retry delay.
const RETRY_MAX: Duration = Duration::from_secs(8);
/// How often keyframe requests and the figures are looked at.
const TICK: Duration = Duration::from_millis(50);
/// How often the connection's statistics (RTT) are read.
const STATS_EVERY: Duration = Duration::from_secs(1);
/// How long a stop waits for the task (its DELETE).
const STOP_WAIT: Duration = Duration::from_secs(4);

/// What the relay needs to know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelaySource {
    /// The upstream WHEP endpoint.
    pub url: String,
    /// Bearer token for it.
    pub token: Option<String>,
    /// Shortest gap between keyframe requests sent upstream.
    pub min_keyframe_gap: Duration,
}

/// The running relay task.
#[derive(Debug)]
pub struct Relay {
    stop: watch::Sender<bool>,
    task: Option<tokio::task::JoinHandle<()>>,
    runtime: tokio::runtime::Handle,
}

#[derive(Debug)]
struct Ctx {
    source: RelaySource,
    fanout: Arc<SharedFanout>,
    control: Arc<MediaControl>,
    stats: Arc<Stats>,
    stun: StunResolver,
    bind_ips: Vec<IpAddr>,
    gather_timeout: Duration,
    origin: std::time::Instant,
}

impl Relay {
    /// Starts relaying `source` into `fanout` on the current tokio runtime.
    pub fn start(
        source: RelaySource,
        webrtc: &WebRtcConfig,
        fanout: Arc<SharedFanout>,
        control: Arc<MediaControl>,
        stats: Arc<Stats>,
        runtime: tokio::runtime::Handle,
    ) -> Self {
        let bind_ips = if webrtc.bind_addrs.is_empty() {
            crate::webrtc::session::local_ips()
        } else {
            webrtc.bind_addrs.clone()
        };
        stats.upstream.enable(&source.url);
        stats.set_source_state("connecting");
        let ctx = Ctx {
            source,
            fanout,
            control,
            stats,
            stun: StunResolver::new(
                &webrtc.ice_servers,
                Duration::from_millis((webrtc.gather_timeout_ms / 2).min(300)),
            ),
            bind_ips,
            gather_timeout: Duration::from_millis(webrtc.gather_timeout_ms),
            origin: std::time::Instant::now(),
        };
        let (stop, stop_rx) = watch::channel(false);
        let task = runtime.spawn(run(ctx, stop_rx));
        Self {
            stop,
            task: Some(task),
            runtime,
        }
    }

    /// Stops the task (it DELETEs its session) and waits a bounded time. Blocking: call it from
    /// a blocking thread (a reload's or the shutdown's), never from a runtime worker.
    pub fn stop(mut self) {
        let _ = self.stop.send(true);
        if let Some(task) = self.task.take() {
            let done = self
                .runtime
                .block_on(async { tokio::time::timeout(STOP_WAIT, task).await });
            if done.is_err() {
                tracing::warn!("the relay did not stop in time (DELETE pending); leaving it");
            }
        }
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

/// How one upstream session ended.
enum Outcome {
    /// The node stops or the source changes.
    Stopped,
    /// It streamed, then ended (upstream gone, closed, silent).
    Ended(String),
    /// It never streamed (HTTP refusal, no connection, no media).
    Failed(String),
}

async fn run(ctx: Ctx, mut stop: watch::Receiver<bool>) {
    let mut backoff = Backoff::new(RETRY_MIN, RETRY_MAX).with_jitter(0.2);
    let mut rewriter = Rewriter::new(
        rand::random::<u16>(),
        rand::random::<u32>(),
        rand::random::<u16>() & 0x7fff,
    );
    let mut streak: Option<String> = None;
    tracing::info!(upstream = %ctx.source.url, "relaying another WHEP server's stream");
    loop {
        if *stop.borrow() {
            break;
        }
        ctx.stats.upstream.set_state("connecting");
        let outcome = session(&ctx, &mut rewriter, &mut stop).await;
        rewriter.upstream_changed();
        ctx.stats.upstream.rtt_us.store(0, Ordering::Relaxed);
        ctx.stats.set_source_state("reconnecting");
        let delay = match outcome {
            Outcome::Stopped => break,
            Outcome::Ended(reason) => {
                ctx.stats.upstream.ended.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(upstream = %ctx.source.url, reason, "upstream session ended; subscribing again");
                ctx.stats.upstream.set_error(Some(reason));
                backoff.reset();
                streak = None;
                RETRY_AFTER_END
            }
            Outcome::Failed(reason) => {
                ctx.stats.upstream.failures.fetch_add(1, Ordering::Relaxed);
                let delay = backoff.next_delay(rand::random::<f64>());
                if streak.as_deref() != Some(reason.as_str()) {
                    tracing::warn!(upstream = %ctx.source.url, reason, retry_in = ?delay, "cannot subscribe to the upstream; retrying with backoff");
                    streak = Some(reason.clone());
                } else {
                    tracing::debug!(upstream = %ctx.source.url, reason, retry_in = ?delay, "upstream still failing");
                }
                ctx.stats.upstream.set_error(Some(reason));
                delay
            }
        };
        ctx.stats.upstream.set_state("waiting");
        tokio::select! {
            () = tokio::time::sleep(delay) => {}
            _ = stop.changed() => break,
        }
    }
    ctx.stats.upstream.set_state("stopped");
}

async fn session(ctx: &Ctx, rewriter: &mut Rewriter, stop: &mut watch::Receiver<bool>) -> Outcome {
    let (events_tx, mut events) = mpsc::channel(32);
    let (tracks_tx, mut tracks) = mpsc::channel(4);
    let pc: Arc<dyn PeerConnection> = match build_connection(ctx, events_tx, tracks_tx).await {
        Ok(pc) => Arc::new(pc),
        Err(e) => return Outcome::Failed(e),
    };
    let outcome = negotiate_and_forward(ctx, &pc, &mut events, &mut tracks, rewriter, stop).await;
    let _ = pc.close().await;
    outcome
}

async fn build_connection(
    ctx: &Ctx,
    events: mpsc::Sender<PcEvent>,
    tracks: mpsc::Sender<Arc<dyn TrackRemote>>,
) -> Result<impl PeerConnection + use<>, String> {
    let stun = ctx.stun.urls().await;
    let servers = if stun.is_empty() {
        vec![]
    } else {
        vec![RTCIceServer {
            urls: stun,
            ..Default::default()
        }]
    };
    let spec = PeerSpec::subscriber(servers);
    let addrs: Vec<String> = ctx
        .bind_ips
        .iter()
        .map(|ip| std::net::SocketAddr::new(*ip, 0).to_string())
        .collect();
    let handler = Arc::new(Handler {
        events,
        tracks: Some(tracks),
    });
    let pc = spec
        .builder(
            |registry| registry,
            handler as Arc<dyn PeerConnectionEventHandler>,
            addrs,
        )?
        .build()
        .await
        .map_err(|e| format!("peer connection: {e}"))?;
    pc.add_transceiver_from_kind(
        RtpCodecKind::Video,
        Some(RTCRtpTransceiverInit {
            direction: RTCRtpTransceiverDirection::Recvonly,
            streams: vec![],
            send_encodings: vec![],
        }),
    )
    .await
    .map_err(|e| format!("add a receive-only video transceiver: {e}"))?;
    Ok(pc)
}

async fn negotiate_and_forward(
    ctx: &Ctx,
    pc: &Arc<dyn PeerConnection>,
    events: &mut mpsc::Receiver<PcEvent>,
    tracks: &mut mpsc::Receiver<Arc<dyn TrackRemote>>,
    rewriter: &mut Rewriter,
    stop: &mut watch::Receiver<bool>,
) -> Outcome {
    let endpoint = Endpoint {
        url: &ctx.source.url,
        token: ctx.source.token.as_deref(),
        ca_file: None,
    };
    let created = match offer_and_post(pc, events, ctx.gather_timeout, endpoint, stop).await {
        Posted::Created(c) => c,
        Posted::Refused(e) if e.is_auth() => {
            return Outcome::Failed(format!(
                "{e}: the upstream wants a token: set [source] upstream_token"
            ));
        }
        Posted::Refused(e) => return Outcome::Failed(e.to_string()),
        Posted::Failed(e) => return Outcome::Failed(e),
        Posted::Stopped => return Outcome::Stopped,
    };
    let (resource, send_token) = (created.resource.clone(), created.send_token);
    let outcome = async {
        let answer = match RTCSessionDescription::answer(created.answer) {
            Ok(a) => a,
            Err(e) => return Outcome::Failed(format!("the answer is not usable SDP: {e}")),
        };
        if let Err(e) = pc.set_remote_description(answer).await {
            return Outcome::Failed(format!("the answer was refused: {e}"));
        }
        forward(ctx, pc, events, tracks, rewriter, stop).await
    }
    .await;
    if let Some(resource) = resource {
        let token = ctx.source.token.clone().filter(|_| send_token);
        let done = tokio::task::spawn_blocking(move || {
            whip_http::delete(&resource, token.as_deref(), None, whip_http::DELETE_TIMEOUT)
        })
        .await;
        if let Ok(Err(e)) = done {
            tracing::debug!(error = %e, "upstream DELETE failed");
        }
    }
    outcome
}

/// A frame being forwarded: what the figures count once its last packet went out.
#[derive(Default)]
struct FrameTally {
    bytes: usize,
    packets: usize,
    keyframe: bool,
}

/// Waits for the upstream's track, then forwards its packets until the session ends.
async fn forward(
    ctx: &Ctx,
    pc: &Arc<dyn PeerConnection>,
    events: &mut mpsc::Receiver<PcEvent>,
    tracks: &mut mpsc::Receiver<Arc<dyn TrackRemote>>,
    rewriter: &mut Rewriter,
    stop: &mut watch::Receiver<bool>,
) -> Outcome {
    let connect_deadline = Instant::now() + CONNECT_TIMEOUT;
    let track = loop {
        tokio::select! {
            t = tracks.recv() => match t {
                Some(t) => break t,
                None => return Outcome::Failed("the connection went away before its track".into()),
            },
            ev = events.recv() => match ev {
                Some(PcEvent::State(RTCPeerConnectionState::Failed)) => {
                    return Outcome::Failed("ICE/DTLS failed before connecting".into());
                }
                Some(PcEvent::State(RTCPeerConnectionState::Closed)) | None => {
                    return Outcome::Failed("closed before connecting".into());
                }
                Some(_) => {}
            },
            () = tokio::time::sleep_until(connect_deadline) => {
                let secs = CONNECT_TIMEOUT.as_secs();
                return Outcome::Failed(format!("no video track within {secs} s"));
            }
            _ = stop.changed() => return Outcome::Stopped,
        }
    };
    let up = &ctx.stats.upstream;
    let mut limiter = KeyframeLimiter::new(ctx.source.min_keyframe_gap);
    let mut upstream_ssrc: Option<u32> = None;
    let mut last_packet = Instant::now();
    let mut disconnected_since: Option<Instant> = None;
    let mut streaming = false;
    let mut size: Option<(u16, u16)> = None;
    let mut tally = FrameTally::default();
    let mut stats_at = Instant::now();
    let mut last = rewriter.stats();
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tokio::select! {
            ev = track.poll() => match ev {
                Some(TrackRemoteEvent::OnRtpPacket(p)) => {
                    last_packet = Instant::now();
                    // The stream keyframe requests name: this session's, whatever the rewriter
                    // makes of its packets.
                    upstream_ssrc = Some(p.header.ssrc);
                    if ctx.control.paused() {
                        continue;
                    }
                    let now = ctx.origin.elapsed();
                    let h = &p.header;
                    // A skipped packet is counted by the rewriter; the figures take it at the
                    // next tick.
                    if let Ok(r) = rewriter.rewrite(now, h.ssrc, h.sequence_number, h.timestamp, h.marker, &p.payload) {
                        if !streaming {
                            streaming = true;
                            up.connects.fetch_add(1, Ordering::Relaxed);
                            up.set_state("connected");
                            up.set_error(None);
                            ctx.stats.set_source_state("running");
                            tracing::info!(upstream = %ctx.source.url, "upstream connected; forwarding");
                        }
                        if let Some(wh) = r.keyframe_size
                            && size != Some(wh)
                        {
                            size = Some(wh);
                            set_size(ctx, wh);
                        }
                        tally.bytes += r.payload.len();
                        tally.packets += 1;
                        tally.keyframe |= r.keyframe_start;
                        let marker = r.marker;
                        let packet = Arc::new(OutPacket {
                            seq: r.seq,
                            timestamp: r.timestamp,
                            marker: r.marker,
                            keyframe_start: r.keyframe_start,
                            payload: Bytes::from(r.payload),
                        });
                        ctx.fanout.broadcast(std::slice::from_ref(&packet));
                        if marker {
                            let t = std::mem::take(&mut tally);
                            ctx.stats.on_encoded(t.bytes, t.keyframe, t.packets, now);
                        }
                    }
                }
                Some(TrackRemoteEvent::OnEnded) | None => {
                    return ended(streaming, "the upstream's track ended");
                }
                Some(_) => {}
            },
            ev = events.recv() => match ev {
                Some(PcEvent::State(RTCPeerConnectionState::Failed)) => {
                    return ended(streaming, "the connection failed");
                }
                Some(PcEvent::State(RTCPeerConnectionState::Closed)) | None => {
                    return ended(streaming, "the connection closed");
                }
                Some(PcEvent::State(RTCPeerConnectionState::Disconnected)) => {
                    disconnected_since.get_or_insert_with(Instant::now);
                }
                Some(PcEvent::State(RTCPeerConnectionState::Connected)) => {
                    disconnected_since = None;
                }
                Some(_) => {}
            },
            _ = tick.tick() => {
                let now_i = Instant::now();
                if now_i.duration_since(last_packet) > SILENCE {
                    let why = format!("no packet from the upstream for {:.1} s", SILENCE.as_secs_f64());
                    return ended(streaming, &why);
                }
                if disconnected_since.is_some_and(|t| now_i.duration_since(t) > DISCONNECTED_GRACE) {
                    return ended(streaming, "disconnected too long");
                }
                // Keyframes: viewers that joined or lost the picture, the operator, and a new
                // upstream session that has not sent one yet.
                let now = ctx.origin.elapsed();
                let requested = ctx.fanout.take_keyframe_request()
                    | ctx.control.take_keyframe()
                    | rewriter.waiting_for_keyframe();
                if ((requested && limiter.allow(now)) || limiter.poll(now))
                    && let Some(ssrc) = upstream_ssrc
                {
                    let pli = rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication {
                        sender_ssrc: 0,
                        media_ssrc: ssrc,
                    };
                    if track.write_rtcp(vec![Box::new(pli)]).await.is_ok() {
                        up.plis_sent.fetch_add(1, Ordering::Relaxed);
                    }
                }
                let s = rewriter.stats();
                up.packets_received.fetch_add(s.upstream_received.saturating_sub(last.upstream_received), Ordering::Relaxed);
                up.packets_lost.fetch_add(s.upstream_lost.saturating_sub(last.upstream_lost), Ordering::Relaxed);
                let skipped = |s: &sutantra_core::relay::RewriterStats| {
                    s.malformed + s.waiting_for_keyframe + s.other_source + s.too_old
                };
                up.packets_skipped.fetch_add(skipped(&s).saturating_sub(skipped(&last)), Ordering::Relaxed);
                last = s;
                if now_i.duration_since(stats_at) >= STATS_EVERY {
                    stats_at = now_i;
                    if let Some(rtt) = round_trip(pc).await {
                        up.rtt_us.store(rtt, Ordering::Relaxed);
                    }
                }
            }
            _ = stop.changed() => return Outcome::Stopped,
        }
    }
}

/// A relay forwards its upstream's packets without decoding them: it has no picture to make a
/// JPEG of. The reason, naming where a snapshot can be taken (`None` for a camera).
pub fn no_picture(stats: &Stats) -> Option<String> {
    stats.upstream.enabled.load(Ordering::Relaxed).then(|| {
        format!(
            "this node relays {} without decoding it, so it has no picture of its own: take the \
             snapshot from that node's /snapshot.jpg",
            stats.upstream.detail().url
        )
    })
}

/// How a session that may have streamed ended.
fn ended(streaming: bool, why: &str) -> Outcome {
    if streaming {
        Outcome::Ended(why.to_string())
    } else {
        Outcome::Failed(why.to_string())
    }
}

/// Records the upstream's picture size (from its keyframe) as the source's.
fn set_size(ctx: &Ctx, (width, height): (u16, u16)) {
    let info = sutantra_hal::SourceInfo {
        kind: "whep",
        description: format!("relay of {}", ctx.source.url),
        width: u32::from(width),
        height: u32::from(height),
        // The upstream's rate is its own; 30 is what the nodes send.
        fps_num: 30,
        fps_den: 1,
    };
    ctx.stats
        .set_source(&format!("whep:{}", ctx.source.url), &info);
    tracing::info!(width, height, "upstream picture size");
}

/// The round-trip time of the selected candidate pair (the ICE checks), microseconds.
async fn round_trip(pc: &Arc<dyn PeerConnection>) -> Option<u64> {
    let report = pc
        .get_stats(
            std::time::Instant::now(),
            rtc::statistics::StatsSelector::None,
        )
        .await;
    report
        .candidate_pairs()
        .filter(|p| p.nominated && p.current_round_trip_time > 0.0)
        .map(|p| p.current_round_trip_time)
        .reduce(f64::min)
        .map(|s| (s * 1e6).round() as u64)
}

//! WHIP publishing (RFC 9725): the node pushes its one stream to relays and SFUs.
//!
//! One tokio task per enabled `[[publish]]` target. A task builds a sendonly peer connection the
//! way [`crate::webrtc::whep`] builds a viewer's (its own `TrackLocalStaticRTP`, mDNS off, explicit
//! bind addresses, the PLI/FIR interceptor), makes the offer, waits a bounded time for gathering,
//! POSTs it ([`whip_http`]), applies the answer, and once connected joins the [`SharedFanout`] like any
//! viewer: a bounded queue of the shared encoder's packets (no second encode) and a keyframe on
//! join. When the connection fails or stays disconnected, or the endpoint goes away, the session
//! is torn down (DELETE, best effort) and a new one is published, which forces a keyframe through
//! the new fan-out join. Local WHEP viewers have their own queues and never notice.
//!
//! The token goes only to the configured URL's origin, a redirect from https to http is refused,
//! and a session is DELETEd only on the origin that created it ([`whip_http`]).
//!
//! Failures (HTTP errors, refused connections, sessions that never connect) are logged once per
//! streak with the status and the endpoint's text, and retried with capped exponential backoff
//! and jitter; 401/403 are logged as configuration errors. On shutdown every live session is
//! DELETEd within a bounded time.
//!
//! Bandwidth: REMB from a relay ([`feedback`]) sets the encoder's target bitrate (the lowest
//! estimate of the connected targets, within `encoder.min_bitrate_kbps ..= bitrate_kbps`); the
//! encode thread applies it between frames ([`MediaControl::apply_target_bitrate`](crate::media::control::MediaControl::apply_target_bitrate)). It is one encoder, so the
//! local viewers get the same rate.

#[cfg(test)]
mod cc_sim;
pub mod feedback;
pub mod stats;
pub mod whip_http;

use crate::config::PublishTarget;
use crate::config::WebRtcConfig;
use crate::media::{OutPacket, SharedFanout};
use crate::stats::Stats;
use crate::webrtc::peer::PeerSpec;
use crate::webrtc::session::{Handler, PcEvent, wait_gathering};
use crate::webrtc::stun::StunResolver;
use rtc::rtp_transceiver::{RTCRtpTransceiverDirection, RTCRtpTransceiverInit};
pub use stats::{PublishStats, ReportFigures, TargetFigures};
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use sutantra_core::backoff::Backoff;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use webrtc::media_stream::track_local::static_rtp::TrackLocalStaticRTP;
use webrtc::media_stream::track_local::{TrackLocal, TrackLocalEvent};
use webrtc::peer_connection::{
    PeerConnection, PeerConnectionEventHandler, RTCIceServer, RTCPeerConnectionState,
    RTCSessionDescription,
};
use whip_http::{LinkIceServer, WhipError};

/// A published session must connect within this time, or it is dropped and published again.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);
/// A connection that stays disconnected this long is torn down and published again.
const DISCONNECTED_GRACE: Duration = Duration::from_secs(2);
/// First retry delay; doubles per failure up to `RETRY_MAX`, with jitter (0.8x to 1x of the step).
const RETRY_MIN: Duration = Duration::from_secs(1);
/// Longest retry delay.
const RETRY_MAX: Duration = Duration::from_secs(30);
/// How long shutdown waits for the publishers (their DELETEs).
const SHUTDOWN_WAIT: Duration = Duration::from_secs(4);

/// The running publishers.
#[derive(Debug)]
pub struct Publishers {
    ctx: Option<Arc<Ctx>>,
    running: Vec<Running>,
}

/// One target's task.
#[derive(Debug)]
struct Running {
    target: PublishTarget,
    index: usize,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Running {
    /// Stops the task (it DELETEs its session) and frees its stats slot; waits a bounded time.
    async fn stop(self, figures: &PublishStats) {
        let _ = self.stop.send(true);
        if tokio::time::timeout(SHUTDOWN_WAIT, self.task)
            .await
            .is_err()
        {
            tracing::warn!(target_url = %self.target.url, "publisher did not stop in time (DELETE pending); leaving it");
        }
        figures.unregister(self.index);
    }
}

#[derive(Debug)]
struct Ctx {
    fanout: Arc<SharedFanout>,
    stats: Arc<Stats>,
    figures: Arc<PublishStats>,
    stun: StunResolver,
    bind_ips: Vec<IpAddr>,
    gather_timeout: Duration,
}

impl Publishers {
    /// Starts one task per enabled target; REMB moves the encoder within `bitrate_kbps`
    /// (min, max).
    pub fn start(
        targets: &[PublishTarget],
        webrtc: &WebRtcConfig,
        bitrate_kbps: (u32, u32),
        fanout: Arc<SharedFanout>,
        stats: Arc<Stats>,
        figures: Arc<PublishStats>,
    ) -> Self {
        figures.set_range(bitrate_kbps.0, bitrate_kbps.1);
        let bind_ips = if webrtc.bind_addrs.is_empty() {
            crate::webrtc::session::local_ips()
        } else {
            webrtc.bind_addrs.clone()
        };
        let ctx = Arc::new(Ctx {
            fanout,
            stats,
            figures,
            stun: StunResolver::new(
                &webrtc.ice_servers,
                Duration::from_millis((webrtc.gather_timeout_ms / 2).min(300)),
            ),
            bind_ips,
            gather_timeout: Duration::from_millis(webrtc.gather_timeout_ms),
        });
        let mut this = Self {
            ctx: Some(ctx),
            running: Vec::new(),
        };
        for t in targets.iter().filter(|t| t.enabled) {
            this.spawn(t);
        }
        this
    }

    /// No publishers (what is left after a shutdown).
    pub fn none() -> Self {
        Self {
            ctx: None,
            running: Vec::new(),
        }
    }

    fn spawn(&mut self, t: &PublishTarget) {
        let Some(ctx) = &self.ctx else { return };
        let index = ctx.figures.register(&t.url);
        tracing::info!(
            target_url = %t.url,
            token = t.token.is_some(),
            "publishing over WHIP",
        );
        let (stop, stop_rx) = watch::channel(false);
        let task = tokio::spawn(run_target(index, t.clone(), ctx.clone(), stop_rx));
        self.running.push(Running {
            target: t.clone(),
            index,
            stop,
            task,
        });
    }

    /// Makes the running targets the enabled ones of `targets`: removed, disabled or changed
    /// targets stop (DELETE, in the background), new ones start; the others are not touched.
    pub fn update(&mut self, targets: &[PublishTarget]) {
        let Some(ctx) = self.ctx.clone() else { return };
        let wanted: Vec<&PublishTarget> = targets.iter().filter(|t| t.enabled).collect();
        let (keep, gone): (Vec<Running>, Vec<Running>) = std::mem::take(&mut self.running)
            .into_iter()
            .partition(|r| wanted.contains(&&r.target));
        self.running = keep;
        for r in gone {
            tracing::info!(target_url = %r.target.url, "publish target removed; ending its session");
            let figures = ctx.figures.clone();
            tokio::spawn(async move { r.stop(&figures).await });
        }
        for t in wanted {
            if !self.running.iter().any(|r| &r.target == t) {
                self.spawn(t);
            }
        }
    }

    /// Stops every publisher: each DELETEs its session; waits a bounded time.
    pub async fn shutdown(self) {
        let Some(ctx) = self.ctx else { return };
        for r in &self.running {
            let _ = r.stop.send(true);
        }
        let all = futures_join(self.running, &ctx.figures);
        if tokio::time::timeout(SHUTDOWN_WAIT, all).await.is_err() {
            tracing::warn!("publishers did not stop in time (DELETE pending); leaving them");
        }
    }
}

async fn futures_join(running: Vec<Running>, figures: &PublishStats) {
    for r in running {
        r.stop(figures).await;
    }
}

/// How one session ended.
enum Outcome {
    /// The node is stopping.
    Stopped,
    /// The endpoint refused or could not be reached.
    Refused(WhipError),
    /// Created but never connected, or something local failed.
    Failed(String),
    /// It was connected and streaming, then ended (relay gone, ICE failed).
    Ended(&'static str),
}

/// The retry delays of one target: the core's backoff from `RETRY_MIN` to `RETRY_MAX`, each
/// delay drawn from 0.8x to 1x of its step so that publishers that failed together spread out.
fn retry_backoff() -> Backoff {
    Backoff::new(RETRY_MIN, RETRY_MAX).with_jitter(0.2)
}

async fn run_target(
    index: usize,
    target: PublishTarget,
    ctx: Arc<Ctx>,
    mut stop: watch::Receiver<bool>,
) {
    let mut backoff = retry_backoff();
    let mut streak: Option<String> = None;
    let mut link_servers: Vec<LinkIceServer> = Vec::new();
    loop {
        if *stop.borrow() {
            break;
        }
        let outcome = session(index, &target, &ctx, &mut link_servers, &mut stop).await;
        ctx.figures.set_connected(index, false);
        let mut delay = match outcome {
            Outcome::Stopped => break,
            Outcome::Ended(reason) => {
                tracing::warn!(
                    target_url = %target.url,
                    reason,
                    "WHIP session ended; publishing again",
                );
                backoff.reset();
                streak = None;
                backoff.next_delay(rand::random::<f64>())
            }
            Outcome::Refused(e) => {
                ctx.figures.failures.fetch_add(1, Ordering::Relaxed);
                let class = e.class();
                let delay = backoff.next_delay(rand::random::<f64>());
                if streak.as_deref() != Some(class.as_str()) {
                    if e.is_auth() {
                        tracing::error!(
                            target_url = %target.url,
                            error = %e,
                            retry_in = ?delay,
                            "configuration error: the WHIP endpoint refused the token: check \
                             [[publish]] token"
                        );
                    } else {
                        tracing::warn!(
                            target_url = %target.url,
                            error = %e,
                            retry_in = ?delay,
                            "WHIP publish failed; retrying with backoff",
                        );
                    }
                    streak = Some(class);
                } else {
                    tracing::debug!(
                        target_url = %target.url,
                        error = %e,
                        retry_in = ?delay,
                        "WHIP publish still failing",
                    );
                }
                match &e {
                    WhipError::Status {
                        retry_after: Some(s),
                        ..
                    } => delay.max(Duration::from_secs(*s).min(RETRY_MAX)),
                    _ => delay,
                }
            }
            Outcome::Failed(reason) => {
                ctx.figures.failures.fetch_add(1, Ordering::Relaxed);
                let delay = backoff.next_delay(rand::random::<f64>());
                let class = format!("failed: {reason}");
                if streak.as_deref() != Some(class.as_str()) {
                    tracing::warn!(
                        target_url = %target.url,
                        reason,
                        retry_in = ?delay,
                        "WHIP publish failed; retrying with backoff",
                    );
                    streak = Some(class);
                }
                delay
            }
        };
        delay = delay.max(Duration::from_millis(100));
        tokio::select! {
            () = tokio::time::sleep(delay) => {}
            _ = stop.changed() => break,
        }
    }
    ctx.figures.set_connected(index, false);
}

/// GCC for one session: it starts at the configured bitrate and moves within the range.
fn gcc((min_kbps, max_kbps): (u32, u32)) -> rtc::interceptor::Gcc {
    let (min, max) = (
        f64::from(min_kbps) * 1000.0,
        f64::from(max_kbps.max(1)) * 1000.0,
    );
    rtc::interceptor::Gcc::new(max, min.min(max), max)
}

/// DELETEs a session resource (best effort, bounded). `resource` is `None` when the endpoint's
/// `Location` was on another origin (nothing is sent anywhere); the token goes only with a
/// resource on the configured origin (`send_token`).
async fn delete_resource(resource: Option<String>, send_token: bool, target: &PublishTarget) {
    let Some(resource) = resource else {
        tracing::info!(
            target_url = %target.url,
            "WHIP session not DELETEd: its Location was on another origin"
        );
        return;
    };
    let url = resource.clone();
    let token = target.token.clone().filter(|_| send_token);
    let ca_file = target.ca_file.clone();
    let done = tokio::task::spawn_blocking(move || {
        whip_http::delete(
            &resource,
            token.as_deref(),
            ca_file.as_deref(),
            whip_http::DELETE_TIMEOUT,
        )
    })
    .await;
    match done {
        Ok(Ok(status)) => tracing::info!(resource = %url, status, "WHIP session deleted"),
        Ok(Err(e)) => tracing::debug!(resource = %url, error = %e, "WHIP DELETE failed"),
        Err(e) => tracing::debug!(resource = %url, error = %e, "WHIP DELETE task failed"),
    }
}

/// One publish session: offer, POST, answer, connect, stream until it ends.
async fn session(
    index: usize,
    target: &PublishTarget,
    ctx: &Ctx,
    link_servers: &mut Vec<LinkIceServer>,
    stop: &mut watch::Receiver<bool>,
) -> Outcome {
    let (events_tx, mut events) = mpsc::channel(32);
    let twcc_estimate = Arc::new(crate::webrtc::keyframe::CcSink::default());
    let (pc, track) =
        match build_connection(ctx, link_servers, events_tx, twcc_estimate.clone()).await {
            Ok(v) => v,
            Err(e) => return Outcome::Failed(e),
        };
    let pc: Arc<dyn PeerConnection> = Arc::new(pc);
    let conn = Conn {
        index,
        target,
        ctx,
        pc: &pc,
        track: &track,
        twcc_estimate: &twcc_estimate,
    };
    let outcome = negotiate_and_stream(conn, &mut events, link_servers, stop).await;
    let _ = pc.close().await;
    outcome
}

/// One session's connection and what it publishes for: the parts every step of the session
/// reads.
#[derive(Clone, Copy)]
struct Conn<'a> {
    /// The target's slot in the publishing figures.
    index: usize,
    target: &'a PublishTarget,
    ctx: &'a Ctx,
    pc: &'a Arc<dyn PeerConnection>,
    track: &'a Arc<TrackLocalStaticRTP>,
    /// The congestion controller's estimate from the relay's TWCC feedback.
    twcc_estimate: &'a crate::webrtc::keyframe::CcSink,
}

/// Where an offer is POSTed: a WHIP endpoint, or the WHEP server a relay subscribes to.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Endpoint<'a> {
    pub(crate) url: &'a str,
    pub(crate) token: Option<&'a str>,
    pub(crate) ca_file: Option<&'a std::path::Path>,
}

/// How making an offer and POSTing it ended.
pub(crate) enum Posted {
    /// The endpoint answered `201`.
    Created(whip_http::Created),
    /// The endpoint refused (an HTTP status, a redirect not followed, a bad answer).
    Refused(WhipError),
    /// Our side failed (the offer, the gathering, the POST task).
    Failed(String),
    /// `stop` changed while the POST was under way.
    Stopped,
}

/// Makes `pc`'s offer, waits at most `gather_timeout` for its candidates and POSTs it to
/// `endpoint` (off the async workers): the first half of a session of either direction.
pub(crate) async fn offer_and_post(
    pc: &Arc<dyn PeerConnection>,
    events: &mut mpsc::Receiver<PcEvent>,
    gather_timeout: Duration,
    endpoint: Endpoint<'_>,
    stop: &mut watch::Receiver<bool>,
) -> Posted {
    let deadline = Instant::now() + gather_timeout;
    let offer = match pc.create_offer(None).await {
        Ok(o) => o,
        Err(e) => return Posted::Failed(format!("create_offer: {e}")),
    };
    if let Err(e) = pc.set_local_description(offer).await {
        return Posted::Failed(format!("set_local_description: {e}"));
    }
    wait_gathering(events, deadline).await;
    let Some(local) = pc.local_description().await else {
        return Posted::Failed("no local description".into());
    };
    let (url, token, ca_file, sdp) = (
        endpoint.url.to_string(),
        endpoint.token.map(str::to_string),
        endpoint.ca_file.map(std::path::Path::to_path_buf),
        local.sdp,
    );
    let post = tokio::task::spawn_blocking(move || {
        whip_http::post_offer(
            &url,
            token.as_deref(),
            ca_file.as_deref(),
            &sdp,
            whip_http::POST_TIMEOUT,
        )
    });
    tokio::select! {
        r = post => match r {
            Ok(Ok(c)) => Posted::Created(c),
            Ok(Err(e)) => Posted::Refused(e),
            Err(e) => Posted::Failed(format!("POST task: {e}")),
        },
        _ = stop.changed() => Posted::Stopped,
    }
}

async fn negotiate_and_stream(
    conn: Conn<'_>,
    events: &mut mpsc::Receiver<PcEvent>,
    link_servers: &mut Vec<LinkIceServer>,
    stop: &mut watch::Receiver<bool>,
) -> Outcome {
    let Conn {
        ctx, pc, target, ..
    } = conn;
    let created = match offer_and_post(
        pc,
        events,
        ctx.gather_timeout,
        Endpoint {
            url: &target.url,
            token: target.token.as_deref(),
            ca_file: target.ca_file.as_deref(),
        },
        stop,
    )
    .await
    {
        Posted::Created(c) => c,
        Posted::Refused(e) => return Outcome::Refused(e),
        Posted::Failed(e) => return Outcome::Failed(e),
        Posted::Stopped => return Outcome::Stopped,
    };
    if !created.ice_servers.is_empty() && created.ice_servers != *link_servers {
        tracing::info!(
            target_url = %target.url,
            servers = created.ice_servers.len(),
            "the WHIP endpoint offers ICE servers (Link); used from the next session on"
        );
        *link_servers = created.ice_servers.clone();
    }
    let (resource, send_token) = (created.resource.clone(), created.send_token);
    tracing::info!(
        target_url = %target.url,
        endpoint = %created.endpoint,
        resource = resource.as_deref().unwrap_or("(none: another origin)"),
        "WHIP session created",
    );
    let outcome = async {
        let answer = match RTCSessionDescription::answer(created.answer) {
            Ok(a) => a,
            Err(e) => return Outcome::Failed(format!("the answer is not usable SDP: {e}")),
        };
        if let Err(e) = pc.set_remote_description(answer).await {
            return Outcome::Failed(format!("the answer was refused: {e}"));
        }
        stream(conn, events, stop).await
    }
    .await;
    // Whatever ended the session, the resource goes (RFC 9725 section 4.3).
    delete_resource(resource, send_token, target).await;
    outcome
}

/// Waits for the connection, joins the fan-out and writes its packets until the session ends.
async fn stream(
    conn: Conn<'_>,
    events: &mut mpsc::Receiver<PcEvent>,
    stop: &mut watch::Receiver<bool>,
) -> Outcome {
    let Conn {
        index,
        target,
        ctx,
        pc,
        track,
        twcc_estimate,
    } = conn;
    let mut twcc_applied = 0u64;
    let mut twcc_seen = 0u64;
    let connect_deadline = Instant::now() + CONNECT_TIMEOUT;
    loop {
        tokio::select! {
            ev = events.recv() => match ev {
                Some(PcEvent::State(RTCPeerConnectionState::Connected)) => break,
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
                return Outcome::Failed(format!("did not connect within {secs} s"));
            }
            _ = stop.changed() => return Outcome::Stopped,
        }
    }
    let Some((ssrc, pt)) = crate::webrtc::peer::negotiated(pc, track).await else {
        return Outcome::Failed("no negotiated VP8 sender".into());
    };
    let Some((id, wake)) = ctx.fanout.join() else {
        return Outcome::Failed("no room in the fanout".into());
    };
    ctx.figures.sessions.fetch_add(1, Ordering::Relaxed);
    ctx.figures.set_connected(index, true);
    tracing::info!(
        target_url = %target.url,
        ssrc,
        payload_type = pt,
        "publishing to the WHIP endpoint",
    );

    let rtcp_task = {
        let (track, fanout, stats, figures) = (
            track.clone(),
            ctx.fanout.clone(),
            ctx.stats.clone(),
            ctx.figures.clone(),
        );
        tokio::spawn(async move {
            while let Some(TrackLocalEvent::OnRtcpPacket(packets)) = track.poll().await {
                if packets
                    .iter()
                    .any(|p| crate::webrtc::keyframe::is_keyframe_request(p.as_ref()))
                {
                    stats.keyframe_requests.fetch_add(1, Ordering::Relaxed);
                    fanout.request_keyframe(id);
                }
                if let Some(kbps) = packets
                    .iter()
                    .filter_map(|p| feedback::remb_kbps(p.as_ref()))
                    .min()
                {
                    figures.set_estimate(index, kbps);
                }
                let arrival = feedback::ntp_middle(std::time::SystemTime::now());
                if let Some(r) = packets
                    .iter()
                    .find_map(|p| feedback::report_about(p.as_ref(), ssrc, arrival))
                {
                    figures.set_report(index, r);
                }
            }
        })
    };
    let mut batch: Vec<Arc<OutPacket>> = Vec::with_capacity(crate::webrtc::session::WRITE_BATCH);
    let mut disconnected_since: Option<Instant> = None;
    let outcome = loop {
        let grace = disconnected_since.map(|t| t + DISCONNECTED_GRACE);
        tokio::select! {
            () = wake.notified() => {}
            ev = events.recv() => match ev {
                Some(PcEvent::State(RTCPeerConnectionState::Failed)) => {
                    break Outcome::Ended("connection failed");
                }
                Some(PcEvent::State(RTCPeerConnectionState::Closed)) | None => {
                    break Outcome::Ended("connection closed");
                }
                Some(PcEvent::State(RTCPeerConnectionState::Disconnected)) => {
                    disconnected_since.get_or_insert_with(Instant::now);
                    continue;
                }
                Some(PcEvent::State(RTCPeerConnectionState::Connected)) => {
                    disconnected_since = None;
                    continue;
                }
                Some(_) => continue,
            },
            () = sleep_until_some(grace) => {
                break Outcome::Ended("disconnected too long (relay gone or network changed)");
            }
            _ = stop.changed() => break Outcome::Stopped,
        }
        match crate::webrtc::session::send_queued(&ctx.fanout, id, track, ssrc, pt, &mut batch)
            .await
        {
            Ok(bytes) => {
                ctx.figures.add_sent(index, bytes, Instant::now());
                let seen = twcc_estimate.twcc_feedback.load(Ordering::Relaxed);
                if seen != twcc_seen {
                    ctx.figures.add_twcc_feedback(index, seen - twcc_seen);
                    twcc_seen = seen;
                }
                let bps = twcc_estimate.estimate_bps.load(Ordering::Relaxed);
                if bps != twcc_applied && bps > 0 {
                    twcc_applied = bps;
                    let kbps = u32::try_from(bps / 1000).unwrap_or(u32::MAX);
                    ctx.figures.set_twcc(index, kbps);
                }
            }
            Err(text) => {
                tracing::debug!(target_url = %target.url, error = %text, "publish write failed");
                break Outcome::Ended("write failed");
            }
        }
    };
    rtcp_task.abort();
    ctx.fanout.leave(id);
    outcome
}

async fn build_connection(
    ctx: &Ctx,
    link_servers: &[LinkIceServer],
    events: mpsc::Sender<PcEvent>,
    twcc_estimate: Arc<crate::webrtc::keyframe::CcSink>,
) -> Result<(impl PeerConnection + use<>, Arc<TrackLocalStaticRTP>), String> {
    let mut servers = Vec::new();
    let stun = ctx.stun.urls().await;
    if !stun.is_empty() {
        servers.push(RTCIceServer {
            urls: stun,
            ..Default::default()
        });
    }
    servers.extend(usable_link_servers(link_servers));
    let spec = PeerSpec::publisher(servers);
    let addrs: Vec<String> = ctx
        .bind_ips
        .iter()
        .map(|ip| std::net::SocketAddr::new(*ip, 0).to_string())
        .collect();
    let range = ctx.figures.range();
    let pc = spec
        .builder(
            |registry| {
                registry
                    // Send-side congestion control on the relay's TWCC feedback (the default
                    // interceptors already offer transport-cc): transport-wide sequence numbers
                    // on what leaves, GCC on what the relay reports. No pacer: the encoder's own
                    // rate is what follows the estimate, and a pacer at that rate would hold
                    // every keyframe back.
                    .with(
                        rtc::interceptor::Slot::TwccSender,
                        rtc::interceptor::TwccSenderBuilder::new().build(),
                    )
                    .with(
                        rtc::interceptor::Slot::CongestionControl,
                        rtc::interceptor::CongestionControlBuilder::new(gcc(range)).build(),
                    )
                    .with(
                        crate::webrtc::keyframe::SLOT,
                        feedback::forwarder(twcc_estimate),
                    )
            },
            Arc::new(Handler {
                events,
                tracks: None,
            }) as Arc<dyn PeerConnectionEventHandler>,
            addrs,
        )?
        .build()
        .await
        .map_err(|e| format!("peer connection: {e}"))?;
    let track = spec.vp8_track(rand::random::<u32>());
    pc.add_transceiver_from_track(
        track.clone() as Arc<dyn TrackLocal>,
        Some(RTCRtpTransceiverInit {
            direction: RTCRtpTransceiverDirection::Sendonly,
            streams: vec![],
            send_encodings: vec![],
        }),
    )
    .await
    .map_err(|e| format!("add track: {e}"))?;
    Ok((pc, track))
}

/// Sleeps until `at`; forever when `None`.
async fn sleep_until_some(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// The endpoint's Link ICE servers that cannot stall the connection: host names would need a
/// DNS lookup inside the stack (which can block its driver), so only literal addresses are used.
fn usable_link_servers(servers: &[LinkIceServer]) -> Vec<RTCIceServer> {
    servers
        .iter()
        .filter(|s| {
            let rest = s.url.split_once(':').map_or("", |(_, r)| r);
            let host = rest.split(['?']).next().unwrap_or("");
            let host = match host.rsplit_once(':') {
                Some((h, p)) if p.parse::<u16>().is_ok() => h,
                _ => host,
            };
            let ok = host.trim_matches(['[', ']']).parse::<IpAddr>().is_ok();
            if !ok {
                tracing::debug!(
                    url = %s.url,
                    "Link ICE server with a host name left out (no DNS in the ICE agent)",
                );
            }
            ok
        })
        .map(|s| RTCIceServer {
            urls: vec![s.url.clone()],
            username: s.username.clone(),
            credential: s.credential.clone(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_with_jitter_up_to_the_cap() {
        let mut b = retry_backoff();
        let mut steps = Vec::new();
        for _ in 0..8 {
            steps.push(b.next_delay(rand::random::<f64>()));
        }
        assert!(steps[0] >= Duration::from_millis(800) && steps[0] <= Duration::from_millis(1200));
        assert!(steps[1] >= Duration::from_millis(1600) && steps[1] <= Duration::from_millis(2400));
        assert!(steps[7] <= RETRY_MAX.mul_f64(1.2));
        assert!(steps[7] >= RETRY_MAX.mul_f64(0.8));
        b.reset();
        assert!(b.next_delay(rand::random::<f64>()) <= Duration::from_millis(1200));
    }

    #[test]
    fn link_servers_with_host_names_are_left_out() {
        let s = |url: &str| LinkIceServer {
            url: url.into(),
            username: "u".into(),
            credential: "c".into(),
        };
        let out = usable_link_servers(&[
            s("stun:127.0.0.1:3478"),
            s("turn:192.0.2.1?transport=udp"),
            s("stun:stun.example.net"),
        ]);
        assert_eq!(out.len(), 2);
        assert_eq!(out[1].username, "u");
    }
}

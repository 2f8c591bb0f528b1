//! runtime-probe: the Sutantra node's WebRTC send path on tokio or on smol (issue 7).
//!
//! At start it encodes `--frames` frames of the HAL's moving test pattern with the node's own
//! VP8 encoder (sutantra-core, libvpx realtime settings) into memory and drops the encoder. Then
//! it serves WHEP on `127.0.0.1:--port` from a blocking HTTP thread (see `http.rs`) and sends the
//! pre-encoded frames in a loop, paced at 30 fps by the runtime's timer and packetized with the
//! node's RFC 7741 packetizer (90 kHz timestamps), to every connected viewer. Everything but the
//! runtime is identical in the two builds; `rt.rs` holds the difference.
//!
//!   runtime-probe [--port 8089] [--frames 150] [--width 640] [--height 480] [--kbps 1000]
//!
//! HTTP: `GET /healthz` (JSON: runtime, viewers, frames sent), `POST /whep` (SDP offer -> 201,
//! the answer with its host candidates on loopback, `Location: /whep/ID`), `DELETE /whep/ID`.

mod http;
// The node's own peer-connection builder (the probe sets up viewers as the node does).
#[path = "../../../firmware/src/webrtc/peer.rs"]
#[allow(dead_code)] // the publisher side is the node's, not the probe's
mod peer;
mod rt;

use peer::PeerSpec;

use bytes::Bytes;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{SyncSender, sync_channel};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use sutantra_core::codec::{Vp8Config, Vp8Encoder};
use sutantra_core::rtp::packetizer::Packetizer;
use sutantra_hal::{FixedClock, FrameSource, I420Frame, TestPattern};
use webrtc::media_stream::track_local::TrackLocal;
use webrtc::media_stream::track_local::static_rtp::TrackLocalStaticRTP;
use webrtc::peer_connection::{
    PeerConnection, PeerConnectionEventHandler, RTCIceGatheringState, RTCPeerConnectionState,
    RTCSessionDescription,
};
use webrtc::runtime::{Receiver, Runtime, Sender, channel, timeout};

/// Largest RTP payload (VP8 descriptor included), as the node's default.
const MAX_PAYLOAD: usize = 1200;
/// Frames a viewer may have queued before the pacer drops frames for it.
const VIEWER_QUEUE: usize = 30;
/// A keyframe every this many frames of the loop (a new viewer starts at one).
const KEYFRAME_EVERY: usize = 75;
/// Frames per second of the pacer.
const FPS: u64 = 30;

#[derive(Debug, Clone)]
struct Args {
    port: u16,
    frames: usize,
    width: u32,
    height: u32,
    kbps: u32,
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        port: 8089,
        frames: 150,
        width: 640,
        height: 480,
        kbps: 1000,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().ok_or(format!("{flag} needs a value"))?;
        let bad = |e: std::num::ParseIntError| format!("{flag} {value}: {e}");
        match flag.as_str() {
            "--port" => a.port = value.parse().map_err(bad)?,
            "--frames" => a.frames = value.parse().map_err(bad)?,
            "--width" => a.width = value.parse().map_err(bad)?,
            "--height" => a.height = value.parse().map_err(bad)?,
            "--kbps" => a.kbps = value.parse().map_err(bad)?,
            _ => return Err(format!("unknown flag {flag}")),
        }
    }
    if a.frames == 0 {
        return Err("--frames must be at least 1".into());
    }
    Ok(a)
}

/// Encodes `args.frames` frames of the moving test pattern; the encoder is dropped on return.
fn encode(args: &Args) -> Result<Vec<Vec<u8>>, String> {
    let mut pattern = TestPattern::new(args.width, args.height, FPS as u32, 1)
        .map_err(|e| format!("test pattern: {e}"))?;
    let mut encoder = Vp8Encoder::new(&Vp8Config {
        width: args.width,
        height: args.height,
        bitrate_kbps: args.kbps,
        ..Vp8Config::default()
    })
    .map_err(|e| format!("encoder: {e}"))?;
    let mut picture = I420Frame::new(args.width, args.height);
    let mut out = Vec::with_capacity(args.frames);
    for i in 0..args.frames {
        let at = 1_700_000_000_000_000 + i as u64 * 1_000_000 / FPS;
        pattern
            .capture(&mut picture, &FixedClock(at))
            .map_err(|e| format!("capture: {e}"))?;
        let e = encoder
            .encode(&picture, i % KEYFRAME_EVERY == 0)
            .map_err(|e| format!("encode: {e}"))?;
        out.push(e.data.to_vec());
    }
    Ok(out)
}

/// One RTP packet of a frame, without SSRC and payload type (those are per viewer).
#[derive(Debug)]
struct Packet {
    seq: u16,
    timestamp: u32,
    marker: bool,
    payload: Bytes,
}

/// One packetized frame, shared by every viewer.
#[derive(Debug)]
struct Frame {
    keyframe: bool,
    packets: Vec<Packet>,
}

/// A request from the HTTP thread, answered on `reply`.
enum Command {
    Offer {
        sdp: String,
        reply: SyncSender<Result<(String, String), (u16, String)>>,
    },
    Delete {
        id: String,
        reply: SyncSender<bool>,
    },
}

type Session = (Arc<dyn PeerConnection>, Sender<PcEvent>);

/// State shared by the probe's tasks.
struct Shared {
    runtime: Arc<dyn Runtime>,
    /// Connected viewers, fed by the pacer.
    viewers: Mutex<HashMap<u64, Sender<Arc<Frame>>>>,
    /// Answered sessions (connecting or connected), by WHEP id: the connection and its event
    /// queue (a DELETE closes the one and tells the session task through the other).
    sessions: Mutex<HashMap<String, Session>>,
    next_id: AtomicU64,
    frames_sent: AtomicU64,
}

impl Shared {
    fn viewers(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Sender<Arc<Frame>>>> {
        self.viewers.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn sessions(&self) -> std::sync::MutexGuard<'_, HashMap<String, Session>> {
        self.sessions.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn main() {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("runtime-probe: {e}");
            std::process::exit(2);
        }
    };
    let encoded = match encode(&args) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("runtime-probe: {e}");
            std::process::exit(1);
        }
    };
    let bytes: usize = encoded.iter().map(Vec::len).sum();
    eprintln!(
        "runtime-probe: runtime {}, {} frames {}x{} encoded ({} KiB), serving http://127.0.0.1:{}/whep",
        rt::NAME,
        encoded.len(),
        args.width,
        args.height,
        bytes / 1024,
        args.port
    );

    let shared = Arc::new(Shared {
        runtime: rt::webrtc_runtime(),
        viewers: Mutex::new(HashMap::new()),
        sessions: Mutex::new(HashMap::new()),
        next_id: AtomicU64::new(1),
        frames_sent: AtomicU64::new(0),
    });
    let (commands_tx, commands_rx) = channel::<Command>(64);
    let listener = match std::net::TcpListener::bind(("127.0.0.1", args.port)) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("runtime-probe: bind 127.0.0.1:{}: {e}", args.port);
            std::process::exit(1);
        }
    };
    let http_shared = shared.clone();
    if let Err(e) = http::serve(listener, move |r| route(&http_shared, &commands_tx, r)) {
        eprintln!("runtime-probe: http thread: {e}");
        std::process::exit(1);
    }

    rt::block_on(async move {
        rt::spawn(pacer(shared.clone(), encoded));
        dispatch(shared, commands_rx).await;
    });
}

/// The HTTP routes, on the HTTP thread: hands WHEP requests to the runtime and waits.
fn route(shared: &Shared, commands: &Sender<Command>, r: http::Request) -> http::Response {
    match (r.method.as_str(), r.path.as_str()) {
        ("GET", "/healthz") => http::Response {
            status: 200,
            headers: Vec::new(),
            content_type: "application/json",
            body: format!(
                "{{\"status\":\"ok\",\"runtime\":\"{}\",\"viewers\":{},\"sessions\":{},\"frames_sent\":{}}}\n",
                rt::NAME,
                shared.viewers().len(),
                shared.sessions().len(),
                shared.frames_sent.load(Ordering::Relaxed)
            ),
        },
        ("POST", "/whep") => {
            let (reply, answer) = sync_channel(1);
            if commands
                .try_send(Command::Offer { sdp: r.body, reply })
                .is_err()
            {
                return http::Response::text(503, "busy\n");
            }
            match answer.recv_timeout(Duration::from_secs(15)) {
                Ok(Ok((id, sdp))) => http::Response {
                    status: 201,
                    headers: vec![("Location", format!("/whep/{id}"))],
                    content_type: "application/sdp",
                    body: sdp,
                },
                Ok(Err((status, text))) => http::Response::text(status, text + "\n"),
                Err(_) => http::Response::text(500, "no answer in time\n"),
            }
        }
        ("DELETE", path) if path.starts_with("/whep/") => {
            let (reply, done) = sync_channel(1);
            let id = path["/whep/".len()..].to_string();
            if commands.try_send(Command::Delete { id, reply }).is_err() {
                return http::Response::text(503, "busy\n");
            }
            match done.recv_timeout(Duration::from_secs(5)) {
                Ok(true) => http::Response::text(200, ""),
                Ok(false) => http::Response::text(404, "no such session\n"),
                Err(_) => http::Response::text(500, "no answer in time\n"),
            }
        }
        _ => http::Response::text(404, "not found\n"),
    }
}

/// Runs each request from the HTTP thread in a task of its own.
async fn dispatch(shared: Arc<Shared>, mut commands: Receiver<Command>) {
    while let Some(cmd) = commands.recv().await {
        let shared = shared.clone();
        match cmd {
            Command::Offer { sdp, reply } => rt::spawn(async move {
                let _ = reply.send(offer(&shared, sdp).await);
            }),
            Command::Delete { id, reply } => rt::spawn(async move {
                let session = shared.sessions().remove(&id);
                if let Some((pc, events)) = &session {
                    let _ = events.try_send(PcEvent::State(RTCPeerConnectionState::Closed));
                    let _ = pc.close().await;
                }
                let _ = reply.send(session.is_some());
            }),
        }
    }
}

/// Sends the encoded frames in a loop at 30 fps to every connected viewer.
async fn pacer(shared: Arc<Shared>, encoded: Vec<Vec<u8>>) {
    let mut packetizer = match Packetizer::new(MAX_PAYLOAD, 0x1234, 0x5678_9abc, 0x42) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("runtime-probe: packetizer: {e}");
            std::process::exit(1);
        }
    };
    let mut tick = shared
        .runtime
        .interval(Duration::from_nanos(1_000_000_000 / FPS));
    for n in 0u64.. {
        tick.tick().await;
        let data = &encoded[(n % encoded.len() as u64) as usize];
        let mut packets = Vec::with_capacity(data.len() / MAX_PAYLOAD + 1);
        let done = packetizer.packetize(data, n * 1_000_000 / FPS, |p| {
            packets.push(Packet {
                seq: p.seq,
                timestamp: p.timestamp,
                marker: p.marker,
                payload: Bytes::copy_from_slice(p.payload),
            })
        });
        let frame = Arc::new(Frame {
            keyframe: done.keyframe,
            packets,
        });
        for tx in shared.viewers().values() {
            // A full queue: this viewer is behind, it misses the frame (the writer restarts it
            // at the next keyframe only on join; a probe does not need more).
            let _ = tx.try_send(frame.clone());
        }
        shared.frames_sent.fetch_add(1, Ordering::Relaxed);
    }
}

/// What a connection's handler reports to its session task.
#[derive(Debug)]
enum PcEvent {
    GatheringComplete,
    State(RTCPeerConnectionState),
}

/// Forwards connection events without ever blocking the driver.
struct Handler {
    events: Sender<PcEvent>,
}

#[async_trait::async_trait]
impl PeerConnectionEventHandler for Handler {
    async fn on_ice_gathering_state_change(&self, state: RTCIceGatheringState) {
        if state == RTCIceGatheringState::Complete {
            let _ = self.events.try_send(PcEvent::GatheringComplete);
        }
    }

    async fn on_connection_state_change(&self, state: RTCPeerConnectionState) {
        let _ = self.events.try_send(PcEvent::State(state));
    }
}

type Answer = Result<(String, String), (u16, String)>;

/// Answers a WHEP offer as the node does (one connection and one track per viewer, host
/// candidates only, no trickle), then leaves the session to a task of its own.
async fn offer(shared: &Arc<Shared>, offer_sdp: String) -> Answer {
    let internal = |what: &str, e: &dyn std::fmt::Display| (500, format!("{what}: {e}"));
    let offer = RTCSessionDescription::offer(offer_sdp).map_err(|e| (400, e.to_string()))?;
    if !offer.sdp.contains("m=video") || !offer.sdp.to_ascii_uppercase().contains("VP8/90000") {
        return Err((400, "the offer must receive VP8 video".into()));
    }
    // The node's own setup (firmware/src/webrtc/peer.rs, included by path): a WHEP viewer's
    // connection, bound to loopback, on this build's runtime.
    let spec = PeerSpec::viewer(vec![]);
    let (events_tx, mut events) = channel(32);
    let pc = spec
        .builder(
            |registry| registry,
            Arc::new(Handler {
                events: events_tx.clone(),
            }) as Arc<dyn PeerConnectionEventHandler>,
            vec!["127.0.0.1:0".to_string()],
        )
        .map_err(|e| (500, e))?
        .with_runtime(shared.runtime.clone())
        .with_dedicated_reactor_pool_size(1)
        .build()
        .await
        .map_err(|e| internal("peer connection", &e))?;
    let pc: Arc<dyn PeerConnection> = Arc::new(pc);
    let track = spec.vp8_track(0x5eed_0000 | shared.next_id.load(Ordering::Relaxed) as u32);
    let negotiate = async {
        pc.add_track(track.clone() as Arc<dyn TrackLocal>)
            .await
            .map_err(|e| internal("add track", &e))?;
        pc.set_remote_description(offer)
            .await
            .map_err(|e| (400, format!("the offer was refused: {e}")))?;
        let answer = pc
            .create_answer(None)
            .await
            .map_err(|e| (400, format!("no answer to this offer: {e}")))?;
        pc.set_local_description(answer)
            .await
            .map_err(|e| internal("set_local_description", &e))?;
        Ok::<(), (u16, String)>(())
    };
    if let Err(e) = negotiate.await {
        let _ = pc.close().await;
        return Err(e);
    }
    let _ = timeout(&*shared.runtime, Duration::from_secs(2), async {
        while let Some(ev) = events.recv().await {
            if let PcEvent::GatheringComplete = ev {
                return;
            }
        }
    })
    .await;
    let Some(local) = pc.local_description().await else {
        let _ = pc.close().await;
        return Err((500, "no local description".into()));
    };
    let id = format!("{:016x}", shared.next_id.fetch_add(1, Ordering::Relaxed));
    shared
        .sessions()
        .insert(id.clone(), (pc.clone(), events_tx));
    let (s, sid) = (shared.clone(), id.clone());
    rt::spawn(async move { session(s, sid, pc, track, events).await });
    Ok((id, local.sdp))
}

/// One viewer after the answer: wait for the connection, stream, clean up.
async fn session(
    shared: Arc<Shared>,
    id: String,
    pc: Arc<dyn PeerConnection>,
    track: Arc<TrackLocalStaticRTP>,
    mut events: Receiver<PcEvent>,
) {
    let connected = timeout(&*shared.runtime, Duration::from_secs(30), async {
        loop {
            match events.recv().await {
                Some(PcEvent::State(RTCPeerConnectionState::Connected)) => return true,
                Some(PcEvent::State(
                    RTCPeerConnectionState::Failed | RTCPeerConnectionState::Closed,
                ))
                | None => return false,
                Some(_) => {}
            }
        }
    })
    .await
    .unwrap_or(false);
    let negotiated = if connected {
        peer::negotiated(&pc, &track).await
    } else {
        None
    };
    if let Some((ssrc, pt)) = negotiated {
        let (tx, rx) = channel(VIEWER_QUEUE);
        rt::spawn(writer(track.clone(), ssrc, pt, rx));
        // Receiver reports, NACKs and PLIs: drained as the node does (the stack answers NACKs).
        let rtcp = track.clone();
        rt::spawn(async move { while rtcp.poll().await.is_some() {} });
        let key = shared.next_id.fetch_add(1, Ordering::Relaxed);
        shared.viewers().insert(key, tx);
        while let Some(ev) = events.recv().await {
            if let PcEvent::State(RTCPeerConnectionState::Failed | RTCPeerConnectionState::Closed) =
                ev
            {
                break;
            }
        }
        shared.viewers().remove(&key);
    }
    shared.sessions().remove(&id);
    let _ = pc.close().await;
}

/// Writes the frames of one viewer to its track, starting at a keyframe.
async fn writer(
    track: Arc<TrackLocalStaticRTP>,
    ssrc: u32,
    pt: u8,
    mut frames: Receiver<Arc<Frame>>,
) {
    let mut started = false;
    while let Some(frame) = frames.recv().await {
        started |= frame.keyframe;
        if !started {
            continue;
        }
        for p in &frame.packets {
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
            if track.write_rtp(packet).await.is_err() {
                return;
            }
        }
    }
}

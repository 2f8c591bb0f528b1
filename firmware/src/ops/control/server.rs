//! The daemon side of the control socket.
//!
//! [`bind`] runs early in `sutantra run`, before the store and the camera: if the socket path
//! answers, another node owns it and this one refuses to start; a socket file nobody answers on
//! is left over from a crash and is replaced. The socket gets mode 0660 (owner and group: run
//! the CLI as the service user or a member of its group). [`serve`] answers requests (see
//! [`super::proto`]) with at most [`MAX_CLIENTS`] connections at once; one more gets a "busy"
//! answer and is closed. A connection idle for [`IDLE_TIMEOUT`] is closed.

use super::proto::{self, ProtoError, Request, Response};
use crate::config::Config;
use crate::media::SharedFanout;
use crate::media::control::MediaControl;
use crate::stats::Stats;
use crate::webrtc::whep::Viewers;
use crate::webrtc::whip::PublishStats;
use serde_json::{Value, json};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::io::{AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::Semaphore;

/// Control connections served at once.
pub const MAX_CLIENTS: usize = 8;
/// A connection that sends nothing for this long is closed (`logs --follow` excepted).
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// The bound socket; dropping it removes the socket file.
#[derive(Debug)]
pub struct ControlSocket {
    listener: Option<UnixListener>,
    path: PathBuf,
}

impl Drop for ControlSocket {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Why the control socket could not be bound. [`BindError::NodeRunning`] is the one a caller
/// acts on differently: another node owns this data dir, so this one must not touch it.
#[derive(Debug, thiserror::Error)]
pub enum BindError {
    /// Another node answers on the socket.
    #[error(
        "another sutantra node is running: its control socket {} answers \
         (`sutantra status --socket {}`); stop it first or use another --data-dir",
        .0.display(), .0.display()
    )]
    NodeRunning(PathBuf),
    /// Something that is not a socket is in the way.
    #[error("{} exists and is not a socket: remove it or set [control] socket to another path", .0.display())]
    NotASocket(PathBuf),
    /// A file-system step failed (`what` says which, with the fix).
    #[error("{what}: {source}{hint}")]
    Io {
        /// The step, e.g. `cannot create /run/sutantra for the control socket`.
        what: String,
        /// The OS error.
        source: std::io::Error,
        /// What to do, e.g. `; set [control] socket`.
        hint: &'static str,
    },
}

fn io_error(what: String, hint: &'static str) -> impl FnOnce(std::io::Error) -> BindError {
    move |source| BindError::Io { what, source, hint }
}

/// Binds the control socket at `path` (see the module header for stale sockets). Needs a Tokio
/// runtime.
pub fn bind(path: &Path) -> Result<ControlSocket, BindError> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(io_error(
            format!("cannot create {} for the control socket", parent.display()),
            "; set [control] socket",
        ))?;
    }
    if let Ok(meta) = std::fs::symlink_metadata(path) {
        if !meta.file_type().is_socket() {
            return Err(BindError::NotASocket(path.to_path_buf()));
        }
        match std::os::unix::net::UnixStream::connect(path) {
            Ok(_) => return Err(BindError::NodeRunning(path.to_path_buf())),
            Err(_) => {
                std::fs::remove_file(path).map_err(io_error(
                    format!("cannot remove the stale control socket {}", path.display()),
                    "",
                ))?;
                tracing::info!(socket = %path.display(), "replaced a stale control socket");
            }
        }
    }
    let listener = UnixListener::bind(path).map_err(io_error(
        format!("cannot listen on the control socket {}", path.display()),
        "; set [control] socket to a writable path",
    ))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660)).map_err(io_error(
        format!("cannot set mode 0660 on {}", path.display()),
        "",
    ))?;
    Ok(ControlSocket {
        listener: Some(listener),
        path: path.to_path_buf(),
    })
}

/// What the control socket needs of the running node for `config show` and `config reload`
/// (implemented by the running node's `Live` in node.rs; a trait so that this module stays
/// below the node).
#[async_trait::async_trait]
pub trait Reloader: Send + Sync + std::fmt::Debug {
    /// The configuration file the node runs with, if any.
    fn file(&self) -> Option<std::path::PathBuf>;
    /// Reads the configuration again and applies what changed.
    async fn reload_config(self: Arc<Self>) -> Result<crate::config::reload::Report, String>;
}

/// What the commands act on.
#[derive(Debug, Clone)]
pub struct ControlState {
    /// Counters and the media switches.
    pub stats: Arc<Stats>,
    /// The media switches (pause, keyframe, restart).
    pub control: Arc<MediaControl>,
    /// WHIP publishing figures and the encoder's bitrate target.
    pub publish: Arc<PublishStats>,
    /// The viewer sessions.
    pub viewers: Arc<Viewers>,
    /// The fan-out (packet drops).
    pub fanout: Arc<SharedFanout>,
    /// The effective configuration (replaced by reloads).
    pub config: Arc<std::sync::RwLock<Arc<Config>>>,
    /// Reloads (absent in tests of the socket alone).
    pub live: Option<Arc<dyn Reloader>>,
    /// Measured bitrate over the last second, in kbit/s.
    pub kbps: Arc<AtomicU64>,
    /// `snapshot`: the same frame request, encode and cache as `/snapshot.jpg` (absent in tests
    /// of the socket alone).
    pub snapshots: Option<Arc<crate::media::snapshot::Snapshots>>,
}

impl ControlState {
    /// State for `config`.
    pub fn new(
        stats: Arc<Stats>,
        control: Arc<MediaControl>,
        publish: Arc<PublishStats>,
        viewers: Arc<Viewers>,
        fanout: Arc<SharedFanout>,
        config: Config,
    ) -> Self {
        Self {
            stats,
            control,
            publish,
            viewers,
            fanout,
            config: Arc::new(std::sync::RwLock::new(Arc::new(config))),
            live: None,
            kbps: Arc::new(AtomicU64::new(0)),
            snapshots: None,
        }
    }
}

impl ControlState {
    /// The configuration in force.
    pub fn config(&self) -> Arc<Config> {
        self.config
            .read()
            .map(|c| c.clone())
            .unwrap_or_else(|p| p.into_inner().clone())
    }
}

/// Serves the socket until the task is aborted.
pub fn spawn(mut socket: ControlSocket, state: ControlState) -> tokio::task::JoinHandle<()> {
    let listener = socket.listener.take();
    tracing::info!(socket = %socket.path.display(), "control socket ready");
    tokio::spawn(async move {
        // The socket file lives as long as this task.
        let _socket = socket;
        let Some(listener) = listener else {
            return;
        };
        let meter = tokio::spawn(measure_bitrate(state.stats.clone(), state.kbps.clone()));
        serve(listener, state).await;
        meter.abort();
    })
}

async fn measure_bitrate(stats: Arc<Stats>, kbps: Arc<AtomicU64>) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last = stats.bytes_encoded.load(Ordering::Relaxed);
    loop {
        tick.tick().await;
        let now = stats.bytes_encoded.load(Ordering::Relaxed);
        kbps.store(now.saturating_sub(last) * 8 / 1000, Ordering::Relaxed);
        last = now;
    }
}

/// Accepts connections (mini-redis shape: a semaphore bounds them).
pub async fn serve(listener: UnixListener, state: ControlState) {
    let permits = Arc::new(Semaphore::new(MAX_CLIENTS));
    loop {
        let stream = match listener.accept().await {
            Ok((s, _)) => s,
            Err(e) => {
                tracing::warn!(error = %e, "control socket accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        match permits.clone().try_acquire_owned() {
            Ok(permit) => {
                let state = state.clone();
                tokio::spawn(async move {
                    connection(stream, &state).await;
                    drop(permit);
                });
            }
            Err(_) => {
                tokio::spawn(async move {
                    let mut stream = stream;
                    let busy = Response::err(format!(
                        "busy: {MAX_CLIENTS} control clients are connected; try again"
                    ));
                    let _ = stream.write_all(&busy.encode()).await;
                });
            }
        }
    }
}

async fn connection(stream: UnixStream, state: &ControlState) {
    let (read, mut write) = stream.into_split();
    let mut reader = BufReader::new(read);
    let mut line = Vec::with_capacity(256);
    loop {
        let got = match tokio::time::timeout(IDLE_TIMEOUT, proto::read_line(&mut reader, &mut line))
            .await
        {
            Ok(r) => r,
            Err(_) => return,
        };
        let request = match got {
            Ok(true) => Request::decode(&line),
            Ok(false) => return,
            Err(e) => Err(e),
        };
        let request = match request {
            Ok(r) => r,
            Err(e) => {
                let close = e == ProtoError::TooLong;
                if write
                    .write_all(&Response::err(e.to_string()).encode())
                    .await
                    .is_err()
                    || close
                {
                    return;
                }
                continue;
            }
        };
        if let Request::Logs { lines, follow } = request {
            if logs(&mut write, &mut reader, lines, follow).await.is_err() || follow {
                return;
            }
            continue;
        }
        // A snapshot's JPEG rides in its answer, which may be longer than other messages.
        let cap = if matches!(request, Request::Snapshot { .. }) {
            proto::MAX_SNAPSHOT_MESSAGE
        } else {
            proto::MAX_MESSAGE
        };
        let response = handle(state, request).await;
        if write.write_all(&response.encode_capped(cap)).await.is_err() {
            return;
        }
    }
}

/// `logs`: one response per line, then `{"end":true}` (or, with `follow`, new lines until the
/// client goes away).
async fn logs(
    write: &mut tokio::net::unix::OwnedWriteHalf,
    reader: &mut BufReader<tokio::net::unix::OwnedReadHalf>,
    lines: usize,
    follow: bool,
) -> std::io::Result<()> {
    let Some(ctl) = super::logging::control() else {
        return write
            .write_all(&Response::err("this node keeps no log lines").encode())
            .await;
    };
    let mut rx = follow.then(|| ctl.subscribe());
    for l in ctl.recent(lines.min(proto::MAX_LOG_LINES)) {
        write
            .write_all(&Response::ok(json!({ "line": l })).encode())
            .await?;
    }
    let Some(rx) = rx.as_mut() else {
        return write
            .write_all(&Response::ok(json!({ "end": true })).encode())
            .await;
    };
    let mut scratch = [0u8; 256];
    loop {
        // A follower that hangs up is noticed at once (its read ends), not at the next line.
        let next = tokio::select! {
            next = rx.recv() => next,
            read = tokio::io::AsyncReadExt::read(reader, &mut scratch) => match read {
                Ok(0) | Err(_) => return Ok(()),
                Ok(_) => continue,
            },
        };
        let line = match next {
            Ok(l) => l,
            Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                format!("[{n} log lines skipped: the reader fell behind]")
            }
            Err(tokio::sync::broadcast::error::RecvError::Closed) => return Ok(()),
        };
        write
            .write_all(&Response::ok(json!({ "line": line })).encode())
            .await?;
    }
}

/// Answers one request.
pub async fn handle(state: &ControlState, request: Request) -> Response {
    let ctl = &state.control;
    match request {
        Request::Status => Response::ok(status(state).await),
        Request::Keyframe => {
            ctl.request_keyframe();
            tracing::info!("keyframe requested by the operator");
            Response::ok(json!({ "keyframe": "requested" }))
        }
        Request::StreamStop => {
            ctl.set_paused(true);
            tracing::info!("stream stopped by the operator; viewers stay connected");
            Response::ok(json!({ "stream": "stopped" }))
        }
        Request::StreamStart => {
            let before = state.stats.frames_sent.load(Ordering::Relaxed);
            ctl.set_paused(false);
            tracing::info!("stream started by the operator");
            // Answer once frames flow again, so that `/healthz` is "ok" when the command ends
            // (right after a pause the last frame is old and would read as a stall).
            let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
            while state.stats.frames_sent.load(Ordering::Relaxed) == before
                && tokio::time::Instant::now() < deadline
            {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            let flowing = state.stats.frames_sent.load(Ordering::Relaxed) != before;
            Response::ok(json!({ "stream": "started", "frames_flowing": flowing }))
        }
        Request::Viewers => Response::ok(json!({ "viewers": state.viewers.list() })),
        Request::Kick { id } => {
            if state.viewers.end(&id).await {
                tracing::info!(viewer = %id, "viewer ended by the operator");
                Response::ok(json!({ "kicked": id }))
            } else {
                Response::err(format!(
                    "no viewer session {id:?}; `sutantra viewers` lists them"
                ))
            }
        }
        Request::Logs { .. } => Response::err("logs are answered on the connection"),
        Request::SetLogLevel { level } => match super::logging::control() {
            Some(log) => match log.set_level(&level) {
                Ok(()) => {
                    tracing::info!(level = %level, "log level changed");
                    Response::ok(json!({ "log_level": level }))
                }
                Err(e) => Response::err(e),
            },
            None => Response::err("this node's log level cannot be changed"),
        },
        Request::RebootStream => {
            ctl.request_restart();
            ctl.request_keyframe();
            Response::ok(json!({ "reboot_stream": "the capture source restarts (about 0.5 s)" }))
        }
        Request::ConfigShow => {
            let mut v = config_json(&state.config());
            if let Some(live) = &state.live {
                v["file"] = json!(live.file());
            }
            Response::ok(v)
        }
        Request::Snapshot { quality } => snapshot(state, quality).await,
        Request::Reload => match &state.live {
            Some(live) => match live.clone().reload_config().await {
                Ok(report) => Response::ok(json!(report)),
                Err(e) => Response::err(format!("configuration not reloaded: {e}")),
            },
            None => Response::err("this node cannot reload its configuration"),
        },
    }
}

/// `snapshot`: the latest picture from the cache `/snapshot.jpg` uses, in base64.
async fn snapshot(state: &ControlState, quality: Option<u8>) -> Response {
    use base64::Engine as _;
    if let Some(q) = quality.filter(|q| !(1..=100).contains(q)) {
        return Response::err(format!("quality {q}: use 1 to 100"));
    }
    if let Some(why) = crate::webrtc::relay::no_picture(&state.stats) {
        return Response::err(why);
    }
    let Some(snapshots) = &state.snapshots else {
        return Response::err("this node takes no snapshots");
    };
    match snapshots.get(quality).await {
        Ok(jpeg) => Response::ok(json!({
            "width": jpeg.width,
            "height": jpeg.height,
            "bytes": jpeg.bytes.len(),
            "quality": jpeg.quality,
            "capture_us": jpeg.capture_us,
            "jpeg_base64": base64::engine::general_purpose::STANDARD.encode(&jpeg.bytes),
        })),
        Err(e) => Response::err(e.to_string()),
    }
}

async fn status(state: &ControlState) -> Value {
    let s = &state.stats;
    let src = s.source();
    let paused = state.control.paused();
    let stream_state = if paused { "paused" } else { src.state };
    let (temp, throttled) = tokio::task::spawn_blocking(board_health)
        .await
        .unwrap_or((None, None));
    json!({
        "source": state.config().source.spec,
        "source_detail": src.description,
        "state": stream_state,
        "width": src.width,
        "height": src.height,
        "fps": (s.fps() * 10.0).round() / 10.0,
        "fps_target": src.fps_target,
        "bitrate_kbps": state.kbps.load(Ordering::Relaxed),
        "bitrate_target_kbps": state.control.target_bitrate(),
        "publish": state.publish.targets(),
        // A relay's upstream: state, RTT, loss (null for a camera).
        "upstream": s.upstream.json(),
        "viewers": s.viewers.load(Ordering::Relaxed),
        "sessions": state.viewers.count(),
        "frames_sent": s.frames_sent.load(Ordering::Relaxed),
        "frame_drops": s.pool_dropped.load(Ordering::Relaxed),
        "packet_drops": state.fanout.dropped(),
        "keyframes": s.keyframes.load(Ordering::Relaxed),
        "uptime_s": s.uptime().as_secs(),
        "chain_height": s.chain.height(),
        // Why the light validator is not verifying (unreachable RPC, a key or store it cannot
        // open, a stopped thread); null when it is fine or there is no chain.
        "chain_error": s.chain.last_error(),
        "chain_halted": s.chain.halted.load(Ordering::Relaxed),
        "outbox_depth": s.chain.outbox_depth.load(Ordering::Relaxed),
        "cpu_temp_c": temp,
        "throttled": throttled,
        "log_level": super::logging::control().map(|l| l.level()),
        "version": env!("CARGO_PKG_VERSION"),
        "pid": std::process::id(),
    })
}

/// CPU temperature (°C) and `vcgencmd get_throttled`, where the board reports them.
pub fn board_health() -> (Option<f64>, Option<String>) {
    let temp = std::fs::read_to_string("/sys/class/thermal/thermal_zone0/temp")
        .ok()
        .and_then(|t| t.trim().parse::<f64>().ok())
        .map(|m| (m / 100.0).round() / 10.0);
    let throttled = std::process::Command::new("vcgencmd")
        .arg("get_throttled")
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| {
            let text = String::from_utf8_lossy(&o.stdout);
            text.trim()
                .strip_prefix("throttled=")
                .map(|v| v.to_string())
        });
    (temp, throttled)
}

/// The effective configuration as JSON (the WHEP token and a relay's upstream token are never
/// shown).
pub fn config_json(cfg: &Config) -> Value {
    let mut source = serde_json::to_value(&cfg.source).unwrap_or(Value::Null);
    if let Some(t) = source.get_mut("upstream_token")
        && !t.is_null()
    {
        *t = Value::from("(set)");
    }
    let mut http = serde_json::to_value(&cfg.http).unwrap_or(Value::Null);
    if let Some(t) = http.get_mut("token")
        && !t.is_null()
    {
        *t = Value::from("(set)");
    }
    json!({
        "data_dir": cfg.data_dir,
        "board": cfg.board,
        "source": source,
        "encoder": cfg.encoder,
        "http": http,
        "webrtc": cfg.webrtc,
        "chain": cfg.chain,
        "attest": cfg.attest,
        "publish_targets": cfg.publish.len(),
        "control": { "socket": cfg.control.socket_path(&cfg.data_dir) },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_live_socket_refuses_a_second_bind_and_a_dead_one_is_replaced() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("c.sock");
        let first = bind(&path).expect("first bind");
        let mode = std::fs::metadata(&path).expect("meta").permissions().mode();
        assert_eq!(mode & 0o777, 0o660);
        let e = bind(&path).expect_err("second bind");
        assert!(matches!(e, BindError::NodeRunning(_)), "{e}");
        let e = e.to_string();
        assert!(e.contains("another sutantra node is running"), "{e}");
        // A crash leaves the file behind: simulate with a bound std listener that is dropped
        // without removing it.
        drop(first);
        let stale = std::os::unix::net::UnixListener::bind(&path).expect("stale");
        drop(stale);
        assert!(path.exists());
        let again = bind(&path).expect("stale socket replaced");
        drop(again);
        assert!(!path.exists());
        std::fs::write(&path, b"not a socket").expect("write");
        let e = bind(&path).expect_err("regular file").to_string();
        assert!(e.contains("is not a socket"), "{e}");
    }
}

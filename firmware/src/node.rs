//! The running node (`sutantra run`): [`run`] starts every part, serves until shutdown, and
//! stops them in order; [`Live`] holds the parts a configuration reload changes.
//!
//! Start order: the fan-out, the light validator if a `[chain]` is configured (it opens the node
//! key and the store itself, and hands the media path its segment observer; a key or store it
//! cannot open is reported in `/healthz` and `status` and retried, never a reason to stop), the
//! media threads, the HTTP router and the WHEP sessions, the WHIP publishers, the control
//! socket, SIGHUP, GPIO and systemd's readiness. Without a `[chain]` no key or store is opened
//! or created. Shutdown runs the other way, media before the validator so that the open
//! attestation segment is flushed and committed.

use crate::config::Config;
use crate::config::ConfigError;
use crate::config::reload::{Apply, Report, apply_kind, changed_keys, effective};
use crate::http::{self, AppState};
use crate::media::control::MediaControl;
use crate::media::{Carry, Media, MediaConfig, SharedFanout};
use crate::ops::control::server::{ControlSocket, Reloader};
use crate::stats::Stats;
use crate::validator::LightValidator;
use crate::webrtc::relay::{Relay, RelaySource};
use crate::webrtc::whep::Viewers;
use crate::webrtc::whip::{PublishStats, Publishers};
use std::future::Future;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;
use sutantra_core::observer::{FrameObserver, FrameStats};

/// How a reload reads the configuration again: the file the node started with, and the same
/// resolution as at start (the file with the command line's flags on top).
pub struct Reload {
    /// The file, if the node runs with one.
    pub file: Option<PathBuf>,
    /// Reads the file again and applies the flags.
    pub resolve: Box<dyn Fn() -> Result<Config, ConfigError> + Send + Sync>,
}

impl std::fmt::Debug for Reload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reload")
            .field("file", &self.file)
            .finish_non_exhaustive()
    }
}

/// Why the node could not start or stopped with an error. Each message names what failed and
/// what to do; the variants let a caller (a supervisor, a test) tell a taken data dir or port
/// from a broken camera or a bad chain setting.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// The data directory cannot be created.
    #[error("cannot create the data directory {}: {source}; pass --data-dir DIR", .path.display())]
    DataDir {
        /// The directory.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The control socket cannot be bound (another node may own this data dir).
    #[error(transparent)]
    Control(#[from] crate::ops::control::server::BindError),
    /// The HTTP port cannot be bound.
    #[error("cannot listen on {addr}: {source}; pick another address with --listen ADDR")]
    Listen {
        /// The listen address.
        addr: std::net::SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
    /// The camera or the encoder cannot start.
    #[error(transparent)]
    Media(#[from] crate::media::MediaError),
    /// The fan-out's bounds are unusable (a zero queue).
    #[error(transparent)]
    SharedFanout(#[from] sutantra_core::fanout::FanoutError),
    /// The light validator cannot start (a `[chain]` setting or its stored state).
    #[error("{0}")]
    Validator(String),
    /// A part of the node cannot start (the fan-out, the serial console, a thread).
    #[error("{0}")]
    Start(String),
    /// The HTTP server failed while serving.
    #[error("HTTP server failed: {0}")]
    Http(std::io::Error),
    /// The HTTPS certificate or key cannot be used (a configuration error: exit 2).
    #[error(transparent)]
    Tls(#[from] crate::http::TlsError),
}

/// Runs the node on `cfg` until `shutdown` resolves: HTTP on `listener`, commands on `control`.
///
/// The caller binds both first (so "port taken" and "a node already runs on this data dir" are
/// told before anything else is touched) and makes the data dir.
pub async fn run(
    cfg: Config,
    reload: Reload,
    listener: tokio::net::TcpListener,
    control_socket: ControlSocket,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), NodeError> {
    let stats = Arc::new(Stats::new());
    // Commands to the media threads (operator, button, WHIP re-targeting), next to the fan-out.
    let control = Arc::new(MediaControl::default());
    let publish_figures = Arc::new(PublishStats::new(control.clone()));
    // Publish targets take fan-out queues like viewers do (beside the viewer limit, not from it).
    let publish_targets = cfg.publish.iter().filter(|t| t.enabled).count();
    let fanout = Arc::new(SharedFanout::new(
        cfg.webrtc.max_viewers + publish_targets,
        cfg.webrtc.viewer_queue_packets,
    )?);
    let spec = cfg.source.spec.clone();
    let pipeline_cfg = PipelineConfig::from_config(&cfg);
    // The light validator opens the node key and the store itself (they are the chain's, not the
    // camera's): one it cannot open is reported and retried while the video runs.
    let (validator, observer): (Option<LightValidator>, Box<dyn FrameObserver>) =
        if cfg.chain.enabled() {
            let (v, o) =
                LightValidator::launch(&cfg, stats.clone()).map_err(NodeError::Validator)?;
            (Some(v), o)
        } else {
            (None, Box::new(FrameStats::new()))
        };
    let started = Carry::new(&pipeline_cfg.media, observer).and_then(|c| {
        Pipeline::start(
            &pipeline_cfg,
            fanout.clone(),
            control.clone(),
            stats.clone(),
            &mut Some(c),
        )
    });
    let media = match started {
        Ok(m) => m,
        Err(e) => {
            if let Some(v) = validator {
                v.shutdown();
            }
            return Err(e.into());
        }
    };

    let local = listener
        .local_addr()
        .map_err(|e| NodeError::Start(format!("the HTTP listener has no address: {e}")))?;
    let viewers = Arc::new(Viewers::new(
        cfg.webrtc.clone(),
        fanout.clone(),
        stats.clone(),
    ));
    let token = Arc::new(std::sync::RwLock::new(cfg.http.token.clone()));
    // One snapshot cache for HTTP and the control socket.
    let snapshots = Arc::new(crate::media::snapshot::Snapshots::new(
        control.clone(),
        stats.clone(),
        cfg.http.snapshot_quality,
        Duration::from_millis(cfg.http.snapshot_interval_ms),
    ));
    let state = AppState {
        viewers: viewers.clone(),
        stats: stats.clone(),
        control: control.clone(),
        publish: publish_figures.clone(),
        token: token.clone(),
        fanout: fanout.clone(),
        limits: Arc::new(http::Limits::from_config(&cfg.http)),
        offers: Arc::new(http::limit::OfferLimiter::new(
            cfg.http.offers_per_s,
            cfg.http.offer_burst,
        )),
        snapshots: snapshots.clone(),
    };
    let app = http::router(state);
    let publishers = crate::webrtc::whip::Publishers::start(
        &cfg.publish,
        &cfg.webrtc,
        (cfg.encoder.min_bitrate_kbps, cfg.encoder.bitrate_kbps),
        fanout.clone(),
        stats.clone(),
        publish_figures.clone(),
    );
    let (width, height) = media.size();
    let mut control_state = crate::ops::control::server::ControlState::new(
        stats.clone(),
        control.clone(),
        publish_figures.clone(),
        viewers.clone(),
        fanout.clone(),
        cfg.clone(),
    );
    // Reloads (SIGHUP, `sutantra config reload|set`) own the pipeline from here on.
    let live = Arc::new(Live {
        reload,
        config: control_state.config.clone(),
        media: Mutex::new(Some(media)),
        fanout: fanout.clone(),
        control: control.clone(),
        stats: stats.clone(),
        token,
        publishers: tokio::sync::Mutex::new(publishers),
        publish_figures: publish_figures.clone(),
        busy: tokio::sync::Mutex::new(()),
    });
    control_state.live = Some(live.clone() as Arc<dyn Reloader>);
    control_state.snapshots = Some(snapshots);
    let control_task = crate::ops::control::server::spawn(control_socket, control_state);
    // HTTPS (`http.tls_cert`, `http.tls_key`); SIGHUP reads the same files again.
    let tls = http::Tls::from_config(&cfg.http)?.map(Arc::new);
    let hangups = tokio::spawn(reload_on_sighup(live.clone(), tls.clone()));
    // The status LED and the button ([gpio]; off unless this build and the board have them).
    let gpio = crate::ops::gpio::start(&cfg, stats.clone(), control.clone());
    tracing::info!(
        listen = %local,
        source = %spec,
        width,
        height,
        bitrate_kbps = cfg.encoder.bitrate_kbps,
        "node started"
    );
    println!(
        "viewer: {}://{local}/",
        if tls.is_some() { "https" } else { "http" }
    );

    let notifier = Arc::new(crate::ops::notify::Notifier::from_env());
    notifier.send("READY=1\nSTATUS=streaming");
    let watchdog = tokio::spawn(crate::ops::notify::watchdog_loop(
        notifier.clone(),
        stats.clone(),
        control.clone(),
    ));
    let summary = tokio::spawn(summary_every_minute(stats.clone(), fanout.clone()));
    let trimmer = tokio::spawn(crate::ops::memory::trim_after_churn(stats.clone()));
    let serve_opts = http::ServeOptions::new(&cfg.http, stats.clone()).tls(tls);
    http::serve(listener, app, serve_opts, shutdown)
        .await
        .map_err(NodeError::Http)?;
    tracing::info!("shutting down");
    notifier.send("STOPPING=1");
    watchdog.abort();
    summary.abort();
    trimmer.abort();
    control_task.abort();
    hangups.abort();
    viewers.end_all().await;
    live.stop_publishers().await;
    tokio::task::spawn_blocking(move || {
        // Media first: the encode thread drops the segment observer, which flushes the open
        // segment; then the attestation thread commits it and the chain threads stop.
        drop(live.stop_media());
        if let Some(v) = validator {
            v.shutdown();
        }
        if let Some(g) = gpio {
            g.stop();
        }
    })
    .await
    .map_err(|e| NodeError::Start(format!("shutdown: {e}")))?;
    Ok(())
}

/// SIGHUP: read the configuration file again and apply what changed ([`crate::config::reload`]),
/// and read the HTTPS certificate and key again from the same paths.
async fn reload_on_sighup(live: Arc<Live>, tls: Option<Arc<http::Tls>>) {
    let Ok(mut hup) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) else {
        tracing::warn!("cannot watch SIGHUP; use `sutantra config reload`");
        return;
    };
    while hup.recv().await.is_some() {
        tracing::info!("SIGHUP: reloading the configuration");
        if let Err(e) = live.reload().await {
            tracing::error!(error = %e, "configuration not reloaded; the running one stays");
        }
        // New connections get the new certificate; a failed reload keeps the running one
        // (both are logged by `reload`).
        if let Some(tls) = &tls {
            let _ = tls.reload();
        }
    }
}

/// One summary line a minute: fps, bitrate, viewers, drops (never a line per frame).
async fn summary_every_minute(stats: Arc<Stats>, fanout: Arc<SharedFanout>) {
    let period = Duration::from_secs(60);
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let (mut frames0, mut bytes0) = (0u64, 0u64);
    loop {
        tick.tick().await;
        let frames = stats.frames_sent.load(Ordering::Relaxed);
        let bytes = stats.bytes_encoded.load(Ordering::Relaxed);
        tracing::info!(
            fps = format!("{:.2}", (frames - frames0) as f64 / period.as_secs_f64()),
            kbps = (bytes - bytes0) * 8 / period.as_secs() / 1000,
            viewers = stats.viewers.load(Ordering::Relaxed),
            frame_drops = stats.pool_dropped.load(Ordering::Relaxed),
            packet_drops = fanout.dropped(),
            pacer_skipped = stats.pacer_skipped.load(Ordering::Relaxed),
            "summary"
        );
        (frames0, bytes0) = (frames, bytes);
    }
}

/// What a pipeline runs on: the camera threads' settings, or the upstream of a relay.
#[derive(Debug, Clone)]
struct PipelineConfig {
    /// The camera and encoder (for a relay, only the carry's packetizer settings).
    media: MediaConfig,
    /// `whep:URL`: relay that server's stream instead.
    relay: Option<RelaySource>,
    /// Bind addresses and ICE servers for the relay's connection.
    webrtc: crate::config::WebRtcConfig,
    /// The source as configured, for the log.
    spec: String,
}

impl PipelineConfig {
    fn from_config(cfg: &Config) -> Self {
        Self {
            media: MediaConfig::from_config(cfg),
            relay: cfg.source.upstream_url().map(|url| RelaySource {
                url,
                token: cfg.source.upstream_token.clone(),
                min_keyframe_gap: Duration::from_millis(cfg.encoder.min_keyframe_gap_ms),
            }),
            webrtc: cfg.webrtc.clone(),
            spec: cfg.source.spec.clone(),
        }
    }
}

/// What makes the stream: the camera and encoder threads, or a relay of another WHEP server
/// (which keeps the camera's carry, untouched, for a later switch back).
#[derive(Debug)]
enum Pipeline {
    Camera(Media),
    Relay { relay: Relay, carry: Carry },
}

impl Pipeline {
    /// Starts `cfg`'s pipeline, taking `carry` when it succeeds. Call from a thread that may
    /// block (start, a reload's blocking task), inside the tokio runtime.
    fn start(
        cfg: &PipelineConfig,
        fanout: Arc<SharedFanout>,
        control: Arc<MediaControl>,
        stats: Arc<Stats>,
        carry: &mut Option<Carry>,
    ) -> Result<Self, crate::media::MediaError> {
        let Some(source) = &cfg.relay else {
            stats.upstream.enabled.store(false, Ordering::Relaxed);
            return Media::start_carrying(&cfg.media, fanout, control, stats, carry)
                .map(Pipeline::Camera);
        };
        let runtime = tokio::runtime::Handle::try_current().map_err(|e| {
            crate::media::MediaError::Encoder(format!("the relay needs the runtime: {e}"))
        })?;
        let Some(carry) = carry.take() else {
            return Err(crate::media::MediaError::Encoder(
                "no packetizer to carry over".into(),
            ));
        };
        let relay = Relay::start(source.clone(), &cfg.webrtc, fanout, control, stats, runtime);
        Ok(Pipeline::Relay { relay, carry })
    }

    /// Stops it; returns the carry for the next run (`None` if the encode thread panicked).
    fn stop(self) -> Option<Carry> {
        match self {
            Pipeline::Camera(m) => m.stop(),
            Pipeline::Relay { relay, carry } => {
                relay.stop();
                Some(carry)
            }
        }
    }

    /// The picture size (a relay's is the upstream's, known from its first keyframe: 0 before).
    fn size(&self) -> (u32, u32) {
        match self {
            Pipeline::Camera(m) => (m.info.width, m.info.height),
            Pipeline::Relay { .. } => (0, 0),
        }
    }
}

/// The parts of a running node a reload changes.
pub struct Live {
    reload: Reload,
    config: Arc<RwLock<Arc<Config>>>,
    media: Mutex<Option<Pipeline>>,
    fanout: Arc<SharedFanout>,
    control: Arc<MediaControl>,
    stats: Arc<Stats>,
    token: Arc<RwLock<Option<String>>>,
    publishers: tokio::sync::Mutex<Publishers>,
    publish_figures: Arc<PublishStats>,
    /// One reload at a time.
    busy: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for Live {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Live").finish_non_exhaustive()
    }
}

impl Live {
    /// The configuration in force.
    pub fn config(&self) -> Arc<Config> {
        self.config
            .read()
            .map(|c| c.clone())
            .unwrap_or_else(|p| p.into_inner().clone())
    }

    /// Reads the configuration again and applies what changed (see [`crate::config::reload`]).
    pub async fn reload(self: &Arc<Self>) -> Result<Report, String> {
        let _busy = self.busy.lock().await;
        let new = (self.reload.resolve)().map_err(|e| e.to_string())?;
        let old = self.config();
        let mut report = Report {
            file: self.reload.file.as_ref().map(|p| p.display().to_string()),
            ..Report::default()
        };
        for key in changed_keys(&old, &new) {
            match apply_kind(&key) {
                Apply::Live => report.applied.push(key),
                Apply::Pipeline => report.pipeline.push(key),
                Apply::Restart => report.needs_restart.push(key),
            }
        }
        let eff = effective(&old, &new);
        if !report.pipeline.is_empty() {
            let this = self.clone();
            let (old_media, new_media) = (
                PipelineConfig::from_config(&old),
                PipelineConfig::from_config(&eff),
            );
            let result =
                tokio::task::spawn_blocking(move || this.restart_media(&old_media, &new_media))
                    .await
                    .map_err(|e| e.to_string())?;
            if let Err(e) = result {
                // The old settings are back: the reload is refused as a whole.
                return Err(format!(
                    "{e}; the previous [source] and [encoder] settings stay in force"
                ));
            }
        }
        if report.applied.iter().any(|k| k.starts_with("encoder.")) {
            self.publish_figures
                .set_range(eff.encoder.min_bitrate_kbps, eff.encoder.bitrate_kbps);
        }
        if report.applied.iter().any(|k| k == "http.token") {
            *self.token.write().unwrap_or_else(|p| p.into_inner()) = eff.http.token.clone();
        }
        if report.applied.iter().any(|k| k == "publish") {
            self.publishers.lock().await.update(&eff.publish);
        }
        *self.config.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(eff);
        tracing::info!(
            applied = ?report.applied,
            pipeline = ?report.pipeline,
            needs_restart = ?report.needs_restart,
            "configuration reloaded"
        );
        Ok(report)
    }

    /// Restarts the media threads on `new`; on failure, on `old` again.
    fn restart_media(&self, old: &PipelineConfig, new: &PipelineConfig) -> Result<(), String> {
        let mut slot = self.media.lock().unwrap_or_else(|p| p.into_inner());
        let Some(running) = slot.take() else {
            return Err("the media pipeline is not running".into());
        };
        let Some(carry) = running.stop() else {
            return Err("the encode thread had died; restart the node".into());
        };
        let mut carry = Some(carry);
        match Pipeline::start(
            new,
            self.fanout.clone(),
            self.control.clone(),
            self.stats.clone(),
            &mut carry,
        ) {
            Ok(m) => {
                let (width, height) = m.size();
                tracing::info!(source = %new.spec, width, height, "pipeline restarted with the new settings");
                *slot = Some(m);
                Ok(())
            }
            Err(e) => {
                tracing::error!(error = %e, "the new settings failed; back to the previous ones");
                let back = Pipeline::start(
                    old,
                    self.fanout.clone(),
                    self.control.clone(),
                    self.stats.clone(),
                    &mut carry,
                )
                .map_err(|e2| format!("{e}; and the previous settings failed too: {e2}"))?;
                *slot = Some(back);
                Err(e.to_string())
            }
        }
    }

    /// Stops the media threads (shutdown); returns their carry so it can be dropped in order.
    pub fn stop_media(&self) -> Option<Carry> {
        let m = self.media.lock().unwrap_or_else(|p| p.into_inner()).take();
        m.and_then(Pipeline::stop)
    }

    /// Stops the publishers (shutdown).
    pub async fn stop_publishers(&self) {
        let p = std::mem::replace(&mut *self.publishers.lock().await, Publishers::none());
        p.shutdown().await;
    }
}

#[async_trait::async_trait]
impl Reloader for Live {
    fn file(&self) -> Option<PathBuf> {
        self.reload.file.clone()
    }

    async fn reload_config(self: Arc<Self>) -> Result<Report, String> {
        Live::reload(&self).await
    }
}

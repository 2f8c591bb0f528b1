//! Reloading the configuration of a running node: SIGHUP, `sutantra config reload` and
//! `sutantra config set`.
//!
//! The file is read again with the command line's flags on top (the same [`resolve_config`] as
//! at start); an invalid file changes nothing and the error says file, line and key. What
//! changed is sorted into three kinds:
//!
//! - **live**: applied at once, nothing interrupted: `encoder.bitrate_kbps` and
//!   `encoder.min_bitrate_kbps` (libvpx takes a new rate on the fly), `http.token` (checked on
//!   the next request), `[[publish]]` targets (added ones start, removed or disabled ones DELETE
//!   their session and stop, changed ones restart);
//! - **pipeline**: `[source]` and the rest of `[encoder]`: the capture and encode threads are
//!   restarted with the new settings while the HTTP server, the control socket and the viewers'
//!   sessions stay up (viewers see a keyframe, then the new picture; the RTP sequence goes on);
//!   a new camera that fails to open puts the old settings back;
//! - **restart**: everything else (listen address, data dir, WebRTC ports, chain, ...): not
//!   applied, and listed so the operator knows to restart the node.

use crate::cli::{RunArgs, resolve_config};
use crate::config::Config;
use crate::media::{Carry, Hub, Media, MediaConfig};
use crate::stats::Stats;
use crate::webrtc::whip::Publishers;
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, RwLock};

/// How a changed key is applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Apply {
    /// At once, nothing interrupted.
    Live,
    /// By restarting the capture and encode threads.
    Pipeline,
    /// Only by restarting the node.
    Restart,
}

/// How `key` (dotted, as [`changed_keys`] names it) is applied.
pub fn apply_kind(key: &str) -> Apply {
    match key {
        "encoder.bitrate_kbps" | "encoder.min_bitrate_kbps" | "http.token" => Apply::Live,
        k if k == "publish" || k.starts_with("publish.") => Apply::Live,
        k if k.starts_with("source.") || k.starts_with("encoder.") => Apply::Pipeline,
        _ => Apply::Restart,
    }
}

/// The configuration as dotted keys and values (`[[publish]]` is one key, `publish`).
fn flatten(cfg: &Config) -> BTreeMap<String, Value> {
    let mut out = BTreeMap::new();
    let sections: [(&str, Value); 9] = [
        (
            "source",
            serde_json::to_value(&cfg.source).unwrap_or_default(),
        ),
        (
            "encoder",
            serde_json::to_value(&cfg.encoder).unwrap_or_default(),
        ),
        ("http", serde_json::to_value(&cfg.http).unwrap_or_default()),
        (
            "webrtc",
            serde_json::to_value(&cfg.webrtc).unwrap_or_default(),
        ),
        (
            "chain",
            serde_json::to_value(&cfg.chain).unwrap_or_default(),
        ),
        (
            "attest",
            serde_json::to_value(&cfg.attest).unwrap_or_default(),
        ),
        (
            "control",
            serde_json::to_value(&cfg.control).unwrap_or_default(),
        ),
        (
            "console",
            serde_json::to_value(&cfg.console).unwrap_or_default(),
        ),
        ("gpio", serde_json::to_value(&cfg.gpio).unwrap_or_default()),
    ];
    for (name, value) in sections {
        match value {
            Value::Object(map) => {
                for (k, v) in map {
                    out.insert(format!("{name}.{k}"), v);
                }
            }
            other => {
                out.insert(name.to_string(), other);
            }
        }
    }
    out.insert(
        "data_dir".into(),
        serde_json::to_value(&cfg.data_dir).unwrap_or_default(),
    );
    out.insert(
        "board".into(),
        serde_json::to_value(&cfg.board).unwrap_or_default(),
    );
    out.insert(
        "publish".into(),
        serde_json::to_value(&cfg.publish).unwrap_or_default(),
    );
    out
}

/// The dotted keys whose values differ between `old` and `new`.
pub fn changed_keys(old: &Config, new: &Config) -> Vec<String> {
    let (a, b) = (flatten(old), flatten(new));
    let mut keys: Vec<String> = a
        .keys()
        .chain(b.keys())
        .filter(|k| a.get(*k) != b.get(*k))
        .cloned()
        .collect();
    keys.sort();
    keys.dedup();
    keys
}

/// `new` with only the changes that a running node applies taken from it; the rest of `old`.
fn effective(old: &Config, new: &Config) -> Config {
    let mut e = old.clone();
    e.source = new.source.clone();
    e.encoder = new.encoder.clone();
    e.http.token = new.http.token.clone();
    e.publish = new.publish.clone();
    e
}

/// What a reload did.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Report {
    /// The file read, if the node runs with one.
    pub file: Option<String>,
    /// Keys applied without interrupting anything.
    pub applied: Vec<String>,
    /// Keys applied by restarting the capture and encode threads.
    pub pipeline: Vec<String>,
    /// Keys that take effect only when the node restarts.
    pub needs_restart: Vec<String>,
}

/// The parts of a running node a reload changes.
pub struct Live {
    args: RunArgs,
    config: Arc<RwLock<Arc<Config>>>,
    media: Mutex<Option<Media>>,
    hub: Arc<Hub>,
    stats: Arc<Stats>,
    token: Arc<RwLock<Option<String>>>,
    publishers: tokio::sync::Mutex<Publishers>,
    /// One reload at a time.
    busy: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for Live {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Live").finish_non_exhaustive()
    }
}

impl Live {
    /// Takes over the running pieces.
    pub fn new(
        args: RunArgs,
        config: Arc<RwLock<Arc<Config>>>,
        media: Media,
        hub: Arc<Hub>,
        stats: Arc<Stats>,
        token: Arc<RwLock<Option<String>>>,
        publishers: Publishers,
    ) -> Self {
        Self {
            args,
            config,
            media: Mutex::new(Some(media)),
            hub,
            stats,
            token,
            publishers: tokio::sync::Mutex::new(publishers),
            busy: tokio::sync::Mutex::new(()),
        }
    }

    /// The configuration in force.
    pub fn config(&self) -> Arc<Config> {
        self.config
            .read()
            .map(|c| c.clone())
            .unwrap_or_else(|p| p.into_inner().clone())
    }

    /// The file the node was started with, if any.
    pub fn file(&self) -> Option<&std::path::Path> {
        self.args.config.as_deref()
    }

    /// Reads the configuration again and applies what changed (see the module's doc).
    pub async fn reload(self: &Arc<Self>) -> Result<Report, String> {
        let _busy = self.busy.lock().await;
        let new = resolve_config(&self.args).map_err(|e| e.to_string())?;
        let old = self.config();
        let mut report = Report {
            file: self.args.config.as_ref().map(|p| p.display().to_string()),
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
            let (old_media, new_media) = (media_config(&old), media_config(&eff));
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
            self.stats
                .publish
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
    fn restart_media(&self, old: &MediaConfig, new: &MediaConfig) -> Result<(), String> {
        let mut slot = self.media.lock().unwrap_or_else(|p| p.into_inner());
        let Some(running) = slot.take() else {
            return Err("the media pipeline is not running".into());
        };
        let Some(carry) = running.stop() else {
            return Err("the encode thread had died; restart the node".into());
        };
        let mut carry = Some(carry);
        match Media::start_carrying(new, self.hub.clone(), self.stats.clone(), &mut carry) {
            Ok(m) => {
                tracing::info!(source = %new.spec, width = m.info.width, height = m.info.height, "pipeline restarted with the new settings");
                *slot = Some(m);
                Ok(())
            }
            Err(e) => {
                tracing::error!(error = %e, "the new settings failed; back to the previous ones");
                let back =
                    Media::start_carrying(old, self.hub.clone(), self.stats.clone(), &mut carry)
                        .map_err(|e2| format!("{e}; and the previous settings failed too: {e2}"))?;
                *slot = Some(back);
                Err(e.to_string())
            }
        }
    }

    /// Stops the media threads (shutdown); returns their carry so it can be dropped in order.
    pub fn stop_media(&self) -> Option<Carry> {
        let m = self.media.lock().unwrap_or_else(|p| p.into_inner()).take();
        m.and_then(Media::stop)
    }

    /// Stops the publishers (shutdown).
    pub async fn stop_publishers(&self) {
        let p = std::mem::replace(&mut *self.publishers.lock().await, Publishers::none());
        p.shutdown().await;
    }
}

/// The media threads' settings from a configuration.
pub fn media_config(cfg: &Config) -> MediaConfig {
    MediaConfig {
        spec: cfg.source_spec(),
        request: sutantra_hal::camera::SourceRequest {
            width: cfg.source.width,
            height: cfg.source.height,
            fps_num: cfg.source.fps,
            fps_den: 1,
            buffers: cfg.source.buffers,
        },
        frame_pool: cfg.source.frame_pool,
        bitrate_kbps: cfg.encoder.bitrate_kbps,
        keyframe_interval: cfg.encoder.keyframe_interval,
        cpu_used: cfg.encoder.cpu_used,
        threads: cfg.encoder.threads,
        min_keyframe_gap: std::time::Duration::from_millis(cfg.encoder.min_keyframe_gap_ms),
        send_offset: std::time::Duration::from_millis(cfg.encoder.send_offset_ms),
        rtp_payload_bytes: cfg.webrtc.rtp_payload_bytes,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Config {
        Config::parse(text, "t.toml").expect("valid")
    }

    #[test]
    fn changes_are_sorted_into_live_pipeline_and_restart() {
        let old = parse("");
        let new = parse(
            "[encoder]\nbitrate_kbps = 700\ncpu_used = 10\n[source]\nwidth = 320\nheight = 240\n\
             [http]\nlisten = \"127.0.0.1:9999\"\ntoken = \"t\"\n\
             [[publish]]\nurl = \"http://127.0.0.1:1/whip\"\n",
        );
        let keys = changed_keys(&old, &new);
        assert_eq!(
            keys,
            [
                "encoder.bitrate_kbps",
                "encoder.cpu_used",
                "http.listen",
                "http.token",
                "publish",
                "source.height",
                "source.width"
            ]
        );
        let kinds: Vec<Apply> = keys.iter().map(|k| apply_kind(k)).collect();
        use Apply::*;
        assert_eq!(
            kinds,
            [Live, Pipeline, Restart, Live, Live, Pipeline, Pipeline]
        );
        assert!(changed_keys(&old, &parse("")).is_empty());
    }

    #[test]
    fn the_effective_config_keeps_what_needs_a_restart() {
        let old = parse("");
        let new = parse(
            "data_dir = \"/elsewhere\"\n[encoder]\nbitrate_kbps = 700\n\
             [http]\nlisten = \"127.0.0.1:9999\"\n",
        );
        let e = effective(&old, &new);
        assert_eq!(e.encoder.bitrate_kbps, 700);
        assert_eq!(e.http.listen, old.http.listen);
        assert_eq!(e.data_dir, old.data_dir);
        assert!(
            changed_keys(&e, &new)
                .iter()
                .all(|k| apply_kind(k) == Apply::Restart)
        );
    }
}

//! Reloading the configuration of a running node: SIGHUP, `sutantra config reload` and
//! `sutantra config set`.
//!
//! The file is read again with the command line's flags on top (the same resolution as at
//! start; the running node's `Live` in node.rs does it); an invalid file changes nothing and
//! the error says file, line and key. What changed is sorted into three kinds:
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

use crate::config::Config;
use serde_json::Value;
use std::collections::BTreeMap;

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
pub fn effective(old: &Config, new: &Config) -> Config {
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

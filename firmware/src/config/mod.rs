//! The node's configuration: one TOML file, defaults for everything, command-line overrides.
//!
//! Every setting has a default so `sutantra run` with no file runs the embedded default
//! (test pattern, 640x480 at 30 FPS, HTTP on 127.0.0.1:8080, data in `./sutantra-data`).
//! Errors name the file, the line and the key (`FILE:LINE: key: reason`), because an operator
//! fixing a board over a serial console has nothing else to go on.

// Fed from outside the node: no indexing, slicing or arithmetic that can panic (ARCHITECTURE.md,
// "A fault stays where it happened"); fuzzed by `fuzz/fuzz_targets/config_file.rs`.
#![deny(clippy::indexing_slicing, clippy::arithmetic_side_effects)]

pub mod board;
pub mod chain;
pub mod console;
pub mod control;
pub mod duration;
pub mod edit;
pub mod encoder;
pub mod gpio;
pub mod http;
pub mod publish;
pub mod reload;
pub mod source;
pub mod webrtc;

pub use chain::{AttestConfig, ChainConfig, check_rpc_url, parse_trust_level};
pub use console::ConsoleConfig;
pub use control::ControlConfig;
pub use encoder::EncoderConfig;
pub use gpio::{ButtonAction, GpioConfig};
pub use http::HttpConfig;
pub use publish::PublishTarget;
pub use source::SourceConfig;
pub use webrtc::{DEFAULT_STUN_SERVERS, WebRtcConfig};

use serde::Deserialize;
use std::path::{Path, PathBuf};
use sutantra_hal::camera::SourceSpec;

/// The whole configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Where the node keeps its state (keys, stores).
    pub data_dir: PathBuf,
    /// Board profile name (`sutantra boards`).
    pub board: Option<String>,
    /// The camera.
    pub source: SourceConfig,
    /// The VP8 encoder.
    pub encoder: EncoderConfig,
    /// The HTTP server (viewer page, WHEP, health, metrics).
    pub http: HttpConfig,
    /// WebRTC sessions.
    pub webrtc: WebRtcConfig,
    /// The chain this node follows as a light client (`[chain]`; empty `chain_id`: none).
    pub chain: ChainConfig,
    /// Stream attestations (`[attest]`; only with a chain).
    pub attest: AttestConfig,
    /// WHIP publish targets (`[[publish]]`, repeatable; `run --publish URL` adds more).
    pub publish: Vec<PublishTarget>,
    /// The status LED and the button (`[gpio]`; see src/ops/gpio.rs).
    pub gpio: GpioConfig,
    /// The control socket (`[control]`; `sutantra status`, `stream`, `viewers`, `logs`, ...).
    pub control: ControlConfig,
    /// The serial console hosted by the daemon (`[console]`; absent: none).
    pub console: Option<ConsoleConfig>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("sutantra-data"),
            board: None,
            source: SourceConfig::default(),
            encoder: EncoderConfig::default(),
            http: HttpConfig::default(),
            webrtc: WebRtcConfig::default(),
            chain: ChainConfig::default(),
            attest: AttestConfig::default(),
            publish: Vec::new(),
            gpio: GpioConfig::default(),
            control: ControlConfig::default(),
            console: None,
        }
    }
}

/// A configuration error that points at the place to fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}: {key}: {reason}")]
pub struct ConfigError {
    /// The file (or `<command line>`).
    pub file: String,
    /// 1-based line, 0 when not from a file.
    pub line: usize,
    /// Dotted key, e.g. `source.width`.
    pub key: String,
    /// What is wrong and what is accepted.
    pub reason: String,
}

impl Config {
    /// Reads and validates a TOML file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            file: file.clone(),
            line: 0,
            key: "-".into(),
            reason: format!("cannot read the file: {e}"),
        })?;
        Self::parse(&text, &file)
    }

    /// Parses and validates TOML text; `file` names it in errors.
    pub fn parse(text: &str, file: &str) -> Result<Self, ConfigError> {
        let cfg: Config = toml::from_str(text).map_err(|e| {
            let (line, key) = match e.span() {
                Some(span) => locate_span(text, span.start),
                None => (0, "-".to_string()),
            };
            ConfigError {
                file: file.into(),
                line,
                key,
                reason: e.message().trim().to_string(),
            }
        })?;
        cfg.validate().map_err(|(key, reason)| ConfigError {
            file: file.into(),
            line: find_key_line(text, &key),
            key,
            reason,
        })?;
        Ok(cfg)
    }

    /// Checks values that parse but cannot work. Returns `(dotted key, reason)`.
    pub fn validate(&self) -> Result<(), (String, String)> {
        let bad = |k: &str, r: String| Err((k.to_string(), r));
        let s = &self.source;
        match source::whep_upstream(&s.spec) {
            Some(Err(e)) => return bad("source.spec", e),
            Some(Ok(_)) => {}
            None => {
                if let Err(e) = s.spec.parse::<SourceSpec>() {
                    return bad("source.spec", e.to_string());
                }
            }
        }
        if s.upstream_token
            .as_deref()
            .is_some_and(|t| t.is_empty() || t.chars().any(|c| c.is_whitespace() || c.is_control()))
        {
            return bad(
                "source.upstream_token",
                "is empty or holds a space or a control character: give the token the upstream \
                 WHEP server expects, or remove the key"
                    .into(),
            );
        }
        if s.width < 64 || s.width > 4096 || !s.width.is_multiple_of(2) {
            return bad(
                "source.width",
                format!(
                    "{} is not usable: use an even width from 64 to 4096",
                    s.width
                ),
            );
        }
        if s.height < 32 || s.height > 2304 || !s.height.is_multiple_of(2) {
            return bad(
                "source.height",
                format!(
                    "{} is not usable: use an even height from 32 to 2304",
                    s.height
                ),
            );
        }
        if !(1..=120).contains(&s.fps) {
            return bad(
                "source.fps",
                format!("{} is not usable: use 1 to 120", s.fps),
            );
        }
        if let Err(e) = sutantra_hal::camera::Orientation::new(s.hflip, s.vflip, s.rotation) {
            return bad("source.rotation", e.to_string());
        }
        if !(2..=32).contains(&s.buffers) {
            return bad(
                "source.buffers",
                format!("{} buffers: use 2 to 32", s.buffers),
            );
        }
        if !(2..=64).contains(&s.frame_pool) {
            return bad(
                "source.frame_pool",
                format!("{} frames: use 2 to 64", s.frame_pool),
            );
        }
        let e = &self.encoder;
        if !(50..=20_000).contains(&e.bitrate_kbps) {
            return bad(
                "encoder.bitrate_kbps",
                format!("{} kbit/s: use 50 to 20000", e.bitrate_kbps),
            );
        }
        if !(50..=20_000).contains(&e.min_bitrate_kbps) {
            return bad(
                "encoder.min_bitrate_kbps",
                format!("{} kbit/s: use 50 to 20000", e.min_bitrate_kbps),
            );
        }
        if !(1..=100_000).contains(&e.keyframe_interval) {
            return bad(
                "encoder.keyframe_interval",
                format!("{} frames: use 1 to 100000", e.keyframe_interval),
            );
        }
        if !(-16..=16).contains(&e.cpu_used) {
            return bad(
                "encoder.cpu_used",
                format!(
                    "{}: use -16 to -1 for a fixed libvpx speed (e.g. -6; -16 is the fastest) \
                     or 0 to 16 to let libvpx adapt its speed to a CPU budget (higher is faster)",
                    e.cpu_used
                ),
            );
        }
        if e.static_threshold > 10_000 {
            return bad(
                "encoder.static_threshold",
                format!(
                    "{}: use 0 to 10000 (500 is the default; 0 or 1 turns it off)",
                    e.static_threshold
                ),
            );
        }
        if !(1..=8).contains(&e.threads) {
            return bad("encoder.threads", format!("{}: use 1 to 8", e.threads));
        }
        // One frame interval in ms is 1000 / fps; the hold must be shorter.
        if e.send_offset_ms.saturating_mul(u64::from(s.fps)) >= 1000 {
            return bad(
                "encoder.send_offset_ms",
                format!(
                    "{} ms: must be shorter than one frame interval ({:.1} ms at {} fps); \
                     0 sends each frame as soon as it is encoded",
                    e.send_offset_ms,
                    1000.0 / f64::from(s.fps.max(1)),
                    s.fps
                ),
            );
        }
        let h = &self.http;
        if !(1024..=1024 * 1024).contains(&h.max_body_bytes) {
            return bad(
                "http.max_body_bytes",
                format!("{}: use 1024 to 1048576", h.max_body_bytes),
            );
        }
        if h.token.as_deref().is_some_and(|t| t.trim().is_empty()) {
            return bad(
                "http.token",
                "empty token: remove the key to serve without a token".into(),
            );
        }
        if !(1..=4096).contains(&h.max_connections) {
            return bad(
                "http.max_connections",
                format!("{}: use 1 to 4096", h.max_connections),
            );
        }
        if !(1..=h.max_connections).contains(&h.max_connections_per_ip) {
            return bad(
                "http.max_connections_per_ip",
                format!(
                    "{}: use 1 to http.max_connections ({})",
                    h.max_connections_per_ip, h.max_connections
                ),
            );
        }
        for (key, ms) in [
            ("http.header_timeout_ms", h.header_timeout_ms),
            ("http.body_timeout_ms", h.body_timeout_ms),
            ("http.idle_timeout_ms", h.idle_timeout_ms),
        ] {
            if !(100..=600_000).contains(&ms) {
                return bad(key, format!("{ms} ms: use 100 to 600000"));
            }
        }
        if h.offers_per_s > 1000 {
            return bad(
                "http.offers_per_s",
                format!("{}: use 0 (no limit) to 1000", h.offers_per_s),
            );
        }
        if h.offers_per_s > 0 && !(1..=1000).contains(&h.offer_burst) {
            return bad(
                "http.offer_burst",
                format!("{}: use 1 to 1000", h.offer_burst),
            );
        }
        if !(1..=100).contains(&h.snapshot_quality) {
            return bad(
                "http.snapshot_quality",
                format!(
                    "{}: use 1 to 100 (JPEG quality; 80 is a good start)",
                    h.snapshot_quality
                ),
            );
        }
        if !(100..=600_000).contains(&h.snapshot_interval_ms) {
            return bad(
                "http.snapshot_interval_ms",
                format!("{} ms: use 100 to 600000", h.snapshot_interval_ms),
            );
        }
        for (i, origin) in h.cors_origins.iter().enumerate() {
            if let Err(r) = http::check_origin(origin) {
                return bad(&format!("http.cors_origins[{i}]"), r);
            }
        }
        match (&h.tls_cert, &h.tls_key) {
            (Some(_), None) => {
                return bad(
                    "http.tls_key",
                    "http.tls_cert is set without http.tls_key: set both (PEM files) or neither"
                        .into(),
                );
            }
            (None, Some(_)) => {
                return bad(
                    "http.tls_cert",
                    "http.tls_key is set without http.tls_cert: set both (PEM files) or neither"
                        .into(),
                );
            }
            _ => {}
        }
        if !h.listen.ip().is_loopback() && h.token.is_none() && !h.allow_anonymous {
            return bad(
                "http.listen",
                format!(
                    "{} is reachable from the network, and http.token is not set: anyone who \
                     can reach it could watch the camera. Set http.token = \"<a long random \
                     string>\" (viewers open http://HOST:PORT/#token=<it>), or set \
                     http.allow_anonymous = true to serve without a token on purpose",
                    h.listen
                ),
            );
        }
        let w = &self.webrtc;
        for (i, url) in w.ice_servers.iter().enumerate() {
            if let Err(r) = webrtc::parse_stun_url(url) {
                return bad(&format!("webrtc.ice_servers[{i}]"), r);
            }
        }
        if !(1..=256).contains(&w.max_viewers) {
            return bad(
                "webrtc.max_viewers",
                format!("{}: use 1 to 256", w.max_viewers),
            );
        }
        if !(1..=64).contains(&w.max_connecting) {
            return bad(
                "webrtc.max_connecting",
                format!("{}: use 1 to 64", w.max_connecting),
            );
        }
        if !(1000..=120_000).contains(&w.connect_timeout_ms) {
            return bad(
                "webrtc.connect_timeout_ms",
                format!("{} ms: use 1000 to 120000", w.connect_timeout_ms),
            );
        }
        if !(16..=65_536).contains(&w.viewer_queue_packets) {
            return bad(
                "webrtc.viewer_queue_packets",
                format!("{}: use 16 to 65536", w.viewer_queue_packets),
            );
        }
        if !(200..=1400).contains(&w.rtp_payload_bytes) {
            return bad(
                "webrtc.rtp_payload_bytes",
                format!(
                    "{}: use 200 to 1400 (1200 fits every path MTU)",
                    w.rtp_payload_bytes
                ),
            );
        }
        if (w.udp_port_min == 0) != (w.udp_port_max == 0) || w.udp_port_min > w.udp_port_max {
            return bad(
                "webrtc.udp_port_min",
                format!(
                    "range {}..{} is not valid: set both udp_port_min and udp_port_max \
                     (min <= max), or neither",
                    w.udp_port_min, w.udp_port_max
                ),
            );
        }
        if !(50..=10_000).contains(&w.gather_timeout_ms) {
            return bad(
                "webrtc.gather_timeout_ms",
                format!("{}: use 50 to 10000", w.gather_timeout_ms),
            );
        }
        self.validate_chain()?;
        gpio::validate(&self.gpio)?;
        console::validate(self.console.as_ref())?;
        publish::validate(&self.publish)
    }

    /// Checks `[chain]` and `[attest]`.
    fn validate_chain(&self) -> Result<(), (String, String)> {
        let bad = |k: &str, r: String| Err((k.to_string(), r));
        let c = &self.chain;
        if c.chain_id.len() > 50 || c.chain_id.chars().any(|ch| ch.is_whitespace()) {
            // CometBFT's own limit is 50 bytes (MaxChainIDLen).
            return bad(
                "chain.chain_id",
                format!(
                    "`{}`: use the chain's id, at most 50 characters, no spaces",
                    c.chain_id
                ),
            );
        }
        for (i, url) in c.rpc.iter().enumerate() {
            if let Err(r) = check_rpc_url(url) {
                return bad(&format!("chain.rpc[{i}]"), r);
            }
        }
        if c.enabled() {
            if c.rpc.is_empty() {
                return bad(
                    "chain.rpc",
                    "a chain needs at least one RPC URL (http://host:26657); the first is the \
                     primary, the others witnesses"
                        .into(),
                );
            }
            if c.trust_height == 0 {
                return bad(
                    "chain.trust_height",
                    "a chain needs a trust root: set trust_height and trust_hash to a header \
                     you trust (e.g. from a block explorer or your own full node)"
                        .into(),
                );
            }
            let hash_ok = hex::decode(c.trust_hash.trim()).is_ok_and(|h| h.len() == 32);
            if !hash_ok {
                return bad(
                    "chain.trust_hash",
                    format!(
                        "`{}`: use the 64 hex digits of the header hash at trust_height",
                        c.trust_hash
                    ),
                );
            }
        }
        if !(1..=36_500 * 86_400).contains(&c.trusting_period_s) {
            return bad(
                "chain.trusting_period_s",
                format!(
                    "{}: use seconds, e.g. 1209600 (two weeks); keep it below the chain's \
                     unbonding period",
                    c.trusting_period_s
                ),
            );
        }
        if c.clock_drift_s > 3_600 {
            return bad(
                "chain.clock_drift_s",
                format!("{}: use 0 to 3600 seconds", c.clock_drift_s),
            );
        }
        match parse_trust_level(&c.trust_level) {
            Err(r) => return bad("chain.trust_level", r),
            Ok(level) => {
                // The verifier's own checks (e.g. the largest denominator it computes with).
                let opts = sutantra_chain::light::VerifyOptions {
                    trust_threshold: level,
                    trusting_period: std::time::Duration::from_secs(c.trusting_period_s.max(1)),
                    clock_drift: std::time::Duration::from_secs(c.clock_drift_s),
                };
                if let Err(e) = opts.validate() {
                    return bad("chain.trust_level", format!("`{}`: {e}", c.trust_level));
                }
            }
        }
        if !(1..=1_000).contains(&c.headers_kept) {
            return bad(
                "chain.headers_kept",
                format!("{}: use 1 to 1000", c.headers_kept),
            );
        }
        if !(100..=3_600_000).contains(&c.poll_interval_ms) {
            return bad(
                "chain.poll_interval_ms",
                format!("{}: use 100 to 3600000", c.poll_interval_ms),
            );
        }
        if !(4_096..=256 * 1024 * 1024).contains(&c.max_response_bytes) {
            return bad(
                "chain.max_response_bytes",
                format!("{}: use 4096 to 268435456", c.max_response_bytes),
            );
        }
        if !(1..=10_000).contains(&c.max_validators) {
            return bad(
                "chain.max_validators",
                format!("{}: use 1 to 10000 (CometBFT's own cap)", c.max_validators),
            );
        }
        let a = &self.attest;
        if !(1_000..=3_600_000).contains(&a.segment_ms) {
            return bad(
                "attest.segment_ms",
                format!("{}: use 1000 to 3600000", a.segment_ms),
            );
        }
        if a.stream_id.is_empty()
            || a.stream_id.len() > 64
            || !a
                .stream_id
                .chars()
                .all(|ch| ch.is_ascii_alphanumeric() || "-_.:/".contains(ch))
        {
            return bad(
                "attest.stream_id",
                format!(
                    "`{}`: use 1 to 64 characters from A-Z a-z 0-9 - _ . : /",
                    a.stream_id
                ),
            );
        }
        if !(1..=1_000_000).contains(&a.outbox_capacity) {
            return bad(
                "attest.outbox_capacity",
                format!("{}: use 1 to 1000000", a.outbox_capacity),
            );
        }
        if !(10..=3_600_000).contains(&a.retry_min_ms) {
            return bad(
                "attest.retry_min_ms",
                format!("{}: use 10 to 3600000", a.retry_min_ms),
            );
        }
        if a.retry_max_ms < a.retry_min_ms || a.retry_max_ms > 3_600_000 {
            return bad(
                "attest.retry_max_ms",
                format!(
                    "{}: use retry_min_ms ({}) to 3600000",
                    a.retry_max_ms, a.retry_min_ms
                ),
            );
        }
        Ok(())
    }

    /// The parsed source spec (validated).
    pub fn source_spec(&self) -> SourceSpec {
        self.source.spec.parse().unwrap_or(SourceSpec::TestPattern)
    }
}

/// Line number (1-based) and dotted key at byte `offset` of a TOML text.
fn locate_span(text: &str, offset: usize) -> (usize, String) {
    let offset = offset.min(text.len());
    let line_no = text
        .get(..offset)
        .unwrap_or_default()
        .matches('\n')
        .count()
        .saturating_add(1);
    let mut section = String::new();
    for line in text.lines().take(line_no) {
        let t = line.trim();
        if t.starts_with('[') && t.ends_with(']') {
            section = t.trim_matches(|c| c == '[' || c == ']').trim().to_string();
        }
    }
    let line = text.lines().nth(line_no.saturating_sub(1)).unwrap_or("");
    // A table header (`[sourc]`, `[[publish]]`): the table is the key to fix.
    let header = line.trim().trim_start_matches('[');
    if header.len() < line.trim().len() {
        let name = header.split(']').next().unwrap_or("").trim();
        if !name.is_empty() {
            return (line_no, name.to_string());
        }
    }
    let key = line
        .split('=')
        .next()
        .map(str::trim)
        .filter(|k| !k.is_empty() && !k.starts_with('['))
        .unwrap_or("-");
    let key = if section.is_empty() || key == "-" {
        key.to_string()
    } else {
        format!("{section}.{key}")
    };
    (line_no, key)
}

/// The 1-based line where dotted `key` is set, or 0 when it is not in the text (a default).
fn find_key_line(text: &str, key: &str) -> usize {
    // `publish[i].key`: the i-th `[[publish]]` table.
    if let Some((index, leaf)) = key
        .strip_prefix("publish[")
        .and_then(|r| r.split_once("]."))
        .and_then(|(i, leaf)| Some((i.parse::<usize>().ok()?, leaf)))
    {
        return publish::find_line(text, index, leaf);
    }
    let key = key.split('[').next().unwrap_or(key);
    let (section, leaf) = key.rsplit_once('.').unwrap_or(("", key));
    let mut current = String::new();
    for (i, line) in text.lines().enumerate() {
        let t = line.trim();
        if t.starts_with('[') && t.ends_with(']') {
            current = t.trim_matches(|c| c == '[' || c == ']').trim().to_string();
            continue;
        }
        if current == section && t.split('=').next().map(str::trim) == Some(leaf) && t.contains('=')
        {
            return i.saturating_add(1);
        }
    }
    0
}

#[cfg(test)]
#[allow(clippy::indexing_slicing, clippy::arithmetic_side_effects)]
mod tests {
    use super::*;

    #[test]
    fn empty_file_is_the_embedded_default() {
        let c = Config::parse("", "c.toml").expect("default parses");
        assert_eq!(c.source.spec, "test-pattern");
        assert_eq!(
            (c.source.width, c.source.height, c.source.fps),
            (640, 480, 30)
        );
        assert_eq!(c.http.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(c.webrtc.ice_servers.len(), 4);
    }

    #[test]
    fn unknown_key_names_file_line_and_key() {
        let e = Config::parse("[source]\nwidth = 640\nwidht = 3\n", "node.toml")
            .expect_err("must be refused");
        assert_eq!(e.line, 3);
        assert_eq!(e.key, "source.widht");
        assert!(
            e.to_string().starts_with("node.toml:3: source.widht: "),
            "{e}"
        );
    }

    #[test]
    fn wrong_type_names_the_key() {
        let e = Config::parse("[encoder]\n\nbitrate_kbps = \"fast\"\n", "n.toml")
            .expect_err("must be refused");
        assert_eq!((e.line, e.key.as_str()), (3, "encoder.bitrate_kbps"));
    }

    #[test]
    fn bad_value_names_the_key_line() {
        let e = Config::parse("[source]\nfps = 30\nwidth = 641\n", "n.toml")
            .expect_err("must be refused");
        assert_eq!((e.line, e.key.as_str()), (3, "source.width"));
        assert!(e.reason.contains("even width"), "{}", e.reason);
    }

    #[test]
    fn static_threshold_defaults_to_the_measured_value_and_is_bounded() {
        let c = Config::parse("", "c.toml").expect("default parses");
        assert_eq!(c.encoder.static_threshold, 500);
        let c = Config::parse("[encoder]\nstatic_threshold = 0\n", "c.toml").expect("0 is off");
        assert_eq!(c.encoder.static_threshold, 0);
        assert_eq!(
            c.encoder.tuning().static_threshold,
            0,
            "what the encoder is given"
        );
        let e = Config::parse("[encoder]\n\nstatic_threshold = 20000\n", "n.toml")
            .expect_err("must be refused");
        assert_eq!((e.line, e.key.as_str()), (3, "encoder.static_threshold"));
        assert!(e.reason.contains("0 to 10000"), "{}", e.reason);
    }

    const CHAIN: &str = "[chain]\nchain_id = \"dockerchain\"\nrpc = [\"http://127.0.0.1:26657\"]\n\
        trust_height = 10\n\
        trust_hash = \"00ECDAC463C201ECD4BDBBAAE4A53A4C80291D4051FD69ED97F6420CE1388BFE\"\n";

    #[test]
    fn chain_and_attest_defaults() {
        let c = Config::parse("", "c.toml").expect("default parses");
        assert!(!c.chain.enabled());
        assert_eq!(c.chain.headers_kept, 8);
        assert_eq!(c.chain.trust_level(), (1, 3));
        assert_eq!(c.chain.trusting_period_s, 1_209_600);
        assert_eq!(c.attest.segment_ms, 10_000);
        assert_eq!(c.attest.outbox_capacity, 4096);
        let c = Config::parse(CHAIN, "c.toml").expect("chain parses");
        assert!(c.chain.enabled());
        assert_eq!(c.chain.trust_hash_bytes().len(), 32);
    }

    #[test]
    fn chain_needs_a_trust_root_and_an_rpc() {
        let e = Config::parse(
            "[chain]\nchain_id = \"x\"\nrpc = [\"http://h:1\"]\n",
            "n.toml",
        )
        .expect_err("no trust root");
        assert_eq!(e.key, "chain.trust_height");
        let e = Config::parse("[chain]\nchain_id = \"x\"\n", "n.toml").expect_err("no rpc");
        assert_eq!((e.key.as_str(), e.line), ("chain.rpc", 0));
        let text = CHAIN.replace("00ECDAC4", "zz");
        let e = Config::parse(&text, "n.toml").expect_err("bad hash");
        assert_eq!((e.key.as_str(), e.line), ("chain.trust_hash", 5));
    }

    #[test]
    fn bad_chain_and_attest_values_name_key_and_line() {
        let cases = [
            ("[chain]\nrpc = [\"tcp://x:26657\"]\n", "chain.rpc[0]", 2),
            ("[chain]\n\ntrust_level = \"1/4\"\n", "chain.trust_level", 3),
            ("[chain]\ntrust_level = \"2/1\"\n", "chain.trust_level", 2),
            ("[chain]\ntrust_level = \"x\"\n", "chain.trust_level", 2),
            ("[chain]\ntrust_level = \"7/17\"\n", "chain.trust_level", 2),
            ("[chain]\nheaders_kept = 0\n", "chain.headers_kept", 2),
            (
                "[chain]\nmax_validators = 10001\n",
                "chain.max_validators",
                2,
            ),
            (
                "[chain]\nmax_response_bytes = 10\n",
                "chain.max_response_bytes",
                2,
            ),
            (
                "[chain]\npoll_interval_ms = 5\n",
                "chain.poll_interval_ms",
                2,
            ),
            (
                "[chain]\ntrusting_period_s = 0\n",
                "chain.trusting_period_s",
                2,
            ),
            ("[attest]\nsegment_ms = 999\n", "attest.segment_ms", 2),
            ("[attest]\nstream_id = \"a b\"\n", "attest.stream_id", 2),
            (
                "[attest]\noutbox_capacity = 0\n",
                "attest.outbox_capacity",
                2,
            ),
            (
                "[attest]\nretry_min_ms = 5000\nretry_max_ms = 10\n",
                "attest.retry_max_ms",
                3,
            ),
            ("[attest]\nsegmnt_ms = 1000\n", "attest.segmnt_ms", 2),
            ("[chain]\ntrust_height = \"ten\"\n", "chain.trust_height", 2),
        ];
        for (text, key, line) in cases {
            let e = Config::parse(text, "n.toml").expect_err(text);
            assert_eq!((e.key.as_str(), e.line), (key, line), "{text}: {e}");
            assert!(
                e.to_string()
                    .starts_with(&format!("n.toml:{line}: {key}: ")),
                "{e}"
            );
        }
        assert_eq!(parse_trust_level("2/3"), Ok((2, 3)));
        assert_eq!(parse_trust_level("1/1"), Ok((1, 1)));
        assert!(parse_trust_level("1/0").is_err());
    }

    #[test]
    fn publish_targets_parse_and_bad_ones_name_table_and_line() {
        let c = Config::parse(
            "[[publish]]\nurl = \"http://127.0.0.1:1/whip\"\n\n[[publish]]\n\
             url = \"http://relay/whip\"\ntoken = \"t\"\nenabled = false\n",
            "n.toml",
        )
        .expect("two targets parse");
        assert_eq!(c.publish.len(), 2);
        assert!(c.publish[0].enabled && c.publish[0].token.is_none());
        assert!(!c.publish[1].enabled);
        assert_eq!(c.publish[1].token.as_deref(), Some("t"));
        let e = Config::parse(
            "[[publish]]\nurl = \"http://a/whip\"\n[[publish]]\nenabled = true\nurl = \"ftp://x\"\n",
            "n.toml",
        )
        .expect_err("bad url");
        assert!(
            e.to_string().starts_with("n.toml:5: publish[1].url: "),
            "{e}"
        );
        let e = Config::parse("[[publish]]\nurl = \"http://a/whip\"\nurll = 1\n", "n.toml")
            .expect_err("unknown key");
        assert_eq!(e.line, 3, "{e}");
        let e = Config::parse("[[publish]]\ntoken = \"x\"\n", "n.toml").expect_err("no url");
        assert_eq!(e.line, 1, "{e}");
    }

    #[test]
    fn bad_stun_url_is_reported() {
        let e = Config::parse("[webrtc]\nice_servers = [\"http://x\"]\n", "n.toml")
            .expect_err("must be refused");
        assert_eq!(e.key, "webrtc.ice_servers[0]");
        assert_eq!(e.line, 2);
    }
}

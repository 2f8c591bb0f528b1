//! WHIP publishing figures (`sutantra status`, `/metrics`) and the re-targeting that turns the
//! relays' estimates into the encoder's bitrate, written to [`MediaControl`].

use crate::media::control::MediaControl;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;

/// Publishing figures for `/metrics` and `status`, and the re-targeting that turns the relays'
/// estimates into the encoder's bitrate (written to [`MediaControl`]). No `Default`: figures
/// whose target reaches no encoder would re-target nothing.
#[derive(Debug)]
pub struct PublishStats {
    /// Sessions that connected, in total.
    pub sessions: AtomicU64,
    /// Attempts that failed (HTTP error, unreachable, never connected), in total.
    pub failures: AtomicU64,
    /// Where the target bitrate goes: the encode thread reads it there.
    control: Arc<MediaControl>,
    /// Lowest bitrate a relay's estimate may set, kbit/s.
    min_kbps: AtomicU32,
    /// Highest bitrate (the configured one), kbit/s.
    max_kbps: AtomicU32,
    /// Per target (a slot with an empty URL is free).
    targets: Mutex<Vec<TargetFigures>>,
}

/// One publish target's figures (`sutantra status`, `/metrics`).
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct TargetFigures {
    /// The WHIP endpoint.
    pub url: String,
    /// A session is connected now.
    pub connected: bool,
    /// The relay's latest bandwidth estimate (REMB), kbit/s.
    pub remb_kbps: Option<u32>,
    /// Our own estimate of the path to the relay (GCC on its TWCC feedback), kbit/s.
    pub twcc_kbps: Option<u32>,
    /// TWCC feedback packets the relay sent, in total.
    pub twcc_feedback: u64,
    /// Round-trip time from the relay's latest receiver report (RFC 3550 LSR/DLSR), ms.
    pub rtt_ms: Option<f64>,
    /// Fraction of packets lost, from the relay's latest receiver report (0..1).
    pub fraction_lost: Option<f64>,
    /// Packets lost in total, as the relay reports.
    pub packets_lost: Option<u64>,
    /// RTP bytes sent to the target (payload and the 12-byte fixed header; header extensions and
    /// SRTP's tag are not counted), in total.
    pub bytes_sent: u64,
    /// Bitrate actually sent over the last measuring window, kbit/s.
    pub sent_kbps: Option<u64>,
    #[serde(skip)]
    window: Option<(Instant, u64)>,
}

/// What a relay's receiver report says about the stream.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ReportFigures {
    /// Round-trip time, if the relay had a sender report to echo.
    pub rtt: Option<Duration>,
    /// Fraction lost since its previous report (0..1).
    pub fraction_lost: f64,
    /// Lost in total.
    pub packets_lost: u64,
}

impl PublishStats {
    /// Figures whose bitrate target goes to `control`.
    pub fn new(control: Arc<MediaControl>) -> Self {
        Self {
            sessions: AtomicU64::new(0),
            failures: AtomicU64::new(0),
            control,
            min_kbps: AtomicU32::new(0),
            max_kbps: AtomicU32::new(0),
            targets: Mutex::new(Vec::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<TargetFigures>> {
        self.targets.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A slot for target `url` (a freed one if any, so reloads never grow the list).
    pub(super) fn register(&self, url: &str) -> usize {
        let mut t = self.lock();
        let fresh = TargetFigures {
            url: url.to_string(),
            ..TargetFigures::default()
        };
        if let Some(i) = t.iter().position(|e| e.url.is_empty()) {
            t[i] = fresh;
            return i;
        }
        t.push(fresh);
        t.len() - 1
    }

    /// Target `index` was removed: its slot is freed and its estimate no longer counts.
    pub(super) fn unregister(&self, index: usize) {
        if let Some(t) = self.lock().get_mut(index) {
            *t = TargetFigures::default();
        }
        self.retarget();
    }

    /// The targets now.
    pub fn targets(&self) -> Vec<TargetFigures> {
        self.lock()
            .iter()
            .filter(|t| !t.url.is_empty())
            .cloned()
            .collect()
    }

    /// Target `index`'s relay sent a receiver report about the stream.
    pub(super) fn set_report(&self, index: usize, r: ReportFigures) {
        if let Some(t) = self.lock().get_mut(index) {
            if let Some(rtt) = r.rtt {
                t.rtt_ms = Some((rtt.as_secs_f64() * 10_000.0).round() / 10.0);
            }
            t.fraction_lost = Some(r.fraction_lost);
            t.packets_lost = Some(r.packets_lost);
        }
    }

    /// `bytes` were sent to target `index` at `now`; the bitrate is measured over windows of
    /// at least a second.
    pub(super) fn add_sent(&self, index: usize, bytes: usize, now: Instant) {
        if let Some(t) = self.lock().get_mut(index) {
            t.bytes_sent += bytes as u64;
            match t.window {
                Some((start, at)) if now.duration_since(start) >= Duration::from_secs(1) => {
                    let secs = now.duration_since(start).as_secs_f64();
                    t.sent_kbps = Some(((t.bytes_sent - at) as f64 * 8.0 / secs / 1000.0) as u64);
                    t.window = Some((now, t.bytes_sent));
                }
                Some(_) => {}
                None => t.window = Some((now, t.bytes_sent)),
            }
        }
    }

    /// Records whether target `index` is connected; a target that is not has no estimate.
    pub(super) fn set_connected(&self, index: usize, connected: bool) {
        let changed = {
            let mut t = self.lock();
            match t.get_mut(index) {
                Some(t) => {
                    t.connected = connected;
                    if !connected {
                        t.sent_kbps = None;
                        t.window = None;
                    }
                    let had = t.remb_kbps.take().is_some() | t.twcc_kbps.take().is_some();
                    !connected && had
                }
                None => false,
            }
        };
        if changed {
            self.retarget();
        }
    }

    /// The bitrate range the relays' estimates move in (kbit/s): the target becomes `max`, or
    /// the lowest current estimate within the range.
    pub fn set_range(&self, min: u32, max: u32) {
        self.min_kbps.store(min.min(max), Ordering::Relaxed);
        self.max_kbps.store(max, Ordering::Relaxed);
        self.control.set_target_bitrate(u64::from(max));
        self.retarget();
    }

    /// Records target `index`'s latest estimate from its TWCC feedback (GCC).
    pub(super) fn set_twcc(&self, index: usize, kbps: u32) {
        if let Some(t) = self.lock().get_mut(index) {
            t.twcc_kbps = Some(kbps);
        }
        self.retarget();
    }

    /// `n` more TWCC feedback packets from target `index`'s relay.
    pub(super) fn add_twcc_feedback(&self, index: usize, n: u64) {
        if let Some(t) = self.lock().get_mut(index) {
            t.twcc_feedback += n;
        }
    }

    /// The range the estimates move the encoder in, (min, max) kbit/s.
    pub(super) fn range(&self) -> (u32, u32) {
        (
            self.min_kbps.load(Ordering::Relaxed),
            self.max_kbps.load(Ordering::Relaxed),
        )
    }

    /// Records target `index`'s latest REMB.
    pub(super) fn set_estimate(&self, index: usize, kbps: u32) {
        if let Some(t) = self.lock().get_mut(index) {
            t.remb_kbps = Some(kbps);
        }
        self.retarget();
    }

    /// The target bitrate: the lowest estimate, clamped to the range; changes under 5 % are
    /// ignored so libvpx is not reconfigured for noise.
    pub(super) fn retarget(&self) {
        let (min, max) = (
            self.min_kbps.load(Ordering::Relaxed),
            self.max_kbps.load(Ordering::Relaxed),
        );
        if max == 0 {
            return;
        }
        // Each target's tighter estimate (the relay's REMB, our GCC on its TWCC), then the
        // lowest target: the one encode must fit every relay's path.
        let lowest = self
            .lock()
            .iter()
            .filter_map(|t| match (t.remb_kbps, t.twcc_kbps) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            })
            .min();
        let want = u64::from(lowest.map_or(max, |e| e.clamp(min, max)));
        let now = self.control.target_bitrate();
        let at_bound = want == u64::from(min) || want == u64::from(max);
        if want != now && (at_bound || want.abs_diff(now) * 20 > now) {
            self.control.set_target_bitrate(want);
            tracing::info!(
                from_kbps = now,
                to_kbps = want,
                "encoder target bitrate follows the relay's estimate"
            );
        }
    }

    /// Appends the `sutantra_publish_*` and `sutantra_encoder_target_bitrate_kbps` metrics.
    pub fn render(&self, out: &mut String) {
        let targets = self.targets();
        out.push_str(
            "# HELP sutantra_publish_connected 1 while the WHIP session to the target is \
             connected.\n# TYPE sutantra_publish_connected gauge\n",
        );
        let label_of = |url: &str| -> String {
            url.chars()
                .flat_map(|c| match c {
                    '"' => vec!['\\', '"'],
                    '\\' => vec!['\\', '\\'],
                    '\n' => vec!['\\', 'n'],
                    c => vec![c],
                })
                .collect()
        };
        for t in &targets {
            let _ = writeln!(
                out,
                "sutantra_publish_connected{{target=\"{}\"}} {}",
                label_of(&t.url),
                u8::from(t.connected)
            );
        }
        let mut per_target =
            |name: &str, kind: &str, help: &str, value: &dyn Fn(&TargetFigures) -> Option<f64>| {
                let _ = write!(
                    out,
                    "# HELP sutantra_{name} {help}\n# TYPE sutantra_{name} {kind}\n"
                );
                for t in &targets {
                    if let Some(v) = value(t) {
                        let _ = writeln!(
                            out,
                            "sutantra_{name}{{target=\"{}\"}} {v}",
                            label_of(&t.url)
                        );
                    }
                }
            };
        per_target(
            "publish_rtt_seconds",
            "gauge",
            "Round-trip time to the relay (RTCP receiver reports).",
            &|t| t.rtt_ms.map(|ms| ms / 1000.0),
        );
        per_target(
            "publish_fraction_lost",
            "gauge",
            "Fraction of packets the relay lost (its latest receiver report).",
            &|t| t.fraction_lost,
        );
        per_target(
            "publish_sent_bitrate_kbps",
            "gauge",
            "Bitrate sent to the relay, kbit/s.",
            &|t| t.sent_kbps.map(|k| k as f64),
        );
        per_target(
            "publish_bytes_sent_total",
            "counter",
            "RTP bytes sent to the relay.",
            &|t| Some(t.bytes_sent as f64),
        );
        per_target(
            "publish_remb_kbps",
            "gauge",
            "The relay's bandwidth estimate (REMB), kbit/s.",
            &|t| t.remb_kbps.map(f64::from),
        );
        per_target(
            "publish_twcc_feedback_total",
            "counter",
            "TWCC feedback packets from the relay.",
            &|t| Some(t.twcc_feedback as f64),
        );
        per_target(
            "publish_twcc_estimate_kbps",
            "gauge",
            "Our estimate of the path to the relay (GCC on its TWCC feedback), kbit/s.",
            &|t| t.twcc_kbps.map(f64::from),
        );
        let mut metric = |name: &str, kind: &str, help: &str, value: u64| {
            let _ = write!(
                out,
                "# HELP sutantra_{name} {help}\n# TYPE sutantra_{name} {kind}\nsutantra_{name} {value}\n"
            );
        };
        metric(
            "publish_targets",
            "gauge",
            "WHIP publish targets enabled.",
            targets.len() as u64,
        );
        metric(
            "publish_sessions_total",
            "counter",
            "WHIP publish sessions that connected.",
            self.sessions.load(Ordering::Relaxed),
        );
        metric(
            "publish_failures_total",
            "counter",
            "WHIP publish attempts that failed (HTTP error, unreachable, no connection).",
            self.failures.load(Ordering::Relaxed),
        );
        metric(
            "encoder_target_bitrate_kbps",
            "gauge",
            "The encoder's target bitrate.",
            self.control.target_bitrate(),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lowest_estimate_sets_the_bitrate_within_the_range() {
        let control = Arc::new(MediaControl::default());
        let s = PublishStats::new(control.clone());
        s.set_range(150, 1000);
        let (a, b) = (s.register("a"), s.register("b"));
        let target = || control.target_bitrate();
        assert_eq!(target(), 1000);
        s.set_connected(a, true);
        s.set_estimate(a, 600);
        assert_eq!(target(), 600);
        s.set_estimate(a, 610);
        assert_eq!(target(), 600, "under 5 %: ignored");
        s.set_connected(b, true);
        s.set_estimate(b, 20);
        assert_eq!(target(), 150, "clamped to the minimum");
        s.set_connected(b, false);
        assert_eq!(target(), 610, "a gone target's estimate no longer counts");
        s.set_estimate(a, 5000);
        assert_eq!(target(), 1000, "never above the configured bitrate");
    }

    #[test]
    fn metrics_escape_the_target_label() {
        let s = PublishStats::new(Arc::default());
        let i = s.register("http://h/w\"x");
        s.set_connected(i, true);
        let mut out = String::new();
        s.render(&mut out);
        assert!(
            out.contains("sutantra_publish_connected{target=\"http://h/w\\\"x\"} 1"),
            "{out}"
        );
        assert!(out.contains("sutantra_publish_sessions_total 0"));
    }
}

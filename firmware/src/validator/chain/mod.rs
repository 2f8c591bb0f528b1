//! Following a CometBFT chain as a light client.
//!
//! - [`rpc`]: the blocking JSON-RPC client (bounded bodies, errors name the URL);
//! - [`sync`]: the chain thread: trust root, skipping verification with the core's verifier,
//!   trusted state in the store, witness cross-checks, the halt on a conflict;
//! - [`persist`]: the trusted state's writes to the store on a budget (SD-card wear).
//!
//! This module owns [`ChainShared`], the little state the chain thread shares with the
//! attestation and submission threads: the newest verified header (the anchor of the next
//! attestation), the halted flag, and the stop/wake signal all three sleep on. The verification
//! itself is `sutantra_chain::light` (sans-I/O); here are the threads, the clock and the wire.

pub mod persist;
pub mod rpc;
pub mod sync;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use sutantra_chain::light::{Time, time_from_unix_nanos};

/// A header the light client verified: what an attestation is anchored to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Anchor {
    /// Block height.
    pub height: u64,
    /// Header hash (the block id).
    pub hash: [u8; 32],
    /// When the header leaves the trusting period (UNIX seconds): an anchor past it proves
    /// nothing (the validators that signed it may have unbonded), so it is not used.
    pub expires_unix_s: u64,
}

/// State shared by the chain, attestation and submission threads.
#[derive(Debug, Default)]
pub struct ChainShared {
    anchor: Mutex<Option<Anchor>>,
    halted: AtomicBool,
    stop: AtomicBool,
    signal: Mutex<u64>,
    wake: Condvar,
}

impl ChainShared {
    /// Fresh state: no anchor, not halted, running.
    pub fn new() -> Self {
        Self::default()
    }

    /// The anchor for a new attestation: the newest verified header, or `None` before the
    /// first one or while halted.
    pub fn anchor(&self) -> Option<Anchor> {
        if self.halted() {
            return None;
        }
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let anchor = *self.anchor.lock().unwrap_or_else(|p| p.into_inner());
        anchor.filter(|a| now < a.expires_unix_s)
    }

    /// Publishes a newly verified header.
    pub fn set_anchor(&self, anchor: Anchor) {
        *self.anchor.lock().unwrap_or_else(|p| p.into_inner()) = Some(anchor);
    }

    /// Attestations (and submissions) are stopped by a witness conflict.
    pub fn halted(&self) -> bool {
        self.halted.load(Ordering::SeqCst)
    }

    /// Sets the halted flag.
    pub fn set_halted(&self, halted: bool) {
        self.halted.store(halted, Ordering::SeqCst);
    }

    /// The node is shutting down.
    pub fn stopped(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }

    /// Asks every thread to stop and wakes them.
    pub fn stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
        self.notify();
    }

    /// Wakes the sleepers (a new attestation is waiting, or stop).
    pub fn notify(&self) {
        let mut g = self.signal.lock().unwrap_or_else(|p| p.into_inner());
        *g = g.wrapping_add(1);
        self.wake.notify_all();
    }

    /// Sleeps up to `d`, or until [`notify`](Self::notify) or [`stop`](Self::stop). Returns
    /// `true` when stopping.
    pub fn sleep(&self, d: Duration) -> bool {
        let g = self.signal.lock().unwrap_or_else(|p| p.into_inner());
        let seen = *g;
        if self.stopped() {
            return true;
        }
        let _ = self
            .wake
            .wait_timeout_while(g, d, |n| *n == seen && !self.stopped());
        self.stopped()
    }

    /// Sleeps until `deadline` (notifications do not end it early); `true` when stopping.
    pub fn sleep_until(&self, deadline: Instant) -> bool {
        loop {
            let now = Instant::now();
            if self.stopped() {
                return true;
            }
            if now >= deadline {
                return false;
            }
            self.sleep(deadline - now);
        }
    }
}

/// The system clock as UNIX seconds.
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The system clock as UNIX milliseconds.
pub fn unix_now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// The system clock as a CometBFT time: `now` for the verifier (the firmware reads the clock,
/// the core never does).
pub fn now_time() -> Result<Time, String> {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_err(|_| "the system clock is before 1970: set the time (NTP) first".to_string())?
        .as_nanos();
    let nanos =
        i128::try_from(nanos).map_err(|_| "the system clock is out of range".to_string())?;
    time_from_unix_nanos(nanos).map_err(|e| e.to_string())
}

/// `YYYY-MM-DDTHH:MM:SSZ` for UNIX seconds (UTC), for CLI output and logs.
pub fn rfc3339(unix_secs: u64) -> String {
    let days = unix_secs / 86_400;
    let rem = unix_secs % 86_400;
    let (h, m, s) = (rem / 3600, (rem % 3600) / 60, rem % 60);
    // Civil from days (Howard Hinnant's algorithm), for dates after 1970.
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let mo = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if mo <= 2 { y + 1 } else { y };
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{m:02}:{s:02}Z")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_formats_utc() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_684_332_773), "2023-05-17T14:12:53Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
    }

    #[test]
    fn halted_hides_the_anchor_and_stop_wakes_sleepers() {
        let s = std::sync::Arc::new(ChainShared::new());
        assert_eq!(s.anchor(), None);
        let a = Anchor {
            height: 5,
            hash: [1; 32],
            expires_unix_s: u64::MAX,
        };
        s.set_anchor(a);
        assert_eq!(s.anchor(), Some(a));
        s.set_anchor(Anchor {
            expires_unix_s: 1,
            ..a
        });
        assert_eq!(s.anchor(), None, "an expired anchor is not used");
        s.set_anchor(a);
        s.set_halted(true);
        assert_eq!(s.anchor(), None);
        let s2 = s.clone();
        let t = std::thread::spawn(move || s2.sleep(Duration::from_secs(30)));
        std::thread::sleep(Duration::from_millis(50));
        s.stop();
        assert!(t.join().expect("sleeper"));
        assert!(s.sleep_until(Instant::now() + Duration::from_secs(30)));
    }
}

//! Restart decisions for a failed camera or encoder: when to try again, and when a run of
//! errors means "restart" rather than "skip this frame".
//!
//! Sans-I/O like the rest of the crate: the caller passes `now` and does the reopening. The
//! firmware's capture thread asks [`Restarter::due`] between slate frames and reports each
//! attempt; the encode thread feeds every result to an [`ErrorRun`].

use std::time::Duration;

use crate::backoff::Backoff;

/// Capped exponential backoff between restart attempts, on a [`Backoff`] without jitter.
///
/// The first attempt after a failure is `min` later; each failed attempt doubles the wait up to
/// `max`; a success resets it. The cap is what bounds recovery time: a camera that returns is
/// picked up at most `max` (plus the time to open it) after it is back.
#[derive(Debug, Clone)]
pub struct Restarter {
    backoff: Backoff,
    next: Option<Duration>,
    attempts: u64,
}

impl Restarter {
    /// A restarter with waits from `min` to `max` (`max` is raised to `min` if lower).
    pub fn new(min: Duration, max: Duration) -> Self {
        Self {
            backoff: Backoff::new(min, max),
            next: None,
            attempts: 0,
        }
    }

    /// The thing failed at `now`: the first attempt is `min` from now.
    pub fn failed(&mut self, now: Duration) {
        self.backoff.reset();
        self.attempts = 0;
        self.next = Some(now + self.backoff.next_delay(0.0));
    }

    /// A restart on request at `now`: the first attempt is at once. It stands in for the `min`
    /// wait, so if it fails the next wait is `2 * min`, as after a failure's first attempt.
    pub fn restart_now(&mut self, now: Duration) {
        self.backoff.reset();
        self.backoff.next_delay(0.0);
        self.attempts = 0;
        self.next = Some(now);
    }

    /// Whether an attempt is due at `now` (never while nothing has failed).
    pub fn due(&self, now: Duration) -> bool {
        self.next.is_some_and(|at| now >= at)
    }

    /// When the next attempt is due, if one is pending.
    pub fn next_attempt(&self) -> Option<Duration> {
        self.next
    }

    /// An attempt at `now` failed: wait twice as long (capped) before the next. Returns the wait.
    pub fn attempt_failed(&mut self, now: Duration) -> Duration {
        self.attempts += 1;
        let wait = self.backoff.next_delay(0.0);
        self.next = Some(now + wait);
        wait
    }

    /// An attempt succeeded: nothing is pending any more.
    pub fn succeeded(&mut self) {
        self.next = None;
        self.backoff.reset();
        self.attempts = 0;
    }

    /// Failed attempts since the last failure.
    pub fn attempts(&self) -> u64 {
        self.attempts
    }
}

/// Counts consecutive errors; `threshold` in a row means the component is broken, not unlucky.
#[derive(Debug, Clone)]
pub struct ErrorRun {
    threshold: u32,
    run: u32,
}

impl ErrorRun {
    /// Restart after `threshold` consecutive errors (at least 1).
    pub fn new(threshold: u32) -> Self {
        Self {
            threshold: threshold.max(1),
            run: 0,
        }
    }

    /// An error: returns true when the run reaches the threshold (and starts counting anew).
    pub fn error(&mut self) -> bool {
        self.run += 1;
        if self.run >= self.threshold {
            self.run = 0;
            return true;
        }
        false
    }

    /// A success ends the run.
    pub fn ok(&mut self) {
        self.run = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn backoff_doubles_to_the_cap_and_resets() {
        let mut r = Restarter::new(250 * MS, 1000 * MS);
        assert!(!r.due(Duration::ZERO), "nothing failed yet");
        r.failed(10_000 * MS);
        assert!(!r.due(10_249 * MS));
        assert!(r.due(10_250 * MS));
        assert_eq!(r.attempt_failed(10_250 * MS), 500 * MS);
        assert_eq!(r.next_attempt(), Some(10_750 * MS));
        assert_eq!(r.attempt_failed(10_750 * MS), 1000 * MS);
        assert_eq!(r.attempt_failed(11_750 * MS), 1000 * MS, "capped");
        assert_eq!(r.attempts(), 3);
        r.succeeded();
        assert!(!r.due(Duration::from_secs(1_000_000)));
        assert_eq!(r.attempts(), 0);
        r.restart_now(30_000 * MS);
        assert!(r.due(30_000 * MS), "an operator's restart is at once");
        r.succeeded();
        // A new failure starts from the shortest wait again.
        r.failed(20_000 * MS);
        assert_eq!(r.next_attempt(), Some(20_250 * MS));
    }

    #[test]
    fn a_returning_thing_is_found_within_the_cap() {
        // Away from t=0 for 17 s, back at 17 s: found by the first attempt after 17 s, which is
        // at most `max` later.
        let mut r = Restarter::new(250 * MS, 1000 * MS);
        r.failed(Duration::ZERO);
        let back = 17_000 * MS;
        let now = loop {
            let now = r.next_attempt().expect("pending");
            if now >= back {
                break now;
            }
            r.attempt_failed(now);
        };
        assert!(
            now - back <= 1000 * MS,
            "found {:?} after return",
            now - back
        );
    }

    #[test]
    fn a_failed_restart_on_request_waits_twice_the_minimum() {
        let mut r = Restarter::new(250 * MS, 1000 * MS);
        r.restart_now(5_000 * MS);
        assert_eq!(r.attempt_failed(5_000 * MS), 500 * MS);
        assert_eq!(r.attempt_failed(5_500 * MS), 1000 * MS);
    }

    #[test]
    fn max_below_min_is_min() {
        let mut r = Restarter::new(500 * MS, 100 * MS);
        r.failed(Duration::ZERO);
        assert_eq!(r.attempt_failed(Duration::ZERO), 500 * MS);
    }

    #[test]
    fn error_runs() {
        let mut e = ErrorRun::new(3);
        assert!(!e.error());
        assert!(!e.error());
        e.ok();
        assert!(!e.error());
        assert!(!e.error());
        assert!(e.error(), "third in a row");
        assert!(!e.error(), "counting starts anew");
        assert!(ErrorRun::new(0).error(), "threshold 0 acts as 1");
    }
}

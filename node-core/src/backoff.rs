//! `Backoff`: capped exponential retry delays with one jitter rule, as pure logic.
//!
//! One type for every retry loop of the node (reopening a failed camera, WHIP publishing,
//! attestation submission): the step starts at `initial`, doubles after every delay handed out,
//! and stops at `max`; [`Backoff::reset`] goes back to `initial` after a success.
//!
//! Jitter rule (the only one): a backoff built with a jitter fraction `j` (0 to 1) turns the
//! current step `s` and a uniform random number `u` in `[0, 1)` into the delay
//!
//! ```text
//! delay = s * (1 - j * u)        so  s * (1 - j) <= delay <= s
//! ```
//!
//! Jitter only ever shortens a delay: `max` is the longest wait there is, and a peer that failed
//! at the same moment retries somewhere in the last `j` of the step. `j = 0` gives the plain
//! doubling sequence (`u` is then ignored).
//!
//! No clock and no random number generator: the caller draws `u` (e.g. `rand::random::<f64>()`)
//! and does the waiting, so tests pass fixed numbers. A `u` outside `[0, 1)` is clamped into it
//! (NaN counts as 0).

use std::time::Duration;

/// Capped exponential backoff with a jitter fraction; see the [module docs](self) for the rule.
#[derive(Debug, Clone, PartialEq)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
    jitter: f64,
    step: Duration,
}

impl Backoff {
    /// Delays from `initial`, doubling up to `max` (`max` is raised to `initial` if lower), with
    /// no jitter.
    pub fn new(initial: Duration, max: Duration) -> Self {
        Self {
            initial,
            max: max.max(initial),
            jitter: 0.0,
            step: initial,
        }
    }

    /// The same backoff with jitter fraction `fraction`: each delay is drawn from
    /// `[step * (1 - fraction), step]`. Clamped to `0..=1` (NaN counts as 0).
    #[must_use]
    pub fn with_jitter(mut self, fraction: f64) -> Self {
        self.jitter = if fraction.is_nan() {
            0.0
        } else {
            fraction.clamp(0.0, 1.0)
        };
        self
    }

    /// The delay before the next attempt, jittered by `u` (uniform in `[0, 1)`), then doubles
    /// the step (capped at `max`).
    pub fn next_delay(&mut self, u: f64) -> Duration {
        let step = self.step;
        self.step = step.saturating_mul(2).min(self.max);
        if self.jitter == 0.0 {
            return step;
        }
        let u = if u.is_nan() {
            0.0
        } else {
            u.clamp(0.0, 1.0 - f64::EPSILON)
        };
        step.mul_f64(1.0 - self.jitter * u)
    }

    /// Back to the first step (after a success).
    pub fn reset(&mut self) {
        self.step = self.initial;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    fn delays(b: &mut Backoff, u: f64, n: usize) -> Vec<Duration> {
        (0..n).map(|_| b.next_delay(u)).collect()
    }

    #[test]
    fn doubles_to_the_cap_and_resets() {
        let mut b = Backoff::new(250 * MS, 1000 * MS);
        assert_eq!(
            delays(&mut b, 0.7, 5),
            [250 * MS, 500 * MS, 1000 * MS, 1000 * MS, 1000 * MS],
            "no jitter: u is ignored"
        );
        b.reset();
        assert_eq!(b.next_delay(0.0), 250 * MS);
    }

    #[test]
    fn max_below_initial_is_initial() {
        let mut b = Backoff::new(500 * MS, 100 * MS);
        assert_eq!(delays(&mut b, 0.0, 3), [500 * MS; 3]);
    }

    #[test]
    fn jitter_shortens_within_the_fraction_and_never_exceeds_the_step() {
        // The attestation submitter's rule: 1 s doubling to 60 s, drawn from the upper half.
        let mut lo = Backoff::new(1000 * MS, 60_000 * MS).with_jitter(0.5);
        let mut hi = lo.clone();
        let mut mid = lo.clone();
        for step in [1000u32, 2000, 4000, 8000, 16_000, 32_000, 60_000, 60_000] {
            let step = step * MS;
            assert_eq!(hi.next_delay(0.0), step, "u = 0: the whole step");
            assert_eq!(mid.next_delay(0.5), step.mul_f64(0.75));
            let shortest = lo.next_delay(1.0);
            assert!(
                shortest >= step / 2 && shortest < step,
                "{shortest:?} of {step:?}"
            );
        }
    }

    #[test]
    fn out_of_range_inputs_are_clamped() {
        let mut b = Backoff::new(1000 * MS, 1000 * MS).with_jitter(0.2);
        assert_eq!(b.next_delay(f64::NAN), 1000 * MS);
        assert_eq!(b.next_delay(-3.0), 1000 * MS);
        assert!(b.next_delay(7.0) >= 800 * MS);
        let mut nan = Backoff::new(1000 * MS, 1000 * MS).with_jitter(f64::NAN);
        assert_eq!(
            nan.next_delay(0.5),
            1000 * MS,
            "a NaN fraction is no jitter"
        );
        let mut over = Backoff::new(1000 * MS, 1000 * MS).with_jitter(2.0);
        assert_eq!(over.next_delay(0.5), 500 * MS, "a fraction over 1 is 1");
        let mut full = Backoff::new(1000 * MS, 1000 * MS).with_jitter(1.0);
        assert!(full.next_delay(0.999_999) < 10 * MS);
    }

    #[test]
    fn huge_steps_saturate_instead_of_overflowing() {
        let mut b = Backoff::new(Duration::MAX / 3, Duration::MAX);
        for _ in 0..4 {
            b.next_delay(0.0);
        }
        assert_eq!(b.next_delay(0.0), Duration::MAX);
    }
}

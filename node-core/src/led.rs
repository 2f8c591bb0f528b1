//! The status LED's blink patterns and the button's press detection, on synthetic time.
//!
//! Sans-I/O like the rest of the core: [`LedDriver::poll`] says which level the LED should
//! have at `now` and when that next changes, and [`ButtonDetector::update`] turns raw button
//! samples taken at `now` into debounced [`ButtonEvent`]s. The firmware's GPIO thread owns the
//! pins and the clock and calls these.
//!
//! Patterns (one period each, repeated; the pattern restarts from its beginning, LED on, when
//! the state changes so that it reads cleanly from the first blink):
//!
//! | state | pattern | period |
//! |---|---|---|
//! | [`LedState::Booting`] | fast blink at 4 Hz: 125 ms on, 125 ms off | 250 ms |
//! | [`LedState::Streaming`] | on, with a 100 ms off-blip every 2 s | 2 s |
//! | [`LedState::NoCamera`] | 2 short blinks (150 ms on, 150 ms off), then dark | 1.5 s |
//! | [`LedState::NoNetwork`] | 3 short blinks (150 ms on, 150 ms off), then dark | 2.1 s |
//! | [`LedState::Error`] | slow blink at 1 Hz: 500 ms on, 500 ms off | 1 s |
//!
//! The blink counts differ so that they can be told apart by counting, and the dark pause after
//! them (1.05 s) is much longer than the gap between blinks (150 ms).

use std::time::Duration;

/// What the node is doing, as the LED shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LedState {
    /// Starting: no frame sent yet.
    Booting,
    /// Frames flow to viewers (or are ready for them).
    Streaming,
    /// The camera failed or is being reopened.
    NoCamera,
    /// No network interface has an address (other than loopback).
    NoNetwork,
    /// Something is wrong that needs an operator (encoder errors, a stalled pipeline).
    Error,
}

impl LedState {
    /// Every state, for tables and tests.
    pub const ALL: [LedState; 5] = [
        LedState::Booting,
        LedState::Streaming,
        LedState::NoCamera,
        LedState::NoNetwork,
        LedState::Error,
    ];

    /// One period of the state's pattern: `(on, milliseconds)` segments, starting on, levels
    /// alternating.
    pub fn pattern(self) -> &'static [(bool, u32)] {
        match self {
            LedState::Booting => &[(true, 125), (false, 125)],
            LedState::Streaming => &[(true, 1900), (false, 100)],
            LedState::NoCamera => &[(true, 150), (false, 150), (true, 150), (false, 1050)],
            LedState::NoNetwork => &[
                (true, 150),
                (false, 150),
                (true, 150),
                (false, 150),
                (true, 150),
                (false, 1050),
            ],
            LedState::Error => &[(true, 500), (false, 500)],
        }
    }

    /// The length of one period of the pattern.
    pub fn period(self) -> Duration {
        Duration::from_millis(self.pattern().iter().map(|s| u64::from(s.1)).sum())
    }

    /// Short lowercase name (`booting`, `streaming`, `no-camera`, `no-network`, `error`).
    pub fn name(self) -> &'static str {
        match self {
            LedState::Booting => "booting",
            LedState::Streaming => "streaming",
            LedState::NoCamera => "no-camera",
            LedState::NoNetwork => "no-network",
            LedState::Error => "error",
        }
    }
}

/// Plays the pattern of the current [`LedState`] against `now`.
#[derive(Debug, Clone)]
pub struct LedDriver {
    state: LedState,
    /// When the current pattern started.
    since: Duration,
}

impl LedDriver {
    /// A driver showing `state` from `now`.
    pub fn new(state: LedState, now: Duration) -> Self {
        Self { state, since: now }
    }

    /// The state shown.
    pub fn state(&self) -> LedState {
        self.state
    }

    /// Shows `state` from `now`. A different state restarts its pattern from the beginning; the
    /// same state keeps its phase. Returns whether the state changed.
    pub fn set_state(&mut self, state: LedState, now: Duration) -> bool {
        if state == self.state {
            return false;
        }
        self.state = state;
        self.since = now;
        true
    }

    /// The LED level at `now` and the time (absolute, on the same clock as `now`, always later
    /// than `now`) of the next change of level. A `now` before the pattern started reads as its
    /// start.
    pub fn poll(&self, now: Duration) -> (bool, Duration) {
        let pattern = self.state.pattern();
        let period_ns = self.state.period().as_nanos().max(1);
        let elapsed = now.saturating_sub(self.since);
        let mut phase = elapsed.as_nanos() % period_ns;
        for &(level, ms) in pattern {
            let len = u128::from(ms) * 1_000_000;
            if phase < len {
                let left = u64::try_from(len - phase).unwrap_or(u64::MAX);
                return (level, now.max(self.since) + Duration::from_nanos(left));
            }
            phase -= len;
        }
        // Unreachable with a non-empty pattern whose lengths sum to the period.
        (false, now + Duration::from_millis(100))
    }
}

/// A debounced button gesture.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ButtonEvent {
    /// Pressed and released before the long-press threshold (reported on release).
    ShortPress,
    /// Held for the long-press threshold (reported once, as the threshold is crossed, while
    /// still held).
    LongPress,
}

/// Timing of [`ButtonDetector`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ButtonTiming {
    /// A level must stay this long before it counts (contact chatter is shorter).
    pub debounce: Duration,
    /// Held at least this long is a long press.
    pub long_press: Duration,
}

impl Default for ButtonTiming {
    fn default() -> Self {
        Self {
            debounce: Duration::from_millis(30),
            long_press: Duration::from_secs(2),
        }
    }
}

/// Turns raw button samples into [`ButtonEvent`]s.
///
/// A new raw level counts once it has held for `debounce`; the press is timed from the raw edge
/// that started it. A long press fires once when the threshold is crossed while held; its
/// release then reports nothing. The detector starts released, so a button held at start-up
/// counts as pressed from its first sample.
#[derive(Debug, Clone)]
pub struct ButtonDetector {
    timing: ButtonTiming,
    /// The last raw level and when it was first seen.
    raw: bool,
    raw_since: Duration,
    /// The debounced level.
    pressed: bool,
    /// When the debounced press began (its raw edge).
    press_start: Duration,
    long_fired: bool,
}

impl ButtonDetector {
    /// A detector, released.
    pub fn new(timing: ButtonTiming) -> Self {
        Self {
            timing,
            raw: false,
            raw_since: Duration::ZERO,
            pressed: false,
            press_start: Duration::ZERO,
            long_fired: false,
        }
    }

    /// The debounced level.
    pub fn is_pressed(&self) -> bool {
        self.pressed
    }

    /// Feeds one raw sample (`pressed` at `now`; samples in time order) and returns the
    /// gesture it completes, if any.
    pub fn update(&mut self, now: Duration, pressed: bool) -> Option<ButtonEvent> {
        if pressed != self.raw {
            self.raw = pressed;
            self.raw_since = now;
        }
        if self.raw != self.pressed && now.saturating_sub(self.raw_since) >= self.timing.debounce {
            self.pressed = self.raw;
            if self.pressed {
                self.press_start = self.raw_since;
                self.long_fired = false;
            } else if !self.long_fired {
                return Some(ButtonEvent::ShortPress);
            }
        }
        if self.pressed
            && !self.long_fired
            && now.saturating_sub(self.press_start) >= self.timing.long_press
        {
            self.long_fired = true;
            return Some(ButtonEvent::LongPress);
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// The transitions a driver produces from `from` until `until`, stepping at its own
    /// next-change times (as the firmware does).
    fn transitions(d: &LedDriver, from: Duration, until: Duration) -> Vec<(u64, bool)> {
        let mut out = Vec::new();
        let mut now = from;
        let mut last = None;
        while now < until {
            let (level, next) = d.poll(now);
            assert!(next > now, "the next change is in the future");
            if last != Some(level) {
                out.push((now.as_millis() as u64, level));
                last = Some(level);
            }
            now = next;
        }
        out
    }

    /// The transitions a pattern should give over `periods` periods from `t0`.
    fn expected(state: LedState, t0: u64, periods: usize) -> Vec<(u64, bool)> {
        let mut out = Vec::new();
        let mut t = t0;
        for _ in 0..periods {
            for &(level, len) in state.pattern() {
                out.push((t, level));
                t += u64::from(len);
            }
        }
        out
    }

    #[test]
    fn every_state_plays_its_pattern_over_several_periods() {
        for state in LedState::ALL {
            let d = LedDriver::new(state, ms(1000));
            let periods = 3;
            let end = ms(1000) + state.period() * periods as u32;
            assert_eq!(
                transitions(&d, ms(1000), end),
                expected(state, 1000, periods),
                "{state:?}"
            );
        }
    }

    #[test]
    fn documented_patterns() {
        assert_eq!(LedState::Booting.period(), ms(250), "4 Hz");
        assert_eq!(LedState::Error.period(), ms(1000), "1 Hz");
        assert_eq!(LedState::Streaming.period(), ms(2000));
        let blinks = |s: LedState| s.pattern().iter().filter(|p| p.0).count();
        assert_eq!(blinks(LedState::NoCamera), 2);
        assert_eq!(blinks(LedState::NoNetwork), 3);
        for s in LedState::ALL {
            let p = s.pattern();
            assert!(p[0].0, "{s:?} starts on");
            assert!(p.windows(2).all(|w| w[0].0 != w[1].0), "{s:?} alternates");
        }
        // Every pattern differs from every other.
        for a in LedState::ALL {
            for b in LedState::ALL {
                assert_eq!(a == b, a.pattern() == b.pattern(), "{a:?} vs {b:?}");
            }
        }
    }

    #[test]
    fn polling_mid_segment_gives_the_rest_of_it() {
        let d = LedDriver::new(LedState::Error, ms(0));
        assert_eq!(d.poll(ms(0)), (true, ms(500)));
        assert_eq!(d.poll(ms(499)), (true, ms(500)));
        assert_eq!(d.poll(ms(500)), (false, ms(1000)));
        assert_eq!(d.poll(ms(2750)), (false, ms(3000)));
        // Before the start reads as the start.
        let d = LedDriver::new(LedState::Booting, ms(100));
        assert_eq!(d.poll(ms(50)), (true, ms(225)));
    }

    #[test]
    fn a_state_change_restarts_the_pattern_and_the_same_state_keeps_its_phase() {
        let mut d = LedDriver::new(LedState::Streaming, ms(0));
        assert!(!d.set_state(LedState::Streaming, ms(1950)));
        assert_eq!(d.poll(ms(1950)), (false, ms(2000)), "phase kept");
        assert!(d.set_state(LedState::NoNetwork, ms(1950)));
        assert_eq!(d.state(), LedState::NoNetwork);
        assert_eq!(
            transitions(&d, ms(1950), ms(1950) + LedState::NoNetwork.period() * 2),
            expected(LedState::NoNetwork, 1950, 2)
        );
        assert!(d.set_state(LedState::Error, ms(5000)));
        assert_eq!(
            d.poll(ms(5000)),
            (true, ms(5500)),
            "starts on, from the top"
        );
    }

    /// Feeds `(at, level)` samples every `step` ms from 0 to `end` (level from the last
    /// scripted change) and returns the events with their times.
    fn run(
        timing: ButtonTiming,
        changes: &[(u64, bool)],
        end: u64,
        step: u64,
    ) -> Vec<(u64, ButtonEvent)> {
        let mut d = ButtonDetector::new(timing);
        let mut out = Vec::new();
        let mut t = 0;
        while t <= end {
            let level = changes
                .iter()
                .take_while(|c| c.0 <= t)
                .last()
                .is_some_and(|c| c.1);
            if let Some(e) = d.update(ms(t), level) {
                out.push((t, e));
            }
            t += step;
        }
        out
    }

    #[test]
    fn a_short_press_reports_on_release() {
        let events = run(
            ButtonTiming::default(),
            &[(100, true), (400, false)],
            1000,
            10,
        );
        assert_eq!(events, vec![(430, ButtonEvent::ShortPress)]);
    }

    #[test]
    fn chatter_shorter_than_the_debounce_is_ignored() {
        // Contact bounce: 5-20 ms blips, never 30 ms stable.
        let events = run(
            ButtonTiming::default(),
            &[
                (100, true),
                (110, false),
                (120, true),
                (125, false),
                (140, true),
                (160, false),
            ],
            1000,
            5,
        );
        assert_eq!(events, vec![]);
    }

    #[test]
    fn a_bouncy_press_counts_once() {
        // Bounces on both edges around a real 500 ms press.
        let events = run(
            ButtonTiming::default(),
            &[
                (100, true),
                (105, false),
                (110, true),
                (610, false),
                (615, true),
                (620, false),
            ],
            1500,
            5,
        );
        assert_eq!(events, vec![(650, ButtonEvent::ShortPress)]);
    }

    #[test]
    fn a_long_press_fires_once_while_held_and_not_on_release() {
        let events = run(
            ButtonTiming::default(),
            &[(100, true), (3000, false)],
            4000,
            10,
        );
        // Timed from the raw edge at 100 ms: the threshold is crossed at 2100 ms.
        assert_eq!(events, vec![(2100, ButtonEvent::LongPress)]);
    }

    #[test]
    fn held_forever_fires_once() {
        let events = run(ButtonTiming::default(), &[(0, true)], 60_000, 10);
        assert_eq!(events, vec![(2000, ButtonEvent::LongPress)]);
    }

    #[test]
    fn the_threshold_is_configurable_and_presses_repeat() {
        let timing = ButtonTiming {
            debounce: ms(20),
            long_press: ms(500),
        };
        let events = run(
            timing,
            &[
                (0, true),
                (300, false),
                (1000, true),
                (1700, false),
                (2000, true),
                (2100, false),
            ],
            3000,
            10,
        );
        assert_eq!(
            events,
            vec![
                (320, ButtonEvent::ShortPress),
                (1500, ButtonEvent::LongPress),
                (2120, ButtonEvent::ShortPress),
            ]
        );
    }
}

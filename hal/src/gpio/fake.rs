//! Fakes for GPIO tests (`fake` feature, `cfg(test)`).
//!
//! Time is synthetic: a [`FakeTime`] handle the test moves forward and the fakes read.
//! - [`FakeLed`] records every transition (time, level) in a shared [`LedLog`] the test keeps;
//!   it can be told to fail its next `set`.
//! - [`FakeButton`] plays a script of `(from, pressed)` levels in time order; `assert_done`
//!   checks that the whole script was read (embedded-hal-mock style), so a test that never
//!   reached a step fails instead of passing vacuously.

use super::{Button, ErrorKind, GpioError, StatusLed};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A synthetic clock shared by a test and its fakes (nanoseconds since the test's origin).
#[derive(Debug, Clone, Default)]
pub struct FakeTime(Arc<AtomicU64>);

impl FakeTime {
    /// A clock at zero.
    pub fn new() -> Self {
        Self::default()
    }

    /// Moves the clock to `now`.
    pub fn set(&self, now: Duration) {
        let ns = u64::try_from(now.as_nanos()).unwrap_or(u64::MAX);
        self.0.store(ns, Ordering::SeqCst);
    }

    /// The clock's time.
    pub fn now(&self) -> Duration {
        Duration::from_nanos(self.0.load(Ordering::SeqCst))
    }
}

/// The shared record of a [`FakeLed`]: its transitions, oldest first.
#[derive(Debug, Clone, Default)]
pub struct LedLog(Arc<Mutex<LogInner>>);

#[derive(Debug, Default)]
struct LogInner {
    level: Option<bool>,
    transitions: Vec<(Duration, bool)>,
    writes: usize,
    fail_next: Option<ErrorKind>,
}

impl LedLog {
    /// Every change of level as `(time, on)`; the first write counts as a change.
    pub fn transitions(&self) -> Vec<(Duration, bool)> {
        self.0
            .lock()
            .map(|g| g.transitions.clone())
            .unwrap_or_default()
    }

    /// The level now (`None`: never set).
    pub fn level(&self) -> Option<bool> {
        self.0.lock().ok().and_then(|g| g.level)
    }

    /// Calls to `set`, including those that did not change the level.
    pub fn writes(&self) -> usize {
        self.0.lock().map(|g| g.writes).unwrap_or(0)
    }

    /// Forgets the recorded transitions (the level stays).
    pub fn clear(&self) {
        if let Ok(mut g) = self.0.lock() {
            g.transitions.clear();
        }
    }

    /// Makes the next `set` fail with `kind`.
    pub fn fail_next(&self, kind: ErrorKind) {
        if let Ok(mut g) = self.0.lock() {
            g.fail_next = Some(kind);
        }
    }
}

/// A status LED that records its transitions with the [`FakeTime`] they happened at.
#[derive(Debug)]
pub struct FakeLed {
    time: FakeTime,
    log: LedLog,
}

impl FakeLed {
    /// A fake LED reading `time`; the returned [`LedLog`] is the test's view of it.
    pub fn new(time: FakeTime) -> (Self, LedLog) {
        let log = LedLog::default();
        (
            Self {
                time,
                log: log.clone(),
            },
            log,
        )
    }
}

impl StatusLed for FakeLed {
    fn set(&mut self, on: bool) -> Result<(), GpioError> {
        let now = self.time.now();
        let mut g = self
            .log
            .0
            .lock()
            .map_err(|_| GpioError::new(ErrorKind::Other, "fake LED log poisoned"))?;
        if let Some(kind) = g.fail_next.take() {
            return Err(GpioError::new(kind, "scripted fake LED failure"));
        }
        g.writes += 1;
        if g.level != Some(on) {
            g.level = Some(on);
            g.transitions.push((now, on));
        }
        Ok(())
    }
}

/// A button that plays a script of levels against a [`FakeTime`].
#[derive(Debug)]
pub struct FakeButton {
    time: FakeTime,
    script: Arc<Mutex<Script>>,
}

#[derive(Debug, Default)]
struct Script {
    /// `(from, pressed)`, in time order.
    steps: Vec<(Duration, bool)>,
    /// Index of the furthest step read so far (+1); 0: none.
    reached: usize,
    fail_next: Option<ErrorKind>,
}

/// The test's handle on a [`FakeButton`]'s script.
#[derive(Debug, Clone)]
pub struct ButtonScript(Arc<Mutex<Script>>);

impl FakeButton {
    /// A button released until the first step; each `(from, pressed)` holds from `from` until
    /// the next step. Steps must be in time order (out-of-order steps are sorted).
    pub fn scripted(time: FakeTime, steps: &[(Duration, bool)]) -> (Self, ButtonScript) {
        let mut steps = steps.to_vec();
        steps.sort_by_key(|s| s.0);
        let script = Arc::new(Mutex::new(Script {
            steps,
            ..Script::default()
        }));
        (
            Self {
                time,
                script: script.clone(),
            },
            ButtonScript(script),
        )
    }

    /// A button that is never pressed.
    pub fn released(time: FakeTime) -> (Self, ButtonScript) {
        Self::scripted(time, &[])
    }
}

impl ButtonScript {
    /// Appends a step (e.g. a press scripted while the test runs).
    pub fn push(&self, from: Duration, pressed: bool) {
        if let Ok(mut g) = self.0.lock() {
            g.steps.push((from, pressed));
            g.steps.sort_by_key(|s| s.0);
        }
    }

    /// Makes the next read fail with `kind`.
    pub fn fail_next(&self, kind: ErrorKind) {
        if let Ok(mut g) = self.0.lock() {
            g.fail_next = Some(kind);
        }
    }

    /// Panics (a test assertion) unless every step of the script was read at least once.
    #[track_caller]
    pub fn assert_done(&self) {
        let (reached, total) = self
            .0
            .lock()
            .map(|g| (g.reached, g.steps.len()))
            .unwrap_or((0, 1));
        assert_eq!(
            reached, total,
            "the fake button's script was not played to its end: {reached} of {total} steps read"
        );
    }
}

impl Button for FakeButton {
    fn is_pressed(&mut self) -> Result<bool, GpioError> {
        let now = self.time.now();
        let mut g = self
            .script
            .lock()
            .map_err(|_| GpioError::new(ErrorKind::Other, "fake button script poisoned"))?;
        if let Some(kind) = g.fail_next.take() {
            return Err(GpioError::new(kind, "scripted fake button failure"));
        }
        let upto = g.steps.iter().take_while(|s| s.0 <= now).count();
        g.reached = g.reached.max(upto);
        Ok(upto.checked_sub(1).is_some_and(|i| g.steps[i].1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: fn(u64) -> Duration = Duration::from_millis;

    #[test]
    fn led_records_transitions_with_their_time() {
        let t = FakeTime::new();
        let (mut led, log) = FakeLed::new(t.clone());
        led.set(true).expect("set");
        t.set(MS(100));
        led.set(true).expect("set");
        t.set(MS(250));
        led.set(false).expect("set");
        assert_eq!(log.transitions(), vec![(MS(0), true), (MS(250), false)]);
        assert_eq!(log.writes(), 3);
        log.fail_next(ErrorKind::PinBusy);
        let e = led.set(true).expect_err("scripted failure");
        assert_eq!(e.kind(), ErrorKind::PinBusy);
        assert_eq!(log.level(), Some(false));
    }

    #[test]
    fn button_plays_its_script_and_checks_it_was_used() {
        let t = FakeTime::new();
        let (mut b, script) = FakeButton::scripted(t.clone(), &[(MS(10), true), (MS(50), false)]);
        // Through the blanket `impl Button for &mut T`.
        fn read<B: Button>(mut b: B) -> bool {
            b.is_pressed().expect("read")
        }
        assert!(!read(&mut b));
        t.set(MS(10));
        assert!(b.is_pressed().expect("read"));
        t.set(MS(60));
        assert!(!b.is_pressed().expect("read"));
        script.assert_done();
    }

    #[test]
    #[should_panic(expected = "not played to its end")]
    fn an_unused_script_step_fails_the_test() {
        let t = FakeTime::new();
        let (mut b, script) = FakeButton::scripted(t.clone(), &[(MS(10), true)]);
        assert!(!b.is_pressed().expect("read"));
        script.assert_done();
    }
}

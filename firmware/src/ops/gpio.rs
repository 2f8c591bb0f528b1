//! The status LED and the button: a small blocking thread that shows the node's state on the
//! LED and turns a long press into a keyframe or a stream restart.
//!
//! The thread is a thin loop around [`GpioLogic::step`], which takes `now` (time since the
//! thread started) and returns when it next needs to run: the next LED change, the next
//! button sample (every [`BUTTON_POLL`]), or the next look at the node's counters. Tests drive
//! `step` with synthetic time and the HAL's fakes, so they never sleep.
//!
//! What the LED shows comes from [`led_state`], a pure function of what the thread observed
//! (in this order; the first that applies wins):
//! 1. `error`: the encoder reported an error in the last [`ENCODE_ERROR_WINDOW`], no frame was
//!    sent [`BOOT_GRACE`] after start, or frames stopped for [`STALL`] while the camera reports
//!    running and the stream is not paused on purpose (a stuck pipeline);
//! 2. `no camera`: the camera failed or is being reopened (source state `error`/`restarting`);
//! 3. `booting`: no frame sent yet;
//! 4. `no network`: no interface has an address other than loopback and link-local (checked
//!    every [`NETWORK_CHECK`]);
//! 5. `streaming`: otherwise (also while an operator has paused the stream).
//!
//! The patterns themselves are in `sutantra_core::led`. A long press runs `[gpio] button_action`
//! through the same hooks as `sutantra stream keyframe` and `sutantra reboot-stream`; a short
//! press does nothing (it is logged at debug level), so a brushed button never disturbs the
//! stream.

use crate::config::{ButtonAction, GpioConfig};
use crate::media::control::MediaControl;
use crate::stats::Stats;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use sutantra_core::led::{ButtonDetector, ButtonEvent, ButtonTiming, LedDriver, LedState};
use sutantra_hal::gpio::{Button, StatusLed};

/// How often the button is sampled.
pub const BUTTON_POLL: Duration = Duration::from_millis(10);
/// How often the node's counters are looked at when nothing else wakes the thread.
pub const OBSERVE_EVERY: Duration = Duration::from_millis(100);
/// How often the network interfaces are checked.
pub const NETWORK_CHECK: Duration = Duration::from_secs(5);
/// An encode error shows `error` for this long.
pub const ENCODE_ERROR_WINDOW: Duration = Duration::from_secs(10);
/// No frame sent this long after start shows `error`.
pub const BOOT_GRACE: Duration = Duration::from_secs(30);
/// Frames stopped this long (camera running, stream not paused) shows `error`.
pub const STALL: Duration = Duration::from_secs(10);

/// Whether this build drives real pins (the `rpi` feature, on Linux).
pub const BUILT_WITH_GPIO: bool = cfg!(all(target_os = "linux", feature = "rpi"));

/// What `[gpio]` and the board profile ask for, in this build.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    /// GPIO is off (not asked for, or `enabled = false`).
    Off,
    /// Asked for, but this build cannot: the warning to log.
    Unsupported(String),
    /// Enabled, but neither the section nor the board names a pin: the warning to log.
    NoPins(String),
    /// Drive these BCM pins.
    Pins {
        /// The status LED.
        led: Option<u8>,
        /// The button.
        button: Option<u8>,
    },
}

/// Resolves `[gpio]` against the board profile (`board`, if known) for a build with or without
/// GPIO support. Pure: the caller logs the warnings.
pub fn plan(g: &GpioConfig, board: Option<&sutantra_boards::BoardProfile>, built: bool) -> Plan {
    let led = g.led_pin.or(board.and_then(|b| b.led_pin));
    let button = g.button_pin.or(board.and_then(|b| b.button_pin));
    let explicit = g.enabled == Some(true)
        || (g.enabled.is_none() && (g.led_pin.is_some() || g.button_pin.is_some()));
    if !built {
        return if explicit {
            Plan::Unsupported(
                "[gpio] asks for the status LED / button, but this build of sutantra has no GPIO \
                 support (built without the `rpi` feature): install a Raspberry Pi build \
                 (cross/build.sh builds arm targets with it) or set [gpio] enabled = false"
                    .into(),
            )
        } else {
            Plan::Off
        };
    }
    let enabled = g.enabled.unwrap_or(led.is_some() || button.is_some());
    if !enabled {
        return Plan::Off;
    }
    if led.is_none() && button.is_none() {
        return Plan::NoPins(format!(
            "[gpio] is enabled but the board profile {} has no status LED or button pin: set \
             [gpio] led_pin and/or button_pin (BCM numbers), or set enabled = false",
            board.map(|b| b.name).unwrap_or("(none)")
        ));
    }
    Plan::Pins { led, button }
}

/// What the thread observed, for [`led_state`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Observed {
    /// Time since the node (the thread) started.
    pub since_start: Duration,
    /// Frames sent so far.
    pub frames_sent: u64,
    /// The camera reports running (not `error` or `restarting`).
    pub source_ok: bool,
    /// How long frames have not moved while the camera runs and the stream is not paused.
    pub stalled_for: Duration,
    /// The encoder reported an error within [`ENCODE_ERROR_WINDOW`].
    pub encode_error_recent: bool,
    /// Some interface has an address other than loopback and link-local.
    pub network_up: bool,
}

/// The state the LED shows (see the module header for the rules and their order).
pub fn led_state(o: &Observed) -> LedState {
    let never_sent = o.frames_sent == 0;
    if o.encode_error_recent
        || (never_sent && o.since_start >= BOOT_GRACE)
        || (!never_sent && o.source_ok && o.stalled_for >= STALL)
    {
        return LedState::Error;
    }
    if !o.source_ok {
        return LedState::NoCamera;
    }
    if never_sent {
        return LedState::Booting;
    }
    if !o.network_up {
        return LedState::NoNetwork;
    }
    LedState::Streaming
}

/// Whether any interface has an address other than loopback and link-local. An interface list
/// that cannot be read counts as up (no false alarm from a failed syscall).
pub fn network_up() -> bool {
    match if_addrs::get_if_addrs() {
        Ok(list) => list.iter().any(|i| usable_address(i.ip())),
        Err(_) => true,
    }
}

/// An address that can reach beyond this link: not loopback, not link-local (169.254/16,
/// fe80::/10, which a cable alone gives without DHCP).
fn usable_address(ip: std::net::IpAddr) -> bool {
    match ip {
        std::net::IpAddr::V4(a) => !a.is_loopback() && !a.is_link_local(),
        std::net::IpAddr::V6(a) => !a.is_loopback() && (a.segments()[0] & 0xffc0) != 0xfe80,
    }
}

/// The LED, the button and the rules between them and the node; driven by [`GpioLogic::step`].
pub struct GpioLogic {
    led: Option<Box<dyn StatusLed>>,
    button: Option<Box<dyn Button>>,
    stats: Arc<Stats>,
    control: Arc<MediaControl>,
    action: ButtonAction,
    network: Box<dyn FnMut() -> bool + Send>,
    driver: LedDriver,
    detector: ButtonDetector,
    led_level: Option<bool>,
    next_led: Duration,
    network_up: bool,
    next_network: Duration,
    frames_seen: u64,
    frames_moved_at: Duration,
    encode_errors_seen: u64,
    encode_error_at: Option<Duration>,
    led_failures: u64,
    button_failures: u64,
}

impl std::fmt::Debug for GpioLogic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GpioLogic")
            .field("led", &self.led.is_some())
            .field("button", &self.button.is_some())
            .field("action", &self.action)
            .field("state", &self.driver.state())
            .finish_non_exhaustive()
    }
}

impl GpioLogic {
    /// Logic for `led` and `button` (either may be absent) watching `stats`; `network` says
    /// whether the network is up (normally [`network_up`]); a long press shorter than
    /// `long_press` is a tap.
    pub fn new(
        led: Option<Box<dyn StatusLed>>,
        button: Option<Box<dyn Button>>,
        stats: Arc<Stats>,
        control: Arc<MediaControl>,
        action: ButtonAction,
        long_press: Duration,
        network: Box<dyn FnMut() -> bool + Send>,
    ) -> Self {
        Self {
            led,
            button,
            stats,
            control,
            action,
            network,
            driver: LedDriver::new(LedState::Booting, Duration::ZERO),
            detector: ButtonDetector::new(ButtonTiming {
                long_press,
                ..ButtonTiming::default()
            }),
            led_level: None,
            next_led: Duration::ZERO,
            network_up: true,
            next_network: Duration::ZERO,
            frames_seen: 0,
            frames_moved_at: Duration::ZERO,
            encode_errors_seen: 0,
            encode_error_at: None,
            led_failures: 0,
            button_failures: 0,
        }
    }

    /// The state the LED shows now.
    #[cfg(test)]
    pub fn state(&self) -> LedState {
        self.driver.state()
    }

    /// Runs everything due at `now` (time since start, never going back) and returns when it
    /// should run next.
    pub fn step(&mut self, now: Duration) -> Duration {
        if now >= self.next_network {
            self.network_up = (self.network)();
            self.next_network = now + NETWORK_CHECK;
        }
        let observed = self.observe(now);
        let state = led_state(&observed);
        if self.driver.set_state(state, now) {
            tracing::info!(state = state.name(), "status LED");
            self.next_led = now;
        }
        if self.led.is_some() && now >= self.next_led {
            let (level, next) = self.driver.poll(now);
            self.set_led(level);
            self.next_led = next;
        }
        if self.button.is_some() {
            self.sample_button(now);
        }
        let mut wake = (now + OBSERVE_EVERY).min(self.next_network);
        if self.led.is_some() {
            wake = wake.min(self.next_led);
        }
        if self.button.is_some() {
            wake = wake.min(now + BUTTON_POLL);
        }
        wake
    }

    /// Turns the LED off (at shutdown).
    pub fn shutdown(&mut self) {
        self.set_led(false);
    }

    fn observe(&mut self, now: Duration) -> Observed {
        let s = &self.stats;
        let frames = s.frames_sent.load(Ordering::Relaxed);
        let errors = s.encode_errors.load(Ordering::Relaxed);
        let source_ok = !matches!(s.source_state(), "error" | "restarting");
        // The stall clock runs only while frames should flow.
        if frames != self.frames_seen || !source_ok || self.control.paused() {
            self.frames_seen = frames;
            self.frames_moved_at = now;
        }
        if errors != self.encode_errors_seen {
            self.encode_errors_seen = errors;
            self.encode_error_at = Some(now);
        }
        Observed {
            since_start: now,
            frames_sent: frames,
            source_ok,
            stalled_for: now.saturating_sub(self.frames_moved_at),
            encode_error_recent: self
                .encode_error_at
                .is_some_and(|t| now.saturating_sub(t) < ENCODE_ERROR_WINDOW),
            network_up: self.network_up,
        }
    }

    fn set_led(&mut self, level: bool) {
        let Some(led) = self.led.as_mut() else {
            return;
        };
        if self.led_level == Some(level) {
            return;
        }
        match led.set(level) {
            Ok(()) => self.led_level = Some(level),
            Err(e) => {
                if self.led_failures == 0 {
                    tracing::warn!(error = %e, "cannot switch the status LED (retrying quietly)");
                }
                self.led_failures += 1;
            }
        }
    }

    fn sample_button(&mut self, now: Duration) {
        let Some(button) = self.button.as_mut() else {
            return;
        };
        let pressed = match button.is_pressed() {
            Ok(p) => p,
            Err(e) => {
                if self.button_failures == 0 {
                    tracing::warn!(error = %e, "cannot read the button (retrying quietly)");
                }
                self.button_failures += 1;
                return;
            }
        };
        match self.detector.update(now, pressed) {
            Some(ButtonEvent::LongPress) => self.long_press(),
            Some(ButtonEvent::ShortPress) => {
                tracing::debug!("button tapped (a long press acts; a tap does nothing)");
            }
            None => {}
        }
    }

    fn long_press(&self) {
        let ctl = &self.control;
        match self.action {
            ButtonAction::Keyframe => {
                ctl.request_keyframe();
                tracing::info!("keyframe requested by the button");
            }
            ButtonAction::RestartStream => {
                // As `sutantra reboot-stream`: reopen the camera, then a clean picture.
                ctl.request_restart();
                ctl.request_keyframe();
                tracing::info!("stream restart requested by the button");
            }
        }
    }
}

/// The running GPIO thread.
#[derive(Debug)]
pub struct GpioThread {
    stop: Arc<AtomicBool>,
    handle: JoinHandle<()>,
}

impl GpioThread {
    /// Runs `logic` on its own thread until [`GpioThread::stop`].
    pub fn spawn(mut logic: GpioLogic) -> std::io::Result<Self> {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let handle = std::thread::Builder::new()
            .name("gpio".into())
            .spawn(move || {
                let origin = Instant::now();
                while !flag.load(Ordering::SeqCst) {
                    let now = origin.elapsed();
                    let wake = logic.step(now);
                    let now = origin.elapsed();
                    if wake > now {
                        std::thread::sleep((wake - now).min(OBSERVE_EVERY));
                    }
                }
                logic.shutdown();
            })?;
        Ok(Self { stop, handle })
    }

    /// Stops the thread (within about [`OBSERVE_EVERY`]) with the LED off.
    pub fn stop(self) {
        self.stop.store(true, Ordering::SeqCst);
        if self.handle.join().is_err() {
            tracing::warn!("the GPIO thread panicked");
        }
    }
}

/// Starts the GPIO thread as `[gpio]` and the board profile ask, or logs why not. `None`: no
/// GPIO (off, unsupported in this build, or no pin could be opened).
pub fn start(
    cfg: &crate::config::Config,
    stats: Arc<Stats>,
    control: Arc<MediaControl>,
) -> Option<GpioThread> {
    let board = cfg.board.as_deref().and_then(sutantra_boards::find);
    let (led_pin, button_pin) = match plan(&cfg.gpio, board, BUILT_WITH_GPIO) {
        Plan::Off => return None,
        Plan::Unsupported(msg) | Plan::NoPins(msg) => {
            tracing::warn!("{msg}");
            return None;
        }
        Plan::Pins { led, button } => (led, button),
    };
    let (led, button) = open_pins(led_pin, button_pin);
    if led.is_none() && button.is_none() {
        return None;
    }
    tracing::info!(
        led_pin = led.as_ref().and(led_pin),
        button_pin = button.as_ref().and(button_pin),
        long_press_ms = cfg.gpio.long_press_ms,
        action = ?cfg.gpio.button_action,
        "status LED and button"
    );
    let logic = GpioLogic::new(
        led,
        button,
        stats,
        control,
        cfg.gpio.button_action,
        Duration::from_millis(cfg.gpio.long_press_ms),
        Box::new(network_up),
    );
    match GpioThread::spawn(logic) {
        Ok(t) => Some(t),
        Err(e) => {
            tracing::warn!(error = %e, "cannot start the GPIO thread; running without the status LED");
            None
        }
    }
}

type Pins = (Option<Box<dyn StatusLed>>, Option<Box<dyn Button>>);

/// Opens the pins; a pin that fails is logged (with what to do) and left out.
#[cfg(all(target_os = "linux", feature = "rpi"))]
fn open_pins(led: Option<u8>, button: Option<u8>) -> Pins {
    use sutantra_hal::gpio::rpi::{RpiButton, RpiLed};
    let led = led.and_then(|p| match RpiLed::open(p) {
        Ok(l) => Some(Box::new(l) as Box<dyn StatusLed>),
        Err(e) => {
            tracing::warn!(error = %e, "no status LED");
            None
        }
    });
    let button = button.and_then(|p| match RpiButton::open(p) {
        Ok(b) => Some(Box::new(b) as Box<dyn Button>),
        Err(e) => {
            tracing::warn!(error = %e, "no button");
            None
        }
    });
    (led, button)
}

/// Without GPIO support [`plan`] never asks for pins.
#[cfg(not(all(target_os = "linux", feature = "rpi")))]
fn open_pins(_led: Option<u8>, _button: Option<u8>) -> Pins {
    (None, None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;
    use sutantra_hal::gpio::fake::{ButtonScript, FakeButton, FakeLed, FakeTime, LedLog};

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    struct Rig {
        time: FakeTime,
        log: LedLog,
        script: ButtonScript,
        stats: Arc<Stats>,
        control: Arc<MediaControl>,
        net: Arc<Mutex<bool>>,
        logic: GpioLogic,
        now: Duration,
    }

    fn rig(action: ButtonAction, presses: &[(Duration, bool)]) -> Rig {
        let time = FakeTime::new();
        let (led, log) = FakeLed::new(time.clone());
        let (button, script) = FakeButton::scripted(time.clone(), presses);
        let stats = Arc::new(Stats::new());
        let control = Arc::new(MediaControl::default());
        let net = Arc::new(Mutex::new(true));
        let up = net.clone();
        let logic = GpioLogic::new(
            Some(Box::new(led)),
            Some(Box::new(button)),
            stats.clone(),
            control.clone(),
            action,
            ms(2000),
            Box::new(move || up.lock().map(|g| *g).unwrap_or(true)),
        );
        Rig {
            time,
            log,
            script,
            stats,
            control,
            net,
            logic,
            now: Duration::ZERO,
        }
    }

    impl Rig {
        /// Steps the logic at the times it asks for until `until`.
        fn run_until(&mut self, until: Duration) {
            while self.now < until {
                self.time.set(self.now);
                let wake = self.logic.step(self.now);
                assert!(wake > self.now, "step asks to run again later");
                self.now = wake.min(until);
            }
        }

        /// Frames flowing: one more frame sent at every step of `until`.
        fn stream_until(&mut self, until: Duration) {
            while self.now < until {
                self.stats.frames_sent.fetch_add(1, Ordering::Relaxed);
                self.time.set(self.now);
                let wake = self.logic.step(self.now);
                self.now = wake.min(until);
            }
        }
    }

    /// The transitions `state`'s pattern gives over `periods` periods from `t0`.
    fn pattern_from(state: LedState, t0: Duration, periods: u32) -> Vec<(Duration, bool)> {
        let mut out = Vec::new();
        let mut t = t0;
        for _ in 0..periods {
            for &(level, len) in state.pattern() {
                out.push((t, level));
                t += ms(u64::from(len));
            }
        }
        out
    }

    /// Sets the node up with `enter` (frames already flowing unless it says otherwise), runs
    /// the GPIO logic for three periods of `state`'s pattern and checks the LED's transitions.
    fn check_pattern(state: LedState, enter: impl FnOnce(&mut Rig), stream: bool) {
        let mut r = rig(ButtonAction::Keyframe, &[]);
        r.stats.frames_sent.store(1, Ordering::Relaxed);
        enter(&mut r);
        let end = state.period() * 3;
        if stream {
            r.stream_until(end);
        } else {
            r.run_until(end);
        }
        assert_eq!(r.logic.state(), state);
        assert_eq!(
            r.log.transitions(),
            pattern_from(state, Duration::ZERO, 3),
            "{state:?}"
        );
    }

    #[test]
    fn a_state_change_restarts_the_pattern() {
        let mut r = rig(ButtonAction::Keyframe, &[]);
        r.stats.frames_sent.store(1, Ordering::Relaxed);
        r.stream_until(ms(1950));
        assert_eq!(r.logic.state(), LedState::Streaming);
        assert_eq!(r.log.level(), Some(false), "in the off-blip");
        r.stats.set_source_state("error");
        let t0 = r.now;
        r.run_until(t0 + LedState::NoCamera.period() * 2);
        let after: Vec<_> = r
            .log
            .transitions()
            .into_iter()
            .filter(|t| t.0 >= t0)
            .collect();
        assert_eq!(after, pattern_from(LedState::NoCamera, t0, 2));
    }

    #[test]
    fn booting_blinks_fast_until_the_first_frame() {
        let mut r = rig(ButtonAction::Keyframe, &[]);
        r.run_until(LedState::Booting.period() * 4);
        assert_eq!(r.logic.state(), LedState::Booting);
        assert_eq!(
            r.log.transitions(),
            pattern_from(LedState::Booting, Duration::ZERO, 4)
        );
    }

    #[test]
    fn streaming_is_on_with_a_blip() {
        check_pattern(LedState::Streaming, |_| {}, true);
    }

    #[test]
    fn a_failed_camera_shows_no_camera() {
        check_pattern(
            LedState::NoCamera,
            |r| r.stats.set_source_state("restarting"),
            false,
        );
    }

    #[test]
    fn no_address_shows_no_network_within_a_check() {
        let mut r = rig(ButtonAction::Keyframe, &[]);
        r.stats.frames_sent.store(1, Ordering::Relaxed);
        r.stream_until(ms(100));
        assert_eq!(r.logic.state(), LedState::Streaming);
        *r.net.lock().expect("net") = false;
        r.stream_until(NETWORK_CHECK - ms(5));
        assert_eq!(r.logic.state(), LedState::Streaming, "not before the check");
        r.stream_until(NETWORK_CHECK + ms(5));
        assert_eq!(
            r.logic.state(),
            LedState::NoNetwork,
            "seen at the next check"
        );
        check_pattern(
            LedState::NoNetwork,
            |r| *r.net.lock().expect("net") = false,
            true,
        );
    }

    #[test]
    fn encode_errors_show_error_then_clear() {
        check_pattern(
            LedState::Error,
            |r| {
                r.stats.encode_errors.fetch_add(1, Ordering::Relaxed);
            },
            true,
        );
        let mut r = rig(ButtonAction::Keyframe, &[]);
        r.stats.frames_sent.store(1, Ordering::Relaxed);
        r.stats.encode_errors.store(3, Ordering::Relaxed);
        r.stream_until(ms(500));
        assert_eq!(r.logic.state(), LedState::Error);
        r.stream_until(ENCODE_ERROR_WINDOW + ms(200));
        assert_eq!(r.logic.state(), LedState::Streaming);
    }

    #[test]
    fn a_stalled_pipeline_or_no_frame_after_boot_shows_error() {
        let mut r = rig(ButtonAction::Keyframe, &[]);
        r.stats.frames_sent.store(1, Ordering::Relaxed);
        r.stream_until(ms(1000));
        r.run_until(ms(1000) + STALL - ms(200));
        assert_eq!(r.logic.state(), LedState::Streaming);
        r.run_until(ms(1000) + STALL + ms(200));
        assert_eq!(r.logic.state(), LedState::Error);
        // Paused on purpose: no stall.
        let mut r = rig(ButtonAction::Keyframe, &[]);
        r.stats.frames_sent.store(1, Ordering::Relaxed);
        r.control.set_paused(true);
        r.run_until(STALL * 2);
        assert_eq!(r.logic.state(), LedState::Streaming);
        // Never a frame.
        let mut r = rig(ButtonAction::Keyframe, &[]);
        r.run_until(BOOT_GRACE + ms(100));
        assert_eq!(r.logic.state(), LedState::Error);
    }

    #[test]
    fn a_long_press_requests_a_keyframe() {
        let mut r = rig(
            ButtonAction::Keyframe,
            &[(ms(500), true), (ms(3000), false)],
        );
        r.run_until(ms(2400));
        assert!(!r.control.take_keyframe(), "not before the threshold");
        r.run_until(ms(2600));
        assert!(r.control.take_keyframe(), "fires while still held");
        assert!(!r.control.take_restart());
        r.run_until(ms(5000));
        assert!(!r.control.take_keyframe(), "once, not again on release");
        r.script.assert_done();
    }

    #[test]
    fn a_long_press_can_restart_the_stream() {
        let mut r = rig(
            ButtonAction::RestartStream,
            &[(ms(100), true), (ms(2500), false)],
        );
        r.run_until(ms(3000));
        assert!(r.control.take_restart());
        assert!(
            r.control.take_keyframe(),
            "a clean picture after the restart"
        );
        r.script.assert_done();
    }

    #[test]
    fn a_tap_or_chatter_does_nothing() {
        let mut r = rig(
            ButtonAction::RestartStream,
            &[
                (ms(100), true),
                (ms(400), false),
                (ms(1000), true),
                (ms(1010), false),
                (ms(1020), true),
                (ms(1025), false),
            ],
        );
        r.run_until(ms(4000));
        assert!(!r.control.take_restart());
        assert!(!r.control.take_keyframe());
        r.script.assert_done();
    }

    #[test]
    fn hardware_errors_are_survived() {
        let mut r = rig(ButtonAction::Keyframe, &[(ms(100), true)]);
        r.log.fail_next(sutantra_hal::gpio::ErrorKind::Other);
        r.script.fail_next(sutantra_hal::gpio::ErrorKind::Other);
        r.run_until(ms(2500));
        assert!(r.control.take_keyframe());
        assert!(!r.log.transitions().is_empty(), "the LED recovers");
        r.logic.shutdown();
        assert_eq!(r.log.level(), Some(false), "dark at shutdown");
    }

    #[test]
    fn the_thread_runs_the_logic_and_leaves_the_led_dark() {
        let time = FakeTime::new();
        let (led, log) = FakeLed::new(time.clone());
        let stats = Arc::new(Stats::new());
        let logic = GpioLogic::new(
            Some(Box::new(led)),
            None,
            stats,
            Arc::new(MediaControl::default()),
            ButtonAction::Keyframe,
            ms(2000),
            Box::new(|| true),
        );
        let thread = GpioThread::spawn(logic).expect("spawn");
        let deadline = Instant::now() + Duration::from_secs(5);
        while log.writes() == 0 && Instant::now() < deadline {
            std::thread::sleep(ms(5));
        }
        assert_eq!(log.level(), Some(true), "booting starts on");
        thread.stop();
        assert_eq!(log.level(), Some(false), "dark after stop");
    }

    #[test]
    fn only_routable_addresses_count_as_network() {
        let usable = |a: &str| usable_address(a.parse().expect("address"));
        assert!(usable("192.168.1.20"));
        assert!(usable("2001:db8::1"));
        assert!(!usable("127.0.0.1"));
        assert!(!usable("::1"));
        assert!(!usable("169.254.3.4"));
        assert!(!usable("fe80::1"));
        assert!(!usable("febf::1"));
    }

    #[test]
    fn state_rules_in_order() {
        let ok = Observed {
            since_start: ms(5000),
            frames_sent: 10,
            source_ok: true,
            stalled_for: Duration::ZERO,
            encode_error_recent: false,
            network_up: true,
        };
        assert_eq!(led_state(&ok), LedState::Streaming);
        let o = |f: fn(&mut Observed)| {
            let mut x = ok;
            f(&mut x);
            led_state(&x)
        };
        assert_eq!(o(|x| x.network_up = false), LedState::NoNetwork);
        assert_eq!(o(|x| x.frames_sent = 0), LedState::Booting);
        assert_eq!(
            o(|x| {
                x.frames_sent = 0;
                x.network_up = false;
            }),
            LedState::Booting,
            "booting before no network"
        );
        assert_eq!(o(|x| x.source_ok = false), LedState::NoCamera);
        assert_eq!(
            o(|x| {
                x.source_ok = false;
                x.stalled_for = STALL * 3;
            }),
            LedState::NoCamera,
            "a missing camera is not a stall"
        );
        assert_eq!(o(|x| x.stalled_for = STALL), LedState::Error);
        assert_eq!(o(|x| x.encode_error_recent = true), LedState::Error);
        assert_eq!(
            o(|x| {
                x.frames_sent = 0;
                x.since_start = BOOT_GRACE;
            }),
            LedState::Error
        );
    }

    #[test]
    fn pins_come_from_the_board_unless_set() {
        let pi = &sutantra_boards::PI_4B;
        let g = GpioConfig::default();
        assert_eq!(
            plan(&g, Some(pi), true),
            Plan::Pins {
                led: Some(17),
                button: Some(27)
            }
        );
        assert_eq!(plan(&g, Some(pi), false), Plan::Off, "off without rpi");
        assert_eq!(plan(&g, Some(&sutantra_boards::GENERIC), true), Plan::Off);
        let g = GpioConfig {
            led_pin: Some(22),
            ..GpioConfig::default()
        };
        assert_eq!(
            plan(&g, Some(pi), true),
            Plan::Pins {
                led: Some(22),
                button: Some(27)
            }
        );
        assert!(matches!(plan(&g, Some(pi), false), Plan::Unsupported(m) if m.contains("rpi")));
        let off = GpioConfig {
            enabled: Some(false),
            led_pin: Some(22),
            ..GpioConfig::default()
        };
        assert_eq!(plan(&off, Some(pi), true), Plan::Off);
        assert_eq!(plan(&off, Some(pi), false), Plan::Off);
        let on = GpioConfig {
            enabled: Some(true),
            ..GpioConfig::default()
        };
        assert!(matches!(
            plan(&on, Some(&sutantra_boards::GENERIC), true),
            Plan::NoPins(m) if m.contains("led_pin")
        ));
        assert!(matches!(plan(&on, Some(pi), false), Plan::Unsupported(_)));
    }

    #[test]
    fn config_section_parses_and_validates_with_lines() {
        let text = "[gpio]\nled_pin = 5\nbutton_pin = 6\nlong_press_ms = 3000\n\
                    button_action = \"restart-stream\"\n";
        let cfg = crate::config::Config::parse(text, "t.toml").expect("valid");
        assert_eq!(cfg.gpio.button_action, ButtonAction::RestartStream);
        assert_eq!((cfg.gpio.led_pin, cfg.gpio.button_pin), (Some(5), Some(6)));
        let e = crate::config::Config::parse("[gpio]\nbutton_action = \"reboot\"\n", "t.toml")
            .expect_err("bad action");
        assert_eq!((e.line, e.key.as_str()), (2, "gpio.button_action"));
        assert!(e.reason.contains("restart-stream"), "{}", e.reason);
        let e = crate::config::Config::parse("[gpio]\n\nled_pin = 40\n", "t.toml")
            .expect_err("bad pin");
        assert_eq!((e.line, e.key.as_str()), (3, "gpio.led_pin"));
        assert!(e.reason.contains("BCM"), "{}", e.reason);
        let e = crate::config::Config::parse("[gpio]\nled_pin = 4\nbutton_pin = 4\n", "t.toml")
            .expect_err("same pin");
        assert_eq!(e.key, "gpio.button_pin");
        let e = crate::config::Config::parse("[gpio]\nlong_press_ms = 10\n", "t.toml")
            .expect_err("too short");
        assert_eq!(e.key, "gpio.long_press_ms");
        assert!(crate::config::Config::default().gpio.enabled.is_none());
    }
}

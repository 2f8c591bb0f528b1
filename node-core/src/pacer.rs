//! `Pacer`: the frame clock, `deadline(n) = start + n * period`.
//!
//! The frame rate is the exact rational `fps_num / fps_den` (30/1, 30000/1001, ...). Each deadline
//! is computed from `start` and the index in integer nanoseconds, never by adding a rounded period
//! to the previous deadline, so the clock does not drift: at 30 fps deadline 18000 is exactly
//! `start + 600 s`, at 29.97 fps deadline 30000 is exactly `start + 1001 s`. This is embassy's
//! `Ticker` (a steady `start + n * period`), not "sleep one period after the work".
//!
//! The pacer reads no clock: [`Pacer::poll`] takes `now` (time since the caller's origin) and says
//! either "wait until this deadline" or "frame `index` is due".
//!
//! **Missed ticks are skipped, not burst.** When `now` is already past one or more *further*
//! deadlines (the capture or encode stalled), the pacer does not hand out every missed tick back
//! to back the way tokio's default `MissedTickBehavior::Burst` does; a burst of stale frames only
//! adds latency and bandwidth spikes. It emits one tick for the latest deadline `<= now`, reports
//! how many were skipped, and counts them in [`PacerStats::skipped`]. The schedule stays anchored
//! to `start` (no re-anchoring to `now`, unlike tokio's `Delay`), so the next deadline is still on
//! the original grid.

use std::time::Duration;

const NANOS_PER_SEC: u128 = 1_000_000_000;

/// Errors from [`Pacer::new`] and [`SendGrid::new`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PacerError {
    /// The frame rate numerator or denominator is zero.
    #[error(
        "frame rate {num}/{den} is not valid: both parts must be non-zero (e.g. 30/1 or 30000/1001)"
    )]
    ZeroRate {
        /// Frames (numerator).
        num: u32,
        /// Seconds (denominator).
        den: u32,
    },
    /// A send offset of a whole frame interval or more.
    #[error(
        "a send offset of {offset:?} is not shorter than one frame interval ({period:?}): use less, or 0 to send each frame as soon as it is encoded"
    )]
    OffsetTooLong {
        /// The offset asked for.
        offset: Duration,
        /// One frame interval at the configured rate.
        period: Duration,
    },
}

/// What [`Pacer::poll`] says to do now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tick {
    /// No frame is due yet; poll again at `until`.
    Wait {
        /// The next deadline.
        until: Duration,
    },
    /// Frame `index` is due (its deadline has passed).
    Due {
        /// Index of the frame on the grid (`deadline = start + index * period`).
        index: u64,
        /// Deadline of this frame.
        deadline: Duration,
        /// How far `now` is past `deadline`.
        late: Duration,
        /// Ticks skipped just before this one (0 when on time).
        skipped: u64,
    },
}

/// Counters of a [`Pacer`] since construction.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PacerStats {
    /// Ticks emitted as [`Tick::Due`].
    pub ticks: u64,
    /// Deadlines skipped because a later one had already passed.
    pub skipped: u64,
    /// Largest `late` of any emitted tick.
    pub max_late: Duration,
}

/// A drift-free frame clock at an exact rational rate.
#[derive(Debug, Clone)]
pub struct Pacer {
    fps_num: u32,
    fps_den: u32,
    start: Duration,
    next: u64,
    stats: PacerStats,
}

impl Pacer {
    /// A clock at `fps_num / fps_den` frames per second whose frame 0 is due at `start`.
    pub fn new(fps_num: u32, fps_den: u32, start: Duration) -> Result<Self, PacerError> {
        if fps_num == 0 || fps_den == 0 {
            return Err(PacerError::ZeroRate {
                num: fps_num,
                den: fps_den,
            });
        }
        Ok(Self {
            fps_num,
            fps_den,
            start,
            next: 0,
            stats: PacerStats::default(),
        })
    }

    /// Deadline of frame `index`: `start + index * fps_den / fps_num` seconds, rounded down to
    /// the nanosecond from the exact value (saturates far beyond any real run).
    pub fn frame_time(&self, index: u64) -> Duration {
        let nanos =
            u128::from(index) * NANOS_PER_SEC * u128::from(self.fps_den) / u128::from(self.fps_num);
        let nanos = u64::try_from(nanos).unwrap_or(u64::MAX);
        self.start.saturating_add(Duration::from_nanos(nanos))
    }

    /// Deadline of the next tick [`poll`](Self::poll) will emit (when nothing is skipped).
    pub fn next_deadline(&self) -> Duration {
        self.frame_time(self.next)
    }

    /// Emits the due tick, if any, and advances past it. See the module docs for missed ticks.
    pub fn poll(&mut self, now: Duration) -> Tick {
        let due = self.next_deadline();
        if now < due {
            return Tick::Wait { until: due };
        }
        let index = self.latest_index_at(now).max(self.next);
        let deadline = self.frame_time(index);
        let late = now.saturating_sub(deadline);
        let skipped = index - self.next;
        self.next = index.saturating_add(1);
        self.stats.ticks = self.stats.ticks.saturating_add(1);
        self.stats.skipped = self.stats.skipped.saturating_add(skipped);
        self.stats.max_late = self.stats.max_late.max(late);
        Tick::Due {
            index,
            deadline,
            late,
            skipped,
        }
    }

    /// Counters since construction.
    pub fn stats(&self) -> PacerStats {
        self.stats
    }

    /// The frame rate as a float (for display and metrics).
    pub fn fps(&self) -> f64 {
        f64::from(self.fps_num) / f64::from(self.fps_den)
    }

    /// The largest `n` with `frame_time(n) <= now` (`now >= start`).
    ///
    /// `frame_time(n) = start + floor(n * D / num)` ns with `D = 1e9 * den`, and
    /// `floor(x) <= t  <=>  n * D < (t + 1) * num  <=>  n <= ((t + 1) * num - 1) / D`.
    fn latest_index_at(&self, now: Duration) -> u64 {
        let t = now.saturating_sub(self.start).as_nanos();
        let d = NANOS_PER_SEC * u128::from(self.fps_den);
        let n = ((t + 1) * u128::from(self.fps_num) - 1) / d;
        u64::try_from(n).unwrap_or(u64::MAX)
    }
}

/// When to hand an encoded frame to the viewers, so that frames leave on a regular grid
/// whatever their encode time: `offset` after the frame-clock deadline the frame was captured
/// for (`deadline(n) + offset`, `n` the latest deadline at or before the capture).
///
/// Sending each frame as soon as it is encoded gives the lowest latency, but the send times then
/// carry the encode time's jitter (a keyframe or a busy picture takes several times the usual),
/// which the receivers' jitter buffers must absorb. Holding every frame until a fixed offset
/// moves that jitter into a constant delay on the sender: an offset a little above the usual
/// encode time puts almost every frame on the grid. A frame still being encoded at its send
/// time goes as soon as it is ready; it is never held. `offset` zero disables the hold.
#[derive(Debug, Clone)]
pub struct SendGrid {
    grid: Pacer,
    offset: Duration,
}

impl SendGrid {
    /// A grid at `fps_num / fps_den` anchored at `start` (the capture clock's start), sending
    /// `offset` after each deadline. The offset must be shorter than one frame interval (a
    /// longer one would hold a frame past the next frame's send time).
    pub fn new(
        fps_num: u32,
        fps_den: u32,
        start: Duration,
        offset: Duration,
    ) -> Result<Self, PacerError> {
        let grid = Pacer::new(fps_num, fps_den, start)?;
        let period = grid.frame_time(1).saturating_sub(start);
        if offset >= period {
            return Err(PacerError::OffsetTooLong { offset, period });
        }
        Ok(Self { grid, offset })
    }

    /// When the frame captured at `captured_at` is due to go out: `deadline(n) + offset`.
    pub fn send_time(&self, captured_at: Duration) -> Duration {
        let n = if captured_at < self.grid.start {
            0
        } else {
            self.grid.latest_index_at(captured_at)
        };
        self.grid.frame_time(n).saturating_add(self.offset)
    }

    /// The hold after each deadline (zero: frames are never held).
    pub fn offset(&self) -> Duration {
        self.offset
    }

    /// `Some(until)` if a frame captured at `captured_at` and ready at `now` must wait until
    /// `until`; `None` to send it now (no hold configured, or its send time has come or passed).
    pub fn hold(&self, captured_at: Duration, now: Duration) -> Option<Duration> {
        if self.offset.is_zero() {
            return None;
        }
        let at = self.send_time(captured_at);
        (now < at).then_some(at)
    }
}

/// How many frame intervals [`Decimator`] averages to tell the camera's rate.
const RATE_WINDOW: usize = 32;

/// Keeps a camera that paces itself to the configured rate: a camera that runs faster than
/// configured is decimated (frames dropped, never queued), while a camera at the configured
/// rate keeps every frame whatever its delivery jitter.
///
/// It measures the camera's rate over its last 32 frame intervals (an exact average: the
/// jitter of one frame moves it by 1/32 of that jitter). While the camera runs no more than
/// 1/16 faster than configured, every frame is kept: a 30 FPS sensor against a 29.97
/// configuration, a crystal's drift, a frame delivered 40 ms late and the next one early.
/// Once it runs faster (measured from its 8th frame), the frames are thinned by a token
/// bucket on the camera's own timeline: each arrival adds the time since the last one to a
/// credit, capped at two intervals; a frame is kept when the credit holds two thirds of an
/// interval, and a kept frame spends one interval. A 60 FPS camera set to 30 keeps every
/// other frame, with a margin of a sixth of an interval against jitter either way; over any
/// window, the frames kept are at most the configured rate's count plus two.
///
/// A fixed frame grid cannot do this: a camera's frames land at a phase of their own on the
/// grid, and at a phase near a grid boundary any jitter drops frames (a 30 FPS camera beside
/// a busy core lost one frame in ten that way).
#[derive(Debug, Clone)]
pub struct Decimator {
    period: i128,
    credit: i128,
    /// Arrival times of the last `RATE_WINDOW + 1` frames (a ring), and how many were seen.
    arrivals: [Duration; RATE_WINDOW + 1],
    seen: usize,
    thinning: bool,
}

impl Decimator {
    /// A decimator to `fps_num / fps_den` frames per second.
    pub fn new(fps_num: u32, fps_den: u32) -> Result<Self, PacerError> {
        if fps_num == 0 || fps_den == 0 {
            return Err(PacerError::ZeroRate {
                num: fps_num,
                den: fps_den,
            });
        }
        // At most 1e9 * u32::MAX: far inside i128.
        let period = NANOS_PER_SEC * u128::from(fps_den) / u128::from(fps_num);
        Ok(Self {
            period: i128::try_from(period).unwrap_or(i128::MAX / 4),
            credit: 0,
            arrivals: [Duration::ZERO; RATE_WINDOW + 1],
            seen: 0,
            thinning: false,
        })
    }

    /// Whether the frame that arrived at `now` is kept. The first frame (after construction
    /// or [`reset`](Self::reset)) always is. A clock that steps back counts as no time passed.
    pub fn keep(&mut self, now: Duration) -> bool {
        let slots = RATE_WINDOW + 1;
        let Some(last) = self.seen.checked_sub(1).map(|i| self.arrivals[i % slots]) else {
            self.arrivals[0] = now;
            self.seen = 1;
            self.credit = 0;
            return true;
        };
        let now = now.max(last);
        // The average interval over the window (or since the first frame, until it fills).
        let intervals = (self.seen).min(RATE_WINDOW);
        let oldest = self.arrivals[(self.seen - intervals) % slots];
        self.arrivals[self.seen % slots] = now;
        self.seen = self.seen.saturating_add(1);
        if self.seen == usize::MAX {
            // Keep the ring's arithmetic in range on a run of centuries.
            self.seen = slots + self.seen % slots;
        }
        let average = i128::try_from(now.saturating_sub(oldest).as_nanos() / intervals as u128)
            .unwrap_or(i128::MAX);
        let elapsed = i128::try_from(now.saturating_sub(last).as_nanos()).unwrap_or(i128::MAX);
        self.credit = self
            .credit
            .saturating_add(elapsed)
            .min(self.period.saturating_mul(2));
        if intervals >= 8 {
            // Hysteresis: thin from 1/16 faster than configured, stop at 1/32.
            if !self.thinning && average < self.period - self.period / 16 {
                self.thinning = true;
                self.credit = self.period;
            } else if self.thinning && average > self.period - self.period / 32 {
                self.thinning = false;
            }
        }
        if !self.thinning {
            return true;
        }
        if self.credit >= self.period - self.period / 3 {
            self.credit -= self.period;
            true
        } else {
            false
        }
    }

    /// Forgets the camera's timeline (it was closed and reopened): the next frame is kept.
    pub fn reset(&mut self) {
        self.seen = 0;
        self.credit = 0;
        self.thinning = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const START: Duration = Duration::from_millis(1234);

    fn pacer(num: u32, den: u32) -> Pacer {
        Pacer::new(num, den, START).expect("valid rate")
    }

    /// Tiny deterministic PRNG (xorshift64) for jitter.
    fn xorshift(state: &mut u64) -> u64 {
        *state ^= *state << 13;
        *state ^= *state >> 7;
        *state ^= *state << 17;
        *state
    }

    /// Polls every deadline of `ticks` frames, `jitter(n)` after it; checks each tick is on time.
    fn run(p: &mut Pacer, ticks: u64, mut jitter: impl FnMut() -> Duration) {
        for n in 0..ticks {
            let deadline = p.next_deadline();
            assert_eq!(deadline, p.frame_time(n));
            let before = p.poll(deadline.saturating_sub(Duration::from_nanos(1)));
            assert_eq!(before, Tick::Wait { until: deadline });
            let j = jitter();
            assert_eq!(
                p.poll(deadline + j),
                Tick::Due {
                    index: n,
                    deadline,
                    late: j,
                    skipped: 0
                }
            );
        }
    }

    #[test]
    fn rejects_zero_rate() {
        assert_eq!(
            Pacer::new(0, 1, START).err(),
            Some(PacerError::ZeroRate { num: 0, den: 1 })
        );
        assert!(Pacer::new(30, 0, START).is_err());
    }

    #[test]
    fn thirty_fps_for_ten_minutes_does_not_drift() {
        let mut p = pacer(30, 1);
        run(&mut p, 18_000, || Duration::ZERO);
        assert_eq!(p.next_deadline(), START + Duration::from_secs(600));
        assert_eq!(p.frame_time(18_000), START + Duration::from_secs(600));
        let stats = p.stats();
        assert_eq!(stats.ticks, 18_000);
        assert_eq!(stats.skipped, 0);
        assert_eq!(stats.max_late, Duration::ZERO);
        let measured = stats.ticks as f64 / (p.next_deadline() - START).as_secs_f64();
        assert_eq!(format!("{measured:.3}"), "30.000");
        assert_eq!(p.fps(), 30.0);
    }

    #[test]
    fn jittery_polling_keeps_the_grid() {
        let mut p = pacer(30, 1);
        let mut seed = 0x9e37_79b9_7f4a_7c15;
        let mut max = Duration::ZERO;
        run(&mut p, 18_000, || {
            let j = Duration::from_micros(xorshift(&mut seed) % 5_000);
            max = max.max(j);
            j
        });
        assert_eq!(p.next_deadline(), START + Duration::from_secs(600));
        assert_eq!(p.stats().ticks, 18_000);
        assert_eq!(p.stats().skipped, 0);
        assert_eq!(p.stats().max_late, max);
    }

    #[test]
    fn ntsc_rate_is_exact() {
        let mut p = pacer(30_000, 1_001);
        run(&mut p, 30_000, || Duration::from_micros(3_000));
        assert_eq!(p.next_deadline(), START + Duration::from_secs(1_001));
        assert_eq!(p.stats().ticks, 30_000);
        // One period is 33_366_666.66.. ns; deadlines round down from the exact value.
        assert_eq!(p.frame_time(1), START + Duration::from_nanos(33_366_666));
        assert_eq!(p.frame_time(2), START + Duration::from_nanos(66_733_333));
        assert_eq!(p.frame_time(3), START + Duration::from_nanos(100_100_000));
        assert!((p.fps() - 29.970_029_97).abs() < 1e-6);
    }

    #[test]
    fn late_poll_skips_instead_of_bursting() {
        let mut p = pacer(30, 1);
        run(&mut p, 10, || Duration::ZERO);
        let period = p.frame_time(1) - p.frame_time(0);
        // Frame 10 is pending; poll one and a half periods after its deadline.
        let now = p.frame_time(10) + period * 3 / 2;
        assert_eq!(
            p.poll(now),
            Tick::Due {
                index: 11,
                deadline: p.frame_time(11),
                late: period / 2,
                skipped: 1
            }
        );
        // Still on the original grid: the next deadline is frame 12's.
        assert_eq!(
            p.poll(now),
            Tick::Wait {
                until: p.frame_time(12)
            }
        );
        assert_eq!(p.next_deadline(), START + Duration::from_millis(400));
        let stats = p.stats();
        assert_eq!((stats.ticks, stats.skipped), (11, 1));
        assert_eq!(stats.max_late, period / 2);
    }

    #[test]
    fn long_stall_skips_many_and_reports_them() {
        let mut p = pacer(30, 1);
        let now = START + Duration::from_secs(10) + Duration::from_millis(5);
        match p.poll(now) {
            Tick::Due {
                index,
                skipped,
                late,
                ..
            } => {
                assert_eq!(index, 300);
                assert_eq!(skipped, 300);
                assert_eq!(late, Duration::from_millis(5));
            }
            wait => panic!("expected a due tick, got {wait:?}"),
        }
        assert_eq!(p.next_deadline(), p.frame_time(301));
        assert_eq!(p.stats().skipped, 300);
    }

    #[test]
    fn waits_before_start_and_between_deadlines() {
        let mut p = pacer(25, 1);
        assert_eq!(p.poll(Duration::ZERO), Tick::Wait { until: START });
        assert!(matches!(p.poll(START), Tick::Due { index: 0, .. }));
        let mid = START + Duration::from_millis(20);
        assert_eq!(
            p.poll(mid),
            Tick::Wait {
                until: START + Duration::from_millis(40)
            }
        );
        assert_eq!(p.stats().ticks, 1);
    }

    #[test]
    fn latest_index_matches_definition() {
        let mut seed = 42;
        for (num, den) in [
            (30, 1),
            (30_000, 1_001),
            (7, 3),
            (u32::MAX, 1),
            (1, u32::MAX),
        ] {
            let p = pacer(num, den);
            let mut times = vec![START, START + Duration::from_nanos(1)];
            // Deadlines saturate past ~584 years, so the slow rate only gets its first frames.
            let frames = [1u64, 2, 3, 999, 1_000_003];
            let frames = if num >= den {
                &frames[..]
            } else {
                &frames[..3]
            };
            times.extend(frames.iter().map(|&n| p.frame_time(n)));
            times.extend(
                (0..1_000).map(|_| START + Duration::from_nanos(xorshift(&mut seed) >> 20)),
            );
            for t in times {
                let k = p.latest_index_at(t);
                assert!(p.frame_time(k) <= t, "{num}/{den}: frame {k} after {t:?}");
                assert!(
                    p.frame_time(k + 1) > t,
                    "{num}/{den}: frame {k} not the latest"
                );
            }
        }
    }

    #[test]
    fn extreme_times_do_not_panic() {
        let mut p = pacer(u32::MAX, 1);
        assert!(matches!(p.poll(Duration::MAX), Tick::Due { .. }));
        let _ = p.poll(Duration::MAX);
        let _ = p.frame_time(u64::MAX);
        let mut slow = Pacer::new(1, u32::MAX, Duration::MAX).expect("valid");
        assert!(matches!(
            slow.poll(Duration::MAX),
            Tick::Due { index: 0, .. }
        ));
        let _ = slow.poll(Duration::MAX);
    }
}

#[cfg(test)]
mod send_grid_tests {
    use super::*;

    pub(super) fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }

    pub(super) fn us(v: u64) -> Duration {
        Duration::from_micros(v)
    }

    #[test]
    fn frames_ready_early_wait_for_deadline_plus_offset() {
        let g = SendGrid::new(30, 1, ms(100), ms(10)).expect("grid");
        // Frame 3 is due at 100 + 100 ms; captured 0.3 ms late, encoded in 4 ms.
        let deadline = ms(200);
        let captured = deadline + us(300);
        assert_eq!(g.hold(captured, captured + ms(4)), Some(deadline + ms(10)));
        // A 9.6 ms encode still waits, for the last 0.1 ms.
        assert_eq!(
            g.hold(captured, captured + us(9_600)),
            Some(deadline + ms(10))
        );
    }

    #[test]
    fn a_frame_late_for_its_send_time_goes_at_once() {
        let g = SendGrid::new(30, 1, Duration::ZERO, ms(10)).expect("grid");
        let captured = ms(100) + us(200); // frame 3
        // Exactly at the send time, and after it (a 25 ms keyframe): no hold.
        assert_eq!(g.hold(captured, ms(110)), None);
        assert_eq!(g.hold(captured, captured + ms(25)), None);
        // Even when it is so late that the next frame's deadline has passed: the send time is
        // its own deadline's, not the next one's.
        assert_eq!(g.hold(captured, ms(140)), None);
        assert_eq!(g.send_time(captured), ms(110));
    }

    #[test]
    fn zero_offset_never_holds() {
        let g = SendGrid::new(30, 1, Duration::ZERO, Duration::ZERO).expect("grid");
        assert_eq!(g.hold(ms(100), ms(100)), None);
        assert_eq!(g.hold(ms(100) + us(1), ms(100) + us(2)), None);
    }

    #[test]
    fn send_times_stay_on_the_exact_grid_over_long_runs() {
        // 29.97 fps for ten hours: frame n's send time is deadline(n) + offset, no drift.
        let g = SendGrid::new(30_000, 1001, Duration::ZERO, ms(12)).expect("grid");
        let n: u64 = 10 * 3600 * 30_000 / 1001;
        let deadline = Duration::from_nanos((u128::from(n) * 1001 * 1_000_000_000 / 30_000) as u64);
        assert_eq!(g.send_time(deadline + us(500)), deadline + ms(12));
        // A capture stamped before the grid's start belongs to frame 0.
        assert_eq!(g.send_time(Duration::ZERO), ms(12));
    }

    #[test]
    fn an_offset_of_a_frame_interval_or_more_is_refused() {
        assert!(matches!(
            SendGrid::new(30, 1, Duration::ZERO, ms(34)),
            Err(PacerError::OffsetTooLong { .. })
        ));
        assert!(SendGrid::new(30, 1, Duration::ZERO, ms(33)).is_ok());
        let e = SendGrid::new(60, 1, Duration::ZERO, ms(20)).expect_err("too long at 60 fps");
        assert!(
            e.to_string()
                .contains("not shorter than one frame interval"),
            "{e}"
        );
    }
}

#[cfg(test)]
mod decimator_tests {
    use super::send_grid_tests::{ms, us};
    use super::*;

    /// Arrival times of a camera at `fps` for `secs`, each up to `late_ms` late (a
    /// deterministic pseudo-random lateness), in order, as a driver hands them over.
    fn camera(fps: f64, secs: u32, late_ms: u64, seed: u64) -> Vec<Duration> {
        let mut x = seed;
        let mut last = Duration::ZERO;
        (0..(f64::from(secs) * fps) as u64)
            .map(|n| {
                x = x
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1_442_695_040_888_963_407);
                let late = if late_ms == 0 {
                    0
                } else {
                    (x >> 33) % (late_ms * 1000)
                };
                let due = Duration::from_nanos((n as f64 * 1e9 / fps) as u64) + us(late);
                last = last.max(due);
                last
            })
            .collect()
    }

    fn kept(d: &mut Decimator, arrivals: &[Duration]) -> Vec<Duration> {
        arrivals.iter().copied().filter(|&t| d.keep(t)).collect()
    }

    #[test]
    fn a_camera_at_the_configured_rate_keeps_every_frame_whatever_its_jitter() {
        // Up to 40 ms late (more than a frame interval), the first frame among them.
        for seed in 1..20 {
            let frames = camera(30.0, 60, 40, seed);
            let mut d = Decimator::new(30, 1).expect("rate");
            assert_eq!(kept(&mut d, &frames).len(), frames.len(), "seed {seed}");
        }
        // A sensor at 30 FPS against a 29.97 configuration, and one at 29.97 against 30.
        let frames = camera(30.0, 600, 5, 7);
        let mut d = Decimator::new(30_000, 1001).expect("rate");
        assert_eq!(kept(&mut d, &frames).len(), frames.len());
        let frames = camera(30_000.0 / 1001.0, 600, 5, 7);
        let mut d = Decimator::new(30, 1).expect("rate");
        assert_eq!(kept(&mut d, &frames).len(), frames.len());
        // A slower camera loses nothing.
        let frames = camera(25.0, 60, 10, 3);
        assert_eq!(
            kept(&mut Decimator::new(30, 1).expect("rate"), &frames).len(),
            frames.len()
        );
    }

    #[test]
    fn a_camera_twice_as_fast_keeps_every_other_frame_and_leaves_no_holes() {
        for (late_ms, seed) in [(0, 1), (3, 2), (3, 9)] {
            let frames = camera(60.0, 60, late_ms, seed);
            let mut d = Decimator::new(30, 1).expect("rate");
            let kept = kept(&mut d, &frames);
            // 30 FPS, plus the frames before the rate is known: 1800 to 1810 in 60 s.
            assert!(
                (1800..=1810).contains(&kept.len()),
                "{} kept of {} (jitter {late_ms} ms)",
                kept.len(),
                frames.len()
            );
            let longest = kept.windows(2).map(|w| w[1] - w[0]).max().expect("frames");
            assert!(longest <= ms(34) + ms(late_ms), "a hole of {longest:?}");
        }
        // Three times too fast (90 FPS camera, 30 configured).
        let frames = camera(90.0, 60, 2, 5);
        let n = kept(&mut Decimator::new(30, 1).expect("rate"), &frames).len();
        assert!((1800..=1810).contains(&n), "{n} kept");
    }

    #[test]
    fn a_camera_that_speeds_up_is_thinned_and_one_that_slows_again_is_not() {
        let mut d = Decimator::new(30, 1).expect("rate");
        // 2 s at 30 FPS: all kept.
        assert!((0..60).all(|n| d.keep(us(33_333 * n))));
        // Then 2 s at 120 FPS (a driver that switched mode): about 30 FPS kept.
        let t0 = us(33_333 * 60);
        let fast = (0..240).filter(|&n| d.keep(t0 + us(8_333 * n))).count();
        assert!((60..=72).contains(&fast), "{fast} of 240 kept");
        // Back to 30 FPS: thinning stops within the window, then every frame is kept again.
        let t1 = t0 + us(8_333 * 240);
        let _ = (0..32).filter(|&n| d.keep(t1 + us(33_333 * n))).count();
        assert!((32..120).all(|n| d.keep(t1 + us(33_333 * n))));
    }

    #[test]
    fn a_clock_step_back_or_a_reset_is_no_panic_and_the_next_frame_is_kept() {
        let mut d = Decimator::new(30, 1).expect("rate");
        assert!(d.keep(Duration::from_secs(3600)));
        for _ in 0..100 {
            let _ = d.keep(Duration::ZERO);
            let _ = d.keep(Duration::MAX);
        }
        d.reset();
        assert!(d.keep(Duration::ZERO));
        assert!(matches!(
            Decimator::new(0, 1),
            Err(PacerError::ZeroRate { .. })
        ));
    }
}

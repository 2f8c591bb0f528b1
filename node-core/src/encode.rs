//! `EncodeStep`: one frame through the encode path (keyframe decision, VP8 encode, RTP
//! packetize, send time), as a value the caller drives.
//!
//! The firmware's encode thread used to do all of this inline; here it is one call per frame,
//! [`EncodeStep::step`], with the time (`now`, the capture time on the same clock) and the
//! viewers' keyframe request as inputs and the packets, the frame's metadata and when to send it
//! as the output. No thread, clock or I/O: the caller takes the frame from the pool, calls
//! `step` with a sink for the packets, hands the output to its observer, and sleeps until
//! `send_at` itself.
//!
//! Per frame:
//! 1. keyframe: a request (viewers' PLI/FIR, an operator's) forces one if the
//!    [`KeyframeLimiter`] allows it at `now`; a refused request stays pending and is honoured by
//!    a later step once the minimum gap has passed;
//! 2. VP8 encode ([`Vp8Encoder::encode`]);
//! 3. packetize ([`Packetizer::packetize`]): RTP timestamps on the 90 kHz clock follow the
//!    frame's capture time (`capture_us`), not the encode time;
//! 4. send time ([`SendGrid::send_time`]): with a hold configured, `deadline + offset` of the
//!    frame-clock deadline the frame was captured for.
//!
//! The packets go straight from the packetizer to the caller's sink, which copies each payload
//! once into whatever it sends; the step keeps no packet buffer of its own.

use std::time::Duration;

use crate::codec::CodecError;
use crate::codec::vp8::Vp8Encoder;
use crate::fanout::KeyframeLimiter;
use crate::frame::I420Frame;
use crate::observer::EncodedFrameInfo;
use crate::pacer::SendGrid;
use crate::rtp::packetizer::{Packetizer, RtpPacketRef};

/// The encode path for one stream: encoder, packetizer, keyframe limiter and send grid.
#[derive(Debug)]
pub struct EncodeStep {
    encoder: Vp8Encoder,
    packetizer: Packetizer,
    limiter: KeyframeLimiter,
    grid: SendGrid,
    index: u64,
}

/// What one [`EncodeStep::step`] produced besides its packets. Borrows the step until dropped.
#[derive(Debug)]
pub struct StepOutput<'a> {
    /// Metadata for the frame observer: `index` counts the non-empty frames before this one,
    /// `rtp_timestamp` is the packets' timestamp, `bytes` the encoded size (0 if libvpx
    /// produced no frame: then there were no packets and there is nothing to send).
    pub info: EncodedFrameInfo,
    /// A keyframe was forced for a request (viewers' or operator's) in this step.
    pub forced_keyframe: bool,
    /// When to hand the packets to the viewers, on the `now` clock: `deadline + offset` of the
    /// frame-clock deadline the frame was captured for. `None`: send at once (no hold
    /// configured, or the capture time is unknown). It may already have passed.
    pub send_at: Option<Duration>,
    /// The encoded frame (what the observer hashes).
    pub data: &'a [u8],
}

impl EncodeStep {
    /// The encode path over `encoder` and `packetizer` (carried over between runs so sequence
    /// numbers continue), forcing keyframes at most once per `min_keyframe_gap` and holding
    /// frames on `grid` (a grid with a zero offset never holds).
    pub fn new(
        encoder: Vp8Encoder,
        packetizer: Packetizer,
        min_keyframe_gap: Duration,
        grid: SendGrid,
    ) -> Self {
        Self {
            encoder,
            packetizer,
            limiter: KeyframeLimiter::new(min_keyframe_gap),
            grid,
            index: 0,
        }
    }

    /// Encodes and packetizes `frame` at `now`, handing each RTP packet, in order, to
    /// `on_packet`.
    ///
    /// `keyframe_requested`: a viewer or the operator asked for a keyframe since the last step
    /// (the request is handed to the limiter, which may defer it). `captured_at`: the frame's
    /// capture time on the `now` clock, if known (needed only for the send hold).
    ///
    /// On an encode error nothing is packetized and the keyframe decision is spent, as it is
    /// when the encoder fails in the middle of a forced keyframe; the caller counts the error
    /// (e.g. in an [`ErrorRun`](crate::supervisor::ErrorRun)) and may
    /// [`replace_encoder`](Self::replace_encoder).
    pub fn step(
        &mut self,
        now: Duration,
        frame: &I420Frame,
        keyframe_requested: bool,
        captured_at: Option<Duration>,
        on_packet: impl FnMut(RtpPacketRef<'_>),
    ) -> Result<StepOutput<'_>, CodecError> {
        let forced = (keyframe_requested && self.limiter.allow(now)) || self.limiter.poll(now);
        let capture_us = frame.capture_us;
        let enc = self.encoder.encode(frame, forced)?;
        // The monotonic capture time: a wall-clock step must not move the RTP timeline.
        let sent = self
            .packetizer
            .packetize(enc.data, frame.mono_us, on_packet);
        let info = EncodedFrameInfo {
            index: self.index,
            capture_us,
            rtp_timestamp: sent.timestamp,
            keyframe: enc.keyframe,
            bytes: enc.data.len(),
        };
        if !enc.data.is_empty() {
            self.index += 1;
        }
        let send_at = match captured_at {
            Some(at) if !self.grid.offset().is_zero() => Some(self.grid.send_time(at)),
            _ => None,
        };
        Ok(StepOutput {
            info,
            forced_keyframe: forced,
            send_at,
            data: enc.data,
        })
    }

    /// The hold after each frame-clock deadline (zero: no hold). A caller measuring lateness
    /// against the send time subtracts it.
    pub fn send_offset(&self) -> Duration {
        self.grid.offset()
    }

    /// The encoder, e.g. to change its bitrate.
    pub fn encoder_mut(&mut self) -> &mut Vp8Encoder {
        &mut self.encoder
    }

    /// Puts in a new encoder (after a run of errors). The packetizer, the keyframe limiter and
    /// the frame index carry on.
    pub fn replace_encoder(&mut self, encoder: Vp8Encoder) {
        self.encoder = encoder;
    }

    /// The packetizer, to carry over to the next run (sequence numbers go on).
    pub fn into_packetizer(self) -> Packetizer {
        self.packetizer
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::vp8::Vp8Config;

    const MS: Duration = Duration::from_millis(1);
    const W: u32 = 160;
    const H: u32 = 120;
    /// Capture time of frame 0 (µs since the UNIX epoch).
    const T0_US: u64 = 1_700_000_000_000_000;
    /// 30 FPS.
    const PERIOD_US: u64 = 33_333;

    fn step_with(offset: Duration, initial_ts: u32) -> EncodeStep {
        let cfg = Vp8Config {
            width: W,
            height: H,
            fps_num: 30,
            fps_den: 1,
            bitrate_kbps: 300,
            // Far apart: every keyframe after the first is a forced one.
            keyframe_interval: 10_000,
            cpu_used: 8,
            threads: 1,
        };
        let encoder = Vp8Encoder::new(&cfg).expect("encoder");
        let packetizer = Packetizer::new(200, 1000, initial_ts, 7).expect("packetizer");
        let grid = SendGrid::new(30, 1, Duration::ZERO, offset).expect("grid");
        EncodeStep::new(encoder, packetizer, 500 * MS, grid)
    }

    /// Frame `n` of a moving gradient, captured at `T0_US + n * PERIOD_US`.
    fn frame(n: u64) -> I420Frame {
        let mut f = I420Frame::new(W, H);
        let (y, _, _) = f.planes_mut();
        for (i, px) in y.iter_mut().enumerate() {
            *px = (16 + (i as u64 + 3 * n) % 200) as u8;
        }
        f.capture_us = T0_US + n * PERIOD_US;
        f.mono_us = n * PERIOD_US;
        f.seq = n;
        f
    }

    /// Frame `n`'s `now`: its capture time on a clock that starts at frame 0.
    fn at(n: u64) -> Duration {
        Duration::from_micros(n * PERIOD_US)
    }

    #[test]
    fn a_keyframe_request_is_honoured_once_and_rate_limited() {
        let mut s = step_with(Duration::ZERO, 0);
        let run = |s: &mut EncodeStep, n: u64, request: bool| {
            let out = s
                .step(at(n), &frame(n), request, None, |_| {})
                .expect("encode");
            (out.forced_keyframe, out.info.keyframe)
        };
        assert_eq!(
            run(&mut s, 0, false),
            (false, true),
            "the first frame is a keyframe"
        );
        assert_eq!(run(&mut s, 1, false), (false, false));
        // A request at 66 ms is the first: allowed at once, and only once.
        assert_eq!(run(&mut s, 2, true), (true, true));
        assert_eq!(run(&mut s, 3, false), (false, false));
        // Another 100 ms later is within the 500 ms gap: deferred, not forced.
        assert_eq!(run(&mut s, 5, true), (false, false));
        for n in 6..18 {
            assert_eq!(
                run(&mut s, n, false),
                (false, false),
                "frame {n}: gap not over"
            );
        }
        // Frame 17 (566.661 ms) is 5 µs short of 66.666 ms + 500 ms; frame 18 (600 ms) is past
        // it: the deferred request is honoured, once.
        assert_eq!(run(&mut s, 18, false), (true, true));
        assert_eq!(run(&mut s, 19, false), (false, false));
        assert_eq!(run(&mut s, 20, false), (false, false));
    }

    #[test]
    fn rtp_timestamps_follow_capture_time_on_the_90khz_clock() {
        // Starts just below the wrap: timestamps wrap modulo 2^32.
        let base = u32::MAX - 4_000;
        let mut s = step_with(Duration::ZERO, base);
        let mut last_seq = None;
        for n in 0..6u64 {
            // A late encode (now well after capture) changes nothing: the capture time counts.
            let now = at(n) + 25 * MS;
            let mut packets = Vec::new();
            let out = s
                .step(now, &frame(n), false, None, |p| packets.push(p.to_packet()))
                .expect("encode");
            let expected = base.wrapping_add(((n * PERIOD_US) * 90 / 1000) as u32);
            assert_eq!(out.info.rtp_timestamp, expected, "frame {n}");
            assert_eq!(out.info.capture_us, T0_US + n * PERIOD_US);
            assert_eq!(out.info.index, n);
            assert!(out.info.bytes > 0);
            let data_len = out.data.len();
            assert!(!packets.is_empty());
            assert!(packets.iter().all(|p| p.timestamp == expected));
            assert_eq!(packets.iter().filter(|p| p.marker).count(), 1);
            assert!(packets.last().is_some_and(|p| p.marker));
            let bytes: usize = packets.iter().map(|p| p.payload.len()).sum();
            assert!(
                bytes > data_len,
                "payloads carry the frame plus descriptors"
            );
            for p in &packets {
                if let Some(prev) = last_seq {
                    assert_eq!(p.seq, u16::wrapping_add(prev, 1), "consecutive");
                }
                last_seq = Some(p.seq);
            }
            assert_eq!(packets[0].keyframe, n == 0);
        }
    }

    #[test]
    fn the_send_hold_gives_deadline_plus_offset() {
        let mut held = step_with(12 * MS, 0);
        assert_eq!(held.send_offset(), 12 * MS);
        // Captured 5 ms after the deadline of frame 30 (1 s): sent at 1 s + 12 ms, whenever the
        // encode ends.
        let out = held
            .step(1005 * MS, &frame(0), false, Some(1005 * MS), |_| {})
            .expect("encode");
        assert_eq!(out.send_at, Some(1012 * MS));
        let out = held
            .step(1040 * MS, &frame(1), false, Some(1034 * MS), |_| {})
            .expect("encode");
        let deadline_31 = Duration::from_nanos(31_000_000_000 / 30);
        assert_eq!(out.send_at, Some(deadline_31 + 12 * MS));
        // Unknown capture time: at once.
        let out = held
            .step(1070 * MS, &frame(2), false, None, |_| {})
            .expect("encode");
        assert_eq!(out.send_at, None);

        let mut unheld = step_with(Duration::ZERO, 0);
        assert_eq!(unheld.send_offset(), Duration::ZERO);
        let out = unheld
            .step(1005 * MS, &frame(0), false, Some(1005 * MS), |_| {})
            .expect("encode");
        assert_eq!(out.send_at, None, "no hold configured");
    }

    #[test]
    fn an_encode_error_is_returned_and_the_step_goes_on() {
        let mut s = step_with(Duration::ZERO, 0);
        let wrong = I420Frame::new(W * 2, H);
        assert!(s.step(at(0), &wrong, false, None, |_| {}).is_err());
        let out = s
            .step(at(1), &frame(1), false, None, |_| {})
            .expect("encode");
        assert_eq!(out.info.index, 0, "the failed frame is not counted");
        let packetizer = s.into_packetizer();
        assert!(packetizer.next_seq() > 1000, "sequence numbers carry over");
    }
}

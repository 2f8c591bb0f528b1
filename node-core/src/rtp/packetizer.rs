//! The RTP packetizer: 90 kHz timestamps, sequence numbers and the marker bit around VP8 payloads.
//!
//! [`RtpClock`] maps capture times (microseconds on a monotonic clock: the frame's `mono_us`, not
//! its wall-clock `capture_us`, so a wall-clock step cannot move the timeline) to 90 kHz RTP
//! timestamps relative to the first capture seen, so the RTP timeline follows the camera, not the
//! encoder's output jitter. Each timestamp is computed from that origin, never
//! accumulated, so it does not drift.
//!
//! [`Packetizer`] wraps the [`Vp8Payloader`]: every packet of a frame shares the frame's
//! timestamp, sequence numbers run on (wrapping) across frames, and the marker bit is set on the
//! last packet of each frame. Packets are lent to a callback as [`RtpPacketRef`]s (no allocation);
//! [`RtpPacketRef::to_packet`] makes the owned [`RtpPacket`] the fan-out shares between viewers.
//! SSRC and payload type belong to each viewer's session and are added there (or by
//! [`RtpPacket::to_bytes`] for raw RTP output and tests).

use super::RtpError;
use super::vp8::{Vp8Payloader, is_keyframe};

/// Length of the fixed RTP header (RFC 3550 §5.1) without CSRCs.
pub const RTP_HEADER_LEN: usize = 12;

/// Maps capture times in microseconds to 90 kHz RTP timestamps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtpClock {
    base: u32,
    origin_us: Option<u64>,
}

impl RtpClock {
    /// A clock whose first timestamp is `base` (pick it at random per stream, RFC 3550 §5.1).
    pub fn new(base: u32) -> Self {
        Self {
            base,
            origin_us: None,
        }
    }

    /// The RTP timestamp of a frame captured at `capture_us`:
    /// `base + (capture_us - first_capture_us) * 90 / 1000`, wrapping modulo 2^32. The first
    /// call fixes the origin; a capture time before the origin maps to `base`.
    pub fn timestamp(&mut self, capture_us: u64) -> u32 {
        let origin = *self.origin_us.get_or_insert(capture_us);
        let elapsed = u128::from(capture_us.saturating_sub(origin));
        // Truncating to u32 is the wrap modulo 2^32 that RTP timestamps use.
        let ticks = (elapsed * 90 / 1_000) as u32;
        self.base.wrapping_add(ticks)
    }

    /// The capture time of the first frame seen, once there is one.
    pub fn origin_us(&self) -> Option<u64> {
        self.origin_us
    }
}

/// One RTP packet lent to the [`Packetizer::packetize`] callback.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtpPacketRef<'a> {
    /// Sequence number.
    pub seq: u16,
    /// 90 kHz timestamp, the same for every packet of a frame.
    pub timestamp: u32,
    /// Marker bit: set on the last packet of a frame.
    pub marker: bool,
    /// The packet belongs to a keyframe.
    pub keyframe: bool,
    /// The RTP payload: VP8 payload descriptor, then VP8 data.
    pub payload: &'a [u8],
}

impl RtpPacketRef<'_> {
    /// An owned copy.
    pub fn to_packet(&self) -> RtpPacket {
        RtpPacket {
            seq: self.seq,
            timestamp: self.timestamp,
            marker: self.marker,
            keyframe: self.keyframe,
            payload: self.payload.to_vec(),
        }
    }

    /// The RFC 3550 fixed header: V=2, no padding, extension or CSRC; `payload_type` is masked
    /// to 7 bits.
    pub fn header(&self, ssrc: u32, payload_type: u8) -> [u8; RTP_HEADER_LEN] {
        let mut h = [0u8; RTP_HEADER_LEN];
        h[0] = 0x80;
        h[1] = (u8::from(self.marker) << 7) | (payload_type & 0x7F);
        h[2..4].copy_from_slice(&self.seq.to_be_bytes());
        h[4..8].copy_from_slice(&self.timestamp.to_be_bytes());
        h[8..12].copy_from_slice(&ssrc.to_be_bytes());
        h
    }

    /// The whole packet on the wire: [`header`](Self::header) then the payload.
    pub fn to_bytes(&self, ssrc: u32, payload_type: u8) -> Vec<u8> {
        let mut bytes = Vec::with_capacity(RTP_HEADER_LEN + self.payload.len());
        bytes.extend_from_slice(&self.header(ssrc, payload_type));
        bytes.extend_from_slice(self.payload);
        bytes
    }

    /// True on the first packet of a frame (VP8 descriptor with S=1 and partition 0).
    pub fn starts_frame(&self) -> bool {
        self.payload
            .first()
            .is_some_and(|b| b & 0x10 != 0 && b & 0x07 == 0)
    }

    /// True on the first packet of a keyframe: where a new viewer can start decoding.
    pub fn starts_keyframe(&self) -> bool {
        self.keyframe && self.starts_frame()
    }
}

/// An owned RTP packet without SSRC and payload type (those are per viewer).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtpPacket {
    /// Sequence number.
    pub seq: u16,
    /// 90 kHz timestamp, the same for every packet of a frame.
    pub timestamp: u32,
    /// Marker bit: set on the last packet of a frame.
    pub marker: bool,
    /// The packet belongs to a keyframe.
    pub keyframe: bool,
    /// The RTP payload: VP8 payload descriptor, then VP8 data.
    pub payload: Vec<u8>,
}

impl RtpPacket {
    /// A borrowed view of this packet.
    pub fn as_packet_ref(&self) -> RtpPacketRef<'_> {
        RtpPacketRef {
            seq: self.seq,
            timestamp: self.timestamp,
            marker: self.marker,
            keyframe: self.keyframe,
            payload: &self.payload,
        }
    }

    /// The whole packet on the wire (see [`RtpPacketRef::header`]).
    pub fn to_bytes(&self, ssrc: u32, payload_type: u8) -> Vec<u8> {
        self.as_packet_ref().to_bytes(ssrc, payload_type)
    }

    /// True on the first packet of a frame.
    pub fn starts_frame(&self) -> bool {
        self.as_packet_ref().starts_frame()
    }

    /// True on the first packet of a keyframe: where a new viewer can start decoding.
    pub fn starts_keyframe(&self) -> bool {
        self.as_packet_ref().starts_keyframe()
    }
}

/// What [`Packetizer::packetize`] did with one frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PacketizedFrame {
    /// RTP timestamp of the frame.
    pub timestamp: u32,
    /// The frame is a keyframe.
    pub keyframe: bool,
    /// Sequence number of the first packet (the next one, if no packet was emitted).
    pub first_seq: u16,
    /// Packets emitted (0 for an empty frame).
    pub packets: usize,
}

/// Turns encoded VP8 frames into RTP packets.
#[derive(Debug, Clone)]
pub struct Packetizer {
    payloader: Vp8Payloader,
    clock: RtpClock,
    seq: u16,
}

impl Packetizer {
    /// A packetizer with payloads of at most `max_payload` bytes (descriptor included; at least
    /// 8), starting at sequence number `initial_seq`, timestamp `initial_ts` and PictureID
    /// `initial_picture_id`. Pick the three at random per stream.
    pub fn new(
        max_payload: usize,
        initial_seq: u16,
        initial_ts: u32,
        initial_picture_id: u16,
    ) -> Result<Self, RtpError> {
        Ok(Self {
            payloader: Vp8Payloader::new(max_payload, initial_picture_id)?,
            clock: RtpClock::new(initial_ts),
            seq: initial_seq,
        })
    }

    /// Packetizes one encoded frame captured at `capture_us` (microseconds on a monotonic clock,
    /// any origin), calling `out` for each packet in order.
    pub fn packetize(
        &mut self,
        frame: &[u8],
        capture_us: u64,
        mut out: impl FnMut(RtpPacketRef<'_>),
    ) -> PacketizedFrame {
        let timestamp = self.clock.timestamp(capture_us);
        let keyframe = is_keyframe(frame);
        let first_seq = self.seq;
        let seq = &mut self.seq;
        let packets = self.payloader.payload_frame(frame, |payload, last| {
            out(RtpPacketRef {
                seq: *seq,
                timestamp,
                marker: last,
                keyframe,
                payload,
            });
            *seq = seq.wrapping_add(1);
        });
        PacketizedFrame {
            timestamp,
            keyframe,
            first_seq,
            packets,
        }
    }

    /// Sequence number of the next packet.
    pub fn next_seq(&self) -> u16 {
        self.seq
    }

    /// PictureID of the next non-empty frame.
    pub fn next_picture_id(&self) -> u16 {
        self.payloader.picture_id()
    }

    /// The maximum payload size, descriptor included.
    pub fn max_payload_size(&self) -> usize {
        self.payloader.max_payload_size()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rtp::vp8::parse_descriptor;

    const T0: u64 = 1_700_000_000_000_000;

    fn packetizer(max: usize, seq: u16, ts: u32, pid: u16) -> Packetizer {
        Packetizer::new(max, seq, ts, pid).expect("valid size")
    }

    fn packets(p: &mut Packetizer, frame: &[u8], capture_us: u64) -> Vec<RtpPacket> {
        let mut out = Vec::new();
        let summary = p.packetize(frame, capture_us, |pkt| out.push(pkt.to_packet()));
        assert_eq!(summary.packets, out.len());
        out
    }

    #[test]
    fn rejects_tiny_payload() {
        assert!(matches!(
            Packetizer::new(4, 0, 0, 0),
            Err(RtpError::PayloadTooSmall { size: 4, .. })
        ));
    }

    #[test]
    fn one_frame_over_three_packets() {
        let mut p = packetizer(8, 100, 5_000, 0x0102);
        // Interframe (P=1) of 10 bytes: chunks of 4, 4 and 2.
        let frame = [0x01, 2, 3, 4, 5, 6, 7, 8, 9, 10];
        let out = packets(&mut p, &frame, T0);
        let expected = [
            (100, false, vec![0x90, 0x80, 0x81, 0x02, 0x01, 2, 3, 4]),
            (101, false, vec![0x80, 0x80, 0x81, 0x02, 5, 6, 7, 8]),
            (102, true, vec![0x80, 0x80, 0x81, 0x02, 9, 10]),
        ];
        assert_eq!(out.len(), expected.len());
        for (pkt, (seq, marker, payload)) in out.iter().zip(expected) {
            assert_eq!(pkt.seq, seq);
            assert_eq!(pkt.marker, marker);
            assert_eq!(pkt.payload, payload);
            assert_eq!(pkt.timestamp, 5_000);
            assert!(!pkt.keyframe);
        }
        assert!(out[0].starts_frame() && !out[1].starts_frame() && !out[2].starts_frame());
        assert_eq!(p.next_seq(), 103);
        assert_eq!(p.next_picture_id(), 0x0103);
    }

    #[test]
    fn marker_only_on_last_and_keyframe_on_all() {
        let mut p = packetizer(100, 0, 0, 0);
        let keyframe: Vec<u8> = std::iter::once(0x50).chain([0x9D; 999]).collect();
        let out = packets(&mut p, &keyframe, T0);
        assert_eq!(out.len(), 11);
        let markers: Vec<usize> = (0..out.len()).filter(|&i| out[i].marker).collect();
        assert_eq!(markers, [10]);
        assert!(out.iter().all(|pkt| pkt.keyframe));
        assert!(out[0].starts_keyframe());
        assert!(out[1..].iter().all(|pkt| !pkt.starts_keyframe()));
        assert!(out.iter().all(|pkt| pkt.payload.len() <= 100));
    }

    #[test]
    fn sequence_numbers_wrap_across_frames() {
        let mut p = packetizer(8, 0xFFFE, 0, 0);
        let mut seqs = Vec::new();
        for i in 0..3u64 {
            let summary = p.packetize(&[1; 6], T0 + i * 33_333, |pkt| seqs.push(pkt.seq));
            assert_eq!(summary.packets, 2);
        }
        assert_eq!(seqs, [0xFFFE, 0xFFFF, 0, 1, 2, 3]);
    }

    #[test]
    fn empty_frame_emits_nothing() {
        let mut p = packetizer(8, 7, 0, 3);
        let summary = p.packetize(&[], T0, |_| panic!("no packet expected"));
        assert_eq!(summary.packets, 0);
        assert_eq!(summary.first_seq, 7);
        assert!(!summary.keyframe);
        assert_eq!((p.next_seq(), p.next_picture_id()), (7, 3));
    }

    #[test]
    fn timestamps_are_90khz_from_first_capture() {
        let mut c = RtpClock::new(1_000);
        assert_eq!(c.origin_us(), None);
        assert_eq!(c.timestamp(T0), 1_000);
        assert_eq!(c.origin_us(), Some(T0));
        assert_eq!(c.timestamp(T0 + 1_000_000), 91_000);
        assert_eq!(c.timestamp(T0 + 33_333), 1_000 + 2_999);
        // Thirty frames at 33_333 us: no accumulated rounding.
        assert_eq!(c.timestamp(T0 + 30 * 33_333), 1_000 + 89_999);
        // Backwards capture time saturates to the origin instead of panicking.
        assert_eq!(c.timestamp(T0 - 5), 1_000);
        assert_eq!(c.timestamp(0), 1_000);
    }

    #[test]
    fn timestamps_wrap() {
        let mut c = RtpClock::new(u32::MAX - 10);
        assert_eq!(c.timestamp(T0), u32::MAX - 10);
        assert_eq!(c.timestamp(T0 + 1_000_000), 90_000 - 11);
        let mut far = RtpClock::new(0);
        far.timestamp(0);
        let _ = far.timestamp(u64::MAX);
    }

    #[test]
    fn frames_share_timestamp_and_advance() {
        let mut p = packetizer(8, 0, 42, 0);
        let a = packets(&mut p, &[1; 9], T0);
        let b = packets(&mut p, &[1; 9], T0 + 1_000_000);
        assert!(a.iter().all(|pkt| pkt.timestamp == 42));
        assert!(b.iter().all(|pkt| pkt.timestamp == 90_042));
        let pids: Vec<Option<u16>> = [&a[0], &b[0]]
            .iter()
            .map(|pkt| {
                parse_descriptor(&pkt.payload)
                    .ok()
                    .and_then(|d| d.picture_id)
            })
            .collect();
        assert_eq!(pids, [Some(0), Some(1)]);
    }

    #[test]
    fn to_bytes_writes_rfc3550_header() {
        let pkt = RtpPacket {
            seq: 0x1234,
            timestamp: 0xDEAD_BEEF,
            marker: true,
            keyframe: false,
            payload: vec![0x90, 0x80, 0x80, 0x00, 0xAA],
        };
        assert_eq!(
            pkt.to_bytes(0x0102_0304, 96),
            [
                0x80, 0xE0, 0x12, 0x34, 0xDE, 0xAD, 0xBE, 0xEF, 0x01, 0x02, 0x03, 0x04, 0x90, 0x80,
                0x80, 0x00, 0xAA
            ]
        );
        let unmarked = RtpPacket {
            marker: false,
            ..pkt.clone()
        };
        // Payload type is masked to 7 bits and never touches the marker.
        assert_eq!(unmarked.to_bytes(0, 0xFF)[1], 0x7F);
        assert_eq!(pkt.as_packet_ref().to_packet(), pkt);
    }
}

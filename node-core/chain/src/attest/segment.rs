//! Cutting the encoded stream into attested segments, and the signer's chain state.
//!
//! [`SegmentBuilder`] sits on the encode thread as a [`FrameObserver`]: per frame it hashes the
//! encoded bytes (`SHA-256(frame)` is the leaf data) into an incremental RFC 6962 tree and
//! updates the segment's RTP and capture-time range and counts. Segments are cut by capture
//! time, which the frames carry, so the builder reads no clock: a segment closes when a frame's
//! capture time reaches the segment's start (its first frame's capture time) plus the segment
//! length, and that frame starts the next one. Closed segments wait in a bounded queue for the
//! firmware to attest them; when it falls behind, the oldest is dropped and counted.
//!
//! [`AttestationChain`] is what the signer keeps between segments: the next sequence number
//! and the hash of the last attestation. The firmware persists both, so a restarted node
//! continues its chain instead of starting a new one.

use std::collections::VecDeque;

use ed25519_compact::KeyPair;
use serde::{Deserialize, Serialize};

use super::merkle::MerkleAccumulator;
use super::record::{
    Attestation, FORMAT_VERSION, MAX_CHAIN_ID_LEN, MAX_STREAM_ID_LEN, SignedAttestation, sign,
};
use super::{AttestError, sha256};
use sutantra_core::observer::{EncodedFrameInfo, FrameObserver};

/// Default segment length: 10 s of capture time.
pub const DEFAULT_SEGMENT_US: u64 = 10_000_000;

/// Default number of closed segments waiting to be attested.
pub const DEFAULT_QUEUE_CAPACITY: usize = 8;

/// Largest accepted queue capacity.
pub const MAX_QUEUE_CAPACITY: usize = 1024;

/// Settings of a [`SegmentBuilder`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegmentConfig {
    /// Segment length in microseconds of capture time (at least 1).
    pub segment_us: u64,
    /// Closed segments kept until taken, 1 to [`MAX_QUEUE_CAPACITY`].
    pub queue_capacity: usize,
}

impl Default for SegmentConfig {
    fn default() -> Self {
        Self {
            segment_us: DEFAULT_SEGMENT_US,
            queue_capacity: DEFAULT_QUEUE_CAPACITY,
        }
    }
}

/// A closed segment: what an [`Attestation`] states about a run of frames
/// ([`Attestation::segment`]).
///
/// Part of the signed encoding: the fields, their order and their types are the wire format
/// (postcard, in place), so they change only with the format version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Segment {
    /// RTP timestamp of the first frame.
    pub first_rtp_ts: u32,
    /// RTP timestamp of the last frame.
    pub last_rtp_ts: u32,
    /// Capture time of the first frame (µs since the UNIX epoch).
    pub first_capture_us: u64,
    /// Capture time of the last frame.
    pub last_capture_us: u64,
    /// Frames in the segment (at least 1).
    pub frame_count: u32,
    /// Encoded bytes of those frames.
    pub byte_count: u64,
    /// RFC 6962 root over `SHA-256(frame)` of each frame, in order.
    pub merkle_root: [u8; 32],
}

/// The segment being filled.
#[derive(Debug, Clone)]
struct OpenSegment {
    first_rtp_ts: u32,
    last_rtp_ts: u32,
    first_capture_us: u64,
    last_capture_us: u64,
    frame_count: u32,
    byte_count: u64,
    tree: MerkleAccumulator,
}

impl OpenSegment {
    fn start(info: &EncodedFrameInfo, data: &[u8]) -> Self {
        let mut open = Self {
            first_rtp_ts: info.rtp_timestamp,
            last_rtp_ts: info.rtp_timestamp,
            first_capture_us: info.capture_us,
            last_capture_us: info.capture_us,
            frame_count: 0,
            byte_count: 0,
            tree: MerkleAccumulator::new(),
        };
        open.add(info, data);
        open
    }

    fn add(&mut self, info: &EncodedFrameInfo, data: &[u8]) {
        self.tree.push_leaf(&sha256(data));
        self.last_rtp_ts = info.rtp_timestamp;
        self.last_capture_us = info.capture_us;
        self.frame_count = self.frame_count.saturating_add(1);
        self.byte_count = self.byte_count.saturating_add(data.len() as u64);
    }

    /// Whether the frame `info` belongs to the next segment.
    fn ends_before(&self, info: &EncodedFrameInfo, segment_us: u64) -> bool {
        info.capture_us >= self.first_capture_us.saturating_add(segment_us)
            // The realtime clock stepped back: keep each segment's capture range in order.
            || info.capture_us < self.last_capture_us
            // Keep the count exact.
            || self.frame_count == u32::MAX
    }

    fn close(&self) -> Segment {
        Segment {
            first_rtp_ts: self.first_rtp_ts,
            last_rtp_ts: self.last_rtp_ts,
            first_capture_us: self.first_capture_us,
            last_capture_us: self.last_capture_us,
            frame_count: self.frame_count,
            byte_count: self.byte_count,
            merkle_root: self.tree.root(),
        }
    }
}

/// Hashes every encoded frame and cuts the stream into segments of capture time.
///
/// A segment closes when a frame's capture time is at or past the segment's first capture time
/// plus [`SegmentConfig::segment_us`], or earlier than the previous frame's (the clock stepped
/// back); that frame opens the next segment. Memory is fixed: one open segment (an O(log n)
/// tree state) and a queue of at most [`SegmentConfig::queue_capacity`] closed segments,
/// allocated up front.
#[derive(Debug)]
pub struct SegmentBuilder {
    config: SegmentConfig,
    open: Option<OpenSegment>,
    queue: VecDeque<Segment>,
    closed_segments: u64,
    dropped_segments: u64,
}

impl SegmentBuilder {
    /// A builder with `config`; refuses a zero segment length or a queue capacity outside
    /// 1..=[`MAX_QUEUE_CAPACITY`].
    pub fn new(config: SegmentConfig) -> Result<Self, AttestError> {
        if config.segment_us == 0 {
            return Err(AttestError::InvalidConfig(
                "segment length must be at least 1 µs (default 10 s)",
            ));
        }
        if config.queue_capacity == 0 || config.queue_capacity > MAX_QUEUE_CAPACITY {
            return Err(AttestError::InvalidConfig(
                "segment queue capacity must be between 1 and 1024 (default 8)",
            ));
        }
        Ok(Self {
            config,
            open: None,
            queue: VecDeque::with_capacity(config.queue_capacity),
            closed_segments: 0,
            dropped_segments: 0,
        })
    }

    /// The settings in use.
    pub fn config(&self) -> SegmentConfig {
        self.config
    }

    /// Takes the oldest closed segment, if any.
    pub fn take_segment(&mut self) -> Option<Segment> {
        self.queue.pop_front()
    }

    /// Closes and returns the open segment (on shutdown), leaving the queue as it is. Take the
    /// queued segments first to keep them in order.
    pub fn flush(&mut self) -> Option<Segment> {
        self.open.take().map(|open| open.close())
    }

    /// Closed segments waiting in the queue.
    pub fn pending(&self) -> usize {
        self.queue.len()
    }

    /// Frames in the open segment (0 when none is open).
    pub fn open_frames(&self) -> u32 {
        self.open.as_ref().map_or(0, |open| open.frame_count)
    }

    /// Segments closed by frames so far (not counting [`flush`](Self::flush)).
    pub fn closed_segments(&self) -> u64 {
        self.closed_segments
    }

    /// Closed segments dropped because the queue was full (never attested).
    pub fn dropped_segments(&self) -> u64 {
        self.dropped_segments
    }

    fn enqueue(&mut self, segment: Segment) {
        if self.queue.len() >= self.config.queue_capacity {
            self.queue.pop_front();
            self.dropped_segments = self.dropped_segments.saturating_add(1);
        }
        self.queue.push_back(segment);
        self.closed_segments = self.closed_segments.saturating_add(1);
    }
}

impl FrameObserver for SegmentBuilder {
    fn on_encoded(&mut self, info: &EncodedFrameInfo, data: &[u8]) {
        match &mut self.open {
            Some(open) if !open.ends_before(info, self.config.segment_us) => open.add(info, data),
            _ => {
                if let Some(closed) = self.open.replace(OpenSegment::start(info, data)) {
                    self.enqueue(closed.close());
                }
            }
        }
    }
}

/// The signer's side of the attestation chain: stream identity, next sequence number and the
/// hash of the last attestation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttestationChain {
    chain_id: String,
    stream_id: String,
    next_seq: u64,
    prev_hash: [u8; 32],
}

impl AttestationChain {
    /// Chain state for a stream. A new stream starts at `next_seq` 0 with
    /// [`GENESIS_PREV_HASH`](super::GENESIS_PREV_HASH); a restarted node passes what it
    /// persisted from [`next_seq`](Self::next_seq) and [`prev_hash`](Self::prev_hash).
    /// Refuses a `chain_id` over 50 bytes or a `stream_id` over 64, which would not decode.
    pub fn new(
        chain_id: impl Into<String>,
        stream_id: impl Into<String>,
        next_seq: u64,
        prev_hash: [u8; 32],
    ) -> Result<Self, AttestError> {
        let chain_id = chain_id.into();
        let stream_id = stream_id.into();
        for (field, value, max) in [
            ("chain_id", &chain_id, MAX_CHAIN_ID_LEN),
            ("stream_id", &stream_id, MAX_STREAM_ID_LEN),
        ] {
            if value.len() > max {
                return Err(AttestError::FieldTooLong {
                    field,
                    len: value.len(),
                    max,
                });
            }
        }
        Ok(Self {
            chain_id,
            stream_id,
            next_seq,
            prev_hash,
        })
    }

    /// Signs an attestation of `segment`, anchored at the verified block `anchor_height` /
    /// `anchor_hash`, as the next link; advances the sequence and the link.
    pub fn attest(
        &mut self,
        segment: &Segment,
        anchor_height: u64,
        anchor_hash: [u8; 32],
        key: &KeyPair,
    ) -> SignedAttestation {
        let attestation = Attestation {
            version: FORMAT_VERSION,
            chain_id: self.chain_id.clone(),
            anchor_height,
            anchor_hash,
            stream_id: self.stream_id.clone(),
            segment_seq: self.next_seq,
            segment: *segment,
            prev_hash: self.prev_hash,
        };
        let signed = sign(attestation, key);
        self.next_seq = self.next_seq.saturating_add(1);
        self.prev_hash = signed.hash();
        signed
    }

    /// The chain id written into attestations.
    pub fn chain_id(&self) -> &str {
        &self.chain_id
    }

    /// The stream id written into attestations.
    pub fn stream_id(&self) -> &str {
        &self.stream_id
    }

    /// Sequence number of the next attestation (persist it).
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// Hash of the last attestation, the next one's `prev_hash` (persist it).
    pub fn prev_hash(&self) -> [u8; 32] {
        self.prev_hash
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::attest::merkle::reference_root;
    use crate::attest::{GENESIS_PREV_HASH, SignedAttestation, verify_chain};
    use ed25519_compact::Seed;

    const BASE_US: u64 = 1_700_000_000_000_000;
    const BASE_RTP: u32 = 0xffff_0000;

    /// Frame `i` of a synthetic 30 fps stream: exact capture times (i / 30 s) and RTP ticks.
    fn frame(i: u64) -> (EncodedFrameInfo, Vec<u8>) {
        let data: Vec<u8> = (0..100 + i % 50).map(|j| (i ^ j) as u8).collect();
        let info = EncodedFrameInfo {
            index: i,
            capture_us: BASE_US + i * 1_000_000 / 30,
            rtp_timestamp: BASE_RTP.wrapping_add((i * 3_000) as u32),
            keyframe: i.is_multiple_of(60),
            bytes: data.len(),
        };
        (info, data)
    }

    fn builder(segment_us: u64, queue_capacity: usize) -> SegmentBuilder {
        SegmentBuilder::new(SegmentConfig {
            segment_us,
            queue_capacity,
        })
        .expect("valid config")
    }

    /// The segment of frames `range`, computed directly from the frames.
    fn expected(range: std::ops::Range<u64>) -> Segment {
        let frames: Vec<_> = range.clone().map(frame).collect();
        let leaves: Vec<[u8; 32]> = frames.iter().map(|(_, d)| sha256(d)).collect();
        let (first, last) = (&frames[0].0, &frames[frames.len() - 1].0);
        Segment {
            first_rtp_ts: first.rtp_timestamp,
            last_rtp_ts: last.rtp_timestamp,
            first_capture_us: first.capture_us,
            last_capture_us: last.capture_us,
            frame_count: frames.len() as u32,
            byte_count: frames.iter().map(|(_, d)| d.len() as u64).sum(),
            merkle_root: reference_root(&leaves),
        }
    }

    fn key(seed: u8) -> KeyPair {
        KeyPair::try_from_seed(Seed::new([seed; 32])).expect("non-zero seed")
    }

    #[test]
    fn attest_segments_cut_every_10_s_of_capture_time() {
        let mut b = SegmentBuilder::new(SegmentConfig::default()).expect("default config");
        // 35 s at 30 fps.
        for i in 0..1050 {
            let (info, data) = frame(i);
            b.on_encoded(&info, &data);
        }
        assert_eq!(
            (b.pending(), b.closed_segments(), b.dropped_segments()),
            (3, 3, 0)
        );
        assert_eq!(b.open_frames(), 150);
        for n in 0..3 {
            let seg = b.take_segment().expect("closed segment");
            assert_eq!(seg.frame_count, 300);
            assert_eq!(seg, expected(n * 300..(n + 1) * 300), "segment {n}");
            assert_eq!(seg.first_capture_us, BASE_US + n * 10_000_000);
        }
        assert_eq!(b.take_segment(), None);
        let open = b.flush().expect("open segment");
        assert_eq!(open, expected(900..1050));
        assert_eq!(b.flush(), None);
        assert_eq!(b.open_frames(), 0);
    }

    #[test]
    fn attest_segment_rtp_range_survives_wraparound() {
        let mut b = builder(DEFAULT_SEGMENT_US, 8);
        for i in 0..300 {
            let (info, data) = frame(i);
            b.on_encoded(&info, &data);
        }
        let seg = b.flush().expect("open segment");
        assert_eq!(seg.first_rtp_ts, BASE_RTP);
        assert_eq!(seg.last_rtp_ts, BASE_RTP.wrapping_add(299 * 3_000));
        assert!(seg.last_rtp_ts < seg.first_rtp_ts, "wrapped");
    }

    #[test]
    fn attest_segment_queue_drops_the_oldest_and_counts() {
        // One-second segments, queue of 2, 5.5 s of frames: 5 closed, 3 dropped.
        let mut b = builder(1_000_000, 2);
        for i in 0..165 {
            let (info, data) = frame(i);
            b.on_encoded(&info, &data);
        }
        assert_eq!(b.closed_segments(), 5);
        assert_eq!(b.dropped_segments(), 3);
        assert_eq!(b.pending(), 2);
        assert_eq!(b.take_segment(), Some(expected(90..120)));
        assert_eq!(b.take_segment(), Some(expected(120..150)));
        assert_eq!(b.take_segment(), None);
        assert_eq!(b.flush(), Some(expected(150..165)));
    }

    #[test]
    fn attest_segment_closes_when_the_clock_steps_back() {
        let mut b = builder(DEFAULT_SEGMENT_US, 8);
        let (mut info, data) = frame(10);
        b.on_encoded(&info, &data);
        info.capture_us -= 1;
        b.on_encoded(&info, &data);
        let first = b.take_segment().expect("closed by the step back");
        assert_eq!(first.frame_count, 1);
        assert_eq!(b.open_frames(), 1);
    }

    #[test]
    fn attest_segment_config_is_checked() {
        for (segment_us, queue_capacity) in [(0, 8), (1, 0), (1, MAX_QUEUE_CAPACITY + 1)] {
            assert!(matches!(
                SegmentBuilder::new(SegmentConfig {
                    segment_us,
                    queue_capacity
                }),
                Err(AttestError::InvalidConfig(_))
            ));
        }
        let b = builder(1, MAX_QUEUE_CAPACITY);
        assert_eq!(b.config().queue_capacity, MAX_QUEUE_CAPACITY);
    }

    #[test]
    fn attest_chain_links_segments_and_continues_after_restart() {
        let key = key(3);
        let mut b = builder(1_000_000, 8);
        for i in 0..125 {
            let (info, data) = frame(i);
            b.on_encoded(&info, &data);
        }
        let mut chain =
            AttestationChain::new("sutantra-1", "cam0", 0, GENESIS_PREV_HASH).expect("valid ids");
        let mut signed: Vec<SignedAttestation> = Vec::new();
        while let Some(seg) = b.take_segment() {
            signed.push(chain.attest(&seg, 100, [7; 32], &key));
        }
        assert_eq!(signed.len(), 4);
        assert_eq!(chain.next_seq(), 4);
        assert_eq!(chain.prev_hash(), signed[3].hash());

        // Restart from the persisted state.
        let mut resumed = AttestationChain::new(
            chain.chain_id(),
            chain.stream_id(),
            chain.next_seq(),
            chain.prev_hash(),
        )
        .expect("valid ids");
        let last = b.flush().expect("open segment");
        signed.push(resumed.attest(&last, 101, [8; 32], &key));
        assert_eq!(verify_chain(&signed), Ok(()));

        let att = &signed[4].attestation;
        assert_eq!(att.segment_seq, 4);
        assert_eq!(att.segment.frame_count, last.frame_count);
        assert_eq!(att.segment.merkle_root, last.merkle_root);
        assert_eq!((att.anchor_height, att.anchor_hash), (101, [8; 32]));
        assert_eq!(signed[0].attestation.prev_hash, GENESIS_PREV_HASH);
        for s in &signed {
            assert_eq!(SignedAttestation::from_bytes(&s.to_bytes()).as_ref(), Ok(s));
        }
    }

    #[test]
    fn attest_chain_refuses_ids_that_would_not_decode() {
        assert!(matches!(
            AttestationChain::new("c".repeat(51), "cam0", 0, GENESIS_PREV_HASH),
            Err(AttestError::FieldTooLong {
                field: "chain_id",
                ..
            })
        ));
        assert!(matches!(
            AttestationChain::new("c", "s".repeat(65), 0, GENESIS_PREV_HASH),
            Err(AttestError::FieldTooLong {
                field: "stream_id",
                ..
            })
        ));
    }
}

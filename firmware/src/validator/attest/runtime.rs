//! From encoded frames to committed attestations: the segment observer on the encode thread and
//! the attestation thread.
//!
//! [`SegmentObserver`] wraps the core's `SegmentBuilder` (frame hashes, RFC 6962 root per
//! segment) on the encode thread, where nothing may block: each closed segment is offered to a
//! bounded channel with `try_send`, and a full channel drops the segment and counts it. When the
//! encode thread ends (shutdown), dropping the observer flushes the open segment into the channel.
//!
//! The attestation thread takes each segment, anchors it to the newest verified header (none
//! yet, or halted: the segment is counted as unanchored and skipped), signs it with the node key
//! through the core's `AttestationChain`, and commits it to the store's outbox together with the
//! new `next_seq`/`prev_hash` in one durable transaction. Only then is it counted and logged as
//! stored. A full outbox prunes its oldest settled entries first; an unsubmitted one dropped
//! (only from an outbox full of them) is counted and logged as an error. If the commit fails, the chain is rebuilt from the store, so a seq is never skipped.
//!
//! A store that cannot write (a full data disk) never stops this thread: the segment is lost,
//! counted (`sutantra_attest_segments_lost_store_total`) and logged once per outage; the chain
//! is rebuilt from the store before the next segment (the store reopens itself, see
//! [`crate::validator::store`]), and attestations are stored again once the disk has room.

use crate::stats::{ChainStats, Stats};
use crate::validator::chain::{ChainShared, unix_now};
use crate::validator::store::{Store, StoreError};
use ed25519_compact::KeyPair;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, SyncSender, TrySendError};
use sutantra_chain::attest::{AttestationChain, Segment, SegmentBuilder};
use sutantra_core::observer::{EncodedFrameInfo, FrameObserver};

/// Closed segments waiting for the attestation thread.
pub const SEGMENT_CHANNEL: usize = 16;

/// The encode thread's observer: builds segments and hands them on without blocking.
#[derive(Debug)]
pub struct SegmentObserver {
    builder: SegmentBuilder,
    tx: SyncSender<Segment>,
    stats: Arc<Stats>,
    full_streak: bool,
}

impl SegmentObserver {
    /// An observer sending closed segments into `tx`.
    pub fn new(builder: SegmentBuilder, tx: SyncSender<Segment>, stats: Arc<Stats>) -> Self {
        Self {
            builder,
            tx,
            stats,
            full_streak: false,
        }
    }

    fn offer(&mut self, segment: Segment) {
        match self.tx.try_send(segment) {
            Ok(()) => self.full_streak = false,
            Err(TrySendError::Full(_)) => {
                ChainStats::inc(&self.stats.chain.segments_dropped);
                if !self.full_streak {
                    tracing::warn!(
                        "the attestation thread is behind; closed segments are dropped (counted)"
                    );
                    self.full_streak = true;
                }
            }
            Err(TrySendError::Disconnected(_)) => {}
        }
    }
}

impl FrameObserver for SegmentObserver {
    fn on_encoded(&mut self, info: &EncodedFrameInfo, data: &[u8]) {
        self.builder.on_encoded(info, data);
        while let Some(segment) = self.builder.take_segment() {
            self.offer(segment);
        }
    }
}

impl Drop for SegmentObserver {
    /// Shutdown: the open segment is attested too (if the attestation thread finds an anchor).
    fn drop(&mut self) {
        while let Some(segment) = self.builder.take_segment() {
            self.offer(segment);
        }
        if let Some(segment) = self.builder.flush() {
            self.offer(segment);
        }
    }
}

/// What the attestation thread needs.
#[derive(Debug)]
pub struct Attester {
    /// The node key.
    pub key: KeyPair,
    /// Chain id written into attestations.
    pub chain_id: String,
    /// Stream id written into attestations.
    pub stream_id: String,
    /// Outbox bound.
    pub capacity: usize,
    /// The store.
    pub store: Arc<Store>,
    /// Counters.
    pub stats: Arc<Stats>,
    /// Anchor, halted flag, wake-up of the submitter.
    pub shared: Arc<ChainShared>,
}

impl Attester {
    fn chain_from_store(&self) -> Result<AttestationChain, String> {
        let meta = self.store.meta().map_err(|e| e.to_string())?;
        AttestationChain::new(
            self.chain_id.clone(),
            self.stream_id.clone(),
            meta.next_seq,
            meta.prev_hash,
        )
        .map_err(|e| e.to_string())
    }

    /// Runs until every sender of `rx` is gone (the encode thread ended), then returns.
    pub fn run(self, rx: Receiver<Segment>) {
        let c = &self.stats.chain;
        // `None`: to be rebuilt from the store before the next segment (the store failed).
        let mut chain = match self.chain_from_store() {
            Ok(c) => Some(c),
            Err(e) => {
                tracing::error!(error = %e, "cannot read the attestation chain from the store; \
                    retrying at the next segment");
                None
            }
        };
        let mut unanchored_streak = false;
        // Segments lost in the current store outage (logged when it starts and when it ends).
        let mut lost_streak: u64 = 0;
        for segment in rx {
            let Some(anchor) = self.shared.anchor() else {
                ChainStats::inc(&c.unanchored);
                if !unanchored_streak {
                    tracing::warn!(
                        halted = self.shared.halted(),
                        "segment not attested: no verified header yet, or halted (counted as \
                         unanchored)"
                    );
                    unanchored_streak = true;
                }
                continue;
            };
            if unanchored_streak {
                tracing::info!(anchor_height = anchor.height, "attesting segments again");
                unanchored_streak = false;
            }
            let ch = match chain.as_mut() {
                Some(ch) => ch,
                None => match self.chain_from_store() {
                    Ok(rebuilt) => chain.insert(rebuilt),
                    Err(e) => {
                        self.lost(&mut lost_streak, None, &e);
                        continue;
                    }
                },
            };
            let signed = ch.attest(&segment, anchor.height, anchor.hash, &self.key);
            let seq = signed.attestation.segment_seq;
            let bytes = signed.to_bytes();
            match self.store.append_attestation(
                seq,
                signed.hash(),
                &bytes,
                self.capacity,
                unix_now(),
            ) {
                Ok(appended) => {
                    ChainStats::inc(&c.attestations);
                    // The outage ends when the store says so (not at a commit that fit in
                    // between failing ones on a full disk).
                    if lost_streak > 0 && self.store.failing().is_none() {
                        tracing::info!(
                            lost_segments = lost_streak,
                            seq,
                            "attestations are stored again"
                        );
                        lost_streak = 0;
                    }
                    c.outbox_depth.store(appended.pending, Ordering::Relaxed);
                    if !appended.pruned.is_empty() {
                        tracing::debug!(
                            pruned = ?appended.pruned,
                            capacity = self.capacity,
                            "outbox full: the oldest submitted/rejected attestations were pruned"
                        );
                    }
                    if !appended.dropped.is_empty() {
                        c.outbox_dropped
                            .fetch_add(appended.dropped.len() as u64, Ordering::Relaxed);
                        tracing::error!(
                            dropped = ?appended.dropped,
                            capacity = self.capacity,
                            "the outbox is full of UNSUBMITTED attestations: the oldest were \
                             dropped and will never be sent (counted in \
                             sutantra_attest_outbox_dropped_total); the chain has been \
                             unreachable too long, or raise attest.outbox_capacity"
                        );
                    }
                    tracing::info!(
                        seq,
                        anchor_height = anchor.height,
                        frames = segment.frame_count,
                        bytes = segment.byte_count,
                        "attestation stored"
                    );
                    self.shared.notify();
                }
                Err(e) => {
                    if matches!(e, StoreError::Db { .. }) {
                        self.lost(&mut lost_streak, Some(seq), &e.to_string());
                    } else {
                        tracing::error!(seq, error = %e, "attestation NOT stored; segment lost");
                    }
                    // The seq was not committed: the next one reuses it (rebuilt from the store,
                    // now or, if the store cannot be read either, before the next segment).
                    chain = self.chain_from_store().ok();
                }
            }
        }
    }

    /// A segment that the store could not take: counted, logged once per outage.
    fn lost(&self, streak: &mut u64, seq: Option<u64>, error: &str) {
        ChainStats::inc(&self.stats.chain.segments_lost_store);
        if *streak == 0 {
            tracing::error!(
                seq,
                error,
                "the store cannot write: segments are NOT attested and are lost until it can \
                 (counted in sutantra_attest_segments_lost_store_total); the video is not \
                 affected"
            );
        }
        *streak += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::validator::chain::Anchor;
    use ed25519_compact::Seed;
    use std::time::Duration;
    use sutantra_chain::attest::{SegmentConfig, SignedAttestation, verify_chain};

    fn frame(i: u64) -> (EncodedFrameInfo, Vec<u8>) {
        let data = vec![i as u8; 50];
        (
            EncodedFrameInfo {
                index: i,
                capture_us: 1_700_000_000_000_000 + i * 100_000,
                rtp_timestamp: (i * 9_000) as u32,
                keyframe: i == 0,
                bytes: data.len(),
            },
            data,
        )
    }

    #[test]
    fn segments_become_chained_stored_attestations_and_shutdown_flushes() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = Arc::new(Store::open(dir.path(), Duration::ZERO).expect("store"));
        let stats = Arc::new(Stats::new());
        let shared = Arc::new(ChainShared::new());
        let (tx, rx) = std::sync::mpsc::sync_channel(SEGMENT_CHANNEL);
        let builder = SegmentBuilder::new(SegmentConfig {
            segment_us: 1_000_000,
            queue_capacity: 8,
        })
        .expect("builder");
        let mut obs = SegmentObserver::new(builder, tx, stats.clone());
        // No anchor yet: the first segment is unanchored.
        for i in 0..11 {
            let (info, data) = frame(i);
            obs.on_encoded(&info, &data);
        }
        let attester = Attester {
            key: KeyPair::from_seed(Seed::new([7; 32])),
            chain_id: "c".into(),
            stream_id: "camera0".into(),
            capacity: 100,
            store: store.clone(),
            stats: stats.clone(),
            shared: shared.clone(),
        };
        // Let the attestation thread see the first segment before an anchor exists.
        let t = std::thread::spawn(move || attester.run(rx));
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while stats.chain.unanchored.load(Ordering::Relaxed) == 0 {
            assert!(
                std::time::Instant::now() < deadline,
                "unanchored never counted"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        shared.set_anchor(Anchor {
            height: 9,
            hash: [9; 32],
            expires_unix_s: u64::MAX,
        });
        for i in 11..35 {
            let (info, data) = frame(i);
            obs.on_encoded(&info, &data);
        }
        drop(obs); // flushes frames 30..35
        t.join().expect("attester");
        let entries = store.outbox(0, u64::MAX).expect("outbox");
        let list: Vec<SignedAttestation> = entries
            .iter()
            .map(|e| SignedAttestation::from_bytes(&e.signed).expect("decodes"))
            .collect();
        assert_eq!(
            list.len(),
            3,
            "segments 10..20, 20..30 and the flushed 30..35"
        );
        verify_chain(&list).expect("a valid chain");
        assert_eq!(list[0].attestation.segment_seq, 0);
        assert_eq!(list[2].attestation.segment.frame_count, 5);
        assert!(list.iter().all(|a| a.attestation.anchor_height == 9));
        assert_eq!(stats.chain.attestations.load(Ordering::Relaxed), 3);
        assert_eq!(stats.chain.unanchored.load(Ordering::Relaxed), 1);
        let meta = store.meta().expect("meta");
        assert_eq!((meta.next_seq, meta.prev_hash), (3, list[2].hash()));
    }

    #[test]
    fn a_store_that_cannot_write_loses_segments_counted_and_attesting_resumes() {
        let dir = tempfile::tempdir().expect("temp dir");
        let full = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let store = Arc::new(crate::validator::store::tests::open_on_disk(
            dir.path(),
            &full,
            Duration::ZERO,
        ));
        let stats = Arc::new(Stats::new());
        store.report_to(stats.clone());
        let shared = Arc::new(ChainShared::new());
        shared.set_anchor(Anchor {
            height: 9,
            hash: [9; 32],
            expires_unix_s: u64::MAX,
        });
        let (tx, rx) = std::sync::mpsc::sync_channel(SEGMENT_CHANNEL);
        let builder = SegmentBuilder::new(SegmentConfig {
            segment_us: 1_000_000,
            queue_capacity: 8,
        })
        .expect("builder");
        let mut obs = SegmentObserver::new(builder, tx, stats.clone());
        let attester = Attester {
            key: KeyPair::from_seed(Seed::new([7; 32])),
            chain_id: "c".into(),
            stream_id: "camera0".into(),
            capacity: 100,
            store: store.clone(),
            stats: stats.clone(),
            shared,
        };
        let t = std::thread::spawn(move || attester.run(rx));
        let wait = |what: &str, cond: &dyn Fn() -> bool| {
            let deadline = std::time::Instant::now() + Duration::from_secs(10);
            while !cond() {
                assert!(std::time::Instant::now() < deadline, "never: {what}");
                std::thread::sleep(Duration::from_millis(5));
            }
        };
        let c = &stats.chain;
        // Closes `n` more segments (a segment closes when the next one's first frame comes).
        let segments = |next: &mut u64, n: u64, obs: &mut SegmentObserver| {
            for i in *next..*next + n * 10 {
                let (info, data) = frame(i);
                obs.on_encoded(&info, &data);
            }
            *next += n * 10;
        };
        // Frames 0..=20 close two segments.
        let mut next = 1u64;
        let (info, data) = frame(0);
        obs.on_encoded(&info, &data);
        segments(&mut next, 2, &mut obs);
        wait("2 stored", &|| c.attestations.load(Ordering::Relaxed) == 2);
        // The disk fills: the next segments are lost and counted; the thread goes on.
        full.store(true, std::sync::atomic::Ordering::SeqCst);
        segments(&mut next, 3, &mut obs);
        wait("3 lost", &|| {
            c.segments_lost_store.load(Ordering::Relaxed) == 3
        });
        assert!(c.store_errors.load(Ordering::Relaxed) >= 3);
        assert!(c.last_error().is_some_and(|e| e.contains("node.redb")));
        // Space returns: attestations are stored again, from the next seq.
        full.store(false, std::sync::atomic::Ordering::SeqCst);
        segments(&mut next, 2, &mut obs);
        wait("2 more stored", &|| {
            c.attestations.load(Ordering::Relaxed) == 4
        });
        assert!(c.last_error().is_none());
        assert!(c.store_reopens.load(Ordering::Relaxed) >= 1);
        drop(obs);
        t.join().expect("attester");
        let list: Vec<SignedAttestation> = store
            .outbox(0, u64::MAX)
            .expect("outbox")
            .iter()
            .map(|e| SignedAttestation::from_bytes(&e.signed).expect("decodes"))
            .collect();
        // Seqs run on without a gap: a segment the store lost never got a seq.
        let seqs: Vec<u64> = list.iter().map(|a| a.attestation.segment_seq).collect();
        assert_eq!(seqs, (0..seqs.len() as u64).collect::<Vec<_>>());
        assert!(seqs.len() >= 4, "{seqs:?}");
        verify_chain(&list).expect("a valid chain");
    }
}

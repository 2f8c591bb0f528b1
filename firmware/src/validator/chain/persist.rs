//! The trusted state's way to the store, on a write budget: what keeps an SD card alive.
//!
//! The chain thread verifies a new height every poll (about every 5 s), in memory. Writing each
//! verified light block to the store (about 100 KB, more with a large validator set, and an
//! fsync'd commit each time) would wear a board's SD card for nothing: resuming needs only the
//! newest trusted light block, and an older one is as good (resuming re-verifies from it to the
//! chain's head with skipping verification, a few fetches). So [`TrustedWriter`] writes:
//!
//! - the first trusted block of a run at once (the trust root after a bootstrap, or the first new
//!   height after resuming), so a fresh node never depends on the budget;
//! - after that, at most once per `chain.persist_interval_s` (default 60 s): a block verified
//!   sooner waits in memory and only the newest waiting one is written when the budget allows;
//! - whatever waits, at a clean stop ([`TrustedWriter::flush`]: by the chain thread when it stops,
//!   and by the node's shutdown if that thread is still inside an RPC call).
//!
//! A crash (`kill -9`, power cut) loses at most one interval of trusted progress, which the next
//! start re-verifies from the stored block; nothing it loses was anything but a cache. The halt
//! after a witness conflict is not budgeted: it is written at once by the chain thread.
//!
//! Time is an input (`now_ms`, milliseconds on a monotonic clock), so the budget is tested with
//! synthetic time.

use super::sync::light_block_json;
use crate::validator::store::Store;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use sutantra_chain::light::LightBlock;

/// When the next write of the trusted state may happen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PersistBudget {
    interval_ms: u64,
    last_ms: Option<u64>,
}

impl PersistBudget {
    /// At most one write per `interval`; the first one is due at once.
    pub fn new(interval: Duration) -> Self {
        Self {
            interval_ms: u64::try_from(interval.as_millis()).unwrap_or(u64::MAX),
            last_ms: None,
        }
    }

    /// A write is allowed at `now_ms`.
    pub fn due(&self, now_ms: u64) -> bool {
        self.last_ms
            .is_none_or(|last| now_ms.saturating_sub(last) >= self.interval_ms)
    }

    /// A write happened at `now_ms`.
    pub fn spent(&mut self, now_ms: u64) {
        self.last_ms = Some(now_ms);
    }
}

/// A verified block not yet written.
#[derive(Debug)]
struct Waiting {
    height: u64,
    block: LightBlock,
    verified_unix: u64,
}

#[derive(Debug)]
struct Inner {
    budget: PersistBudget,
    waiting: Option<Waiting>,
    stored_height: Option<u64>,
    writes: u64,
}

/// Writes verified light blocks to the store within a [`PersistBudget`] (see the module header).
/// Shared by the chain thread and the node's shutdown.
#[derive(Debug)]
pub struct TrustedWriter {
    store: Arc<Store>,
    keep: usize,
    epoch: Instant,
    inner: Mutex<Inner>,
}

/// What a call did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wrote {
    /// Nothing was waiting, or the budget is spent: nothing written.
    Nothing,
    /// The block at this height was written.
    Height(u64),
}

impl TrustedWriter {
    /// A writer into `store`, keeping the newest `keep` blocks there, writing at most once per
    /// `interval`. `stored_height` is the newest height already in the store.
    pub fn new(
        store: Arc<Store>,
        keep: usize,
        interval: Duration,
        stored_height: Option<u64>,
    ) -> Self {
        Self {
            store,
            keep,
            epoch: Instant::now(),
            inner: Mutex::new(Inner {
                budget: PersistBudget::new(interval),
                waiting: None,
                stored_height,
                writes: 0,
            }),
        }
    }

    /// The node's clock for `now_ms`: milliseconds since this writer was made (monotonic).
    pub fn clock_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A newly verified `block` at `height` (verified at `verified_unix`, UNIX seconds): written
    /// now if the budget allows at `now_ms`, else kept (replacing an older one kept) for
    /// [`tick`](Self::tick) or [`flush`](Self::flush). An error keeps it too, to try again.
    pub fn verified(
        &self,
        height: u64,
        block: &LightBlock,
        verified_unix: u64,
        now_ms: u64,
    ) -> Result<Wrote, String> {
        let mut g = self.lock();
        if g.waiting.as_ref().is_some_and(|w| w.height >= height)
            || g.stored_height.is_some_and(|h| h >= height)
        {
            return Ok(Wrote::Nothing);
        }
        g.waiting = Some(Waiting {
            height,
            block: block.clone(),
            verified_unix,
        });
        if g.budget.due(now_ms) {
            self.write(&mut g, now_ms)
        } else {
            Ok(Wrote::Nothing)
        }
    }

    /// Writes the waiting block if the budget allows at `now_ms` (called every poll, so the
    /// newest height lands within one interval even when the chain stops growing).
    pub fn tick(&self, now_ms: u64) -> Result<Wrote, String> {
        let mut g = self.lock();
        if g.waiting.is_some() && g.budget.due(now_ms) {
            self.write(&mut g, now_ms)
        } else {
            Ok(Wrote::Nothing)
        }
    }

    /// Writes the waiting block now, whatever the budget (a clean stop).
    pub fn flush(&self, now_ms: u64) -> Result<Wrote, String> {
        let mut g = self.lock();
        self.write(&mut g, now_ms)
    }

    /// The newest height in the store.
    pub fn stored_height(&self) -> Option<u64> {
        self.lock().stored_height
    }

    /// The height verified but not yet written, if any.
    pub fn waiting_height(&self) -> Option<u64> {
        self.lock().waiting.as_ref().map(|w| w.height)
    }

    /// Blocks written by this writer.
    pub fn writes(&self) -> u64 {
        self.lock().writes
    }

    /// Writes the waiting block under the lock (so an older block never lands after a newer).
    fn write(&self, g: &mut Inner, now_ms: u64) -> Result<Wrote, String> {
        let Some(w) = g.waiting.take() else {
            return Ok(Wrote::Nothing);
        };
        let stored = light_block_json(&w.block).and_then(|json| {
            self.store
                .put_trusted(w.height, &json, self.keep, w.verified_unix)
                .map_err(|e| format!("height {} verified but not stored: {e}", w.height))
        });
        // A failed write spends the budget too: a failing card is not hammered every poll.
        g.budget.spent(now_ms);
        match stored {
            Ok(()) => {
                g.stored_height = Some(w.height);
                g.writes += 1;
                Ok(Wrote::Height(w.height))
            }
            Err(e) => {
                g.waiting = Some(w);
                Err(e)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::validator::chain::sync::tests::kvstore_block;

    const MIN: u64 = 60_000;

    #[test]
    fn the_budget_allows_the_first_write_then_one_per_interval() {
        let mut b = PersistBudget::new(Duration::from_secs(60));
        assert!(b.due(0));
        assert!(b.due(123_456));
        b.spent(1_000);
        assert!(!b.due(1_000));
        assert!(!b.due(60_999));
        assert!(b.due(61_000));
        // A clock that went backwards (never on a monotonic one) writes nothing early.
        assert!(!b.due(500));
    }

    #[test]
    fn one_write_a_minute_however_often_heights_are_verified() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = Arc::new(Store::open(dir.path(), Duration::ZERO).expect("store"));
        let w = TrustedWriter::new(store.clone(), 4, Duration::from_secs(60), None);
        let block = kvstore_block();
        // An hour of heights every 5 s, on synthetic time.
        let mut written = Vec::new();
        for i in 0..720u64 {
            let now = i * 5_000;
            let height = 10 + i;
            if let Wrote::Height(h) = w
                .verified(height, &block, 1_700_000_000 + i, now)
                .expect("ok")
            {
                written.push((now, h));
            }
            if let Wrote::Height(h) = w.tick(now).expect("tick") {
                written.push((now, h));
            }
        }
        assert_eq!(written[0], (0, 10), "the first height is written at once");
        assert_eq!(written.len(), 60, "one write a minute: {written:?}");
        assert!(written.windows(2).all(|p| p[1].0 - p[0].0 >= MIN));
        assert_eq!(w.writes(), 60);
        // Only the newest `keep` blocks stay, the newest written one last.
        let heights = store.trusted_heights().expect("heights");
        assert_eq!(heights.len(), 4);
        assert_eq!(heights.last(), written.last().map(|x| &x.1));
        // The last heights wait in memory; a clean stop writes the newest of them.
        assert_eq!(w.waiting_height(), Some(10 + 719));
        assert_eq!(w.flush(3_600_000).expect("flush"), Wrote::Height(729));
        assert_eq!(
            store.latest_trusted().expect("read").map(|x| x.0),
            Some(729)
        );
        assert_eq!(
            store.meta().expect("meta").last_verified_unix,
            1_700_000_719
        );
        assert_eq!(w.flush(3_600_001).expect("again"), Wrote::Nothing);
    }

    #[test]
    fn a_waiting_block_lands_when_the_interval_ends_without_a_new_height() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = Arc::new(Store::open(dir.path(), Duration::ZERO).expect("store"));
        let w = TrustedWriter::new(store.clone(), 8, Duration::from_secs(60), Some(9));
        let block = kvstore_block();
        // Not newer than the stored height: nothing to do.
        assert_eq!(w.verified(9, &block, 1, 0).expect("old"), Wrote::Nothing);
        assert_eq!(
            w.verified(10, &block, 1, 0).expect("first"),
            Wrote::Height(10)
        );
        assert_eq!(
            w.verified(11, &block, 2, 5_000).expect("2nd"),
            Wrote::Nothing
        );
        assert_eq!(w.tick(59_999).expect("early"), Wrote::Nothing);
        assert_eq!(w.tick(60_000).expect("due"), Wrote::Height(11));
        assert_eq!(w.tick(200_000).expect("none waiting"), Wrote::Nothing);
        assert_eq!(store.trusted_heights().expect("heights"), vec![10, 11]);
        assert_eq!(w.stored_height(), Some(11));
    }
}

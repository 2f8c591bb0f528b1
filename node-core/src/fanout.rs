//! `Fanout`: one encode to many viewers, each behind its own bounded queue; keyframe requests.
//!
//! The encoder runs once; every packet it produces (an `Arc<RtpPacket>` in the firmware, so
//! fanning out clones a pointer, not a payload) is pushed into every viewer's queue. Each queue is
//! allocated once, when the viewer joins, with the configured capacity and never grows: when a
//! viewer falls behind, its *oldest* item is dropped and counted for that viewer and in the total.
//! A slow viewer therefore costs only its own queue; it never delays or drops packets of others.
//! The number of viewers is bounded too: [`Fanout::add_viewer`] refuses with
//! [`FanoutError::Full`].
//!
//! **Keyframes.** A decoder can only start (or recover) at a keyframe. A viewer that joins, or
//! asks for one (an RTCP PLI or FIR from its session, via [`Fanout::request_keyframe`]), is marked
//! as waiting for a keyframe, and the encoder is asked for one through
//! [`Fanout::take_keyframe_request`]. While a viewer waits, ordinary items from
//! [`Fanout::push`] skip it (they are useless to its decoder); the first packet of a keyframe,
//! pushed with [`Fanout::push_keyframe_start`], is delivered to everyone and ends the wait.
//!
//! [`KeyframeLimiter`] keeps PLI/FIR storms from turning the stream into keyframes only: it allows
//! at most one forced keyframe per interval, and remembers a request refused inside the interval so
//! that it is honoured as soon as the interval ends. The usual loop, with `now` from the caller:
//!
//! ```
//! # use std::time::Duration;
//! # use sutantra_core::fanout::{Fanout, KeyframeLimiter};
//! # let mut fanout = Fanout::<u32>::new(16, 512).expect("capacity");
//! # let mut limiter = KeyframeLimiter::new(Duration::from_millis(500));
//! # let now = Duration::ZERO;
//! let requested = fanout.take_keyframe_request();
//! let force_keyframe = (requested && limiter.allow(now)) || limiter.poll(now);
//! ```

use std::collections::VecDeque;
use std::time::Duration;

/// Errors from [`Fanout`]; each message says what went wrong and what to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FanoutError {
    /// The viewer limit is reached.
    #[error("viewer limit of {max} reached: retry later or raise the viewer limit in the config")]
    Full {
        /// The configured viewer limit.
        max: usize,
    },
    /// The viewer id is not (or no longer) registered.
    #[error("viewer {0} is not connected (it left or was removed)")]
    UnknownViewer(ViewerId),
    /// A per-viewer queue capacity of zero was asked for.
    #[error("the per-viewer queue capacity must be at least 1 (512 packets is typical)")]
    ZeroQueueCapacity,
}

/// Identifies one viewer of a [`Fanout`]; ids are never reused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ViewerId(u64);

impl std::fmt::Display for ViewerId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// Counters of one viewer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ViewerStats {
    /// Items waiting in its queue.
    pub queued: usize,
    /// Items dropped (oldest first) because its queue was full.
    pub dropped: u64,
    /// Items taken out of its queue by its session.
    pub sent: u64,
    /// Items not queued because it was waiting for a keyframe.
    pub skipped: u64,
    /// It is waiting for the start of a keyframe.
    pub needs_keyframe: bool,
}

#[derive(Debug)]
struct Viewer<T> {
    id: ViewerId,
    queue: VecDeque<T>,
    stats: ViewerStats,
}

/// Fans items out to a bounded set of viewers, each with a bounded drop-oldest queue.
#[derive(Debug)]
pub struct Fanout<T: Clone> {
    viewers: Vec<Viewer<T>>,
    max_viewers: usize,
    queue_capacity: usize,
    next_id: u64,
    keyframe_requested: bool,
    total_dropped: u64,
}

impl<T: Clone> Fanout<T> {
    /// A fan-out for at most `max_viewers` viewers with `queue_capacity` items (at least 1)
    /// queued per viewer.
    pub fn new(max_viewers: usize, queue_capacity: usize) -> Result<Self, FanoutError> {
        if queue_capacity == 0 {
            return Err(FanoutError::ZeroQueueCapacity);
        }
        Ok(Self {
            viewers: Vec::with_capacity(max_viewers),
            max_viewers,
            queue_capacity,
            next_id: 0,
            keyframe_requested: false,
            total_dropped: 0,
        })
    }

    /// Registers a viewer; it waits for a keyframe, and one is requested from the encoder.
    pub fn add_viewer(&mut self) -> Result<ViewerId, FanoutError> {
        if self.viewers.len() >= self.max_viewers {
            return Err(FanoutError::Full {
                max: self.max_viewers,
            });
        }
        let id = ViewerId(self.next_id);
        self.next_id += 1;
        self.viewers.push(Viewer {
            id,
            queue: VecDeque::with_capacity(self.queue_capacity),
            stats: ViewerStats {
                needs_keyframe: true,
                ..ViewerStats::default()
            },
        });
        self.keyframe_requested = true;
        Ok(id)
    }

    /// Unregisters a viewer and frees its queue.
    pub fn remove_viewer(&mut self, id: ViewerId) -> Result<(), FanoutError> {
        let at = self.position(id)?;
        self.viewers.swap_remove(at);
        Ok(())
    }

    /// Queues an ordinary item for every viewer not waiting for a keyframe.
    pub fn push(&mut self, item: T) {
        self.deliver(item, false);
    }

    /// Queues the first item of a keyframe for every viewer and ends their wait for one.
    pub fn push_keyframe_start(&mut self, item: T) {
        self.deliver(item, true);
    }

    /// The oldest item queued for a viewer.
    pub fn pop(&mut self, id: ViewerId) -> Option<T> {
        let viewer = self.viewer_mut(id).ok()?;
        let item = viewer.queue.pop_front()?;
        viewer.stats.sent += 1;
        Some(item)
    }

    /// Moves up to `max` of a viewer's oldest items into `out`; returns how many were moved
    /// (0 for an unknown viewer).
    pub fn drain_into(&mut self, id: ViewerId, out: &mut Vec<T>, max: usize) -> usize {
        let Ok(viewer) = self.viewer_mut(id) else {
            return 0;
        };
        let n = max.min(viewer.queue.len());
        out.extend(viewer.queue.drain(..n));
        viewer.stats.sent += n as u64;
        n
    }

    /// A viewer asks for a keyframe (PLI/FIR): it waits for one, and the encoder is asked.
    pub fn request_keyframe(&mut self, id: ViewerId) -> Result<(), FanoutError> {
        self.viewer_mut(id)?.stats.needs_keyframe = true;
        self.keyframe_requested = true;
        Ok(())
    }

    /// True if a viewer joined or asked for a keyframe since the last call; clears the request.
    pub fn take_keyframe_request(&mut self) -> bool {
        std::mem::take(&mut self.keyframe_requested)
    }

    /// Number of registered viewers.
    pub fn viewer_count(&self) -> usize {
        self.viewers.len()
    }

    /// The viewer limit.
    pub fn max_viewers(&self) -> usize {
        self.max_viewers
    }

    /// The capacity of each viewer's queue.
    pub fn queue_capacity(&self) -> usize {
        self.queue_capacity
    }

    /// Ids of the registered viewers.
    pub fn viewer_ids(&self) -> impl Iterator<Item = ViewerId> + '_ {
        self.viewers.iter().map(|v| v.id)
    }

    /// Counters of one viewer.
    pub fn stats(&self, id: ViewerId) -> Option<ViewerStats> {
        let viewer = self.viewers.iter().find(|v| v.id == id)?;
        Some(ViewerStats {
            queued: viewer.queue.len(),
            ..viewer.stats
        })
    }

    /// Items dropped from full queues, over all viewers past and present.
    pub fn total_dropped(&self) -> u64 {
        self.total_dropped
    }

    fn deliver(&mut self, item: T, keyframe_start: bool) {
        for viewer in &mut self.viewers {
            if keyframe_start {
                viewer.stats.needs_keyframe = false;
            } else if viewer.stats.needs_keyframe {
                viewer.stats.skipped += 1;
                continue;
            }
            if viewer.queue.len() >= self.queue_capacity {
                viewer.queue.pop_front();
                viewer.stats.dropped += 1;
                self.total_dropped += 1;
            }
            viewer.queue.push_back(item.clone());
        }
    }

    fn position(&self, id: ViewerId) -> Result<usize, FanoutError> {
        self.viewers
            .iter()
            .position(|v| v.id == id)
            .ok_or(FanoutError::UnknownViewer(id))
    }

    fn viewer_mut(&mut self, id: ViewerId) -> Result<&mut Viewer<T>, FanoutError> {
        self.viewers
            .iter_mut()
            .find(|v| v.id == id)
            .ok_or(FanoutError::UnknownViewer(id))
    }
}

/// Rate-limits forced keyframes: at most one per `min_interval`, and a refused request is
/// remembered and honoured once the interval has passed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyframeLimiter {
    min_interval: Duration,
    last: Option<Duration>,
    pending: bool,
}

impl KeyframeLimiter {
    /// A limiter allowing one keyframe per `min_interval`; the first request is always allowed.
    pub fn new(min_interval: Duration) -> Self {
        Self {
            min_interval,
            last: None,
            pending: false,
        }
    }

    /// A keyframe is requested at `now`: true if it may be forced now; otherwise the request is
    /// kept pending for [`poll`](Self::poll).
    pub fn allow(&mut self, now: Duration) -> bool {
        if self.interval_passed(now) {
            self.fire(now);
            true
        } else {
            self.pending = true;
            false
        }
    }

    /// True (once) when a pending request may now be honoured.
    pub fn poll(&mut self, now: Duration) -> bool {
        if self.pending && self.interval_passed(now) {
            self.fire(now);
            true
        } else {
            false
        }
    }

    /// When a pending request becomes allowed; `None` if nothing is pending.
    pub fn poll_timeout(&self) -> Option<Duration> {
        if !self.pending {
            return None;
        }
        Some(self.last.map_or(Duration::ZERO, |last| {
            last.saturating_add(self.min_interval)
        }))
    }

    /// A request is waiting for the interval to end.
    pub fn is_pending(&self) -> bool {
        self.pending
    }

    /// When the last keyframe was allowed.
    pub fn last(&self) -> Option<Duration> {
        self.last
    }

    /// The minimum interval between forced keyframes.
    pub fn min_interval(&self) -> Duration {
        self.min_interval
    }

    fn interval_passed(&self, now: Duration) -> bool {
        self.last
            .is_none_or(|last| now.saturating_sub(last) >= self.min_interval)
    }

    fn fire(&mut self, now: Duration) {
        self.last = Some(now);
        self.pending = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fanout(max_viewers: usize, capacity: usize) -> Fanout<u32> {
        Fanout::new(max_viewers, capacity).expect("non-zero capacity")
    }

    /// `n` viewers that have received a keyframe (item 0) and so get every item.
    fn live_viewers<const N: usize>(f: &mut Fanout<u32>) -> [ViewerId; N] {
        let ids = [(); N].map(|()| f.add_viewer().expect("room"));
        f.push_keyframe_start(0);
        for id in ids {
            assert_eq!(f.pop(id), Some(0));
        }
        ids
    }

    fn drain(f: &mut Fanout<u32>, id: ViewerId) -> Vec<u32> {
        let mut out = Vec::new();
        f.drain_into(id, &mut out, usize::MAX);
        out
    }

    #[test]
    fn rejects_zero_queue_capacity() {
        assert_eq!(
            Fanout::<u32>::new(4, 0).err(),
            Some(FanoutError::ZeroQueueCapacity)
        );
    }

    #[test]
    fn queue_is_bounded_and_drops_oldest() {
        let mut f = fanout(4, 3);
        let [id] = live_viewers(&mut f);
        let capacity = f.viewers[0].queue.capacity();
        for i in 1..=10 {
            f.push(i);
            assert!(f.viewers[0].queue.len() <= 3);
        }
        assert_eq!(f.viewers[0].queue.capacity(), capacity);
        let stats = f.stats(id).expect("viewer");
        assert_eq!((stats.queued, stats.dropped), (3, 7));
        assert_eq!(f.total_dropped(), 7);
        assert_eq!(f.pop(id), Some(8));
        assert_eq!(drain(&mut f, id), [9, 10]);
        assert_eq!(f.pop(id), None);
        assert_eq!(f.stats(id).expect("viewer").sent, 1 + 3);
    }

    #[test]
    fn slow_viewer_does_not_affect_fast_one() {
        let mut f = fanout(4, 4);
        let [fast, slow] = live_viewers(&mut f);
        let mut received = Vec::new();
        for i in 1..=100 {
            f.push(i);
            received.extend(f.pop(fast));
        }
        assert_eq!(received, (1..=100).collect::<Vec<_>>());
        assert_eq!(f.stats(fast).expect("fast").dropped, 0);
        assert_eq!(f.stats(slow).expect("slow").dropped, 96);
        assert_eq!(drain(&mut f, slow), [97, 98, 99, 100]);
        assert_eq!(f.total_dropped(), 96);
    }

    #[test]
    fn drain_into_respects_max() {
        let mut f = fanout(1, 8);
        let [id] = live_viewers(&mut f);
        (1..=5).for_each(|i| f.push(i));
        let mut out = vec![];
        assert_eq!(f.drain_into(id, &mut out, 2), 2);
        assert_eq!(f.drain_into(id, &mut out, 2), 2);
        assert_eq!(f.drain_into(id, &mut out, 2), 1);
        assert_eq!(out, [1, 2, 3, 4, 5]);
        assert_eq!(f.stats(id).expect("viewer").sent, 1 + 5);
    }

    #[test]
    fn viewer_limit_and_removal() {
        let mut f = fanout(2, 4);
        let slots = f.viewers.capacity();
        let a = f.add_viewer().expect("first");
        let b = f.add_viewer().expect("second");
        assert_eq!(f.add_viewer(), Err(FanoutError::Full { max: 2 }));
        assert_eq!(f.viewer_count(), 2);
        f.remove_viewer(a).expect("remove");
        assert_eq!(f.remove_viewer(a), Err(FanoutError::UnknownViewer(a)));
        assert_eq!(f.request_keyframe(a), Err(FanoutError::UnknownViewer(a)));
        assert_eq!(f.pop(a), None);
        assert_eq!(f.drain_into(a, &mut vec![], 10), 0);
        assert_eq!(f.stats(a), None);
        let c = f.add_viewer().expect("room again");
        assert_ne!(c, a, "ids are not reused");
        assert_eq!(f.viewer_ids().collect::<Vec<_>>(), [b, c]);
        assert_eq!(f.viewers.capacity(), slots);
    }

    #[test]
    fn joining_viewer_waits_for_keyframe() {
        let mut f = fanout(4, 8);
        assert!(!f.take_keyframe_request());
        let [old] = live_viewers(&mut f);
        assert!(f.take_keyframe_request());
        assert!(!f.take_keyframe_request(), "the request is taken once");

        f.push(1);
        let new = f.add_viewer().expect("room");
        assert!(f.stats(new).expect("new").needs_keyframe);
        assert!(f.take_keyframe_request());
        f.push(2); // delta frame: useless to the new viewer
        f.push_keyframe_start(3);
        f.push(4);
        assert_eq!(drain(&mut f, old), [1, 2, 3, 4]);
        assert_eq!(drain(&mut f, new), [3, 4]);
        let stats = f.stats(new).expect("new");
        assert!(!stats.needs_keyframe);
        assert_eq!(stats.skipped, 1);
    }

    #[test]
    fn keyframe_request_from_a_viewer() {
        let mut f = fanout(4, 8);
        let [a, b] = live_viewers(&mut f);
        f.take_keyframe_request();
        f.request_keyframe(a).expect("known");
        assert!(f.take_keyframe_request());
        f.push(1);
        assert_eq!(drain(&mut f, a), Vec::<u32>::new());
        assert_eq!(drain(&mut f, b), [1]);
        f.push_keyframe_start(2);
        assert_eq!(drain(&mut f, a), [2]);
    }

    #[test]
    fn limiter_allows_first_then_rate_limits() {
        let ms = Duration::from_millis;
        let mut l = KeyframeLimiter::new(ms(500));
        assert!(!l.poll(ms(0)));
        assert_eq!(l.poll_timeout(), None);
        assert!(l.allow(ms(100)), "first request always allowed");
        assert_eq!(l.last(), Some(ms(100)));
        assert!(!l.allow(ms(200)), "storm inside the interval");
        assert!(!l.allow(ms(599)));
        assert!(l.is_pending());
        assert_eq!(l.poll_timeout(), Some(ms(600)));
        assert!(!l.poll(ms(599)));
        assert!(
            l.poll(ms(600)),
            "pending request honoured when the interval ends"
        );
        assert!(!l.poll(ms(601)), "only once");
        assert!(!l.is_pending());
        assert!(!l.poll(ms(5_000)), "nothing pending");
        assert!(l.allow(ms(1_100)));
        // Time going backwards never panics and never allows early.
        assert!(!l.allow(ms(50)));
    }

    #[test]
    fn limiter_with_zero_interval_always_allows() {
        let mut l = KeyframeLimiter::new(Duration::ZERO);
        assert!(l.allow(Duration::from_millis(1)));
        assert!(l.allow(Duration::from_millis(1)));
        assert!(!l.is_pending());
    }
}

//! The shared fan-out ([`SharedFanout`]): where the encode thread hands each RTP packet, once, and every session (WHEP
//! viewer, WHIP publisher) takes it from its own bounded queue over the core's [`Fanout`].

use bytes::Bytes;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use sutantra_core::fanout::{Fanout, FanoutError, ViewerId};
use tokio::sync::Notify;

/// One RTP packet as every viewer sends it (SSRC and payload type are stamped per viewer).
#[derive(Debug, Clone)]
pub struct OutPacket {
    /// Sequence number.
    pub seq: u16,
    /// 90 kHz timestamp from the capture time.
    pub timestamp: u32,
    /// Last packet of a frame.
    pub marker: bool,
    /// First packet of a keyframe: a viewer that joins starts here.
    pub keyframe_start: bool,
    /// VP8 payload (descriptor included); shared, never copied per viewer.
    pub payload: Bytes,
}

/// The core's [`Fanout`] shared between the encode thread and the sessions' tasks: the same
/// idea behind a lock, with a wake-up per session and the keyframe requests collected for the
/// encoder.
#[derive(Debug)]
pub struct SharedFanout {
    inner: Mutex<SharedInner>,
}

#[derive(Debug)]
struct SharedInner {
    fanout: Fanout<Arc<OutPacket>>,
    wakers: HashMap<ViewerId, Arc<Notify>>,
}

impl SharedFanout {
    /// A fan-out for at most `max_viewers`, each with a queue of `queue_packets`.
    pub fn new(max_viewers: usize, queue_packets: usize) -> Result<Self, FanoutError> {
        let fanout = Fanout::new(max_viewers, queue_packets)?;
        Ok(Self {
            inner: Mutex::new(SharedInner {
                fanout,
                wakers: HashMap::new(),
            }),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, SharedInner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Adds a viewer. It receives nothing until the next keyframe, which is requested for it.
    /// Returns its id and its wake-up.
    pub fn join(&self) -> Option<(ViewerId, Arc<Notify>)> {
        let mut inner = self.lock();
        let id = inner.fanout.add_viewer().ok()?;
        let notify = Arc::new(Notify::new());
        inner.wakers.insert(id, notify.clone());
        Some((id, notify))
    }

    /// Removes a viewer.
    pub fn leave(&self, id: ViewerId) {
        let mut inner = self.lock();
        let _ = inner.fanout.remove_viewer(id);
        inner.wakers.remove(&id);
    }

    /// Viewer `id` lost the picture (PLI/FIR): it waits for the next keyframe, which the encoder
    /// makes as soon as its rate limit allows.
    pub fn request_keyframe(&self, id: ViewerId) {
        let _ = self.lock().fanout.request_keyframe(id);
    }

    pub(crate) fn take_keyframe_request(&self) -> bool {
        self.lock().fanout.take_keyframe_request()
    }

    /// Moves up to `max` queued packets of viewer `id` into `out`.
    pub fn drain(&self, id: ViewerId, out: &mut Vec<Arc<OutPacket>>, max: usize) {
        self.lock().fanout.drain_into(id, out, max);
    }

    /// Packets dropped for slow viewers, in total.
    pub fn dropped(&self) -> u64 {
        self.lock().fanout.total_dropped()
    }

    /// Counters of viewer `id` (queued, dropped, sent), if it is attached.
    pub fn viewer_stats(&self, id: ViewerId) -> Option<sutantra_core::fanout::ViewerStats> {
        self.lock().fanout.stats(id)
    }

    /// Viewers attached to the fan-out.
    pub fn viewers(&self) -> usize {
        self.lock().fanout.viewer_count()
    }

    pub(crate) fn broadcast(&self, packets: &[Arc<OutPacket>]) {
        let mut inner = self.lock();
        for p in packets {
            if p.keyframe_start {
                inner.fanout.push_keyframe_start(p.clone());
            } else {
                inner.fanout.push(p.clone());
            }
        }
        for w in inner.wakers.values() {
            w.notify_one();
        }
    }
}

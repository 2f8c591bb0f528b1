//! `FramePool`: the fixed set of frame buffers between capture and encode.
//!
//! The pool owns N preallocated frames (N >= 2, chosen in config; 4 by default) and moves each
//! slot through one cycle: free -> writing (capture fills it) -> ready (FIFO, waiting for the
//! encoder) -> reading (encoder uses it) -> free. Nothing is allocated after construction, so
//! memory stays flat however far the encoder falls behind.
//!
//! When the writer wants a slot and none is free, the pool evicts the *oldest* ready frame,
//! counts it in [`FramePool::dropped`] and hands that slot to the writer: a live camera wants the
//! newest picture, never a backlog. With one writer and one reader holding at most one slot each,
//! N >= 2 guarantees a slot is always available; [`PoolError::Exhausted`] reports the case where
//! callers hold more slots than that.
//!
//! Slot ids are checked: using an id in the wrong state (marking a slot ready twice, releasing one
//! that was never taken, an id from another pool) returns a [`PoolError`] instead of panicking.

use std::collections::VecDeque;

/// Errors from [`FramePool`]; each message says what went wrong and what to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PoolError {
    /// The pool was built with fewer than two frames.
    #[error(
        "a frame pool needs at least 2 frames, got {got}: raise the frame pool size in the config"
    )]
    TooSmall {
        /// Number of frames supplied.
        got: usize,
    },
    /// Every slot is being written or read, so no slot can be handed out.
    #[error(
        "every frame pool slot is in use (being written or read): release or discard slots before acquiring more"
    )]
    Exhausted,
    /// The slot id does not belong to this pool.
    #[error(
        "frame pool slot {slot} does not exist (pool of {capacity}): use ids from this pool only"
    )]
    UnknownSlot {
        /// Index of the slot.
        slot: usize,
        /// Number of slots in the pool.
        capacity: usize,
    },
    /// The slot is not in the state the operation needs.
    #[error("frame pool slot {slot} is {actual}, but this operation needs it {expected}")]
    WrongState {
        /// Index of the slot.
        slot: usize,
        /// State the operation needs.
        expected: SlotState,
        /// State the slot is in.
        actual: SlotState,
    },
}

/// Where a slot is in its cycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlotState {
    /// Available to the writer.
    Free,
    /// Held by the writer (after [`FramePool::acquire`]).
    Writing,
    /// Marked ready ([`FramePool::mark_ready`]), waiting in the FIFO for the reader.
    Ready,
    /// Held by the reader (after [`FramePool::take`]).
    Reading,
}

impl std::fmt::Display for SlotState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Free => "free",
            Self::Writing => "being written",
            Self::Ready => "ready",
            Self::Reading => "being read",
        })
    }
}

/// Handle to one slot of a [`FramePool`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SlotId(usize);

impl SlotId {
    /// Index of the slot in its pool (0..capacity), for logs and metrics.
    pub fn index(self) -> usize {
        self.0
    }
}

/// A fixed pool of frames with a drop-oldest FIFO of ready frames.
#[derive(Debug)]
pub struct FramePool<T> {
    frames: Vec<T>,
    states: Vec<SlotState>,
    /// Ready slots, oldest first. Holds at most `frames.len()` ids, so it never reallocates.
    ready: VecDeque<usize>,
    marked_ready: u64,
    dropped: u64,
}

impl<T> FramePool<T> {
    /// Builds a pool over preallocated `frames` (at least two); every slot starts free.
    pub fn new(frames: Vec<T>) -> Result<Self, PoolError> {
        let n = frames.len();
        if n < 2 {
            return Err(PoolError::TooSmall { got: n });
        }
        Ok(Self {
            frames,
            states: vec![SlotState::Free; n],
            ready: VecDeque::with_capacity(n),
            marked_ready: 0,
            dropped: 0,
        })
    }

    /// Gives the writer a slot: a free one if any, else the oldest ready frame, which is
    /// dropped and counted in [`dropped`](Self::dropped). The slot keeps its previous contents.
    pub fn acquire(&mut self) -> Result<SlotId, PoolError> {
        let slot = match self.states.iter().position(|s| *s == SlotState::Free) {
            Some(free) => free,
            None => {
                let oldest = self.ready.pop_front().ok_or(PoolError::Exhausted)?;
                self.dropped += 1;
                oldest
            }
        };
        self.states[slot] = SlotState::Writing;
        Ok(SlotId(slot))
    }

    /// The frame in a slot held by the writer, to fill it.
    pub fn get_mut(&mut self, id: SlotId) -> Result<&mut T, PoolError> {
        self.expect(id, SlotState::Writing)?;
        self.frames.get_mut(id.0).ok_or(PoolError::UnknownSlot {
            slot: id.0,
            capacity: self.states.len(),
        })
    }

    /// The frame in a slot held by the writer or the reader.
    pub fn get(&self, id: SlotId) -> Result<&T, PoolError> {
        let actual = self.state(id)?;
        if actual != SlotState::Reading && actual != SlotState::Writing {
            return Err(PoolError::WrongState {
                slot: id.0,
                expected: SlotState::Reading,
                actual,
            });
        }
        self.frames.get(id.0).ok_or(PoolError::UnknownSlot {
            slot: id.0,
            capacity: self.states.len(),
        })
    }

    /// Writer is done: the slot is marked ready and joins the back of the ready FIFO.
    pub fn mark_ready(&mut self, id: SlotId) -> Result<(), PoolError> {
        self.transition(id, SlotState::Writing, SlotState::Ready)?;
        self.ready.push_back(id.0);
        self.marked_ready += 1;
        Ok(())
    }

    /// Writer failed (e.g. a capture error): the slot goes back to free, never marked ready.
    pub fn discard(&mut self, id: SlotId) -> Result<(), PoolError> {
        self.transition(id, SlotState::Writing, SlotState::Free)
    }

    /// Reader takes the oldest ready frame, if any.
    pub fn take(&mut self) -> Option<SlotId> {
        let slot = self.ready.pop_front()?;
        self.states[slot] = SlotState::Reading;
        Some(SlotId(slot))
    }

    /// Reader is done: the slot goes back to free.
    pub fn release(&mut self, id: SlotId) -> Result<(), PoolError> {
        self.transition(id, SlotState::Reading, SlotState::Free)
    }

    /// Frames marked ready since construction (read, waiting, or evicted unread).
    pub fn marked_ready_total(&self) -> u64 {
        self.marked_ready
    }

    /// Ready frames evicted unread because the writer needed their slot.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// Frames waiting for the reader.
    pub fn ready_len(&self) -> usize {
        self.ready.len()
    }

    /// Number of slots (fixed at construction).
    pub fn capacity(&self) -> usize {
        self.frames.len()
    }

    /// State of a slot.
    pub fn state(&self, id: SlotId) -> Result<SlotState, PoolError> {
        self.states
            .get(id.0)
            .copied()
            .ok_or(PoolError::UnknownSlot {
                slot: id.0,
                capacity: self.states.len(),
            })
    }

    fn expect(&self, id: SlotId, expected: SlotState) -> Result<(), PoolError> {
        let actual = self.state(id)?;
        if actual == expected {
            Ok(())
        } else {
            Err(PoolError::WrongState {
                slot: id.0,
                expected,
                actual,
            })
        }
    }

    fn transition(&mut self, id: SlotId, from: SlotState, to: SlotState) -> Result<(), PoolError> {
        self.expect(id, from)?;
        self.states[id.0] = to;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool(n: usize) -> FramePool<u64> {
        FramePool::new(vec![0; n]).expect("pool of at least 2")
    }

    /// Writes `value` into a fresh slot and marks it ready.
    fn produce(p: &mut FramePool<u64>, value: u64) {
        let id = p.acquire().expect("a slot");
        *p.get_mut(id).expect("writable") = value;
        p.mark_ready(id).expect("mark ready");
    }

    fn consume(p: &mut FramePool<u64>) -> Option<u64> {
        let id = p.take()?;
        let value = *p.get(id).expect("readable");
        p.release(id).expect("release");
        Some(value)
    }

    #[test]
    fn rejects_fewer_than_two_frames() {
        assert_eq!(
            FramePool::<u8>::new(vec![]).err(),
            Some(PoolError::TooSmall { got: 0 })
        );
        assert_eq!(
            FramePool::new(vec![0u8]).err(),
            Some(PoolError::TooSmall { got: 1 })
        );
    }

    #[test]
    fn drop_oldest_keeps_newest_in_order() {
        let mut p = pool(4);
        let ready_capacity = p.ready.capacity();
        for v in 0..10 {
            produce(&mut p, v);
        }
        assert_eq!(p.marked_ready_total(), 10);
        assert_eq!(p.dropped(), 6);
        assert_eq!(p.ready_len(), 4);
        assert_eq!(p.capacity(), 4);
        let remaining: Vec<u64> = std::iter::from_fn(|| consume(&mut p)).collect();
        assert_eq!(remaining, [6, 7, 8, 9]);
        // No growth anywhere: same slots, same FIFO allocation.
        assert_eq!(p.frames.len(), 4);
        assert_eq!(p.ready.capacity(), ready_capacity);
    }

    #[test]
    fn memory_never_grows_under_long_runs() {
        let mut p = pool(3);
        let ready_capacity = p.ready.capacity();
        for v in 0..10_000u64 {
            produce(&mut p, v);
            if v % 7 == 0 {
                consume(&mut p);
            }
            assert!(p.ready_len() <= p.capacity());
        }
        assert_eq!(p.capacity(), 3);
        assert_eq!(p.ready.capacity(), ready_capacity);
        assert_eq!(
            p.marked_ready_total(),
            p.dropped() + 10_000u64.div_ceil(7) + p.ready_len() as u64
        );
    }

    #[test]
    fn writer_and_reader_interleave() {
        let mut p = pool(2);
        // Reader holds one slot while the writer keeps overwriting the other.
        produce(&mut p, 1);
        let reading = p.take().expect("frame 1");
        assert_eq!(p.get(reading), Ok(&1));
        produce(&mut p, 2);
        produce(&mut p, 3); // evicts 2: only one slot is not being read
        assert_eq!(p.dropped(), 1);
        // Writer holds a slot while the reader is still busy: nothing else is free or ready.
        let writing = p.acquire().expect("evicts 3");
        assert_eq!(p.dropped(), 2);
        assert_eq!(p.acquire(), Err(PoolError::Exhausted));
        assert_eq!(p.take(), None);
        *p.get_mut(writing).expect("writable") = 4;
        p.release(reading).expect("release 1");
        p.mark_ready(writing).expect("mark 4 ready");
        assert_eq!(consume(&mut p), Some(4));
        assert_eq!(consume(&mut p), None);
    }

    #[test]
    fn discard_returns_slot_never_marked_ready() {
        let mut p = pool(2);
        let id = p.acquire().expect("slot");
        p.discard(id).expect("discard");
        assert_eq!(p.state(id), Ok(SlotState::Free));
        assert_eq!(p.marked_ready_total(), 0);
        assert_eq!(p.take(), None);
    }

    #[test]
    fn misuse_is_an_error_not_a_panic() {
        let mut p = pool(2);
        let id = p.acquire().expect("slot");
        assert!(matches!(p.release(id), Err(PoolError::WrongState { .. })));
        assert!(p.get(id).is_ok());
        p.mark_ready(id).expect("mark ready");
        assert!(matches!(
            p.mark_ready(id),
            Err(PoolError::WrongState { .. })
        ));
        assert!(matches!(p.discard(id), Err(PoolError::WrongState { .. })));
        assert!(matches!(p.get_mut(id), Err(PoolError::WrongState { .. })));
        assert!(matches!(p.get(id), Err(PoolError::WrongState { .. })));
        let taken = p.take().expect("ready");
        assert!(matches!(
            p.get_mut(taken),
            Err(PoolError::WrongState { .. })
        ));
        p.release(taken).expect("release");
        assert!(matches!(
            p.release(taken),
            Err(PoolError::WrongState { .. })
        ));

        let foreign = SlotId(9);
        let unknown = Err(PoolError::UnknownSlot {
            slot: 9,
            capacity: 2,
        });
        assert_eq!(p.mark_ready(foreign), unknown);
        assert_eq!(p.release(foreign), unknown);
        assert_eq!(p.discard(foreign), unknown);
        assert_eq!(p.get(foreign).err(), unknown.err());
        assert_eq!(p.get_mut(foreign).err(), unknown.err());
    }
}

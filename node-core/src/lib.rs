//! Sans-I/O core of the Sutantra edge node.
//!
//! Nothing in this crate opens a socket, spawns a thread or reads a clock: every method that
//! depends on time takes `now` (a [`std::time::Duration`] since an origin the caller picks), so
//! pacing and timeouts are tested with synthetic time. The firmware crate wraps these pieces in
//! threads and tasks.
//!
//! Layout, in the order a picture flows through it:
//! - [`frame`]: the I420 picture buffer, allocated once (the camera sources in `sutantra-hal` fill
//!   it; the type lives here so the core needs no driver crate);
//! - [`pool`]: the fixed frame pool between capture and encode (drop-oldest, counted);
//! - [`codec`]: VP8 on libvpx (realtime encoder; decoder for checks);
//! - [`rtp`]: the RFC 7741 VP8 payloader, the 90 kHz clock and the RTP packetizer;
//! - [`pacer`]: the frame clock, `start + n * period`;
//! - [`encode`]: one frame through keyframe decision, encode, packetize and send time, as a
//!   value the firmware's encode thread drives ([`encode::EncodeStep`]);
//! - [`fanout`]: one encode to many viewers, a bounded queue each, keyframe requests;
//! - [`relay`]: an upstream's VP8 RTP rewritten into one continuous stream across reconnects;
//! - [`supervisor`]: when to reopen a failed camera or restart an encoder (capped backoff);
//! - [`backoff`]: capped exponential retry delays with one jitter rule (randomness is an input),
//!   for every retry loop of the node;
//! - [`observer`]: the per-frame hook (the chain crate, `sutantra-chain`, hashes frames for
//!   attestations through it);
//! - [`led`]: the status LED's blink pattern per node state and the button's debounced short
//!   and long presses (the firmware's GPIO thread drives the pins).

pub mod backoff;
pub mod codec;
pub mod encode;
pub mod fanout;
pub mod frame;
pub mod led;
pub mod observer;
pub mod pacer;
pub mod pool;
pub mod relay;
pub mod rtp;
pub mod supervisor;

//! RTP for the VP8 stream: the RFC 7741 payloader and the RFC 3550 packetizer.
//!
//! - [`vp8`]: splits one encoded VP8 frame into payloads, each with its payload descriptor, and
//!   parses descriptors back (for tests and receivers);
//! - [`packetizer`]: the 90 kHz [`RtpClock`] and the [`Packetizer`] that adds sequence numbers,
//!   timestamps and the marker bit, producing [`RtpPacket`]s.
//!
//! Everything here is allocation-free per packet except the owned [`RtpPacket`] the caller may
//! choose to build; SSRC and payload type are per viewer, so they are set by the session, not here.

pub mod packetizer;
pub mod vp8;

pub use packetizer::{PacketizedFrame, Packetizer, RtpClock, RtpPacket, RtpPacketRef};
pub use vp8::{Vp8Descriptor, Vp8Payloader, is_keyframe, parse_descriptor};

/// RTP clock rate of VP8 (RFC 7741 §6.1): 90 kHz.
pub const VP8_CLOCK_RATE: u32 = 90_000;

/// A payload size (descriptor included) that fits a 1280-byte path MTU with room for IP, UDP,
/// SRTP and RTP header extensions; what browsers use.
pub const DEFAULT_MAX_PAYLOAD: usize = 1_200;

/// Errors from the RTP module; each message says what went wrong and what to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RtpError {
    /// The maximum payload size cannot hold a descriptor and some data.
    #[error(
        "RTP payload size {size} is too small: it must be at least {min} bytes (1200 is typical)"
    )]
    PayloadTooSmall {
        /// The size asked for.
        size: usize,
        /// The smallest accepted size.
        min: usize,
    },
    /// The input ended inside a VP8 payload descriptor.
    #[error("VP8 payload descriptor is truncated: needs {needed} bytes, got {got}")]
    Truncated {
        /// Bytes the descriptor needs (so far).
        needed: usize,
        /// Bytes available.
        got: usize,
    },
}

//! WebRTC on the `webrtc` crate (0.21): viewer sessions (WHEP), publishing to relays (WHIP),
//! relaying another WHEP server's stream (`relay`, the `whep:` source), keyframe requests from
//! the far end, and STUN server resolution.
//!
//! Both directions build their peer connections with [`peer`] (bind addresses, mDNS off, VP8
//! only, the PLI/FIR interceptor) and feed them from the media [`SharedFanout`](crate::media::SharedFanout).

pub mod keyframe;
pub mod peer;
pub mod relay;
pub mod session;
pub mod stun;
pub mod whep;
pub mod whip;

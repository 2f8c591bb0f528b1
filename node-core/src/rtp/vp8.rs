//! The RFC 7741 VP8 payload format: the payloader that splits a frame, and a descriptor parser.
//!
//! Every payload this module writes starts with the same 4-byte descriptor (RFC 7741 §4.2):
//!
//! ```text
//!  X R N S R PID      I L T K RSV     M PictureID (15 bits)
//! |1|0|0|S|0|0 0 0|  |1|0|0|0|0 0 0 0| |1|  hi 7  |   lo 8   |
//! ```
//!
//! S is set only on the first payload of a frame; the whole frame is partition 0 (libvpx emits a
//! single partition in realtime mode). The 15-bit PictureID lets receivers detect lost frames and
//! is advanced once per non-empty frame, wrapping from 0x7FFF to 0. Chunks are filled greedily:
//! every payload but the last is exactly the maximum size.
//!
//! [`parse_descriptor`] reads every descriptor variant (X/I/M/L/T/K, 7- and 15-bit PictureID). It
//! serves tests and future receivers, so it returns an error on any truncated input, never panics.

use super::RtpError;

/// Length of the descriptor the payloader writes.
pub const DESCRIPTOR_LEN: usize = 4;

/// Smallest maximum payload size [`Vp8Payloader::new`] accepts.
pub const MIN_PAYLOAD_SIZE: usize = 8;

const PICTURE_ID_MASK: u16 = 0x7FFF;

/// Splits encoded VP8 frames into RTP payloads (descriptor + chunk).
///
/// Allocation-free per frame: each payload is assembled in a buffer allocated once, at
/// construction, with the maximum payload size.
#[derive(Debug, Clone)]
pub struct Vp8Payloader {
    max_payload: usize,
    picture_id: u16,
    buf: Vec<u8>,
}

impl Vp8Payloader {
    /// A payloader whose payloads (descriptor included) are at most `max_payload_size` bytes
    /// (at least [`MIN_PAYLOAD_SIZE`]), numbering frames from `initial_picture_id` (taken modulo
    /// 2^15).
    pub fn new(max_payload_size: usize, initial_picture_id: u16) -> Result<Self, RtpError> {
        if max_payload_size < MIN_PAYLOAD_SIZE {
            return Err(RtpError::PayloadTooSmall {
                size: max_payload_size,
                min: MIN_PAYLOAD_SIZE,
            });
        }
        Ok(Self {
            max_payload: max_payload_size,
            picture_id: initial_picture_id & PICTURE_ID_MASK,
            buf: Vec::with_capacity(max_payload_size),
        })
    }

    /// The maximum payload size, descriptor included.
    pub fn max_payload_size(&self) -> usize {
        self.max_payload
    }

    /// PictureID the next non-empty frame will carry.
    pub fn picture_id(&self) -> u16 {
        self.picture_id
    }

    /// Splits `frame` into payloads and calls `out(payload, last)` for each, in order; `last` is
    /// true on the frame's final payload. Returns the number of payloads; an empty frame
    /// produces none and does not advance the PictureID.
    pub fn payload_frame(&mut self, frame: &[u8], mut out: impl FnMut(&[u8], bool)) -> usize {
        if frame.is_empty() {
            return 0;
        }
        let chunk_len = self.max_payload - DESCRIPTOR_LEN;
        let count = frame.len().div_ceil(chunk_len);
        for (i, chunk) in frame.chunks(chunk_len).enumerate() {
            self.buf.clear();
            self.buf
                .extend_from_slice(&descriptor(i == 0, self.picture_id));
            self.buf.extend_from_slice(chunk);
            out(&self.buf, i + 1 == count);
        }
        self.picture_id = self.picture_id.wrapping_add(1) & PICTURE_ID_MASK;
        count
    }
}

/// The 4-byte descriptor: X=1, S on the first payload, PID 0, I=1, M=1 and a 15-bit PictureID.
fn descriptor(start: bool, picture_id: u16) -> [u8; DESCRIPTOR_LEN] {
    let [hi, lo] = (picture_id & PICTURE_ID_MASK).to_be_bytes();
    [if start { 0x90 } else { 0x80 }, 0x80, 0x80 | hi, lo]
}

/// A parsed VP8 payload descriptor (RFC 7741 §4.2).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Vp8Descriptor {
    /// N: the frame is not used as a reference and can be discarded.
    pub non_reference: bool,
    /// S: the payload starts a VP8 partition.
    pub start_of_partition: bool,
    /// PID: the partition index (0..=7).
    pub partition_index: u8,
    /// PictureID (7 or 15 bits), if I is set.
    pub picture_id: Option<u16>,
    /// TL0PICIDX, if L is set.
    pub tl0_pic_idx: Option<u8>,
    /// TID (temporal layer index, 0..=3), if T is set.
    pub tid: Option<u8>,
    /// Y (layer sync); meaningful only when `tid` is present.
    pub layer_sync: bool,
    /// KEYIDX (0..=31), if K is set.
    pub key_idx: Option<u8>,
    /// Length of the descriptor; the VP8 data starts at this offset (and may be empty).
    pub header_len: usize,
}

impl Vp8Descriptor {
    /// True on the first payload of a frame (S set in partition 0).
    pub fn starts_frame(&self) -> bool {
        self.start_of_partition && self.partition_index == 0
    }
}

/// Parses the VP8 payload descriptor at the start of `payload`.
pub fn parse_descriptor(payload: &[u8]) -> Result<Vp8Descriptor, RtpError> {
    let byte = |at: usize| {
        payload.get(at).copied().ok_or(RtpError::Truncated {
            needed: at + 1,
            got: payload.len(),
        })
    };
    let b0 = byte(0)?;
    let mut d = Vp8Descriptor {
        non_reference: b0 & 0x20 != 0,
        start_of_partition: b0 & 0x10 != 0,
        partition_index: b0 & 0x07,
        header_len: 1,
        ..Vp8Descriptor::default()
    };
    if b0 & 0x80 == 0 {
        return Ok(d);
    }
    let x = byte(1)?;
    let mut at = 2;
    if x & 0x80 != 0 {
        let p = byte(at)?;
        if p & 0x80 != 0 {
            d.picture_id = Some(u16::from_be_bytes([p & 0x7F, byte(at + 1)?]));
            at += 2;
        } else {
            d.picture_id = Some(u16::from(p));
            at += 1;
        }
    }
    if x & 0x40 != 0 {
        d.tl0_pic_idx = Some(byte(at)?);
        at += 1;
    }
    if x & 0x30 != 0 {
        let tk = byte(at)?;
        at += 1;
        if x & 0x20 != 0 {
            d.tid = Some(tk >> 6);
            d.layer_sync = tk & 0x20 != 0;
        }
        if x & 0x10 != 0 {
            d.key_idx = Some(tk & 0x1F);
        }
    }
    d.header_len = at;
    Ok(d)
}

/// True if the encoded VP8 frame is a keyframe: the P bit (bit 0 of the first byte of the VP8
/// payload header, RFC 7741 §4.3) is 0. An empty frame is not a keyframe.
pub fn is_keyframe(vp8_frame: &[u8]) -> bool {
    vp8_frame.first().is_some_and(|b| b & 0x01 == 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Payloads of one frame, each with its `last` flag.
    fn payloads(p: &mut Vp8Payloader, frame: &[u8]) -> Vec<(Vec<u8>, bool)> {
        let mut out = Vec::new();
        let n = p.payload_frame(frame, |payload, last| out.push((payload.to_vec(), last)));
        assert_eq!(n, out.len());
        out
    }

    fn payloader(max: usize, pid: u16) -> Vp8Payloader {
        Vp8Payloader::new(max, pid).expect("valid size")
    }

    #[test]
    fn rejects_tiny_payload_sizes() {
        assert_eq!(
            Vp8Payloader::new(7, 0).err(),
            Some(RtpError::PayloadTooSmall { size: 7, min: 8 })
        );
        assert!(Vp8Payloader::new(0, 0).is_err());
        assert!(Vp8Payloader::new(8, 0).is_ok());
    }

    #[test]
    fn frame_over_three_payloads_has_exact_bytes() {
        let mut p = payloader(8, 0x1234);
        let frame: Vec<u8> = (1..=10).collect();
        let out = payloads(&mut p, &frame);
        assert_eq!(
            out,
            [
                (vec![0x90, 0x80, 0x92, 0x34, 1, 2, 3, 4], false),
                (vec![0x80, 0x80, 0x92, 0x34, 5, 6, 7, 8], false),
                (vec![0x80, 0x80, 0x92, 0x34, 9, 10], true),
            ]
        );
        assert_eq!(p.picture_id(), 0x1235);
    }

    #[test]
    fn written_descriptors_parse_back() {
        let mut p = payloader(100, 0x7ABC);
        for (i, (payload, _)) in payloads(&mut p, &[0xAA; 250]).iter().enumerate() {
            let d = parse_descriptor(payload).expect("valid");
            assert_eq!(d.picture_id, Some(0x7ABC));
            assert_eq!(d.start_of_partition, i == 0);
            assert_eq!(d.starts_frame(), i == 0);
            assert_eq!(d.partition_index, 0);
            assert_eq!(d.header_len, DESCRIPTOR_LEN);
            assert!(!d.non_reference);
            assert_eq!((d.tl0_pic_idx, d.tid, d.key_idx), (None, None, None));
        }
    }

    #[test]
    fn picture_id_wraps_and_skips_empty_frames() {
        let mut p = payloader(8, 0x7FFF);
        assert_eq!(payloads(&mut p, &[]), []);
        assert_eq!(p.picture_id(), 0x7FFF);
        let first = payloads(&mut p, &[1]);
        assert_eq!(first, [(vec![0x90, 0x80, 0xFF, 0xFF, 1], true)]);
        let second = payloads(&mut p, &[2]);
        assert_eq!(second, [(vec![0x90, 0x80, 0x80, 0x00, 2], true)]);
        assert_eq!(p.picture_id(), 1);
        // Initial ids are taken modulo 2^15.
        assert_eq!(payloader(8, 0xFFFF).picture_id(), 0x7FFF);
    }

    #[test]
    fn mtu_edges() {
        const MAX: usize = 1_200;
        let mut p = payloader(MAX, 0);
        let exact = payloads(&mut p, &[7; MAX - DESCRIPTOR_LEN]);
        assert_eq!(exact.len(), 1);
        assert_eq!(exact[0].0.len(), MAX);
        assert!(exact[0].1);

        let one_more = payloads(&mut p, &[7; MAX - DESCRIPTOR_LEN + 1]);
        assert_eq!(one_more.len(), 2);
        assert_eq!(one_more[0].0.len(), MAX);
        assert_eq!(one_more[1].0.len(), DESCRIPTOR_LEN + 1);
        assert_eq!(
            one_more.iter().map(|(_, last)| *last).collect::<Vec<_>>(),
            [false, true]
        );

        for len in [1usize, 2, 1_195, 1_196, 1_197, 5_000, 65_536] {
            let frame: Vec<u8> = (0..len).map(|i| i as u8).collect();
            let out = payloads(&mut p, &frame);
            assert_eq!(out.len(), len.div_ceil(MAX - DESCRIPTOR_LEN));
            assert!(out.iter().all(|(payload, _)| payload.len() <= MAX));
            let rebuilt: Vec<u8> = out
                .iter()
                .flat_map(|(payload, _)| payload[DESCRIPTOR_LEN..].iter().copied())
                .collect();
            assert_eq!(rebuilt, frame);
        }
        // The scratch buffer never grew past its first allocation.
        assert_eq!(p.buf.capacity(), MAX);
    }

    #[test]
    #[allow(clippy::unusual_byte_groupings)] // T/K octets are grouped by field: TID|Y|KEYIDX
    fn parses_rfc7741_descriptor_layouts() {
        // Only the required octet: S=1, PID=0.
        let d = parse_descriptor(&[0x10, 0xAB]).expect("valid");
        assert!(d.start_of_partition && d.starts_frame());
        assert_eq!((d.picture_id, d.header_len), (None, 1));

        // N=1, S=0, PID=3.
        let d = parse_descriptor(&[0x23]).expect("valid");
        assert!(d.non_reference && !d.start_of_partition);
        assert_eq!(d.partition_index, 3);
        assert!(!d.starts_frame());

        // X, I with a 7-bit PictureID (M=0).
        let d = parse_descriptor(&[0x90, 0x80, 0x11, 0xFF]).expect("valid");
        assert_eq!((d.picture_id, d.header_len), (Some(0x11), 3));

        // X, I with a 15-bit PictureID (M=1).
        let d = parse_descriptor(&[0x80, 0x80, 0xD2, 0x34]).expect("valid");
        assert_eq!((d.picture_id, d.header_len), (Some(0x5234), 4));

        // X with I (15-bit), L, T and K: TL0PICIDX=5, TID=2, Y=1, KEYIDX=3.
        let d =
            parse_descriptor(&[0x90, 0xF0, 0x81, 0x23, 0x05, 0b10_1_00011, 0x9D]).expect("valid");
        assert_eq!(d.picture_id, Some(0x0123));
        assert_eq!(d.tl0_pic_idx, Some(5));
        assert_eq!((d.tid, d.layer_sync, d.key_idx), (Some(2), true, Some(3)));
        assert_eq!(d.header_len, 6);

        // X with I (7-bit), L and T only: TID=1, Y=0; KEYIDX bits are ignored.
        let d = parse_descriptor(&[0x80, 0xE0, 0x7F, 0x09, 0b01_0_11111]).expect("valid");
        assert_eq!((d.picture_id, d.tl0_pic_idx), (Some(0x7F), Some(9)));
        assert_eq!((d.tid, d.layer_sync, d.key_idx), (Some(1), false, None));
        assert_eq!(d.header_len, 5);

        // X with K only: the TID/Y bits are ignored.
        let d = parse_descriptor(&[0x80, 0x10, 0b11_1_11111]).expect("valid");
        assert_eq!((d.tid, d.layer_sync, d.key_idx), (None, false, Some(31)));
        assert_eq!((d.picture_id, d.header_len), (None, 3));

        // X with no optional fields.
        let d = parse_descriptor(&[0x80, 0x00]).expect("valid");
        assert_eq!(d.header_len, 2);
    }

    #[test]
    fn truncated_descriptors_are_errors() {
        let full = [0x90, 0xF0, 0x81, 0x23, 0x05, 0x63];
        assert_eq!(
            parse_descriptor(&[]),
            Err(RtpError::Truncated { needed: 1, got: 0 })
        );
        for len in 1..full.len() {
            assert_eq!(
                parse_descriptor(&full[..len]),
                Err(RtpError::Truncated {
                    needed: len + 1,
                    got: len
                }),
                "prefix of {len} bytes"
            );
        }
        assert!(parse_descriptor(&full).is_ok());
        let seven_bit = [0x90, 0x80, 0x11];
        for len in 0..seven_bit.len() {
            assert!(parse_descriptor(&seven_bit[..len]).is_err());
        }
    }

    #[test]
    fn random_bytes_never_panic() {
        let mut state: u64 = 0x2545_F491_4F6C_DD1D;
        let mut buf = [0u8; 8];
        for _ in 0..100_000 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            buf.copy_from_slice(&state.to_le_bytes());
            let len = (state >> 59) as usize % (buf.len() + 1);
            if let Ok(d) = parse_descriptor(&buf[..len]) {
                assert!((1..=6).contains(&d.header_len) && d.header_len <= len);
            }
        }
    }

    #[test]
    fn keyframe_is_p_bit_clear() {
        // A keyframe tag (P=0) followed by the VP8 start code, and an interframe tag (P=1).
        assert!(is_keyframe(&[0x50, 0x42, 0x00, 0x9D, 0x01, 0x2A]));
        assert!(!is_keyframe(&[0x51, 0x42, 0x00]));
        assert!(!is_keyframe(&[]));
    }
}

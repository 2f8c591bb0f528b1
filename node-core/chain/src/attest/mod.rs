//! Signed stream attestations: what this node broadcast, proven to the chain.
//!
//! Every encoded frame is hashed as it leaves the encoder; the hashes of a segment of capture
//! time (10 s by default) become the leaves of an RFC 6962 Merkle tree, and the segment's root,
//! RTP and capture-time range and counts go into an [`Attestation`] that names the chain block it
//! was made after (the anchor) and the hash of the previous attestation. The node signs it with
//! its Ed25519 key; the firmware keeps signed attestations in its outbox and submits them to the
//! chain. Anyone holding the recorded stream can recompute the roots, and anyone holding the
//! attestations can check the signatures and the hash links with [`verify_chain`].
//!
//! - [`merkle`]: the RFC 6962 tree hash, computed incrementally in O(log n) memory;
//! - [`segment`]: [`SegmentBuilder`] (a [`FrameObserver`](sutantra_core::observer::FrameObserver) that
//!   cuts segments, bounded queue) and [`AttestationChain`] (the signer's sequence and link);
//! - [`record`]: the attestation record, its canonical postcard encoding, signing and checks.
//!
//! Decoding is for hostile input: [`SignedAttestation::from_bytes`] caps the size, rejects
//! trailing bytes and non-canonical encodings, and never panics.

pub mod merkle;
pub mod record;
pub mod segment;

pub use merkle::MerkleAccumulator;
pub use record::{
    Attestation, DOMAIN, FORMAT_VERSION, GENESIS_PREV_HASH, MAX_CHAIN_ID_LEN, MAX_ENCODED_LEN,
    MAX_STREAM_ID_LEN, SignedAttestation, check_anchor, node_id, sign, verify_chain,
};
pub use segment::{AttestationChain, Segment, SegmentBuilder, SegmentConfig};

/// Why an attestation was refused, or a segmenter/chain could not be set up.
///
/// Every message names the field or the link that failed, so an operator can tell a corrupt
/// record from a record of another node or a gap in the outbox.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AttestError {
    /// The encoded record is larger than any valid one; it was not decoded.
    #[error(
        "encoded attestation is {len} bytes, more than the {max}-byte limit: not an attestation"
    )]
    TooLarge {
        /// Length of the input.
        len: usize,
        /// The limit, [`MAX_ENCODED_LEN`].
        max: usize,
    },
    /// The record is of a format version this node does not read.
    #[error(
        "attestation format version {found} is not supported (this node reads version {expected})"
    )]
    UnsupportedVersion {
        /// The version in the record.
        found: u16,
        /// [`FORMAT_VERSION`].
        expected: u16,
    },
    /// The bytes are not a postcard-encoded signed attestation.
    #[error("attestation bytes do not decode: {0}")]
    Decode(postcard::Error),
    /// A whole record decoded but bytes were left after it.
    #[error("{count} unexpected bytes after the attestation")]
    TrailingBytes {
        /// How many bytes were left.
        count: usize,
    },
    /// The record decoded but is not in canonical form (e.g. an over-long integer), so its
    /// bytes and its hash would not be the signer's.
    #[error("attestation is not canonically encoded")]
    NonCanonical,
    /// A text field is longer than the format allows.
    #[error("{field} is {len} bytes long, more than the {max} allowed")]
    FieldTooLong {
        /// The field (`chain_id` or `stream_id`).
        field: &'static str,
        /// Its length in bytes.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The embedded public key is not a valid Ed25519 point.
    #[error("the attestation's public key is not a valid Ed25519 key")]
    BadPublicKey,
    /// The signature does not verify with the embedded key over the record.
    #[error(
        "the attestation's signature does not verify: the record was altered or not signed by this key"
    )]
    BadSignature,
    /// An attestation of a chain is signed by another key than the first one.
    #[error("signed by node {found}, but the chain starts with node {expected}")]
    KeyChanged {
        /// Node id of the first attestation's key.
        expected: String,
        /// Node id of this attestation's key.
        found: String,
    },
    /// An attestation of a chain is for another stream than the first one.
    #[error("stream_id is {found:?}, but the chain is for stream {expected:?}")]
    StreamChanged {
        /// The first attestation's stream.
        expected: String,
        /// This attestation's stream.
        found: String,
    },
    /// The segment sequence numbers are not consecutive.
    #[error(
        "segment_seq is {found}, expected {expected}: attestations are missing or out of order"
    )]
    SequenceGap {
        /// The previous sequence number plus one.
        expected: u64,
        /// This attestation's sequence number.
        found: u64,
    },
    /// `prev_hash` is not the hash of the previous signed attestation.
    #[error("prev_hash is {}, but the previous attestation hashes to {}: the link is broken", hex(.found), hex(.expected))]
    BrokenLink {
        /// Hash of the previous signed attestation.
        expected: [u8; 32],
        /// This attestation's `prev_hash`.
        found: [u8; 32],
    },
    /// Wraps the failure of one attestation of a list, with its position.
    #[error("attestation #{index} of the chain: {source}")]
    AtIndex {
        /// Position in the list, from 0.
        index: usize,
        /// What failed there.
        source: Box<AttestError>,
    },
    /// The attestation names another chain than the one checked against.
    #[error("attestation is for chain {found:?}, not {expected:?}")]
    ChainIdMismatch {
        /// The chain checked against.
        expected: String,
        /// The attestation's `chain_id`.
        found: String,
    },
    /// The attestation is anchored at another height than the one checked against.
    #[error("attestation is anchored at height {found}, not {expected}")]
    AnchorHeightMismatch {
        /// The height checked against.
        expected: u64,
        /// The attestation's `anchor_height`.
        found: u64,
    },
    /// The attestation's anchor hash is not the header hash at that height.
    #[error("anchor hash {} is not the header hash {} at that height: anchored on another fork or a made-up block", hex(.found), hex(.expected))]
    AnchorHashMismatch {
        /// The header hash checked against.
        expected: [u8; 32],
        /// The attestation's `anchor_hash`.
        found: [u8; 32],
    },
    /// A setting of the segmenter or the chain is out of range.
    #[error("invalid attestation setting: {0}")]
    InvalidConfig(&'static str),
}

/// Lower-case hex of `bytes` (for node ids and messages).
pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    out
}

/// SHA-256 of `data`.
pub(crate) fn sha256(data: &[u8]) -> [u8; 32] {
    use sha2::Digest as _;
    sha2::Sha256::digest(data).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attest_hex_is_lower_case_and_complete() {
        assert_eq!(hex(&[]), "");
        assert_eq!(hex(&[0x00, 0x0f, 0xa5, 0xff]), "000fa5ff");
    }

    #[test]
    fn attest_sha256_of_empty_input_is_the_standard_value() {
        assert_eq!(
            hex(&sha256(b"")),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn attest_error_messages_name_the_failing_part() {
        let e = AttestError::AtIndex {
            index: 3,
            source: Box::new(AttestError::SequenceGap {
                expected: 5,
                found: 7,
            }),
        };
        let msg = e.to_string();
        assert!(
            msg.contains("#3") && msg.contains("segment_seq is 7, expected 5"),
            "{msg}"
        );
        let e = AttestError::BrokenLink {
            expected: [0xab; 32],
            found: [0; 32],
        };
        assert!(e.to_string().contains(&"ab".repeat(32)));
    }
}

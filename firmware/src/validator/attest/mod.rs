//! Signed attestations of what the node broadcast, from the encoder to the chain.
//!
//! The record format, signing and checks are `sutantra_chain::attest` (postcard, Ed25519 with a
//! domain prefix, RFC 6962 roots, hash links). This module owns the node's side:
//! - [`runtime`]: the segment observer on the encode thread and the attestation thread that
//!   anchors, signs and durably commits each segment to the outbox;
//! - [`submit`]: the submitter thread (`broadcast_tx_sync`, backoff with jitter, rejections kept).

pub mod runtime;
pub mod submit;

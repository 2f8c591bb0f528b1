//! The Sutantra node's chain side, sans-I/O like `sutantra-core`: what the node checks of the
//! chain and what it proves to it. Nothing here opens a socket, spawns a thread or reads a
//! clock (`node-core/clippy.toml` applies here too): the firmware fetches, stores and submits,
//! and hands this crate bytes and `now`.
//!
//! - [`light`]: CometBFT light-client verification (parse RPC JSON, verify a step or skip to a
//!   height with bisection), so the node checks the chain's headers itself.
//! - [`attest`]: signed stream attestations (RFC 6962 roots of frame hashes per segment,
//!   postcard + Ed25519, hash-linked) proving to the chain what this node broadcast. The
//!   segmenter is fed by the core's frame observer (`sutantra_core::observer`), which is this
//!   crate's only use of `sutantra-core`.
//!
//! A crate of its own so that media and chain build and test apart: `cargo test -p
//! sutantra-core` compiles no CometBFT types, and the light client's heavy dependencies
//! (tendermint, its verifier) are built only here.

pub mod attest;
pub mod light;

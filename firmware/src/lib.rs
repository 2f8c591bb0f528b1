//! `sutantra`: the edge node's library; the `sutantra` binary (`main.rs`) only parses the command
//! line and dispatches here.
//!
//! The folders follow the subsystems (see `ARCHITECTURE.md` for the picture and the rules):
//! - [`cli`]: the command line (clap), the commands that run in the calling process, and the
//!   serial console (the CLI on a serial line).
//! - [`node`]: the running node (`sutantra run`): starts and stops everything below, applies
//!   reloads.
//! - [`config`]: the TOML model, one file per section, `config set`, reload diffs, board
//!   profiles. It imports nothing else from this crate.
//! - [`stats`]: counters and gauges only (read by `/healthz`, `/metrics`, the LED, the watchdog);
//!   commands never travel through it.
//! - [`media`]: the capture and encode threads, the fan-out of packets to sessions, and
//!   `MediaControl`, the handle that carries pause, keyframe, restart and bitrate commands.
//! - [`webrtc`]: the peer-connection builder, WHEP viewer sessions, WHIP publishing, keyframe
//!   requests, STUN.
//! - [`http`]: the axum server and its routes, `/metrics` rendering.
//! - [`validator`]: the light validator: chain RPC and sync thread, attestations, the redb store,
//!   the node key.
//! - [`ops`]: control socket, preflight checks, GPIO, systemd notify.
//! - [`outbound`]: the one outbound HTTP agent (chain RPC and WHIP).
//!
//! The sans-I/O logic lives in `sutantra-core` (frame pool, encode step, RTP, pacer, fan-out)
//! and `sutantra-chain` (light client, attestations), the cameras and GPIO in `sutantra-hal`;
//! this crate adds threads, sockets, files and the clock.

pub mod cli;
pub mod config;
pub mod http;
pub mod media;
pub mod node;
pub mod ops;
pub mod outbound;
pub mod stats;
pub mod validator;
pub mod webrtc;

//! Field operations: the daemon's control socket and the CLI commands that talk to it.
//!
//! - [`proto`]: the one versioned request/response module both sides use (JSON lines, capped).
//! - [`server`]: the daemon side: binds the Unix socket (mode 0660, stale-socket detection) and
//!   answers requests with a bounded number of concurrent clients.
//! - [`client`]: the CLI side: `status`, `stream`, `viewers`, `logs`, `set-log-level`,
//!   `reboot-stream`, `config show`; exit codes 0 ok, 1 the node refused or failed, 2 bad
//!   arguments (clap), 3 no node running at the socket.
//! - [`logging`]: the daemon's tracing setup: a reloadable filter (`set-log-level`) and a bounded
//!   ring of recent lines (`logs`, `logs --follow`).
//!
//! Commands reach the media threads through [`crate::media::control::MediaControl`].

pub mod client;
pub mod logging;
pub mod proto;
pub mod server;

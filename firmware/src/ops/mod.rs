//! Field operations: what an operator uses to run the node over SSH or a serial line.
//!
//! [`control`] is the daemon's control socket (server, client, protocol, log ring); [`check`]
//! the preflight checks of
//! `sutantra check`; [`gpio`] the status LED and button thread; [`notify`] systemd's readiness
//! and watchdog; [`memory`] hands freed heap back to the kernel after viewers come and go.

pub mod check;
pub mod control;
pub mod gpio;
pub mod memory;
pub mod notify;

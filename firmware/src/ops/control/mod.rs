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
//! [`MediaControl`] is how an operator's request reaches the media threads: three atomics they
//! read once per frame (no locks on the hot path).

pub mod client;
pub mod logging;
pub mod proto;
pub mod server;

use std::sync::atomic::{AtomicBool, Ordering};

/// Operator switches read by the media threads.
#[derive(Debug, Default)]
pub struct MediaControl {
    paused: AtomicBool,
    keyframe: AtomicBool,
    restart: AtomicBool,
}

impl MediaControl {
    /// `stream stop` (true) or `stream start` (false). Starting again asks for a keyframe so
    /// every viewer gets a clean picture at once.
    pub fn set_paused(&self, paused: bool) {
        self.paused.store(paused, Ordering::SeqCst);
        if !paused {
            self.request_keyframe();
        }
    }

    /// Frames are not being sent on purpose.
    pub fn paused(&self) -> bool {
        self.paused.load(Ordering::Relaxed)
    }

    /// Asks the encoder for a keyframe (rate-limited like a viewer's PLI).
    pub fn request_keyframe(&self) {
        self.keyframe.store(true, Ordering::SeqCst);
    }

    /// Takes a pending keyframe request (the encode thread).
    pub fn take_keyframe(&self) -> bool {
        self.keyframe.swap(false, Ordering::SeqCst)
    }

    /// Asks the capture thread to close and reopen the source.
    pub fn request_restart(&self) {
        self.restart.store(true, Ordering::SeqCst);
    }

    /// Takes a pending restart request (the capture thread).
    pub fn take_restart(&self) -> bool {
        self.restart.swap(false, Ordering::SeqCst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starting_again_asks_for_a_keyframe() {
        let c = MediaControl::default();
        c.set_paused(true);
        assert!(c.paused());
        assert!(!c.take_keyframe());
        c.set_paused(false);
        assert!(!c.paused());
        assert!(c.take_keyframe());
        assert!(!c.take_keyframe());
    }
}

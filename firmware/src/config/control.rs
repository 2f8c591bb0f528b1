//! `[control]`: the daemon's control socket.

use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The socket file's name in the data dir when `[control] socket` is not set.
pub const SOCKET_FILE: &str = "control.sock";

/// `[control]`: where the daemon listens for `sutantra` commands.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ControlConfig {
    /// The Unix socket (default `<data_dir>/control.sock`; `/run/sutantra/control.sock` when
    /// installed as a service).
    pub socket: Option<PathBuf>,
}

impl ControlConfig {
    /// The socket path for a node whose data dir is `data_dir`.
    pub fn socket_path(&self, data_dir: &Path) -> PathBuf {
        self.socket
            .clone()
            .unwrap_or_else(|| data_dir.join(SOCKET_FILE))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn socket_defaults_to_the_data_dir() {
        let c = ControlConfig::default();
        assert_eq!(
            c.socket_path(Path::new("/d")),
            PathBuf::from("/d/control.sock")
        );
        let c = ControlConfig {
            socket: Some("/run/s.sock".into()),
        };
        assert_eq!(c.socket_path(Path::new("/d")), PathBuf::from("/run/s.sock"));
    }
}

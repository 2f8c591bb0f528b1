//! Check: the node's identity key is readable by its owner only.

use super::Outcome;
use crate::config::Config;
use std::os::unix::fs::PermissionsExt;

/// The key file's mode.
pub fn check(cfg: &Config) -> Outcome {
    let path = crate::validator::keys::key_path(&cfg.data_dir);
    match std::fs::metadata(&path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Outcome::ok(
            "keys",
            format!(
                "{} does not exist yet; `sutantra run` creates it (mode 0600)",
                path.display()
            ),
        ),
        Err(e) => Outcome::fail(
            "keys",
            format!("cannot read {}: {e}", path.display()),
            "run as the node's user, or fix the data directory's ownership",
        ),
        Ok(meta) => {
            let mode = meta.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                Outcome::fail(
                    "keys",
                    format!("{} has mode {mode:04o}: others can read it", path.display()),
                    format!("chmod 600 {}", path.display()),
                )
            } else {
                Outcome::ok("keys", format!("{} mode {mode:04o}", path.display()))
            }
        }
    }
}

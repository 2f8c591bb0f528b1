//! Check: the node's identity key is readable by its owner only, and (with a `[chain]`) is a key
//! the light validator can use.

use super::Outcome;
use crate::config::Config;
use std::os::unix::fs::PermissionsExt;

/// What to do about a key the light validator cannot use.
const FIX_KEY: &str = "restore node.key from a backup, or move it away to create a new identity \
                       (`sutantra keys show`); until then the video runs and the light validator \
                       does not";

/// The key file's mode, and with a chain whether it loads.
pub fn check(cfg: &Config) -> Outcome {
    let path = crate::validator::keys::key_path(&cfg.data_dir);
    match std::fs::metadata(&path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if cfg.chain.enabled() {
                Outcome::ok(
                    "keys",
                    format!(
                        "{} does not exist yet; `sutantra run` creates it (mode 0600)",
                        path.display()
                    ),
                )
            } else {
                Outcome::ok(
                    "keys",
                    format!(
                        "no node key at {}: none is needed without a [chain] (`sutantra keys \
                         show` creates one)",
                        path.display()
                    ),
                )
            }
        }
        Err(e) => Outcome::fail(
            "keys",
            format!("cannot read {}: {e}", path.display()),
            "run as the node's user, or fix the data directory's ownership",
        ),
        Ok(meta) => {
            let mode = meta.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                return Outcome::fail(
                    "keys",
                    format!("{} has mode {mode:04o}: others can read it", path.display()),
                    format!("chmod 600 {}", path.display()),
                );
            }
            if cfg.chain.enabled()
                && let Err(e) = crate::validator::keys::load(&cfg.data_dir)
            {
                return Outcome::fail("keys", e.to_string(), FIX_KEY);
            }
            Outcome::ok("keys", format!("{} mode {mode:04o}", path.display()))
        }
    }
}

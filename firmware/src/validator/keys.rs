//! The node's identity: one Ed25519 key in `<data_dir>/node.key`.
//!
//! This module owns the key file and nothing else: creating it once (mode 0600, written atomically
//! so a power cut never leaves half a key), refusing to use it when group or others can read or
//! write it (a leaked attestation key lets anyone sign "what this camera broadcast"), and loading
//! it. The file holds the 32-byte seed as 64 hex digits and a newline, so an operator can back it
//! up with a text tool. The public key and the node id (`sutantra_chain::attest::node_id`) are what
//! `sutantra keys show` prints; the seed is never printed or logged.

use ed25519_compact::{KeyPair, Seed};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// The key file's name inside the data directory.
pub const KEY_FILE: &str = "node.key";

/// Why the key could not be created or loaded. Each message says what to do.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The file is open to group or others.
    #[error(
        "the key file {path} has mode {mode:o}: group or others can read or write it; \
         run `chmod 600 {path}` (and check who copied it); the key is not used until then"
    )]
    Permissions {
        /// The file.
        path: String,
        /// Its permission bits.
        mode: u32,
    },
    /// The file exists but is not a key.
    #[error(
        "the key file {path} is not a Sutantra node key ({reason}); restore it from a backup, \
         or move it away to create a new identity"
    )]
    Malformed {
        /// The file.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// No key yet (only from [`load`]).
    #[error(
        "no node key at {path}: start the node once, or run `sutantra keys show`, to create it"
    )]
    Missing {
        /// The file.
        path: String,
    },
    /// An I/O error.
    #[error("{what} {path}: {source}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// The file or directory.
        path: String,
        /// The error.
        source: std::io::Error,
    },
}

fn io<'a>(what: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> KeyError + 'a {
    move |source| KeyError::Io {
        what,
        path: path.display().to_string(),
        source,
    }
}

/// The key file path in `data_dir`.
pub fn key_path(data_dir: &Path) -> PathBuf {
    data_dir.join(KEY_FILE)
}

/// Loads the key in `data_dir`, creating it first if there is none. Returns the key and whether
/// it was created now.
pub fn load_or_create(data_dir: &Path) -> Result<(KeyPair, bool), KeyError> {
    match load(data_dir) {
        Ok(k) => Ok((k, false)),
        Err(KeyError::Missing { .. }) => create(data_dir).map(|k| (k, true)),
        Err(e) => Err(e),
    }
}

/// Loads the key in `data_dir`; refuses a file that group or others can read or write.
pub fn load(data_dir: &Path) -> Result<KeyPair, KeyError> {
    let path = key_path(data_dir);
    let meta = match std::fs::symlink_metadata(&path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(KeyError::Missing {
                path: path.display().to_string(),
            });
        }
        Err(e) => return Err(io("cannot read", &path)(e)),
    };
    if !meta.is_file() {
        return Err(KeyError::Malformed {
            path: path.display().to_string(),
            reason: "not a regular file".into(),
        });
    }
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(KeyError::Permissions {
            path: path.display().to_string(),
            mode,
        });
    }
    // A key file is 65 bytes; read at most a little more so a wrong file is refused cheaply.
    let text = read_limited(&path, 256)?;
    parse_seed(&text)
        .map(|seed| KeyPair::from_seed(Seed::new(seed)))
        .map_err(|reason| KeyError::Malformed {
            path: path.display().to_string(),
            reason,
        })
}

fn read_limited(path: &Path, max: u64) -> Result<String, KeyError> {
    use std::io::Read;
    let mut buf = Vec::new();
    File::open(path)
        .and_then(|f| f.take(max + 1).read_to_end(&mut buf))
        .map_err(io("cannot read", path))?;
    if buf.len() as u64 > max {
        return Err(KeyError::Malformed {
            path: path.display().to_string(),
            reason: "the file is too large".into(),
        });
    }
    String::from_utf8(buf).map_err(|_| KeyError::Malformed {
        path: path.display().to_string(),
        reason: "not text".into(),
    })
}

fn parse_seed(text: &str) -> Result<[u8; 32], String> {
    let hex_text = text.trim();
    let bytes = hex::decode(hex_text).map_err(|e| format!("not hex: {e}"))?;
    <[u8; 32]>::try_from(bytes.as_slice())
        .map_err(|_| format!("{} bytes where a 32-byte seed belongs", bytes.len()))
}

/// Creates a new key in `data_dir`: a temporary file created with mode 0600, written and
/// fsync'd, then linked into place (never over an existing key) and the directory fsync'd.
fn create(data_dir: &Path) -> Result<KeyPair, KeyError> {
    std::fs::create_dir_all(data_dir).map_err(io("cannot create the data directory", data_dir))?;
    let path = key_path(data_dir);
    let tmp = data_dir.join(format!(".{KEY_FILE}.{}.tmp", std::process::id()));
    let seed = Seed::generate();
    let kp = KeyPair::from_seed(seed);
    let result = (|| {
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(io("cannot create", &tmp))?;
        // The mode given at creation is filtered by the umask; make sure it is exactly 0600.
        f.set_permissions(std::fs::Permissions::from_mode(0o600))
            .map_err(io("cannot set the mode of", &tmp))?;
        f.write_all(format!("{}\n", hex::encode(seed.as_ref())).as_bytes())
            .map_err(io("cannot write", &tmp))?;
        f.sync_all().map_err(io("cannot sync", &tmp))?;
        drop(f);
        // A hard link fails if the key appeared meanwhile (another `sutantra` created it): then
        // that key wins and is loaded below. Filesystems without hard links fall back to rename.
        match std::fs::hard_link(&tmp, &path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(_) if !path.exists() => {
                std::fs::rename(&tmp, &path).map_err(io("cannot move the key to", &path))?
            }
            Err(e) => return Err(io("cannot link the key to", &path)(e)),
        }
        File::open(data_dir)
            .and_then(|d| d.sync_all())
            .map_err(io("cannot sync the directory", data_dir))?;
        Ok(())
    })();
    let _ = std::fs::remove_file(&tmp);
    result?;
    // Whoever won the race, the file in place is the key.
    let loaded = load(data_dir)?;
    if loaded.pk == kp.pk {
        tracing::info!(file = %path.display(), "created the node key");
    }
    Ok(loaded)
}

/// The public key as lowercase hex.
pub fn public_key_hex(kp: &KeyPair) -> String {
    hex::encode(kp.pk.as_ref())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn created_with_mode_0600_and_loaded_again() {
        let dir = tempfile::tempdir().expect("temp dir");
        let (kp, created) = load_or_create(dir.path()).expect("create");
        assert!(created);
        let mode = std::fs::metadata(key_path(dir.path()))
            .expect("key file")
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600);
        let (again, created) = load_or_create(dir.path()).expect("load");
        assert!(!created);
        assert_eq!(kp.pk, again.pk);
        // Nothing left behind by the atomic write.
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .expect("list")
            .filter_map(|e| e.ok())
            .map(|e| e.file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from(KEY_FILE)]);
    }

    #[test]
    fn refuses_a_key_readable_by_group_or_others() {
        let dir = tempfile::tempdir().expect("temp dir");
        load_or_create(dir.path()).expect("create");
        let path = key_path(dir.path());
        for mode in [0o644, 0o640, 0o604, 0o660, 0o602] {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).expect("chmod");
            let e = load(dir.path()).expect_err("must be refused");
            let msg = e.to_string();
            assert!(matches!(e, KeyError::Permissions { .. }), "{msg}");
            assert!(
                msg.contains(&format!("chmod 600 {}", path.display())),
                "{msg}"
            );
            // load_or_create must not replace it either.
            assert!(load_or_create(dir.path()).is_err());
        }
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o400)).expect("chmod");
        load(dir.path()).expect("0400 is fine");
    }

    #[test]
    fn refuses_a_malformed_key_and_missing_key_says_how_to_create() {
        let dir = tempfile::tempdir().expect("temp dir");
        let e = load(dir.path()).expect_err("missing");
        assert!(e.to_string().contains("start the node once"), "{e}");
        let path = key_path(dir.path());
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .expect("create");
        f.write_all(b"not a key\n").expect("write");
        let e = load(dir.path()).expect_err("malformed");
        assert!(matches!(e, KeyError::Malformed { .. }), "{e}");
    }
}

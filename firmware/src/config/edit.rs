//! `sutantra config set KEY VALUE`: one key of the TOML file changed, validated, and written
//! atomically.
//!
//! The file is edited with `toml_edit`, so the operator's comments, order and layout survive;
//! only the one value changes. The edited text must pass the same validation as a file the node
//! starts with ([`Config::parse`]: unknown keys and bad values are errors with file, line and
//! key), or nothing is written. Writing is atomic: a temporary file in the same directory,
//! fsync'd, renamed over the original, and the directory fsync'd, so a power cut leaves either
//! the old file or the new one, never half of one.
//!
//! The new file keeps the original's owner, group and mode (a `root:sutantra 0640` file stays
//! one, so the node's group still reads it and nobody else does). The temporary file is never
//! looser than the original: it is created with at most the original's owner bits (`0600` at
//! most, no group or other access), written and fsync'd at that mode, and only then given the
//! original's owner and group (`fchown`) and mode (`fchmod`), just before the rename. So a
//! `config set` killed mid-write (`kill -9`, a power cut) leaves at most a `0600` temporary file
//! (only in the microseconds between `fchmod` and the rename can one with the original's mode
//! and group be left: no wider audience than the config itself), and the next `config set`
//! removes temporary files whose writer is gone. When the owner or group cannot be kept (not
//! root, and the file is someone else's or in a group we are not in), nothing is written and the
//! error says so.

// Fed from outside the node: no indexing, slicing or arithmetic that can panic (ARCHITECTURE.md,
// "A fault stays where it happened"); fuzzed by `fuzz/fuzz_targets/config_set.rs`.
#![deny(clippy::indexing_slicing, clippy::arithmetic_side_effects)]

use crate::config::{Config, ConfigError};
use std::io::Write;
use std::path::Path;
use toml_edit::{DocumentMut, Item, Table, Value};

/// Why `config set` refused.
#[derive(Debug, thiserror::Error)]
pub enum EditError {
    /// The key is not a dotted path of names (`encoder.bitrate_kbps`).
    #[error(
        "bad key {0:?}: use a dotted path such as encoder.bitrate_kbps (`sutantra config show` lists them)"
    )]
    BadKey(String),
    /// The key names an array of tables (`[[publish]]`), which `set` does not edit.
    #[error("{0} is a list of tables ([[{0}]]): edit the file and run `sutantra config reload`")]
    List(String),
    /// The file is not TOML.
    #[error("{0}")]
    Parse(String),
    /// The edited configuration is invalid: nothing was written.
    #[error("{0} (nothing was written)")]
    Invalid(ConfigError),
    /// Reading or writing the file failed.
    #[error("{path}: {error}")]
    Io {
        /// The file.
        path: String,
        /// What failed.
        error: std::io::Error,
    },
}

/// The value `text` stands for: TOML if it parses as a value (`1500`, `true`, `"x"`,
/// `["a", "b"]`), otherwise the text as a string (`v4l2:/dev/video0`).
pub fn parse_value(text: &str) -> Value {
    text.parse::<Value>()
        .map(|mut v| {
            v.decor_mut().clear();
            v
        })
        .unwrap_or_else(|_| Value::from(text))
}

/// Sets `key` (dotted) to `value` in the TOML `text`; returns the new text, validated as the
/// file `file` would be.
pub fn set_key(text: &str, file: &str, key: &str, value: &str) -> Result<String, EditError> {
    let mut doc: DocumentMut = text
        .parse()
        .map_err(|e: toml_edit::TomlError| EditError::Parse(format!("{file}: {e}")))?;
    let parts: Vec<&str> = key.split('.').collect();
    if parts.iter().any(|p| {
        p.is_empty()
            || !p
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    }) {
        return Err(EditError::BadKey(key.to_string()));
    }
    let (last, tables) = parts.split_last().ok_or(EditError::BadKey(key.into()))?;
    let mut table: &mut Table = doc.as_table_mut();
    for name in tables {
        let entry = table.entry(name).or_insert_with(|| {
            let mut t = Table::new();
            t.set_implicit(false);
            Item::Table(t)
        });
        match entry {
            Item::Table(t) => table = t,
            Item::ArrayOfTables(_) => return Err(EditError::List((*name).to_string())),
            _ => return Err(EditError::BadKey(key.to_string())),
        }
    }
    if matches!(table.get(last), Some(Item::ArrayOfTables(_))) {
        return Err(EditError::List((*last).to_string()));
    }
    let mut new_value = parse_value(value);
    match table.get_mut(last) {
        // Replace the value in place: the key, its comments and a trailing comment stay.
        Some(Item::Value(old)) => {
            *new_value.decor_mut() = old.decor().clone();
            *old = new_value;
        }
        Some(Item::Table(_)) => return Err(EditError::BadKey(key.to_string())),
        _ => {
            table.insert(last, Item::Value(new_value));
        }
    }
    let new = doc.to_string();
    Config::parse(&new, file).map_err(EditError::Invalid)?;
    Ok(new)
}

/// The mode the temporary file is created with: the original's owner bits (at most `0600`),
/// never any group or other access; `0600` when there is no original.
fn temp_mode(original: Option<u32>) -> u32 {
    original.map_or(0o600, |m| m & 0o600)
}

/// Gives `file` (the temporary copy) the owner, group and mode of `original`, in that order:
/// `fchown` clears set-id bits, and until `fchmod` the file stays at its creation mode.
fn copy_owner_and_mode(file: &std::fs::File, original: &std::fs::Metadata) -> std::io::Result<()> {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let now = file.metadata()?;
    let (uid, gid) = (original.uid(), original.gid());
    if (now.uid(), now.gid()) != (uid, gid) {
        // Only when they differ: a user editing their own file in their own group needs no
        // privilege. Otherwise this takes root (or, for the group alone, membership of it).
        std::os::unix::fs::fchown(file, Some(uid), Some(gid)).map_err(|e| {
            let whose = if now.uid() != uid {
                format!("owner (uid {uid}) and group (gid {gid})")
            } else {
                format!("group (gid {gid})")
            };
            std::io::Error::new(
                e.kind(),
                format!(
                    "cannot keep the file's {whose}: {e}; nothing was written (run it as root, \
                     e.g. `sudo sutantra config set ...`, or as the file's owner)"
                ),
            )
        })?;
    }
    file.set_permissions(std::fs::Permissions::from_mode(original.mode() & 0o7777))
}

/// Replaces `path`'s contents with `text` atomically (temporary file, fsync, rename, fsync of
/// the directory), keeping the file's owner, group and mode (see the module header).
pub fn write_atomic(path: &Path, text: &str) -> Result<(), EditError> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let io = |error| EditError::Io {
        path: path.display().to_string(),
        error,
    };
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => std::path::PathBuf::from("."),
    };
    let name = path.file_name().ok_or_else(|| {
        io(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "not a file name",
        ))
    })?;
    let tmp = dir.join(format!(
        ".{}.tmp-{}",
        name.to_string_lossy(),
        std::process::id()
    ));
    let original = match std::fs::metadata(path) {
        Ok(m) => Some(m),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(io(e)),
    };
    remove_stale_temporaries(&dir, &name.to_string_lossy());
    let result = (|| {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(temp_mode(original.as_ref().map(|m| m.permissions().mode())))
            .open(&tmp)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
        if let Some(m) = &original {
            copy_owner_and_mode(&f, m)?;
            f.sync_all()?;
        }
        drop(f);
        std::fs::rename(&tmp, path)?;
        std::fs::File::open(&dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.map_err(io)
}

/// Removes `.NAME.tmp-PID` files in `dir` left by a writer that is gone (killed or powered off
/// mid-write): `PID` is no running process. Best effort: what cannot be removed stays.
fn remove_stale_temporaries(dir: &Path, name: &str) {
    let prefix = format!(".{name}.tmp-");
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let file = entry.file_name();
        let Some(pid) = file.to_str().and_then(|f| f.strip_prefix(&prefix)) else {
            continue;
        };
        let alive = pid
            .parse::<u32>()
            .is_ok_and(|p| p == std::process::id() || Path::new(&format!("/proc/{p}")).exists());
        if !alive {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// Reads `path`, sets `key` to `value`, validates and writes it back atomically.
pub fn set_in_file(path: &Path, key: &str, value: &str) -> Result<(), EditError> {
    let text = std::fs::read_to_string(path).map_err(|error| EditError::Io {
        path: path.display().to_string(),
        error,
    })?;
    let new = set_key(&text, &path.display().to_string(), key, value)?;
    write_atomic(path, &new)
}

#[cfg(test)]
#[allow(clippy::indexing_slicing, clippy::arithmetic_side_effects)]
mod tests {
    use super::*;

    const FILE: &str = "# the camera\n[source]\nspec = \"test-pattern\" # synthetic\nwidth = 640\n\n[encoder]\n# kbit/s\nbitrate_kbps = 1000\n";

    #[test]
    fn sets_a_value_and_keeps_comments() {
        let new = set_key(FILE, "c.toml", "encoder.bitrate_kbps", "1500").expect("set");
        assert!(new.contains("bitrate_kbps = 1500"), "{new}");
        assert!(
            new.contains("# kbit/s") && new.contains("# synthetic"),
            "{new}"
        );
        let cfg = Config::parse(&new, "c.toml").expect("valid");
        assert_eq!(cfg.encoder.bitrate_kbps, 1500);
        assert_eq!(cfg.source.width, 640);
    }

    #[test]
    fn strings_need_no_quotes_and_new_sections_are_made() {
        let new = set_key(FILE, "c.toml", "source.spec", "y4m:/tmp/clip.y4m").expect("set");
        assert!(new.contains("spec = \"y4m:/tmp/clip.y4m\""), "{new}");
        let new = set_key(FILE, "c.toml", "http.token", "s3cret").expect("set");
        assert!(
            new.contains("[http]") && new.contains("token = \"s3cret\""),
            "{new}"
        );
        let new = set_key("", "c.toml", "encoder.cpu_used", "10").expect("set");
        assert_eq!(
            Config::parse(&new, "c").expect("valid").encoder.cpu_used,
            10
        );
    }

    #[test]
    fn invalid_results_are_refused_with_file_line_and_key() {
        let e = set_key(FILE, "c.toml", "encoder.bitrate_kbps", "0").expect_err("zero");
        let text = e.to_string();
        assert!(
            text.starts_with("c.toml:") && text.contains("bitrate_kbps"),
            "{text}"
        );
        assert!(text.ends_with("(nothing was written)"), "{text}");
        let e = set_key(FILE, "c.toml", "encoder.bitrate", "10").expect_err("unknown key");
        assert!(e.to_string().contains("bitrate"), "{e}");
        let e = set_key(FILE, "c.toml", "encoder.bitrate_kbps", "fast").expect_err("type");
        assert!(e.to_string().contains("bitrate_kbps"), "{e}");
        for bad in ["", ".x", "a..b", "a b", "encoder.bitrate kbps"] {
            assert!(
                matches!(set_key(FILE, "c", bad, "1"), Err(EditError::BadKey(_))),
                "{bad}"
            );
        }
        let with_list = "[[publish]]\nurl = \"http://127.0.0.1:1/whip\"\n";
        assert!(matches!(
            set_key(with_list, "c", "publish.enabled", "false"),
            Err(EditError::List(_))
        ));
        assert!(matches!(
            set_key("[x", "c", "a.b", "1"),
            Err(EditError::Parse(_))
        ));
    }

    #[test]
    fn atomic_write_replaces_the_file_and_keeps_its_mode() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("config.toml");
        std::fs::write(&path, FILE).expect("write");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).expect("chmod");
        set_in_file(&path, "source.width", "1280").expect("set");
        let text = std::fs::read_to_string(&path).expect("read");
        assert!(text.contains("width = 1280"), "{text}");
        let mode = std::fs::metadata(&path).expect("meta").permissions().mode();
        assert_eq!(mode & 0o777, 0o640);
        // Nothing left behind, and a refused edit leaves the file as it was.
        assert_eq!(std::fs::read_dir(dir.path()).expect("ls").count(), 1);
        set_in_file(&path, "source.width", "-3").expect_err("negative");
        assert_eq!(std::fs::read_to_string(&path).expect("read"), text);
        // A stricter file stays strict, a looser one loose.
        for want in [0o600, 0o400, 0o644] {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(want)).expect("chmod");
            set_in_file(&path, "source.width", "800").expect("set");
            let mode = std::fs::metadata(&path).expect("meta").permissions().mode();
            assert_eq!(mode & 0o7777, want, "{want:o}");
        }
    }

    /// The temporary copy never opens to group or others, and never gives the owner more than
    /// the original did, whatever the original's mode.
    #[test]
    fn temporary_files_of_gone_writers_are_removed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("c.toml");
        std::fs::write(&path, FILE).expect("write");
        // PIDs above the kernel's limit (4194304) are never running.
        let stale = dir.path().join(".c.toml.tmp-99999999");
        let other = dir.path().join(".other.toml.tmp-99999999");
        std::fs::write(&stale, "half a file").expect("write");
        std::fs::write(&other, "not ours").expect("write");
        set_in_file(&path, "encoder.bitrate_kbps", "700").expect("set");
        assert!(!stale.exists(), "a stale temporary file was left");
        assert!(other.exists(), "another file's temporary was removed");
        let names: Vec<String> = std::fs::read_dir(dir.path())
            .expect("read dir")
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names.len(), 2, "{names:?}");
    }

    #[test]
    fn the_temporary_file_is_never_looser_than_the_original() {
        assert_eq!(temp_mode(None), 0o600);
        for (original, temp) in [
            (0o640, 0o600),
            (0o644, 0o600),
            (0o666, 0o600),
            (0o600, 0o600),
            (0o400, 0o400),
            (0o040, 0o000),
            (0o4755, 0o600),
        ] {
            assert_eq!(temp_mode(Some(original)), temp, "{original:o}");
            assert_eq!(
                temp_mode(Some(original)) & !original & 0o777,
                0,
                "{original:o}"
            );
        }
    }

    /// `root:adm 0640` stays `root:adm 0640` after `config set` (the group is changed to gid 4,
    /// `adm` on Debian, when the test runs as root; otherwise to one of our own groups).
    #[test]
    fn atomic_write_keeps_the_owner_and_group() {
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("config.toml");
        std::fs::write(&path, FILE).expect("write");
        let meta = std::fs::metadata(&path).expect("meta");
        // SAFETY: geteuid and getgroups only read the process's credentials into our buffer.
        let (root, groups) = unsafe {
            let mut groups = vec![0 as libc::gid_t; 256];
            let n = libc::getgroups(groups.len() as libc::c_int, groups.as_mut_ptr());
            groups.truncate(usize::try_from(n).unwrap_or(0));
            (libc::geteuid() == 0, groups)
        };
        let gid = if root {
            4
        } else {
            // A supplementary group other than the file's, if we have one.
            groups
                .into_iter()
                .find(|g| *g != meta.gid())
                .unwrap_or(meta.gid())
        };
        std::os::unix::fs::chown(&path, None, Some(gid)).expect("chgrp");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).expect("chmod");
        set_in_file(&path, "encoder.bitrate_kbps", "1234").expect("set");
        let after = std::fs::metadata(&path).expect("meta");
        assert!(
            std::fs::read_to_string(&path)
                .expect("read")
                .contains("bitrate_kbps = 1234")
        );
        assert_eq!(after.mode() & 0o7777, 0o640);
        assert_eq!((after.uid(), after.gid()), (meta.uid(), gid));
        if root {
            // A file of another user keeps its owner too.
            std::os::unix::fs::chown(&path, Some(65534), Some(4)).expect("chown");
            set_in_file(&path, "encoder.bitrate_kbps", "1300").expect("set");
            let after = std::fs::metadata(&path).expect("meta");
            assert_eq!((after.uid(), after.gid()), (65534, 4));
            assert_eq!(after.mode() & 0o7777, 0o640);
        }
    }
}

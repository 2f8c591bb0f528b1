//! Configuration golden files: `tests/golden/config/*.toml` are one valid configuration (every
//! section, every key) and one file per kind of mistake; each `NAME.expected` holds exactly what
//! `sutantra config validate NAME.toml` prints (run in that directory, so the file name in the
//! message is stable), stdout then stderr. A changed message shows up here as a diff to review.
//!
//! `UPDATE_GOLDEN=1 cargo test -p sutantra-tests --test e2e config_golden` rewrites the
//! `.expected` files (and creates missing ones); review the diff before committing it.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::node::{binary, workspace};

fn golden_dir() -> PathBuf {
    workspace().join("tests/golden/config")
}

/// `sutantra config validate NAME [EXTRA]` in the golden dir: exit code, stdout, stderr.
fn validate(name: &str, extra: &[&str]) -> (i32, String, String) {
    let out = Command::new(binary())
        .current_dir(golden_dir())
        .args(["config", "validate", name])
        .args(extra)
        .output()
        .unwrap_or_else(|e| panic!("run sutantra config validate {name}: {e}"));
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn golden_files() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(golden_dir())
        .expect("read tests/golden/config")
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| n.ends_with(".toml"))
        .collect();
    names.sort();
    names
}

#[test]
fn config_golden_files_print_exactly_the_expected_text() {
    let update = std::env::var_os("UPDATE_GOLDEN").is_some();
    let names = golden_files();
    assert!(names.len() > 20, "golden files missing: {names:?}");
    assert!(names.contains(&"valid.toml".to_string()), "no valid.toml");
    let mut failures = Vec::new();
    for name in &names {
        let (code, stdout, stderr) = validate(name, &[]);
        let printed = format!("{stdout}{stderr}");
        let want_code = if name == "valid.toml" { 0 } else { 2 };
        if code != want_code {
            failures.push(format!(
                "{name}: exit {code}, expected {want_code}:\n{printed}"
            ));
        }
        let expected_path: PathBuf = golden_dir().join(name.replace(".toml", ".expected"));
        if update {
            std::fs::write(&expected_path, &printed)
                .unwrap_or_else(|e| panic!("write {}: {e}", expected_path.display()));
            continue;
        }
        match std::fs::read_to_string(&expected_path) {
            Ok(expected) if expected == printed => {}
            Ok(expected) => failures.push(format!(
                "{name}: printed\n  {printed:?}\nexpected ({})\n  {expected:?}",
                expected_path.display()
            )),
            Err(e) => failures.push(format!(
                "{name}: no {} ({e}); create it with UPDATE_GOLDEN=1",
                expected_path.display()
            )),
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} golden files differ (UPDATE_GOLDEN=1 rewrites them; review the diff):\n\n{}",
        failures.len(),
        names.len(),
        failures.join("\n\n")
    );
    // No stale expectations without a config file.
    for entry in std::fs::read_dir(golden_dir()).expect("read the golden dir") {
        let name = entry.expect("dir entry").file_name();
        let name = name.to_string_lossy();
        if let Some(stem) = name.strip_suffix(".expected") {
            assert!(
                Path::new(&golden_dir())
                    .join(format!("{stem}.toml"))
                    .is_file(),
                "{name} has no {stem}.toml"
            );
        }
    }
}

#[test]
fn config_golden_json_names_file_line_key_and_reason() {
    let (code, stdout, stderr) = validate("unknown-key.toml", &["--json"]);
    assert_eq!(code, 2, "{stdout}{stderr}");
    let j: Value = serde_json::from_str(stdout.trim())
        .unwrap_or_else(|e| panic!("not JSON ({e}): {stdout:?} {stderr:?}"));
    assert_eq!(j["valid"], false, "{j}");
    assert_eq!(j["file"], "unknown-key.toml", "{j}");
    assert_eq!(j["line"], 3, "{j}");
    assert_eq!(j["key"], "source.widht", "{j}");
    assert!(
        j["reason"]
            .as_str()
            .is_some_and(|r| r.contains("unknown field")),
        "{j}"
    );
    let (code, stdout, _) = validate("valid.toml", &["--json"]);
    assert_eq!(code, 0);
    let j: Value = serde_json::from_str(stdout.trim()).expect("JSON");
    assert_eq!(j["valid"], true, "{j}");
}

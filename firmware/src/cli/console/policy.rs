//! What a line typed on the serial console may do: one allow-list, checked before anything runs.
//!
//! The console asks for no login, so whoever holds the cable is nobody in particular. It may
//! read the node's state and steer the live stream, never write files or change the node's
//! configuration or stored state: those commands answer that they need SSH (a login) and do
//! nothing. The same rules hold for the daemon-hosted console and for `sutantra console
//! --device TTY` started from a shell: in both, the commands come from the far end of the
//! cable, not from whoever started the process, and a person who wants a login on the serial
//! line runs a login getty there (`serial-getty@ttyS0`) and the `sutantra` commands in its shell.
//!
//! | command | on the console | why |
//! |---|---|---|
//! | `status`, `viewers`, `logs [-n N] [--follow]`, `config show` | runs | reads the node (the WHEP token shows as `(set)`) |
//! | `stream keyframe\|stop\|start`, `reboot-stream` | runs | steers the live stream only: no file, no setting; a restart or `stream start` undoes it |
//! | `chain status`, `chain header`, `attest list`, `attest show` | runs | reads the store (read-only open) |
//! | `keys show` | runs when the node key exists | prints the public key; with no key yet it would create one |
//! | `check` (without `--config`) | runs | preflight reads |
//! | `boards`, `completions`, `help`, `--help`, `--version` | runs | prints text |
//! | `config set` | SSH | changes the node's configuration file |
//! | `config reload` | SSH | changes the running node's configuration |
//! | `config validate FILE`, `check --config FILE`, `chain verify`, `attest verify` | SSH | read files named on the line (an error quotes them) |
//! | `viewers --kick ID` | SSH | ends someone's session |
//! | `set-log-level` | SSH | changes the running node's logging |
//! | `attest export` | SSH | writes a file |
//! | `chain resume` | SSH | changes the node's stored trust state |
//! | `run`, `console` | no | the node runs as a service; this is the console |
//! | anything not listed (a new command) | SSH | the list allows, it does not deny |
//!
//! `--data-dir` and `--socket` are refused on every line: the console works on its own node.

use crate::cli::attest::AttestCmd;
use crate::cli::chain::ChainCmd;
use crate::cli::keys::KeysCmd;
use crate::cli::{Command, ConfigCmd};
use crate::ops::control::client::StreamCmd;
use std::path::Path;

/// `Ok` if the console runs `command` (parsed from `words`, the line without the program name)
/// for the node whose data dir is `data_dir`; else the one line to print instead (without the
/// `error: ` prefix). Nothing has run either way.
pub fn admit(command: &Command, words: &[String], data_dir: &Path) -> Result<(), String> {
    if let Some(flag) = words.iter().find_map(|w| {
        ["--data-dir", "--socket"]
            .into_iter()
            .find(|f| w == f || w.strip_prefix(f).is_some_and(|rest| rest.starts_with('=')))
    }) {
        return Err(format!(
            "`{flag}` is not taken on the console: it works on its own node ({})",
            data_dir.display()
        ));
    }
    // The allow-list: each arm names exactly what runs; everything else falls to `refusal`.
    match command {
        Command::Status(_)
        | Command::Viewers { kick: None, .. }
        | Command::Logs { .. }
        | Command::Config(ConfigCmd::Show(_))
        | Command::Stream {
            cmd: StreamCmd::Keyframe | StreamCmd::Stop | StreamCmd::Start,
            ..
        }
        | Command::RebootStream(_)
        | Command::Chain(ChainCmd::Status { .. } | ChainCmd::Header { .. })
        | Command::Attest(AttestCmd::List { .. } | AttestCmd::Show { .. })
        | Command::Boards { .. }
        | Command::Completions { .. } => Ok(()),
        Command::Check(args) if args.config.is_none() => Ok(()),
        Command::Keys(KeysCmd::Show { .. })
            if crate::validator::keys::key_path(data_dir).exists() =>
        {
            Ok(())
        }
        other => Err(refusal(other, data_dir)),
    }
}

/// The line a refused command prints: what it would change, and where to run it.
fn refusal(command: &Command, data_dir: &Path) -> String {
    let ssh = |name: &str, why: &str| {
        format!(
            "`{name}` {why}: run it over SSH (`sutantra {name} ...`); the console asks for no \
             login"
        )
    };
    match command {
        Command::Run(_) => "`run` is not available on the console: the node runs as a service \
                            (`systemctl start sutantra`)"
            .into(),
        Command::Console(_) => "this is the console already".into(),
        Command::Config(ConfigCmd::Set { .. }) => {
            ssh("config set", "changes the node's configuration file")
        }
        Command::Config(ConfigCmd::Reload(_)) => {
            ssh("config reload", "changes the running node's configuration")
        }
        Command::Config(ConfigCmd::Validate { .. }) => {
            ssh("config validate", "reads a file named on the line")
        }
        Command::Check(_) => ssh("check --config", "reads a file named on the line"),
        Command::Chain(ChainCmd::Verify(_)) => ssh("chain verify", "reads files named on the line"),
        Command::Attest(AttestCmd::Verify { .. }) => {
            ssh("attest verify", "reads files named on the line")
        }
        Command::Viewers { .. } => ssh("viewers --kick", "ends a viewer's session"),
        Command::SetLogLevel { .. } => ssh("set-log-level", "changes the running node's logging"),
        Command::Attest(AttestCmd::Export { .. }) => ssh("attest export", "writes a file"),
        Command::Chain(ChainCmd::Resume { .. }) => {
            ssh("chain resume", "changes the node's stored trust state")
        }
        Command::Keys(KeysCmd::Show { .. }) => ssh(
            "keys show",
            &format!(
                "would create the node key (there is none in {} yet)",
                data_dir.display()
            ),
        ),
        _ => "this command is not available on the serial console (it asks for no login): run \
              it over SSH"
            .into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::Cli;
    use clap::Parser;

    fn admit_line(line: &str, data_dir: &Path) -> Result<(), String> {
        let words: Vec<String> = line.split_whitespace().map(str::to_string).collect();
        let cli = Cli::try_parse_from(std::iter::once("sutantra".to_string()).chain(words.clone()))
            .unwrap_or_else(|e| panic!("{line}: {e}"));
        admit(&cli.command, &words, data_dir)
    }

    #[test]
    fn reads_and_stream_control_run() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(crate::validator::keys::key_path(dir.path()), b"k").expect("key");
        for line in [
            "status",
            "status --json",
            "viewers",
            "logs -n 20",
            "logs --follow",
            "config show",
            "stream keyframe",
            "stream stop",
            "stream start",
            "reboot-stream",
            "chain status",
            "chain header 10",
            "attest list",
            "attest show 3 --json",
            "keys show",
            "check",
            "check --json --board pi4",
            "boards",
            "completions bash",
        ] {
            assert_eq!(admit_line(line, dir.path()), Ok(()), "{line}");
        }
    }

    #[test]
    fn writes_and_changes_need_ssh() {
        let dir = tempfile::tempdir().expect("tempdir");
        for (line, says) in [
            (
                "config set encoder.bitrate_kbps 900",
                "`config set` changes the node's configuration file: run it over SSH \
                 (`sutantra config set ...`)",
            ),
            (
                "config set encoder.bitrate_kbps 900 --file /tmp/x.toml",
                "`config set` changes",
            ),
            ("config reload", "`config reload` changes the running"),
            (
                "config validate /etc/passwd",
                "`config validate` reads a file",
            ),
            (
                "check --config /etc/passwd",
                "`check --config` reads a file",
            ),
            (
                "chain verify --trusted a --untrusted b --now 2024-01-01T00:00:00Z \
                 --trusting-period 1d",
                "`chain verify` reads files",
            ),
            ("attest verify f.json", "`attest verify` reads files"),
            (
                "viewers --kick abc",
                "`viewers --kick` ends a viewer's session",
            ),
            ("set-log-level debug", "`set-log-level` changes"),
            ("attest export out.json", "`attest export` writes a file"),
            ("chain resume", "`chain resume` changes"),
            ("keys show", "`keys show` would create the node key"),
            ("run", "`run` is not available on the console"),
            ("console --device /dev/null", "this is the console already"),
        ] {
            let e = admit_line(line, dir.path()).expect_err(line);
            assert!(e.starts_with(says), "{line}: {e}");
            if e.contains("SSH") {
                assert!(e.contains("over SSH"), "{line}: {e}");
            }
        }
    }

    #[test]
    fn the_console_works_on_its_own_node_only() {
        let dir = tempfile::tempdir().expect("tempdir");
        for line in [
            "status --socket /tmp/other.sock",
            "status --socket=/tmp/other.sock",
            "chain status --data-dir /tmp/other",
            "attest list --data-dir=/tmp/other",
            "check --data-dir /tmp/other",
        ] {
            let e = admit_line(line, dir.path()).expect_err(line);
            assert!(e.contains("is not taken on the console"), "{line}: {e}");
        }
    }
}

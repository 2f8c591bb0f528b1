//! `sutantra`: the edge node's binary: parse the command line, dispatch, exit code.

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = sutantra::cli::Cli::parse();
    if !matches!(cli.command, sutantra::cli::Command::Run(_)) {
        // A CLI command piped into `head` should end quietly like any Unix tool, not panic on
        // EPIPE. (The daemon keeps Rust's default of ignoring SIGPIPE: its sockets report it.)
        // SAFETY: called before any other thread exists; SIG_DFL is a valid disposition.
        unsafe {
            libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        }
    }
    let run = matches!(cli.command, sutantra::cli::Command::Run(_));
    // A panic that escapes a command (a bug, or a library on a damaged file; the store already
    // turns redb's panics on a damaged node.redb into an error) ends with a message that says what to do and exit code 70
    // (EX_SOFTWARE), not a bare backtrace. The running node contains its panics where they happen
    // (ARCHITECTURE.md, "A fault stays where it happened"); one that reaches here ends it, and
    // systemd restarts it.
    match std::panic::catch_unwind(|| sutantra::cli::dispatch(cli.command)) {
        Ok(code) => code,
        Err(_) => {
            eprintln!(
                "sutantra: internal error (the message above says where). If it happened while \
                 reading the node's store, node.redb in the data dir is damaged: back it up, move \
                 it away and run the command again{}",
                if run { "; the node stops here" } else { "" }
            );
            ExitCode::from(70)
        }
    }
}

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
    sutantra::cli::dispatch(cli.command)
}

//! `sutantra`: the edge node's binary (daemon and CLI).
//!
//! Layout: [`cli`] parses the command line; [`config`] is the TOML model; [`media`] runs the
//! capture and encode threads; [`viewer`] the WHEP sessions on `webrtc`; [`http`] the server;
//! [`stats`] the counters; [`stun`] STUN resolution with a deadline. `run` wires them up.
//!
//! The light validator: [`keys`] (the node's Ed25519 identity), [`store`] (redb: trusted light
//! blocks, outbox), [`chain`] (RPC client and the chain thread), [`attest`] (segments to signed,
//! committed, submitted attestations), [`validator`] (their threads in `run`), [`cli_chain`]
//! (`chain`, `keys`, `attest` commands) and [`duration`] (`10s`, `2h`, nanoseconds).

mod attest;
mod board;
mod chain;
mod cli;
mod cli_chain;
mod config;
mod duration;
mod http;
mod keyframe_requests;
mod keys;
mod media;
mod notify;
mod stats;
mod store;
mod stun;
mod validator;
mod viewer;

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    if !matches!(cli.command, cli::Command::Run(_)) {
        // A CLI command piped into `head` should end quietly like any Unix tool, not panic on
        // EPIPE. (The daemon keeps Rust's default of ignoring SIGPIPE: its sockets report it.)
        // SAFETY: called before any other thread exists; SIG_DFL is a valid disposition.
        unsafe {
            libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        }
    }
    match cli.command {
        cli::Command::Run(args) => cli::run(*args),
        cli::Command::Config(cmd) => cli::config(cmd),
        cli::Command::Chain(cmd) => cli_chain::chain(cmd),
        cli::Command::Keys(cmd) => cli_chain::keys(cmd),
        cli::Command::Attest(cmd) => cli_chain::attest(cmd),
        cli::Command::Boards { json } => board::list(json),
    }
}

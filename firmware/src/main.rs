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
//!
//! The status LED and the button: [`gpio`] (a thread that shows the node's state on the LED
//! and turns a long press into a keyframe or a stream restart).
//!
//! Field operations: [`control`] (the daemon's control socket and the commands that use it) and
//! [`check`] (`sutantra check`, one file per preflight check), [`console`] (the serial console)
//! and [`completions`] (shell completion scripts).

mod attest;
mod board;
mod chain;
mod check;
mod cli;
mod cli_chain;
mod completions;
mod config;
mod config_edit;
mod console;
mod control;
mod duration;
mod gpio;
mod http;
mod keyframe_requests;
mod keys;
mod media;
mod notify;
mod publish;
mod reload;
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
        cli::Command::Status(target) => {
            control::client::run(&target, control::client::Action::Status)
        }
        cli::Command::Stream { cmd, target } => {
            control::client::run(&target, control::client::Action::Stream(cmd))
        }
        cli::Command::Viewers { kick, target } => {
            control::client::run(&target, control::client::Action::Viewers { kick })
        }
        cli::Command::Logs {
            follow,
            lines,
            target,
        } => control::client::run(
            &target,
            control::client::Action::Logs {
                follow,
                lines: usize::from(lines),
            },
        ),
        cli::Command::SetLogLevel { level, target } => {
            control::client::run(&target, control::client::Action::SetLogLevel(level))
        }
        cli::Command::RebootStream(target) => {
            control::client::run(&target, control::client::Action::RebootStream)
        }
        cli::Command::Check(args) => check::run(&args),
        cli::Command::Console(args) => console::run(&args),
        cli::Command::Completions { shell } => completions::print(shell),
    }
}

//! `sutantra`: the edge node's binary (daemon and CLI).
//!
//! Layout: [`cli`] parses the command line; [`config`] is the TOML model; [`media`] runs the
//! capture and encode threads; [`viewer`] the WHEP sessions on `webrtc`; [`http`] the server;
//! [`stats`] the counters; [`stun`] STUN resolution with a deadline. `run` wires them up.

mod cli;
mod config;
mod http;
mod keyframe_requests;
mod media;
mod stats;
mod stun;
mod viewer;

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    match cli.command {
        cli::Command::Run(args) => cli::run(*args),
        cli::Command::Config(cmd) => cli::config(cmd),
    }
}

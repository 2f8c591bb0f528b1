//! `sutantra check`: preflight diagnostics (aziotctl style).
//!
//! One small file per check; each returns an [`Outcome`]: OK, WARN or FAIL, what was found and
//! what to do. Works without a running node: it reads the configuration the node would use
//! (`--config FILE`, the board profile, `--data-dir`). Exit 0 when nothing FAILs, 1 when
//! something does, 2 for a bad configuration or bad arguments.

mod camera;
mod camera_stack;
mod chain;
mod clock;
mod disk;
mod encoder;
mod keys;
mod libvpx;
mod memory;
mod store;
mod stun;
mod udp;

use crate::config::Config;
use clap::Args;
use serde::Serialize;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

/// `sutantra check` flags.
#[derive(Debug, Clone, Args)]
pub struct CheckArgs {
    /// The TOML configuration the node runs with (default: the built-in defaults).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// The node's data directory (overrides the file).
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Board profile (`sutantra boards`); detected on a Raspberry Pi.
    #[arg(long, value_name = "NAME")]
    pub board: Option<String>,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// A check's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Verdict {
    /// Fine.
    Ok,
    /// Works, but look at it.
    Warn,
    /// The node will not work (well) until this is fixed.
    Fail,
}

impl Verdict {
    fn label(self) -> &'static str {
        match self {
            Verdict::Ok => "OK",
            Verdict::Warn => "WARN",
            Verdict::Fail => "FAIL",
        }
    }
}

/// One check's result.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    /// Short name, e.g. `disk`.
    pub check: &'static str,
    /// OK / WARN / FAIL.
    pub verdict: Verdict,
    /// What was found.
    pub detail: String,
    /// What to do (WARN and FAIL).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

impl Outcome {
    /// An OK.
    pub fn ok(check: &'static str, detail: impl Into<String>) -> Self {
        Self {
            check,
            verdict: Verdict::Ok,
            detail: detail.into(),
            fix: None,
        }
    }

    /// A WARN with what to do.
    pub fn warn(check: &'static str, detail: impl Into<String>, fix: impl Into<String>) -> Self {
        Self {
            check,
            verdict: Verdict::Warn,
            detail: detail.into(),
            fix: Some(fix.into()),
        }
    }

    /// A FAIL with what to do.
    pub fn fail(check: &'static str, detail: impl Into<String>, fix: impl Into<String>) -> Self {
        Self {
            check,
            verdict: Verdict::Fail,
            detail: detail.into(),
            fix: Some(fix.into()),
        }
    }
}

/// How long a network check may take.
pub const NET_TIMEOUT: Duration = Duration::from_secs(3);

/// Runs `f` on its own thread and gives up after `timeout` (a blocking device or resolver
/// cannot hold the whole check up; the thread is left to finish on its own).
pub fn with_timeout<T: Send + 'static>(
    timeout: Duration,
    f: impl FnOnce() -> T + Send + 'static,
) -> Option<T> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("check".into())
        .spawn(move || {
            let _ = tx.send(f());
        })
        .ok()?;
    rx.recv_timeout(timeout).ok()
}

/// The configuration the node would run with.
fn load(args: &CheckArgs) -> Result<Config, String> {
    let (mut cfg, table) = match &args.config {
        Some(path) => {
            let cfg = Config::load(path).map_err(|e| e.to_string())?;
            let table = std::fs::read_to_string(path)
                .ok()
                .and_then(|t| t.parse::<toml::Table>().ok());
            (cfg, table)
        }
        None => (Config::default(), None),
    };
    let (board, _) = crate::config::board::choose(args.board.as_deref(), cfg.board.as_deref())?;
    crate::config::board::apply(&mut cfg, board, table.as_ref());
    cfg.board = Some(board.name.to_string());
    if let Some(d) = &args.data_dir {
        cfg.data_dir = d.clone();
    }
    Ok(cfg)
}

/// Every check, in order.
pub fn all(cfg: &Config) -> Vec<Outcome> {
    vec![
        camera_stack::check(cfg),
        camera::check(cfg),
        libvpx::check(),
        encoder::check(cfg),
        disk::check(cfg),
        keys::check(cfg),
        store::check(cfg),
        clock::check(cfg),
        udp::check(cfg),
        memory::check(cfg),
        chain::check(cfg),
        stun::check(cfg),
    ]
}

/// `sutantra check`.
pub fn run(args: &CheckArgs) -> ExitCode {
    let cfg = match load(args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("sutantra: {e}");
            return ExitCode::from(2);
        }
    };
    let outcomes = all(&cfg);
    let worst = outcomes
        .iter()
        .map(|o| o.verdict)
        .max()
        .unwrap_or(Verdict::Ok);
    let count = |v: Verdict| outcomes.iter().filter(|o| o.verdict == v).count();
    if args.json {
        println!(
            "{}",
            serde_json::json!({
                "verdict": worst,
                "ok": count(Verdict::Ok),
                "warn": count(Verdict::Warn),
                "fail": count(Verdict::Fail),
                "checks": outcomes,
            })
        );
    } else {
        for o in &outcomes {
            println!("{:<4}  {:<8}  {}", o.verdict.label(), o.check, o.detail);
            if let Some(fix) = &o.fix {
                println!("{:<4}  {:<8}  -> {fix}", "", "");
            }
        }
        println!(
            "{} OK, {} WARN, {} FAIL",
            count(Verdict::Ok),
            count(Verdict::Warn),
            count(Verdict::Fail)
        );
    }
    if worst == Verdict::Fail {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

//! Check: the chain's RPC servers answer `/status` (when a chain is configured; short timeout).

use super::{NET_TIMEOUT, Outcome};
use crate::config::Config;

/// Each configured RPC server.
pub fn check(cfg: &Config) -> Outcome {
    if !cfg.chain.enabled() {
        return Outcome::ok("chain", "no chain configured ([chain] chain_id is empty)");
    }
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(NET_TIMEOUT))
        .http_status_as_error(false)
        .proxy(None)
        .max_redirects(0)
        .build()
        .into();
    let mut down = Vec::new();
    for base in &cfg.chain.rpc {
        let url = format!("{}/status", base.trim_end_matches('/'));
        match agent.get(&url).call() {
            Ok(r) if r.status().is_success() => {}
            Ok(r) => down.push(format!("{base}: HTTP {}", r.status().as_u16())),
            Err(e) => down.push(format!("{base}: {e}")),
        }
    }
    let n = cfg.chain.rpc.len();
    let fix = "check the network and [chain] rpc; the node keeps attestations in its outbox \
               until a server answers";
    if down.is_empty() {
        Outcome::ok("chain", format!("{n} RPC server(s) answer"))
    } else if down.len() == n {
        Outcome::fail(
            "chain",
            format!("no RPC server answers: {}", down.join("; ")),
            fix,
        )
    } else {
        Outcome::warn(
            "chain",
            format!(
                "{} of {n} RPC servers do not answer: {}",
                down.len(),
                down.join("; ")
            ),
            fix,
        )
    }
}

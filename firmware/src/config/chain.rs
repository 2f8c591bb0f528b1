//! `[chain]` and `[attest]`: the chain this node follows as a light client, and its stream
//! attestations.

use serde::Deserialize;

/// `[chain]`: the CometBFT chain the node follows as a light client.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ChainConfig {
    /// Chain id; empty means no chain (no sync, no attestations).
    pub chain_id: String,
    /// CometBFT RPC base URLs (`http://host:26657`): the first is the primary, the rest witnesses.
    pub rpc: Vec<String>,
    /// Height of the trust root (required with a chain id).
    pub trust_height: u64,
    /// Hex header hash at `trust_height`.
    pub trust_hash: String,
    /// Trusting period in seconds (CometBFT's default is two weeks).
    pub trusting_period_s: u64,
    /// Largest clock difference tolerated, in seconds.
    pub clock_drift_s: u64,
    /// Trust level `N/D`, from 1/3 to 1.
    pub trust_level: String,
    /// Verified light blocks kept in the store (the newest).
    pub headers_kept: usize,
    /// Least seconds between two writes of the trusted state to the store (SD-card wear); the
    /// first of a run and the one at a clean stop are not held back. A crash loses at most this
    /// much trusted progress, which the next start re-verifies.
    #[serde(deserialize_with = "persist_interval")]
    pub persist_interval_s: u64,
    /// Time between polls of the primary, in milliseconds.
    pub poll_interval_ms: u64,
    /// Largest RPC response body, in bytes; larger ones are refused before parsing.
    pub max_response_bytes: u64,
    /// Most validators accepted in one set (CometBFT's own cap is 10 000).
    pub max_validators: usize,
}

/// `[attest]`: signed attestations of what the node broadcast.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct AttestConfig {
    /// Length of one attested segment of video, in milliseconds.
    pub segment_ms: u64,
    /// The stream id written into every attestation.
    pub stream_id: String,
    /// Attestations kept in the outbox; when full, the oldest submitted or rejected ones are
    /// pruned first; only an outbox full of unsubmitted ones drops its oldest (counted, logged).
    pub outbox_capacity: usize,
    /// First retry delay of a failed submission, in milliseconds.
    pub retry_min_ms: u64,
    /// Longest retry delay, in milliseconds.
    pub retry_max_ms: u64,
}

/// The default of `chain.persist_interval_s`: one write of the trusted state a minute.
pub const DEFAULT_PERSIST_INTERVAL_S: u64 = 60;
/// The range of `chain.persist_interval_s`.
pub const PERSIST_INTERVAL_RANGE_S: std::ops::RangeInclusive<u64> = 1..=86_400;

/// `chain.persist_interval_s`, checked while parsing (so the error names the line).
fn persist_interval<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    let v = u64::deserialize(d)?;
    if PERSIST_INTERVAL_RANGE_S.contains(&v) {
        Ok(v)
    } else {
        Err(serde::de::Error::custom(format!(
            "{v}: use 1 to 86400 seconds (the trusted state is written at most this often)"
        )))
    }
}

impl Default for ChainConfig {
    fn default() -> Self {
        Self {
            chain_id: String::new(),
            rpc: Vec::new(),
            trust_height: 0,
            trust_hash: String::new(),
            trusting_period_s: 1_209_600,
            clock_drift_s: 10,
            trust_level: "1/3".into(),
            headers_kept: 8,
            persist_interval_s: DEFAULT_PERSIST_INTERVAL_S,
            poll_interval_ms: 5_000,
            max_response_bytes: 4 * 1024 * 1024,
            max_validators: 10_000,
        }
    }
}

impl Default for AttestConfig {
    fn default() -> Self {
        Self {
            segment_ms: 10_000,
            stream_id: "camera0".into(),
            outbox_capacity: 4096,
            retry_min_ms: 1_000,
            retry_max_ms: 60_000,
        }
    }
}

impl ChainConfig {
    /// A chain is configured (sync and attestations run).
    pub fn enabled(&self) -> bool {
        !self.chain_id.is_empty()
    }

    /// The trust level as `(numerator, denominator)` (validated).
    pub fn trust_level(&self) -> (u64, u64) {
        parse_trust_level(&self.trust_level).unwrap_or((1, 3))
    }

    /// The trust hash as bytes (validated).
    pub fn trust_hash_bytes(&self) -> Vec<u8> {
        hex::decode(self.trust_hash.trim()).unwrap_or_default()
    }
}

/// Parses a trust level `N/D`; CometBFT accepts 1/3 <= N/D <= 1.
pub fn parse_trust_level(text: &str) -> Result<(u64, u64), String> {
    let (n, d) = text
        .split_once('/')
        .ok_or_else(|| format!("`{text}` is not N/D (e.g. 1/3)"))?;
    let n: u64 = n
        .trim()
        .parse()
        .map_err(|_| format!("`{text}`: the numerator is not a number"))?;
    let d: u64 = d
        .trim()
        .parse()
        .map_err(|_| format!("`{text}`: the denominator is not a number"))?;
    if d == 0 || n > d || u128::from(n) * 3 < u128::from(d) {
        return Err(format!(
            "`{text}`: the trust level must be between 1/3 and 1 (the light-client spec's range)"
        ));
    }
    Ok((n, d))
}

/// Checks a CometBFT RPC base URL: `http://host:port` with an optional path, no query.
pub fn check_rpc_url(url: &str) -> Result<(), String> {
    let Some(rest) = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
    else {
        return Err(format!(
            "`{url}`: use http://host:26657 (CometBFT's RPC) or https://host for one behind TLS"
        ));
    };
    let host = rest.split('/').next().unwrap_or("");
    if host.is_empty() || url.contains(['?', '#', ' ']) {
        return Err(format!(
            "`{url}`: use http://host:26657 (no query, no spaces)"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    struct Doc {
        chain: ChainConfig,
    }

    #[test]
    fn persist_interval_defaults_to_a_minute_and_is_range_checked() {
        let d: Doc = toml::from_str("[chain]\n").expect("default");
        assert_eq!(d.chain.persist_interval_s, 60);
        let d: Doc = toml::from_str("[chain]\npersist_interval_s = 300\n").expect("300");
        assert_eq!(d.chain.persist_interval_s, 300);
        for bad in ["0", "86401"] {
            let e = toml::from_str::<Doc>(&format!("[chain]\npersist_interval_s = {bad}\n"))
                .expect_err(bad);
            assert!(e.message().contains("use 1 to 86400"), "{e}");
            assert!(e.span().is_some(), "the error names the line: {e}");
        }
    }
}

//! Replay on stable: every seed in `corpus/<target>/` and every crash input in
//! `artifacts/<target>/` goes through its harness, one test per target, so `cargo test
//! --workspace` re-checks every bug ever found without libFuzzer. Also checks that the target
//! list, the `fuzz_targets/` files and the corpus folders agree.

use super::TARGETS;
use std::path::{Path, PathBuf};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The files of `dir`, sorted (none when it does not exist); dot files are skipped.
fn files(dir: &Path) -> Vec<PathBuf> {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out: Vec<PathBuf> = rd
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .filter(|p| {
            !p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with('.'))
        })
        .collect();
    out.sort();
    out
}

fn replay(target: &str) {
    let Some((_, harness)) = TARGETS.iter().find(|(name, _)| *name == target) else {
        panic!("no target {target}");
    };
    let seeds = files(&root().join("corpus").join(target));
    assert!(!seeds.is_empty(), "fuzz/corpus/{target}/ holds no seed");
    let crashes = files(&root().join("artifacts").join(target));
    for file in seeds.iter().chain(&crashes) {
        let bytes =
            std::fs::read(file).unwrap_or_else(|e| panic!("cannot read {}: {e}", file.display()));
        eprintln!("{target}: {}", file.display());
        harness(&bytes);
    }
}

macro_rules! replay_tests {
    ($($target:ident),* $(,)?) => {
        $(
            #[test]
            fn $target() {
                replay(stringify!($target));
            }
        )*

        #[test]
        fn every_target_is_replayed_and_has_an_entry_point() {
            let replayed = [$(stringify!($target)),*];
            let listed: Vec<&str> = TARGETS.iter().map(|(name, _)| *name).collect();
            assert_eq!(listed, replayed, "TARGETS and the replay tests differ");
            let mut bins: Vec<String> = files(&root().join("fuzz_targets"))
                .iter()
                .filter_map(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()))
                .collect();
            bins.sort();
            let mut sorted = listed.clone();
            sorted.sort();
            assert_eq!(bins, sorted, "fuzz_targets/ and TARGETS differ");
        }
    };
}

replay_tests!(
    whep_offer,
    whip_http,
    control_request,
    console_line,
    config_file,
    config_set,
    chain_rpc,
    light_block,
    attest_record,
    attest_export,
    store_open,
    y4m,
    convert,
    mjpeg,
    rtcp_feedback,
    relay_rtp,
);

/// The WHEP harness really answers the browsers' offers (a harness that refused everything
/// would fuzz nothing but `check_offer`).
#[test]
fn whep_answers_the_recorded_browser_offers() {
    for seed in ["aiortc-recvonly-video.sdp", "chromium-recvonly-video.sdp"] {
        let bytes = std::fs::read(root().join("corpus/whep_offer").join(seed)).expect("seed");
        assert!(super::whep_answer(&bytes), "{seed} was not answered");
    }
}

/// Writes the attestation seeds (they need real signatures): `cargo test -p sutantra-fuzz --
/// --ignored write_attest_seeds`. The files are committed; this documents how they were made.
#[test]
#[ignore = "writes seed files; run by hand"]
fn write_attest_seeds() {
    use sutantra_chain::attest::{AttestationChain, Segment};
    let commit: serde_json::Value = serde_json::from_slice(include_bytes!(
        "../../tests/data/cometbft/kvstore_v0_38/incoming/commit_at_height_10.json"
    ))
    .expect("vector");
    let sh = &commit["result"]["signed_header"];
    let chain_id = sh["header"]["chain_id"].as_str().expect("chain id");
    let hash: [u8; 32] = hex_decode(sh["commit"]["block_id"]["hash"].as_str().expect("hash"))
        .try_into()
        .expect("32 bytes");
    let key = ed25519_compact::KeyPair::from_seed(ed25519_compact::Seed::new([9; 32]));
    let mut chain = AttestationChain::new(chain_id, "camera0", 0, [0; 32]).expect("chain");
    let records: Vec<Vec<u8>> = (0..3u64)
        .map(|i| {
            let seg = Segment {
                first_rtp_ts: 90_000 * i as u32,
                last_rtp_ts: 90_000 * i as u32 + 897_000,
                first_capture_us: 1_700_000_000_000_000 + 10_000_000 * i,
                last_capture_us: 1_700_000_009_966_666 + 10_000_000 * i,
                frame_count: 300,
                byte_count: 1_250_000,
                merkle_root: [0x40 + i as u8; 32],
            };
            chain
                .attest(&seg, 9 + i, if i == 1 { hash } else { [i as u8; 32] }, &key)
                .to_bytes()
        })
        .collect();
    let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
    let write = |target: &str, name: &str, bytes: &[u8]| {
        let dir = root().join("corpus").join(target);
        std::fs::create_dir_all(&dir).expect("mkdir");
        std::fs::write(dir.join(name), bytes).expect("write");
    };
    write("attest_record", "record-0.bin", &records[0]);
    write("attest_record", "record-1-anchored.bin", &records[1]);
    let mut bad = records[2].clone();
    let last = bad.len() - 1;
    bad[last] ^= 1;
    write("attest_record", "record-bad-signature.bin", &bad);
    let mut linked = Vec::new();
    for r in &records {
        linked.push(u8::try_from(r.len()).expect("a record under 256 bytes"));
        linked.extend_from_slice(r);
    }
    write("attest_record", "chain-of-3-length-prefixed.bin", &linked);

    let list: Vec<String> = records.iter().map(|r| hex(r)).collect();
    let export = serde_json::to_vec_pretty(&list).expect("json");
    write("attest_export", "export-3.json", &export);
    let mut with_header = export.clone();
    with_header.push(0xff);
    with_header.extend_from_slice(include_bytes!(
        "../../tests/data/cometbft/kvstore_v0_38/incoming/commit_at_height_10.json"
    ));
    write(
        "attest_export",
        "export-3-header-commit-10.bin",
        &with_header,
    );
    let objects: Vec<serde_json::Value> = list
        .iter()
        .enumerate()
        .map(|(i, h)| serde_json::json!({"seq": i, "status": "pending", "signed_bytes": h}))
        .collect();
    write(
        "attest_export",
        "list-json-objects.json",
        &serde_json::to_vec(&objects).expect("json"),
    );
    write(
        "attest_export",
        "one-string.json",
        &serde_json::to_vec(&list[0]).expect("json"),
    );
    write(
        "attest_export",
        "out-of-order.json",
        &serde_json::to_vec(&[&list[1], &list[0]]).expect("json"),
    );
}

fn hex_decode(s: &str) -> Vec<u8> {
    (0..s.len() / 2)
        .map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).expect("hex"))
        .collect()
}

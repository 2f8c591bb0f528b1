//! libFuzzer entry point of `chain_rpc`: the harness is [`sutantra_fuzz::chain_rpc`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| sutantra_fuzz::chain_rpc(data));

//! libFuzzer entry point of `attest_export`: the harness is [`sutantra_fuzz::attest_export`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| sutantra_fuzz::attest_export(data));

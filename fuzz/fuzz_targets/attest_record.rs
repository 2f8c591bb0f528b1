//! libFuzzer entry point of `attest_record`: the harness is [`sutantra_fuzz::attest_record`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| sutantra_fuzz::attest_record(data));

//! libFuzzer entry point of `config_set`: the harness is [`sutantra_fuzz::config_set`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| sutantra_fuzz::config_set(data));

//! libFuzzer entry point of `config_file`: the harness is [`sutantra_fuzz::config_file`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| sutantra_fuzz::config_file(data));

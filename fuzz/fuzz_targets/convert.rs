//! libFuzzer entry point of `convert`: the harness is [`sutantra_fuzz::convert`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| sutantra_fuzz::convert(data));

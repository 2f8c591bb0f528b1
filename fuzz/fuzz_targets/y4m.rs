//! libFuzzer entry point of `y4m`: the harness is [`sutantra_fuzz::y4m`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| sutantra_fuzz::y4m(data));

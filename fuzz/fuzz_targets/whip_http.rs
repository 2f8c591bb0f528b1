//! libFuzzer entry point of `whip_http`: the harness is [`sutantra_fuzz::whip_http`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| sutantra_fuzz::whip_http(data));

//! libFuzzer entry point of `relay_rtp`: the harness is [`sutantra_fuzz::relay_rtp`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| sutantra_fuzz::relay_rtp(data));

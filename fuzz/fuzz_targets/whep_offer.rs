//! libFuzzer entry point of `whep_offer`: the harness is [`sutantra_fuzz::whep_offer`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| sutantra_fuzz::whep_offer(data));

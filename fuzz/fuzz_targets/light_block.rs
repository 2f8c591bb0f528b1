//! libFuzzer entry point of `light_block`: the harness is [`sutantra_fuzz::light_block`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| sutantra_fuzz::light_block(data));

//! libFuzzer entry point of `store_open`: the harness is [`sutantra_fuzz::store_open`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| sutantra_fuzz::store_open(data));

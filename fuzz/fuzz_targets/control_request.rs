//! libFuzzer entry point of `control_request`: the harness is [`sutantra_fuzz::control_request`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| sutantra_fuzz::control_request(data));

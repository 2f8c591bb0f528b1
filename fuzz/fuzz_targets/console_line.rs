//! libFuzzer entry point of `console_line`: the harness is [`sutantra_fuzz::console_line`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| sutantra_fuzz::console_line(data));

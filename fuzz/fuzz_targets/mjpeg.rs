//! libFuzzer entry point of `mjpeg`: the harness is [`sutantra_fuzz::mjpeg`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| sutantra_fuzz::mjpeg(data));

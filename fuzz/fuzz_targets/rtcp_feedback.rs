//! libFuzzer entry point of `rtcp_feedback`: the harness is [`sutantra_fuzz::rtcp_feedback`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| sutantra_fuzz::rtcp_feedback(data));

//! A request frame as it arrives on a connection, without the 4-byte size prefix: header,
//! version check and body decode of every API Fjord serves. Must return, never panic, and
//! never allocate more than the frame can justify.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = fjord::dispatch::decode_frame(data);
});

//! A produce payload (one partition's `records`): batch splitting and validation, then the
//! record-level paths (keyless check on compacted topics, compaction parse and rebuild).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    fjord_fuzz::check_record_set(data);
});

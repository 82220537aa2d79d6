//! What a SASL listener parses from a client before it has authenticated (the PLAIN
//! message), and the security settings' own parsers (JAAS entries, principal mapping rules,
//! certificate subjects), and SCRAM exchanges. Must return, never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    fjord_fuzz::check_security(data);
});

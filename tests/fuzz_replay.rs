//! The fuzz targets' committed inputs replayed as an ordinary test: every seed of
//! `fuzz/corpus/<target>/` and every input that once failed (`fuzz/regressions/<target>/`)
//! goes through the same checks the targets run (`fuzz/src/lib.rs`, included as is), in
//! the release build the other tests use. Fuzzing itself (`scripts/fuzz.sh`, cargo-fuzz)
//! is the long form, run by hand or with `FJORD_FUZZ_SECONDS` set for `scripts/test.sh`:
//! its build took 10 of the 60 minutes the test command may take.

use std::path::{Path, PathBuf};

use bytes::Bytes;
use kafka_protocol::messages::ProduceRequest;
use kafka_protocol::protocol::Decodable;

#[allow(dead_code)]
#[path = "../fuzz/src/lib.rs"]
mod fuzz_checks;

fn inputs(target: &str) -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let mut out = Vec::new();
    for dir in ["corpus", "regressions"] {
        if let Ok(rd) = std::fs::read_dir(root.join(dir).join(target)) {
            out.extend(rd.flatten().map(|e| e.path()).filter(|p| p.is_file()));
        }
    }
    out.sort();
    out
}

fn replay(target: &str, check: impl Fn(&[u8])) {
    let files = inputs(target);
    assert!(!files.is_empty(), "no committed inputs for {target}");
    for f in &files {
        let data = std::fs::read(f).unwrap();
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| check(&data)));
        assert!(r.is_ok(), "{target}: {} fails", f.display());
    }
    eprintln!("{target}: {} inputs pass", files.len());
}

#[test]
fn frame_decode_inputs_pass() {
    replay("frame_decode", |d| {
        let _ = fjord::dispatch::decode_frame(d);
    });
}

#[test]
fn record_batch_inputs_pass() {
    replay("record_batch", fuzz_checks::check_record_set);
}

#[test]
fn produce_body_inputs_pass() {
    // The same mapping of the first two bytes to a Produce version as the target.
    replay("produce_body", |d| {
        if d.len() < 2 {
            return;
        }
        let raw = i16::from_be_bytes([d[0], d[1]]);
        let version = if (3..=13).contains(&raw) {
            raw
        } else {
            3 + raw.rem_euclid(11)
        };
        let mut body = Bytes::copy_from_slice(&d[2..]);
        let Ok(req) = ProduceRequest::decode(&mut body, version) else {
            return;
        };
        for td in &req.topic_data {
            for pd in &td.partition_data {
                if let Some(records) = &pd.records {
                    fuzz_checks::check_record_set(records);
                }
            }
        }
    });
}

#[test]
fn security_inputs_pass() {
    replay("security", fuzz_checks::check_security);
}

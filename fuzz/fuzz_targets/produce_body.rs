//! A ProduceRequest body (after the request header) at the version given by the first two
//! bytes (big-endian; mapped into the served range 3..=13), then every partition's records
//! through the same checks as `record_batch`.
#![no_main]

use bytes::Bytes;
use kafka_protocol::messages::ProduceRequest;
use kafka_protocol::protocol::Decodable;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if data.len() < 2 {
        return;
    }
    let raw = i16::from_be_bytes([data[0], data[1]]);
    let version = if (3..=13).contains(&raw) {
        raw
    } else {
        3 + raw.rem_euclid(11)
    };
    let mut body = Bytes::copy_from_slice(&data[2..]);
    let Ok(req) = ProduceRequest::decode(&mut body, version) else {
        return;
    };
    for td in &req.topic_data {
        for pd in &td.partition_data {
            if let Some(records) = &pd.records {
                fjord_fuzz::check_record_set(records);
            }
        }
    }
});

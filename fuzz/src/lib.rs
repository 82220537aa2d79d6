//! Shared checks for the Fjord fuzz targets.
//!
//! The record-set check mirrors what the broker does with a produce payload: split it and
//! check its framing (`log::batch::split_and_validate`), validate its header and records as
//! Kafka's LogValidator does (`log::validate::validate`; only what passes is ever stored),
//! the keyless check (`log::records::has_keyless_record`), and later compaction
//! (`records_section`, `parse_records`, `rebuild`) on the stored batch.
//!
//! The CRC-32C is no obstacle for a hostile client (it is computed in a line of code), but it
//! is for a fuzzer: a mutated batch almost never carries a matching CRC, and then nothing
//! past the CRC check is ever reached. Every input is therefore checked twice: as sent, and
//! with each batch's CRC recomputed (`fix_crcs`), which is what a hostile client would send.

use bytes::Bytes;
use fjord::log::batch::{self, BatchHeader, HEADER_LEN, LOG_OVERHEAD};
use fjord::log::{records, validate};

/// The batch size limit the targets validate against (Kafka's default is ~1 MiB).
pub const MAX_BATCH_BYTES: usize = 1 << 20;

const CRC_OFFSET: usize = 17;
const ATTRIBUTES_OFFSET: usize = 21;

/// Checks `data` as a produce record set, as sent and with corrected CRCs.
pub fn check_record_set(data: &[u8]) {
    validate_and_walk(data);
    let mut fixed = data.to_vec();
    if fix_crcs(&mut fixed) {
        validate_and_walk(&fixed);
    }
}

/// Rewrites the CRC-32C of every batch whose length prefix is consistent with the data.
/// Returns whether anything changed.
pub fn fix_crcs(data: &mut [u8]) -> bool {
    let mut pos = 0usize;
    let mut changed = false;
    while data.len() - pos >= HEADER_LEN {
        let rest = &mut data[pos..];
        let len = i32::from_be_bytes(rest[8..12].try_into().unwrap());
        if len < (HEADER_LEN - LOG_OVERHEAD) as i32 {
            break;
        }
        let total = LOG_OVERHEAD + len as usize;
        if total > rest.len() {
            break;
        }
        let crc = crc32c::crc32c(&rest[ATTRIBUTES_OFFSET..total]).to_be_bytes();
        if rest[CRC_OFFSET..CRC_OFFSET + 4] != crc {
            rest[CRC_OFFSET..CRC_OFFSET + 4].copy_from_slice(&crc);
            changed = true;
        }
        pos += total;
    }
    changed
}

fn validate_and_walk(data: &[u8]) {
    let Ok(batches) = batch::split_and_validate(&Bytes::copy_from_slice(data), MAX_BATCH_BYTES)
    else {
        return;
    };
    for b in &batches {
        let h = BatchHeader::parse(b).expect("a validated batch has a full header");
        // Produce refuses what Kafka's LogValidator refuses; nothing else reaches the log.
        let rules = validate::Rules {
            compacted: false,
            create_time_range: None,
        };
        if validate::validate(b, "fuzz-0", &rules).is_err() {
            continue;
        }
        // Produce on a compacted topic.
        let keyless = records::has_keyless_record(b);
        // Compaction of the stored batch.
        let Ok(section) = records::records_section(b) else {
            assert!(
                keyless.is_err(),
                "has_keyless_record succeeded where records_section failed"
            );
            continue;
        };
        let Ok(recs) = records::parse_records(&section, h.records_count) else {
            assert!(
                keyless.is_err(),
                "has_keyless_record succeeded where parse_records failed"
            );
            continue;
        };
        assert_eq!(recs.len(), h.records_count as usize);
        assert_eq!(
            keyless.as_ref().ok(),
            Some(&recs.iter().any(|r| r.key.is_none())),
            "has_keyless_record disagrees with parse_records"
        );
        // Drop every other record, as compaction would, and read the result back.
        let keep: Vec<bool> = (0..recs.len()).map(|i| i % 2 == 0).collect();
        if let Ok(Some(rebuilt)) = records::rebuild(b, &section, &recs, &keep) {
            let h2 = BatchHeader::parse(&rebuilt).expect("a rebuilt batch has a full header");
            let kept: Vec<_> = recs
                .iter()
                .zip(&keep)
                .filter(|(_, k)| **k)
                .map(|(r, _)| r)
                .collect();
            assert_eq!(h2.records_count as usize, kept.len());
            let s2 = records::records_section(&rebuilt).expect("a rebuilt batch decompresses");
            let r2 = records::parse_records(&s2, h2.records_count).expect("a rebuilt batch parses");
            for (a, b) in kept.iter().zip(&r2) {
                assert_eq!(a.key, b.key, "compaction changed a record key");
                assert_eq!(
                    a.offset_delta, b.offset_delta,
                    "compaction changed an offset delta"
                );
            }
        }
    }
}

/// Checks `data` against what a SASL listener and its configuration parse from untrusted or
/// operator-written text: the first byte picks the PLAIN mechanism's message (what a client
/// sends before authenticating), a JAAS entry, `ssl.principal.mapping.rules` applied to the
/// rest, a client certificate's subject, a SCRAM-SHA-256/512 exchange (the client's two
/// messages separated by a newline, for a user `alice` that exists), or an OAUTHBEARER
/// exchange with Kafka's unsecured tokens. None may panic.
pub fn check_security(data: &[u8]) {
    use fjord::security::{principal, sasl};
    let Some((&kind, rest)) = data.split_first() else {
        return;
    };
    let text = String::from_utf8_lossy(rest);
    match kind % 8 {
        0 => {
            let values = [
                (
                    "sasl.enabled.mechanisms".to_string(),
                    ("PLAIN".to_string(), fjord::config::Source::File),
                ),
                (
                    "listener.name.s.plain.sasl.jaas.config".to_string(),
                    (
                        "m required user_alice=\"alice-secret\";".to_string(),
                        fjord::config::Source::File,
                    ),
                ),
            ]
            .into_iter()
            .collect();
            let l = sasl::SaslListener::new(&values, "S").expect("a valid listener");
            let mut m = l
                .start("PLAIN", Default::default())
                .expect("PLAIN is enabled");
            let _ = m.step(rest);
        }
        1 => {
            let _ = sasl::parse_jaas(&text);
        }
        2 => {
            let (rules, dn) = text.split_once('\n').unwrap_or((&text, "CN=x"));
            if let Ok(r) = principal::MappingRules::parse(rules) {
                let _ = r.apply(dn);
            }
        }
        3 => {
            let _ = principal::subject_dn(rest);
        }
        6 => {
            use fjord::security::oauthbearer::{OAuthBearer, OAuthBearerConfig};
            use fjord::security::sasl::Mechanism as _;
            let config = OAuthBearerConfig::from_values(&Default::default(), "S")
                .expect("unsecured OAUTHBEARER needs no settings");
            let mut m = OAuthBearer::new(&config);
            for part in rest.splitn(2, |b| *b == b'\n') {
                if m.step(part).is_err() {
                    break;
                }
            }
        }
        7 => {
            // A broker's SCRAM login against a hostile server: "NONCE" in the input stands
            // for the client's nonce, so the answers can get past the nonce check.
            let values = [(
                "listener.name.s.scram-sha-256.sasl.jaas.config".to_string(),
                (
                    "m required username=\"alice\" password=\"alice-secret\";".to_string(),
                    fjord::config::Source::File,
                ),
            )]
            .into_iter()
            .collect();
            let login =
                fjord::security::login::Login::from_values(&values, "S", "SCRAM-SHA-256", "x")
                    .expect("a valid login");
            let (mut exchange, _) = login.start().expect("a SCRAM start");
            let nonce = exchange.nonce().unwrap_or_default().to_string();
            for part in text.splitn(2, '\n') {
                if exchange
                    .next(part.replace("NONCE", &nonce).as_bytes())
                    .is_err()
                {
                    break;
                }
            }
        }
        _ => {
            use fjord::security::sasl::Mechanism as _;
            use fjord::security::scram::{ScramCredential, ScramMechanism, ScramServer};
            use fjord::security::store::{SecurityData, credential_record};
            let m = if kind % 8 == 4 {
                ScramMechanism::Sha256
            } else {
                ScramMechanism::Sha512
            };
            let salted = m.salted_password("alice-secret", b"salt", 1);
            let mut data = SecurityData::default();
            data.apply(&credential_record(
                "alice",
                m,
                ScramCredential::from_salted_password(m, b"salt", &salted, 4096),
            ))
            .expect("a valid credential");
            let mut server = ScramServer::new(m, std::sync::Arc::new(data));
            for part in rest.splitn(3, |b| *b == b'\n') {
                if server.step(part).is_err() {
                    break;
                }
            }
        }
    }
}

use super::*;
use crate::security::store::{credential_record, remove_credential_record};

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// A SCRAM client, as RFC 5802 describes it: (client-final-message, expected server
/// signature) for a server-first-message.
fn client_final(
    m: ScramMechanism,
    password: &str,
    gs2: &str,
    client_first_bare: &str,
    server_first: &str,
) -> (String, String) {
    let attrs: BTreeMap<&str, &str> = server_first
        .split(',')
        .map(|a| a.split_once('=').unwrap())
        .collect();
    let salt = B64.decode(attrs["s"]).unwrap();
    let i: u32 = attrs["i"].parse().unwrap();
    let salted = m.salted_password(password, &salt, i);
    let client_key = m.hmac(&salted, b"Client Key");
    let stored_key = m.hash(&client_key);
    let without_proof = format!("c={},r={}", B64.encode(gs2), attrs["r"]);
    let auth = format!("{client_first_bare},{server_first},{without_proof}");
    let sig = m.hmac(&stored_key, auth.as_bytes());
    let proof: Vec<u8> = client_key.iter().zip(&sig).map(|(a, b)| a ^ b).collect();
    let server_key = m.hmac(&salted, b"Server Key");
    let verifier = m.hmac(&server_key, auth.as_bytes());
    (
        format!("{without_proof},p={}", B64.encode(proof)),
        format!("v={}", B64.encode(verifier)),
    )
}

use std::collections::BTreeMap;

fn data_with(user: &str, m: ScramMechanism, password: &str, iterations: i32) -> Arc<SecurityData> {
    let salt = b"some salt bytes".to_vec();
    let salted = m.salted_password(password, &salt, iterations as u32);
    let mut d = SecurityData::default();
    d.apply(&credential_record(
        user,
        m,
        ScramCredential::from_salted_password(m, &salt, &salted, iterations),
    ))
    .unwrap();
    Arc::new(d)
}

/// Runs a whole exchange; the server's final answer, or its refusal.
fn exchange(
    data: &Arc<SecurityData>,
    m: ScramMechanism,
    gs2: &str,
    user: &str,
    password: &str,
) -> Result<(Step, String), AuthFailed> {
    let mut server = ScramServer::new(m, data.clone());
    let bare = format!("n={user},r=fyko+d2lbbFgONRv9qkxdawL");
    let Step::Continue(first) = server.step(format!("{gs2}{bare}").as_bytes())? else {
        panic!("SCRAM finishes in two steps");
    };
    let first = String::from_utf8(first).unwrap();
    assert!(first.starts_with("r=fyko+d2lbbFgONRv9qkxdawL"), "{first}");
    let (fin, expected) = client_final(m, password, gs2, &bare, &first);
    Ok((server.step(fin.as_bytes())?, expected))
}

#[test]
fn derivation_matches_rfc_7677_example() {
    // RFC 7677 section 3: user "user", password "pencil".
    let m = ScramMechanism::Sha256;
    let salt = B64.decode("W22ZaJ0SNY7soEsUEjb6gQ==").unwrap();
    let bare = "n=user,r=rOprNGfwEbeRWgbNEkqO";
    let server_first =
        "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
    let (fin, verifier) = client_final(m, "pencil", "n,,", bare, server_first);
    assert_eq!(
        fin,
        "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
    );
    assert_eq!(verifier, "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=");
    // The stored credential verifies the same proof.
    let salted = m.salted_password("pencil", &salt, 4096);
    let c = ScramCredential::from_salted_password(m, &salt, &salted, 4096);
    assert_eq!(c.stored_key, m.hash(&m.hmac(&salted, b"Client Key")));
}

#[test]
fn both_mechanisms_authenticate_and_prove_the_server() {
    for m in [ScramMechanism::Sha256, ScramMechanism::Sha512] {
        let data = data_with("alice", m, "alice-secret", 4096);
        let (step, expected) = exchange(&data, m, "n,,", "alice", "alice-secret").unwrap();
        assert_eq!(
            step,
            Step::Done {
                response: expected.into_bytes(),
                user: "alice".into()
            }
        );
        // An authzid equal to the user is accepted; another is refused.
        assert!(exchange(&data, m, "n,a=alice,", "alice", "alice-secret").is_ok());
        assert!(exchange(&data, m, "n,a=bob,", "alice", "alice-secret").is_err());
    }
}

#[test]
fn wrong_password_unknown_user_and_other_mechanism_fail() {
    let m = ScramMechanism::Sha512;
    let data = data_with("alice", m, "alice-secret", 8192);
    let e = exchange(&data, m, "n,,", "alice", "wrong").unwrap_err();
    assert_eq!(e.0, "Authentication failed: Invalid client credentials");
    let e = exchange(&data, m, "n,,", "bob", "alice-secret").unwrap_err();
    assert_eq!(e.0, "Authentication failed: Invalid user credentials");
    // A SCRAM-SHA-512 credential does not authenticate SCRAM-SHA-256.
    assert!(
        exchange(
            &data,
            ScramMechanism::Sha256,
            "n,,",
            "alice",
            "alice-secret"
        )
        .is_err()
    );
    // After removal, the user is unknown.
    let mut d = (*data).clone();
    d.apply(&remove_credential_record("alice", m)).unwrap();
    assert!(d.scram.is_empty());
    assert!(exchange(&Arc::new(d), m, "n,,", "alice", "alice-secret").is_err());
}

#[test]
fn names_are_unescaped() {
    let m = ScramMechanism::Sha256;
    let data = data_with("a,b=c", m, "pw", 4096);
    assert!(exchange(&data, m, "n,,", "a=2Cb=3Dc", "pw").is_ok());
    assert_eq!(unescape("a=2Cb=3D"), Some("a,b=".into()));
    assert_eq!(unescape("a=b"), None);
    assert_eq!(unescape("a="), None);
}

#[test]
fn tampered_and_malformed_messages_fail_without_panicking() {
    let m = ScramMechanism::Sha256;
    let data = data_with("alice", m, "pw", 4096);
    for first in [
        &b""[..],
        b"n,,",
        b"p=tls-unique,,n=alice,r=abc",
        b"n,,r=abc,n=alice",
        b"n,,n=alice",
        b"n,,n=,r=abc",
        b"n,,n=alice,r=",
        b"n,,n=al=ice,r=abc",
        b"n,,n=alice,r=abc,tokenauth=true",
        b"x,,n=alice,r=abc",
        b"n,b=alice,n=alice,r=abc",
        b"\xff\xfe",
    ] {
        assert!(
            ScramServer::new(m, data.clone()).step(first).is_err(),
            "{:?}",
            String::from_utf8_lossy(first)
        );
    }
    let bare = "n=alice,r=cnonce";
    let good_first = |s: &mut ScramServer| match s.step(format!("n,,{bare}").as_bytes()) {
        Ok(Step::Continue(f)) => String::from_utf8(f).unwrap(),
        other => panic!("{other:?}"),
    };
    let mut s = ScramServer::new(m, data.clone());
    let first = good_first(&mut s);
    let (fin, _) = client_final(m, "pw", "n,,", bare, &first);
    // Another nonce, another channel binding, no proof, garbage proof.
    let tampered = [
        fin.replace("r=cnonce", "r=other"),
        fin.replace("c=biws", "c=eSws"),
        fin.split(",p=").next().unwrap().to_string(),
        format!("{},p=!!!", fin.split(",p=").next().unwrap()),
        format!("{},p=AAAA", fin.split(",p=").next().unwrap()),
        "\u{0}".to_string(),
    ];
    for t in tampered {
        let mut s = ScramServer::new(m, data.clone());
        let f = good_first(&mut s);
        let (_, _) = client_final(m, "pw", "n,,", bare, &f);
        // Each server's nonce differs, so build the tampered message on its own nonce.
        let t = t.replace(
            first.split(',').next().unwrap().trim_start_matches("r="),
            f.split(',').next().unwrap().trim_start_matches("r="),
        );
        assert!(s.step(t.as_bytes()).is_err(), "{t}");
        // Nothing more is accepted after a failure.
        assert!(s.step(b"n,,n=alice,r=x").is_err());
    }
    // The untampered one succeeds, once.
    assert!(matches!(s.step(fin.as_bytes()), Ok(Step::Done { .. })));
    assert!(s.step(fin.as_bytes()).is_err());
}

#[test]
fn upsertion_checks_follow_kafka() {
    use kafka_protocol::ResponseError as E;
    assert_eq!(check_upsertion(1, 4096, b"x"), Ok(ScramMechanism::Sha256));
    assert_eq!(check_upsertion(2, 16384, b"x"), Ok(ScramMechanism::Sha512));
    assert_eq!(
        check_upsertion(3, 4096, b"x"),
        Err((E::UnsupportedSaslMechanism, "Unknown SCRAM mechanism"))
    );
    assert_eq!(
        check_upsertion(1, 4095, b"x"),
        Err((E::UnacceptableCredential, "Too few iterations"))
    );
    assert_eq!(
        check_upsertion(1, 16385, b"x"),
        Err((E::UnacceptableCredential, "Too many iterations"))
    );
    assert!(check_upsertion(1, 4096, b"").is_err());
}

#[test]
fn security_data_round_trips_and_refuses_missing_removals() {
    let data = data_with("alice", ScramMechanism::Sha256, "pw", 4096);
    let json = serde_json::to_vec(&*data).unwrap();
    let back: SecurityData = serde_json::from_slice(&json).unwrap();
    assert_eq!(back, *data);
    let mut d = (*data).clone();
    assert!(
        d.apply(&remove_credential_record("alice", ScramMechanism::Sha512))
            .is_err()
    );
    assert!(
        d.apply(&remove_credential_record("bob", ScramMechanism::Sha256))
            .is_err()
    );
    assert_eq!(d, *data);
    // Older images (without security data) still load.
    let old: crate::cluster::image::Image = serde_json::from_str(
        r#"{"offset":1,"brokers":{},"topics":{},"topic_ids":{},"broker_configs":{},"group_configs":{},"next_producer_id":0,"last_broker_epoch":0}"#,
    )
    .unwrap();
    assert!(old.security.scram.is_empty());
}

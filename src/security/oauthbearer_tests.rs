use std::time::Duration;

use ring::rand::SystemRandom;
use ring::signature::{self as sig, EcdsaKeyPair, KeyPair, RsaKeyPair};
use serde_json::json;

use super::*;

const SIGNED: &str =
    "org.apache.kafka.common.security.oauthbearer.OAuthBearerValidatorCallbackHandler";
const L: &str = "SASL_SSL";

use crate::config::test_values as vals;

fn b64(b: &[u8]) -> String {
    B64.encode(b)
}

fn now_s() -> i64 {
    now_ms() / 1000
}

/// `header.payload.` with alg none.
fn unsecured(claims: Value) -> String {
    format!(
        "{}.{}.",
        b64(br#"{"alg":"none"}"#),
        b64(claims.to_string().as_bytes())
    )
}

fn first(token: &str) -> Vec<u8> {
    format!("n,,\x01auth=Bearer {token}\x01\x01").into_bytes()
}

fn done(user: &str) -> Result<Step, AuthFailed> {
    Ok(Step::Done {
        response: vec![],
        user: user.into(),
    })
}

/// The token is refused: the error challenge, then failure on the client's ^A. Returns the
/// challenge and the failure message.
fn refused(config: &OAuthBearerConfig, token: &str) -> (String, String) {
    let mut m = OAuthBearer::new(config);
    let challenge = match m.step(&first(token)) {
        Ok(Step::Continue(c)) => String::from_utf8(c).unwrap(),
        other => panic!("expected an error challenge, got {other:?}"),
    };
    let Err(AuthFailed(msg)) = m.step(b"\x01") else {
        panic!("the acknowledgement must fail")
    };
    assert!(!msg.contains(token), "{msg}");
    assert!(m.session_expiry_ms().is_none());
    (challenge, msg)
}

fn unsecured_config(jaas_options: &str) -> OAuthBearerConfig {
    let jaas = format!(
        "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required {jaas_options};"
    );
    let v = vals(&[("listener.name.sasl_ssl.oauthbearer.sasl.jaas.config", &jaas)]);
    OAuthBearerConfig::from_values(&v, L).unwrap()
}

#[test]
fn unsecured_token_authenticates_its_subject() {
    let c = OAuthBearerConfig::from_values(&vals(&[]), L).unwrap();
    assert!(c.is_unsecured());
    let exp = now_s() + 3600;
    let token = unsecured(json!({"sub": "alice", "exp": exp, "iat": now_s()}));
    let mut m = OAuthBearer::new(&c);
    let msg = format!("n,a=alice,\x01auth=Bearer {token}\x01traceId=abc 1\x01\x01");
    assert_eq!(m.step(msg.as_bytes()), done("alice"));
    assert_eq!(m.session_expiry_ms(), Some(exp * 1000));
    assert_eq!(
        m.extensions().get("traceId").map(String::as_str),
        Some("abc 1")
    );
    // The exchange is over.
    assert!(m.step(b"\x01").is_err());
    // Scheme in any case, several spaces.
    let msg = format!("n,,\x01auth=bearer   {token}\x01\x01");
    assert_eq!(OAuthBearer::new(&c).step(msg.as_bytes()), done("alice"));
}

#[test]
fn unsecured_refusals_answer_the_error_then_fail() {
    let c = unsecured_config("");
    let now = now_s();
    let (challenge, msg) = refused(&c, &unsecured(json!({"sub": "a", "exp": now - 1})));
    assert_eq!(challenge, r#"{"status":"invalid_token"}"#);
    assert!(msg.starts_with(r#"Authentication failed: {"status":"invalid_token"}"#));
    assert!(msg.contains("expired"), "{msg}");
    for (claims, why) in [
        (json!({"exp": now + 60}), "no sub claim"),
        (json!({"sub": " ", "exp": now + 60}), "no sub claim"),
        (json!({"sub": 7, "exp": now + 60}), "no sub claim"),
        (json!({"sub": "a"}), "no exp"),
        (json!({"sub": "a", "exp": "soon"}), "not a number"),
        (
            json!({"sub": "a", "exp": now + 60, "iat": now + 30}),
            "future",
        ),
        (
            json!({"sub": "a", "exp": now + 60, "nbf": now + 30}),
            "not valid yet",
        ),
    ] {
        let (_, msg) = refused(&c, &unsecured(claims.clone()));
        assert!(msg.contains(why), "{claims}: {msg}");
    }
    // A signed token is not an unsecured one.
    let t = format!("{}.{}.c2ln", b64(br#"{"alg":"none"}"#), b64(b"{}"));
    assert!(refused(&c, &t).1.contains("no signature"));
    let t = format!("{}.{}.", b64(br#"{"alg":"RS256"}"#), b64(b"{}"));
    assert!(refused(&c, &t).1.contains("alg none"));
    // Anything the client sends after the error fails.
    let mut m = OAuthBearer::new(&c);
    let expired = unsecured(json!({"sub": "a", "exp": now - 1}));
    assert!(matches!(m.step(&first(&expired)), Ok(Step::Continue(_))));
    let good = unsecured(json!({"sub": "a", "exp": now + 60}));
    assert!(m.step(&first(&good)).is_err());
}

#[test]
fn unsecured_options_of_the_jaas_entry() {
    let c = unsecured_config(
        r#"unsecuredValidatorPrincipalClaimName="email" unsecuredValidatorAllowableClockSkewMs="60000" unsecuredValidatorRequiredScope="read, write""#,
    );
    let now = now_s();
    // Expired 30 s ago, within the skew.
    let t =
        unsecured(json!({"email": "bob@x", "sub": "b", "exp": now - 30, "scope": "write read"}));
    assert_eq!(OAuthBearer::new(&c).step(&first(&t)), done("bob@x"));
    let t = unsecured(json!({"email": "bob@x", "exp": now + 60, "scope": ["read", " write "]}));
    assert_eq!(OAuthBearer::new(&c).step(&first(&t)), done("bob@x"));
    for scope in [
        json!("read"),
        json!(["read"]),
        json!(null),
        json!("readwrite"),
    ] {
        let t = unsecured(json!({"email": "bob@x", "exp": now + 60, "scope": scope}));
        let (challenge, msg) = refused(&c, &t);
        assert_eq!(
            challenge,
            r#"{"status":"insufficient_scope", "scope":"read write"}"#
        );
        assert!(msg.contains("write"), "{msg}");
    }
    let t = unsecured(json!({"email": "bob@x", "exp": now - 61, "scope": "read write"}));
    assert!(refused(&c, &t).1.contains("expired"));
    // Custom scope claim.
    let c = unsecured_config(
        r#"unsecuredValidatorScopeClaimName=scp unsecuredValidatorRequiredScope=kafka"#,
    );
    let t = unsecured(json!({"sub": "a", "exp": now + 60, "scp": "kafka"}));
    assert_eq!(OAuthBearer::new(&c).step(&first(&t)), done("a"));
    // The JAAS entry falls back to the listener's and the global one.
    let v = vals(&[(
        "sasl.jaas.config",
        "OAuthBearerLoginModule required unsecuredValidatorRequiredScope=x;",
    )]);
    let c = OAuthBearerConfig::from_values(&v, L).unwrap();
    assert!(refused(&c, &t).0.contains("insufficient_scope"));
    for bad in ["-1", "soon"] {
        let jaas = format!("M required unsecuredValidatorAllowableClockSkewMs={bad};");
        assert!(OAuthBearerConfig::from_values(&vals(&[("sasl.jaas.config", &jaas)]), L).is_err());
    }
}

#[test]
fn authzid_must_be_the_principal() {
    let c = unsecured_config("");
    let t = unsecured(json!({"sub": "a,b=c", "exp": now_s() + 60}));
    let ok = format!("n,a=a=2Cb=3Dc,\x01auth=Bearer {t}\x01\x01");
    assert_eq!(OAuthBearer::new(&c).step(ok.as_bytes()), done("a,b=c"));
    let other = format!("n,a=mallory,\x01auth=Bearer {t}\x01\x01");
    let Err(AuthFailed(msg)) = OAuthBearer::new(&c).step(other.as_bytes()) else {
        panic!("a different authzid must fail")
    };
    assert!(
        msg.contains("authorization id") && !msg.contains(&t),
        "{msg}"
    );
}

#[test]
fn malformed_messages_fail_without_panic() {
    let c = unsecured_config("");
    let t = unsecured(json!({"sub": "a", "exp": now_s() + 60}));
    let bad_messages: Vec<Vec<u8>> = vec![
        b"".to_vec(),
        b"\x01".to_vec(),
        b"n,,\x01\x01".to_vec(),
        b"n,,\x01host=x\x01\x01".to_vec(),
        format!("y,,\x01auth=Bearer {t}\x01\x01").into_bytes(),
        format!("n,,auth=Bearer {t}\x01\x01").into_bytes(),
        format!("n,,\x01auth=Bearer {t}\x01").into_bytes(),
        format!("n,,\x01auth=Bearer {t}").into_bytes(),
        format!("n,,\x01auth=Basic {t}\x01\x01").into_bytes(),
        b"n,,\x01auth=Bearer\x01\x01".to_vec(),
        format!("n,,\x01auth=Bearer {t}\x01\x01\x01").into_bytes(),
        format!("n,,\x01auth=Bearer {t}\x01k-1=v\x01\x01").into_bytes(),
        format!("n,,\x01auth=Bearer {t}\x01k=\x01\x01").into_bytes(),
        format!("n,,\x01auth=Bearer {t}+/=\x01\x01").into_bytes(),
        format!("n,a=,\x01auth=Bearer {t}\x01\x01").into_bytes(),
        format!("n,a=x=2,\x01auth=Bearer {t}\x01\x01").into_bytes(),
        format!("n,b=x,\x01auth=Bearer {t}\x01\x01").into_bytes(),
        b"n,,\x01auth=Bearer \xff\xfe\x01\x01".to_vec(),
        b"\xff\x00\x01garbage".to_vec(),
    ];
    for m in &bad_messages {
        let r = OAuthBearer::new(&c).step(m);
        let Err(AuthFailed(msg)) = r else {
            panic!("{m:?}: {r:?}")
        };
        assert!(
            msg.contains("invalid OAUTHBEARER client first message"),
            "{msg}"
        );
        assert!(!msg.contains(&t));
    }
    // Tokens that are not JWTs: the error challenge, then failure.
    for token in [
        "abc",
        "a.b",
        "a.b.c.d",
        "..",
        "!!!.e30.",
        "e30.!!!.",
        "bm90IGpzb24.e30.",
        "e30.bm90IGpzb24.",
        "WzFd.WzFd.",
        &t[..t.len() / 2],
    ] {
        if parse_client_first(&first(token)).is_ok() {
            refused(&c, token);
        }
    }
}

#[test]
fn random_bytes_never_panic() {
    let signed = signed_fixture();
    let unsecured = unsecured_config("");
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let t = unsecured_token_now();
    for i in 0..3000 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let mut m = first(&t);
        let len = m.len();
        match i % 3 {
            0 => m[(x as usize) % len] = (x >> 32) as u8,
            1 => m.truncate((x as usize) % len),
            _ => m = x.to_le_bytes().repeat(1 + (x as usize) % 9),
        }
        for c in [&unsecured, &signed.config] {
            let mut mech = OAuthBearer::new(c);
            let _ = mech.step(&m);
            let _ = mech.step(b"\x01");
        }
    }
}

fn unsecured_token_now() -> String {
    unsecured(json!({"sub": "a", "exp": now_s() + 60}))
}

#[test]
fn settings_are_checked_at_startup() {
    let handler = "listener.name.sasl_ssl.oauthbearer.sasl.server.callback.handler.class";
    let v = vals(&[(handler, "com.example.MyHandler")]);
    assert!(OAuthBearerConfig::from_values(&v, L).is_err());
    let v = vals(&[(handler, SIGNED)]);
    assert!(OAuthBearerConfig::from_values(&v, L).is_err());
    for url in ["https://idp.example/jwks", "HTTP://idp/jwks"] {
        let v = vals(&[
            (handler, SIGNED),
            ("sasl.oauthbearer.jwks.endpoint.url", url),
        ]);
        let e = OAuthBearerConfig::from_values(&v, L).unwrap_err();
        assert!(e.to_string().contains("does not fetch"), "{e}");
    }
    let v = vals(&[
        (handler, SIGNED),
        (
            "sasl.oauthbearer.jwks.endpoint.url",
            "file:/nonexistent/jwks.json",
        ),
    ]);
    assert!(OAuthBearerConfig::from_values(&v, L).is_err());
    assert_eq!(jwks_path("file:/a/b").unwrap(), PathBuf::from("/a/b"));
    assert_eq!(jwks_path("file:///a/b").unwrap(), PathBuf::from("/a/b"));
    assert_eq!(
        jwks_path("FILE://localhost/a").unwrap(),
        PathBuf::from("/a")
    );
    assert!(jwks_path("file://other/a").is_err());
    assert!(jwks_path("ftp://x/a").is_err());
    assert!(jwks_path("/a/b").is_err());
    assert!(jwks_path("file:").is_err());
}

/// A signing key of the tests.
enum Signer {
    Ec(EcdsaKeyPair),
    Rsa(RsaKeyPair),
}

impl Signer {
    fn ec() -> Signer {
        let rng = SystemRandom::new();
        let alg = &sig::ECDSA_P256_SHA256_FIXED_SIGNING;
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(alg, &rng).unwrap();
        Signer::Ec(EcdsaKeyPair::from_pkcs8(alg, pkcs8.as_ref(), &rng).unwrap())
    }

    /// tests/fixtures/oauth-rsa-2048.pem (made with `openssl genpkey -algorithm RSA`).
    fn rsa() -> Signer {
        let pem = include_str!("../../tests/fixtures/oauth-rsa-2048.pem");
        let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
        let der = base64::engine::general_purpose::STANDARD
            .decode(body)
            .unwrap();
        Signer::Rsa(RsaKeyPair::from_pkcs8(&der).unwrap())
    }

    fn jwk(&self, kid: &str) -> Value {
        match self {
            Signer::Ec(k) => {
                let p = k.public_key().as_ref();
                json!({"kty": "EC", "crv": "P-256", "kid": kid, "use": "sig",
                       "x": b64(&p[1..33]), "y": b64(&p[33..])})
            }
            Signer::Rsa(k) => {
                let c = sig::RsaPublicKeyComponents::<Vec<u8>>::from(k.public());
                json!({"kty": "RSA", "kid": kid, "n": b64(&c.n), "e": b64(&c.e)})
            }
        }
    }

    fn token(&self, alg: &str, kid: &str, claims: &Value) -> String {
        let header = json!({"alg": alg, "kid": kid, "typ": "JWT"});
        let input = format!(
            "{}.{}",
            b64(header.to_string().as_bytes()),
            b64(claims.to_string().as_bytes())
        );
        let rng = SystemRandom::new();
        let signature = match (self, alg) {
            (Signer::Ec(k), _) => k.sign(&rng, input.as_bytes()).unwrap().as_ref().to_vec(),
            (Signer::Rsa(k), alg) => {
                let pad: &dyn sig::RsaEncoding = match alg {
                    "PS256" => &sig::RSA_PSS_SHA256,
                    "RS512" => &sig::RSA_PKCS1_SHA512,
                    _ => &sig::RSA_PKCS1_SHA256,
                };
                let mut s = vec![0; k.public().modulus_len()];
                k.sign(pad, &rng, input.as_bytes(), &mut s).unwrap();
                s
            }
        };
        format!("{input}.{}", b64(&signature))
    }
}

struct Fixture {
    _dir: tempfile::TempDir,
    path: PathBuf,
    config: OAuthBearerConfig,
    ec: Signer,
}

fn write_jwks(path: &Path, keys: &[Value], bump: u64) {
    std::fs::write(path, json!({ "keys": keys }).to_string()).unwrap();
    let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000 + bump);
    std::fs::File::options()
        .write(true)
        .open(path)
        .unwrap()
        .set_modified(t)
        .unwrap();
}

/// Signed mode with an EC key `ec-1` and the RSA fixture `rsa-1`, audience `kafka`, issuer
/// `https://idp`.
fn signed_fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("jwks.json");
    let ec = Signer::ec();
    let rsa = Signer::rsa();
    let unusable = json!({"kty": "oct", "k": "c2VjcmV0", "kid": "hmac"});
    write_jwks(&path, &[ec.jwk("ec-1"), rsa.jwk("rsa-1"), unusable], 0);
    let url = format!("file://{}", path.display());
    let v = vals(&[
        (
            "listener.name.sasl_ssl.oauthbearer.sasl.server.callback.handler.class",
            SIGNED,
        ),
        ("sasl.oauthbearer.jwks.endpoint.url", &url),
        ("sasl.oauthbearer.expected.audience", "other, kafka"),
        ("sasl.oauthbearer.expected.issuer", "https://wrong"),
        (
            "listener.name.sasl_ssl.oauthbearer.sasl.oauthbearer.expected.issuer",
            "https://idp",
        ),
    ]);
    let config = OAuthBearerConfig::from_values(&v, L).unwrap();
    assert!(!config.is_unsecured());
    Fixture {
        _dir: dir,
        path,
        config,
        ec,
    }
}

fn claims(extra: Value) -> Value {
    let now = now_s();
    let mut c =
        json!({"sub": "svc", "exp": now + 600, "iat": now, "iss": "https://idp", "aud": "kafka"});
    for (k, v) in extra.as_object().unwrap() {
        if v.is_null() {
            c.as_object_mut().unwrap().remove(k);
        } else {
            c[k] = v.clone();
        }
    }
    c
}

#[test]
fn signed_tokens_are_checked_with_the_jwks() {
    let f = signed_fixture();
    let c = claims(json!({}));
    let mut m = OAuthBearer::new(&f.config);
    assert_eq!(
        m.step(&first(&f.ec.token("ES256", "ec-1", &c))),
        done("svc")
    );
    assert_eq!(
        m.session_expiry_ms(),
        Some(c["exp"].as_i64().unwrap() * 1000)
    );
    let rsa = Signer::rsa();
    for alg in ["RS256", "PS256", "RS512"] {
        let t = rsa.token(alg, "rsa-1", &claims(json!({"aud": ["x", "kafka"]})));
        assert_eq!(
            OAuthBearer::new(&f.config).step(&first(&t)),
            done("svc"),
            "{alg}"
        );
    }
    // Expired 20 s ago: within the default 30 s of skew.
    let t = f.ec.token(
        "ES256",
        "ec-1",
        &claims(json!({"exp": now_s() - 20, "iat": now_s() - 600})),
    );
    assert_eq!(OAuthBearer::new(&f.config).step(&first(&t)), done("svc"));

    let other = Signer::ec();
    let cases = [
        (other.token("ES256", "ec-1", &c), "does not verify"),
        (f.ec.token("ES256", "ec-2", &c), "no key"),
        (rsa.token("RS256", "ec-1", &c), "no key"),
        (
            f.ec.token("ES256", "ec-1", &claims(json!({"aud": "x"}))),
            "aud",
        ),
        (
            f.ec.token("ES256", "ec-1", &claims(json!({"aud": null}))),
            "aud",
        ),
        (
            f.ec.token("ES256", "ec-1", &claims(json!({"iss": "https://wrong"}))),
            "iss",
        ),
        (
            f.ec.token("ES256", "ec-1", &claims(json!({"iss": null}))),
            "iss",
        ),
        (
            f.ec.token("ES256", "ec-1", &claims(json!({"iat": null}))),
            "no iat",
        ),
        (
            f.ec.token("ES256", "ec-1", &claims(json!({"sub": null}))),
            "no sub",
        ),
        (
            f.ec.token(
                "ES256",
                "ec-1",
                &claims(json!({"exp": now_s() - 40, "iat": 1})),
            ),
            "expired",
        ),
        (unsecured(c.clone()), "alg none"),
        (f.ec.token("none", "ec-1", &c), "alg none"),
        (f.ec.token("ES512", "ec-1", &c), "not supported"),
        (f.ec.token("HS256", "hmac", &c), "not supported"),
    ];
    for (token, why) in cases {
        let (challenge, msg) = refused(&f.config, &token);
        assert_eq!(challenge, r#"{"status":"invalid_token"}"#);
        assert!(msg.contains(why), "{why}: {msg}");
    }
    // A tampered payload under a valid signature.
    let t = f.ec.token("ES256", "ec-1", &c);
    let parts: Vec<&str> = t.split('.').collect();
    let forged = claims(json!({"sub": "admin"}));
    let t = format!(
        "{}.{}.{}",
        parts[0],
        b64(forged.to_string().as_bytes()),
        parts[2]
    );
    assert!(refused(&f.config, &t).1.contains("does not verify"));
}

#[test]
fn audience_is_refused_when_none_is_expected() {
    let f = signed_fixture();
    let url = format!("file:{}", f.path.display());
    let v = vals(&[
        ("sasl.server.callback.handler.class", SIGNED),
        (
            "listener.name.sasl_ssl.sasl.oauthbearer.jwks.endpoint.url",
            &url,
        ),
        ("sasl.oauthbearer.sub.claim.name", "client_id"),
        ("sasl.oauthbearer.clock.skew.seconds", "0"),
    ]);
    let c = OAuthBearerConfig::from_values(&v, L).unwrap();
    let now = now_s();
    let base = json!({"client_id": "app", "exp": now + 60, "iat": now});
    let t = f.ec.token("ES256", "ec-1", &base);
    assert_eq!(OAuthBearer::new(&c).step(&first(&t)), done("app"));
    let mut with_aud = base.clone();
    with_aud["aud"] = json!("kafka");
    let t = f.ec.token("ES256", "ec-1", &with_aud);
    assert!(refused(&c, &t).1.contains("expected.audience is not set"));
    let mut expired = base.clone();
    expired["exp"] = json!(now - 1);
    assert!(
        refused(&c, &f.ec.token("ES256", "ec-1", &expired))
            .1
            .contains("expired")
    );
}

#[test]
fn jwks_file_is_read_again_when_it_changes() {
    let mut f = signed_fixture();
    let keys = f.config.keys.as_mut().unwrap();
    keys.check_every = Duration::ZERO;
    let c = claims(json!({}));
    let old = f.ec.token("ES256", "ec-1", &c);
    let new_key = Signer::ec();
    let new = new_key.token("ES256", "ec-2", &c);
    assert_eq!(OAuthBearer::new(&f.config).step(&first(&old)), done("svc"));
    refused(&f.config, &new);
    // A broken file keeps the keys in use.
    std::fs::write(&f.path, "{ not json").unwrap();
    assert_eq!(OAuthBearer::new(&f.config).step(&first(&old)), done("svc"));
    std::fs::remove_file(&f.path).unwrap();
    assert_eq!(OAuthBearer::new(&f.config).step(&first(&old)), done("svc"));
    write_jwks(&f.path, &[json!({"kty": "EC"})], 5);
    assert_eq!(OAuthBearer::new(&f.config).step(&first(&old)), done("svc"));
    // A good one replaces them.
    write_jwks(&f.path, &[new_key.jwk("ec-2")], 10);
    assert_eq!(OAuthBearer::new(&f.config).step(&first(&new)), done("svc"));
    assert!(refused(&f.config, &old).1.contains("no key"));
    // Not looked at again before check_every.
    let keys = f.config.keys.as_mut().unwrap();
    keys.check_every = Duration::from_secs(3600);
    write_jwks(&f.path, &[f.ec.jwk("ec-1")], 20);
    assert_eq!(OAuthBearer::new(&f.config).step(&first(&new)), done("svc"));
}

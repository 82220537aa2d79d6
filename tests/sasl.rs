//! The SASL exchange of a SASL_PLAINTEXT listener, request by request: what is served before
//! authentication (one ApiVersions, SaslHandshake, SaslAuthenticate), what closes the
//! connection, the v0 handshake's raw tokens, and ILLEGAL_SASL_STATE on a plaintext listener.

mod common;

use bytes::BufMut;
use common::*;
use kafka_protocol::ResponseError;
use kafka_protocol::messages::*;

const JAAS: &str = r#"org.apache.kafka.common.security.plain.PlainLoginModule required user_alice="alice-secret" user_bob="bob-secret";"#;

async fn sasl_broker() -> TestBroker {
    start_with(&[
        ("listeners", "SASL_PLAINTEXT://127.0.0.1:0"),
        ("sasl.enabled.mechanisms", "PLAIN"),
        ("listener.name.sasl_plaintext.plain.sasl.jaas.config", JAAS),
        ("connection.failed.authentication.delay.ms", "10"),
    ])
    .await
}

fn handshake(mechanism: &str) -> SaslHandshakeRequest {
    SaslHandshakeRequest::default().with_mechanism(sb(mechanism))
}

fn plain(user: &str, password: &str) -> SaslAuthenticateRequest {
    SaslAuthenticateRequest::default()
        .with_auth_bytes(bytes::Bytes::from(format!("\0{user}\0{password}")))
}

fn metadata() -> MetadataRequest {
    MetadataRequest::default().with_topics(None)
}

#[tokio::test]
async fn plain_authenticates_then_serves_requests() {
    let b = sasl_broker().await;
    let mut c = Client::connect(b.addr).await;
    let v = c.call(3, &ApiVersionsRequest::default()).await;
    assert_eq!(v.error_code, 0);
    assert!(
        v.api_keys
            .iter()
            .any(|k| k.api_key == 36 && k.max_version == 2)
    );
    let h = c.call(1, &handshake("PLAIN")).await;
    assert_eq!(h.error_code, 0);
    assert_eq!(h.mechanisms.len(), 1);
    assert_eq!(h.mechanisms[0].as_str(), "PLAIN");
    let a = c.call(2, &plain("alice", "alice-secret")).await;
    assert_eq!(a.error_code, 0, "{:?}", a.error_message);
    assert_eq!(a.session_lifetime_ms, 0);
    // Authenticated: any request now.
    let m = c.call(12, &metadata()).await;
    assert_eq!(m.brokers.len(), 1);
    // A second exchange on the same connection is a re-authentication (KIP-368), which
    // must keep the mechanism and the user.
    let h = c.call(1, &handshake("PLAIN")).await;
    assert_eq!(h.error_code, 0);
    let a = c.call(2, &plain("alice", "alice-secret")).await;
    assert_eq!(a.error_code, 0, "{:?}", a.error_message);
    assert_eq!(c.call(12, &metadata()).await.brokers.len(), 1);
    let h = c.call(1, &handshake("PLAIN")).await;
    assert_eq!(h.error_code, 0);
    let a = c.call(2, &plain("bob", "bob-secret")).await;
    assert_eq!(a.error_code, ResponseError::SaslAuthenticationFailed.code());
    let msg = a.error_message.map(|m| m.to_string()).unwrap_or_default();
    assert!(msg.contains("Cannot change principals"), "{msg}");
    assert!(c.closed().await);
    // Another mechanism: refused, closed.
    let mut c = Client::connect(b.addr).await;
    c.call(1, &handshake("PLAIN")).await;
    c.call(2, &plain("alice", "alice-secret")).await;
    let h = c.call(1, &handshake("SCRAM-SHA-256")).await;
    assert_eq!(h.error_code, ResponseError::UnsupportedSaslMechanism.code());
    assert!(c.closed().await);
    // A client that authenticated with SaslAuthenticate v0 cannot re-authenticate.
    let mut c = Client::connect(b.addr).await;
    c.call(1, &handshake("PLAIN")).await;
    assert_eq!(
        c.call(0, &plain("alice", "alice-secret")).await.error_code,
        0
    );
    let h = c.call(1, &handshake("PLAIN")).await;
    assert_eq!(h.error_code, ResponseError::IllegalSaslState.code());
}

#[tokio::test]
async fn sessions_end_at_connections_max_reauth_ms() {
    let b = start_with(&[
        ("listeners", "SASL_PLAINTEXT://127.0.0.1:0"),
        ("sasl.enabled.mechanisms", "PLAIN"),
        ("listener.name.sasl_plaintext.plain.sasl.jaas.config", JAAS),
        ("connections.max.reauth.ms", "400"),
    ])
    .await;
    // Told its lifetime; re-authenticating in time keeps the connection.
    let mut c = Client::connect(b.addr).await;
    c.call(1, &handshake("PLAIN")).await;
    let a = c.call(2, &plain("alice", "alice-secret")).await;
    assert_eq!(a.session_lifetime_ms, 400);
    tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    assert_eq!(c.call(1, &handshake("PLAIN")).await.error_code, 0);
    let a = c.call(2, &plain("alice", "alice-secret")).await;
    assert_eq!(a.session_lifetime_ms, 400);
    tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    assert_eq!(c.call(12, &metadata()).await.brokers.len(), 1);
    // Past the end without re-authenticating: the next request closes the connection.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    c.send(12, &metadata()).await;
    assert!(c.closed().await, "served past the session's end");
}

#[tokio::test]
async fn failures_answer_then_close() {
    let b = sasl_broker().await;
    for (user, password) in [("alice", "wrong"), ("mallory", "alice-secret")] {
        let mut c = Client::connect(b.addr).await;
        assert_eq!(c.call(1, &handshake("PLAIN")).await.error_code, 0);
        let a = c.call(2, &plain(user, password)).await;
        assert_eq!(a.error_code, ResponseError::SaslAuthenticationFailed.code());
        let msg = a.error_message.map(|m| m.to_string()).unwrap_or_default();
        assert!(msg.contains("Invalid username or password"), "{msg}");
        assert!(!msg.contains(password), "the message repeats the password");
        assert!(c.closed().await, "{user}: still open after a failure");
    }
    // A mechanism that is not enabled: the enabled ones are named, then the connection goes.
    let mut c = Client::connect(b.addr).await;
    let h = c.call(1, &handshake("SCRAM-SHA-512")).await;
    assert_eq!(h.error_code, ResponseError::UnsupportedSaslMechanism.code());
    assert_eq!(h.mechanisms[0].as_str(), "PLAIN");
    assert!(c.closed().await);
}

#[tokio::test]
async fn nothing_else_is_served_before_authentication() {
    let b = sasl_broker().await;
    // Metadata first.
    let mut c = Client::connect(b.addr).await;
    c.send(12, &metadata()).await;
    assert!(
        c.read_frame().await.is_none(),
        "answered before authentication"
    );
    // SaslAuthenticate before the handshake: ILLEGAL_SASL_STATE, then closed.
    let mut c = Client::connect(b.addr).await;
    let a = c.call(2, &plain("alice", "alice-secret")).await;
    assert_eq!(a.error_code, ResponseError::IllegalSaslState.code());
    assert!(c.closed().await);
    // A second ApiVersions, or one after the handshake: closed.
    let mut c = Client::connect(b.addr).await;
    c.call(3, &ApiVersionsRequest::default()).await;
    c.send(3, &ApiVersionsRequest::default()).await;
    assert!(c.read_frame().await.is_none());
    let mut c = Client::connect(b.addr).await;
    assert_eq!(c.call(1, &handshake("PLAIN")).await.error_code, 0);
    c.send(3, &ApiVersionsRequest::default()).await;
    assert!(c.read_frame().await.is_none());
    // Between the handshake and SaslAuthenticate, another request: closed.
    let mut c = Client::connect(b.addr).await;
    assert_eq!(c.call(1, &handshake("PLAIN")).await.error_code, 0);
    c.send(12, &metadata()).await;
    assert!(c.read_frame().await.is_none());
    // The broker is unaffected.
    let mut c = Client::connect(b.addr).await;
    assert_eq!(c.call(1, &handshake("PLAIN")).await.error_code, 0);
    assert_eq!(
        c.call(2, &plain("alice", "alice-secret")).await.error_code,
        0
    );
}

#[tokio::test]
async fn a_v0_handshake_takes_raw_tokens() {
    let b = sasl_broker().await;
    let mut c = Client::connect(b.addr).await;
    assert_eq!(c.call(0, &handshake("PLAIN")).await.error_code, 0);
    // The PLAIN message as a bare size-prefixed token; an empty token back means success.
    let token = b"\0alice\0alice-secret";
    let mut f = bytes::BytesMut::new();
    f.put_i32(token.len() as i32);
    f.extend_from_slice(token);
    c.send_raw(&f).await.unwrap();
    assert_eq!(c.read_frame().await.map(|b| b.len()), Some(0));
    assert_eq!(c.call(12, &metadata()).await.brokers.len(), 1);
    // A wrong password in a raw token: closed without an answer.
    let mut c = Client::connect(b.addr).await;
    assert_eq!(c.call(0, &handshake("PLAIN")).await.error_code, 0);
    let token = b"\0alice\0nope";
    let mut f = bytes::BytesMut::new();
    f.put_i32(token.len() as i32);
    f.extend_from_slice(token);
    c.send_raw(&f).await.unwrap();
    assert!(c.read_frame().await.is_none());
}

#[tokio::test]
async fn an_oversized_frame_before_authentication_closes() {
    let b = sasl_broker().await;
    let mut c = Client::connect(b.addr).await;
    // 1 MiB announced: more than sasl.server.max.receive.size allows before authentication.
    c.send_raw(&(1i32 << 20).to_be_bytes()).await.unwrap();
    assert!(c.closed().await);
}

#[tokio::test]
async fn sasl_apis_on_a_plaintext_listener_are_illegal_state() {
    let b = start().await;
    let mut c = Client::connect(b.addr).await;
    let h = c.call(1, &handshake("PLAIN")).await;
    assert_eq!(h.error_code, ResponseError::IllegalSaslState.code());
    let a = c.call(2, &plain("alice", "alice-secret")).await;
    assert_eq!(a.error_code, ResponseError::IllegalSaslState.code());
    // The connection stays usable.
    assert_eq!(c.call(12, &metadata()).await.brokers.len(), 1);
}

#[tokio::test]
async fn secrets_are_never_described() {
    let b = start_with(&[("sasl.jaas.config", JAAS)]).await;
    let mut c = Client::connect(b.addr).await;
    // Set dynamically too (stored; Fjord reads key stores from its static settings).
    let r = c
        .call(
            1,
            &IncrementalAlterConfigsRequest::default().with_resources(vec![
                incremental_alter_configs_request::AlterConfigsResource::default()
                    .with_resource_type(4)
                    .with_resource_name(sb("1"))
                    .with_configs(vec![
                        incremental_alter_configs_request::AlterableConfig::default()
                            .with_name(sb("ssl.keystore.key"))
                            .with_config_operation(0)
                            .with_value(Some(sb("-----BEGIN PRIVATE KEY-----"))),
                    ]),
            ]),
        )
        .await;
    assert_eq!(
        r.responses[0].error_code, 0,
        "{:?}",
        r.responses[0].error_message
    );
    let r = c
        .call(
            4,
            &DescribeConfigsRequest::default()
                .with_include_synonyms(true)
                .with_resources(vec![
                    describe_configs_request::DescribeConfigsResource::default()
                        .with_resource_type(4)
                        .with_resource_name(sb("1"))
                        .with_configuration_keys(None),
                ]),
        )
        .await;
    let configs = &r.results[0].configs;
    let mut seen = 0;
    for e in configs {
        let text = format!("{e:?}");
        assert!(
            !text.contains("PRIVATE KEY") && !text.contains("alice-secret"),
            "a secret is described: {text}"
        );
        if matches!(e.name.as_str(), "ssl.keystore.key" | "sasl.jaas.config") {
            seen += 1;
            assert!(e.is_sensitive && e.value.is_none(), "{text}");
        }
    }
    assert!(seen >= 1, "the dynamic secret is listed, as sensitive");
}

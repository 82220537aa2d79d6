//! Framing, versions and hostile input: every bad request gets a Kafka error or closes only
//! its own connection, and the broker keeps serving everyone else.

mod common;

use bytes::{BufMut, BytesMut};
use common::*;
use kafka_protocol::ResponseError;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::Decodable;

#[tokio::test]
async fn api_versions_advertises_the_table() {
    let b = start().await;
    let mut c = b.client().await;
    for v in 0..=4 {
        let r = c
            .call(
                v,
                &ApiVersionsRequest::default()
                    .with_client_software_name(sb("t"))
                    .with_client_software_version(sb("1")),
            )
            .await;
        assert_eq!(r.error_code, 0);
        let produce = r.api_keys.iter().find(|k| k.api_key == 0).unwrap();
        assert_eq!((produce.min_version, produce.max_version), (0, 13));
        let fetch = r.api_keys.iter().find(|k| k.api_key == 1).unwrap();
        assert_eq!((fetch.min_version, fetch.max_version), (4, 18));
        assert_eq!(r.api_keys.len(), fjord::dispatch::SUPPORTED.len());
    }
}

#[tokio::test]
async fn api_versions_newer_than_ours_gets_kip511_fallback() {
    let b = start().await;
    let mut c = b.client().await;
    // ApiVersions v99 with a v2 header: key, version, correlation id, client id, no tags.
    let mut body = BytesMut::new();
    body.put_i16(18);
    body.put_i16(99);
    body.put_i32(42);
    body.put_i16(1);
    body.put_slice(b"x");
    body.put_u8(0);
    body.put_slice(&[1, 0]); // some future body bytes we cannot parse
    let mut f = BytesMut::new();
    f.put_i32(body.len() as i32);
    f.extend_from_slice(&body);
    c.send_raw(&f).await.unwrap();
    let mut frame = c.read_frame().await.expect("a v0 response");
    let header = ResponseHeader::decode(&mut frame, 0).unwrap();
    assert_eq!(header.correlation_id, 42);
    let r = ApiVersionsResponse::decode(&mut frame, 0).unwrap();
    assert_eq!(r.error_code, ResponseError::UnsupportedVersion.code());
    assert!(
        r.api_keys
            .iter()
            .any(|k| k.api_key == 18 && k.max_version == 4)
    );
}

#[tokio::test]
async fn pipelined_requests_are_answered_in_order() {
    let b = start().await;
    let mut c = b.client().await;
    c.create_topic("pipe", 1).await;
    // A long-polling fetch first, then quick requests behind it: order must hold.
    let f = c.send(12, &fetch_req("pipe", 0, 0, 300)).await;
    let m = c
        .send(12, &MetadataRequest::default().with_topics(None))
        .await;
    let a = c.send(3, &ApiVersionsRequest::default()).await;
    let fr = c.recv::<FetchRequest>(12, f).await;
    assert_eq!(fr.responses[0].partitions[0].error_code, 0);
    c.recv::<MetadataRequest>(12, m).await;
    c.recv::<ApiVersionsRequest>(3, a).await;
}

async fn assert_still_serving(b: &TestBroker) {
    let mut c = b.client().await;
    let r = c.call(3, &ApiVersionsRequest::default()).await;
    assert_eq!(r.error_code, 0);
}

#[tokio::test]
async fn garbage_truncated_and_oversized_frames_close_only_that_connection() {
    let b = start_with(&[("socket.request.max.bytes", "1048576")]).await;
    let mut bystander = b.client().await;

    // Garbage: a plausible size followed by random bytes (unknown API key).
    let mut c = b.client().await;
    c.send_raw(&[0, 0, 0, 8, 0x7f, 0x7f, 1, 2, 3, 4, 5, 6])
        .await
        .unwrap();
    assert!(c.closed().await, "garbage must close the connection");

    // Negative size.
    let mut c = b.client().await;
    c.send_raw(&[0xff, 0xff, 0xff, 0xf0]).await.unwrap();
    assert!(c.closed().await);

    // Oversized: larger than socket.request.max.bytes, without sending the body.
    let mut c = b.client().await;
    c.send_raw(&(200 * 1024 * 1024i32).to_be_bytes())
        .await
        .unwrap();
    assert!(c.closed().await);

    // Truncated: announces 100 bytes, sends 10, then half-closes.
    let mut c = b.client().await;
    c.send_raw(&[0, 0, 0, 100, 0, 18, 0, 3, 0, 0, 0, 1, 0, 0])
        .await
        .unwrap();
    c.stream.shutdown().await.ok();
    assert!(c.closed().await);

    // Known key, body that does not decode (Metadata v12 with a huge array count).
    let mut c = b.client().await;
    let mut body = BytesMut::new();
    body.put_i16(3);
    body.put_i16(12);
    body.put_i32(7);
    body.put_i16(-1);
    body.put_u8(0);
    body.put_slice(&[0xff, 0xff, 0xff, 0xff, 0x0f]); // compact array length ~ 4 billion
    let mut f = BytesMut::new();
    f.put_i32(body.len() as i32);
    f.extend_from_slice(&body);
    c.send_raw(&f).await.unwrap();
    assert!(c.closed().await);

    // Unsupported version of a served API.
    let mut c = b.client().await;
    let (_, mut f) = c.frame(3, &MetadataRequest::default());
    f[6..8].copy_from_slice(&99i16.to_be_bytes());
    c.send_raw(&f).await.unwrap();
    assert!(c.closed().await);

    let r = bystander.call(3, &ApiVersionsRequest::default()).await;
    assert_eq!(r.error_code, 0);
    assert_still_serving(&b).await;
}

use tokio::io::AsyncWriteExt;

#[tokio::test]
async fn legacy_produce_versions_get_unsupported_version() {
    let b = start().await;
    let mut c = b.client().await;
    c.create_topic("legacy", 1).await;
    for version in 0..=2i16 {
        // Produce v0-2: acks, timeout, [topic [partition, message set]] with a v1 header.
        let mut body = BytesMut::new();
        body.put_i16(0);
        body.put_i16(version);
        body.put_i32(5);
        body.put_i16(-1);
        body.put_i16(1);
        body.put_i32(1000);
        body.put_i32(1);
        body.put_i16(6);
        body.put_slice(b"legacy");
        body.put_i32(1);
        body.put_i32(0);
        body.put_i32(4);
        body.put_slice(&[1, 2, 3, 4]);
        let mut f = BytesMut::new();
        f.put_i32(body.len() as i32);
        f.extend_from_slice(&body);
        c.send_raw(&f).await.unwrap();
        let mut frame = c.read_frame().await.expect("response");
        use bytes::Buf;
        assert_eq!(frame.get_i32(), 5);
        assert_eq!(frame.get_i32(), 1);
        assert_eq!(frame.get_i16(), 6);
        frame.advance(6);
        assert_eq!(frame.get_i32(), 1);
        assert_eq!(frame.get_i32(), 0);
        assert_eq!(frame.get_i16(), ResponseError::UnsupportedVersion.code());
    }
    assert_still_serving(&b).await;
}

#[tokio::test]
async fn bad_batches_get_their_kafka_errors() {
    let b = start_with(&[("message.max.bytes", "2000")]).await;
    let mut c = b.client().await;
    c.create_topic("bad", 1).await;

    let good = plain(3);
    let mut corrupt = good.to_vec();
    let last = corrupt.len() - 1;
    corrupt[last] ^= 0x55;
    let (err, _) = c.produce("bad", 0, corrupt.into(), 1).await;
    assert_eq!(err, ResponseError::CorruptMessage.code());

    let (err, _) = c.produce("bad", 0, plain(200), 1).await;
    assert_eq!(err, ResponseError::MessageTooLarge.code());

    // Kafka 4 answers both with INVALID_RECORD (checked against it by tests/differential).
    let mut v1 = good.to_vec();
    v1[16] = 1;
    let (err, _) = c.produce("bad", 0, v1.into(), 1).await;
    assert_eq!(err, ResponseError::InvalidRecord.code());

    let (err, _) = c.produce("bad", 0, good.slice(..good.len() - 5), 1).await;
    assert_eq!(err, ResponseError::InvalidRecord.code());

    let (err, _) = c.produce("bad", 7, good.clone(), 1).await;
    assert_eq!(err, ResponseError::UnknownTopicOrPartition.code());

    // Nothing bad was stored; a good batch still lands at offset 0.
    let (err, base) = c.produce("bad", 0, good, 1).await;
    assert_eq!((err, base), (0, 0));
}

#[tokio::test]
async fn acks_zero_gets_no_response() {
    let b = start().await;
    let mut c = b.client().await;
    c.create_topic("fire", 1).await;
    c.send(11, &produce_req("fire", 0, plain(2), 0)).await;
    // The next response on the wire must be the metadata one.
    let r = c
        .call(12, &MetadataRequest::default().with_topics(None))
        .await;
    assert_eq!(r.topics.len(), 1);
    let p = c.fetch("fire", 0, 0, 0).await;
    assert_eq!(p.high_watermark, 2);
}

#[tokio::test]
async fn localhost_listener_serves_ipv4_and_ipv6() {
    // librdkafka resolves localhost to ::1 first, Java to 127.0.0.1 first: both must answer.
    let b = start_with(&[("listeners", "PLAINTEXT://localhost:0")]).await;
    let port = b.addr.port();
    let v4: std::net::SocketAddr = ([127, 0, 0, 1], port).into();
    let v6: std::net::SocketAddr = (std::net::Ipv6Addr::LOCALHOST, port).into();
    assert!(b.handle.as_ref().unwrap().addrs.contains(&v4));
    assert!(
        b.handle.as_ref().unwrap().addrs.contains(&v6),
        "{:?}",
        b.handle.as_ref().unwrap().addrs
    );
    for addr in [v4, v6] {
        let mut c = Client::connect(addr).await;
        let m = c
            .call(12, &MetadataRequest::default().with_topics(None))
            .await;
        assert_eq!(m.brokers[0].host.as_str(), "localhost");
        assert_eq!(m.brokers[0].port as u16, port);
    }
}

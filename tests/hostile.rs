//! A hostile client: thousands of random, valid-looking requests (real API keys, wrong
//! versions, wrong lengths, huge array counts, truncated and mutated bodies) against a live
//! broker. Afterwards a normal client must still produce and fetch, and the broker's own
//! decode path must never panic on any of the generated frames.

mod common;

use bytes::{BufMut, BytesMut};
use common::*;
use kafka_protocol::messages::*;
use tokio::io::AsyncWriteExt;

/// A tiny deterministic PRNG (xorshift), so failures are reproducible from the seed.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// Valid requests to start mutating from, encoded by a real client library.
#[allow(clippy::vec_init_then_push)]
fn seeds(c: &mut Client) -> Vec<BytesMut> {
    let mut out = Vec::new();
    out.push(c.frame(12, &MetadataRequest::default().with_topics(None)).1);
    out.push(c.frame(11, &produce_req("hostile", 0, plain(3), 1)).1);
    out.push(c.frame(12, &fetch_req("hostile", 0, 0, 10)).1);
    out.push(c.frame(3, &ApiVersionsRequest::default()).1);
    out.push(
        c.frame(
            9,
            &JoinGroupRequest::default()
                .with_group_id(GroupId(sb("g")))
                .with_session_timeout_ms(10_000)
                .with_protocol_type(sb("consumer"))
                .with_protocols(vec![
                    join_group_request::JoinGroupRequestProtocol::default().with_name(sb("range")),
                ]),
        )
        .1,
    );
    out.push(
        c.frame(
            7,
            &CreateTopicsRequest::default().with_topics(vec![
                create_topics_request::CreatableTopic::default()
                    .with_name(tn("x"))
                    .with_num_partitions(1)
                    .with_replication_factor(1),
            ]),
        )
        .1,
    );
    out.push(
        c.frame(
            8,
            &OffsetCommitRequest::default()
                .with_group_id(GroupId(sb("g")))
                .with_generation_id_or_member_epoch(-1),
        )
        .1,
    );
    out.push(
        c.frame(
            5,
            &InitProducerIdRequest::default()
                .with_transactional_id(Some(TransactionalId(sb("t"))))
                .with_transaction_timeout_ms(1000),
        )
        .1,
    );
    out
}

fn mutate(rng: &mut Rng, seed: &BytesMut) -> Vec<u8> {
    let mut body = seed[4..].to_vec();
    match rng.below(6) {
        // Flip random bytes (array counts, lengths, versions).
        0 => {
            for _ in 0..=rng.below(8) {
                let i = rng.below(body.len() as u64) as usize;
                body[i] = rng.next() as u8;
            }
        }
        // Any version of the API, including unsupported ones.
        1 => {
            let v = (rng.below(40) as i16) - 5;
            body[2..4].copy_from_slice(&v.to_be_bytes());
        }
        // Truncate the body but keep it framed.
        2 => body.truncate(8 + rng.below(body.len() as u64) as usize),
        // Huge counts: overwrite 4 bytes with 0x7fffffff / 0xffffffff somewhere after the header.
        3 => {
            let i = 8 + rng.below(body.len().saturating_sub(12) as u64) as usize;
            let v: [u8; 4] = if rng.below(2) == 0 {
                [0x7f, 0xff, 0xff, 0xff]
            } else {
                [0xff; 4]
            };
            body[i..i + 4].copy_from_slice(&v);
        }
        // Random API key with random trailing garbage.
        4 => {
            let key = rng.below(100) as i16;
            body[0..2].copy_from_slice(&key.to_be_bytes());
            body.extend((0..rng.below(64)).map(|_| rng.next() as u8));
        }
        // Append garbage.
        _ => body.extend((0..rng.below(256)).map(|_| rng.next() as u8)),
    }
    let mut frame = Vec::with_capacity(body.len() + 4);
    // Sometimes lie about the length.
    let len = match rng.below(10) {
        0 => body.len() as i32 + rng.below(100) as i32,
        1 => (body.len() as i32 - 1).max(0),
        _ => body.len() as i32,
    };
    frame.put_i32(len);
    frame.extend_from_slice(&body);
    frame
}

static PANICS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

#[tokio::test]
async fn random_requests_do_not_hurt_the_broker() {
    // A panic in a connection task would only kill that task: count them all.
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        PANICS.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        default(info);
    }));
    let b = start().await;
    let mut c = b.client().await;
    c.create_topic("hostile", 1).await;
    let seeds = seeds(&mut c);
    let mut rng = Rng(0x5eed_f00d_cafe_beef);
    for round in 0..1500 {
        // Each frame also goes through the decode path in-process: it must return, not panic.
        let frames: Vec<Vec<u8>> = (0..10)
            .map(|_| {
                let seed = &seeds[rng.below(seeds.len() as u64) as usize];
                mutate(&mut rng, seed)
            })
            .collect();
        for f in &frames {
            let _ = fjord::dispatch::decode_frame(&f[4..]);
        }
        // And over the wire, several per connection; the connection may be closed at any point.
        let mut h = Client::connect(b.addr).await;
        for f in &frames {
            if h.stream.write_all(f).await.is_err() {
                break;
            }
        }
        let _ = h.stream.shutdown().await;
        // Drain whatever comes back, bounded.
        let _ = tokio::time::timeout(std::time::Duration::from_millis(50), async {
            let mut buf = [0u8; 4096];
            use tokio::io::AsyncReadExt;
            while let Ok(n) = h.stream.read(&mut buf).await {
                if n == 0 {
                    break;
                }
            }
        })
        .await;
        if round % 100 == 0 {
            let mut ok = b.client().await;
            assert_eq!(
                ok.call(3, &ApiVersionsRequest::default()).await.error_code,
                0,
                "round {round}"
            );
        }
    }
    // The broker still does real work, and the data written before is intact.
    let mut ok = b.client().await;
    let (err, _) = ok.produce("hostile", 0, plain(5), -1).await;
    assert_eq!(err, 0);
    let p = ok.fetch("hostile", 0, 0, 0).await;
    assert_eq!(p.error_code, 0);
    assert!(!decode_records(p.records.unwrap()).is_empty());
    assert_eq!(
        PANICS.load(std::sync::atomic::Ordering::SeqCst),
        0,
        "no panics anywhere"
    );
}

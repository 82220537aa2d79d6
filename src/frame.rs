//! Response frames: encoding a typed response into what goes on the socket, and writing it.
//!
//! A frame is a list of chunks written in order with vectored writes. Most responses are one
//! chunk. A Fetch response's record sets, read from the segment files into their own
//! buffers, stay chunks of their own: they reach the socket without being copied into the
//! frame. Everything around them is still encoded by `kafka-protocol`, so the bytes on the
//! wire are exactly what it would produce (a test checks this for every Fetch version).

use std::io::IoSlice;

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, FetchResponse, ResponseHeader};
use kafka_protocol::protocol::Encodable;
use tokio::io::{AsyncWrite, AsyncWriteExt};

use crate::connection::RequestContext;

/// A response ready for the socket: size prefix, header and body, in one or more chunks.
#[derive(Debug, Default)]
pub struct Frame {
    pub chunks: Vec<Bytes>,
    /// The share of `queued.max.fetch.bytes` the frame's record sets hold: released when the
    /// frame is dropped, i.e. once it has been written to the socket.
    pub memory: Option<tokio::sync::OwnedSemaphorePermit>,
}

impl From<BytesMut> for Frame {
    fn from(b: BytesMut) -> Self {
        Frame {
            chunks: vec![b.freeze()],
            memory: None,
        }
    }
}

impl Frame {
    pub fn len(&self) -> usize {
        self.chunks.iter().map(|c| c.len()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The whole frame in one buffer (tests).
    pub fn to_bytes(&self) -> Bytes {
        if self.chunks.len() == 1 {
            return self.chunks[0].clone();
        }
        let mut b = BytesMut::with_capacity(self.len());
        for c in &self.chunks {
            b.extend_from_slice(c);
        }
        b.freeze()
    }
}

/// Frames a response: size, response header (v0 or v1 per API and version), body.
pub fn encode_response<R: Encodable + 'static>(
    key: ApiKey,
    ctx: &RequestContext,
    mut resp: R,
) -> anyhow::Result<Frame> {
    if let Some(fetch) = (&mut resp as &mut dyn std::any::Any).downcast_mut::<FetchResponse>() {
        return encode_fetch(ctx, fetch);
    }
    encode_whole(key, ctx, &resp).map(Frame::from)
}

fn encode_whole<R: Encodable>(
    key: ApiKey,
    ctx: &RequestContext,
    resp: &R,
) -> anyhow::Result<BytesMut> {
    let version = ctx.api_version;
    let header_version = key.response_header_version(version);
    let header = ResponseHeader::default().with_correlation_id(ctx.correlation_id);
    let size = header.compute_size(header_version)? + resp.compute_size(version)?;
    let mut buf = BytesMut::with_capacity(4 + size);
    buf.put_i32(size as i32);
    header.encode(&mut buf, header_version)?;
    resp.encode(&mut buf, version)
        .map_err(|e| anyhow::anyhow!("cannot encode {key:?} v{version} response: {e}"))?;
    Ok(buf)
}

/// Marks where a record set goes: 12 bytes no encoder would write by chance, then the
/// record set's number.
const SENTINEL_MAGIC: [u8; 12] = *b"\xf7FjOrD\x00rEcS\x01";
const SENTINEL_LEN: usize = 16;

fn sentinel(i: usize) -> [u8; SENTINEL_LEN] {
    let mut s = [0u8; SENTINEL_LEN];
    s[..12].copy_from_slice(&SENTINEL_MAGIC);
    s[12..].copy_from_slice(&(i as u32).to_be_bytes());
    s
}

/// Encodes a Fetch response with every record set as a chunk of its own. Each record set is
/// swapped for a 16-byte sentinel, the response is encoded by `kafka-protocol`, and the
/// frame is cut at the sentinels, whose length prefixes are rewritten for the real record
/// sets. Record sets are the only length-prefixed parts that change size and Kafka frames
/// carry no other enclosing byte length than the leading size, so the result is exactly
/// the full encoding.
fn encode_fetch(ctx: &RequestContext, resp: &mut FetchResponse) -> anyhow::Result<Frame> {
    let version = ctx.api_version;
    let flexible = version >= 12;
    let mut sets: Vec<Bytes> = Vec::new();
    for t in resp.responses.iter_mut() {
        for p in t.partitions.iter_mut() {
            // Small record sets are cheaper to copy than to write as their own chunk.
            if let Some(r) = p.records.as_ref().filter(|r| r.len() >= 4096) {
                let s = sentinel(sets.len());
                sets.push(r.clone());
                p.records = Some(Bytes::copy_from_slice(&s));
            }
        }
    }
    let whole = encode_whole(ApiKey::Fetch, ctx, resp)?.freeze();
    if sets.is_empty() {
        return Ok(Frame {
            chunks: vec![whole],
            memory: None,
        });
    }
    // The prefix the encoder wrote before each sentinel: INT32 16, or the compact length
    // varint 17 (length + 1) for flexible versions.
    let prefix_len = if flexible { 1 } else { 4 };
    let mut chunks = Vec::with_capacity(2 * sets.len() + 1);
    let mut at = 0usize;
    let mut body_len = whole.len() - 4;
    for (i, set) in sets.iter().enumerate() {
        let want = sentinel(i);
        let found = whole[at..]
            .windows(SENTINEL_LEN)
            .position(|w| w == want)
            .map(|p| p + at)
            .ok_or_else(|| anyhow::anyhow!("fetch encoding: record set {i} not found"))?;
        let start = found - prefix_len;
        let mut head = BytesMut::with_capacity(start - at + 5);
        head.extend_from_slice(&whole[at..start]);
        if flexible {
            put_unsigned_varint(&mut head, set.len() as u32 + 1);
        } else {
            head.put_i32(set.len() as i32);
        }
        body_len = body_len - prefix_len - SENTINEL_LEN + (head.len() - (start - at)) + set.len();
        chunks.push(head.freeze());
        chunks.push(set.clone());
        at = found + SENTINEL_LEN;
    }
    chunks.push(whole.slice(at..));
    // The size prefix covers everything after it.
    let mut first = BytesMut::from(&chunks[0][..]);
    first[..4].copy_from_slice(&(body_len as i32).to_be_bytes());
    chunks[0] = first.freeze();
    // Put the real record sets back, so the response stays usable by the caller.
    let mut sets = sets.into_iter();
    for t in resp.responses.iter_mut() {
        for p in t.partitions.iter_mut() {
            if p.records
                .as_ref()
                .is_some_and(|r| r.starts_with(&SENTINEL_MAGIC))
            {
                p.records = sets.next();
            }
        }
    }
    Ok(Frame {
        chunks,
        memory: None,
    })
}

/// kafka-protocol's own varint encoder is crate-private, hence this one.
fn put_unsigned_varint(buf: &mut BytesMut, mut v: u32) {
    while v >= 0x80 {
        buf.put_u8((v as u8) | 0x80);
        v >>= 7;
    }
    buf.put_u8(v as u8);
}

/// Writes every chunk of `frame`, with vectored writes when there are several, and flushes:
/// a TLS stream may hold the frame's last records until it is flushed (a no-op on TCP).
pub async fn write_frame<W: AsyncWrite + Unpin>(w: &mut W, frame: &Frame) -> std::io::Result<()> {
    write_chunks(w, frame).await?;
    w.flush().await
}

async fn write_chunks<W: AsyncWrite + Unpin>(w: &mut W, frame: &Frame) -> std::io::Result<()> {
    if frame.chunks.len() == 1 {
        return w.write_all(&frame.chunks[0]).await;
    }
    let mut idx = 0usize; // first chunk not fully written
    let mut off = 0usize; // bytes of it already written
    while idx < frame.chunks.len() {
        let slices: Vec<IoSlice<'_>> = std::iter::once(&frame.chunks[idx][off..])
            .chain(frame.chunks[idx + 1..].iter().map(|c| &c[..]))
            .take(64)
            .map(IoSlice::new)
            .collect();
        let mut n = w.write_vectored(&slices).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::WriteZero.into());
        }
        while n > 0 && idx < frame.chunks.len() {
            let left = frame.chunks[idx].len() - off;
            if n >= left {
                n -= left;
                idx += 1;
                off = 0;
            } else {
                off += n;
                n = 0;
            }
        }
        // Skip empty chunks so a zero-length slice never stands for progress.
        while idx < frame.chunks.len() && frame.chunks[idx].len() == off {
            idx += 1;
            off = 0;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::TopicName;
    use kafka_protocol::messages::fetch_response::{
        AbortedTransaction, FetchableTopicResponse, PartitionData,
    };
    use kafka_protocol::protocol::StrBytes;

    fn response(sizes: &[Option<usize>]) -> FetchResponse {
        let partitions = sizes
            .iter()
            .enumerate()
            .map(|(i, s)| {
                PartitionData::default()
                    .with_partition_index(i as i32)
                    .with_high_watermark(1000 + i as i64)
                    .with_last_stable_offset(900)
                    .with_aborted_transactions(Some(vec![
                        AbortedTransaction::default()
                            .with_producer_id(kafka_protocol::messages::ProducerId(7))
                            .with_first_offset(3),
                    ]))
                    .with_records(
                        s.map(|n| Bytes::from((0..n).map(|b| b as u8).collect::<Vec<_>>())),
                    )
            })
            .collect();
        FetchResponse::default()
            .with_session_id(0)
            .with_responses(vec![
                FetchableTopicResponse::default()
                    .with_topic(TopicName(StrBytes::from_static_str("t")))
                    .with_topic_id(uuid::Uuid::from_u128(42))
                    .with_partitions(partitions),
                FetchableTopicResponse::default()
                    .with_topic(TopicName(StrBytes::from_static_str("other")))
                    .with_topic_id(uuid::Uuid::from_u128(43))
                    .with_partitions(vec![
                        PartitionData::default().with_records(Some(Bytes::from(vec![9u8; 70_000]))),
                    ]),
            ])
    }

    #[test]
    fn chunked_fetch_frames_equal_the_full_encoding_in_every_version() {
        let shapes: &[&[Option<usize>]] = &[
            &[None, Some(0), Some(10)],
            &[Some(5000), None, Some(100), Some(200_000)],
            &[Some(4096)],
        ];
        for version in 4..=18 {
            for shape in shapes {
                let ctx = RequestContext {
                    peer: "127.0.0.1:1".parse().unwrap(),
                    listener: "PLAINTEXT".into(),
                    client_id: None,
                    api_version: version,
                    correlation_id: 77,
                    principal: std::sync::Arc::from("User:ANONYMOUS"),
                };
                let resp = response(shape);
                let whole = encode_whole(ApiKey::Fetch, &ctx, &resp).unwrap().freeze();
                let mut copy = resp.clone();
                let frame = encode_fetch(&ctx, &mut copy).unwrap();
                assert_eq!(frame.to_bytes(), whole, "v{version} {shape:?}");
                assert_eq!(copy, resp, "records restored (v{version})");
            }
        }
    }

    #[tokio::test]
    async fn vectored_writes_deliver_every_chunk_in_order() {
        let frame = Frame {
            chunks: vec![
                Bytes::from_static(b"abc"),
                Bytes::new(),
                Bytes::from(vec![1u8; 300_000]),
                Bytes::from_static(b"z"),
            ],
            memory: None,
        };
        let (mut a, mut b) = tokio::io::duplex(1024);
        let expect = frame.to_bytes();
        let writer = tokio::spawn(async move { write_frame(&mut a, &frame).await });
        let mut got = Vec::new();
        tokio::io::AsyncReadExt::read_to_end(&mut b, &mut got)
            .await
            .unwrap();
        writer.await.unwrap().unwrap();
        assert_eq!(got, expect);
    }
}

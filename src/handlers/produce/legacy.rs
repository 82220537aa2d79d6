//! Produce v0-2. Kafka 4.x still advertises them (KAFKA-18659) but refuses to serve them;
//! so do we. `kafka-protocol` cannot decode these versions, so the tiny v0-2 request and
//! response layouts are handled here by hand: every partition gets UNSUPPORTED_VERSION.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::ResponseError;

use crate::Broker;
use crate::connection::RequestContext;

fn string(b: &mut Bytes) -> anyhow::Result<Bytes> {
    anyhow::ensure!(b.remaining() >= 2, "truncated string length");
    let n = b.get_i16();
    anyhow::ensure!(
        n >= 0 && b.remaining() >= n as usize,
        "bad string length {n}"
    );
    Ok(b.split_to(n as usize))
}

fn count(b: &mut Bytes, min_item: usize) -> anyhow::Result<usize> {
    anyhow::ensure!(b.remaining() >= 4, "truncated array length");
    let n = b.get_i32();
    // Every element takes at least `min_item` bytes: a huge count cannot make us allocate.
    anyhow::ensure!(
        n >= 0 && (n as usize) * min_item <= b.remaining(),
        "bad array length {n}"
    );
    Ok(n as usize)
}

/// Returns the full response frame, or an error (closing the connection) if the body does
/// not even parse as a v0-2 produce request.
pub fn reject(_broker: &Broker, ctx: &RequestContext, mut body: Bytes) -> anyhow::Result<BytesMut> {
    anyhow::ensure!(body.remaining() >= 6, "truncated produce request");
    let _acks = body.get_i16();
    let _timeout = body.get_i32();
    let mut out = BytesMut::new();
    out.put_i32(0); // size, patched below
    out.put_i32(ctx.correlation_id);
    let topics = count(&mut body, 6)?;
    out.put_i32(topics as i32);
    for _ in 0..topics {
        let name = string(&mut body)?;
        out.put_i16(name.len() as i16);
        out.put_slice(&name);
        let parts = count(&mut body, 8)?;
        out.put_i32(parts as i32);
        for _ in 0..parts {
            anyhow::ensure!(body.remaining() >= 8, "truncated partition");
            let index = body.get_i32();
            let len = body.get_i32();
            anyhow::ensure!(
                len >= -1 && body.remaining() >= len.max(0) as usize,
                "bad message set length"
            );
            body.advance(len.max(0) as usize);
            out.put_i32(index);
            out.put_i16(ResponseError::UnsupportedVersion.code());
            out.put_i64(-1); // base offset
            if ctx.api_version >= 2 {
                out.put_i64(-1); // log append time
            }
        }
    }
    if ctx.api_version >= 1 {
        out.put_i32(0); // throttle time
    }
    let size = (out.len() - 4) as i32;
    out[0..4].copy_from_slice(&size.to_be_bytes());
    tracing::info!(peer = %ctx.peer, version = ctx.api_version, "refused produce v0-2 request");
    Ok(out)
}

//! An in-process broker on an ephemeral port with a temp data dir, and a minimal Kafka
//! protocol client built on `kafka-protocol` for driving it request by request.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::Duration;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use fjord::config::{ConfigBuilder, Source};
use fjord::{Server, ServerHandle};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Decodable, Encodable, Request, StrBytes};
use kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

pub struct TestBroker {
    pub handle: Option<ServerHandle>,
    pub addr: SocketAddr,
    pub dir: std::path::PathBuf,
    _tmp: Option<tempfile::TempDir>,
}

pub async fn start_with(settings: &[(&str, &str)]) -> TestBroker {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
    let mut b = start_in(&dir, settings).await;
    b._tmp = Some(tmp);
    b
}

pub async fn start() -> TestBroker {
    start_with(&[]).await
}

/// Starts a broker on `dir` (reused across restarts).
pub async fn start_in(dir: &std::path::Path, settings: &[(&str, &str)]) -> TestBroker {
    let mut b = ConfigBuilder::new();
    b.set("listeners", "PLAINTEXT://127.0.0.1:0", Source::Flag)
        .unwrap();
    b.set("log.dirs", dir.to_str().unwrap(), Source::Flag)
        .unwrap();
    for (k, v) in settings {
        b.set(k, v, Source::Flag).unwrap();
    }
    let server = Server::bind(b.build().unwrap()).await.unwrap();
    let handle = server.start();
    let addr = handle.addrs[0];
    TestBroker {
        handle: Some(handle),
        addr,
        dir: dir.to_path_buf(),
        _tmp: None,
    }
}

impl TestBroker {
    pub async fn stop(&mut self) {
        if let Some(h) = self.handle.take() {
            h.shutdown().await;
        }
    }

    /// Graceful stop and start again on the same data dir (new port).
    pub async fn restart(&mut self, settings: &[(&str, &str)]) {
        self.stop().await;
        let tmp = self._tmp.take();
        let mut b = start_in(&self.dir, settings).await;
        b._tmp = tmp;
        *self = b;
    }

    pub async fn client(&self) -> Client {
        Client::connect(self.addr).await
    }
}

pub struct Client {
    pub stream: TcpStream,
    corr: i32,
}

/// An IncrementalAlterConfigs request for one resource (2 topic, 4 broker, 32 group); each
/// op is (name, operation: 0 SET, 1 DELETE, 2 APPEND, 3 SUBTRACT, value).
pub fn incremental_alter(
    resource_type: i8,
    name: &str,
    ops: &[(&str, i8, Option<&str>)],
    validate_only: bool,
) -> IncrementalAlterConfigsRequest {
    IncrementalAlterConfigsRequest::default()
        .with_validate_only(validate_only)
        .with_resources(vec![
            incremental_alter_configs_request::AlterConfigsResource::default()
                .with_resource_type(resource_type)
                .with_resource_name(sb(name))
                .with_configs(
                    ops.iter()
                        .map(|(k, op, v)| {
                            incremental_alter_configs_request::AlterableConfig::default()
                                .with_name(sb(k))
                                .with_config_operation(*op)
                                .with_value(v.map(sb))
                        })
                        .collect(),
                ),
        ])
}

/// One config's value and source as DescribeConfigs gives it.
pub async fn described(
    c: &mut Client,
    resource_type: i8,
    name: &str,
    key: &str,
) -> (Option<String>, i8) {
    let d = c
        .call(
            4,
            &DescribeConfigsRequest::default().with_resources(vec![
                describe_configs_request::DescribeConfigsResource::default()
                    .with_resource_type(resource_type)
                    .with_resource_name(sb(name))
                    .with_configuration_keys(Some(vec![sb(key)])),
            ]),
        )
        .await;
    let c = &d.results[0].configs[0];
    (c.value.as_ref().map(|v| v.to_string()), c.config_source)
}

pub fn sb(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_string())
}

pub fn tn(s: &str) -> TopicName {
    TopicName(sb(s))
}

impl Client {
    pub async fn connect(addr: SocketAddr) -> Client {
        let stream = TcpStream::connect(addr).await.unwrap();
        stream.set_nodelay(true).unwrap();
        Client { stream, corr: 0 }
    }

    pub fn frame<R: Request>(&mut self, version: i16, req: &R) -> (i32, BytesMut) {
        self.corr += 1;
        let key = ApiKey::try_from(R::KEY).unwrap();
        let header = RequestHeader::default()
            .with_request_api_key(R::KEY)
            .with_request_api_version(version)
            .with_correlation_id(self.corr)
            .with_client_id(Some(sb("fjord-test")));
        let mut body = BytesMut::new();
        header
            .encode(&mut body, key.request_header_version(version))
            .unwrap();
        req.encode(&mut body, version).unwrap();
        let mut out = BytesMut::with_capacity(body.len() + 4);
        out.put_i32(body.len() as i32);
        out.extend_from_slice(&body);
        (self.corr, out)
    }

    pub async fn send<R: Request>(&mut self, version: i16, req: &R) -> i32 {
        let (corr, f) = self.frame(version, req);
        self.stream.write_all(&f).await.unwrap();
        corr
    }

    pub async fn send_raw(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.stream.write_all(bytes).await
    }

    /// Reads one response frame; None if the broker closed the connection (or 10s passed).
    pub async fn read_frame(&mut self) -> Option<Bytes> {
        let read = async {
            let mut len = [0u8; 4];
            self.stream.read_exact(&mut len).await.ok()?;
            let mut buf = vec![0u8; i32::from_be_bytes(len) as usize];
            self.stream.read_exact(&mut buf).await.ok()?;
            Some(Bytes::from(buf))
        };
        tokio::time::timeout(Duration::from_secs(10), read)
            .await
            .ok()
            .flatten()
    }

    pub async fn recv<R: Request>(&mut self, version: i16, corr: i32) -> R::Response {
        let mut frame = self.read_frame().await.expect("response");
        let key = ApiKey::try_from(R::KEY).unwrap();
        let header =
            ResponseHeader::decode(&mut frame, key.response_header_version(version)).unwrap();
        assert_eq!(
            header.correlation_id, corr,
            "responses must come back in order"
        );
        R::Response::decode(&mut frame, version).unwrap()
    }

    pub async fn call<R: Request>(&mut self, version: i16, req: &R) -> R::Response {
        let corr = self.send(version, req).await;
        self.recv::<R>(version, corr).await
    }

    /// True if the broker closes the connection within the timeout.
    pub async fn closed(&mut self) -> bool {
        let mut b = [0u8; 1];
        matches!(
            tokio::time::timeout(Duration::from_secs(5), self.stream.read(&mut b)).await,
            Ok(Ok(0)) | Ok(Err(_))
        )
    }

    pub async fn create_topic(&mut self, name: &str, partitions: i32) -> i16 {
        let req = CreateTopicsRequest::default()
            .with_topics(vec![
                create_topics_request::CreatableTopic::default()
                    .with_name(tn(name))
                    .with_num_partitions(partitions)
                    .with_replication_factor(1),
            ])
            .with_timeout_ms(5000);
        self.call(7, &req).await.topics[0].error_code
    }

    /// Produces one batch to one partition; returns (error, base offset).
    pub async fn produce(
        &mut self,
        topic: &str,
        partition: i32,
        records: Bytes,
        acks: i16,
    ) -> (i16, i64) {
        let req = produce_req(topic, partition, records, acks);
        let r = self.call(11, &req).await;
        let p = &r.responses[0].partition_responses[0];
        (p.error_code, p.base_offset)
    }

    pub async fn fetch(
        &mut self,
        topic: &str,
        partition: i32,
        offset: i64,
        max_wait_ms: i32,
    ) -> fetch_response::PartitionData {
        let req = fetch_req(topic, partition, offset, max_wait_ms);
        let mut r = self.call(12, &req).await;
        r.responses.remove(0).partitions.remove(0)
    }
}

pub fn produce_req(topic: &str, partition: i32, records: Bytes, acks: i16) -> ProduceRequest {
    ProduceRequest::default()
        .with_acks(acks)
        .with_timeout_ms(5000)
        .with_topic_data(vec![
            produce_request::TopicProduceData::default()
                .with_name(tn(topic))
                .with_partition_data(vec![
                    produce_request::PartitionProduceData::default()
                        .with_index(partition)
                        .with_records(Some(records)),
                ]),
        ])
}

pub fn fetch_req(topic: &str, partition: i32, offset: i64, max_wait_ms: i32) -> FetchRequest {
    FetchRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_max_wait_ms(max_wait_ms)
        .with_min_bytes(1)
        .with_max_bytes(50 << 20)
        .with_session_epoch(-1)
        .with_topics(vec![
            fetch_request::FetchTopic::default()
                .with_topic(tn(topic))
                .with_partitions(vec![
                    fetch_request::FetchPartition::default()
                        .with_partition(partition)
                        .with_fetch_offset(offset)
                        .with_current_leader_epoch(-1)
                        .with_log_start_offset(-1)
                        .with_partition_max_bytes(1 << 20),
                ]),
        ])
}

/// A real v2 batch of `n` records, as a client encodes it.
pub fn batch(n: usize, pid: i64, epoch: i16, seq: i32, compression: Compression) -> Bytes {
    let records: Vec<Record> = (0..n)
        .map(|i| Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: -1,
            producer_id: pid,
            producer_epoch: epoch,
            timestamp_type: TimestampType::Creation,
            offset: i as i64,
            sequence: seq + i as i32,
            timestamp: 1_700_000_000_000 + i as i64 * 1000,
            key: Some(Bytes::from(format!("key-{i}"))),
            value: Some(Bytes::from(format!("value-{i}"))),
            headers: Default::default(),
        })
        .collect();
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut buf,
        &records,
        &RecordEncodeOptions {
            version: 2,
            compression,
        },
    )
    .unwrap();
    buf.freeze()
}

pub fn plain(n: usize) -> Bytes {
    batch(n, -1, -1, -1, Compression::None)
}

/// Decodes all records in a fetch response's record bytes.
pub fn decode_records(mut b: Bytes) -> Vec<Record> {
    let mut out = Vec::new();
    while b.remaining() > 0 {
        let set = kafka_protocol::records::RecordBatchDecoder::decode(&mut b).unwrap();
        out.extend(set.records);
    }
    out
}

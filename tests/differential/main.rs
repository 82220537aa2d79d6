//! Differential protocol tests: the same requests to Apache Kafka and to Fjord, the decoded
//! responses compared field by field.
//!
//! Needs a reference Kafka (`scripts/kafka-ref.sh start`, whose bootstrap address goes in
//! `KAFKA_REF_BOOTSTRAP`); `scripts/test.sh` starts one and runs this with `--ignored`.
//! Fjord runs in-process on a fresh data dir with the same node id.
//!
//! Responses are compared as their `Debug` rendering after normalising only what
//! legitimately differs between two clusters: cluster, topic and member ids, producer ids,
//! timestamps, throttle times, hosts and ports, session ids, and the wording of error
//! messages (their presence is compared). Every other difference fails the run unless the
//! check is listed in [`KNOWN`] with the reason (the same list is in README.md).

#[path = "../common/mod.rs"]
mod common;

mod admin;
mod data;
mod groups;
mod txn;

use std::fmt::Debug;

use common::*;
use kafka_protocol::protocol::Request;

/// Checks whose responses differ from Kafka's for a reason, and the reason.
pub const KNOWN: &[(&str, &str)] = &[
    (
        "ApiVersions v3: ranges of the APIs Fjord serves",
        "Kafka 4.3 also serves OffsetCommit/OffsetFetch v10 (topic ids), FindCoordinator v6 (share groups), DescribeLogDirs v5 and ListOffsets v11; Fjord decodes with kafka-protocol 0.18, which has no ListOffsets v11, and serves the versions before those features",
    ),
    (
        "ApiVersions v0",
        "the full list: Kafka serves APIs Fjord does not (KRaft, ACLs, quotas, share groups, ...) and the newer versions above",
    ),
    (
        "ApiVersions v3: finalized features",
        "Fjord finalizes group.version and transaction.version only: no KRaft metadata log (metadata.version, kraft.version), no eligible leader replicas, no share or streams groups",
    ),
    (
        "CreateTopics v7: 3 partitions with configs",
        "Kafka 4.x sets min.insync.replicas=1 as a dynamic cluster default (source 3, for eligible leader replicas); Fjord reports its default (source 5)",
    ),
    (
        "CreateTopics v7: compacted topic",
        "min.insync.replicas source, as above",
    ),
    (
        "CreateTopics v7: validate only",
        "min.insync.replicas source, as above",
    ),
    (
        "DescribeConfigs v4: topic keys",
        "min.insync.replicas source and synonym, as above",
    ),
    (
        "ConsumerGroupHeartbeat v1: join",
        "Kafka 4.3 bumps a new group's epoch twice on its first join (to 2), Fjord once (to 1); epochs are opaque to clients, which only compare them",
    ),
    (
        "ConsumerGroupDescribe v1",
        "group and member epochs, as above",
    ),
    (
        "DescribeTransactions v0: ongoing",
        "the same partitions (with the __consumer_offsets partition AddOffsetsToTxn added), in another order: Fjord lists the transaction's topics by name, Kafka in the iteration order of its hash set",
    ),
];

pub struct Pair {
    pub f: Client,
    pub k: Client,
    pub fjord_addr: std::net::SocketAddr,
    pub kafka_addr: std::net::SocketAddr,
    pub passed: usize,
    pub known: Vec<String>,
    pub failed: Vec<String>,
}

/// Replaces what legitimately differs between two clusters with placeholders.
pub fn normalize(s: &str) -> String {
    use std::sync::OnceLock;
    static RULES: OnceLock<Vec<(regex::Regex, &'static str)>> = OnceLock::new();
    let rules = RULES.get_or_init(|| {
        [
            // Single-value Some( ... ) on one line, so the rules below see the value.
            (r"Some\(\n\s*([^\n]*),\n\s*\)", "Some($1)"),
            (r"Uuid\([^)]*\)", "Uuid(<id>)"),
            (r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", "<uuid>"),
            (r"(throttle_time_ms): -?\d+", "$1: <n>"),
            (r"(session_id): -?\d+", "$1: <n>"),
            (r"(producer_id): ProducerId\(\d+\)", "$1: ProducerId(<pid>)"),
            (r"(port): \d+", "$1: <port>"),
            (r#"(host): StrBytes\([^)]*\)"#, "$1: <host>"),
            (r#"(host): "[^"]*""#, "$1: <host>"),
            (r#"(cluster_id): (Some\()?("[^"]*"|StrBytes\([^)]*\))"#, "$1: $2<cluster>"),
            (r"(timestamp|log_append_time_ms|commit_timestamp|transaction_start_time_ms|last_timestamp|max_timestamp): \d{12,}", "$1: <ts>"),
            (r#"(error_message|batch_index_error_message): Some\(\s*"[^"]*",?\s*\)"#, "$1: Some(<msg>)"),
            (r#"(error_message|batch_index_error_message): Some\(\s*StrBytes\([^)]*\),?\s*\)"#, "$1: Some(<msg>)"),
            (r#"(member_id|leader|current_member_id): "[^"]+""#, "$1: <member>"),
            (r#"(client_host): "[^"]*""#, "$1: <host>"),
            (r#"(log_dir|path): "[^"]*""#, "$1: <dir>"),
            (r"(size|total_bytes|usable_bytes|offset_lag): -?\d+", "$1: <n>"),
        ]
        .into_iter()
        .map(|(p, r)| (regex::Regex::new(p).unwrap(), r))
        .collect()
    });
    let mut out = s.to_string();
    for (re, rep) in rules {
        out = re.replace_all(&out, *rep).into_owned();
    }
    out
}

/// Lines only in `a` (prefixed -) or only in `b` (prefixed +), in order (a small LCS diff).
pub fn line_diff(a: &str, b: &str) -> Vec<String> {
    let a: Vec<&str> = a.lines().collect();
    let b: Vec<&str> = b.lines().collect();
    let (n, m) = (a.len(), b.len());
    let mut l = vec![vec![0u32; m + 1]; n + 1];
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            l[i][j] = if a[i] == b[j] {
                l[i + 1][j + 1] + 1
            } else {
                l[i + 1][j].max(l[i][j + 1])
            };
        }
    }
    let (mut i, mut j, mut out) = (0, 0, Vec::new());
    while i < n || j < m {
        if i < n && j < m && a[i] == b[j] {
            i += 1;
            j += 1;
        } else if j < m && (i == n || l[i][j + 1] >= l[i + 1][j]) {
            out.push(format!("+ kafka: {}", b[j].trim()));
            j += 1;
        } else {
            out.push(format!("- fjord: {}", a[i].trim()));
            i += 1;
        }
    }
    out
}

impl Pair {
    /// Compares two renderings under `name`.
    pub fn compare(&mut self, name: &str, fjord: &str, kafka: &str) {
        let (nf, nk) = (normalize(fjord), normalize(kafka));
        if nf == nk {
            self.passed += 1;
            println!("PASS  {name}");
            return;
        }
        let mut diff = line_diff(&nf, &nk);
        // Fjord explains refusals (and some successes' context) in error_message where Kafka
        // leaves it null: one known difference for every API, taken out here.
        let fjord_msg = "- fjord: error_message: Some(<msg>),";
        let kafka_null = "+ kafka: error_message: None,";
        while let (Some(a), Some(b)) = (
            diff.iter().position(|l| l == fjord_msg),
            diff.iter().position(|l| l == kafka_null),
        ) {
            diff.remove(a.max(b));
            diff.remove(a.min(b));
        }
        if diff.is_empty() {
            self.passed += 1;
            println!("PASS  {name} (Fjord's error_message where Kafka's is null)");
            return;
        }
        let shown: Vec<&String> = diff.iter().take(40).collect();
        if let Some((_, why)) = KNOWN.iter().find(|(n, _)| *n == name) {
            println!("KNOWN {name}: {why}");
            self.known.push(name.to_string());
        } else {
            println!("DIFF  {name}");
            self.failed.push(name.to_string());
        }
        for l in shown {
            println!("        {l}");
        }
    }

    /// Sends the same request to both brokers and compares the responses.
    pub async fn same<R: Request>(
        &mut self,
        name: &str,
        v: i16,
        req: &R,
    ) -> (R::Response, R::Response)
    where
        R::Response: Debug,
    {
        self.each(name, v, req, req).await
    }

    /// Sends per-broker requests (where ids differ) and compares the responses.
    pub async fn each<R: Request>(
        &mut self,
        name: &str,
        v: i16,
        to_fjord: &R,
        to_kafka: &R,
    ) -> (R::Response, R::Response)
    where
        R::Response: Debug,
    {
        let f = self.f.call(v, to_fjord).await;
        let k = self.k.call(v, to_kafka).await;
        self.compare(name, &format!("{f:#?}"), &format!("{k:#?}"));
        (f, k)
    }

    /// Sends to both without comparing (set-up steps whose answers legitimately differ).
    pub async fn quiet<R: Request>(&mut self, v: i16, req: &R) -> (R::Response, R::Response) {
        (self.f.call(v, req).await, self.k.call(v, req).await)
    }

    /// Compares two values the caller extracted.
    pub fn compare_values<T: Debug>(&mut self, name: &str, fjord: T, kafka: T) {
        self.compare(name, &format!("{fjord:#?}"), &format!("{kafka:#?}"));
    }
}

#[tokio::test]
#[ignore = "needs a reference Kafka: KAFKA_REF_BOOTSTRAP=host:port (scripts/test.sh runs it)"]
async fn responses_match_kafka() {
    let bootstrap = std::env::var("KAFKA_REF_BOOTSTRAP")
        .expect("KAFKA_REF_BOOTSTRAP: start one with scripts/kafka-ref.sh start");
    let kafka_addr: std::net::SocketAddr = bootstrap
        .split(',')
        .next()
        .unwrap()
        .parse()
        .expect("KAFKA_REF_BOOTSTRAP is host:port");
    // The reference Kafka runs with no initial rebalance delay (scripts/kafka-ref.sh).
    let broker = start_with(&[("group.initial.rebalance.delay.ms", "0")]).await;
    let mut p = Pair {
        f: broker.client().await,
        k: Client::connect(kafka_addr).await,
        fjord_addr: broker.addr,
        kafka_addr,
        passed: 0,
        known: Vec::new(),
        failed: Vec::new(),
    };
    admin::run(&mut p).await;
    data::run(&mut p).await;
    groups::run(&mut p).await;
    txn::run(&mut p).await;
    admin::run_last(&mut p).await;
    println!(
        "\n{} passed, {} known differences, {} unexpected differences",
        p.passed,
        p.known.len(),
        p.failed.len()
    );
    assert!(
        p.failed.is_empty(),
        "unexpected differences: {:?}",
        p.failed
    );
}

/// Reads a partition from `from` to its end on one broker, however many fetches that takes
/// (Kafka may answer a fetch with fewer batches than are there): the records as stored,
/// the high watermark, the last stable offset and the aborted transactions.
async fn read_to_end(
    c: &mut Client,
    topic: &str,
    partition: i32,
    from: i64,
    isolation: i8,
) -> String {
    let mut next = from;
    let mut records = Vec::new();
    let mut last = String::new();
    for _ in 0..50 {
        let mut req = fetch_req(topic, partition, next, 0);
        req.isolation_level = isolation;
        let mut r = c.call(12, &req).await;
        let pd = r.responses.remove(0).partitions.remove(0);
        let bytes = pd.records.clone().unwrap_or_default();
        let mut pos = 0usize;
        while pos + 61 <= bytes.len() {
            let h = fjord::log::batch::BatchHeader::parse(&bytes[pos..]).unwrap();
            let mut b = bytes[pos..pos + h.total_len()].to_vec();
            if h.is_control() {
                // A marker is written by each broker at its own time: CRC and timestamps
                // legitimately differ.
                b[17..21].fill(0);
                b[27..43].fill(0);
            }
            records.push(format!("{b:?}"));
            next = h.last_offset() + 1;
            pos += h.total_len();
        }
        last = format!(
            "error {} hw {} lso {} log start {} aborted {:?}",
            pd.error_code,
            pd.high_watermark,
            pd.last_stable_offset,
            pd.log_start_offset,
            pd.aborted_transactions
        );
        let end = if isolation == 1 {
            pd.last_stable_offset
        } else {
            pd.high_watermark
        };
        if pos == 0 || next >= end {
            break;
        }
    }
    format!("{last}\n{}", records.join("\n"))
}

impl Pair {
    /// Compares what reading a partition to its end gives on both brokers.
    pub async fn read_all(&mut self, name: &str, topic: &str, partition: i32, isolation: i8) {
        let f = read_to_end(&mut self.f, topic, partition, 0, isolation).await;
        let k = read_to_end(&mut self.k, topic, partition, 0, isolation).await;
        self.compare(name, &f, &k);
    }
}

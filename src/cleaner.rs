//! Log maintenance in the background: time and size retention for `delete` topics and
//! compaction for `compact` topics, each partition judged by its topic's current configs.
//!
//! Retention runs every `log.retention.check.interval.ms`, the cleaner every
//! `log.cleaner.backoff.ms`. The work itself (sled reads and writes, decompression) runs on
//! the blocking pool so request handling is never stalled by it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::Broker;
use crate::handlers::now_ms;
use crate::log::partition::CompactPolicy;

/// One retention pass over every `delete` topic. Returns the number of partitions trimmed.
pub fn retention_pass(broker: &Broker) -> usize {
    let now = now_ms();
    let mut trimmed = 0;
    for t in broker.topics.list() {
        if !broker.topic_has_cleanup_policy(&t, "delete") {
            continue;
        }
        let ms: i64 = broker
            .topic_config(&t, "retention.ms")
            .parse()
            .unwrap_or(-1);
        let bytes: i64 = broker
            .topic_config(&t, "retention.bytes")
            .parse()
            .unwrap_or(-1);
        if ms < 0 && bytes < 0 {
            continue;
        }
        for (i, p) in t.partitions.iter().enumerate() {
            match p.apply_retention(now, ms, bytes) {
                Ok(Some(start)) => {
                    trimmed += 1;
                    tracing::info!(topic = %t.name, partition = i, log_start = start, "retention deleted old records");
                }
                Ok(None) => {}
                Err(e) => {
                    tracing::error!(topic = %t.name, partition = i, error = %e, "retention failed")
                }
            }
        }
    }
    trimmed
}

/// One compaction pass over every `compact` topic. Returns the records removed.
pub fn compaction_pass(broker: &Broker) -> u64 {
    let mut removed = 0;
    for t in broker.topics.list() {
        if !broker.topic_has_cleanup_policy(&t, "compact") {
            continue;
        }
        let num =
            |name: &str, default: i64| broker.topic_config(&t, name).parse().unwrap_or(default);
        let policy = CompactPolicy {
            now_ms: now_ms(),
            min_lag_ms: num("min.compaction.lag.ms", 0),
            delete_retention_ms: num("delete.retention.ms", 86_400_000),
            min_dirty_ratio: broker
                .topic_config(&t, "min.cleanable.dirty.ratio")
                .parse()
                .unwrap_or(0.5),
        };
        for (i, p) in t.partitions.iter().enumerate() {
            match p.compact(&policy) {
                Ok(s) if s.records_removed > 0 => {
                    removed += s.records_removed;
                    tracing::info!(
                        topic = %t.name, partition = i, records_removed = s.records_removed,
                        batches_rewritten = s.batches_rewritten, batches_removed = s.batches_removed,
                        bytes_before = s.bytes_before, bytes_after = s.bytes_after, "compacted"
                    );
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::error!(topic = %t.name, partition = i, error = %e, "compaction failed")
                }
            }
        }
    }
    removed
}

/// Per-tick partition upkeep: hands every partition its topic's current `segment.bytes`
/// (read when its active segment file next fills up), and writes the index checkpoint of
/// every partition whose appends since the last one are older than the checkpoint interval
/// (or of all, when `force`). A busy partition writes its own checkpoints as it appends;
/// this covers those that went quiet.
pub fn tend_partitions(broker: &Broker, force: bool) {
    for t in broker.topics.list() {
        let segment_bytes = broker.topic_config(&t, "segment.bytes").parse::<u64>().ok();
        for p in &t.partitions {
            if let Some(bytes) = segment_bytes {
                p.set_segment_bytes(bytes);
            }
            p.expire_producers(now_ms(), broker.config.producer_id_expiration_ms);
            p.checkpoint(force);
        }
    }
}

/// Runs both passes on their schedules until shutdown; a pass that panics is logged and the
/// cleaner goes on (see [`crate::supervise`]).
pub fn spawn(
    broker: Arc<Broker>,
    shutdown: tokio::sync::watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    crate::supervise::supervise("log cleaner", shutdown, move |sd| run(broker.clone(), sd))
}

async fn run(broker: Arc<Broker>, mut shutdown: tokio::sync::watch::Receiver<bool>) {
    let retention_every =
        Duration::from_millis(broker.config.log_retention_check_interval_ms as u64);
    let cleaner_every = Duration::from_millis(broker.config.log_cleaner_backoff_ms as u64);
    let tick_every = retention_every
        .min(cleaner_every)
        .min(Duration::from_secs(1));
    let mut tick = tokio::time::interval(tick_every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let (mut last_retention, mut last_clean) = (Instant::now(), Instant::now());
    loop {
        tokio::select! {
            _ = shutdown.changed() => break,
            _ = tick.tick() => {}
        }
        // Index checkpoints are sled writes, for up to every partition: blocking pool.
        let b = broker.clone();
        let _ = tokio::task::spawn_blocking(move || tend_partitions(&b, false)).await;
        let now = Instant::now();
        let do_retention = now.duration_since(last_retention) >= retention_every;
        let do_clean =
            broker.config.log_cleaner_enable && now.duration_since(last_clean) >= cleaner_every;
        if !do_retention && !do_clean {
            continue;
        }
        let b = broker.clone();
        let work = tokio::task::spawn_blocking(move || {
            if do_retention {
                retention_pass(&b);
            }
            if do_clean {
                compaction_pass(&b);
            }
        });
        crate::supervise::log_join_error("log cleaner", work.await);
        if do_retention {
            last_retention = Instant::now();
        }
        if do_clean {
            last_clean = Instant::now();
        }
    }
}

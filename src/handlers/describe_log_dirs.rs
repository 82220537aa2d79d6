//! DescribeLogDirs: the data directory with each partition's stored size, and (v4) the
//! filesystem's total and usable bytes.

use kafka_protocol::messages::describe_log_dirs_response::{
    DescribeLogDirsPartition, DescribeLogDirsResult, DescribeLogDirsTopic,
};
use kafka_protocol::messages::{DescribeLogDirsRequest, DescribeLogDirsResponse};

use super::{str_bytes, topic_name};
use crate::Broker;
use crate::connection::RequestContext;
use crate::security::acl::AclOperation;
use crate::security::authz::Authz;

/// (total, usable) bytes of the filesystem holding `path`.
fn fs_space(path: &std::path::Path) -> Option<(i64, i64)> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).ok()?;
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `c` is a valid NUL-terminated path and `st` a writable statvfs.
    if unsafe { libc::statvfs(c.as_ptr(), &mut st) } != 0 {
        return None;
    }
    let frsize = st.f_frsize as i64;
    Some((st.f_blocks as i64 * frsize, st.f_bavail as i64 * frsize))
}

pub async fn handle(
    broker: &Broker,
    ctx: &RequestContext,
    req: DescribeLogDirsRequest,
) -> anyhow::Result<DescribeLogDirsResponse> {
    if !Authz::of(broker, ctx).cluster(AclOperation::Describe) {
        return Ok(DescribeLogDirsResponse::default()
            .with_error_code(kafka_protocol::ResponseError::ClusterAuthorizationFailed.code()));
    }
    let wanted: Option<Vec<(String, Vec<i32>)>> = req.topics.as_ref().map(|ts| {
        ts.iter()
            .map(|t| (t.topic.to_string(), t.partitions.clone()))
            .collect()
    });
    let topics: Vec<DescribeLogDirsTopic> = broker
        .topics
        .list()
        .iter()
        .filter_map(|t| {
            let parts: Vec<i32> = match &wanted {
                None => (0..t.partitions.len() as i32).collect(),
                Some(w) => w.iter().find(|(n, _)| *n == t.name)?.1.clone(),
            };
            let partitions = parts
                .into_iter()
                .filter_map(|p| {
                    let log = t.partition(p)?;
                    Some(
                        DescribeLogDirsPartition::default()
                            .with_partition_index(p)
                            .with_partition_size(log.size_bytes() as i64)
                            .with_offset_lag(0),
                    )
                })
                .collect();
            Some(
                DescribeLogDirsTopic::default()
                    .with_name(topic_name(&t.name))
                    .with_partitions(partitions),
            )
        })
        .collect();
    let dir = std::fs::canonicalize(&broker.config.log_dir)
        .unwrap_or_else(|_| broker.config.log_dir.clone());
    let mut result = DescribeLogDirsResult::default()
        .with_log_dir(str_bytes(dir.display().to_string()))
        .with_topics(topics)
        .with_total_bytes(-1)
        .with_usable_bytes(-1);
    if ctx.api_version >= 4
        && let Some((total, usable)) = fs_space(&dir)
    {
        result.total_bytes = total;
        result.usable_bytes = usable;
    }
    Ok(DescribeLogDirsResponse::default().with_results(vec![result]))
}

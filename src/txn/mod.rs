//! Producer ids and the transaction coordinator. Idempotence and per-partition transaction
//! state live with each partition log (they must be written atomically with the batches).

pub mod backend;
pub mod coordinator;
pub mod markers;
pub mod producer_ids;

use crate::log::Store;

/// Hands out producer ids that are never reused, even across restarts: sled's id generator
/// is persisted and jumps ahead after a crash rather than repeating.
pub fn next_producer_id(store: &Store) -> anyhow::Result<i64> {
    let id = store.next_id()?;
    // Producer ids are i64 on the wire; sled's counter would need 2^63 allocations to overflow.
    Ok(id as i64)
}

//! Fjord as a cluster (issue 11): the KRaft-style metadata quorum.
//!
//! - `records`: the metadata log's records (Kafka's metadata record types);
//! - `image`: the metadata image and the pure `apply` that builds it from records;
//! - `placement` and `controller`: the active controller's decisions as pure functions
//!   (replica placement, leader election, the record batches of each decision);
//! - `raft`: the quorum on openraft. The rest of the broker sees only `raft::MetadataQuorum`:
//!   propose a batch and await its commit, subscribe to the image, ask who leads.
//!
//! Not wired into the broker yet: a node without quorum settings is today's single node.

pub mod controller;
pub mod image;
pub mod placement;
pub mod raft;
pub mod records;

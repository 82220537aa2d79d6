//! Fjord as a cluster (issue 11): the KRaft-style metadata quorum.
//!
//! - `records`: the metadata log's records (Kafka's metadata record types);
//! - `image`: the metadata image and the pure `apply` that builds it from records;
//! - `placement` and `controller`: the active controller's decisions as pure functions
//!   (replica placement, leader election, the record batches of each decision);
//! - `raft`: the quorum on openraft. The rest of the broker sees only `raft::Member` (a voter,
//!   or an observer on a broker that is not a controller): propose a batch and await its
//!   commit, subscribe to the image, ask who leads.
//!
//! - `node`: this process as a cluster node (registration, heartbeats, the active
//!   controller's duties); `controller_node`: the start of a dedicated controller; `mirror`: the local topic registry kept in step with the image;
//!   `view`: what the request handlers ask of the cluster (leaders, brokers, changes).
//!
//! A node without `controller.quorum.voters` is a single node and uses none of this.

pub mod controller;
pub mod controller_node;
pub mod election;
pub mod image;
pub mod mirror;
pub mod node;
pub mod placement;
pub mod raft;
pub mod reassign;
pub mod records;
pub mod view;

//! A request's authorization: who asks (the connection's principal and address) against the
//! broker's ACLs ([`super::acl::Authorizer`]). Without `authorizer.class.name` every check
//! passes, as in Kafka. Denials are logged (Kafka's authorizer logger does the same), at debug
//! level for the checks that only filter what a response shows.

use std::sync::Arc;

use super::acl::{AclOperation, Authorizer, CLUSTER_NAME, ResourceType, host_string};
use crate::Broker;
use crate::connection::RequestContext;

/// The checks of one request.
pub struct Authz {
    authorizer: Option<Arc<Authorizer>>,
    principal: Arc<str>,
    host: String,
}

impl Authz {
    pub fn of(broker: &Broker, ctx: &RequestContext) -> Authz {
        Authz {
            authorizer: broker.security.authorizer(),
            principal: ctx.principal.clone(),
            host: host_string(ctx.peer.ip()),
        }
    }

    /// Whether requests are checked at all.
    pub fn enabled(&self) -> bool {
        self.authorizer.is_some()
    }

    /// May the principal do `op` on the resource? Denials are logged.
    pub fn allows(&self, op: AclOperation, rt: ResourceType, name: &str) -> bool {
        let ok = self.check(op, rt, name);
        if !ok {
            tracing::info!(target: "fjord::authorizer", principal = %self.principal, host = %self.host, operation = %op, resource_type = %rt, resource = name, "denied");
        }
        ok
    }

    /// As [`Self::allows`], for checks that only hide what may not be seen (logged at debug).
    pub fn sees(&self, op: AclOperation, rt: ResourceType, name: &str) -> bool {
        let ok = self.check(op, rt, name);
        if !ok {
            tracing::debug!(target: "fjord::authorizer", principal = %self.principal, host = %self.host, operation = %op, resource_type = %rt, resource = name, "hidden");
        }
        ok
    }

    fn check(&self, op: AclOperation, rt: ResourceType, name: &str) -> bool {
        self.authorizer
            .as_ref()
            .is_none_or(|a| a.authorize(&self.principal, &self.host, op, rt, name))
    }

    pub fn topic(&self, op: AclOperation, topic: &str) -> bool {
        self.allows(op, ResourceType::Topic, topic)
    }

    pub fn group(&self, op: AclOperation, group: &str) -> bool {
        self.allows(op, ResourceType::Group, group)
    }

    /// GROUP_AUTHORIZATION_FAILED unless the principal may do `op` on the group.
    pub fn group_check(
        &self,
        op: AclOperation,
        group: &str,
    ) -> Result<(), kafka_protocol::ResponseError> {
        if self.group(op, group) {
            Ok(())
        } else {
            Err(kafka_protocol::ResponseError::GroupAuthorizationFailed)
        }
    }

    pub fn cluster(&self, op: AclOperation) -> bool {
        self.allows(op, ResourceType::Cluster, CLUSTER_NAME)
    }

    /// As [`Self::cluster`] without logging a denial (a check with a fallback).
    pub fn cluster_sees(&self, op: AclOperation) -> bool {
        self.sees(op, ResourceType::Cluster, CLUSTER_NAME)
    }

    pub fn transactional_id(&self, op: AclOperation, id: &str) -> bool {
        self.allows(op, ResourceType::TransactionalId, id)
    }

    /// Kafka's `authorizeByResourceType`: may the principal do `op` on some resource of the
    /// type (an idempotent producer's WRITE on any topic, say)?
    pub fn any(&self, op: AclOperation, rt: ResourceType) -> bool {
        self.authorizer
            .as_ref()
            .is_none_or(|a| a.authorize_any(&self.principal, &self.host, op, rt))
    }

    /// Idempotent produce and InitProducerId without a transactional id: IDEMPOTENT_WRITE on
    /// the cluster, or WRITE on any topic (Kafka 3.0+).
    pub fn idempotent_write(&self) -> bool {
        self.check(
            AclOperation::IdempotentWrite,
            ResourceType::Cluster,
            CLUSTER_NAME,
        ) || self.any(AclOperation::Write, ResourceType::Topic)
            || self.cluster(AclOperation::IdempotentWrite)
    }

    /// KIP-430: the operations allowed on the resource as a bit field (all the type's
    /// operations when nothing is checked).
    pub fn operations(&self, rt: ResourceType, name: &str) -> i32 {
        match &self.authorizer {
            Some(a) => a.authorized_operations(&self.principal, &self.host, rt, name),
            None => super::acl::operations_bitfield(rt.supported_operations()),
        }
    }

    /// DESCRIBE_CONFIGS or ALTER_CONFIGS on a config resource (Kafka's resource type ids:
    /// 2 topic, 4 broker, 32 group), with the error Kafka answers when denied.
    pub fn config_resource(
        &self,
        op: AclOperation,
        resource_type: i8,
        name: &str,
    ) -> Result<(), (kafka_protocol::ResponseError, String)> {
        use kafka_protocol::ResponseError as E;
        let (ok, e) = match resource_type {
            2 => (self.topic(op, name), E::TopicAuthorizationFailed),
            4 | 8 => (self.cluster(op), E::ClusterAuthorizationFailed),
            32 => (self.group(op, name), E::GroupAuthorizationFailed),
            _ => (true, E::InvalidRequest),
        };
        if ok {
            Ok(())
        } else {
            Err((e, "Authorization failed.".to_string()))
        }
    }
}

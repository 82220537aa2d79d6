//! Kafka's ACL model and the decisions of its KRaft `StandardAuthorizer`, as pure data and
//! functions: the enums with Kafka's wire codes (serialized as Kafka's Java names),
//! [`AclBinding`] (one ACL), [`AclBindingFilter`] (DescribeAcls and DeleteAcls),
//! [`validate_binding`] (CreateAcls) and the [`Authorizer`] (`super.users`,
//! `allow.everyone.if.no.acl.found` and the ACLs) that decides.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::fmt;
use std::net::IpAddr;

use kafka_protocol::ResponseError;
use serde::{Deserialize, Serialize};

/// The resource name, or host, that an ACL uses to match any resource, or any host.
pub const WILDCARD: &str = "*";
/// The principal of an ACL that applies to every principal (of any type, as Kafka matches it).
pub const WILDCARD_PRINCIPAL: &str = "User:*";
/// The only name of the CLUSTER resource.
pub const CLUSTER_NAME: &str = "kafka-cluster";

macro_rules! kafka_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident = $code:literal, $java:literal;)+ }) => {
        $(#[$meta])*
        #[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[serde(rename_all = "SCREAMING_SNAKE_CASE")]
        pub enum $name {
            $($(#[$vmeta])* $variant,)+
        }

        impl $name {
            /// Every value, in code order.
            pub const VALUES: &'static [$name] = &[$($name::$variant,)+];

            /// The value of a wire code; `None` for a code Kafka does not define (Kafka's
            /// `fromCode` reads those as UNKNOWN: `from_code(c).unwrap_or(Unknown)`).
            pub fn from_code(code: i8) -> Option<Self> {
                match code { $($code => Some($name::$variant),)+ _ => None }
            }

            /// The wire code.
            pub fn code(self) -> i8 {
                match self { $($name::$variant => $code,)+ }
            }

            /// Kafka's Java name of the value (`TRANSACTIONAL_ID`), as its messages print it.
            pub fn name(self) -> &'static str {
                match self { $($name::$variant => $java,)+ }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result { f.write_str(self.name()) }
        }
    };
}

kafka_enum! {
    /// Kafka's `org.apache.kafka.common.resource.ResourceType`.
    ResourceType {
        Unknown = 0, "UNKNOWN";
        /// Only in filters: any resource type.
        Any = 1, "ANY";
        Topic = 2, "TOPIC";
        Group = 3, "GROUP";
        Cluster = 4, "CLUSTER";
        TransactionalId = 5, "TRANSACTIONAL_ID";
        DelegationToken = 6, "DELEGATION_TOKEN";
        User = 7, "USER";
    }
}

kafka_enum! {
    /// Kafka's `org.apache.kafka.common.resource.PatternType`.
    PatternType {
        Unknown = 0, "UNKNOWN";
        /// Only in filters: any pattern type, the name (if any) compared exactly.
        Any = 1, "ANY";
        /// Only in filters: every pattern that would apply to the named resource.
        Match = 2, "MATCH";
        /// The name is the resource's name, or `*` for every resource of the type.
        Literal = 3, "LITERAL";
        /// The name is a prefix of the resources' names.
        Prefixed = 4, "PREFIXED";
    }
}

kafka_enum! {
    /// Kafka's `org.apache.kafka.common.acl.AclOperation` (TWO_PHASE_COMMIT since Kafka 4.1,
    /// KIP-939).
    AclOperation {
        Unknown = 0, "UNKNOWN";
        /// Only in filters: any operation.
        Any = 1, "ANY";
        /// In an ACL: every operation.
        All = 2, "ALL";
        Read = 3, "READ";
        Write = 4, "WRITE";
        Create = 5, "CREATE";
        Delete = 6, "DELETE";
        Alter = 7, "ALTER";
        Describe = 8, "DESCRIBE";
        ClusterAction = 9, "CLUSTER_ACTION";
        DescribeConfigs = 10, "DESCRIBE_CONFIGS";
        AlterConfigs = 11, "ALTER_CONFIGS";
        IdempotentWrite = 12, "IDEMPOTENT_WRITE";
        CreateTokens = 13, "CREATE_TOKENS";
        DescribeTokens = 14, "DESCRIBE_TOKENS";
        TwoPhaseCommit = 15, "TWO_PHASE_COMMIT";
    }
}

kafka_enum! {
    /// Kafka's `org.apache.kafka.common.acl.AclPermissionType`.
    AclPermissionType {
        Unknown = 0, "UNKNOWN";
        /// Only in filters: either permission.
        Any = 1, "ANY";
        Deny = 2, "DENY";
        Allow = 3, "ALLOW";
    }
}

impl ResourceType {
    /// The operations that apply to resources of this type, those KIP-430's authorized
    /// operations are made of (Kafka's `AclEntry.supportedOperations`); empty for ANY and
    /// UNKNOWN.
    pub fn supported_operations(self) -> &'static [AclOperation] {
        use AclOperation::*;
        match self {
            ResourceType::Topic => &[
                Read,
                Write,
                Create,
                Delete,
                Alter,
                Describe,
                DescribeConfigs,
                AlterConfigs,
            ],
            ResourceType::Group => &[Read, Delete, Describe, DescribeConfigs, AlterConfigs],
            ResourceType::Cluster => &[
                Create,
                Alter,
                Describe,
                ClusterAction,
                DescribeConfigs,
                AlterConfigs,
                IdempotentWrite,
            ],
            ResourceType::TransactionalId => &[Write, Describe],
            ResourceType::DelegationToken => &[Describe],
            ResourceType::User => &[CreateTokens, DescribeTokens],
            ResourceType::Unknown | ResourceType::Any => &[],
        }
    }
}

/// One ACL: who (principal `Type:name`, host or `*`) may or may not (permission) do what
/// (operation) on which resources (type, name and pattern type).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AclBinding {
    pub resource_type: ResourceType,
    pub resource_name: String,
    pub pattern_type: PatternType,
    pub principal: String,
    pub host: String,
    pub operation: AclOperation,
    pub permission: AclPermissionType,
}

impl AclBinding {
    /// A binding as CreateAcls carries it: wire codes, read as Kafka's `fromCode` reads them
    /// (a code it does not define is UNKNOWN, which validation then refuses).
    pub fn from_wire(
        resource_type: i8,
        resource_name: &str,
        pattern_type: i8,
        principal: &str,
        host: &str,
        operation: i8,
        permission: i8,
    ) -> AclBinding {
        AclBinding {
            resource_type: ResourceType::from_code(resource_type).unwrap_or(ResourceType::Unknown),
            resource_name: resource_name.to_string(),
            pattern_type: PatternType::from_code(pattern_type).unwrap_or(PatternType::Unknown),
            principal: principal.to_string(),
            host: host.to_string(),
            operation: AclOperation::from_code(operation).unwrap_or(AclOperation::Unknown),
            permission: AclPermissionType::from_code(permission)
                .unwrap_or(AclPermissionType::Unknown),
        }
    }

    /// The filter that matches exactly this binding (Kafka's `AclBinding.toFilter`).
    pub fn to_filter(&self) -> AclBindingFilter {
        AclBindingFilter {
            resource_type: self.resource_type,
            resource_name: Some(self.resource_name.clone()),
            pattern_type: self.pattern_type,
            principal: Some(self.principal.clone()),
            host: Some(self.host.clone()),
            operation: self.operation,
            permission: self.permission,
        }
    }
}

/// A selection of ACLs, as DescribeAcls and DeleteAcls carry it: `None` strings and the ANY
/// values match anything, pattern type MATCH selects the patterns that apply to a resource.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AclBindingFilter {
    pub resource_type: ResourceType,
    pub resource_name: Option<String>,
    pub pattern_type: PatternType,
    pub principal: Option<String>,
    pub host: Option<String>,
    pub operation: AclOperation,
    pub permission: AclPermissionType,
}

impl AclBindingFilter {
    /// A filter as DescribeAcls and DeleteAcls carry it, codes read as in
    /// [`AclBinding::from_wire`].
    pub fn from_wire(
        resource_type: i8,
        resource_name: Option<&str>,
        pattern_type: i8,
        principal: Option<&str>,
        host: Option<&str>,
        operation: i8,
        permission: i8,
    ) -> AclBindingFilter {
        let b = AclBinding::from_wire(
            resource_type,
            "",
            pattern_type,
            "",
            "",
            operation,
            permission,
        );
        AclBindingFilter {
            resource_type: b.resource_type,
            resource_name: resource_name.map(str::to_string),
            pattern_type: b.pattern_type,
            principal: principal.map(str::to_string),
            host: host.map(str::to_string),
            operation: b.operation,
            permission: b.permission,
        }
    }

    /// The filter that matches every ACL (Kafka's `AclBindingFilter.ANY`).
    pub const ANY: AclBindingFilter = AclBindingFilter {
        resource_type: ResourceType::Any,
        resource_name: None,
        pattern_type: PatternType::Any,
        principal: None,
        host: None,
        operation: AclOperation::Any,
        permission: AclPermissionType::Any,
    };

    /// Whether `binding` is selected: Kafka's `ResourcePatternFilter.matches` and
    /// `AccessControlEntryFilter.matches`. A named filter of pattern type ANY, LITERAL or
    /// PREFIXED wants that exact name (of any, or of that, pattern type); MATCH wants the
    /// LITERAL pattern of that name, the LITERAL `*` and the PREFIXED patterns the name
    /// starts with.
    pub fn matches(&self, binding: &AclBinding) -> bool {
        self.matches_pattern(binding) && self.matches_entry(binding)
    }

    fn matches_pattern(&self, b: &AclBinding) -> bool {
        if self.resource_type != ResourceType::Any && self.resource_type != b.resource_type {
            return false;
        }
        if !matches!(self.pattern_type, PatternType::Any | PatternType::Match)
            && self.pattern_type != b.pattern_type
        {
            return false;
        }
        let Some(name) = &self.resource_name else {
            return true;
        };
        if self.pattern_type == PatternType::Any || self.pattern_type == b.pattern_type {
            return *name == b.resource_name;
        }
        // MATCH against a concrete pattern (Kafka throws for a pattern of another type).
        match b.pattern_type {
            PatternType::Literal => *name == b.resource_name || b.resource_name == WILDCARD,
            PatternType::Prefixed => name.starts_with(&b.resource_name),
            _ => false,
        }
    }

    fn matches_entry(&self, b: &AclBinding) -> bool {
        self.principal.as_ref().is_none_or(|p| *p == b.principal)
            && self.host.as_ref().is_none_or(|h| *h == b.host)
            && (self.operation == AclOperation::Any || self.operation == b.operation)
            && (self.permission == AclPermissionType::Any || self.permission == b.permission)
    }

    /// Why the filter could match more than one ACL, in Kafka's words
    /// (`AclBindingFilter.findIndefiniteField`), or `None` if it can match at most one.
    pub fn find_indefinite_field(&self) -> Option<&'static str> {
        Some(match () {
            _ if self.resource_type == ResourceType::Any => "Resource type is ANY.",
            _ if self.resource_type == ResourceType::Unknown => "Resource type is UNKNOWN.",
            _ if self.resource_name.is_none() => "Resource name is NULL.",
            _ if self.pattern_type == PatternType::Match => "Resource pattern type is MATCH.",
            _ if self.pattern_type == PatternType::Unknown => "Resource pattern type is UNKNOWN.",
            _ if self.principal.is_none() => "Principal is NULL",
            _ if self.host.is_none() => "Host is NULL",
            _ if self.operation == AclOperation::Any => "Operation is ANY",
            _ if self.operation == AclOperation::Unknown => "Operation is UNKNOWN",
            _ if self.permission == AclPermissionType::Any => "Permission type is ANY",
            _ if self.permission == AclPermissionType::Unknown => "Permission type is UNKNOWN",
            _ => return None,
        })
    }

    /// Kafka's `AclBindingFilter.matchesAtMostOne`.
    pub fn matches_at_most_one(&self) -> bool {
        self.find_indefinite_field().is_none()
    }
}

/// Why Kafka refuses an ACL or a filter.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AclError {
    /// INVALID_REQUEST (42), with Kafka's message.
    InvalidRequest(String),
}

impl AclError {
    /// The error the response carries.
    pub fn error(&self) -> ResponseError {
        let AclError::InvalidRequest(_) = self;
        ResponseError::InvalidRequest
    }

    /// The response's error message.
    pub fn message(&self) -> &str {
        let AclError::InvalidRequest(m) = self;
        m
    }
}

impl fmt::Display for AclError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message())
    }
}

impl std::error::Error for AclError {}

/// Whether CreateAcls may create `b`, with Kafka's refusals in Kafka's order: the broker's
/// own checks (`AclApis.handleCreateAcls`: the CLUSTER resource's name, an empty name), then
/// the controller's (`AclControlManager.validateNewAcl`: filter-only or UNKNOWN values, the
/// principal's `Type:name` form since Kafka 4.0, KAFKA-18051). All are INVALID_REQUEST.
/// Kafka checks neither the host nor whether the operation applies to the resource type.
/// (A v0 request with a non-LITERAL pattern is the handler's UNSUPPORTED_VERSION.)
pub fn validate_binding(b: &AclBinding) -> Result<(), AclError> {
    use {AclOperation as Op, AclPermissionType as Perm, PatternType as Pat, ResourceType as Res};
    let message = if b.resource_type == Res::Cluster && b.resource_name != CLUSTER_NAME {
        format!("The only valid name for the CLUSTER resource is {CLUSTER_NAME}")
    } else if b.resource_name.is_empty() {
        "Invalid empty resource name".into()
    } else if matches!(b.resource_type, Res::Unknown | Res::Any) {
        format!("Invalid resourceType {}", b.resource_type)
    } else if !matches!(b.pattern_type, Pat::Literal | Pat::Prefixed) {
        format!("Invalid patternType {}", b.pattern_type)
    } else if matches!(b.operation, Op::Unknown | Op::Any) {
        format!("Invalid operation {}", b.operation)
    } else if !matches!(b.permission, Perm::Deny | Perm::Allow) {
        format!("Invalid permissionType {}", b.permission)
    } else if !b.principal.contains(':') {
        format!(
            "Could not parse principal from `{}` (no colon is present separating the \
             principal type from the principal name)",
            b.principal
        )
    } else {
        return Ok(());
    };
    Err(AclError::InvalidRequest(message))
}

/// Whether DeleteAcls may use `f` (`AclControlManager.validateFilter`); INVALID_REQUEST.
pub fn validate_filter(f: &AclBindingFilter) -> Result<(), AclError> {
    let message = if f.resource_type == ResourceType::Unknown
        || f.pattern_type == PatternType::Unknown
    {
        "Unknown patternFilter."
    } else if f.operation == AclOperation::Unknown || f.permission == AclPermissionType::Unknown {
        "Unknown entryFilter."
    } else {
        return Ok(());
    };
    Err(AclError::InvalidRequest(message.into()))
}

/// The `super.users` setting: `;`-separated principals, trimmed, empty items skipped, each
/// of the `Type:name` form (`StandardAuthorizer.getConfiguredSuperUsers`).
pub fn parse_super_users(value: &str) -> Result<Vec<String>, String> {
    let mut users = Vec::new();
    for v in value.split(';').map(str::trim).filter(|v| !v.is_empty()) {
        if !v.contains(':') {
            return Err(format!(
                "expected a string in format principalType:principalName but got {v}"
            ));
        }
        if !users.iter().any(|u| u == v) {
            users.push(v.to_string());
        }
    }
    Ok(users)
}

/// The `allow.everyone.if.no.acl.found` setting as Java's `Boolean.parseBoolean` of the
/// trimmed value reads it.
pub fn parse_allow_everyone_if_no_acl_found(value: &str) -> bool {
    value.trim().eq_ignore_ascii_case("true")
}

/// A client address as Java's `InetAddress.getHostAddress()` writes it, the form Kafka
/// compares with ACL hosts: IPv4 dotted (an IPv4-mapped IPv6 address too, as Java accepts
/// it), IPv6 as eight uncompressed lowercase hex groups (`0:0:0:0:0:0:0:1`, not `::1`).
pub fn host_string(ip: IpAddr) -> String {
    match ip {
        IpAddr::V6(v6) if v6.to_ipv4_mapped().is_none() => {
            let groups: Vec<String> = v6.segments().iter().map(|g| format!("{g:x}")).collect();
            groups.join(":")
        }
        ip => ip.to_canonical().to_string(),
    }
}

/// Whether the principal (or `User:*`) and host (or `*`) of an ACL match.
fn applies_to(acl: &AclBinding, principal: &str, host: &str) -> bool {
    (acl.principal == principal || acl.principal == WILDCARD_PRINCIPAL)
        && (acl.host == WILDCARD || acl.host == host)
}

/// `StandardAuthorizerData.findResult`: `None` if the ACL does not apply to the request,
/// else whether it allows it. ALL matches every operation; an ALLOW of READ, WRITE, DELETE
/// or ALTER also allows DESCRIBE and one of ALTER_CONFIGS also DESCRIBE_CONFIGS, but a DENY
/// denies only its own operation (DENY READ leaves DESCRIBE alone, DENY DESCRIBE leaves
/// READ alone). Any permission but ALLOW denies.
fn decide(acl: &AclBinding, principal: &str, host: &str, op: AclOperation) -> Option<bool> {
    use AclOperation::*;
    if !applies_to(acl, principal, host) {
        return None;
    }
    let allow = acl.permission == AclPermissionType::Allow;
    let applies = acl.operation == All
        || acl.operation == op
        || (allow && op == Describe && matches!(acl.operation, Read | Write | Delete | Alter))
        || (allow && op == DescribeConfigs && acl.operation == AlterConfigs);
    applies.then_some(allow)
}

/// ACLs of one resource and pattern type by resource name.
type ByName = BTreeMap<String, BTreeSet<AclBinding>>;

/// The ACLs and the settings of Kafka's `StandardAuthorizer`.
///
/// ACLs are indexed by resource type, pattern type and name, so deciding on one resource
/// takes a lookup per prefix of its name, not a walk over every ACL. Iteration is in
/// resource type order, LITERAL before PREFIXED, by name, then by principal, host,
/// operation and permission.
#[derive(Clone, Debug, Default)]
pub struct Authorizer {
    /// Only LITERAL and PREFIXED patterns; no empty map or set.
    acls: BTreeMap<(ResourceType, PatternType), ByName>,
    count: usize,
    /// `super.users`: principals allowed everything, compared with the whole `Type:name`.
    pub super_users: Vec<String>,
    /// `allow.everyone.if.no.acl.found`: the decision on a resource no ACL applies to.
    pub allow_everyone_if_no_acl_found: bool,
}

impl Authorizer {
    pub fn new(super_users: Vec<String>, allow_everyone_if_no_acl_found: bool) -> Self {
        Authorizer {
            super_users,
            allow_everyone_if_no_acl_found,
            ..Authorizer::default()
        }
    }

    /// Adds an ACL; false if it was already there (Kafka creates a duplicate once and
    /// answers success). No other validation (replaying a committed ACL must not fail), but
    /// a pattern type other than LITERAL or PREFIXED, which [`validate_binding`] refuses and
    /// nothing could match, is not stored (false).
    pub fn add(&mut self, b: AclBinding) -> bool {
        if !matches!(b.pattern_type, PatternType::Literal | PatternType::Prefixed) {
            return false;
        }
        let by_name = self
            .acls
            .entry((b.resource_type, b.pattern_type))
            .or_default();
        let added = by_name
            .entry(b.resource_name.clone())
            .or_default()
            .insert(b);
        self.count += usize::from(added);
        added
    }

    /// Removes exactly this ACL; false if it was not there.
    pub fn remove(&mut self, b: &AclBinding) -> bool {
        let key = (b.resource_type, b.pattern_type);
        let Some(by_name) = self.acls.get_mut(&key) else {
            return false;
        };
        let Some(acls) = by_name.get_mut(&b.resource_name) else {
            return false;
        };
        let removed = acls.remove(b);
        if acls.is_empty() {
            by_name.remove(&b.resource_name);
        }
        if by_name.is_empty() {
            self.acls.remove(&key);
        }
        self.count -= usize::from(removed);
        removed
    }

    /// Removes and returns (in iteration order) the ACLs `filter` matches: DeleteAcls.
    pub fn remove_matching(&mut self, filter: &AclBindingFilter) -> Vec<AclBinding> {
        let removed = self.describe(filter);
        for b in &removed {
            self.remove(b);
        }
        removed
    }

    /// The ACLs `filter` matches, in iteration order: DescribeAcls.
    pub fn describe(&self, filter: &AclBindingFilter) -> Vec<AclBinding> {
        let any_type = filter.resource_type == ResourceType::Any;
        (self.acls.iter())
            .filter(|((t, _), _)| any_type || *t == filter.resource_type)
            .flat_map(|(_, by_name)| by_name.values().flatten())
            .filter(|b| filter.matches(b))
            .cloned()
            .collect()
    }

    /// Every ACL, in iteration order.
    pub fn iter(&self) -> impl Iterator<Item = &AclBinding> {
        self.acls
            .values()
            .flat_map(|by_name| by_name.values().flatten())
    }

    /// The ACLs of a resource type with patterns of a type, by name.
    fn by_name(&self, resource_type: ResourceType, pattern: PatternType) -> Option<&ByName> {
        self.acls.get(&(resource_type, pattern))
    }

    pub fn len(&self) -> usize {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    pub fn is_super_user(&self, principal: &str) -> bool {
        self.super_users.iter().any(|u| u == principal)
    }

    /// Whether `principal` (`Type:name`) connected from `host` (the client's address as
    /// [`host_string`] writes it) may do `op` on the resource `name` of `resource_type`
    /// (`StandardAuthorizerData.authorize`). A super user may do anything. Otherwise the
    /// ACLs of the patterns that apply to the resource decide (LITERAL of the name, LITERAL
    /// `*`, PREFIXED patterns the name starts with): any matching DENY denies, else any
    /// matching ALLOW allows (principals match whole or by an ACL's `User:*`, hosts
    /// exactly or by `*`, operations as `decide` says). If no ACL of any principal applies
    /// to the resource, `allow_everyone_if_no_acl_found` decides; if some do but none
    /// matched, denied.
    pub fn authorize(
        &self,
        principal: &str,
        host: &str,
        op: AclOperation,
        resource_type: ResourceType,
        name: &str,
    ) -> bool {
        if self.is_super_user(principal) {
            return true;
        }
        // The ACLs of the LITERAL name and of LITERAL `*`, then of each PREFIXED pattern
        // that is a prefix of the name, each found by a lookup.
        let literal = self.by_name(resource_type, PatternType::Literal);
        let exact = literal.and_then(|l| l.get(name));
        let wildcard = literal
            .filter(|_| name != WILDCARD)
            .and_then(|l| l.get(WILDCARD));
        let prefixed = self.by_name(resource_type, PatternType::Prefixed);
        let prefixes = prefixed.into_iter().flat_map(|p| {
            (0..=name.len())
                .filter(|&i| name.is_char_boundary(i))
                .filter_map(|i| p.get(&name[..i]))
        });
        let (mut found, mut allowed) = (false, false);
        for acls in exact.into_iter().chain(wildcard).chain(prefixes) {
            found = true;
            for acl in acls {
                match decide(acl, principal, host, op) {
                    Some(false) => return false,
                    Some(true) => allowed = true,
                    None => {}
                }
            }
        }
        allowed || (!found && self.allow_everyone_if_no_acl_found)
    }

    /// Whether `principal` from `host` may do `op` on at least one resource of
    /// `resource_type`: Kafka's default `Authorizer.authorizeByResourceType`, which
    /// `StandardAuthorizer` keeps. First [`Self::authorize`] on a resource named
    /// `hardcode` (so super users, and `allow_everyone_if_no_acl_found` when no ACL applies
    /// to that name, are allowed). Then, over the ACLs of the type whose principal is this
    /// one or `User:*`, host this one or `*`, and operation `op` exactly or ALL (no implied
    /// operations here): a DENY on LITERAL `*` denies; an ALLOW on LITERAL `*` allows; else
    /// allowed if some ALLOW pattern is not cancelled, a LITERAL one by a DENY on the same
    /// LITERAL name or, like a PREFIXED one, by a DENY on a PREFIXED pattern that is a
    /// prefix of (or equal to) its name. False for the filter-only or UNKNOWN values Kafka
    /// throws for.
    pub fn authorize_any(
        &self,
        principal: &str,
        host: &str,
        op: AclOperation,
        resource_type: ResourceType,
    ) -> bool {
        if matches!(resource_type, ResourceType::Any | ResourceType::Unknown)
            || matches!(op, AclOperation::Any | AclOperation::Unknown)
        {
            return false;
        }
        if self.authorize(principal, host, op, resource_type, "hardcode") {
            return true;
        }
        let (mut deny_literal, mut deny_prefixed) = (HashSet::new(), HashSet::new());
        let (mut allow_literal, mut allow_prefixed) = (HashSet::new(), HashSet::new());
        let relevant = |acl: &&AclBinding| {
            applies_to(acl, principal, host)
                && (acl.operation == op || acl.operation == AclOperation::All)
        };
        let patterns = [PatternType::Literal, PatternType::Prefixed];
        let by_name = patterns
            .iter()
            .filter_map(|&p| self.by_name(resource_type, p));
        for acl in by_name.flat_map(|b| b.values().flatten()).filter(relevant) {
            let name = acl.resource_name.as_str();
            match (acl.permission, acl.pattern_type == PatternType::Literal) {
                (AclPermissionType::Deny, true) if name == WILDCARD => return false,
                (AclPermissionType::Deny, true) => deny_literal.insert(name),
                (AclPermissionType::Deny, false) => deny_prefixed.insert(name),
                (AclPermissionType::Allow, true) => allow_literal.insert(name),
                (AclPermissionType::Allow, false) => allow_prefixed.insert(name),
                _ => false,
            };
        }
        if allow_literal.contains(WILDCARD) {
            return true;
        }
        let dominated = |allowed: &str| {
            (1..=allowed.len())
                .filter(|&i| allowed.is_char_boundary(i))
                .any(|i| deny_prefixed.contains(&allowed[..i]))
        };
        allow_literal
            .iter()
            .any(|n| !deny_literal.contains(n) && !dominated(n))
            || allow_prefixed.iter().any(|n| !dominated(n))
    }

    /// KIP-430's authorized operations of a resource: bit `code` set for each of the
    /// resource type's [supported operations](ResourceType::supported_operations) that
    /// [`Self::authorize`] allows (`AuthHelper.authorizedOperations`); 0 for ANY/UNKNOWN.
    pub fn authorized_operations(
        &self,
        principal: &str,
        host: &str,
        resource_type: ResourceType,
        name: &str,
    ) -> i32 {
        resource_type
            .supported_operations()
            .iter()
            .filter(|&&op| self.authorize(principal, host, op, resource_type, name))
            .fold(0, |bits, op| bits | 1 << op.code())
    }
}

/// The bit field of a set of operations (Kafka's `Utils.to32BitField` of their codes).
pub fn operations_bitfield(ops: &[AclOperation]) -> i32 {
    ops.iter().fold(0, |bits, op| bits | 1 << op.code())
}

#[cfg(test)]
#[path = "acl_tests.rs"]
mod tests;

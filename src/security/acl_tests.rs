//! Kafka's ACL semantics, mostly cases of Kafka's own `AuthorizerTest`,
//! `ResourcePatternFilterTest` and `AclControlManager` refusals. ACLs are written
//! `"TYPE name PATTERN principal host OPERATION PERMISSION"` (`''` for an empty name).

use super::*;
use AclOperation::*;
use ResourceType::{Cluster, Group, Topic, TransactionalId};

const ALICE: &str = "User:alice";
const H1: &str = "10.0.0.1";
const H2: &str = "10.0.0.2";

fn value<T: Copy + fmt::Display>(values: &[T], name: &str) -> T {
    let found = values.iter().find(|v| v.to_string() == name);
    *found.unwrap_or_else(|| panic!("no value {name}"))
}

fn acl(spec: &str) -> AclBinding {
    let f: Vec<&str> = spec.split(' ').collect();
    assert_eq!(f.len(), 7, "{spec}");
    AclBinding {
        resource_type: value(ResourceType::VALUES, f[0]),
        resource_name: if f[1] == "''" { "" } else { f[1] }.into(),
        pattern_type: value(PatternType::VALUES, f[2]),
        principal: f[3].into(),
        host: f[4].into(),
        operation: value(AclOperation::VALUES, f[5]),
        permission: value(AclPermissionType::VALUES, f[6]),
    }
}

/// An authorizer with `User:superuser1` as super user and these ACLs.
fn with(specs: &[&str]) -> Authorizer {
    let mut a = Authorizer::new(vec!["User:superuser1".into()], false);
    for spec in specs {
        assert!(a.add(acl(spec)), "{spec}");
    }
    a
}

fn add(a: &mut Authorizer, spec: &str) {
    assert!(a.add(acl(spec)), "{spec}");
}

fn read(a: &Authorizer, principal: &str, host: &str, topic: &str) -> bool {
    a.authorize(principal, host, Read, Topic, topic)
}

#[test]
fn codes_and_names_are_kafkas() {
    use ResourceType::{Any, User};
    for (t, c) in [(Any, 1), (Topic, 2), (TransactionalId, 5), (User, 7)] {
        assert_eq!((t.code(), ResourceType::from_code(c)), (c, Some(t)));
    }
    assert_eq!(PatternType::from_code(4), Some(PatternType::Prefixed));
    assert_eq!(AclOperation::from_code(15), Some(TwoPhaseCommit));
    assert_eq!(AclOperation::from_code(16), None);
    assert_eq!(AclPermissionType::from_code(3).unwrap().name(), "ALLOW");
    assert_eq!(ResourceType::from_code(0), Some(ResourceType::Unknown));
    assert_eq!(ResourceType::from_code(-1), None);
    for (i, op) in AclOperation::VALUES.iter().enumerate() {
        assert_eq!(op.code() as usize, i);
    }
    let b = acl("TRANSACTIONAL_ID t PREFIXED User:alice * IDEMPOTENT_WRITE DENY");
    let json = serde_json::to_string(&b).unwrap();
    assert!(json.contains(r#""resource_type":"TRANSACTIONAL_ID""#));
    assert!(json.contains(r#""operation":"IDEMPOTENT_WRITE""#));
    assert_eq!(serde_json::from_str::<AclBinding>(&json).unwrap(), b);
    assert_eq!(DescribeConfigs.to_string(), "DESCRIBE_CONFIGS");
}

#[test]
fn topic_acls_by_principal_host_and_operation() {
    // AuthorizerTest.testTopicAcl
    let a = with(&[
        "TOPIC t LITERAL User:alice 10.0.0.1 READ ALLOW",
        "TOPIC t LITERAL User:alice 10.0.0.2 READ ALLOW",
        "TOPIC t LITERAL User:alice 10.0.0.1 READ DENY",
        "TOPIC t LITERAL User:alice 10.0.0.1 WRITE ALLOW",
        "TOPIC t LITERAL User:alice * DESCRIBE ALLOW",
        "TOPIC t LITERAL User:rob * READ ALLOW",
        "TOPIC t LITERAL User:batman * WRITE ALLOW",
    ]);
    let on = |p, h, op| a.authorize(p, h, op, Topic, "t");
    let (rob, batman) = ("User:rob", "User:batman");
    assert!(on(ALICE, H2, Read));
    assert!(!on(ALICE, H1, Read), "deny from host1");
    assert!(on(ALICE, H1, Write));
    assert!(!on(ALICE, H2, Write), "no allow from host2");
    assert!(on(ALICE, H1, Describe) && on(ALICE, H2, Describe));
    assert!(!on(ALICE, H1, Alter) && !on(ALICE, H2, Alter));
    // READ and WRITE imply DESCRIBE.
    assert!(on(rob, H1, Describe) && on(batman, H1, Describe));
    assert!(on(rob, H1, Read) && on(batman, H1, Write));
    assert!(!on(rob, H1, Write) && !on(batman, H1, Read));
}

#[test]
fn deny_takes_precedence() {
    // AuthorizerTest.testDenyTakesPrecedence
    let a = with(&[
        "TOPIC t LITERAL User:* * ALL ALLOW",
        "TOPIC t LITERAL User:alice 10.0.1.1 ALL DENY",
    ]);
    assert!(!read(&a, ALICE, "10.0.1.1", "t"));
    assert!(read(&a, ALICE, H1, "t"));
    assert!(read(&a, "User:bob", "10.0.1.1", "t"));
    // A DENY on a prefix beats an ALLOW on the exact name, and the other way round.
    let a = with(&[
        "TOPIC t LITERAL User:* * READ ALLOW",
        "TOPIC '' PREFIXED User:* * READ DENY",
    ]);
    assert!(!read(&a, ALICE, H1, "t"));
    let a = with(&[
        "TOPIC t PREFIXED User:* * READ ALLOW",
        "TOPIC * LITERAL User:* * READ DENY",
    ]);
    assert!(!read(&a, ALICE, H1, "t1"));
}

#[test]
fn wildcard_principal_matches_every_principal() {
    // StandardAuthorizerData.matchingPrincipals: the principal itself and User:*, whatever
    // the principal's type. Only User:* is a wildcard.
    let a = with(&["TOPIC t LITERAL User:* * READ ALLOW"]);
    assert!(read(&a, ALICE, H1, "t"));
    assert!(read(&a, "Group:devs", H1, "t"));
    let a = with(&["TOPIC t LITERAL Group:* * READ ALLOW"]);
    assert!(!read(&a, "Group:devs", H1, "t"));
    assert!(read(&a, "Group:*", H1, "t"));
    // Principals compare whole, case included.
    let a = with(&["TOPIC t LITERAL User:alice * READ ALLOW"]);
    assert!(!read(&a, "User:Alice", H1, "t") && !read(&a, "Group:alice", H1, "t"));
}

#[test]
fn wildcard_resource() {
    // AuthorizerTest.testWildCardAcls
    let mut a = with(&["TOPIC * LITERAL User:alice 10.0.0.1 READ ALLOW"]);
    assert!(read(&a, ALICE, H1, "foo"));
    assert!(read(&a, ALICE, H1, "*"));
    add(&mut a, "TOPIC foo LITERAL User:alice 10.0.0.1 WRITE ALLOW");
    assert!(a.authorize(ALICE, H1, Write, Topic, "foo"));
    add(&mut a, "TOPIC * LITERAL User:alice 10.0.0.1 WRITE DENY");
    assert!(!a.authorize(ALICE, H1, Write, Topic, "foo"));
    // A wildcard is per resource type, and PREFIXED `*` is an ordinary prefix.
    assert!(!a.authorize(ALICE, H1, Read, Group, "foo"));
    let a = with(&["TOPIC * PREFIXED User:* * READ ALLOW"]);
    assert!(!read(&a, ALICE, H1, "foo"));
    assert!(read(&a, ALICE, H1, "*foo"));
}

#[test]
fn prefixed_patterns() {
    // AuthorizerTest.testAuthorizeWithPrefixedResource and testSingleCharacterResourceAcls
    let mut a = with(&[]);
    for pattern in [
        "a_other LITERAL",
        "a_other PREFIXED",
        "foo-1234 PREFIXED",
        "foo-5678-zzz PREFIXED",
        "fooo- PREFIXED",
        "fo- PREFIXED",
        "fop- PREFIXED",
        "fon- PREFIXED",
        "z_other PREFIXED",
        "z_other LITERAL",
    ] {
        add(&mut a, &format!("TOPIC {pattern} User:* * READ DENY"));
    }
    add(&mut a, "TOPIC foo PREFIXED User:* * READ ALLOW");
    assert!(read(&a, ALICE, H1, "foo-9999"));
    assert!(!read(&a, ALICE, H1, "foo-1234-x"));

    let mut a = with(&["TOPIC f LITERAL User:* * READ ALLOW"]);
    assert!(read(&a, ALICE, H1, "f"));
    assert!(!read(&a, ALICE, H1, "foo"), "LITERAL is no prefix");
    add(&mut a, "TOPIC _ PREFIXED User:* * READ ALLOW");
    assert!(read(&a, ALICE, H1, "_foo") && read(&a, ALICE, H1, "_"));
    assert!(!read(&a, ALICE, H1, "foo_"));
    // Prefixes are whole characters.
    let a = with(&["TOPIC é PREFIXED User:* * READ ALLOW"]);
    assert!(read(&a, ALICE, H1, "été"));
}

#[test]
fn hosts_are_written_as_java_does() {
    let host = |s: &str| host_string(s.parse().unwrap());
    assert_eq!(host("192.168.1.1"), "192.168.1.1");
    assert_eq!(host("::1"), "0:0:0:0:0:0:0:1");
    assert_eq!(host("fe80::1:AB"), "fe80:0:0:0:0:0:1:ab");
    assert_eq!(host("::ffff:10.0.0.1"), "10.0.0.1");
}

#[test]
fn host_must_equal_or_be_wildcard() {
    let a = with(&["TOPIC t LITERAL User:alice 10.0.0.1 READ ALLOW"]);
    assert!(read(&a, ALICE, H1, "t"));
    assert!(!read(&a, ALICE, H2, "t"));
    assert!(!read(&a, ALICE, "10.0.0.10", "t"));
    let a = with(&["TOPIC t LITERAL User:alice * READ ALLOW"]);
    assert!(read(&a, ALICE, H2, "t"));
}

/// The operations a lone ACL of `op` and `perm` on the cluster decides on, beside an ALLOW
/// ALL for a DENY (AuthorizerTest.testImplicationsOfAllow/Deny).
fn implied(op: &str, perm: &str) -> Vec<AclOperation> {
    let spec = format!("CLUSTER kafka-cluster LITERAL User:a * {op} {perm}");
    let mut a = with(&[&spec]);
    if perm == "DENY" {
        add(&mut a, "CLUSTER kafka-cluster LITERAL User:a * ALL ALLOW");
    }
    let decided = |o: AclOperation| a.authorize("User:a", H1, o, Cluster, CLUSTER_NAME);
    let concrete = AclOperation::VALUES.iter().copied().filter(|o| *o > All);
    concrete
        .filter(|&o| decided(o) == (perm == "ALLOW"))
        .collect()
}

#[test]
fn implied_operations_apply_to_allow_only() {
    // AuthorizerTest.testAclInheritance
    let every: Vec<AclOperation> = AclOperation::VALUES[3..].to_vec();
    assert_eq!(implied("ALL", "ALLOW"), every);
    assert_eq!(implied("ALL", "DENY"), every);
    for op in [Read, Write, Delete, Alter] {
        assert_eq!(implied(op.name(), "ALLOW"), [op, Describe], "ALLOW {op}");
    }
    let alter_configs = implied("ALTER_CONFIGS", "ALLOW");
    assert_eq!(alter_configs, [DescribeConfigs, AlterConfigs]);
    assert_eq!(implied("CREATE", "ALLOW"), [Create]);
    assert_eq!(implied("IDEMPOTENT_WRITE", "ALLOW"), [IdempotentWrite]);
    assert_eq!(implied("DESCRIBE", "DENY"), [Describe]);
    assert_eq!(implied("DESCRIBE_CONFIGS", "DENY"), [DescribeConfigs]);
    // A DENY of READ does not deny DESCRIBE, nor one of DESCRIBE READ.
    assert_eq!(implied("READ", "DENY"), [Read]);
    let a = with(&[
        "TOPIC t LITERAL User:* * ALL ALLOW",
        "TOPIC t LITERAL User:* * DESCRIBE DENY",
    ]);
    assert!(read(&a, ALICE, H1, "t"));
    assert!(!a.authorize(ALICE, H1, Describe, Topic, "t"));
}

#[test]
fn super_users_may_do_anything() {
    // AuthorizerTest.testSuperUserHasAccess; configs "User:superuser1; User:superuser2"
    let users = parse_super_users(" User:superuser1; User:superuser2 ;;").unwrap();
    assert_eq!(users, ["User:superuser1", "User:superuser2"]);
    let mut a = Authorizer::new(users, false);
    add(&mut a, "TOPIC * LITERAL User:* * ALL DENY");
    assert!(read(&a, "User:superuser1", H1, "t") && read(&a, "User:superuser2", H1, "t"));
    assert!(!read(&a, ALICE, H1, "t"));
    assert!(a.authorize("User:superuser1", H1, Alter, Cluster, CLUSTER_NAME));
    let refused = parse_super_users("User:a;bob").unwrap_err();
    let expected = "expected a string in format principalType:principalName but got bob";
    assert_eq!(refused, expected);
    assert!(parse_allow_everyone_if_no_acl_found(" TRUE "));
    assert!(!parse_allow_everyone_if_no_acl_found("yes"));
}

#[test]
fn allow_everyone_if_no_acl_found() {
    // AuthorizerTest.testNoAclFound / testNoAclFoundOverride
    let mut a = with(&[]);
    assert!(!read(&a, ALICE, H1, "t"));
    a.allow_everyone_if_no_acl_found = true;
    assert!(read(&a, ALICE, H1, "t"));
    // "No ACL found" is about the resource, whoever the ACLs are for.
    add(&mut a, "TOPIC t LITERAL User:bob * READ ALLOW");
    assert!(!read(&a, ALICE, H1, "t"));
    assert!(read(&a, ALICE, H1, "u"));
    assert!(a.authorize(ALICE, H1, Read, Group, "t"));
    // Prefixed and wildcard ACLs count as ACLs of the resource.
    add(&mut a, "TOPIC u PREFIXED User:bob 10.0.0.2 WRITE DENY");
    assert!(!read(&a, ALICE, H1, "u1"));
    add(&mut a, "GROUP * LITERAL User:bob * READ ALLOW");
    assert!(!a.authorize(ALICE, H1, Read, Group, "t"));
    // ACLs that apply but do not match deny even when allowing everyone.
    let mut a = with(&["TOPIC t LITERAL User:alice * WRITE ALLOW"]);
    a.allow_everyone_if_no_acl_found = true;
    assert!(!read(&a, ALICE, H1, "t"));
}

/// `authorize_any` for user1 from host1.
fn any(a: &Authorizer, op: AclOperation, rt: ResourceType) -> bool {
    a.authorize_any("User:user1", H1, op, rt)
}

/// An ACL of user1 (`"TYPE name PATTERN host OPERATION PERMISSION"`).
fn u1(spec: &str) -> AclBinding {
    let (resource, entry) = spec.split_at(spec.match_indices(' ').nth(2).unwrap().0);
    acl(&format!("{resource} User:user1{entry}"))
}

fn with_u1(specs: &[&str]) -> Authorizer {
    let mut a = with(&[]);
    specs.iter().for_each(|s| assert!(a.add(u1(s))));
    a
}

#[test]
fn authorize_any_deny_and_isolation() {
    // AuthorizerTest.testAuthorizeByResourceTypeMultipleAddAndRemove / DenyTakesPrecedence
    let allow = u1("TOPIC sb1 LITERAL 10.0.0.1 READ ALLOW");
    let deny = u1("TOPIC sb1 LITERAL 10.0.0.1 READ DENY");
    let mut a = with(&[]);
    assert!(!any(&a, Read, Topic));
    a.add(allow.clone());
    assert!(any(&a, Read, Topic));
    a.add(deny.clone());
    assert!(!any(&a, Read, Topic));
    a.remove(&deny);
    assert!(any(&a, Read, Topic));
    a.remove(&allow);
    assert!(!any(&a, Read, Topic));

    // ...IsolationUnrelatedDenyWontDominateAllow
    let mut a = with(&[
        "TOPIC sb1 LITERAL User:user2 10.0.0.1 READ DENY",
        "TOPIC sb1 LITERAL User:user2 10.0.0.2 READ DENY",
    ]);
    for spec in [
        "TOPIC sb1 LITERAL 10.0.0.1 READ DENY",
        "TOPIC sb1 LITERAL 10.0.0.2 WRITE DENY",
        "TOPIC sb1 LITERAL 10.0.0.2 READ ALLOW",
        "TOPIC sb2 LITERAL 10.0.0.2 READ DENY",
        "GROUP s PREFIXED 10.0.0.2 READ DENY",
    ] {
        a.add(u1(spec));
    }
    assert!(!any(&a, Read, Topic) && !any(&a, Read, Group));
    assert!(!any(&a, Read, TransactionalId) && !any(&a, Read, Cluster));
    assert!(a.authorize_any("User:user1", H2, Read, Topic));
}

#[test]
fn authorize_any_prefix_and_wildcard_denies_dominate() {
    // AuthorizerTest.testAuthorizeByResourceTypePrefixedResourceDenyDominate
    let mut a = with_u1(&["GROUP abcde PREFIXED 10.0.0.1 READ ALLOW"]);
    assert!(any(&a, Read, Group));
    a.add(u1("GROUP abcd PREFIXED 10.0.0.1 READ DENY"));
    assert!(!any(&a, Read, Group));
    a.add(u1("GROUP abc PREFIXED 10.0.0.1 READ ALLOW"));
    assert!(any(&a, Read, Group));
    a.add(u1("GROUP a PREFIXED 10.0.0.1 READ DENY"));
    assert!(!any(&a, Read, Group));
    a.add(u1("GROUP ab PREFIXED 10.0.0.1 READ ALLOW"));
    assert!(!any(&a, Read, Group));

    // ...WildcardResourceDenyDominate
    let mut a = with_u1(&["GROUP hello PREFIXED 10.0.0.1 WRITE ALLOW"]);
    assert!(any(&a, Write, Group));
    a.add(u1("GROUP * LITERAL 10.0.0.1 WRITE DENY"));
    assert!(!any(&a, Write, Group));
    a.add(u1("GROUP * LITERAL 10.0.0.1 WRITE ALLOW"));
    a.add(u1("GROUP aloha LITERAL 10.0.0.1 WRITE ALLOW"));
    assert!(!any(&a, Write, Group));

    // A LITERAL deny cancels only the same LITERAL allow, not a PREFIXED one.
    let read_any = |specs: &[&str]| any(&with_u1(specs), Read, Topic);
    let (deny_x, deny_x_prefix) = (
        "TOPIC x LITERAL * READ DENY",
        "TOPIC x PREFIXED * READ DENY",
    );
    assert!(!read_any(&["TOPIC x LITERAL * READ ALLOW", deny_x]));
    assert!(read_any(&["TOPIC x PREFIXED * READ ALLOW", deny_x]));
    assert!(!read_any(&["TOPIC xy LITERAL * READ ALLOW", deny_x_prefix]));
}

#[test]
fn authorize_any_all_operation_host_and_principal() {
    // ...WithAllOperationAce
    let mut a = with_u1(&[
        "TOPIC sb1 LITERAL * WRITE DENY",
        "TOPIC sb1 LITERAL * ALL ALLOW",
    ]);
    assert!(any(&a, Read, Topic));
    a.add(u1("TOPIC sb1 LITERAL * ALL DENY"));
    assert!(!any(&a, Read, Topic));
    // ...WithAllHostAce
    let mut a = with_u1(&["TOPIC sb1 LITERAL 10.0.0.1 READ ALLOW"]);
    assert!(any(&a, Read, Topic));
    a.add(u1("TOPIC sb1 LITERAL * READ DENY"));
    assert!(!any(&a, Read, Topic));
    a.add(u1("TOPIC sb2 LITERAL * READ ALLOW"));
    assert!(a.authorize_any("User:user1", H2, Read, Topic));
    // ...WithAllPrincipalAce
    let mut a = with_u1(&["TOPIC sb1 LITERAL 10.0.0.1 READ ALLOW"]);
    add(&mut a, "TOPIC sb1 LITERAL User:* 10.0.0.1 READ DENY");
    assert!(!any(&a, Read, Topic));
    add(&mut a, "TOPIC sb2 LITERAL User:* 10.0.0.1 READ ALLOW");
    assert!(a.authorize_any("User:user2", H1, Read, Topic));
    // No implied operations: ALLOW READ is no DESCRIBE of some topic.
    let a = with_u1(&["TOPIC t LITERAL * READ ALLOW"]);
    assert!(!any(&a, Describe, Topic));
}

#[test]
fn authorize_any_super_user_hardcode_and_bad_arguments() {
    // ...SuperUserHasAccess
    let mut a = with(&[]);
    for rt in ["TOPIC", "CLUSTER", "GROUP", "TRANSACTIONAL_ID"] {
        add(&mut a, &format!("{rt} * LITERAL User:* * ALL DENY"));
    }
    for rt in [Topic, Cluster, Group, TransactionalId] {
        assert!(a.authorize_any("User:superuser1", H1, Read, rt));
        assert!(!any(&a, Read, rt));
    }
    // The first check is authorize() on a resource named "hardcode": with
    // allow.everyone.if.no.acl.found, no ACL on that name allows, whatever else denies.
    let mut a = with_u1(&["TOPIC x LITERAL * IDEMPOTENT_WRITE DENY"]);
    assert!(!any(&a, IdempotentWrite, Topic));
    a.allow_everyone_if_no_acl_found = true;
    assert!(any(&a, IdempotentWrite, Topic));
    a.add(u1("TOPIC hard PREFIXED * READ ALLOW"));
    // An ACL now applies to hardcode.
    assert!(!any(&a, IdempotentWrite, Topic));
    assert!(any(&a, Read, Topic));
    assert!(!a.authorize_any("User:superuser1", H1, Read, ResourceType::Any));
    assert!(!a.authorize_any("User:superuser1", H1, AclOperation::Any, Topic));
}

#[test]
fn authorized_operations_bitfields() {
    let bits = operations_bitfield;
    let a = with(&[
        "TOPIC t LITERAL User:alice * READ ALLOW",
        "TOPIC t LITERAL User:alice * ALTER_CONFIGS ALLOW",
        "GROUP g PREFIXED User:alice * ALL ALLOW",
        "GROUP g LITERAL User:alice * DELETE DENY",
        "CLUSTER kafka-cluster LITERAL User:alice * IDEMPOTENT_WRITE ALLOW",
        "TRANSACTIONAL_ID tx LITERAL User:alice * WRITE ALLOW",
        "TRANSACTIONAL_ID tx LITERAL User:alice * TWO_PHASE_COMMIT ALLOW",
    ]);
    let ops = |rt, name| a.authorized_operations(ALICE, H1, rt, name);
    let topic = bits(&[Read, Describe, AlterConfigs, DescribeConfigs]);
    assert_eq!(topic, 1 << 3 | 1 << 8 | 1 << 10 | 1 << 11);
    assert_eq!(ops(Topic, "t"), topic);
    assert_eq!(ops(Topic, "other"), 0);
    let group = bits(&[Read, Describe, DescribeConfigs, AlterConfigs]);
    assert_eq!(ops(Group, "g"), group);
    assert_eq!(ops(Cluster, CLUSTER_NAME), bits(&[IdempotentWrite]));
    // Kafka's set for transactional ids is DESCRIBE and WRITE only.
    assert_eq!(ops(TransactionalId, "tx"), bits(&[Write, Describe]));
    assert_eq!(ops(ResourceType::Any, "t"), 0);
    let su = a.authorized_operations("User:superuser1", H1, Cluster, CLUSTER_NAME);
    assert_eq!(su, bits(Cluster.supported_operations()));
    assert_eq!(su, 0b1_1111_1010_0000);
    let mut open = with(&[]);
    open.allow_everyone_if_no_acl_found = true;
    let everything = open.authorized_operations(ALICE, H1, ResourceType::User, "bob");
    assert_eq!(everything, bits(&[CreateTokens, DescribeTokens]));
}

/// A filter of a resource pattern (`"TYPE name|null PATTERN"`), any entry.
fn pattern_filter(spec: &str) -> AclBindingFilter {
    let f: Vec<&str> = spec.split(' ').collect();
    AclBindingFilter {
        resource_type: value(ResourceType::VALUES, f[0]),
        resource_name: (f[1] != "null").then(|| f[1].into()),
        pattern_type: value(PatternType::VALUES, f[2]),
        ..AclBindingFilter::ANY
    }
}

#[test]
fn filter_patterns_as_resource_pattern_filter() {
    // ResourcePatternFilterTest: filter, pattern, whether it matches.
    for (filter, pattern, expected) in [
        ("TOPIC Name LITERAL", "GROUP Name LITERAL", false),
        ("TOPIC Different PREFIXED", "TOPIC Name PREFIXED", false),
        ("TOPIC NAME LITERAL", "TOPIC Name LITERAL", false),
        ("TOPIC Name LITERAL", "TOPIC Name PREFIXED", false),
        ("ANY Name PREFIXED", "TOPIC Name PREFIXED", true),
        ("TOPIC null PREFIXED", "TOPIC Name PREFIXED", true),
        ("TOPIC null ANY", "TOPIC Name PREFIXED", true),
        ("TOPIC null MATCH", "TOPIC Name PREFIXED", true),
        ("TOPIC Name LITERAL", "TOPIC Name LITERAL", true),
        ("TOPIC Name ANY", "TOPIC Name LITERAL", true),
        ("TOPIC Name MATCH", "TOPIC Name LITERAL", true),
        ("TOPIC Name-x MATCH", "TOPIC Name LITERAL", false),
        ("TOPIC * LITERAL", "TOPIC * LITERAL", true),
        ("TOPIC Name LITERAL", "TOPIC * LITERAL", false),
        ("TOPIC * LITERAL", "TOPIC Name LITERAL", false),
        ("TOPIC Name ANY", "TOPIC * LITERAL", false),
        ("TOPIC Name MATCH", "TOPIC * LITERAL", true),
        ("TOPIC Name PREFIXED", "TOPIC Name PREFIXED", true),
        ("TOPIC Name PREFIXED", "TOPIC Name-x PREFIXED", false),
        ("TOPIC Name-x PREFIXED", "TOPIC Name PREFIXED", false),
        ("TOPIC Name-x ANY", "TOPIC Name PREFIXED", false),
        ("TOPIC Name-x MATCH", "TOPIC Name PREFIXED", true),
        ("TOPIC Name-x MATCH", "TOPIC Name-x-y PREFIXED", false),
        ("UNKNOWN null ANY", "TOPIC Name LITERAL", false),
    ] {
        let binding = acl(&format!("{pattern} User:alice * READ ALLOW"));
        assert_eq!(
            pattern_filter(filter).matches(&binding),
            expected,
            "{filter} {pattern}"
        );
    }
}

#[test]
fn filter_entries_and_definiteness() {
    let b = acl("TOPIC t LITERAL User:alice 10.0.0.1 READ ALLOW");
    assert!(AclBindingFilter::ANY.matches(&b));
    assert!(b.to_filter().matches(&b) && b.to_filter().matches_at_most_one());
    let f = |change: fn(&mut AclBindingFilter)| {
        let mut f = b.to_filter();
        change(&mut f);
        f
    };
    assert!(!f(|f| f.principal = Some("User:bob".into())).matches(&b));
    // A filter's `*` host or ALL operation is literal.
    assert!(!f(|f| f.host = Some("*".into())).matches(&b));
    assert!(!f(|f| f.operation = Write).matches(&b));
    assert!(!f(|f| f.operation = All).matches(&b));
    assert!(!f(|f| f.permission = AclPermissionType::Deny).matches(&b));
    assert!(f(|f| f.operation = AclOperation::Any).matches(&b));
    assert!(f(|f| f.permission = AclPermissionType::Any).matches(&b));
    let indefinite = |change| f(change).find_indefinite_field().unwrap_or("");
    let any_type = indefinite(|f| f.resource_type = ResourceType::Any);
    assert_eq!(any_type, "Resource type is ANY.");
    let any_name = indefinite(|f| f.resource_name = None);
    assert_eq!(any_name, "Resource name is NULL.");
    let is_match = indefinite(|f| f.pattern_type = PatternType::Match);
    assert_eq!(is_match, "Resource pattern type is MATCH.");
    assert_eq!(indefinite(|f| f.pattern_type = PatternType::Any), "");
    assert_eq!(indefinite(|f| f.principal = None), "Principal is NULL");
    let any_op = indefinite(|f| f.operation = AclOperation::Any);
    assert_eq!(any_op, "Operation is ANY");
    let unknown = indefinite(|f| f.permission = AclPermissionType::Unknown);
    assert_eq!(unknown, "Permission type is UNKNOWN");
    assert!(!AclBindingFilter::ANY.matches_at_most_one());
}

#[test]
fn describe_remove_and_iterate() {
    let specs = [
        "GROUP g LITERAL User:alice * READ ALLOW",
        "TOPIC foo PREFIXED User:* * WRITE ALLOW",
        "TOPIC foo-1 LITERAL User:* * READ ALLOW",
        "TOPIC * LITERAL User:* * DESCRIBE ALLOW",
        "TOPIC bar LITERAL User:* * READ DENY",
        "CLUSTER kafka-cluster LITERAL User:alice * ALTER ALLOW",
    ];
    let mut a = with(&specs);
    let acls = |indexes: &[usize]| indexes.iter().map(|&i| acl(specs[i])).collect::<Vec<_>>();
    assert!(!a.add(acl(specs[1])), "already there");
    assert_eq!(a.len(), 6);
    // Type order (TOPIC, GROUP, CLUSTER), LITERAL before PREFIXED, then by name.
    let all: Vec<AclBinding> = a.iter().cloned().collect();
    assert_eq!(all, acls(&[3, 4, 2, 1, 0, 5]));
    assert_eq!(a.describe(&AclBindingFilter::ANY), all);
    // DescribeAcls with MATCH: every ACL that applies to topic foo-1.
    let on_foo_1 = pattern_filter("TOPIC foo-1 MATCH");
    assert_eq!(a.describe(&on_foo_1), acls(&[3, 2, 1]));
    let by_alice = AclBindingFilter {
        principal: Some(ALICE.into()),
        ..AclBindingFilter::ANY
    };
    assert_eq!(a.describe(&by_alice), acls(&[0, 5]));

    let removed = a.remove_matching(&pattern_filter("TOPIC null ANY"));
    assert_eq!(removed, acls(&[3, 4, 2, 1]));
    assert_eq!(a.len(), 2);
    assert!(!read(&a, ALICE, H1, "foo-1"));
    let topics = pattern_filter("TOPIC null ANY");
    assert!(a.remove_matching(&topics).is_empty());
    assert!(a.remove(&acl(specs[5])) && !a.remove(&acl(specs[5])));
    assert_eq!(a.iter().cloned().collect::<Vec<_>>(), acls(&[0]));
    // Not a pattern type an ACL can have.
    assert!(!a.add(acl("TOPIC t MATCH User:alice * READ ALLOW")));
    assert_eq!(a.len(), 1);
}

#[test]
fn many_prefixed_acls_are_looked_up_not_scanned() {
    let mut a = with(&[]);
    for i in 0..20_000 {
        add(
            &mut a,
            &format!("TOPIC team-{i}- PREFIXED User:alice * READ ALLOW"),
        );
    }
    add(&mut a, "TOPIC team-7-secret LITERAL User:alice * READ DENY");
    for i in 0..20_000 {
        assert!(read(&a, ALICE, H1, &format!("team-{i}-orders")));
    }
    assert!(!read(&a, ALICE, H1, "team-7-secret") && !read(&a, ALICE, H1, "team-x"));
}

#[test]
fn validation_refusals_are_kafkas() {
    let refusal = |spec: &str| {
        let e = validate_binding(&acl(spec)).unwrap_err();
        assert_eq!(e.error(), ResponseError::InvalidRequest, "{spec}");
        e.to_string()
    };
    let fine = acl("TOPIC t PREFIXED User:alice * READ ALLOW");
    assert_eq!(validate_binding(&fine), Ok(()));
    let cluster = acl("CLUSTER kafka-cluster LITERAL User:* 10.0.0.1 ALL DENY");
    assert_eq!(validate_binding(&cluster), Ok(()));
    // ACL => refusal
    for case in [
        "CLUSTER c LITERAL User:a * ALTER ALLOW => \
         The only valid name for the CLUSTER resource is kafka-cluster",
        "TOPIC '' LITERAL User:a * READ ALLOW => Invalid empty resource name",
        "ANY t LITERAL User:a * READ ALLOW => Invalid resourceType ANY",
        "UNKNOWN t LITERAL User:a * READ ALLOW => Invalid resourceType UNKNOWN",
        "TOPIC t MATCH User:a * READ ALLOW => Invalid patternType MATCH",
        "TOPIC t ANY User:a * READ ALLOW => Invalid patternType ANY",
        "TOPIC t LITERAL User:a * ANY ALLOW => Invalid operation ANY",
        "TOPIC t LITERAL User:a * UNKNOWN ALLOW => Invalid operation UNKNOWN",
        "TOPIC t LITERAL User:a * READ ANY => Invalid permissionType ANY",
        "TOPIC t LITERAL alice * READ ALLOW => Could not parse principal from `alice` \
         (no colon is present separating the principal type from the principal name)",
    ] {
        let (spec, message) = case.split_once(" => ").unwrap();
        assert_eq!(refusal(spec), message);
    }
    // Kafka checks neither hosts nor whether the operation applies to the resource type.
    let odd = acl("GROUP g LITERAL User:alice some-host IDEMPOTENT_WRITE ALLOW");
    assert_eq!(validate_binding(&odd), Ok(()));

    assert_eq!(validate_filter(&AclBindingFilter::ANY), Ok(()));
    let refused = |f: AclBindingFilter| validate_filter(&f).unwrap_err().to_string();
    let unknown_type = pattern_filter("UNKNOWN null ANY");
    assert_eq!(refused(unknown_type), "Unknown patternFilter.");
    let bad_entry = AclBindingFilter {
        operation: AclOperation::Unknown,
        ..AclBindingFilter::ANY
    };
    assert_eq!(refused(bad_entry), "Unknown entryFilter.");
}

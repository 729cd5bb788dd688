//! The evaluator on AWS's documented examples: the SQS Developer Guide's "Basic examples of
//! Amazon SQS policies" and "Custom Amazon SQS Access Policy Language examples"
//! (docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-basic-examples-of-sqs-policies.html,
//! …/sqs-creating-custom-policies-access-policy-examples.html), and IAM's "Policy evaluation logic"
//! (docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html).

use super::matching::{glob, Cidr};
use super::*;

const OWNER: &str = "444455556666";
const QUEUE: &str = "arn:aws:sqs:us-east-2:444455556666:queue2";
const OTHER: &str = "111122223333";

fn req<'a>(account: &'a str, arn: &'a str, action: &'a str) -> Request<'a> {
    Request {
        principal: Principal::Aws { account, arn },
        action,
        resource: QUEUE,
        resource_account: OWNER,
        source_arn: None,
        source_account: None,
        secure_transport: Some(true),
        source_ip: Some("10.1.2.3".parse().unwrap()),
        now_ms: 1_700_000_000_000,
    }
}

fn other(action: &str) -> Request<'_> {
    req(OTHER, "arn:aws:iam::111122223333:user/bob", action)
}

fn p(json: &str) -> Policy {
    Policy::parse(json).unwrap_or_else(|e| panic!("{e}: {json}"))
}

#[test]
fn wildcards() {
    assert!(glob(b"sqs:send*", b"SQS:SendMessage", true));
    assert!(glob(b"sqs:*", b"sqs:PurgeQueue", true));
    assert!(glob(b"*", b"sqs:PurgeQueue", true));
    assert!(glob(b"sqs:?urgeQueue", b"sqs:PurgeQueue", true));
    assert!(!glob(b"sqs:send*", b"sqs:ReceiveMessage", true));
    assert!(!glob(b"sns:*", b"sqs:SendMessage", true));
    assert!(glob(b"arn:aws:sqs:*:444455556666:queue*", QUEUE.as_bytes(), false));
    assert!(!glob(b"arn:aws:sqs:*:444455556666:Queue*", QUEUE.as_bytes(), false), "ARNs are case-sensitive");
    assert!(glob(b"a*b*c*d", b"aXXbYYcZZd", false));
    assert!(!glob(b"a*b*c*d", b"aXXbYYcZZ", false));
    assert!(glob(b"", b"", false) && !glob(b"", b"x", false));
}

#[test]
fn cidrs_v4_v6_and_mapped() {
    let c = Cidr::parse("192.0.2.0/24").unwrap();
    assert!(c.contains("192.0.2.200".parse().unwrap()));
    assert!(!c.contains("192.0.3.1".parse().unwrap()));
    assert!(c.contains("::ffff:192.0.2.9".parse().unwrap()), "IPv4-mapped IPv6 peers compare as IPv4");
    let v6 = Cidr::parse("2001:db8::/32").unwrap();
    assert!(v6.contains("2001:db8:1::7".parse().unwrap()));
    assert!(!v6.contains("2001:db9::1".parse().unwrap()));
    assert!(Cidr::parse("0.0.0.0/0").unwrap().contains("8.8.8.8".parse().unwrap()));
    assert!(Cidr::parse("127.0.0.1").unwrap().contains("127.0.0.1".parse().unwrap()));
    assert!(Cidr::parse("10.0.0.0/33").is_none() && Cidr::parse("nope/8").is_none());
}

#[test]
fn dates() {
    assert_eq!(parse_date("1970-01-01T00:00:00Z"), Some(0));
    assert_eq!(parse_date("2009-01-31T12:00Z"), Some(1_233_403_200_000), "AWS's examples omit the seconds");
    assert_eq!(parse_date("2009-01-31"), Some(1_233_360_000_000));
    assert_eq!(parse_date("2009-01-31T14:00:00+02:00"), Some(1_233_403_200_000));
    assert_eq!(parse_date("2009-01-31T12:00:00.5Z"), Some(1_233_403_200_500));
    assert_eq!(parse_date("1233403200"), Some(1_233_403_200_000), "epoch seconds");
    assert_eq!(parse_date("yesterday"), None);
    assert_eq!(format_iso(1_233_403_200_000), "2009-01-31T12:00:00Z");
}

/// Basic example 1: all actions to one account (`SQS:*`, the account as a bare id).
#[test]
fn grant_one_account_all_actions() {
    let policy = p(r#"{"Version":"2012-10-17","Id":"Queue1_Policy_UUID","Statement":[{"Sid":"Queue1_AllActions",
        "Effect":"Allow","Principal":{"AWS":["arn:aws:iam::111122223333:role/role1","arn:aws:iam::111122223333:user/username1"]},
        "Action":"sqs:*","Resource":"arn:aws:sqs:us-east-2:444455556666:queue2"}]}"#);
    let role = req(OTHER, "arn:aws:iam::111122223333:role/role1", "sqs:PurgeQueue");
    assert_eq!(policy.evaluate(&role), Decision::Allow);
    assert_eq!(policy.evaluate(&other("sqs:PurgeQueue")), Decision::NotApplicable, "bob is not listed");
    assert_eq!(authorize(None, Some(&policy), &role), Ok(()));
    assert_eq!(authorize(None, Some(&policy), &other("sqs:SendMessage")), Err(Denial::NoResourceAllow));
}

/// Example 1 of the custom policies: one account may send and receive (AddPermission's shape:
/// `arn:aws:iam::ACCOUNT:root`, `SQS:` prefix).
#[test]
fn grant_one_account_send_and_receive() {
    let policy = p(r#"{"Version":"2012-10-17","Id":"UseCase1","Statement":[{"Sid":"1","Effect":"Allow",
        "Principal":{"AWS":["111122223333"]},"Action":["sqs:SendMessage","sqs:ReceiveMessage"],
        "Resource":"arn:aws:sqs:us-east-2:444455556666:queue2"}]}"#);
    assert_eq!(authorize(None, Some(&policy), &other("sqs:SendMessage")), Ok(()));
    assert_eq!(authorize(None, Some(&policy), &other("SQS:RECEIVEMESSAGE")), Ok(()), "actions ignore case");
    assert_eq!(authorize(None, Some(&policy), &other("sqs:PurgeQueue")), Err(Denial::NoResourceAllow));
    let add_permission = p(
        r#"{"Version":"2008-10-17","Id":"x/SQSDefaultPolicy","Statement":[{"Sid":"l","Effect":"Allow",
        "Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":"SQS:SendMessage","Resource":"arn:aws:sqs:us-east-2:444455556666:queue2"}]}"#,
    );
    assert_eq!(authorize(None, Some(&add_permission), &other("sqs:SendMessage")), Ok(()));
    assert_eq!(authorize(None, Some(&add_permission), &other("sqs:PurgeQueue")), Err(Denial::NoResourceAllow));
}

/// Cross-account grants never cover the owner-only actions (SQS's custom policy limitations).
#[test]
fn owner_only_actions_stay_denied_across_accounts() {
    let everything = p(r#"{"Statement":[{"Effect":"Allow","Principal":"*","Action":"sqs:*","Resource":"*"}]}"#);
    for action in
        ["sqs:SetQueueAttributes", "sqs:DeleteQueue", "sqs:AddPermission", "sqs:TagQueue", "sqs:ListQueueTags"]
    {
        assert_eq!(authorize(None, Some(&everything), &other(action)), Err(Denial::NoResourceAllow), "{action}");
    }
    assert_eq!(authorize(None, Some(&everything), &other("sqs:ReceiveMessage")), Ok(()));
}

/// Example 3 (basic): everyone may receive (Principal "*"); an identity policy does not stop an
/// allow of another account's queue policy from needing the identity's allow too.
#[test]
fn grant_everyone_and_identity_policies_across_accounts() {
    let policy = p(
        r#"{"Statement":[{"Effect":"Allow","Principal":"*","Action":"sqs:ReceiveMessage","Resource":"arn:aws:sqs:*:444455556666:queue*"}]}"#,
    );
    assert_eq!(authorize(None, Some(&policy), &other("sqs:ReceiveMessage")), Ok(()));
    let send_only =
        p(r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"sqs:SendMessage","Resource":"*"}]}"#);
    assert_eq!(
        authorize(Some(&send_only), Some(&policy), &other("sqs:ReceiveMessage")),
        Err(Denial::NoIdentityAllow),
        "across accounts both the identity and the resource policy must allow"
    );
}

/// Same account: the identity policy or the queue policy may allow; none: denied.
#[test]
fn same_account_identity_or_resource() {
    let alice = req(OWNER, "arn:aws:iam::444455556666:user/alice", "sqs:SendMessage");
    let nothing = p(r#"{"Version":"2012-10-17","Statement":[]}"#);
    assert_eq!(authorize(None, None, &alice), Ok(()), "no identity policy: the account's full access");
    assert_eq!(authorize(Some(&nothing), None, &alice), Err(Denial::NoIdentityAllow));
    let names_alice = p(
        r#"{"Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::444455556666:user/alice"},"Action":"sqs:SendMessage","Resource":"arn:aws:sqs:us-east-2:444455556666:queue2"}]}"#,
    );
    assert_eq!(authorize(Some(&nothing), Some(&names_alice), &alice), Ok(()));
    let own_account =
        p(r#"{"Statement":[{"Effect":"Allow","Action":"sqs:*","Resource":"arn:aws:sqs:*:444455556666:*"}]}"#);
    assert_eq!(authorize(Some(&own_account), None, &alice), Ok(()));
    let elsewhere =
        Request { resource: "arn:aws:sqs:us-east-2:999999999999:q", resource_account: "999999999999", ..alice };
    assert_eq!(authorize(Some(&own_account), None, &elsewhere), Err(Denial::NoResourceAllow));
}

/// An explicit deny wins over every allow, in either policy (IAM evaluation logic).
#[test]
fn explicit_deny_wins() {
    let deny_all = p(
        r#"{"Statement":[{"Effect":"Allow","Principal":"*","Action":"*"},{"Effect":"Deny","Principal":"*","Action":"sqs:*","Resource":"*"}]}"#,
    );
    let owner = req(OWNER, "arn:aws:iam::444455556666:root", "sqs:SendMessage");
    assert_eq!(authorize(None, Some(&deny_all), &owner), Err(Denial::ExplicitResource));
    let deny_send = p(
        r#"{"Statement":[{"Effect":"Allow","Action":"*","Resource":"*"},{"Effect":"Deny","Action":"sqs:Send*","Resource":"*"}]}"#,
    );
    assert_eq!(authorize(Some(&deny_send), None, &owner), Err(Denial::ExplicitIdentity));
    assert_eq!(authorize(Some(&deny_send), None, &Request { action: "sqs:ReceiveMessage", ..owner }), Ok(()));
    // NotAction: deny everything except receiving.
    let not_action =
        p(r#"{"Statement":[{"Effect":"Deny","Principal":"*","NotAction":"sqs:ReceiveMessage","Resource":"*"}]}"#);
    assert_eq!(authorize(None, Some(&not_action), &owner), Err(Denial::ExplicitResource));
    assert_eq!(authorize(None, Some(&not_action), &Request { action: "sqs:ReceiveMessage", ..owner }), Ok(()));
}

/// Basic example 4: one account may send within a time window (aws:CurrentTime).
#[test]
fn time_window() {
    let policy = p(r#"{"Version":"2012-10-17","Id":"Queue1_Policy_UUID","Statement":[{"Sid":"Queue1_Send_Receive",
        "Effect":"Allow","Principal":{"AWS":["111122223333"]},"Action":"sqs:SendMessage","Resource":"arn:aws:sqs:*:444455556666:queue2",
        "Condition":{"DateGreaterThan":{"aws:CurrentTime":"2009-01-31T12:00Z"},"DateLessThan":{"aws:CurrentTime":"2009-01-31T15:00Z"}}}]}"#);
    let at = |iso: &str| Request { now_ms: parse_date(iso).unwrap() as u64, ..other("sqs:SendMessage") };
    assert_eq!(policy.evaluate(&at("2009-01-31T13:00:00Z")), Decision::Allow);
    assert_eq!(policy.evaluate(&at("2009-01-31T16:00:00Z")), Decision::NotApplicable);
    assert_eq!(policy.evaluate(&at("2009-01-31T11:59:59Z")), Decision::NotApplicable);
}

/// Basic examples 5 and 6: by source address, an allowed range with a denied hole.
#[test]
fn source_ip_ranges() {
    let policy = p(r#"{"Version":"2012-10-17","Id":"Queue1_Policy_UUID","Statement":[
        {"Sid":"Queue1_AnonymousAccess_ReceiveMessage_IPLimit","Effect":"Allow","Principal":"*","Action":"sqs:ReceiveMessage",
         "Resource":"arn:aws:sqs:*:444455556666:queue2","Condition":{"IpAddress":{"aws:SourceIp":"192.0.2.0/24"}}},
        {"Sid":"Queue1_AnonymousAccess_ReceiveMessage_IPRestriction","Effect":"Deny","Principal":"*","Action":"sqs:ReceiveMessage",
         "Resource":"arn:aws:sqs:*:444455556666:queue2","Condition":{"IpAddress":{"aws:SourceIp":["192.0.2.128/26","2001:db8::/32"]}}}]}"#);
    let from = |ip: &str| Request { source_ip: Some(ip.parse().unwrap()), ..other("sqs:ReceiveMessage") };
    assert_eq!(policy.evaluate(&from("192.0.2.10")), Decision::Allow);
    assert_eq!(policy.evaluate(&from("192.0.2.130")), Decision::Deny);
    assert_eq!(policy.evaluate(&from("2001:db8::5")), Decision::Deny);
    assert_eq!(policy.evaluate(&from("198.51.100.1")), Decision::NotApplicable);
    let outside = p(
        r#"{"Statement":[{"Effect":"Deny","Principal":"*","Action":"*","Condition":{"NotIpAddress":{"aws:SourceIp":["127.0.0.0/8","::1"]}}}]}"#,
    );
    assert_eq!(outside.evaluate(&from("127.0.0.1")), Decision::NotApplicable);
    assert_eq!(outside.evaluate(&from("::1")), Decision::NotApplicable);
    assert_eq!(outside.evaluate(&from("203.0.113.9")), Decision::Deny);
}

/// The common "enforce TLS" statement (Deny when aws:SecureTransport is false).
#[test]
fn secure_transport() {
    let policy = p(
        r#"{"Statement":[{"Effect":"Deny","Principal":"*","Action":"sqs:*","Resource":"*","Condition":{"Bool":{"aws:SecureTransport":"false"}}}]}"#,
    );
    let owner = req(OWNER, "arn:aws:iam::444455556666:root", "sqs:SendMessage");
    assert_eq!(authorize(None, Some(&policy), &owner), Ok(()));
    let plain = Request { secure_transport: Some(false), ..owner };
    assert_eq!(authorize(None, Some(&policy), &plain), Err(Denial::ExplicitResource));
    let absent = Request { secure_transport: None, ..owner };
    assert_eq!(policy.evaluate(&absent), Decision::NotApplicable, "a missing key fails a non-negated condition");
}

/// The SNS → SQS statement AWS documents ("Subscribing an Amazon SQS queue to an Amazon SNS topic").
#[test]
fn sns_service_principal_with_source_arn() {
    let topic = "arn:aws:sns:us-east-2:444455556666:MyTopic";
    let policy =
        p(r#"{"Statement":[{"Sid":"topic-subscription","Effect":"Allow","Principal":{"Service":"sns.amazonaws.com"},
        "Action":"sqs:SendMessage","Resource":"arn:aws:sqs:us-east-2:444455556666:queue2",
        "Condition":{"ArnEquals":{"aws:SourceArn":"arn:aws:sns:us-east-2:444455556666:MyTopic"}}}]}"#);
    let delivery = |source: &'static str| Request {
        principal: Principal::Service("sns.amazonaws.com"),
        source_arn: Some(source),
        source_account: Some(OWNER),
        ..req(OWNER, "", "sqs:SendMessage")
    };
    assert_eq!(authorize(None, Some(&policy), &delivery(topic)), Ok(()));
    assert_eq!(
        authorize(None, Some(&policy), &delivery("arn:aws:sns:us-east-2:444455556666:Other")),
        Err(Denial::NoResourceAllow)
    );
    assert_eq!(authorize(None, None, &delivery(topic)), Err(Denial::NoResourceAllow), "no queue policy: no delivery");
    // The older form: Principal "*" (or {"AWS": "*"}) with ArnLike on the topic, and aws:SourceAccount.
    let star = p(r#"{"Statement":[{"Effect":"Allow","Principal":{"AWS":"*"},"Action":"SQS:SendMessage","Resource":"*",
        "Condition":{"ArnLike":{"aws:SourceArn":"arn:aws:sns:*:444455556666:My*"},"StringEquals":{"aws:SourceAccount":"444455556666"}}}]}"#);
    assert_eq!(authorize(None, Some(&star), &delivery(topic)), Ok(()));
    let wrong_account = Request { source_account: Some(OTHER), ..delivery(topic) };
    assert_eq!(authorize(None, Some(&star), &wrong_account), Err(Denial::NoResourceAllow), "keys AND");
}

#[test]
fn condition_forms() {
    let bob = other("sqs:SendMessage");
    let eval = |json: &str| {
        p(&format!(r#"{{"Statement":[{{"Effect":"Allow","Principal":"*","Action":"*","Condition":{json}}}]}}"#))
            .evaluate(&bob)
    };
    // Values OR, keys AND, negated operators NOR.
    assert_eq!(eval(r#"{"StringEquals":{"aws:PrincipalAccount":["1","111122223333"]}}"#), Decision::Allow);
    assert_eq!(eval(r#"{"StringNotEquals":{"aws:PrincipalAccount":["1","111122223333"]}}"#), Decision::NotApplicable);
    assert_eq!(eval(r#"{"StringLike":{"aws:PrincipalArn":"arn:aws:iam::*:user/b?b"}}"#), Decision::Allow);
    assert_eq!(eval(r#"{"ArnNotLike":{"aws:PrincipalArn":"arn:aws:iam::*:user/alice"}}"#), Decision::Allow);
    assert_eq!(
        eval(r#"{"StringEqualsIgnoreCase":{"AWS:PRINCIPALARN":"ARN:AWS:IAM::111122223333:USER/BOB"}}"#),
        Decision::Allow
    );
    // Absent keys: false, except for negated, IfExists and Null forms.
    assert_eq!(eval(r#"{"ArnEquals":{"aws:SourceArn":"arn:aws:sns:*"}}"#), Decision::NotApplicable);
    assert_eq!(eval(r#"{"ArnEqualsIfExists":{"aws:SourceArn":"arn:aws:sns:*"}}"#), Decision::Allow);
    assert_eq!(eval(r#"{"StringNotEquals":{"aws:SourceAccount":"1"}}"#), Decision::Allow);
    assert_eq!(eval(r#"{"Null":{"aws:SourceArn":"true"}}"#), Decision::Allow);
    assert_eq!(eval(r#"{"Null":{"aws:SourceArn":false}}"#), Decision::NotApplicable);
    assert_eq!(eval(r#"{"StringEquals":{"aws:SomethingElse":"x"}}"#), Decision::NotApplicable);
    assert_eq!(eval(r#"{"NumericLessThan":{"aws:EpochTime":1800000000}}"#), Decision::Allow);
    assert_eq!(eval(r#"{"DateGreaterThanEquals":{"aws:CurrentTime":"2023-11-14T22:13:20Z"}}"#), Decision::Allow);
    assert_eq!(eval(r#"{"DateGreaterThan":{"aws:CurrentTime":"2023-11-14T22:13:20Z"}}"#), Decision::NotApplicable);
    assert_eq!(eval(r#"{"DateLessThan":{"aws:EpochTime":"1800000000"}}"#), Decision::Allow);
    assert_eq!(eval(r#"{"BoolIfExists":{"aws:SecureTransport":true}}"#), Decision::Allow);
}

#[test]
fn principals() {
    let listed = |who: &str| p(&format!(r#"{{"Statement":[{{"Effect":"Allow","Principal":{who},"Action":"*"}}]}}"#));
    let bob = other("sqs:SendMessage");
    for yes in [
        r#""*""#,
        r#"{"AWS":"*"}"#,
        r#"{"AWS":"111122223333"}"#,
        r#"{"AWS":["1","arn:aws:iam::111122223333:root"]}"#,
        r#"{"AWS":"arn:aws:iam::111122223333:user/bob"}"#,
    ] {
        assert_eq!(listed(yes).evaluate(&bob), Decision::Allow, "{yes}");
    }
    for no in [
        r#"{"AWS":"444455556666"}"#,
        r#"{"AWS":"arn:aws:iam::111122223333:user/alice"}"#,
        r#"{"Service":"sns.amazonaws.com"}"#,
    ] {
        assert_eq!(listed(no).evaluate(&bob), Decision::NotApplicable, "{no}");
    }
    let not_principal = p(r#"{"Statement":[{"Effect":"Deny","NotPrincipal":{"AWS":"111122223333"},"Action":"*"}]}"#);
    assert_eq!(not_principal.evaluate(&bob), Decision::NotApplicable);
    assert_eq!(
        not_principal.evaluate(&req(OWNER, "arn:aws:iam::444455556666:root", "sqs:SendMessage")),
        Decision::Deny
    );
}

#[test]
fn refused_documents() {
    for bad in [
        "[]",
        "{not json",
        r#"{"Statement":[{"Effect":"Maybe","Action":"*"}]}"#,
        r#"{"Statement":[{"Effect":"Allow"}]}"#,
        r#"{"Statement":[{"Effect":"Allow","Action":"*","Condition":{"StringSortOf":{"aws:SourceArn":"x"}}}]}"#,
        r#"{"Statement":[{"Effect":"Allow","Action":"*","Condition":{"IpAddress":{"aws:SourceIp":"10.0.0.0/40"}}}]}"#,
        r#"{"Statement":[{"Effect":"Allow","Action":"*","Condition":{"DateLessThan":{"aws:CurrentTime":"soon"}}}]}"#,
        r#"{"Statement":[{"Effect":"Allow","Principal":{"Federated":"cognito-identity.amazonaws.com"},"Action":"*"}]}"#,
    ] {
        assert!(Policy::parse(bad).is_err(), "{bad}");
    }
    assert_eq!(Policy::parse(r#"{"Version":"2012-10-17"}"#).unwrap(), Policy::empty());
}

#[test]
fn messages_are_aws_wording() {
    let m = Denial::NoIdentityAllow.message("arn:aws:iam::1:user/a", "sqs:sendmessage", "arn:aws:sqs:r:1:q");
    assert_eq!(
        m,
        "User: arn:aws:iam::1:user/a is not authorized to perform: sqs:sendmessage on resource: arn:aws:sqs:r:1:q because no identity-based policy allows the sqs:sendmessage action"
    );
    assert!(Denial::ExplicitResource
        .message("u", "a", "r")
        .ends_with("with an explicit deny in a resource-based policy"));
}

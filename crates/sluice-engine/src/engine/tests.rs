//! Engine tests on a virtual clock: no test sleeps through a visibility timeout, delay or retention.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use sluice_store::memory::MemoryBackend;
use sluice_store::{Backend, KvVisitor, Op, QueueId, Seq, Store};

use super::*;
use crate::clock::ManualClock;
use crate::dedup::dedup_key;
use crate::message::{AttributeValue, ReceivedMessage, SendMessage, SendResult};
use crate::queue::{DedupEntry, DedupKey, DEDUP_WINDOW_MS};
use crate::record::KV_DEDUP;

const T0: u64 = 1_700_000_000_000;

struct Fixture {
    backend: Arc<MemoryBackend>,
    clock: Arc<ManualClock>,
    engine: Engine,
}

fn config() -> EngineConfig {
    EngineConfig::new("us-east-1", "000000000000", b"test-secret".to_vec())
}

fn fixture() -> Fixture {
    let backend = Arc::new(MemoryBackend::new());
    let clock = Arc::new(ManualClock::new(T0));
    let engine = open(&backend, &clock, config());
    Fixture { backend, clock, engine }
}

fn open(backend: &Arc<MemoryBackend>, clock: &Arc<ManualClock>, config: EngineConfig) -> Engine {
    let store = Arc::new(Store::new(backend.clone() as Arc<dyn Backend>));
    Engine::open(config, clock.clone(), store).unwrap()
}

fn attrs(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

fn msg(body: &str) -> SendMessage {
    SendMessage { body: body.into(), ..Default::default() }
}

async fn send(e: &Engine, q: &str, body: &str) -> SendResult {
    e.send_messages(q, vec![msg(body)], "sender").await.unwrap().remove(0).unwrap()
}

async fn receive(e: &Engine, q: &str, max: i64, visibility: Option<i64>) -> Vec<ReceivedMessage> {
    let opts = ReceiveOptions {
        max_number_of_messages: Some(max),
        visibility_timeout: visibility,
        wait_time_seconds: Some(0),
        system_attribute_names: vec!["All".into()],
        message_attribute_names: vec!["All".into()],
        receive_request_attempt_id: None,
    };
    e.receive_messages(q, &opts).await.unwrap()
}

fn counts(e: &Engine, q: &str) -> (usize, usize, usize) {
    let c = e.queue_counts(q).unwrap();
    (c.visible, c.inflight, c.delayed)
}

#[tokio::test]
async fn visibility_timeout_hides_then_returns_message() {
    let f = fixture();
    f.engine.create_queue("q", &attrs(&[("VisibilityTimeout", "30")]), &BTreeMap::new()).await.unwrap();
    let sent = send(&f.engine, "q", "hello").await;
    assert_eq!(sent.md5_of_body, "5d41402abc4b2a76b9719d911017c592");
    let got = receive(&f.engine, "q", 10, None).await;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].body, "hello");
    assert_eq!(got[0].message_id, sent.message_id);
    assert_eq!(got[0].system_attributes["ApproximateReceiveCount"], "1");
    assert_eq!(got[0].system_attributes["SentTimestamp"], T0.to_string());
    assert_eq!(counts(&f.engine, "q"), (0, 1, 0));
    assert!(receive(&f.engine, "q", 10, None).await.is_empty());
    f.clock.advance_ms(29_999);
    assert!(receive(&f.engine, "q", 10, None).await.is_empty());
    f.clock.advance_ms(1);
    let again = receive(&f.engine, "q", 10, Some(5)).await;
    assert_eq!(again.len(), 1);
    assert_ne!(again[0].receipt_handle, got[0].receipt_handle, "a fresh receipt handle per receive");
    assert_eq!(again[0].system_attributes["ApproximateReceiveCount"], "2");
    assert_eq!(again[0].system_attributes["ApproximateFirstReceiveTimestamp"], T0.to_string());
    f.clock.advance_ms(5_000);
    assert_eq!(counts(&f.engine, "q"), (1, 0, 0));
}

#[tokio::test]
async fn delays_per_queue_and_per_message() {
    let f = fixture();
    f.engine.create_queue("q", &attrs(&[("DelaySeconds", "10")]), &BTreeMap::new()).await.unwrap();
    send(&f.engine, "q", "queue-delay").await;
    let mut m = msg("msg-delay");
    m.delay_seconds = Some(2);
    f.engine.send_messages("q", vec![m], "s").await.unwrap();
    let mut zero = msg("no-delay");
    zero.delay_seconds = Some(0);
    f.engine.send_messages("q", vec![zero], "s").await.unwrap();
    assert_eq!(counts(&f.engine, "q"), (1, 0, 2));
    assert_eq!(receive(&f.engine, "q", 10, None).await[0].body, "no-delay");
    f.clock.advance_ms(2_000);
    assert_eq!(receive(&f.engine, "q", 10, None).await[0].body, "msg-delay");
    f.clock.advance_ms(8_000);
    assert_eq!(receive(&f.engine, "q", 10, None).await[0].body, "queue-delay");
    let mut bad = msg("x");
    bad.delay_seconds = Some(901);
    let r = f.engine.send_messages("q", vec![bad], "s").await.unwrap();
    assert!(matches!(r[0], Err(EngineError::InvalidParameterValue(_))));
}

#[tokio::test]
async fn retention_removes_expired_messages() {
    let f = fixture();
    f.engine.create_queue("q", &attrs(&[("MessageRetentionPeriod", "60")]), &BTreeMap::new()).await.unwrap();
    send(&f.engine, "q", "old").await;
    f.clock.advance_ms(30_000);
    send(&f.engine, "q", "young").await;
    f.clock.advance_ms(30_000);
    assert_eq!(counts(&f.engine, "q"), (1, 0, 0));
    assert_eq!(receive(&f.engine, "q", 10, None).await[0].body, "young");
}

/// A change of visibility runs the queue's clock; the retention removals it finds must reach the
/// store like any other (they were once dropped, leaving the records on disk until a restart).
#[tokio::test]
async fn change_visibility_commits_the_retention_removals_it_finds() {
    let f = fixture();
    f.engine.create_queue("q", &attrs(&[("MessageRetentionPeriod", "60")]), &BTreeMap::new()).await.unwrap();
    send(&f.engine, "q", "old").await;
    f.clock.advance_ms(30_000);
    send(&f.engine, "q", "young").await;
    let received = receive(&f.engine, "q", 2, Some(120)).await;
    let young = received.iter().find(|m| m.body == "young").unwrap();
    f.clock.advance_ms(31_000);
    assert_eq!(f.engine.change_visibility("q", &[(young.receipt_handle.clone(), 10)]).unwrap(), vec![Ok(())]);
    // An awaited commit: everything queued lazily before it is in the store once it returns.
    send(&f.engine, "q", "flush").await;
    let mut stored = 0;
    f.backend.scan_meta(&mut |_, _, _| stored += 1).unwrap();
    assert_eq!(stored, 2, "young and flush; old expired and was deleted");
}

#[tokio::test]
async fn change_visibility_and_older_receipts() {
    let f = fixture();
    f.engine.create_queue("q", &BTreeMap::new(), &BTreeMap::new()).await.unwrap();
    send(&f.engine, "q", "m").await;
    let first = receive(&f.engine, "q", 1, None).await.remove(0);
    // Visibility 0: receivable again at once, with a new handle; the old one is now stale.
    let r = f.engine.change_visibility("q", &[(first.receipt_handle.clone(), 0)]).unwrap();
    assert_eq!(r, vec![Ok(())]);
    let _second = receive(&f.engine, "q", 1, None).await.remove(0);
    // On a standard queue an older handle still acts on the message (moto's AWS-verified tests of
    // getmoto/moto#4655): it changes the visibility of the current receive...
    let older = f.engine.change_visibility("q", &[(first.receipt_handle.clone(), 10)]).unwrap();
    assert_eq!(older, vec![Ok(())]);
    f.clock.advance_ms(9_000);
    assert_eq!(counts(&f.engine, "q"), (0, 1, 0), "the older handle's 10 s apply, not the queue's 30 s");
    f.clock.advance_ms(1_000);
    assert_eq!(counts(&f.engine, "q"), (1, 0, 0));
    let second = receive(&f.engine, "q", 1, None).await.remove(0);
    // The visibility expires; changing it hides the message again (AWS answers 200 here).
    f.clock.advance_ms(30_000);
    assert_eq!(counts(&f.engine, "q"), (1, 0, 0));
    let again = f.engine.change_visibility("q", &[(second.receipt_handle.clone(), 10)]).unwrap();
    assert_eq!(again, vec![Ok(())]);
    assert_eq!(counts(&f.engine, "q"), (0, 1, 0));
    // The latest handle still deletes it, even after its visibility expired.
    f.clock.advance_ms(10_000);
    f.engine.delete_messages("q", std::slice::from_ref(&second.receipt_handle)).unwrap();
    assert_eq!(counts(&f.engine, "q"), (0, 0, 0));
    // Garbage and other queues' handles are invalid.
    let bad = f.engine.delete_messages("q", &["garbage".into()]).unwrap();
    assert!(matches!(bad[0], Err(EngineError::ReceiptHandleIsInvalid(_))));
    f.engine.create_queue("other", &BTreeMap::new(), &BTreeMap::new()).await.unwrap();
    let wrong = f.engine.delete_messages("other", std::slice::from_ref(&second.receipt_handle)).unwrap();
    assert!(matches!(wrong[0], Err(EngineError::ReceiptHandleOfOtherQueue(_))));
    let too_long = f.engine.change_visibility("q", &[(second.receipt_handle, 43_201)]).unwrap();
    assert!(matches!(too_long[0], Err(EngineError::InvalidParameterValue(_))));
    // ...and deletes it.
    send(&f.engine, "q", "n").await;
    let first = receive(&f.engine, "q", 1, None).await.remove(0);
    f.engine.change_visibility("q", &[(first.receipt_handle.clone(), 0)]).unwrap();
    let _second = receive(&f.engine, "q", 1, None).await.remove(0);
    assert_eq!(f.engine.delete_messages("q", &[first.receipt_handle]).unwrap(), vec![Ok(())]);
    assert_eq!(counts(&f.engine, "q"), (0, 0, 0));
}

#[tokio::test]
async fn create_queue_is_idempotent_only_with_same_attributes() {
    let f = fixture();
    let a = attrs(&[("VisibilityTimeout", "60")]);
    f.engine.create_queue("q", &a, &BTreeMap::new()).await.unwrap();
    f.engine.create_queue("q", &a, &BTreeMap::new()).await.unwrap();
    f.engine.create_queue("q", &BTreeMap::new(), &BTreeMap::new()).await.unwrap();
    let err = f.engine.create_queue("q", &attrs(&[("VisibilityTimeout", "61")]), &BTreeMap::new()).await;
    assert_eq!(err, Err(EngineError::QueueNameExists("VisibilityTimeout".into())));
    assert!(matches!(
        f.engine.create_queue("bad name", &BTreeMap::new(), &BTreeMap::new()).await,
        Err(EngineError::InvalidParameterValue(_))
    ));
    assert_eq!(f.engine.list_queues(""), vec!["q".to_string()]);
    f.engine.delete_queue("q").await.unwrap();
    assert_eq!(f.engine.delete_queue("q").await, Err(EngineError::QueueDoesNotExist));
}

#[tokio::test]
async fn purge_once_per_minute() {
    let f = fixture();
    f.engine.create_queue("q", &BTreeMap::new(), &BTreeMap::new()).await.unwrap();
    send(&f.engine, "q", "a").await;
    f.engine.purge_queue("q").await.unwrap();
    assert_eq!(counts(&f.engine, "q"), (0, 0, 0));
    assert!(matches!(f.engine.purge_queue("q").await, Err(EngineError::PurgeQueueInProgress(_))));
    f.clock.advance_ms(60_000);
    f.engine.purge_queue("q").await.unwrap();
}

#[tokio::test]
async fn inflight_limit_answers_over_limit() {
    let backend = Arc::new(MemoryBackend::new());
    let clock = Arc::new(ManualClock::new(T0));
    let mut cfg = config();
    cfg.max_inflight = 3;
    let e = open(&backend, &clock, cfg);
    e.create_queue("q", &BTreeMap::new(), &BTreeMap::new()).await.unwrap();
    for i in 0..5 {
        send(&e, "q", &format!("m{i}")).await;
    }
    assert_eq!(receive(&e, "q", 10, None).await.len(), 3);
    let opts = ReceiveOptions { max_number_of_messages: Some(1), wait_time_seconds: Some(0), ..Default::default() };
    assert!(matches!(e.receive_messages("q", &opts).await, Err(EngineError::OverLimit(_))));
}

#[tokio::test]
async fn state_survives_reopen() {
    let f = fixture();
    f.engine.create_queue("q", &attrs(&[("VisibilityTimeout", "100")]), &attrs(&[("team", "a")])).await.unwrap();
    for i in 0..3 {
        send(&f.engine, "q", &format!("m{i}")).await;
    }
    let got = receive(&f.engine, "q", 1, None).await.remove(0);
    f.clock.advance_ms(40_000);
    f.engine.close().await;

    let e2 = open(&f.backend, &f.clock, config());
    assert_eq!(e2.list_queue_tags("q").unwrap(), attrs(&[("team", "a")]));
    // 60 s of the 100 s visibility timeout are left; the receive count is kept.
    assert_eq!(counts(&e2, "q"), (2, 1, 0));
    f.clock.advance_ms(59_999);
    assert_eq!(counts(&e2, "q"), (2, 1, 0));
    f.clock.advance_ms(1);
    let all = receive(&e2, "q", 10, None).await;
    let again = all.iter().find(|m| m.message_id == got.message_id).unwrap();
    assert_eq!(again.system_attributes["ApproximateReceiveCount"], "2");
    // Handles issued before the restart still work (same secret).
    e2.delete_messages("q", std::slice::from_ref(&again.receipt_handle)).unwrap();
    assert_eq!(counts(&e2, "q"), (0, 2, 0));
}

#[tokio::test]
async fn message_attributes_and_digest_filtering() {
    let f = fixture();
    f.engine.create_queue("q", &BTreeMap::new(), &BTreeMap::new()).await.unwrap();
    let mut m = msg("body");
    m.attributes.insert("a.one".into(), AttributeValue::string("String", "1"));
    m.attributes.insert("b".into(), AttributeValue::binary("Binary", vec![0, 1]));
    let sent = f.engine.send_messages("q", vec![m], "s").await.unwrap().remove(0).unwrap();
    let opts = ReceiveOptions {
        max_number_of_messages: Some(1),
        wait_time_seconds: Some(0),
        message_attribute_names: vec!["a.*".into()],
        ..Default::default()
    };
    let got = f.engine.receive_messages("q", &opts).await.unwrap().remove(0);
    assert_eq!(got.attributes.len(), 1);
    assert!(got.md5_of_attributes.is_some());
    assert_ne!(got.md5_of_attributes, sent.md5_of_attributes, "digest covers only returned attributes");
    assert!(got.system_attributes.is_empty());
}

#[tokio::test]
async fn batch_over_one_mebibyte_is_rejected() {
    let f = fixture();
    f.engine.create_queue("q", &BTreeMap::new(), &BTreeMap::new()).await.unwrap();
    let big = "x".repeat(200_000);
    let batch: Vec<_> = (0..6).map(|_| msg(&big)).collect();
    assert!(matches!(f.engine.send_messages("q", batch, "s").await, Err(EngineError::BatchRequestTooLong(..))));
    let over = "x".repeat(1_048_577);
    let r = f.engine.send_messages("q", vec![msg(&over)], "s").await.unwrap();
    assert!(matches!(r[0], Err(EngineError::InvalidParameterValue(_))));
}

#[tokio::test]
async fn long_poll_returns_when_a_message_arrives() {
    let backend = Arc::new(MemoryBackend::new());
    let store = Arc::new(Store::new(backend as Arc<dyn Backend>));
    let engine = Arc::new(Engine::open(config(), Arc::new(crate::clock::SystemClock), store).unwrap());
    engine.create_queue("q", &BTreeMap::new(), &BTreeMap::new()).await.unwrap();
    let e2 = engine.clone();
    let waiter = tokio::spawn(async move {
        let opts = ReceiveOptions { wait_time_seconds: Some(20), ..Default::default() };
        e2.receive_messages("q", &opts).await.unwrap()
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    send(&engine, "q", "wake").await;
    // Bounded by a generous timeout only to fail instead of hanging; the wait itself is 20 s.
    let got = tokio::time::timeout(Duration::from_secs(10), waiter).await.unwrap().unwrap();
    assert_eq!(got[0].body, "wake");
    // Shutdown releases a waiting long poll at once.
    let e3 = engine.clone();
    let waiter = tokio::spawn(async move {
        let opts = ReceiveOptions { wait_time_seconds: Some(20), ..Default::default() };
        e3.receive_messages("q", &opts).await.unwrap()
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    engine.begin_shutdown();
    let got = tokio::time::timeout(Duration::from_secs(10), waiter).await.unwrap().unwrap();
    assert!(got.is_empty());
}

fn fifo_msg(body: &str, group: &str, dedup: Option<&str>) -> SendMessage {
    SendMessage {
        body: body.into(),
        group_id: Some(group.into()),
        deduplication_id: dedup.map(Into::into),
        ..Default::default()
    }
}

/// Deleting the in-flight head of a FIFO group makes the group's next message receivable: a long
/// poll already waiting must get it then, not at the end of its wait (it did, before the fix).
#[tokio::test]
async fn fifo_delete_wakes_a_long_poll_waiting_on_the_group() {
    let backend = Arc::new(MemoryBackend::new());
    let store = Arc::new(Store::new(backend as Arc<dyn Backend>));
    let engine = Arc::new(Engine::open(config(), Arc::new(crate::clock::SystemClock), store).unwrap());
    let q = "lp.fifo";
    engine.create_queue(q, &attrs(&[("FifoQueue", "true")]), &BTreeMap::new()).await.unwrap();
    let sent = vec![fifo_msg("m1", "g", Some("1")), fifo_msg("m2", "g", Some("2"))];
    engine.send_messages(q, sent, "s").await.unwrap();
    let opts = ReceiveOptions { max_number_of_messages: Some(1), wait_time_seconds: Some(0), ..Default::default() };
    let first = engine.receive_messages(q, &opts).await.unwrap();
    assert_eq!(first[0].body, "m1");
    let e2 = engine.clone();
    let waiter = tokio::spawn(async move {
        let opts =
            ReceiveOptions { max_number_of_messages: Some(1), wait_time_seconds: Some(20), ..Default::default() };
        e2.receive_messages(q, &opts).await.unwrap()
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(!waiter.is_finished(), "m2 is blocked behind m1 in flight");
    engine.delete_messages(q, &[first[0].receipt_handle.clone()]).unwrap().remove(0).unwrap();
    // Bounded only to fail instead of hanging; the wait itself is 20 s.
    let got = tokio::time::timeout(Duration::from_secs(10), waiter).await.expect("woken by the delete").unwrap();
    assert_eq!(got[0].body, "m2");
}

#[tokio::test]
async fn fifo_deduplicates_within_five_minutes_even_after_delete() {
    let f = fixture();
    f.engine.create_queue("q.fifo", &attrs(&[("FifoQueue", "true")]), &BTreeMap::new()).await.unwrap();
    let first =
        f.engine.send_messages("q.fifo", vec![fifo_msg("a", "g", Some("d1"))], "s").await.unwrap().remove(0).unwrap();
    let dup = f
        .engine
        .send_messages("q.fifo", vec![fifo_msg("other", "g", Some("d1"))], "s")
        .await
        .unwrap()
        .remove(0)
        .unwrap();
    assert_eq!(dup.message_id, first.message_id);
    assert_eq!(dup.sequence_number, first.sequence_number);
    assert_eq!(counts(&f.engine, "q.fifo"), (1, 0, 0));
    let got = receive(&f.engine, "q.fifo", 10, None).await;
    assert_eq!(got[0].system_attributes["MessageGroupId"], "g");
    assert_eq!(got[0].system_attributes["SequenceNumber"], first.sequence_number.clone().unwrap());
    f.engine.delete_messages("q.fifo", &[got[0].receipt_handle.clone()]).unwrap();
    // Still a duplicate after the original was deleted...
    f.engine.send_messages("q.fifo", vec![fifo_msg("a", "g", Some("d1"))], "s").await.unwrap();
    assert_eq!(counts(&f.engine, "q.fifo"), (0, 0, 0));
    // ...until the window ends.
    f.clock.advance_ms(5 * 60 * 1000);
    f.engine.send_messages("q.fifo", vec![fifo_msg("a", "g", Some("d1"))], "s").await.unwrap();
    assert_eq!(counts(&f.engine, "q.fifo"), (1, 0, 0));
    // FIFO rules: group required, dedup id or content-based dedup required, no per-message delay.
    let no_group = SendMessage { body: "x".into(), deduplication_id: Some("d9".into()), ..Default::default() };
    let r = f.engine.send_messages("q.fifo", vec![no_group], "s").await.unwrap();
    assert_eq!(r[0], Err(EngineError::MissingParameter("MessageGroupId".into())));
    // A missing de-duplication id fails the whole request, as on AWS.
    let r = f.engine.send_messages("q.fifo", vec![fifo_msg("x", "g", None)], "s").await;
    assert!(matches!(r, Err(EngineError::InvalidParameterValue(_))));
    let mut delayed = fifo_msg("x", "g", Some("d2"));
    delayed.delay_seconds = Some(1);
    let r = f.engine.send_messages("q.fifo", vec![delayed], "s").await.unwrap();
    assert!(matches!(r[0], Err(EngineError::InvalidParameterValue(_))));
}

#[tokio::test]
async fn fifo_dedup_survives_restart() {
    let f = fixture();
    f.engine
        .create_queue(
            "q.fifo",
            &attrs(&[("FifoQueue", "true"), ("ContentBasedDeduplication", "true")]),
            &BTreeMap::new(),
        )
        .await
        .unwrap();
    let first =
        f.engine.send_messages("q.fifo", vec![fifo_msg("same body", "g", None)], "s").await.unwrap().remove(0).unwrap();
    f.engine.close().await;
    let e2 = open(&f.backend, &f.clock, config());
    let dup = e2.send_messages("q.fifo", vec![fifo_msg("same body", "g", None)], "s").await.unwrap().remove(0).unwrap();
    assert_eq!(dup.message_id, first.message_id);
    assert_eq!(counts(&e2, "q.fifo"), (1, 0, 0));
}

#[tokio::test]
async fn fifo_queue_names_and_attributes_must_agree() {
    let f = fixture();
    let none = BTreeMap::new();
    assert!(matches!(f.engine.create_queue("a.fifo", &none, &none).await, Err(EngineError::InvalidParameterValue(_))));
    assert!(matches!(
        f.engine.create_queue("a", &attrs(&[("FifoQueue", "true")]), &none).await,
        Err(EngineError::InvalidParameterValue(_))
    ));
    assert!(matches!(
        f.engine.create_queue("a", &attrs(&[("FifoQueue", "false")]), &none).await,
        Err(EngineError::InvalidAttributeName(_))
    ));
    assert!(matches!(
        f.engine.create_queue("a", &attrs(&[("ContentBasedDeduplication", "true")]), &none).await,
        Err(EngineError::InvalidAttributeName(_))
    ));
}

#[tokio::test]
async fn messages_past_max_receive_count_move_to_the_dead_letter_queue() {
    let f = fixture();
    let none = BTreeMap::new();
    f.engine.create_queue("dlq", &none, &none).await.unwrap();
    let policy = r#"{"deadLetterTargetArn":"arn:aws:sqs:us-east-1:000000000000:dlq","maxReceiveCount":2}"#;
    f.engine.create_queue("src", &attrs(&[("RedrivePolicy", policy)]), &none).await.unwrap();
    let mut m = msg("poison");
    m.attributes.insert("k".into(), AttributeValue::string("String", "v"));
    f.engine.send_messages("src", vec![m], "s").await.unwrap();
    f.clock.advance_ms(1_000);
    for _ in 0..2 {
        assert_eq!(receive(&f.engine, "src", 1, Some(0)).await.len(), 1);
    }
    assert!(receive(&f.engine, "src", 1, Some(0)).await.is_empty());
    assert_eq!(counts(&f.engine, "src"), (0, 0, 0));
    let dead = receive(&f.engine, "dlq", 1, None).await;
    assert_eq!(dead[0].body, "poison");
    assert_eq!(dead[0].attributes["k"], AttributeValue::string("String", "v"));
    assert_eq!(dead[0].system_attributes["SentTimestamp"], T0.to_string());
    assert_eq!(dead[0].system_attributes["DeadLetterQueueSourceArn"], "arn:aws:sqs:us-east-1:000000000000:src");
    assert_eq!(f.engine.dead_letter_source_queues("dlq").unwrap(), vec!["src".to_string()]);
    // Type mismatch and missing targets are refused.
    let bad = r#"{"deadLetterTargetArn":"arn:aws:sqs:us-east-1:000000000000:nope","maxReceiveCount":2}"#;
    assert!(matches!(
        f.engine.create_queue("src2", &attrs(&[("RedrivePolicy", bad)]), &none).await,
        Err(EngineError::InvalidParameterValue(_))
    ));
    let deny = attrs(&[("RedriveAllowPolicy", r#"{"redrivePermission":"denyAll"}"#)]);
    f.engine.set_queue_attributes("dlq", &deny).await.unwrap();
    assert!(matches!(
        f.engine.create_queue("src3", &attrs(&[("RedrivePolicy", policy)]), &none).await,
        Err(EngineError::InvalidParameterValue(_))
    ));
}

#[tokio::test]
async fn move_task_redrives_dead_letters_to_their_source() {
    let f = fixture();
    let none = BTreeMap::new();
    f.engine.create_queue("dlq", &none, &none).await.unwrap();
    let policy = r#"{"deadLetterTargetArn":"arn:aws:sqs:us-east-1:000000000000:dlq","maxReceiveCount":1}"#;
    f.engine.create_queue("src", &attrs(&[("RedrivePolicy", policy)]), &none).await.unwrap();
    for i in 0..3 {
        send(&f.engine, "src", &format!("m{i}")).await;
    }
    receive(&f.engine, "src", 10, Some(0)).await;
    assert!(receive(&f.engine, "src", 10, Some(0)).await.is_empty());
    assert_eq!(counts(&f.engine, "dlq"), (3, 0, 0));
    let engine = Arc::new(f.engine);
    let dlq_arn = "arn:aws:sqs:us-east-1:000000000000:dlq";
    assert!(matches!(
        engine.start_message_move_task("arn:aws:sqs:us-east-1:000000000000:src", None, None),
        Err(EngineError::InvalidParameterValue(_))
    ));
    engine.start_message_move_task(dlq_arn, None, None).unwrap();
    for _ in 0..100 {
        if engine.list_message_move_tasks(dlq_arn, None).unwrap()[0].status == "COMPLETED" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let task = engine.list_message_move_tasks(dlq_arn, None).unwrap().remove(0);
    assert_eq!((task.status.as_str(), task.moved, task.to_move), ("COMPLETED", 3, 3));
    assert_eq!(counts(&engine, "src"), (3, 0, 0));
    assert_eq!(counts(&engine, "dlq"), (0, 0, 0));
    let back = receive(&engine, "src", 10, None).await;
    assert!(back.iter().all(|m| !m.system_attributes.contains_key("DeadLetterQueueSourceArn")));
}

#[tokio::test]
async fn permissions_edit_the_policy_attribute() {
    let f = fixture();
    let none = BTreeMap::new();
    f.engine.create_queue("q", &none, &none).await.unwrap();
    f.engine.add_permission("q", "l1", &["111122223333".into()], &["SendMessage".into()]).await.unwrap();
    let policy = f.engine.get_queue_attributes("q", &["Policy".into()]).unwrap();
    assert!(policy[0].1.contains("arn:aws:iam::111122223333:root"));
    assert!(f.engine.add_permission("q", "l1", &["1".into()], &["*".into()]).await.is_err());
    f.engine.remove_permission("q", "l1").await.unwrap();
    assert!(f.engine.get_queue_attributes("q", &["Policy".into()]).unwrap().is_empty());
}

#[tokio::test]
async fn fair_queue_quiet_groups_are_served_despite_a_100k_flood() {
    let f = fixture();
    let none = BTreeMap::new();
    f.engine.create_queue("fair", &none, &none).await.unwrap();
    let grouped = |body: String, group: &str| SendMessage { body, group_id: Some(group.into()), ..Default::default() };
    for batch in 0..10_000 {
        let msgs = (0..10).map(|i| grouped(format!("noisy-{batch}-{i}"), "noisy")).collect();
        f.engine.send_messages("fair", msgs, "s").await.unwrap();
    }
    for g in 0..10 {
        f.engine.send_messages("fair", vec![grouped(format!("quiet-{g}"), &format!("quiet-{g}"))], "s").await.unwrap();
    }
    assert_eq!(counts(&f.engine, "fair").0, 100_010);
    // The rule: each receive serves groups round-robin, one message per group per pass, so the ten
    // quiet groups are all served within the first two receives of 10, not after 100k noisy ones.
    let mut quiet_seen = 0;
    for _ in 0..2 {
        quiet_seen += receive(&f.engine, "fair", 10, None).await.iter().filter(|m| m.body.starts_with("quiet")).count();
    }
    assert_eq!(quiet_seen, 10);
}

#[tokio::test]
async fn move_task_interrupted_by_restart_is_marked_failed() {
    let f = fixture();
    let none = BTreeMap::new();
    f.engine.create_queue("dlq", &none, &none).await.unwrap();
    let policy = r#"{"deadLetterTargetArn":"arn:aws:sqs:us-east-1:000000000000:dlq","maxReceiveCount":1}"#;
    f.engine.create_queue("src", &attrs(&[("RedrivePolicy", policy)]), &none).await.unwrap();
    for i in 0..5 {
        send(&f.engine, "src", &format!("m{i}")).await;
    }
    receive(&f.engine, "src", 10, Some(0)).await;
    receive(&f.engine, "src", 10, Some(0)).await;
    assert_eq!(counts(&f.engine, "dlq"), (5, 0, 0));
    let engine = Arc::new(f.engine);
    let dlq_arn = "arn:aws:sqs:us-east-1:000000000000:dlq";
    // One message per second: the task is still running when the server stops.
    engine.start_message_move_task(dlq_arn, None, Some(1)).unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    engine.close().await;
    let e2 = open(&f.backend, &f.clock, config());
    let task = e2.list_message_move_tasks(dlq_arn, None).unwrap().remove(0);
    assert_eq!(task.status, "FAILED");
    assert!(task.failure_reason.unwrap().contains("restart"));
    // Nothing lost or duplicated: every message is in exactly one of the two queues.
    let (src, dlq) = (counts(&e2, "src").0, counts(&e2, "dlq").0);
    assert_eq!(src + dlq, 5, "src={src} dlq={dlq}");
    assert_eq!(src as u64, task.moved);
}

#[tokio::test]
async fn total_visibility_of_a_receive_is_capped_at_12_hours() {
    let f = fixture();
    f.engine.create_queue("q", &BTreeMap::new(), &BTreeMap::new()).await.unwrap();
    send(&f.engine, "q", "m").await;
    let m = receive(&f.engine, "q", 1, Some(43_200)).await.remove(0);
    f.clock.advance_ms(3_600_000);
    // One hour in: up to 11 more hours are allowed, 11 h + 1 s is not.
    assert_eq!(f.engine.change_visibility("q", &[(m.receipt_handle.clone(), 39_600)]).unwrap(), vec![Ok(())]);
    let r = f.engine.change_visibility("q", &[(m.receipt_handle.clone(), 39_601)]).unwrap();
    assert!(matches!(&r[0], Err(EngineError::InvalidParameterValue(msg)) if msg.contains("beyond the limit")));
}

// FIFO de-duplication: the window lives in meta records while a message is queued and in a kv
// record once it left inside its window (see dedup.rs).

/// Waits until every lazy write handed to the store so far is applied (the writer keeps order).
async fn flush(e: &Engine) {
    e.store().commit(vec![Op::DeleteKv { queue: 0, key: b"flush".to_vec() }]).await.unwrap();
}

/// The de-duplication kv records in the store: (key, entry).
fn dedup_records(backend: &MemoryBackend) -> Vec<(DedupKey, DedupEntry)> {
    let mut out = Vec::new();
    backend
        .scan_kv(&mut |_, k, v| {
            if k.first() == Some(&KV_DEDUP) {
                out.push((DedupKey::try_from(&k[1..]).unwrap(), DedupEntry::decode(v).unwrap()));
            }
        })
        .unwrap();
    out
}

/// The de-duplication digests in the store's meta records, by seq.
fn meta_digests(backend: &MemoryBackend, queue: QueueId) -> Vec<(Seq, Option<DedupKey>)> {
    let mut out = Vec::new();
    backend
        .scan_meta(&mut |q, seq, bytes| {
            if q == queue {
                out.push((seq, MessageMeta::decode(bytes).unwrap().2));
            }
        })
        .unwrap();
    out
}

async fn send_fifo(e: &Engine, q: &str, body: &str, group: &str, dedup: Option<&str>) -> SendResult {
    e.send_messages(q, vec![fifo_msg(body, group, dedup)], "s").await.unwrap().remove(0).unwrap()
}

const WINDOW: u64 = DEDUP_WINDOW_MS;

#[tokio::test]
async fn fifo_send_writes_no_dedup_record_and_restart_finds_the_window_in_the_meta() {
    let f = fixture();
    let q = "q.fifo";
    f.engine
        .create_queue(q, &attrs(&[("FifoQueue", "true"), ("VisibilityTimeout", "0")]), &BTreeMap::new())
        .await
        .unwrap();
    let first = send_fifo(&f.engine, q, "a", "g", Some("d1")).await;
    // A receive rewrites the meta record: the digest must stay in it.
    assert_eq!(receive(&f.engine, q, 1, None).await.len(), 1);
    flush(&f.engine).await;
    assert!(dedup_records(&f.backend).is_empty(), "a send writes no de-duplication record");
    let id = f.engine.queue(q).unwrap().id;
    let seq: Seq = first.sequence_number.clone().unwrap().parse().unwrap();
    assert_eq!(meta_digests(&f.backend, id), vec![(seq, Some(dedup_key("d1")))]);
    f.clock.advance_ms(WINDOW - 1);
    f.engine.close().await;

    let e2 = open(&f.backend, &f.clock, config());
    let dup = send_fifo(&e2, q, "b", "g", Some("d1")).await;
    assert_eq!((dup.message_id.as_str(), &dup.sequence_number), (first.message_id.as_str(), &first.sequence_number));
    assert_eq!(counts(&e2, q), (1, 0, 0));
    // The window ends 5 minutes after the original's send, also after a restart.
    f.clock.advance_ms(1);
    let later = send_fifo(&e2, q, "c", "g", Some("d1")).await;
    assert_ne!(later.message_id, first.message_id);
    assert!(later.sequence_number.unwrap().parse::<Seq>().unwrap() > seq);
    assert_eq!(counts(&e2, q), (2, 0, 0));
    flush(&e2).await;
    assert!(dedup_records(&f.backend).is_empty());
}

#[tokio::test]
async fn fifo_duplicate_of_a_deleted_message_inside_the_window_and_across_restarts() {
    let f = fixture();
    let q = "q.fifo";
    f.engine.create_queue(q, &attrs(&[("FifoQueue", "true")]), &BTreeMap::new()).await.unwrap();
    let first = send_fifo(&f.engine, q, "a", "g", Some("d1")).await;
    send_fifo(&f.engine, q, "b", "g", Some("d2")).await;
    let got = receive(&f.engine, q, 10, None).await;
    assert_eq!(got.len(), 2);
    f.engine.delete_messages(q, &[got[0].receipt_handle.clone()]).unwrap();
    flush(&f.engine).await;
    // The deleted message's window now needs its own record; the queued one still needs none.
    let records = dedup_records(&f.backend);
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].0, dedup_key("d1"));
    assert_eq!(records[0].1.expires_ms, T0 + WINDOW);
    assert_eq!(uuid::Uuid::from_bytes(records[0].1.message_id).to_string(), first.message_id);
    let dup = send_fifo(&f.engine, q, "again", "g", Some("d1")).await;
    assert_eq!((&dup.message_id, &dup.sequence_number), (&first.message_id, &first.sequence_number));
    f.clock.advance_ms(60_000);
    f.engine.close().await;

    // Restart with the original deleted: still a duplicate.
    let e2 = open(&f.backend, &f.clock, config());
    let dup = send_fifo(&e2, q, "again", "g", Some("d1")).await;
    assert_eq!((&dup.message_id, &dup.sequence_number), (&first.message_id, &first.sequence_number));
    assert_eq!(counts(&e2, q), (1, 0, 0), "d2, visible again");
    // After the window: accepted, and the record is gone (pruned at the next access).
    f.clock.advance_ms(WINDOW - 60_000);
    let new = send_fifo(&e2, q, "again", "g", Some("d1")).await;
    assert_ne!(new.message_id, first.message_id);
    flush(&e2).await;
    assert!(dedup_records(&f.backend).is_empty(), "the ended window's record is deleted");
    // A record whose window ended while the server was down is deleted at recovery.
    let got = receive(&e2, q, 10, None).await;
    let new_handle = got.iter().find(|m| m.message_id == new.message_id).unwrap().receipt_handle.clone();
    assert_eq!(e2.delete_messages(q, &[new_handle]).unwrap(), vec![Ok(())]);
    flush(&e2).await;
    assert_eq!(dedup_records(&f.backend).len(), 1);
    e2.close().await;
    f.clock.advance_ms(WINDOW);
    let e3 = open(&f.backend, &f.clock, config());
    flush(&e3).await;
    assert!(dedup_records(&f.backend).is_empty());
    send_fifo(&e3, q, "again", "g", Some("d1")).await;
    assert_eq!(counts(&e3, q).0, 2, "d2 and the new d1");
}

#[tokio::test]
async fn fifo_content_based_and_message_group_scoped_dedup() {
    let f = fixture();
    let cb = "cb.fifo";
    f.engine
        .create_queue(cb, &attrs(&[("FifoQueue", "true"), ("ContentBasedDeduplication", "true")]), &BTreeMap::new())
        .await
        .unwrap();
    let first = send_fifo(&f.engine, cb, "same body", "g1", None).await;
    // Queue scope: the body's digest is the id, whatever the group.
    assert_eq!(send_fifo(&f.engine, cb, "same body", "g2", None).await.message_id, first.message_id);
    assert_ne!(send_fifo(&f.engine, cb, "other body", "g1", None).await.message_id, first.message_id);
    // An explicit id wins over the body.
    assert_ne!(send_fifo(&f.engine, cb, "same body", "g1", Some("x")).await.message_id, first.message_id);
    assert_eq!(counts(&f.engine, cb).0, 3);

    let mg = "mg.fifo";
    let scoped = attrs(&[
        ("FifoQueue", "true"),
        ("DeduplicationScope", "messageGroup"),
        ("FifoThroughputLimit", "perMessageGroupId"),
    ]);
    f.engine.create_queue(mg, &scoped, &BTreeMap::new()).await.unwrap();
    let a = send_fifo(&f.engine, mg, "m", "g1", Some("d")).await;
    let b = send_fifo(&f.engine, mg, "m", "g2", Some("d")).await;
    assert_ne!(a.message_id, b.message_id, "the same id in another group is another message");
    assert_eq!(send_fifo(&f.engine, mg, "m", "g1", Some("d")).await.message_id, a.message_id);
    assert_eq!(counts(&f.engine, mg).0, 2);
    f.engine.close().await;
    let e2 = open(&f.backend, &f.clock, config());
    assert_eq!(send_fifo(&e2, mg, "m", "g2", Some("d")).await.message_id, b.message_id);
    assert_eq!(send_fifo(&e2, cb, "same body", "g3", None).await.message_id, first.message_id);
    assert_eq!(counts(&e2, mg).0, 2);
}

#[tokio::test]
async fn fifo_purge_forgets_the_window_and_its_records() {
    let f = fixture();
    let q = "q.fifo";
    f.engine.create_queue(q, &attrs(&[("FifoQueue", "true")]), &BTreeMap::new()).await.unwrap();
    let first = send_fifo(&f.engine, q, "a", "g", Some("d1")).await;
    send_fifo(&f.engine, q, "b", "g", Some("d2")).await;
    let got = receive(&f.engine, q, 1, None).await;
    f.engine.delete_messages(q, &[got[0].receipt_handle.clone()]).unwrap();
    flush(&f.engine).await;
    assert_eq!(dedup_records(&f.backend).len(), 1);
    f.engine.purge_queue(q).await.unwrap();
    assert!(dedup_records(&f.backend).is_empty());
    let again = send_fifo(&f.engine, q, "a", "g", Some("d1")).await;
    assert_ne!(again.message_id, first.message_id);
    assert_ne!(send_fifo(&f.engine, q, "b", "g", Some("d2")).await.sequence_number, None);
    assert_eq!(counts(&f.engine, q), (2, 0, 0));
    f.engine.close().await;
    let e2 = open(&f.backend, &f.clock, config());
    assert_eq!(send_fifo(&e2, q, "a", "g", Some("d1")).await.message_id, again.message_id);
    assert_eq!(counts(&e2, q), (2, 0, 0));
}

#[tokio::test]
async fn fifo_dead_lettered_and_expired_messages_keep_their_window() {
    let f = fixture();
    let none = BTreeMap::new();
    f.engine.create_queue("dlq.fifo", &attrs(&[("FifoQueue", "true")]), &none).await.unwrap();
    let policy = r#"{"deadLetterTargetArn":"arn:aws:sqs:us-east-1:000000000000:dlq.fifo","maxReceiveCount":1}"#;
    let src_attrs = attrs(&[("FifoQueue", "true"), ("RedrivePolicy", policy), ("MessageRetentionPeriod", "60")]);
    f.engine.create_queue("src.fifo", &src_attrs, &none).await.unwrap();
    let poison = send_fifo(&f.engine, "src.fifo", "poison", "g1", Some("p")).await;
    assert_eq!(receive(&f.engine, "src.fifo", 1, Some(0)).await.len(), 1);
    assert!(receive(&f.engine, "src.fifo", 1, Some(0)).await.is_empty());
    assert_eq!(counts(&f.engine, "dlq.fifo").0, 1);
    // Dead-lettered: still a duplicate in the source; the DLQ's copy carries no window.
    assert_eq!(send_fifo(&f.engine, "src.fifo", "poison", "g1", Some("p")).await.message_id, poison.message_id);
    let dlq_id = f.engine.queue("dlq.fifo").unwrap().id;
    assert!(meta_digests(&f.backend, dlq_id).iter().all(|(_, d)| d.is_none()));
    assert_ne!(send_fifo(&f.engine, "dlq.fifo", "x", "g1", Some("p")).await.message_id, poison.message_id);
    // Expired by retention (60 s) inside the 5-minute window: still a duplicate.
    let old = send_fifo(&f.engine, "src.fifo", "old", "g2", Some("o")).await;
    f.clock.advance_ms(60_000);
    assert_eq!(counts(&f.engine, "src.fifo"), (0, 0, 0));
    assert_eq!(send_fifo(&f.engine, "src.fifo", "old", "g2", Some("o")).await.message_id, old.message_id);
    flush(&f.engine).await;
    let mut keys: Vec<DedupKey> = dedup_records(&f.backend).into_iter().map(|(k, _)| k).collect();
    keys.sort();
    let mut want = vec![dedup_key("p"), dedup_key("o")];
    want.sort();
    assert_eq!(keys, want);
    f.engine.close().await;
    let e2 = open(&f.backend, &f.clock, config());
    assert_eq!(send_fifo(&e2, "src.fifo", "poison", "g1", Some("p")).await.message_id, poison.message_id);
    assert_eq!(send_fifo(&e2, "src.fifo", "old", "g2", Some("o")).await.message_id, old.message_id);
    assert_eq!(counts(&e2, "src.fifo"), (0, 0, 0));
}

#[tokio::test]
async fn fifo_redriven_messages_leave_the_dlq_without_a_window() {
    let f = fixture();
    let none = BTreeMap::new();
    f.engine.create_queue("dlq.fifo", &attrs(&[("FifoQueue", "true")]), &none).await.unwrap();
    let policy = r#"{"deadLetterTargetArn":"arn:aws:sqs:us-east-1:000000000000:dlq.fifo","maxReceiveCount":1}"#;
    f.engine
        .create_queue("src.fifo", &attrs(&[("FifoQueue", "true"), ("RedrivePolicy", policy)]), &none)
        .await
        .unwrap();
    let sent = send_fifo(&f.engine, "src.fifo", "m", "g", Some("d")).await;
    receive(&f.engine, "src.fifo", 1, Some(0)).await;
    receive(&f.engine, "src.fifo", 1, Some(0)).await;
    let engine = Arc::new(f.engine);
    let dlq_arn = "arn:aws:sqs:us-east-1:000000000000:dlq.fifo";
    engine.start_message_move_task(dlq_arn, None, None).unwrap();
    for _ in 0..100 {
        if engine.list_message_move_tasks(dlq_arn, None).unwrap()[0].status == "COMPLETED" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(counts(&engine, "src.fifo"), (1, 0, 0));
    // The source's window (from the original send) still answers duplicates.
    assert_eq!(send_fifo(&engine, "src.fifo", "m", "g", Some("d")).await.message_id, sent.message_id);
    flush(&engine).await;
    assert_eq!(dedup_records(&f.backend).len(), 1, "only the source's record of the dead-lettering");
}

/// A data directory written before meta version 4: v3 meta records and a kv record per send.
#[tokio::test]
async fn fifo_data_from_before_meta_v4_still_loads() {
    let f = fixture();
    let q = "q.fifo";
    f.engine.create_queue(q, &attrs(&[("FifoQueue", "true")]), &BTreeMap::new()).await.unwrap();
    let id = f.engine.queue(q).unwrap().id;
    f.engine.close().await;
    let message_id = [0x42u8; 16];
    let seq: Seq = 77 << 20;
    let mut v3 = vec![3u8];
    v3.extend_from_slice(&message_id);
    for x in [T0, 0, T0] {
        v3.extend_from_slice(&x.to_be_bytes());
    }
    v3.extend_from_slice(&0u32.to_be_bytes());
    v3.extend_from_slice(&4u32.to_be_bytes());
    v3.extend_from_slice(&0u64.to_be_bytes());
    v3.push(1);
    v3.push(b'g');
    let body = crate::record::BodyRecord {
        body: "old".into(),
        attributes: Default::default(),
        system_attributes: Default::default(),
        sender_id: "s".into(),
        group_id: Some("g".into()),
        deduplication_id: Some("d1".into()),
        dead_letter_source_arn: None,
        md5_of_body: None,
    };
    // Written before body records carried their MD5: plain bincode.
    let old_body = bincode::serialize(&body).unwrap();
    let key = dedup_key("d1");
    let entry = DedupEntry { message_id, seq, expires_ms: T0 + WINDOW };
    f.backend
        .apply(vec![
            Op::PutMessage { queue: id, seq, meta: v3, body: old_body },
            Op::PutKv { queue: id, key: dedup_kv_key(&key), value: entry.encode() },
        ])
        .unwrap();
    f.clock.advance_ms(1_000);

    let e2 = open(&f.backend, &f.clock, config());
    let dup = send_fifo(&e2, q, "old", "g", Some("d1")).await;
    assert_eq!(dup.message_id, uuid::Uuid::from_bytes(message_id).to_string());
    assert_eq!(dup.sequence_number, Some(seq.to_string()));
    let got = receive(&e2, q, 10, None).await;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].body, "old");
    assert_eq!(got[0].md5_of_body, crate::digest::md5_hex(b"old"), "computed for a record without it");
    e2.delete_messages(q, &[got[0].receipt_handle.clone()]).unwrap();
    flush(&e2).await;
    // The existing record already holds the entry: kept as it is, still a duplicate.
    assert_eq!(dedup_records(&f.backend), vec![(key, entry)]);
    assert_eq!(send_fifo(&e2, q, "old", "g", Some("d1")).await.message_id, dup.message_id);
    f.clock.advance_ms(WINDOW);
    let new = send_fifo(&e2, q, "old", "g", Some("d1")).await;
    assert_ne!(new.message_id, dup.message_id);
    assert!(new.sequence_number.unwrap().parse::<Seq>().unwrap() > seq);
    flush(&e2).await;
    assert!(dedup_records(&f.backend).is_empty(), "pruned with the window");
}

/// A memory backend whose commits fail while `failing` is set (a disk answering EIO), or once
/// after `fail_next` is set; while `hold` is set a commit waits (a slow fsync).
#[derive(Default)]
struct FlakyBackend {
    inner: MemoryBackend,
    failing: std::sync::atomic::AtomicBool,
    fail_next: std::sync::atomic::AtomicBool,
    hold: std::sync::atomic::AtomicBool,
    applies: std::sync::atomic::AtomicUsize,
    /// When not 0, reported as every queue's bound of a purge still being removed.
    purge_bound: std::sync::atomic::AtomicU64,
}

impl Backend for FlakyBackend {
    fn apply(&self, ops: Vec<Op>) -> std::result::Result<(), sluice_store::StoreError> {
        use std::sync::atomic::Ordering::SeqCst;
        self.applies.fetch_add(1, SeqCst);
        while self.hold.load(SeqCst) {
            std::thread::sleep(Duration::from_millis(1));
        }
        if self.failing.load(SeqCst) || self.fail_next.swap(false, SeqCst) {
            return Err(sluice_store::StoreError::Io("injected failure".into()));
        }
        self.inner.apply(ops)
    }
    /// Damage by content: a body containing "bad-read" cannot be read (a damaged page), one
    /// containing "bad-bits" comes back with a bit flipped in its text.
    fn get_body(&self, queue: QueueId, seq: Seq) -> std::result::Result<Option<Vec<u8>>, sluice_store::StoreError> {
        let mut body = self.inner.get_body(queue, seq)?;
        if let Some(bytes) = body.as_mut() {
            if bytes.windows(8).any(|w| w == b"bad-read") {
                return Err(sluice_store::StoreError::Corrupt("injected unreadable page".into()));
            }
            if let Some(at) = bytes.windows(8).position(|w| w == b"bad-bits") {
                bytes[at + 2] ^= 0x01;
            }
        }
        Ok(body)
    }
    fn scan_queues(&self, visit: &mut dyn FnMut(QueueId, &[u8])) -> std::result::Result<(), sluice_store::StoreError> {
        self.inner.scan_queues(visit)
    }
    fn scan_meta(
        &self,
        visit: &mut dyn FnMut(QueueId, Seq, &[u8]),
    ) -> std::result::Result<(), sluice_store::StoreError> {
        self.inner.scan_meta(visit)
    }
    fn scan_kv(&self, visit: &mut KvVisitor<'_>) -> std::result::Result<(), sluice_store::StoreError> {
        self.inner.scan_kv(visit)
    }
    fn scan_purge_bounds(
        &self,
        visit: &mut dyn FnMut(QueueId, Seq),
    ) -> std::result::Result<(), sluice_store::StoreError> {
        let bound = self.purge_bound.load(std::sync::atomic::Ordering::SeqCst);
        if bound != 0 {
            self.inner.scan_queues(&mut |queue, _| visit(queue, bound))?;
        }
        Ok(())
    }
}

/// A purge the store was still removing at a restart keeps its bound. New seqs start above it even
/// when the clock went back across the restart: below it, a new message would be hidden and then
/// removed with the purge.
#[tokio::test]
async fn new_seqs_start_above_a_purge_the_store_is_still_removing() {
    let backend = Arc::new(FlakyBackend::default());
    let store = || Arc::new(Store::new(backend.clone() as Arc<dyn Backend>));
    let hour_later = T0 + 3_600_000;
    let engine = Engine::open(config(), Arc::new(ManualClock::new(hour_later)), store()).unwrap();
    engine.create_queue("q.fifo", &attrs(&[("FifoQueue", "true")]), &BTreeMap::new()).await.unwrap();
    engine.close().await;
    let bound: Seq = (hour_later << 20) + 5;
    backend.purge_bound.store(bound, std::sync::atomic::Ordering::SeqCst);
    // The clock stepped back an hour while the server was down.
    let engine = Engine::open(config(), Arc::new(ManualClock::new(T0)), store()).unwrap();
    let sent = send_fifo(&engine, "q.fifo", "new", "g", Some("d1")).await;
    assert!(sent.sequence_number.unwrap().parse::<Seq>().unwrap() >= bound);
}

/// A FIFO send whose commit failed was never acknowledged, so its retry must be stored, not
/// answered as a duplicate of a message that does not exist.
#[tokio::test]
async fn a_fifo_send_whose_commit_failed_is_stored_when_retried() {
    let backend = Arc::new(FlakyBackend::default());
    let clock = Arc::new(ManualClock::new(T0));
    let engine = Engine::open(config(), clock, Arc::new(Store::new(backend.clone() as Arc<dyn Backend>))).unwrap();
    engine.create_queue("q.fifo", &attrs(&[("FifoQueue", "true")]), &BTreeMap::new()).await.unwrap();
    backend.failing.store(true, std::sync::atomic::Ordering::SeqCst);
    assert!(engine.send_messages("q.fifo", vec![fifo_msg("m", "g", Some("d1"))], "s").await.is_err());
    backend.failing.store(false, std::sync::atomic::Ordering::SeqCst);
    let retry = send_fifo(&engine, "q.fifo", "m", "g", Some("d1")).await;
    let got = receive(&engine, "q.fifo", 10, None).await;
    assert_eq!(got.len(), 1, "the retry was stored");
    assert_eq!(got[0].message_id, retry.message_id);
    // And it is the window's entry now: a second retry is its duplicate.
    let dup = send_fifo(&engine, "q.fifo", "m", "g", Some("d1")).await;
    assert_eq!(dup.message_id, retry.message_id);
}

/// A duplicate that arrives while the original's commit is still on its way to the disk is not
/// acknowledged before that commit: if the original then fails, the duplicate is stored itself
/// (it used to be answered at once with the original's MessageId, for a message never stored).
#[tokio::test]
async fn a_fifo_duplicate_waits_for_the_original_commit() {
    use std::sync::atomic::Ordering::SeqCst;
    let backend = Arc::new(FlakyBackend::default());
    let clock = Arc::new(ManualClock::new(T0));
    let engine =
        Arc::new(Engine::open(config(), clock, Arc::new(Store::new(backend.clone() as Arc<dyn Backend>))).unwrap());
    engine.create_queue("q.fifo", &attrs(&[("FifoQueue", "true")]), &BTreeMap::new()).await.unwrap();
    let before = backend.applies.load(SeqCst);
    backend.hold.store(true, SeqCst);
    backend.fail_next.store(true, SeqCst);
    let original = {
        let e = engine.clone();
        tokio::spawn(async move { e.send_messages("q.fifo", vec![fifo_msg("m", "g", Some("d1"))], "s").await })
    };
    // The original's commit has reached the (held) disk: its window entry is in place.
    while backend.applies.load(SeqCst) == before {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let duplicate = {
        let e = engine.clone();
        tokio::spawn(async move { e.send_messages("q.fifo", vec![fifo_msg("m", "g", Some("d1"))], "s").await })
    };
    tokio::task::yield_now().await;
    backend.hold.store(false, SeqCst);
    assert!(original.await.unwrap().is_err(), "the original's commit failed");
    let stored = duplicate.await.unwrap().unwrap().remove(0).unwrap();
    let got = receive(&engine, "q.fifo", 10, None).await;
    assert_eq!(got.len(), 1, "the duplicate was stored once the original failed");
    assert_eq!(got[0].message_id, stored.message_id);
}

/// Starting a move task runs the source queue's clock; the retention removals it finds must reach
/// the store (they were once dropped, leaving the records on disk until a restart).
#[tokio::test]
async fn move_task_start_commits_the_retention_removals_it_finds() {
    let f = fixture();
    let none = BTreeMap::new();
    f.engine.create_queue("dlq", &attrs(&[("MessageRetentionPeriod", "60")]), &none).await.unwrap();
    let policy = r#"{"deadLetterTargetArn":"arn:aws:sqs:us-east-1:000000000000:dlq","maxReceiveCount":1}"#;
    f.engine.create_queue("src", &attrs(&[("RedrivePolicy", policy)]), &none).await.unwrap();
    send(&f.engine, "src", "poison").await;
    receive(&f.engine, "src", 10, Some(0)).await;
    assert!(receive(&f.engine, "src", 10, Some(0)).await.is_empty());
    f.clock.advance_ms(61_000);
    let engine = Arc::new(f.engine);
    engine.start_message_move_task("arn:aws:sqs:us-east-1:000000000000:dlq", None, Some(1)).unwrap();
    // An awaited commit on another queue: everything queued lazily before it is in the store.
    send(&engine, "src", "flush").await;
    let mut stored = 0;
    f.backend.scan_meta(&mut |_, _, _| stored += 1).unwrap();
    assert_eq!(stored, 1, "only the flush message; the expired dead letter was deleted");
}

/// Encryption at rest through the engine: sealed records in the store, one data key per reuse
/// period, and a ciphertext moved to another message or queue is damage (skipped, counted), never
/// a panic; a restart with the key ring reads every key's messages.
#[tokio::test]
async fn sealed_records_are_bound_to_their_queue_and_message() {
    let ring = Arc::new(crate::at_rest::KeyRing::new([9; 32], &[], &[]));
    let sealed_config = || EngineConfig { at_rest: Some(ring.clone()), ..config() };
    let backend = Arc::new(MemoryBackend::new());
    let clock = Arc::new(ManualClock::new(T0));
    let e = open(&backend, &clock, sealed_config());
    let period = attrs(&[("KmsDataKeyReusePeriodSeconds", "60")]);
    e.create_queue("a", &period, &BTreeMap::new()).await.unwrap();
    e.create_queue("b", &BTreeMap::new(), &BTreeMap::new()).await.unwrap();
    e.create_queue("clear", &attrs(&[("SqsManagedSseEnabled", "false")]), &BTreeMap::new()).await.unwrap();
    send(&e, "a", "m1-secret").await;
    send(&e, "a", "m2-secret").await;
    send(&e, "b", "m3-secret").await;
    send(&e, "clear", "m4-secret").await;
    clock.advance_ms(61_000);
    send(&e, "a", "m5-secret").await;
    let (a, b) = (e.queue("a").unwrap().id, e.queue("b").unwrap().id);

    let mut seqs: Vec<(QueueId, Seq)> = Vec::new();
    backend.scan_meta(&mut |id, seq, _| seqs.push((id, seq))).unwrap();
    seqs.sort();
    let bodies: Vec<(QueueId, Seq, Vec<u8>)> =
        seqs.into_iter().map(|(id, seq)| (id, seq, backend.get_body(id, seq).unwrap().unwrap())).collect();
    let secret_in = |b: &[u8]| b.windows(6).any(|w| w == b"secret");
    assert_eq!(bodies.iter().filter(|(_, _, b)| secret_in(b)).count(), 1, "only the clear queue's record");
    let mut data_keys: Vec<QueueId> = Vec::new();
    let mut visit = |id: QueueId, key: &[u8], _: &[u8]| {
        if key.first() == Some(&crate::record::KV_DATA_KEY) {
            data_keys.push(id)
        }
    };
    backend.scan_kv(&mut visit).unwrap();
    data_keys.sort();
    let mut want = vec![a, a, b];
    want.sort();
    assert_eq!(data_keys, want, "one key each, and a rotated once");

    // m1's ciphertext copied over m2 (same queue) and over m3 (another queue).
    let of_a: Vec<_> = bodies.iter().filter(|(id, _, _)| *id == a).collect();
    let of_b: Vec<_> = bodies.iter().filter(|(id, _, _)| *id == b).collect();
    let m1 = of_a[0].2.clone();
    backend
        .apply(vec![
            Op::PutMessage { queue: a, seq: of_a[1].1, meta: meta_of(&backend, a, of_a[1].1), body: m1.clone() },
            Op::PutMessage { queue: b, seq: of_b[0].1, meta: meta_of(&backend, b, of_b[0].1), body: m1 },
        ])
        .unwrap();
    let got: Vec<String> = receive(&e, "a", 10, None).await.into_iter().map(|m| m.body).collect();
    assert_eq!(got, vec!["m1-secret".to_string(), "m5-secret".to_string()]);
    assert!(receive(&e, "b", 10, None).await.is_empty());
    assert_eq!(e.damaged_records(), 2);

    // A restart reads both of a's keys.
    e.close().await;
    clock.advance_ms(60_000);
    let e2 = open(&backend, &clock, sealed_config());
    let got: Vec<String> = receive(&e2, "a", 10, None).await.into_iter().map(|m| m.body).collect();
    assert_eq!(got, vec!["m1-secret".to_string(), "m5-secret".to_string()]);
    // Without the key ring the store does not open: it names the problem.
    e2.close().await;
    let store = Arc::new(Store::new(backend.clone() as Arc<dyn Backend>));
    let err = Engine::open(config(), clock.clone(), store).err().expect("refused");
    assert!(err.to_string().contains("no master key is configured"), "{err}");
}

fn meta_of(backend: &MemoryBackend, queue: QueueId, seq: Seq) -> Vec<u8> {
    let mut found = None;
    backend
        .scan_meta(&mut |id, s, bytes| {
            if id == queue && s == seq {
                found = Some(bytes.to_vec())
            }
        })
        .unwrap();
    found.unwrap()
}

/// Issue 24: one unreadable body record made the whole receive fail (500) and left its batch in
/// flight; a body with a flipped bit was served with a stale MD5OfBody. Both are quarantined now:
/// out of the queue, counted, kept aside; the messages around them are served.
#[tokio::test]
async fn damaged_bodies_are_quarantined_and_the_others_served() {
    let backend = Arc::new(FlakyBackend::default());
    let clock = Arc::new(ManualClock::new(T0));
    let engine = Engine::open(config(), clock, Arc::new(Store::new(backend.clone() as Arc<dyn Backend>))).unwrap();
    engine.create_queue("q", &BTreeMap::new(), &BTreeMap::new()).await.unwrap();
    for i in 0..8 {
        send(&engine, "q", &format!("fine-{i}")).await;
    }
    send(&engine, "q", "bad-read").await;
    send(&engine, "q", "bad-bits").await;
    let got = receive(&engine, "q", 10, Some(60)).await;
    let mut bodies: Vec<_> = got.iter().map(|m| m.body.clone()).collect();
    bodies.sort();
    assert_eq!(bodies, (0..8).map(|i| format!("fine-{i}")).collect::<Vec<_>>());
    for m in &got {
        assert_eq!(m.md5_of_body, crate::digest::to_hex(&crate::digest::md5(m.body.as_bytes())));
    }
    assert_eq!(engine.quarantined(), 2);
    let c = engine.queue_counts("q").unwrap();
    assert_eq!((c.visible, c.inflight), (0, 8), "nothing damaged left in flight or to come back");
    // Kept aside, and counted again after a restart.
    flush(&engine).await;
    let mut kept = 0;
    backend.inner.scan_kv(&mut |_, key, _| kept += usize::from(key.first() == Some(&b'q'))).unwrap();
    assert_eq!(kept, 2);
    engine.close().await;
    let reopened = Engine::open(
        config(),
        Arc::new(ManualClock::new(T0)),
        Arc::new(Store::new(backend.clone() as Arc<dyn Backend>)),
    )
    .unwrap();
    assert_eq!(reopened.quarantined(), 2);
}

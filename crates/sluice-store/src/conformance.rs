//! The conformance suite every [`Backend`] must pass. Backends call [`run_all`] from their own tests.
//!
//! `open` must return a backend over the same storage each time it is called; when `durable` is true,
//! the suite also checks that what was applied is found again after re-opening.

use crate::{Backend, Op};

type Open<'a> = &'a dyn Fn() -> Box<dyn Backend>;

fn metas(b: &dyn Backend) -> Vec<(u64, u64, Vec<u8>)> {
    let mut out = Vec::new();
    b.scan_meta(&mut |q, s, m| out.push((q, s, m.to_vec()))).expect("scan_meta");
    out
}

fn queues(b: &dyn Backend) -> Vec<(u64, Vec<u8>)> {
    let mut out = Vec::new();
    b.scan_queues(&mut |q, r| out.push((q, r.to_vec()))).expect("scan_queues");
    out
}

fn kvs(b: &dyn Backend) -> Vec<(u64, Vec<u8>, Vec<u8>)> {
    let mut out = Vec::new();
    b.scan_kv(&mut |q, k, v| out.push((q, k.to_vec(), v.to_vec()))).expect("scan_kv");
    out
}

fn put(queue: u64, seq: u64) -> Op {
    Op::PutMessage { queue, seq, meta: vec![seq as u8; 4], body: format!("body-{queue}-{seq}").into_bytes() }
}

/// Runs every conformance check against a fresh, empty backend.
pub fn run_all(open: Open, durable: bool) {
    let b = open();
    assert!(queues(b.as_ref()).is_empty(), "backend must start empty");

    // Puts are readable and scans come back in (queue, seq) order, whatever the insertion order.
    b.apply(vec![
        Op::PutQueue { queue: 7, record: b"q7".to_vec() },
        Op::PutQueue { queue: 3, record: b"q3".to_vec() },
        put(7, 2),
        put(7, 1),
        put(3, 300),
        put(7, u64::MAX - 1),
    ])
    .unwrap();
    assert_eq!(queues(b.as_ref()), vec![(3, b"q3".to_vec()), (7, b"q7".to_vec())]);
    let order: Vec<_> = metas(b.as_ref()).into_iter().map(|(q, s, _)| (q, s)).collect();
    assert_eq!(order, vec![(3, 300), (7, 1), (7, 2), (7, u64::MAX - 1)]);
    assert_eq!(b.get_body(7, 2).unwrap().as_deref(), Some(&b"body-7-2"[..]));
    assert_eq!(b.get_body(7, 99).unwrap(), None);
    let bodies = b.get_bodies(7, &[2, 99, 1, 300]).unwrap();
    assert_eq!(
        bodies,
        vec![Some(b"body-7-2".to_vec()), None, Some(b"body-7-1".to_vec()), None],
        "in the order asked, per queue"
    );

    // PutMeta replaces metadata and keeps the body; on a deleted message it must not resurrect it.
    b.apply(vec![Op::PutMeta { queue: 7, seq: 1, meta: b"new".to_vec() }]).unwrap();
    assert!(metas(b.as_ref()).contains(&(7, 1, b"new".to_vec())));
    assert_eq!(b.get_body(7, 1).unwrap().as_deref(), Some(&b"body-7-1"[..]));
    b.apply(vec![Op::DeleteMessage { queue: 7, seq: 1 }, Op::PutMeta { queue: 7, seq: 1, meta: b"x".to_vec() }])
        .unwrap();
    assert!(!metas(b.as_ref()).iter().any(|(q, s, _)| (*q, *s) == (7, 1)));
    assert_eq!(b.get_body(7, 1).unwrap(), None);
    // Deleting a missing message is fine.
    b.apply(vec![Op::DeleteMessage { queue: 7, seq: 12345 }]).unwrap();

    // Purge removes only seqs below the bound, only in that queue.
    b.apply(vec![put(7, 10), put(7, 11), put(3, 5)]).unwrap();
    b.apply(vec![Op::PurgeMessages { queue: 7, below: 11 }]).unwrap();
    let order: Vec<_> = metas(b.as_ref()).into_iter().map(|(q, s, _)| (q, s)).collect();
    assert_eq!(order, vec![(3, 5), (3, 300), (7, 11), (7, u64::MAX - 1)]);
    assert_eq!(b.get_body(7, 10).unwrap(), None);

    // Key/value records: put, replace, delete, scanned in (queue, key) order.
    b.apply(vec![
        Op::PutKv { queue: 7, key: b"b".to_vec(), value: b"1".to_vec() },
        Op::PutKv { queue: 7, key: b"a".to_vec(), value: b"2".to_vec() },
        Op::PutKv { queue: 3, key: b"z".to_vec(), value: b"3".to_vec() },
        Op::PutKv { queue: 7, key: b"a".to_vec(), value: b"4".to_vec() },
        Op::DeleteKv { queue: 7, key: b"missing".to_vec() },
    ])
    .unwrap();
    assert_eq!(
        kvs(b.as_ref()),
        vec![(3, b"z".to_vec(), b"3".to_vec()), (7, b"a".to_vec(), b"4".to_vec()), (7, b"b".to_vec(), b"1".to_vec())]
    );
    b.apply(vec![Op::DeleteKv { queue: 7, key: b"b".to_vec() }]).unwrap();
    assert_eq!(kvs(b.as_ref()).len(), 2);

    // DeleteQueue removes the queue record, all of its messages and its key/value records.
    b.apply(vec![Op::DeleteQueue { queue: 7 }]).unwrap();
    assert_eq!(kvs(b.as_ref()), vec![(3, b"z".to_vec(), b"3".to_vec())]);
    assert_eq!(queues(b.as_ref()), vec![(3, b"q3".to_vec())]);
    let order: Vec<_> = metas(b.as_ref()).into_iter().map(|(q, s, _)| (q, s)).collect();
    assert_eq!(order, vec![(3, 5), (3, 300)]);
    assert_eq!(b.get_body(7, 11).unwrap(), None);

    // A large batch in one apply.
    let batch: Vec<Op> = (1000..3000).map(|s| put(9, s)).collect();
    b.apply(batch).unwrap();
    assert_eq!(metas(b.as_ref()).iter().filter(|(q, _, _)| *q == 9).count(), 2000);

    if durable {
        drop(b);
        let b = open();
        assert_eq!(queues(b.as_ref()), vec![(3, b"q3".to_vec())]);
        let all = metas(b.as_ref());
        assert_eq!(all.len(), 2002);
        assert_eq!(b.get_body(3, 300).unwrap().as_deref(), Some(&b"body-3-300"[..]));
        assert_eq!(b.get_body(9, 2999).unwrap().as_deref(), Some(&b"body-9-2999"[..]));
        assert_eq!(kvs(b.as_ref()), vec![(3, b"z".to_vec(), b"3".to_vec())]);
    }
}

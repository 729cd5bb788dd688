//! How long a purge and a queue deletion of 1M messages take in the in-memory backend, and the
//! longest body read another thread waited meanwhile (the backend has one lock).
//! `cargo run --release -p sluice-store --example memory_purge_stall`
use sluice_store::memory::MemoryBackend;
use sluice_store::{Backend, Op};
use std::time::Instant;
fn fill(b: &MemoryBackend, q: u64, n: u64) {
    for chunk in (0..n).collect::<Vec<_>>().chunks(10_000) {
        b.apply(
            chunk.iter().map(|&s| Op::PutMessage { queue: q, seq: s, meta: vec![0; 40], body: vec![1; 216] }).collect(),
        )
        .unwrap();
    }
}
fn probe<F: FnOnce()>(b: &MemoryBackend, f: F) -> (std::time::Duration, std::time::Duration) {
    let stop = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|s| {
        let h = s.spawn(|| {
            let mut worst = std::time::Duration::ZERO;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let t = Instant::now();
                b.get_body(2, 5).unwrap();
                worst = worst.max(t.elapsed());
            }
            worst
        });
        std::thread::sleep(std::time::Duration::from_millis(20));
        let t = Instant::now();
        f();
        let took = t.elapsed();
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        (took, h.join().unwrap())
    })
}
fn main() {
    for round in 0..3 {
        let b = MemoryBackend::new();
        fill(&b, 1, 1_000_000);
        fill(&b, 2, 1_000);
        let (p, pw) = probe(&b, || b.apply(vec![Op::PurgeMessages { queue: 1, below: u64::MAX }]).unwrap());
        fill(&b, 1, 1_000_000);
        let (d, dw) = probe(&b, || b.apply(vec![Op::DeleteQueue { queue: 1 }]).unwrap());
        println!(
            "round {round}: purge {p:?} (longest body read meanwhile {pw:?}), delete queue {d:?} (longest read {dw:?})"
        );
    }
}

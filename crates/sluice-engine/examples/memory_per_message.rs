//! Measures resident memory per queued message: fills one queue through the real engine over the
//! embedded (redb) store and reports the growth of RSS divided by the number of messages.
//!
//! Run: `cargo run --release -p sluice-engine --example memory_per_message -- 2000000`
//! The figure includes redb's bounded page cache (64 MiB), so it is an upper bound that shrinks as
//! the count grows; bodies stay on disk, only metadata is in memory.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use sluice_engine::clock::SystemClock;
use sluice_engine::message::SendMessage;
use sluice_engine::{Engine, EngineConfig};
use sluice_store::embedded::EmbeddedBackend;
use sluice_store::{Backend, Store};

fn rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

#[tokio::main]
async fn main() {
    let total: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(1_000_000);
    let dir = std::env::temp_dir().join(format!("sluice-mem-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let backend: Arc<dyn Backend> = Arc::new(EmbeddedBackend::open(&dir.join("sluice.redb")).expect("open store"));
    let store = Arc::new(Store::new(backend));
    let engine = Arc::new(
        Engine::open(EngineConfig::new("us-east-1", "000000000000", vec![1; 32]), Arc::new(SystemClock), store)
            .expect("engine"),
    );
    engine.create_queue("q", &BTreeMap::new(), &BTreeMap::new()).await.expect("create");
    let body = "x".repeat(200);
    let before = rss_bytes();
    let started = Instant::now();
    // Concurrent batches of 10, like many clients sending at once, so group commit has work to share.
    let workers = 64;
    let per_worker = total / workers / 10;
    let mut tasks = Vec::new();
    for _ in 0..workers {
        let engine = engine.clone();
        let body = body.clone();
        tasks.push(tokio::spawn(async move {
            for _ in 0..per_worker {
                let batch = (0..10).map(|_| SendMessage { body: body.clone(), ..Default::default() }).collect();
                engine.send_messages("q", batch, "bench").await.expect("send");
            }
        }));
    }
    for t in tasks {
        t.await.expect("worker");
    }
    let sent = workers * per_worker * 10;
    let elapsed = started.elapsed();
    let after = rss_bytes();
    let counts = engine.queue_counts("q").expect("counts");
    let commits = engine.store().stats().commits.load(std::sync::atomic::Ordering::Relaxed);
    println!(
        "messages={} visible={} rss_before_mib={:.1} rss_after_mib={:.1} bytes_per_message={:.0} send_rate_msg_s={:.0} commits={} msgs_per_commit={:.0}",
        sent,
        counts.visible,
        before as f64 / 1048576.0,
        after as f64 / 1048576.0,
        (after.saturating_sub(before)) as f64 / sent as f64,
        sent as f64 / elapsed.as_secs_f64(),
        commits,
        sent as f64 / commits.max(1) as f64,
    );
    engine.close().await;
    let _ = std::fs::remove_dir_all(&dir);
}

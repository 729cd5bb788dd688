//! The burst scenario against a real MongoDB (only when MONGODB_URI is set; there is none on
//! the development machine, so there this prints SKIP). The `mongodb` feature is on by default; the
//! test builds the binary (or takes `SLUICE_BIN`): `MONGODB_URI=mongodb://127.0.0.1:27017 cargo test -p
//! sluice-client --test drain_mongo`.
//!
//! 100,000 records + 5% duplicates, drain capped at 5,000/s, `kill -9` midway and restart;
//! checks exactly 100,000 documents and that no progress second exceeded the cap (+1 batch).
#![cfg(feature = "mongodb")]

mod support;

use std::process::Command;
use std::time::Duration;

use mongodb::bson::doc;
use sluice_client::{OutgoingMessage, Producer};
use sluice_testkit::sluice_bin_with_features;
use support::drain::{burst, env_num, progress_max_rate, Drain, Progress};
use support::{create_queue, unique, TestServer};

fn spawn_drain(endpoint: &str, queue_url: &str, uri: &str, coll: &str, rate: u64, log: &std::path::Path) -> Drain {
    Drain::spawn(
        Command::new(sluice_bin_with_features(&["mongodb"]))
            .arg("drain")
            .args(["--endpoint", endpoint, "--queue-url", queue_url, "--mongodb", uri])
            .args(["--mongo-database", "sluice_test", "--mongo-collection", coll, "--mongo-object-id"])
            .args(["--rate", &rate.to_string(), "--visibility-timeout", "5", "--wait-time", "1"]),
        log,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mongo_burst_is_shaved_deduplicated_and_survives_kill_9() {
    let Some(uri) = std::env::var("MONGODB_URI").ok().filter(|s| !s.is_empty()) else {
        eprintln!("SKIP: MONGODB_URI is not set (no MongoDB server here)");
        return;
    };
    let records = env_num("SLUICE_DRAIN_RECORDS", 100_000) as usize;
    let rate = 5_000u64;
    let mongo = mongodb::Client::with_uri_str(&uri).await.unwrap();
    let coll_name = unique("drain_test");
    let coll = mongo.database("sluice_test").collection::<mongodb::bson::Document>(&coll_name);
    coll.drop().await.ok();

    let server = TestServer::start();
    let client = support::client(&server);
    let url = create_queue(&client, "mops").await;
    let log = server.root().join("drain.log");
    let (bodies, _) = burst(records);
    let mut drain = spawn_drain(&server.endpoint, &url, &uri, &coll_name, rate, &log);
    let producer = Producer::new(client.clone(), &url);
    let mut tickets = Vec::new();
    for b in bodies {
        tickets.push(producer.enqueue(OutgoingMessage::new(b)).await.unwrap());
    }
    for t in tickets {
        t.wait().await.unwrap();
    }
    producer.close().await;

    let mut progress = Progress::new();
    loop {
        let n = coll.count_documents(doc! {}).await.unwrap() as usize;
        if n >= records * 2 / 5 {
            break;
        }
        progress.check(n, &log);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    drain.kill();
    let mut drain = spawn_drain(&server.endpoint, &url, &uri, &coll_name, rate, &log);
    let mut progress = Progress::new();
    loop {
        let n = coll.count_documents(doc! {}).await.unwrap() as usize;
        let d = support::depth(&client, &url).await;
        if n >= records && d == 0 {
            break;
        }
        progress.check((n, d), &log);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(drain.terminate().success());
    let max_rate = progress_max_rate(&log);
    let n = coll.count_documents(doc! {}).await.unwrap();
    eprintln!("RESULT mongo documents={n} max_progress_rate={max_rate:.0}/s");
    assert_eq!(n as usize, records);
    assert!(max_rate <= (rate + rate / 20) as f64, "{max_rate} records/s");
    coll.drop().await.ok();
}

//! The burst scenario against a real MongoDB (only when MONGODB_URI is set; there is none on
//! the development machine, so there this prints SKIP). The `mongodb` feature is on by default; the
//! test builds the binary (or takes `SLUICE_BIN`): `MONGODB_URI=mongodb://127.0.0.1:27017 cargo test -p
//! sluice-client --test drain_mongo`.
//!
//! 100,000 records + 5% duplicates, drain capped at 5,000/s, `kill -9` midway and restart;
//! checks exactly 100,000 documents and that no progress second exceeded the cap (+1 batch).
#![cfg(feature = "mongodb")]

mod support;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use mongodb::bson::doc;
use sluice_client::{OutgoingMessage, Producer};
use sluice_testkit::sluice_bin_with_features;
use support::{create_queue, unique, TestServer};

fn spawn_drain(endpoint: &str, queue_url: &str, uri: &str, coll: &str, rate: u64, log: &std::path::Path) -> Child {
    let log = std::fs::OpenOptions::new().create(true).append(true).open(log).unwrap();
    Command::new(sluice_bin_with_features(&["mongodb"]))
        .arg("drain")
        .args(["--endpoint", endpoint, "--queue-url", queue_url, "--mongodb", uri])
        .args(["--mongo-database", "sluice_test", "--mongo-collection", coll, "--mongo-object-id"])
        .args(["--rate", &rate.to_string(), "--visibility-timeout", "5", "--wait-time", "1"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::from(log))
        .spawn()
        .expect("spawn sluice drain")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mongo_burst_is_shaved_deduplicated_and_survives_kill_9() {
    let Some(uri) = std::env::var("MONGODB_URI").ok().filter(|s| !s.is_empty()) else {
        eprintln!("SKIP: MONGODB_URI is not set (no MongoDB server here)");
        return;
    };
    let records: usize = std::env::var("SLUICE_DRAIN_RECORDS").ok().and_then(|v| v.parse().ok()).unwrap_or(100_000);
    let rate = 5_000u64;
    let mongo = mongodb::Client::with_uri_str(&uri).await.unwrap();
    let coll_name = unique("drain_test");
    let coll = mongo.database("sluice_test").collection::<mongodb::bson::Document>(&coll_name);
    coll.drop().await.ok();

    let server = TestServer::start();
    let client = support::client(&server);
    let url = create_queue(&client, "mops").await;
    let log = server.root().join("drain.log");
    let mut bodies: Vec<String> = (0..records)
        .map(|i| serde_json::json!({"_id": sluice_client::object_id_hex(), "seq": i, "op": "login"}).to_string())
        .collect();
    for i in 0..records / 20 {
        let copy = bodies[(i * 7919) % records].clone();
        bodies.push(copy);
    }
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

    let t0 = Instant::now();
    while (coll.count_documents(doc! {}).await.unwrap() as usize) < records * 2 / 5 {
        assert!(t0.elapsed() < Duration::from_secs(60), "no progress; log {}", log.display());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    drain.kill().unwrap();
    drain.wait().unwrap();
    let mut drain = spawn_drain(&server.endpoint, &url, &uri, &coll_name, rate, &log);
    loop {
        let n = coll.count_documents(doc! {}).await.unwrap() as usize;
        if n >= records && support::depth(&client, &url).await == 0 {
            break;
        }
        assert!(t0.elapsed() < Duration::from_secs(120), "{n} documents; log {}", log.display());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Command::new("kill").args(["-TERM", &drain.id().to_string()]).status().unwrap();
    assert!(drain.wait().unwrap().success());
    let text = std::fs::read_to_string(&log).unwrap();
    let max_rate = text
        .lines()
        .filter_map(|l| l.split("s:").nth(1)?.split("rec/s").next()?.trim().parse::<f64>().ok())
        .fold(0.0, f64::max);
    let n = coll.count_documents(doc! {}).await.unwrap();
    eprintln!("RESULT mongo documents={n} max_progress_rate={max_rate:.0}/s");
    assert_eq!(n as usize, records);
    assert!(max_rate <= (rate + rate / 20) as f64, "{max_rate} records/s");
    coll.drop().await.ok();
}

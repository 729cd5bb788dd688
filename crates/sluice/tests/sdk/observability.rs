//! Observability: /metrics, the dashboard API, /health and /ready agree with the queue attributes.

use crate::{counts, send_body};
use sluice_testkit::{create_queue, external_endpoint, queue_name, receive_now, TestServer};

/// A plain HTTP/1.1 GET over a std socket (keeps the test free of another HTTP client).
fn http_get(endpoint: &str, path: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let addr = endpoint.trim_start_matches("http://");
    let mut s = std::net::TcpStream::connect(addr).expect("connect");
    write!(s, "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).unwrap();
    let status = raw.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    let body = raw.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
    (status, body)
}

fn metric(text: &str, name: &str, queue: &str) -> f64 {
    let prefix = format!("{name}{{queue=\"{queue}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {prefix} in /metrics"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_api_and_queue_attributes_agree() {
    let server = TestServer::start();
    if external_endpoint().is_some() {
        return;
    }
    let client = server.client();
    let name = queue_name("metrics");
    let url = create_queue(&client, &name).await;
    for i in 0..3 {
        send_body(&client, &url, &format!("m{i}")).await;
    }
    let got = receive_now(&client, &url, 1).await;
    assert_eq!(got.len(), 1);
    let (visible, inflight, delayed) = counts(&client, &url).await;
    assert_eq!((visible, inflight, delayed), (2, 1, 0));

    let endpoint = server.endpoint.clone();
    let (status, text) = tokio::task::spawn_blocking({
        let e = endpoint.clone();
        move || http_get(&e, "/metrics")
    })
    .await
    .unwrap();
    assert_eq!(status, 200);
    assert_eq!(metric(&text, "sluice_queue_messages_visible", &name), visible as f64);
    assert_eq!(metric(&text, "sluice_queue_messages_inflight", &name), inflight as f64);
    assert_eq!(metric(&text, "sluice_queue_messages_delayed", &name), delayed as f64);
    assert_eq!(metric(&text, "sluice_queue_messages_sent_total", &name), 3.0);
    assert_eq!(metric(&text, "sluice_queue_messages_received_total", &name), 1.0);
    assert!(text.contains("sluice_requests_total{action=\"SendMessage\",outcome=\"ok\"} 3"), "{text}");
    assert!(text.contains("# TYPE sluice_request_duration_seconds histogram"));
    assert!(text.contains("sluice_store_commit_duration_seconds_count"));

    let (status, api) = tokio::task::spawn_blocking({
        let e = endpoint.clone();
        move || http_get(&e, "/api/queues")
    })
    .await
    .unwrap();
    assert_eq!(status, 200);
    let doc: serde_json::Value = serde_json::from_str(&api).expect("JSON");
    let q = doc["queues"].as_array().unwrap().iter().find(|q| q["name"] == name.as_str()).expect("queue listed");
    assert_eq!((q["visible"].as_u64(), q["inflight"].as_u64()), (Some(visible), Some(inflight)));

    // Peek shows the visible messages and changes nothing.
    let (status, peek) = tokio::task::spawn_blocking({
        let (e, n) = (endpoint.clone(), name.clone());
        move || http_get(&e, &format!("/api/queues/{n}/peek?max=10"))
    })
    .await
    .unwrap();
    assert_eq!(status, 200);
    let peek: serde_json::Value = serde_json::from_str(&peek).unwrap();
    assert_eq!(peek["messages"].as_array().unwrap().len(), 2);
    assert_eq!(counts(&client, &url).await, (2, 1, 0));

    for path in ["/health", "/ready"] {
        let e = endpoint.clone();
        let (status, _) = tokio::task::spawn_blocking(move || http_get(&e, path)).await.unwrap();
        assert_eq!(status, 200, "{path}");
    }
}

//! Connection limits and timeouts, driven with raw sockets against an in-process server whose
//! limits are set short through the config (issue 24, item 3). Each test pins one "Seen" of the
//! issue: idle connections kept forever, slow headers never cut off, a truncated body never
//! answered, too many connections locking every client out; and the one exception, a long poll
//! on a keep-alive connection, which must outlive the idle timeout.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use sluice::config::{Config, ServeArgs};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A server on 127.0.0.1:0 with in-memory storage and the given limits; stopped when dropped.
struct Server {
    addr: SocketAddr,
    _stop: tokio::sync::oneshot::Sender<()>,
}

async fn start(args: ServeArgs) -> Server {
    let args = ServeArgs { data_dir: Some(":memory:".into()), ..args };
    let config = Config::load(&args).expect("config");
    let opened = sluice::app::open(&config).await.expect("open");
    let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = tcp.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        let shutdown = async move {
            let _ = stopped.await;
        };
        sluice::server::run(sluice::server::Listener::plain(tcp), shutdown, opened.state.clone()).await;
    });
    Server { addr, _stop: stop }
}

fn ms(n: u64) -> Option<String> {
    Some(format!("{n}ms"))
}

/// Reads one HTTP response (head and Content-Length body) from `stream`.
async fn read_response(stream: &mut TcpStream) -> String {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        let n = stream.read(&mut byte).await.expect("read the response head");
        assert!(n > 0, "connection closed before a response: {:?}", String::from_utf8_lossy(&buf));
        buf.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&buf).to_string();
    let length = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().parse::<usize>().unwrap())
        })
        .unwrap_or(0);
    let mut body = vec![0u8; length];
    stream.read_exact(&mut body).await.expect("read the response body");
    head + &String::from_utf8_lossy(&body)
}

fn json_request(action: &str, body: &str) -> String {
    format!(
        "POST / HTTP/1.1\r\nHost: localhost\r\nX-Amz-Target: AmazonSQS.{action}\r\n\
         Content-Type: application/x-amz-json-1.0\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

/// Sends `request` and reads the answer; fails (rather than hangs) if none comes within 10 s.
async fn exchange(stream: &mut TcpStream, request: &str) -> String {
    stream.write_all(request.as_bytes()).await.unwrap();
    tokio::time::timeout(Duration::from_secs(10), read_response(stream)).await.expect("no answer within 10 s")
}

/// Waits (at most `within`) for the server to close `stream`; returns how long that took.
async fn closed_within(stream: &mut TcpStream, within: Duration) -> Duration {
    let started = Instant::now();
    let mut sink = [0u8; 256];
    loop {
        match tokio::time::timeout(within.saturating_sub(started.elapsed()), stream.read(&mut sink)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return started.elapsed(),
            Ok(Ok(_)) => continue,
            Err(_) => panic!("the server kept the connection open for {within:?}"),
        }
    }
}

const HEALTH: &str = "GET /health HTTP/1.1\r\nHost: localhost\r\n\r\n";

/// Seen: 5,500 idle connections all kept for 70 s and more.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_are_closed_after_the_idle_timeout() {
    let server = start(ServeArgs { idle_timeout: ms(300), ..Default::default() }).await;
    // Never sent a byte.
    let mut silent = TcpStream::connect(server.addr).await.unwrap();
    // Kept alive after a request.
    let mut used = TcpStream::connect(server.addr).await.unwrap();
    assert!(exchange(&mut used, HEALTH).await.starts_with("HTTP/1.1 200"));
    let waited = closed_within(&mut silent, Duration::from_secs(5)).await;
    assert!(waited >= Duration::from_millis(200), "closed after {waited:?}, before the idle timeout");
    closed_within(&mut used, Duration::from_secs(5)).await;
}

/// Seen: headers sent at 1 byte/s never cut off. Here the bytes trickle in every 50 ms, far
/// inside the idle timeout, and the head is still cut off at the header timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_headers_are_cut_off() {
    let server =
        start(ServeArgs { header_read_timeout: ms(400), idle_timeout: Some("30s".into()), ..Default::default() }).await;
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    let started = Instant::now();
    let head = "POST / HTTP/1.1\r\nHost: localhost\r\nX-Slow: ".to_string() + &"a".repeat(200);
    for byte in head.as_bytes() {
        if stream.write_all(&[*byte]).await.is_err() {
            break; // cut off
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        if started.elapsed() > Duration::from_secs(5) {
            panic!("a head trickling in for 5 s was not cut off");
        }
    }
    let elapsed = started.elapsed();
    assert!(elapsed < Duration::from_secs(3), "cut off only after {elapsed:?}");
    closed_within(&mut stream, Duration::from_secs(3)).await;
}

/// Seen: a truncated body with the socket left open got no answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_truncated_body_is_answered_and_closed_within_the_body_timeout() {
    let server = start(ServeArgs { body_read_timeout: ms(400), ..Default::default() }).await;
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    let started = Instant::now();
    let request = json_request("ListQueues", "{}                                                  ");
    let truncated = &request[..request.len() - 40];
    let response = exchange(&mut stream, truncated).await;
    let elapsed = started.elapsed();
    assert!(response.starts_with("HTTP/1.1 408"), "{response}");
    assert!(response.contains("RequestTimeoutException"), "{response}");
    assert!(elapsed >= Duration::from_millis(300) && elapsed < Duration::from_secs(3), "answered after {elapsed:?}");
    closed_within(&mut stream, Duration::from_secs(3)).await;
    // The same, as Query.
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    let form = "POST / HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/x-www-form-urlencoded\r\n\
                Content-Length: 100\r\n\r\nAction=ListQueues";
    let response = exchange(&mut stream, form).await;
    assert!(response.contains("<Code>RequestTimeoutException</Code>"), "{response}");
}

/// Seen: a body sent at 1 byte/s never cut off. Here one byte every 50 ms: the whole-body
/// deadline ends it although bytes keep coming.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_trickling_in_is_cut_off_at_the_body_timeout() {
    let server = start(ServeArgs { body_read_timeout: ms(400), ..Default::default() }).await;
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    let body = format!("{{\"QueueNamePrefix\":\"{}\"}}", "a".repeat(60));
    let request = json_request("ListQueues", &body);
    let (head, body) = request.split_at(request.len() - body.len());
    stream.write_all(head.as_bytes()).await.unwrap();
    let started = Instant::now();
    let (mut reader, mut writer) = stream.into_split();
    let body = body.to_string();
    let drip = tokio::spawn(async move {
        for byte in body.as_bytes() {
            if writer.write_all(&[*byte]).await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });
    let mut answer = vec![0u8; 1024];
    let n = tokio::time::timeout(Duration::from_secs(5), reader.read(&mut answer)).await.expect("no answer").unwrap();
    let answer = String::from_utf8_lossy(&answer[..n]).to_string();
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(started.elapsed() < Duration::from_secs(2), "cut off after {:?}", started.elapsed());
    drip.abort();
}

/// Seen: with RLIMIT_NOFILE=1024, 1,100 idle connections locked every new client out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_beyond_the_maximum_are_refused_while_open_ones_work() {
    let server = start(ServeArgs { max_connections: Some(3), ..Default::default() }).await;
    let mut open = Vec::new();
    for _ in 0..3 {
        let mut s = TcpStream::connect(server.addr).await.unwrap();
        assert!(exchange(&mut s, HEALTH).await.starts_with("HTTP/1.1 200"));
        open.push(s);
    }
    // The fourth: a 503 the SDKs retry, in the request's own protocol, then closed.
    let mut extra = TcpStream::connect(server.addr).await.unwrap();
    let refused = exchange(&mut extra, &json_request("ListQueues", "{}")).await;
    assert!(refused.starts_with("HTTP/1.1 503"), "{refused}");
    assert!(refused.contains("ServiceUnavailable"), "{refused}");
    closed_within(&mut extra, Duration::from_secs(3)).await;
    // The open ones still work.
    for s in &mut open {
        let listed = exchange(s, &json_request("ListQueues", "{}")).await;
        assert!(listed.starts_with("HTTP/1.1 200"), "{listed}");
    }
    // One closes; its slot is free again.
    drop(open.pop());
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        // A refused connection answers /metrics with a 503 and closes.
        let mut s = TcpStream::connect(server.addr).await.unwrap();
        let metrics = exchange(&mut s, "GET /metrics HTTP/1.1\r\nHost: localhost\r\n\r\n").await;
        if metrics.starts_with("HTTP/1.1 200") {
            let refused = metrics
                .lines()
                .find_map(|l| l.strip_prefix("sluice_refused_connections_total "))
                .and_then(|n| n.trim().parse::<u64>().ok());
            assert!(refused >= Some(1), "{metrics}");
            assert!(exchange(&mut s, HEALTH).await.starts_with("HTTP/1.1 200"), "kept alive");
            break;
        }
        assert!(Instant::now() < deadline, "the freed slot was not reused");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The exception: a long poll (WaitTimeSeconds longer than the idle timeout) on a keep-alive
/// connection completes, and the connection stays usable afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_poll_outlives_the_idle_timeout_on_a_keep_alive_connection() {
    let server = start(ServeArgs { idle_timeout: ms(300), header_read_timeout: ms(300), ..Default::default() }).await;
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    let created = exchange(&mut stream, &json_request("CreateQueue", r#"{"QueueName":"long-poll"}"#)).await;
    assert!(created.starts_with("HTTP/1.1 200"), "{created}");
    let url = "http://localhost/000000000000/long-poll";
    let started = Instant::now();
    let receive = format!(r#"{{"QueueUrl":"{url}","WaitTimeSeconds":2}}"#);
    let received = exchange(&mut stream, &json_request("ReceiveMessage", &receive)).await;
    assert!(received.starts_with("HTTP/1.1 200"), "{received}");
    assert!(started.elapsed() >= Duration::from_millis(1900), "the poll returned after {:?}", started.elapsed());
    let sent =
        exchange(&mut stream, &json_request("SendMessage", &format!(r#"{{"QueueUrl":"{url}","MessageBody":"x"}}"#)))
            .await;
    assert!(sent.starts_with("HTTP/1.1 200"), "the connection was not kept after the poll: {sent}");
}

/// Seen: with RLIMIT_NOFILE=1024, 1,100 idle connections locked every new client out ("accept
/// failed" for as long as they stayed). The real binary, started under a hard limit of 256
/// descriptors, gets 300 idle connections: it keeps what fits under its connection cap (256 less
/// the descriptors it reserves), refuses the rest, closes the idle ones after the idle timeout,
/// and a new client is served. (On main this locks clients out for as long as the 300 stay.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn more_idle_connections_than_descriptors_do_not_lock_clients_out() {
    use std::io::BufRead;
    /// Kills the server when the test ends, passed or not.
    struct Kill(std::process::Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let mut child = Kill(
        std::process::Command::new("sh")
            .arg("-c")
            .arg("ulimit -n 256 && exec \"$0\" \"$@\"")
            .arg(env!("CARGO_BIN_EXE_sluice"))
            .args(["serve", "--port", "0", "--data-dir", ":memory:", "--idle-timeout", "1s", "--log", "warn"])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start sluice"),
    );
    let stdout = child.0.stdout.take().unwrap();
    let mut line = String::new();
    std::io::BufReader::new(stdout).read_line(&mut line).unwrap();
    let addr: SocketAddr = line.trim().rsplit("://").next().unwrap().parse().unwrap();
    let mut idle = Vec::new();
    for _ in 0..300 {
        idle.push(TcpStream::connect(addr).await.unwrap());
    }
    // Within the idle timeout and a little more, a new client's request is served (until then it
    // is refused: a 503, or a close while a flood of refusals is being answered).
    let started = Instant::now();
    loop {
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(json_request("ListQueues", "{}").as_bytes()).await.unwrap();
        let mut buf = [0u8; 512];
        if let Ok(Ok(n)) = tokio::time::timeout(Duration::from_secs(2), s.read(&mut buf)).await {
            if buf[..n].starts_with(b"HTTP/1.1 200") {
                break;
            }
            assert!(n == 0 || buf.starts_with(b"HTTP/1.1 503"), "{}", String::from_utf8_lossy(&buf[..n]));
        }
        assert!(started.elapsed() < Duration::from_secs(15), "no client served for 15 s");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    eprintln!("served after {:?}", started.elapsed());
    drop(idle);
}

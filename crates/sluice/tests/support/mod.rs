//! Harness for the SDK integration tests: starts the real `sluice` binary on a
//! free port with its own data directory and builds an `aws-sdk-sqs` client
//! for it (plain HTTP, static credentials, no aws-config).
//!
//! Environment:
//! - `SQS_ENDPOINT=http://host:port`: do not spawn; run against that endpoint
//!   (e.g. `moto_server -p 5000`). Tests that need restarts are skipped.
//! - `SLUICE_TEST_KEEP=1`: keep the temp dirs (data + `server.log`).
//! - `SLUICE_TEST_STDERR=1`: let the server's stderr through instead of
//!   writing it to `<tempdir>/server.log`.

#![allow(dead_code)]

use std::collections::HashMap;
use std::fs;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use aws_sdk_sqs::config::retry::RetryConfig;
use aws_sdk_sqs::config::timeout::TimeoutConfig;
use aws_sdk_sqs::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_sqs::types::{Message, MessageAttributeValue, MessageSystemAttributeName};
use aws_sdk_sqs::Client;

/// How long the server gets to print its ready line.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a SIGTERM'd server gets to exit.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(30);

static COUNTER: AtomicU64 = AtomicU64::new(0);

fn unique_suffix() -> String {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("{}-{}-{}", std::process::id(), n, nanos % 100_000)
}

/// A queue name that is unique across tests and processes (so tests also work
/// against one shared external endpoint). Only `[A-Za-z0-9_-]`, < 80 chars.
pub fn queue_name(tag: &str) -> String {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{tag}-{}-{n}", std::process::id())
}

pub fn external_endpoint() -> Option<String> {
    std::env::var("SQS_ENDPOINT")
        .ok()
        .map(|s| s.trim().trim_end_matches('/').to_string())
        .filter(|s| !s.is_empty())
}

pub struct TestServer {
    /// e.g. `http://127.0.0.1:41234`
    pub endpoint: String,
    child: Option<Child>,
    /// Root temp dir: holds `data/` and `server.log`. None when external.
    root: Option<PathBuf>,
    /// Number of times the binary was started (for messages).
    starts: u32,
    /// Extra command-line arguments after `serve`.
    extra_args: Vec<String>,
    /// Extra environment variables; when it sets SLUICE_PORT the `--port 0` flag is left out.
    extra_env: Vec<(String, String)>,
}

impl TestServer {
    /// Starts a fresh server (own port, own data dir), or attaches to
    /// `SQS_ENDPOINT` if set.
    pub fn start() -> TestServer {
        Self::start_with(&[], &[])
    }

    /// Like [`TestServer::start`], with extra `serve` arguments and environment variables.
    pub fn start_with(args: &[&str], env: &[(&str, &str)]) -> TestServer {
        if let Some(endpoint) = external_endpoint() {
            return TestServer {
                endpoint,
                child: None,
                root: None,
                starts: 0,
                extra_args: Vec::new(),
                extra_env: Vec::new(),
            };
        }
        let root = std::env::temp_dir().join(format!("sluice-sdk-test-{}", unique_suffix()));
        fs::create_dir_all(root.join("data")).expect("create temp data dir");
        let mut s = TestServer {
            endpoint: String::new(),
            child: None,
            root: Some(root),
            starts: 0,
            extra_args: args.iter().map(|a| a.to_string()).collect(),
            extra_env: env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        };
        s.spawn();
        s
    }

    pub fn is_external(&self) -> bool {
        self.root.is_none()
    }

    pub fn data_dir(&self) -> PathBuf {
        self.root
            .as_ref()
            .expect("external server has no data dir")
            .join("data")
    }

    fn log_path(&self) -> PathBuf {
        self.root
            .as_ref()
            .expect("external server has no log")
            .join("server.log")
    }

    fn log_tail(&self) -> String {
        if std::env::var_os("SLUICE_TEST_STDERR").is_some() {
            return "(stderr was inherited)".into();
        }
        match fs::read_to_string(self.log_path()) {
            Ok(s) => {
                let lines: Vec<&str> = s.lines().collect();
                let start = lines.len().saturating_sub(40);
                lines[start..].join("\n")
            }
            Err(e) => format!("(no log: {e})"),
        }
    }

    fn spawn(&mut self) {
        assert!(self.child.is_none(), "server already running");
        let data_dir = self.data_dir();
        let stderr = if std::env::var_os("SLUICE_TEST_STDERR").is_some() {
            Stdio::inherit()
        } else {
            let f = fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(self.log_path())
                .expect("open server.log");
            Stdio::from(f)
        };
        let mut command = Command::new(env!("CARGO_BIN_EXE_sluice"));
        command.arg("serve").arg("--host").arg("127.0.0.1");
        if !self.extra_env.iter().any(|(k, _)| k == "SLUICE_PORT") {
            command.arg("--port").arg("0");
        }
        // Extra arguments may choose the data dir themselves (e.g. `--data-dir :memory:`).
        if !self.extra_args.iter().any(|a| a == "--data-dir") {
            command.arg("--data-dir").arg(&data_dir);
        }
        command.args(&self.extra_args);
        for (k, v) in &self.extra_env {
            command.env(k, v);
        }
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("spawn sluice binary");
        self.starts += 1;

        // Read stdout on a thread: first line is the ready line; keep draining
        // afterwards so the server never blocks on / dies from a full pipe.
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = mpsc::channel::<Result<String, String>>();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(stdout);
            let mut first = String::new();
            match reader.read_line(&mut first) {
                Ok(0) => {
                    let _ = tx.send(Err("stdout closed before the ready line".into()));
                    return;
                }
                Ok(_) => {
                    let _ = tx.send(Ok(first));
                }
                Err(e) => {
                    let _ = tx.send(Err(format!("reading stdout: {e}")));
                    return;
                }
            }
            let mut sink = String::new();
            loop {
                sink.clear();
                match reader.read_line(&mut sink) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {
                        eprintln!("[sluice stdout, unexpected extra line] {}", sink.trim_end())
                    }
                }
            }
        });

        let line = match rx.recv_timeout(STARTUP_TIMEOUT) {
            Ok(Ok(line)) => line,
            Ok(Err(e)) => {
                let status = child.wait().ok();
                panic!(
                    "sluice (start #{}) did not become ready: {e}; exit status {status:?}\n--- server log tail ---\n{}",
                    self.starts,
                    self.log_tail()
                );
            }
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "sluice (start #{}) printed no ready line within {STARTUP_TIMEOUT:?}\n--- server log tail ---\n{}",
                    self.starts,
                    self.log_tail()
                );
            }
        };
        let line = line.trim_end_matches(['\r', '\n']);
        let url = line.strip_prefix("sluice listening on ").unwrap_or_else(|| {
            let _ = child.kill();
            panic!("unexpected ready line on stdout: {line:?} (want `sluice listening on http://127.0.0.1:PORT`)")
        });
        // `--tls-cert` servers print https://.
        let scheme = if url.starts_with("https://") { "https" } else { "http" };
        let port = url
            .strip_prefix(&format!("{scheme}://127.0.0.1:"))
            .and_then(|p| p.parse::<u16>().ok())
            .filter(|p| *p != 0)
            .unwrap_or_else(|| {
                let _ = child.kill();
                panic!("ready line has no usable address: {line:?}")
            });
        self.endpoint = format!("{scheme}://127.0.0.1:{port}");
        self.child = Some(child);
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("server not running").id()
    }

    /// Graceful stop: SIGTERM, wait for exit. Returns the exit status.
    /// Panics if the process does not exit within the timeout.
    pub fn terminate(&mut self) -> ExitStatus {
        let pid = self.pid();
        let st = Command::new("kill")
            .arg("-TERM")
            .arg(pid.to_string())
            .status()
            .expect("run kill -TERM");
        assert!(st.success(), "kill -TERM {pid} failed: {st}");
        let child = self.child.as_mut().unwrap();
        let deadline = Instant::now() + SHUTDOWN_TIMEOUT;
        loop {
            if let Some(status) = child.try_wait().expect("try_wait") {
                self.child = None;
                return status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                self.child = None;
                panic!(
                    "sluice did not exit within {SHUTDOWN_TIMEOUT:?} of SIGTERM\n--- server log tail ---\n{}",
                    self.log_tail()
                );
            }
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    /// Hard stop: SIGKILL (no chance to flush anything).
    pub fn kill(&mut self) {
        let mut child = self.child.take().expect("server not running");
        child.kill().expect("SIGKILL sluice");
        let _ = child.wait();
    }

    /// Starts the binary again on the same data dir (new port). The server
    /// must have been stopped first.
    pub fn restart(&mut self) {
        assert!(!self.is_external(), "cannot restart an external server");
        self.spawn();
    }

    /// The queue URL the server should hand out for `name` (sluice's fixed
    /// account id `000000000000`). None for external endpoints.
    pub fn expected_queue_url(&self, name: &str) -> Option<String> {
        if self.is_external() {
            None
        } else {
            Some(format!("{}/000000000000/{name}", self.endpoint))
        }
    }

    pub fn client(&self) -> Client {
        client_for(&self.endpoint)
    }

    pub fn describe(&self) -> String {
        match &self.root {
            Some(r) => format!("sluice at {} (dir {})", self.endpoint, r.display()),
            None => format!("external endpoint {}", self.endpoint),
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if let Some(root) = &self.root {
            if std::env::var_os("SLUICE_TEST_KEEP").is_none() && !std::thread::panicking() {
                let _ = fs::remove_dir_all(root);
            } else {
                eprintln!("kept test dir {}", root.display());
            }
        }
    }
}

/// SDK client for a plain-HTTP endpoint. Retries are disabled so that every
/// failure is reported as the server answered it.
pub fn client_for(endpoint: &str) -> Client {
    let http = aws_smithy_http_client::Builder::new().build_http();
    let config = aws_sdk_sqs::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("test", "test", None, None, "static"))
        .http_client(http)
        .retry_config(RetryConfig::standard().with_max_attempts(1))
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(5))
                // Long polls are at most 20 s.
                .operation_attempt_timeout(Duration::from_secs(40))
                .build(),
        )
        .build();
    Client::from_conf(config)
}

pub fn skip_if_external(server: &TestServer, test: &str) -> bool {
    if server.is_external() {
        eprintln!("SKIP {test}: needs to restart the server (SQS_ENDPOINT is set)");
        true
    } else {
        false
    }
}

// ---------------------------------------------------------------- MD5 helpers

pub fn md5_hex(data: &[u8]) -> String {
    use md5::{Digest, Md5};
    let digest = Md5::digest(data);
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

fn push_len_prefixed(buf: &mut Vec<u8>, bytes: &[u8]) {
    buf.extend_from_slice(&(bytes.len() as u32).to_be_bytes());
    buf.extend_from_slice(bytes);
}

/// MD5 of message attributes as SQS defines it: attributes sorted by name;
/// each encoded as len(name) name len(type) type, transport byte (1 = String /
/// Number, 2 = Binary), len(value) value; lengths are 4-byte big-endian.
pub fn md5_of_attributes(attrs: &HashMap<String, MessageAttributeValue>) -> String {
    let mut names: Vec<&String> = attrs.keys().collect();
    names.sort();
    let mut buf = Vec::new();
    for name in names {
        let v = &attrs[name];
        push_len_prefixed(&mut buf, name.as_bytes());
        push_len_prefixed(&mut buf, v.data_type().as_bytes());
        if v.data_type().starts_with("Binary") {
            buf.push(2);
            push_len_prefixed(&mut buf, v.binary_value().expect("binary value").as_ref());
        } else {
            buf.push(1);
            push_len_prefixed(&mut buf, v.string_value().expect("string value").as_bytes());
        }
    }
    md5_hex(&buf)
}

// ---------------------------------------------------------------- SQS helpers

pub fn string_attr(v: &str) -> MessageAttributeValue {
    MessageAttributeValue::builder()
        .data_type("String")
        .string_value(v)
        .build()
        .unwrap()
}

pub fn number_attr(v: &str) -> MessageAttributeValue {
    MessageAttributeValue::builder()
        .data_type("Number")
        .string_value(v)
        .build()
        .unwrap()
}

pub fn binary_attr(v: &[u8]) -> MessageAttributeValue {
    MessageAttributeValue::builder()
        .data_type("Binary")
        .binary_value(aws_sdk_sqs::primitives::Blob::new(v.to_vec()))
        .build()
        .unwrap()
}

pub async fn create_queue(client: &Client, name: &str) -> String {
    let out = client
        .create_queue()
        .queue_name(name)
        .send()
        .await
        .unwrap_or_else(|e| panic!("CreateQueue {name}: {e:?}"));
    out.queue_url()
        .unwrap_or_else(|| panic!("CreateQueue {name}: no QueueUrl"))
        .to_string()
}

/// Receives until `n` distinct messages arrived (or `deadline` passed), using
/// short long-polls so a server that samples still converges. Each message is
/// made invisible for `visibility` seconds. Panics on duplicates or timeout.
pub async fn receive_exactly(
    client: &Client,
    url: &str,
    n: usize,
    visibility: i32,
    deadline: Duration,
) -> Vec<Message> {
    let start = Instant::now();
    let mut got: Vec<Message> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    while got.len() < n {
        if start.elapsed() > deadline {
            panic!(
                "received only {} of {n} messages from {url} within {deadline:?}",
                got.len()
            );
        }
        let out = client
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(10)
            .visibility_timeout(visibility)
            .wait_time_seconds(1)
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .message_attribute_names("All")
            .send()
            .await
            .unwrap_or_else(|e| panic!("ReceiveMessage {url}: {e:?}"));
        assert!(
            out.messages().len() <= 10,
            "ReceiveMessage(max 10) returned {} messages",
            out.messages().len()
        );
        for m in out.messages() {
            let id = m.message_id().expect("MessageId").to_string();
            assert!(
                seen.insert(id.clone()),
                "message {id} received twice while invisible (visibility {visibility}s)"
            );
            got.push(m.clone());
        }
    }
    got
}

/// One receive with no waiting.
pub async fn receive_now(client: &Client, url: &str, max: i32) -> Vec<Message> {
    client
        .receive_message()
        .queue_url(url)
        .max_number_of_messages(max)
        .wait_time_seconds(0)
        .message_system_attribute_names(MessageSystemAttributeName::All)
        .message_attribute_names("All")
        .send()
        .await
        .unwrap_or_else(|e| panic!("ReceiveMessage {url}: {e:?}"))
        .messages()
        .to_vec()
}

pub fn sys_attr(m: &Message, name: MessageSystemAttributeName) -> Option<&str> {
    m.attributes()
        .and_then(|a| a.get(&name))
        .map(|s| s.as_str())
}

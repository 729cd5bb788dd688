//! Test harness: starts the real `sluice` binary (env `SLUICE_BIN`, else
//! `<workspace>/target/debug/sluice`; build it first with `cargo build --workspace`) on a free
//! port with its own data directory, like crates/sluice/tests/support does.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::Duration;

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// A name unique to this test process.
pub fn unique(tag: &str) -> String {
    format!("{tag}_{}_{}", std::process::id(), COUNTER.fetch_add(1, Ordering::Relaxed))
}

/// The sluice binary under test.
pub fn sluice_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("SLUICE_BIN").filter(|p| !p.is_empty()) {
        return PathBuf::from(p);
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target"));
    let p = target.join("debug").join("sluice");
    assert!(
        p.exists(),
        "no sluice binary at {} — run `cargo build --workspace` first (scripts/test.sh does), or set SLUICE_BIN",
        p.display()
    );
    p
}

pub struct TestServer {
    pub endpoint: String,
    pub root: PathBuf,
    child: Option<Child>,
}

impl TestServer {
    pub fn start() -> TestServer {
        Self::start_with(&[])
    }

    /// An HTTPS server (`--tls-cert`/`--tls-key`); its endpoint is `https://127.0.0.1:PORT`.
    pub fn start_tls(certs: &TestCerts) -> TestServer {
        let (cert, key) = (certs.server_cert.to_str().unwrap(), certs.server_key.to_str().unwrap());
        Self::start_with(&["--tls-cert", cert, "--tls-key", key])
    }

    fn start_with(extra: &[&str]) -> TestServer {
        let root = std::env::temp_dir().join(unique("sluice-client-test"));
        std::fs::create_dir_all(root.join("data")).unwrap();
        let log = std::fs::File::create(root.join("server.log")).unwrap();
        let mut child = Command::new(sluice_bin())
            .arg("serve")
            .args(["--host", "127.0.0.1", "--port", "0", "--data-dir"])
            .arg(root.join("data"))
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log))
            .spawn()
            .expect("spawn sluice");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut r = BufReader::new(stdout);
            let mut line = String::new();
            let _ = r.read_line(&mut line);
            let _ = tx.send(line);
            let mut sink = String::new();
            while r.read_line(&mut sink).map(|n| n > 0).unwrap_or(false) {
                sink.clear();
            }
        });
        let line = rx.recv_timeout(Duration::from_secs(30)).unwrap_or_default();
        let endpoint = line
            .trim()
            .strip_prefix("sluice listening on ")
            .unwrap_or_else(|| {
                let _ = child.kill();
                panic!("sluice did not print its ready line (got {line:?}); log in {}", root.display())
            })
            .to_string();
        TestServer { endpoint, root, child: Some(child) }
    }

    /// A client for this plain-HTTP server (static `test` credentials).
    pub fn client(&self) -> aws_sdk_sqs::Client {
        sluice_client::plain_http_client(&self.endpoint)
    }

    /// A client for this HTTPS server (static `test` credentials), trusting the test CA besides
    /// the OS roots.
    pub fn tls_client(&self, certs: &TestCerts) -> aws_sdk_sqs::Client {
        let http = sluice_client::client::https_http_client(Some(&certs.ca_cert)).expect("https client");
        aws_sdk_sqs::Client::from_conf(sluice_client::client::plain_http_config(&self.endpoint).http_client(http).build())
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.root);
        } else {
            eprintln!("kept {}", self.root.display());
        }
    }
}

pub async fn create_queue(client: &aws_sdk_sqs::Client, tag: &str) -> String {
    sluice_client::client::create_queue(client, &unique(tag).replace('_', "-"), &[]).await.expect("CreateQueue")
}

/// Visible + in flight + delayed.
pub async fn depth(client: &aws_sdk_sqs::Client, url: &str) -> u64 {
    let (a, b, c) = sluice_client::client::queue_depth(client, url).await.expect("GetQueueAttributes");
    a + b + c
}

/// A CA and a server certificate for 127.0.0.1 / localhost, made with the `openssl` command.
pub struct TestCerts {
    pub dir: PathBuf,
    pub ca_cert: PathBuf,
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
}

/// Makes a throwaway CA and a server certificate it signed (SAN `IP:127.0.0.1`, `DNS:localhost`)
/// in a new temp dir, with the `openssl` command. None (after printing why) when there is no
/// `openssl` to run.
pub fn make_test_certs() -> Option<TestCerts> {
    let dir = std::env::temp_dir().join(unique("sluice-client-tls"));
    std::fs::create_dir_all(&dir).unwrap();
    let ext = dir.join("server.ext");
    std::fs::write(
        &ext,
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=critical,CA:FALSE\n\
         keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
    let steps: [Vec<&str>; 3] = [
        [&["req", "-x509"][..], &ec[..], &["-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=sluice test CA"]]
            .concat()
            .into_iter()
            .chain(["-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign"])
            .collect(),
        [&["req"][..], &ec[..], &["-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=localhost"]].concat(),
        vec![
            "x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-out",
            "server.pem", "-days", "2", "-extfile", "server.ext",
        ],
    ];
    for args in steps {
        match Command::new("openssl").args(&args).current_dir(&dir).stdin(Stdio::null()).output() {
            Ok(out) if out.status.success() => {}
            Ok(out) => panic!("openssl {args:?} failed: {}", String::from_utf8_lossy(&out.stderr)),
            Err(e) => {
                eprintln!("SKIP: cannot run openssl ({e}): no test certificates");
                return None;
            }
        }
    }
    Some(TestCerts {
        ca_cert: dir.join("ca.pem"),
        server_cert: dir.join("server.pem"),
        server_key: dir.join("server.key"),
        dir,
    })
}

//! [`TestServer`]: one sluice for one test, on `127.0.0.1` port 0 with its own temp directory.
//!
//! Three kinds, one type:
//! - in-process: `sluice::app::open` + `sluice::server::run(listener, shutdown, state)`, as the
//!   binary's `serve` runs them, on a tokio runtime and thread of its own (so a test on a
//!   current-thread runtime, or one that blocks, cannot stall the server). Dropping the server
//!   shuts it down gracefully and waits for the store to be flushed.
//! - spawned: the real binary, for what needs a process: SIGTERM, SIGKILL, restarts on the same
//!   data dir, flags, environment variables, the ready line.
//! - external: `SQS_ENDPOINT` is set; nothing is started.

use std::collections::HashMap;
use std::fs;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{mpsc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use aws_sdk_sqs::Client;

use crate::sqs::{client_for, unique};

/// How long a server gets to become ready (recovery included).
const STARTUP_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a SIGTERM'd server gets to exit.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(30);

/// `SQS_ENDPOINT`, trimmed, if set and not empty.
pub fn external_endpoint() -> Option<String> {
    std::env::var("SQS_ENDPOINT").ok().map(|s| s.trim().trim_end_matches('/').to_string()).filter(|s| !s.is_empty())
}

/// True (and says so on stderr) when `server` is an external endpoint: the test needs a server
/// it can stop and restart.
pub fn skip_if_external(server: &TestServer, test: &str) -> bool {
    if server.is_external() {
        eprintln!("SKIP {test}: needs to restart the server (SQS_ENDPOINT is set)");
        true
    } else {
        false
    }
}

/// The `sluice` binary with default features: see [`sluice_bin_with_features`].
pub fn sluice_bin() -> PathBuf {
    sluice_bin_with_features(&[])
}

/// The `sluice` binary for tests outside the `sluice` crate (inside it, use
/// `env!("CARGO_BIN_EXE_sluice")`): `SLUICE_BIN` if set, else built through cargo (`cargo build -p
/// sluice --bin sluice`, a no-op when it is up to date) into the target directory and profile of
/// the running test, so `cargo test -p <crate>` works on a clean tree.
pub fn sluice_bin_with_features(features: &[&str]) -> PathBuf {
    if let Some(p) = std::env::var_os("SLUICE_BIN").filter(|p| !p.is_empty()) {
        return PathBuf::from(p);
    }
    // One build per feature set per test process; concurrent tests wait for it.
    static BUILT: Mutex<Option<HashMap<String, PathBuf>>> = Mutex::new(None);
    let mut built = BUILT.lock().unwrap_or_else(|e| e.into_inner());
    let key = features.join(",");
    if let Some(p) = built.get_or_insert_with(HashMap::new).get(&key) {
        return p.clone();
    }
    // A test runs as <target>/<profile>/deps/<test>-<hash>.
    let exe = std::env::current_exe().expect("path of the running test");
    let profile_dir = exe.parent().and_then(Path::parent).expect("test binary in <target>/<profile>/deps");
    let target_dir = profile_dir.parent().expect("profile dir inside the target dir");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(cargo);
    command
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["build", "-p", "sluice", "--bin", "sluice", "--target-dir"])
        .arg(target_dir);
    if profile_dir.file_name().is_some_and(|n| n == "release") {
        command.arg("--release");
    }
    if !features.is_empty() {
        command.arg("--features").arg(features.join(","));
    }
    let status = command.status().expect("run cargo build -p sluice");
    assert!(status.success(), "cargo build -p sluice --bin sluice failed: {status}");
    let bin = profile_dir.join(format!("sluice{}", std::env::consts::EXE_SUFFIX));
    assert!(bin.exists(), "cargo built sluice but {} does not exist", bin.display());
    built.get_or_insert_with(HashMap::new).insert(key, bin.clone());
    bin
}

enum Kind {
    External,
    InProcess {
        /// Dropped (or sent) to shut the server down.
        stop: Option<tokio::sync::oneshot::Sender<()>>,
        thread: Option<JoinHandle<()>>,
    },
    Spawned {
        bin: PathBuf,
        child: Option<Child>,
        /// Number of times the binary was started (for messages).
        starts: u32,
        /// Extra command-line arguments after `serve`.
        extra_args: Vec<String>,
        /// Extra environment variables; when it sets SLUICE_PORT the `--port 0` flag is left out.
        extra_env: Vec<(String, String)>,
    },
}

/// A sluice for one test. Dropping it stops the server and removes its temp dir (kept when the
/// test panicked, or with `SLUICE_TEST_KEEP=1`).
pub struct TestServer {
    /// e.g. `http://127.0.0.1:41234`
    pub endpoint: String,
    /// Root temp dir: holds `data/` and `server.log`. None when external.
    root: Option<PathBuf>,
    kind: Kind,
}

impl TestServer {
    /// An in-process server with its own data dir (the embedded store), or `SQS_ENDPOINT`.
    pub fn start() -> TestServer {
        if let Some(s) = Self::external() {
            return s;
        }
        let root = Self::make_root();
        let data_dir = root.join("data");
        Self::in_process(root, data_dir)
    }

    /// An in-process server on the in-memory store (`--data-dir :memory:`), or `SQS_ENDPOINT`.
    pub fn start_in_memory() -> TestServer {
        if let Some(s) = Self::external() {
            return s;
        }
        let root = Self::make_root();
        Self::in_process(root, PathBuf::from(":memory:"))
    }

    /// The real binary `bin` (`serve --host 127.0.0.1 --port 0 --data-dir <tempdir>/data`), or
    /// `SQS_ENDPOINT`.
    pub fn spawn(bin: impl AsRef<Path>) -> TestServer {
        Self::spawn_with(bin, &[], &[])
    }

    /// Like [`TestServer::spawn`], with extra `serve` arguments and environment variables. An
    /// argument `--data-dir` replaces the temp data dir; a variable `SLUICE_PORT` replaces
    /// `--port 0`.
    pub fn spawn_with(bin: impl AsRef<Path>, args: &[&str], env: &[(&str, &str)]) -> TestServer {
        if let Some(s) = Self::external() {
            return s;
        }
        let mut s = TestServer {
            endpoint: String::new(),
            root: Some(Self::make_root()),
            kind: Kind::Spawned {
                bin: bin.as_ref().to_path_buf(),
                child: None,
                starts: 0,
                extra_args: args.iter().map(|a| a.to_string()).collect(),
                extra_env: env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            },
        };
        s.spawn_process();
        s
    }

    fn external() -> Option<TestServer> {
        external_endpoint().map(|endpoint| TestServer { endpoint, root: None, kind: Kind::External })
    }

    fn make_root() -> PathBuf {
        // The clock's nanoseconds too: a kept dir of an earlier process with the same pid must
        // not be reused.
        let nanos =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
        let root = std::env::temp_dir().join(format!("{}_{}", unique("sluice-test"), nanos % 100_000));
        fs::create_dir_all(root.join("data")).expect("create temp data dir");
        root
    }

    fn in_process(root: PathBuf, data_dir: PathBuf) -> TestServer {
        let (ready_tx, ready_rx) = mpsc::channel::<Result<SocketAddr, String>>();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("sluice-test-server".into())
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build() {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = ready_tx.send(Err(format!("runtime: {e}")));
                        return;
                    }
                };
                runtime.block_on(async move {
                    let args = sluice::config::ServeArgs { data_dir: Some(data_dir), ..Default::default() };
                    let opened = match sluice::config::Config::load(&args) {
                        Ok(config) => sluice::app::open(&config).await.map_err(|e| e.to_string()),
                        Err(e) => Err(e.to_string()),
                    };
                    let opened = match opened {
                        Ok(o) => o,
                        Err(e) => {
                            let _ = ready_tx.send(Err(e));
                            return;
                        }
                    };
                    let listener = match tokio::net::TcpListener::bind("127.0.0.1:0").await {
                        Ok(l) => l,
                        Err(e) => {
                            let _ = ready_tx.send(Err(format!("bind: {e}")));
                            return;
                        }
                    };
                    let _ = ready_tx.send(listener.local_addr().map_err(|e| e.to_string()));
                    // The sender dropped counts as a stop too.
                    let shutdown = async move {
                        let _ = stopped.await;
                    };
                    sluice::server::run(sluice::server::Listener::plain(listener), shutdown, opened.state.clone())
                        .await;
                    // `opened` (the data dir lock) lives until the store is flushed.
                    drop(opened);
                });
            })
            .expect("spawn the server thread");
        let addr = match ready_rx.recv_timeout(STARTUP_TIMEOUT) {
            Ok(Ok(addr)) => addr,
            Ok(Err(e)) => panic!("in-process sluice did not start: {e}"),
            Err(_) => panic!("in-process sluice did not start within {STARTUP_TIMEOUT:?}"),
        };
        TestServer {
            endpoint: format!("http://{addr}"),
            root: Some(root),
            kind: Kind::InProcess { stop: Some(stop), thread: Some(thread) },
        }
    }

    pub fn is_external(&self) -> bool {
        matches!(self.kind, Kind::External)
    }

    /// The temp dir (holds `data/`, `server.log`; tests may put their own files there).
    pub fn root(&self) -> &Path {
        self.root.as_deref().expect("external server has no temp dir")
    }

    pub fn data_dir(&self) -> PathBuf {
        self.root().join("data")
    }

    fn log_path(&self) -> PathBuf {
        self.root().join("server.log")
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

    fn spawn_process(&mut self) {
        let data_dir = self.data_dir();
        let stderr = if std::env::var_os("SLUICE_TEST_STDERR").is_some() {
            Stdio::inherit()
        } else {
            let f = fs::OpenOptions::new().create(true).append(true).open(self.log_path()).expect("open server.log");
            Stdio::from(f)
        };
        let Kind::Spawned { bin, child: slot, starts, extra_args, extra_env } = &mut self.kind else {
            panic!("not a spawned server");
        };
        assert!(slot.is_none(), "server already running");
        let mut command = Command::new(&*bin);
        command.arg("serve").arg("--host").arg("127.0.0.1");
        if !extra_env.iter().any(|(k, _)| k == "SLUICE_PORT") {
            command.arg("--port").arg("0");
        }
        // Extra arguments may choose the data dir themselves (e.g. `--data-dir :memory:`).
        if !extra_args.iter().any(|a| a == "--data-dir") {
            command.arg("--data-dir").arg(&data_dir);
        }
        command.args(&*extra_args);
        for (k, v) in &*extra_env {
            command.env(k, v);
        }
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {}: {e}", bin.display()));
        *starts += 1;
        let starts = *starts;

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
                    "sluice (start #{starts}) did not become ready: {e}; exit status {status:?}\n--- server log tail ---\n{}",
                    self.log_tail()
                );
            }
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "sluice (start #{starts}) printed no ready line within {STARTUP_TIMEOUT:?}\n--- server log tail ---\n{}",
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
        if let Kind::Spawned { child: slot, .. } = &mut self.kind {
            *slot = Some(child);
        }
    }

    fn child(&mut self) -> &mut Option<Child> {
        match &mut self.kind {
            Kind::Spawned { child, .. } => child,
            _ => panic!("only a spawned server (TestServer::spawn) can be signalled or restarted"),
        }
    }

    /// The process id of a spawned server, for signals the kit does not send itself (SIGHUP).
    pub fn pid(&self) -> u32 {
        match &self.kind {
            Kind::Spawned { child: Some(child), .. } => child.id(),
            _ => panic!("pid() of a server that is not a running process"),
        }
    }

    /// Graceful stop of a spawned server: SIGTERM, wait for exit. Returns the exit status.
    /// Panics if the process does not exit within the timeout.
    pub fn terminate(&mut self) -> ExitStatus {
        let pid = self.child().as_ref().expect("server not running").id();
        let st = Command::new("kill").arg("-TERM").arg(pid.to_string()).status().expect("run kill -TERM");
        assert!(st.success(), "kill -TERM {pid} failed: {st}");
        let deadline = Instant::now() + SHUTDOWN_TIMEOUT;
        loop {
            let child = self.child().as_mut().expect("server not running");
            if let Some(status) = child.try_wait().expect("try_wait") {
                *self.child() = None;
                return status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                *self.child() = None;
                panic!(
                    "sluice did not exit within {SHUTDOWN_TIMEOUT:?} of SIGTERM\n--- server log tail ---\n{}",
                    self.log_tail()
                );
            }
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    /// Hard stop of a spawned server: SIGKILL (no chance to flush anything).
    pub fn kill(&mut self) {
        let mut child = self.child().take().expect("server not running");
        child.kill().expect("SIGKILL sluice");
        let _ = child.wait();
    }

    /// Starts the binary again on the same data dir (new port). The server must have been
    /// stopped first.
    pub fn restart(&mut self) {
        assert!(!self.is_external(), "cannot restart an external server");
        self.spawn_process();
    }

    /// The queue URL the server should hand out for `name` (sluice's default account id
    /// `000000000000`). None for external endpoints.
    pub fn expected_queue_url(&self, name: &str) -> Option<String> {
        if self.is_external() {
            None
        } else {
            Some(format!("{}/000000000000/{name}", self.endpoint))
        }
    }

    /// An SDK client for this server, retries off (see [`client_for`]).
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
        match &mut self.kind {
            Kind::External => {}
            Kind::InProcess { stop, thread } => {
                drop(stop.take());
                if let Some(t) = thread.take() {
                    let _ = t.join();
                }
            }
            Kind::Spawned { child, .. } => {
                if let Some(mut child) = child.take() {
                    let _ = child.kill();
                    let _ = child.wait();
                }
            }
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

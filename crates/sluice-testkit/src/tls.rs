//! A throwaway certificate authority for TLS tests, made with the `openssl` command at test time
//! (no certificate is checked in, none expires in the tree): [`TestCa::new`] makes the CA in a new
//! temp dir, [`TestCa::issue`] signs a server certificate for `127.0.0.1` / `localhost` with it.
//! Keys are P-256; certificates are valid for two days. Without an `openssl` to run, `new` prints
//! `SKIP` and returns None, and the test returns early.
//!
//! The one copy for the Rust tests (the HTTPS listener's in `crates/sluice/tests/tls.rs`, the
//! client's HTTPS tests in `crates/sluice-client/tests`). It depends on std alone, on purpose:
//! the kit depends on `sluice`, and so on `sluice-sns`, so `sluice-sns`'s own tests cannot
//! dev-depend on the kit without building a second copy of `sluice-sns`. None of them needs a
//! certificate today (SNS's HTTPS deliveries are tested end to end by tests/python/test_sns.py,
//! its CA-file handling with files written in the test); one that does can include this file
//! alone (`#[path = "../../sluice-testkit/src/tls.rs"] mod tls;` in an integration test) rather
//! than copy it. The Python suite has its own (tests/python/test_tls.py).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

/// A CA in a temp dir of its own (`ca.pem`, `ca.key`), and the certificates it issued. Dropping it
/// removes the dir (kept when the test panicked, or with `SLUICE_TEST_KEEP=1`).
pub struct TestCa {
    /// The temp dir holding every file.
    pub dir: PathBuf,
    /// The CA certificate (PEM): what a client trusts.
    pub cert: PathBuf,
}

/// A server certificate and its key, as files in the CA's dir.
pub struct Leaf {
    /// `<name>.pem`: the certificate, SAN `IP:127.0.0.1`, `DNS:localhost`.
    pub cert: PathBuf,
    /// `<name>.key`: its private key (PKCS#8 PEM).
    pub key: PathBuf,
}

impl Leaf {
    pub fn cert_pem(&self) -> String {
        read(&self.cert)
    }

    pub fn key_pem(&self) -> String {
        read(&self.key)
    }
}

const EC_KEY: [&str; 5] = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];

impl TestCa {
    /// A new CA, or None (after printing `SKIP`) when the `openssl` command cannot be run.
    pub fn new() -> Option<TestCa> {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "sluice-test-ca-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).expect("create the CA's temp dir");
        std::fs::write(
            dir.join("leaf.ext"),
            "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=critical,CA:FALSE\n\
             keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n",
        )
        .expect("write leaf.ext");
        let mut args = vec!["req", "-x509"];
        args.extend(EC_KEY);
        args.extend(["-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=sluice test CA"]);
        args.extend([
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ]);
        let ca = TestCa { cert: dir.join("ca.pem"), dir };
        match Command::new("openssl").args(&args).current_dir(&ca.dir).stdin(Stdio::null()).output() {
            Ok(out) if out.status.success() => Some(ca),
            Ok(out) => panic!("openssl {args:?} failed: {}", String::from_utf8_lossy(&out.stderr)),
            Err(e) => {
                eprintln!("SKIP: cannot run openssl ({e}): no test certificates");
                None
            }
        }
    }

    /// The CA certificate, PEM.
    pub fn cert_pem(&self) -> String {
        read(&self.cert)
    }

    /// A new server certificate for `127.0.0.1` / `localhost` signed by this CA, with a key of its
    /// own: `<name>.pem` and `<name>.key` in [`TestCa::dir`]. Each name gets a different key.
    pub fn issue(&self, name: &str) -> Leaf {
        let (key, csr, pem, subj) =
            (format!("{name}.key"), format!("{name}.csr"), format!("{name}.pem"), format!("/CN={name}"));
        let mut req = vec!["req"];
        req.extend(EC_KEY);
        req.extend(["-keyout", &key, "-out", &csr, "-subj", &subj]);
        self.openssl(&req);
        self.openssl(&[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            &pem,
            "-days",
            "2",
            "-extfile",
            "leaf.ext",
        ]);
        Leaf { cert: self.dir.join(pem), key: self.dir.join(key) }
    }

    fn openssl(&self, args: &[&str]) {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(&self.dir)
            .stdin(Stdio::null())
            .output()
            .expect("run openssl (it ran for the CA)");
        assert!(out.status.success(), "openssl {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    }
}

impl Drop for TestCa {
    fn drop(&mut self) {
        if std::env::var_os("SLUICE_TEST_KEEP").is_none() && !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

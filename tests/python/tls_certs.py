"""Test certificates for the Python suite's HTTPS tests, made with the `openssl` command at test time: a throwaway CA
and server certificates it signs (SAN IP:127.0.0.1, DNS:localhost; P-256 keys, valid two days). The Python twin of the
Rust kit's `sluice_testkit::tls::TestCa`; callers skip when `shutil.which("openssl")` is None."""

import subprocess
from pathlib import Path

_EC = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
_LEAF_EXT = ("subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=critical,CA:FALSE\n"
             "keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n")


def _openssl(*args, cwd):
    out = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, f"openssl {' '.join(args)} failed: {out.stderr}"


def make_ca(d: Path, name: str = "ca"):
    """`<name>.pem` and `<name>.key` in `d`: a CA certificate and its key."""
    _openssl("req", "-x509", *_EC, "-keyout", f"{name}.key", "-out", f"{name}.pem", "-days", "2",
             "-subj", f"/CN=sluice test {name}", "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=d)


def make_server_cert(d: Path, name: str = "server", ca: str = "ca"):
    """`<name>.pem` and `<name>.key` in `d`: a server certificate for 127.0.0.1 / localhost signed by CA `ca`."""
    (d / f"{name}.ext").write_text(_LEAF_EXT)
    _openssl("req", *_EC, "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", "/CN=localhost", cwd=d)
    _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.pem", "-CAkey", f"{ca}.key", "-CAcreateserial",
             "-out", f"{name}.pem", "-days", "2", "-extfile", f"{name}.ext", cwd=d)

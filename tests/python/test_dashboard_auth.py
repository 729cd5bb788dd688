"""The dashboard's login and /metrics' token, black-box (issue 23 item 8).

A sluice with access keys: the dashboard's JSON API (/api/...) needs a SigV4 signature or a login session, opened by
POST /ui/login with an access key id and its secret; the session cookie is HttpOnly, SameSite=Strict, Path=/; every
cookie-authenticated request by a method other than GET/HEAD (the dashboard's SQS calls, logout) must carry the
session's CSRF token in X-Sluice-Csrf. Every dashboard answer sends Content-Security-Policy, X-Frame-Options: DENY,
X-Content-Type-Options: nosniff and Referrer-Policy: no-referrer (OWASP's HTTP headers cheat sheet). /metrics needs
`Authorization: Bearer TOKEN` when a metrics token is configured (RFC 6750: 401 with WWW-Authenticate otherwise).
Without keys the dashboard needs no login and still sends the headers.
"""

import json
import os
import shutil
import subprocess

import boto3
import pytest
import requests
from botocore.config import Config

from sluice_server import REPO_ROOT, SluiceServer

REGION = "us-east-1"
KEY, SECRET = "AKSLUICEDASHKEY00001", "dash-secret-0123456789abcdefghijklmnopq"
OTHER_KEY, OTHER_SECRET = "AKSLUICEDASHKEY00002", "other-secret-0123456789abcdefghijklmnop"
FILE_TOKEN = "file-metrics-token-0123456789"
ENV_TOKEN = "env-metrics-token-9876543210"
JSON_CT = "application/x-amz-json-1.0"
SECURITY_HEADERS = ("Content-Security-Policy", "X-Frame-Options", "X-Content-Type-Options", "Referrer-Policy")

pytestmark = pytest.mark.skipif(bool(os.environ.get("SQS_ENDPOINT")), reason="starts its own sluice")


@pytest.fixture(scope="module")
def keyed(tmp_path_factory):
    """A sluice with two access keys (the second in another account) and metrics_token in its TOML file."""
    root = tmp_path_factory.mktemp("dash-keyed")
    config = root / "sluice.toml"
    config.write_text(
        f'metrics_token = "{FILE_TOKEN}"\n'
        "[[access_keys]]\n"
        f'id = "{KEY}"\nsecret = "{SECRET}"\naccount_id = "000000000000"\n'
        'principal_arn = "arn:aws:iam::000000000000:user/dash"\n'
        "[[access_keys]]\n"
        f'id = "{OTHER_KEY}"\nsecret = "{OTHER_SECRET}"\naccount_id = "111122223333"\n')
    s = SluiceServer(root / "data", log_name="dash-keyed-server", extra_args=["--config", str(config)])
    s.start()
    yield s
    assert s.stop() == 0
    log = open(s.log_path).read()
    assert SECRET not in log and OTHER_SECRET not in log and FILE_TOKEN not in log, "secrets are never logged"


@pytest.fixture(scope="module")
def open_server(tmp_path_factory):
    """A sluice without keys (loopback, open), its metrics token from SLUICE_METRICS_TOKEN."""
    root = tmp_path_factory.mktemp("dash-open")
    s = SluiceServer(root / "data", log_name="dash-open-server", env={"SLUICE_METRICS_TOKEN": ENV_TOKEN})
    s.start()
    yield s
    assert s.stop() == 0


def login(ep, key=KEY, secret=SECRET):
    """A requests session logged in to the dashboard, and the login answer."""
    browser = requests.Session()
    r = browser.post(ep + "/ui/login", json={"access_key_id": key, "secret_access_key": secret})
    assert r.status_code == 200, r.text
    return browser, r


def sqs_call(browser, ep, action, body, csrf=None):
    headers = {"X-Amz-Target": "AmazonSQS." + action, "Content-Type": JSON_CT}
    if csrf is not None:
        headers["X-Sluice-Csrf"] = csrf
    return browser.post(ep + "/", data=json.dumps(body), headers=headers)


def assert_security_headers(r):
    for name in SECURITY_HEADERS:
        assert name in r.headers, f"{r.request.method} {r.url}: no {name} header ({dict(r.headers)})"
    csp = r.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "'unsafe-inline'" not in csp, csp
    assert "frame-ancestors 'none'" in csp, csp
    assert r.headers["X-Frame-Options"] == "DENY"
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    assert r.headers["Referrer-Policy"] == "no-referrer"


def test_unauthenticated_api_is_refused_and_the_page_says_a_login_is_needed(keyed):
    ep = keyed.endpoint
    r = requests.get(ep + "/api/queues")
    assert r.status_code == 403, r.text
    assert "MissingAuthenticationToken" in r.text
    assert_security_headers(r)
    s = requests.get(ep + "/ui/session")
    assert s.status_code == 200 and s.json() == {"auth_required": True, "logged_in": False}
    assert s.headers.get("Cache-Control") == "no-store"


def test_wrong_secret_or_unknown_key_is_refused_without_a_cookie(keyed):
    ep = keyed.endpoint
    for key, secret in [(KEY, SECRET[:-1]), (KEY, SECRET + "x"), (KEY, ""), ("AKUNKNOWN", SECRET), (KEY, OTHER_SECRET)]:
        r = requests.post(ep + "/ui/login", json={"access_key_id": key, "secret_access_key": secret})
        assert r.status_code == 401, (key, r.text)
        assert "Set-Cookie" not in r.headers
    r = requests.post(ep + "/ui/login", json={"access_key_id": KEY})
    assert r.status_code == 400
    assert requests.get(ep + "/ui/login").status_code != 200


def test_login_sets_a_strict_http_only_cookie_and_the_api_then_works(keyed):
    ep = keyed.endpoint
    browser, r = login(ep)
    cookie = r.headers["Set-Cookie"]
    attrs = [a.strip() for a in cookie.split(";")]
    assert attrs[0].startswith("sluice_session=") and len(attrs[0]) > 40, cookie
    assert "HttpOnly" in attrs and "SameSite=Strict" in attrs and "Path=/" in attrs, cookie
    assert "Max-Age=43200" in attrs, cookie
    assert "Secure" not in attrs, "plain HTTP: a Secure cookie would never be sent back"
    body = r.json()
    assert body["logged_in"] and body["account_id"] == "000000000000"
    assert body["principal_arn"] == "arn:aws:iam::000000000000:user/dash"
    assert len(body["csrf_token"]) >= 32 and body["csrf_token"] not in cookie
    assert_security_headers(r)
    assert r.headers.get("Cache-Control") == "no-store"

    q = browser.get(ep + "/api/queues")
    assert q.status_code == 200, q.text
    assert "queues" in q.json()
    assert_security_headers(q)
    s = browser.get(ep + "/ui/session").json()
    assert s["logged_in"] and s["csrf_token"] == body["csrf_token"], "a reloaded page learns its token here"
    # A form body works too (a page without JavaScript's fetch).
    f = requests.post(ep + "/ui/login", data={"access_key_id": OTHER_KEY, "secret_access_key": OTHER_SECRET})
    assert f.status_code == 200 and f.json()["account_id"] == "111122223333"


def test_state_changing_calls_need_the_csrf_token(keyed, unique_name):
    ep = keyed.endpoint
    browser, r = login(ep)
    csrf = r.json()["csrf_token"]
    name = unique_name("csrf")
    for token in (None, "", "wrong", csrf[:-1]):
        refused = sqs_call(browser, ep, "CreateQueue", {"QueueName": name}, csrf=token)
        assert refused.status_code == 403, (token, refused.text)
        assert refused.json()["__type"].endswith("AccessDeniedException"), refused.text
    signed = boto3.client("sqs", endpoint_url=ep, region_name=REGION, aws_access_key_id=KEY,
                          aws_secret_access_key=SECRET, config=Config(retries={"total_max_attempts": 1}))
    assert name not in str(signed.list_queues(QueueNamePrefix=name).get("QueueUrls", [])), "nothing was created"

    created = sqs_call(browser, ep, "CreateQueue", {"QueueName": name}, csrf=csrf)
    assert created.status_code == 200, created.text
    url = created.json()["QueueUrl"]
    sent = sqs_call(browser, ep, "SendMessage", {"QueueUrl": url, "MessageBody": "via the dashboard"}, csrf=csrf)
    assert sent.status_code == 200, sent.text
    peek = browser.get(ep + f"/api/queues/{name}/peek")
    assert peek.status_code == 200 and peek.json()["messages"][0]["body"] == "via the dashboard"
    # The token alone, without the cookie, is nothing.
    bare = sqs_call(requests.Session(), ep, "DeleteQueue", {"QueueUrl": url}, csrf=csrf)
    assert bare.status_code == 403 and "MissingAuthenticationToken" in bare.text
    # A signature still wins over a cookie: a bad one is refused even with a good session.
    bad_sig = browser.post(ep + "/", data=json.dumps({"QueueUrl": url}),
                           headers={"X-Amz-Target": "AmazonSQS.DeleteQueue", "Content-Type": JSON_CT,
                                    "X-Sluice-Csrf": csrf, "Authorization": "AWS4-HMAC-SHA256 garbage"})
    assert bad_sig.status_code in (400, 403), bad_sig.text
    deleted = sqs_call(browser, ep, "DeleteQueue", {"QueueUrl": url}, csrf=csrf)
    assert deleted.status_code == 200, deleted.text


def test_forged_cookies_are_refused(keyed):
    ep = keyed.endpoint
    browser, _ = login(ep)
    value = browser.cookies["sluice_session"]
    sid, mac = value.split(".")
    for forged in (sid, sid + "." + mac[:-2] + ("AA" if mac[-2:] != "AA" else "BB"), "x.y", "", mac + "." + sid):
        r = requests.get(ep + "/api/queues", cookies={"sluice_session": forged})
        assert r.status_code == 403, forged


def test_logout_needs_the_token_and_ends_the_session(keyed):
    ep = keyed.endpoint
    browser, r = login(ep)
    csrf = r.json()["csrf_token"]
    value = browser.cookies["sluice_session"]
    refused = browser.post(ep + "/ui/logout")
    assert refused.status_code == 403, "another page cannot log the user out"
    assert browser.get(ep + "/api/queues").status_code == 200
    out = browser.post(ep + "/ui/logout", headers={"X-Sluice-Csrf": csrf})
    assert out.status_code == 200, out.text
    cleared = out.headers["Set-Cookie"]
    assert cleared.startswith("sluice_session=;") and "Max-Age=0" in cleared, cleared
    # The old cookie is dead on the server, not just deleted in the browser.
    stale = requests.get(ep + "/api/queues", cookies={"sluice_session": value})
    assert stale.status_code == 403
    assert requests.get(ep + "/ui/session", cookies={"sluice_session": value}).json()["logged_in"] is False


def test_pages_and_answers_send_the_security_headers(keyed, open_server):
    for ep in (keyed.endpoint, open_server.endpoint):
        for path in ("/ui", "/ui/", "/ui/app.js", "/ui/style.css", "/ui/session", "/api/topics"):
            r = requests.get(ep + path)
            assert_security_headers(r)
        page = requests.get(ep + "/ui").text
        # The policy forbids inline script and style: the page must not need them.
        assert "<script>" not in page and "style=" not in page and " on" + "click=" not in page
        assert "<script src=\"/ui/app.js\"></script>" in page
        assert 'style="' not in requests.get(ep + "/ui/app.js").text, "inline style attributes are blocked by CSP"


def test_without_keys_the_dashboard_needs_no_login(open_server):
    ep = open_server.endpoint
    assert requests.get(ep + "/ui/session").json() == {"auth_required": False, "logged_in": False}
    r = requests.get(ep + "/api/queues")
    assert r.status_code == 200 and "queues" in r.json()
    assert_security_headers(r)
    created = sqs_call(requests.Session(), ep, "CreateQueue", {"QueueName": "open-dash"})
    assert created.status_code == 200, created.text
    assert requests.post(ep + "/ui/login", json={"access_key_id": KEY, "secret_access_key": SECRET}).status_code == 400


@pytest.mark.parametrize("which", ["toml", "env"])
def test_metrics_needs_the_bearer_token_when_one_is_set(which, keyed, open_server):
    server, token = (keyed, FILE_TOKEN) if which == "toml" else (open_server, ENV_TOKEN)
    ep = server.endpoint
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Bearer " + token[:-1]},
                    {"Authorization": token}, {"Authorization": "Basic " + token}):
        r = requests.get(ep + "/metrics", headers=headers)
        assert r.status_code == 401, headers
        assert r.headers.get("WWW-Authenticate", "").startswith("Bearer"), r.headers
        assert "sluice_" not in r.text
    r = requests.get(ep + "/metrics", headers={"Authorization": "Bearer " + token})
    assert r.status_code == 200 and "sluice_" in r.text
    # Liveness and readiness probes never need it.
    assert requests.get(ep + "/health").status_code == 200
    assert requests.get(ep + "/ready").status_code == 200


@pytest.mark.skipif(shutil.which("node") is None, reason="needs node (the dashboard's JavaScript)")
@pytest.mark.parametrize("which", ["keyed", "open"])
def test_the_dashboard_script_logs_in_sends_the_token_and_logs_out(which, keyed, open_server):
    """app.js itself, in Node with a fake DOM (tests/browser/login_fake_dom.mjs): login form, a wrong secret's error,
    login, live polling, CreateQueue with X-Sluice-Csrf, logout; without keys, no login form at all."""
    server, key, secret = (keyed, KEY, SECRET) if which == "keyed" else (open_server, "-", "-")
    run = subprocess.run(["node", str(REPO_ROOT / "tests/browser/login_fake_dom.mjs"), server.endpoint, key, secret],
                         env={**os.environ, "APP_JS": str(REPO_ROOT / "crates/sluice/src/ui/app.js")},
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 0 and "all ok" in run.stdout, run.stdout + run.stderr

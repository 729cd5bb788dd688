// The dashboard's login flow (app.js) against a real sluice with access keys, in plain Node with a lenient fake DOM:
// no browser, so it checks the flow and the requests the page sends (login, CSRF header on SQS calls, logout), not
// rendering or the Content-Security-Policy (dashboard.test.mjs does those in Chromium, without keys).
// Usage: APP_JS=crates/sluice/src/ui/app.js node login_fake_dom.mjs ENDPOINT KEY_ID SECRET   (KEY_ID "-": a server
// without keys, where no login may be asked). Run by tests/python/test_dashboard_auth.py when `node` is installed.
import fs from 'node:fs';
import vm from 'node:vm';
const [ep, key, secret] = process.argv.slice(2);
const registry = new Map();
function el(id) {
  const handlers = {};
  const target = { id, dataset: {}, style: {}, hidden: false, value: '', textContent: '', __html: undefined, children: [],
    classList: { add() {}, remove() {}, toggle() {}, contains() { return false; } },
    addEventListener(t, f) { (handlers[t] = handlers[t] || []).push(f); }, handlers,
    focus() {}, remove() {}, appendChild(c) { this.children.push(c); return c; }, setAttribute() {}, getAttribute() { return null; },
    querySelector: (s) => query(s), querySelectorAll: () => [], closest: () => null, firstChild: null };
  let html = '';
  Object.defineProperty(target, 'innerHTML', { get: () => html, set(v) { html = v; target.firstChild = v ? {} : null;
    for (const m of String(v).matchAll(/id="([^"]+)"/g)) registry.set(m[1], el(m[1])); } });
  return new Proxy(target, { get(t, p) { if (p in t) return t[p]; if (typeof p === 'symbol') return undefined; return () => {}; } });
}
function query(sel) { const id = sel.startsWith('#') ? sel.slice(1) : sel; if (!registry.has(id)) registry.set(id, el(id)); return registry.get(id); }
for (const id of ['conn', 'view', 'confirm', 'confirm-ok', 'confirm-cancel', 'confirm-title', 'confirm-text', 'toasts', 'who', 'logout']) registry.set(id, el(id));
let cookie = '';
const log = [];
async function fakeFetch(url, opts = {}) {
  const headers = Object.assign({}, opts.headers || {});
  if (cookie) headers.Cookie = cookie;
  log.push([opts.method || 'GET', url, headers['X-Sluice-Csrf'] ? 'csrf' : '-']);
  const res = await fetch(ep + url, { ...opts, headers });
  const sc = res.headers.get('set-cookie');
  if (sc) cookie = sc.split(';')[0].endsWith('=') ? '' : sc.split(';')[0];
  return res;
}
const toasts = [];
const document = { querySelector: query, createElement: () => { const e = el('x'); toasts.push(e); return e; }, addEventListener() {} };
const window = { addEventListener() {}, scrollTo() {}, location: { hash: '' } };
const ctx = vm.createContext({ document, window, location: window.location, fetch: fakeFetch, setTimeout, clearTimeout, performance, console, Promise, Map, Set, JSON, Date, Math, Number, String, Array, Object, Error, encodeURIComponent, URLSearchParams });
vm.runInContext(fs.readFileSync(process.env.APP_JS, 'utf8'), ctx);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
await sleep(500);
const check = (c, m) => { if (!c) { console.log('FAIL', m, log); process.exit(1); } console.log('ok', m); };
if (key === '-') {
  await sleep(500);
  check(!registry.get('view').innerHTML.includes('login-form'), 'no login without keys');
  check(registry.get('conn').dataset.state === 'live', 'live without keys');
  check(registry.get('logout').hidden === true, 'no logout button without keys');
  registry.get('create-name').value = 'open-created';
  await registry.get('create-form').handlers.submit[0]({ preventDefault() {} });
  check(toasts.some((t) => String(t.textContent).includes('Created queue open-created')), 'created without keys');
  console.log('all ok'); process.exit(0);
}
check(registry.get('view').innerHTML.includes('login-form'), 'login form shown');
registry.get('login-key').value = key; registry.get('login-secret').value = 'wrong';
await registry.get('login-form').handlers.submit[0]({ preventDefault() {} });
check(registry.get('login-error').textContent.includes('wrong'), 'wrong secret shows an error: ' + registry.get('login-error').textContent);
registry.get('login-secret').value = secret;
await registry.get('login-form').handlers.submit[0]({ preventDefault() {} });
await sleep(800);
check(registry.get('conn').dataset.state === 'live', 'dashboard live after login: ' + registry.get('conn').textContent);
check(registry.get('who').textContent.includes(key), 'who shows the key');
check(registry.get('logout').hidden === false, 'logout button visible');
registry.get('create-name').value = 'dash-js-created';
await registry.get('create-form').handlers.submit[0]({ preventDefault() {} });
const create = log.find((l) => l[0] === 'POST' && l[1] === '/');
check(create && create[2] === 'csrf', 'CreateQueue carried the CSRF token');
check(toasts.some((t) => String(t.textContent).includes('Created queue dash-js-created')), 'queue created: ' + toasts.map((t) => t.textContent));
await registry.get('logout').handlers.click[0]();
check(registry.get('view').innerHTML.includes('login-form') && cookie === '', 'logged out: login form again, cookie cleared');
console.log('all ok');
process.exit(0);

// Real-browser test of the sluice dashboard (/ui).
//
// Starts the real sluice binary (SLUICE_BIN, default target/debug/sluice) on a free port with a temporary data
// directory, drives Debian's Chromium (CHROMIUM, default /usr/bin/chromium) through playwright-core (no browser
// download), and walks through the dashboard like a person: queue list, search, paging, a queue's page, send a
// message, peek, purge with the in-page confirmation, the redrive button of a dead-letter queue.
// Screenshots: tests/artifacts/dashboard.png (the list) and tests/artifacts/dashboard-queue.png (a queue page).
//
//   cd tests/browser && npm ci && node dashboard.test.mjs
//
// Exits non-zero on failure; its last line is "browser: N passed, N failed".
import { spawn } from 'node:child_process';
import { mkdtempSync, mkdirSync, rmSync, existsSync, createWriteStream } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = resolve(HERE, '..', '..');
const ARTIFACTS = join(ROOT, 'tests', 'artifacts');
const BIN = process.env.SLUICE_BIN || join(process.env.CARGO_TARGET_DIR || join(ROOT, 'target'), 'debug', 'sluice');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const STEP_TIMEOUT_MS = 15000;

let passed = 0;
let failed = 0;
const cleanups = [];

function log(...a) {
  console.log(...a);
}

async function check(name, fn) {
  const t0 = Date.now();
  try {
    await fn();
    passed += 1;
    log(`ok   ${name} (${Date.now() - t0} ms)`);
  } catch (e) {
    failed += 1;
    log(`FAIL ${name}: ${e && e.stack ? e.stack : e}`);
    throw e;
  }
}

function assert(cond, msg) {
  if (!cond) throw new Error('assertion failed: ' + msg);
}

// ---- the server --------------------------------------------------------------------------------------------------

async function startServer() {
  if (!existsSync(BIN)) throw new Error(`sluice binary not found at ${BIN} (cargo build -p sluice, or set SLUICE_BIN)`);
  const dataDir = mkdtempSync(join(tmpdir(), 'sluice-browser-data-'));
  cleanups.push(() => rmSync(dataDir, { recursive: true, force: true }));
  const env = { ...process.env };
  for (const k of Object.keys(env)) if (k.startsWith('SLUICE_')) delete env[k]; // no stray config
  env.SLUICE_LOG = 'warn';
  const child = spawn(BIN, ['serve', '--host', '127.0.0.1', '--port', '0', '--data-dir', dataDir], {
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const logFile = createWriteStream(join(ARTIFACTS, 'browser-sluice.log'));
  child.stderr.pipe(logFile);
  cleanups.push(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 10000);
      await exited;
      clearTimeout(t);
    }
  });
  const base = await new Promise((resolveBase, reject) => {
    let buf = '';
    const timer = setTimeout(() => reject(new Error('sluice did not print its address within 30 s')), 30000);
    child.stdout.on('data', (chunk) => {
      logFile.write(chunk);
      buf += chunk.toString();
      const m = /sluice listening on (http:\/\/\S+)/.exec(buf);
      if (m) {
        clearTimeout(timer);
        resolveBase(m[1].replace(/\/$/, ''));
      }
    });
    child.once('exit', (code, sig) => {
      clearTimeout(timer);
      reject(new Error(`sluice exited early (code ${code}, signal ${sig}); see ${join(ARTIFACTS, 'browser-sluice.log')}`));
    });
  });
  return base;
}

async function sqs(base, action, body) {
  const res = await fetch(base + '/', {
    method: 'POST',
    headers: { 'X-Amz-Target': 'AmazonSQS.' + action, 'Content-Type': 'application/x-amz-json-1.0' },
    body: JSON.stringify(body),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`${action} -> HTTP ${res.status}: ${text}`);
  return text ? JSON.parse(text) : {};
}

// ---- the test ------------------------------------------------------------------------------------------------------

async function main() {
  mkdirSync(ARTIFACTS, { recursive: true });
  if (!existsSync(CHROMIUM)) throw new Error(`Chromium not found at ${CHROMIUM} (apt-get install chromium, or set CHROMIUM)`);

  const base = await startServer();
  log(`sluice at ${base}`);

  const Q = 'dashboard-test';
  let queueUrl;
  let dlqArn;
  await check('create queues through the SQS API', async () => {
    queueUrl = (await sqs(base, 'CreateQueue', { QueueName: Q })).QueueUrl;
    assert(queueUrl && queueUrl.endsWith('/' + Q), 'CreateQueue returned ' + queueUrl);
    // A dead-letter pair, and enough filler queues for a second page (page size 50).
    const dlqUrl = (await sqs(base, 'CreateQueue', { QueueName: 'orders-dlq' })).QueueUrl;
    dlqArn = (await sqs(base, 'GetQueueAttributes', { QueueUrl: dlqUrl, AttributeNames: ['QueueArn'] })).Attributes.QueueArn;
    await sqs(base, 'CreateQueue', {
      QueueName: 'orders',
      Attributes: { RedrivePolicy: JSON.stringify({ deadLetterTargetArn: dlqArn, maxReceiveCount: 3 }) },
    });
    await sqs(base, 'CreateQueue', { QueueName: 'events.fifo', Attributes: { FifoQueue: 'true', ContentBasedDeduplication: 'true' } });
    const names = [];
    for (let i = 0; i < 55; i++) names.push('filler-' + String(i).padStart(3, '0'));
    await Promise.all(names.map((n) => sqs(base, 'CreateQueue', { QueueName: n })));
    const api = await (await fetch(base + '/api/queues')).json();
    assert(api.queues.length === 59, 'expected 59 queues from /api/queues, got ' + api.queues.length);
  });

  // Some traffic, so the rates and charts have something to show.
  let traffic = true;
  const ordersUrl = queueUrl.replace(/\/[^/]+$/, '/orders');
  const trafficLoop = (async () => {
    let i = 0;
    while (traffic && i < 400) {
      i += 1;
      await sqs(base, 'SendMessage', { QueueUrl: ordersUrl, MessageBody: JSON.stringify({ order: i }) }).catch(() => {});
      if (i % 3 === 0) {
        const r = await sqs(base, 'ReceiveMessage', { QueueUrl: ordersUrl, MaxNumberOfMessages: 2 }).catch(() => ({}));
        for (const m of r.Messages || []) {
          await sqs(base, 'DeleteMessage', { QueueUrl: ordersUrl, ReceiptHandle: m.ReceiptHandle }).catch(() => {});
        }
      }
      await new Promise((r) => setTimeout(r, 60));
    }
  })();

  const userDataDir = mkdtempSync(join(tmpdir(), 'sluice-browser-profile-'));
  cleanups.push(() => rmSync(userDataDir, { recursive: true, force: true }));
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    viewport: { width: 1440, height: 1000 },
    timeout: 60000,
  });
  cleanups.unshift(() => context.close());
  context.setDefaultTimeout(STEP_TIMEOUT_MS);
  const page = context.pages()[0] || (await context.newPage());
  const pageErrors = [];
  page.on('pageerror', (e) => pageErrors.push(String(e)));
  page.on('console', (m) => { if (m.type() === 'error') pageErrors.push('console: ' + m.text()); });
  page.on('dialog', (d) => { pageErrors.push('unexpected native dialog: ' + d.message()); d.dismiss(); });
  // The page must work offline: anything not on the server itself is a bug.
  const foreign = [];
  page.on('request', (r) => { if (!r.url().startsWith(base) && !r.url().startsWith('data:')) foreign.push(r.url()); });

  const row = (name) => page.locator(`[data-testid="queue-row"][data-queue="${name}"]`);
  const waitValue = (testid, value) =>
    page.waitForFunction(([t, v]) => {
      const el = document.querySelector(`[data-testid="${t}"]`);
      return el && el.dataset.value === String(v);
    }, [testid, value], { timeout: STEP_TIMEOUT_MS });

  await check('GET /ui shows the queue list with the new queue', async () => {
    const res = await page.goto(base + '/ui');
    assert(res && res.status() === 200, 'GET /ui status ' + (res && res.status()));
    assert((res.headers()['content-type'] || '').startsWith('text/html'), 'content-type ' + res.headers()['content-type']);
    await page.locator('[data-testid="queue-search"]').waitFor();
    await row(Q).waitFor();
    assert((await row(Q).locator('[data-testid="queue-visible"]').textContent()).trim() === '0', 'depth 0 at start');
    const rows = await page.locator('[data-testid="queue-row"]').count();
    assert(rows === 50, 'first page renders 50 of 59 rows, got ' + rows);
    assert((await page.locator('[data-testid="total-queues"]').textContent()).trim() === '59', 'summary counts 59 queues');
  });

  await check('paging and search', async () => {
    await page.click('[data-testid="page-next"]');
    await page.waitForFunction(() => document.querySelectorAll('[data-testid="queue-row"]').length === 9);
    assert((await page.locator('[data-testid="page-info"]').textContent()).includes('Page 2 of 2'), 'page info');
    await page.click('[data-testid="page-prev"]');
    await page.fill('[data-testid="queue-search"]', 'order');
    await page.waitForFunction(() => document.querySelectorAll('[data-testid="queue-row"]').length === 2);
    assert(await row('orders').isVisible() && await row('orders-dlq').isVisible(), 'search finds orders and orders-dlq');
    await page.fill('[data-testid="queue-search"]', 'no-such-queue');
    await page.locator('[data-testid="no-matches"]').waitFor();
    await page.fill('[data-testid="queue-search"]', '');
    await page.waitForFunction(() => document.querySelectorAll('[data-testid="queue-row"]').length === 50);
  });

  await check('send/receive rates appear for a busy queue', async () => {
    await page.fill('[data-testid="queue-search"]', 'orders'); // "orders" sorts onto page 2
    await page.waitForFunction(() => {
      const r = document.querySelector('[data-testid="queue-row"][data-queue="orders"] [data-testid="queue-send-rate"]');
      return r && r.textContent.trim() !== '–' && parseFloat(r.textContent) > 0;
    }, null, { timeout: 12000 });
    const polyline = await row('orders').locator('svg polyline').count();
    assert(polyline >= 1, 'the row draws a sparkline');
  });

  await check('open the queue page', async () => {
    await page.fill('[data-testid="queue-search"]', Q);
    await row(Q).locator('[data-testid="queue-link"]').click();
    await page.locator(`[data-testid="queue-page"][data-queue="${Q}"]`).waitFor();
    assert(page.url().endsWith('#/queue/' + Q), 'hash route, got ' + page.url());
    await waitValue('stat-visible', 0);
    await page.locator('[data-testid="peek-empty"]').waitFor();
    await page.locator('[data-testid="attributes"] dd[data-attr="VisibilityTimeout"]').waitFor();
    assert(await page.locator('[data-testid="redrive-button"]').isHidden(), 'no redrive button on a queue that is no DLQ');
  });

  const BODY = 'hello from the browser test ' + Date.now();
  await check('send a message through the UI; depth becomes 1', async () => {
    await page.fill('[data-testid="send-body"]', BODY);
    await page.click('[data-testid="send-button"]');
    await waitValue('stat-visible', 1);
    await page.locator('[data-testid="peek-message"]', { hasText: BODY }).waitFor();
  });

  await check('peeking does not change visibility', async () => {
    await page.waitForTimeout(2500); // at least one more poll (and peek)
    const a = await sqs(base, 'GetQueueAttributes', { QueueUrl: queueUrl, AttributeNames: ['All'] });
    assert(a.Attributes.ApproximateNumberOfMessages === '1', 'visible ' + a.Attributes.ApproximateNumberOfMessages);
    assert(a.Attributes.ApproximateNumberOfMessagesNotVisible === '0', 'in flight ' + a.Attributes.ApproximateNumberOfMessagesNotVisible);
    await page.screenshot({ path: join(ARTIFACTS, 'dashboard-queue.png'), fullPage: true });
  });

  await check('purge asks for confirmation; cancel keeps the message', async () => {
    await page.click('[data-testid="purge-button"]');
    await page.locator('[data-testid="confirm-dialog"]').waitFor({ state: 'visible' });
    await page.click('[data-testid="confirm-cancel"]');
    await page.locator('[data-testid="confirm-dialog"]').waitFor({ state: 'hidden' });
    await page.waitForTimeout(500);
    await waitValue('stat-visible', 1);
  });

  await check('purge through the UI (confirmed); depth becomes 0', async () => {
    await page.click('[data-testid="purge-button"]');
    await page.locator('[data-testid="confirm-dialog"]').waitFor({ state: 'visible' });
    assert((await page.locator('[data-testid="confirm-text"]').textContent()).includes(Q), 'the dialog names the queue');
    await page.click('[data-testid="confirm-ok"]');
    await waitValue('stat-visible', 0);
    await page.locator('[data-testid="peek-empty"]').waitFor();
  });

  await check('a DLQ page links its sources and offers a redrive', async () => {
    await page.goto(base + '/ui#/queue/orders-dlq');
    await page.locator('[data-testid="queue-page"][data-queue="orders-dlq"]').waitFor();
    await page.locator('[data-testid="source-link"]', { hasText: 'orders' }).waitFor();
    await page.locator('[data-testid="redrive-button"]').waitFor({ state: 'visible' });
    await page.click('[data-testid="redrive-button"]');
    await page.locator('[data-testid="confirm-dialog"]').waitFor({ state: 'visible' });
    await page.click('[data-testid="confirm-ok"]');
    // The DLQ is empty: the task either completes at once or is listed; either way no error toast.
    await page.waitForTimeout(1500);
    const errs = await page.locator('[data-testid="toast-error"]').allTextContents();
    assert(errs.length === 0, 'error toasts: ' + errs.join(' | '));
    await page.locator('[data-testid="source-link"]', { hasText: 'orders' }).click();
    await page.locator('[data-testid="queue-page"][data-queue="orders"]').waitFor();
    await page.locator('[data-testid="dlq-link"]', { hasText: 'orders-dlq' }).waitFor();
  });

  await check('send to a FIFO queue through the UI (group id filled in)', async () => {
    await page.goto(base + '/ui#/queue/events.fifo');
    await page.locator('[data-testid="queue-page"][data-queue="events.fifo"]').waitFor();
    await page.locator('[data-testid="send-group"]').waitFor();
    await page.fill('[data-testid="send-body"]', 'fifo body');
    await page.click('[data-testid="send-button"]');
    await waitValue('stat-visible', 1);
    await page.locator('[data-testid="peek-message"]', { hasText: 'fifo body' }).waitFor();
  });

  await check('back to the list; screenshot', async () => {
    await page.click('[data-testid="back-link"]');
    await page.fill('[data-testid="queue-search"]', '');
    await page.click('[data-testid="sort-send"]'); // a numeric column sorts busiest first
    await row('orders').waitFor();
    assert(await page.locator('[data-testid="queue-row"]').first().getAttribute('data-queue') === 'orders', 'sorted by send rate, orders first');
    await page.waitForTimeout(2500); // one more poll so the charts have points
    await page.screenshot({ path: join(ARTIFACTS, 'dashboard.png'), fullPage: false });
    log('screenshots: ' + join(ARTIFACTS, 'dashboard.png') + ', ' + join(ARTIFACTS, 'dashboard-queue.png'));
  });

  await check('an SNS topic created through the API is listed with its figures', async () => {
    const form = (params) => fetch(base + '/', {
      method: 'POST',
      headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ Version: '2010-03-31', ...params }).toString(),
    });
    const created = await form({ Action: 'CreateTopic', Name: 'browser-topic' });
    assert(created.ok, 'CreateTopic answered ' + created.status);
    const text = await created.text();
    const arn = /<TopicArn>([^<]+)<\/TopicArn>/.exec(text)[1];
    assert((await form({ Action: 'Publish', TopicArn: arn, Message: 'hello' })).ok, 'Publish failed');
    await page.goto(base + '/ui');
    const topicRow = page.locator('[data-testid="topic-row"]', { hasText: 'browser-topic' });
    await topicRow.waitFor();
    await page.waitForFunction(() => {
      const r = Array.from(document.querySelectorAll('[data-testid="topic-row"]')).find((e) => e.textContent.includes('browser-topic'));
      return r && r.lastElementChild.textContent.trim() === '1';
    }, null, { timeout: 10000 });
  });

  await check('no page errors and no requests off the server', async () => {
    assert(pageErrors.length === 0, 'page errors: ' + pageErrors.join(' | '));
    assert(foreign.length === 0, 'requests to other hosts: ' + foreign.join(', '));
  });

  traffic = false;
  await trafficLoop;
}

let code = 0;
try {
  await main();
} catch (e) {
  if (failed === 0) {
    failed += 1;
    log(`FAIL setup: ${e && e.stack ? e.stack : e}`);
  }
  code = 1;
} finally {
  for (const c of cleanups) {
    try {
      await c();
    } catch (_) { /* best effort */ }
  }
}
log(`browser: ${passed} passed, ${failed} failed`);
process.exit(code);

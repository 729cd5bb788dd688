// sluice dashboard: plain JavaScript, no dependencies, no build step.
//
// Reads:   GET /api/queues, GET /api/queues/{name}, GET /api/queues/{name}/peek?max=N   (every 2 s)
// Changes: the SQS API itself, as AWS JSON 1.0 (POST / with X-Amz-Target: AmazonSQS.<Action>)
// Login:   GET /ui/session says whether one is needed (access keys configured); POST /ui/login with an access key
//          sets an HttpOnly session cookie and returns the CSRF token every POST then sends (X-Sluice-Csrf).
// No inline script or style anywhere: the server's Content-Security-Policy allows only files from /ui.
// Routes:  #/ (queue list), #/queue/NAME (one queue)
(function () {
  'use strict';

  const POLL_MS = 2000;
  const PAGE_SIZE = 50;
  const HISTORY = 60; // points kept per series: two minutes at one poll every 2 s
  const MIN_SLOTS = 15; // a sparkline is drawn at least this many points wide
  const MIN_RATE_INTERVAL_S = 1.5; // polls closer than this (after an action) don't compute rates

  const state = {
    queues: [],
    byName: new Map(),
    dlqArns: new Set(),
    base: null, // {t, counters: Map name -> {sent, received, deleted}} the last rate sample
    rates: new Map(), // name -> {send, recv, del}
    hist: new Map(), // name -> {visible: [], send: [], recv: []}
    totals: { visible: [], inflight: [], send: [], recv: [] },
    loaded: false,
    list: { search: '', page: 0, sort: 'name', asc: true },
    route: { view: 'list' },
    detail: null, // {name, data} or {name, missing: true}
    peek: null,
    peekMax: 10,
    moveTasks: null,
  };

  // The login session: required (keys configured), the CSRF token of our session, who we are.
  const auth = { required: false, csrf: null, who: null, loginShown: false };

  // ---- helpers --------------------------------------------------------------------------------------------------

  const $ = (sel, root) => (root || document).querySelector(sel);

  function esc(v) {
    return String(v == null ? '' : v)
      .replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;')
      .replace(/"/g, '&quot;').replace(/'/g, '&#39;');
  }

  // Sets innerHTML only when it changed, so selections, hovers and scroll positions survive polls.
  function setHTML(el, html) {
    if (el && el.__html !== html) {
      el.innerHTML = html;
      el.__html = html;
    }
  }

  function fmtInt(n) {
    if (n == null || Number.isNaN(n)) return '–';
    return Number(n).toLocaleString('en-US');
  }

  function fmtRate(r) {
    if (r == null) return '–';
    if (r === 0) return '0';
    if (r < 10) return r.toFixed(1);
    return Math.round(r).toLocaleString('en-US');
  }

  function fmtAge(s) {
    if (s == null) return '–';
    s = Math.max(0, Math.floor(s));
    if (s === 0) return '0s';
    if (s < 60) return s + 's';
    if (s < 3600) return Math.floor(s / 60) + 'm ' + (s % 60) + 's';
    if (s < 86400) return Math.floor(s / 3600) + 'h ' + Math.floor((s % 3600) / 60) + 'm';
    return Math.floor(s / 86400) + 'd ' + Math.floor((s % 86400) / 3600) + 'h';
  }

  function fmtBytes(b) {
    if (b == null) return '–';
    if (b < 1024) return b + ' B';
    if (b < 1048576) return (b / 1024).toFixed(1) + ' KiB';
    if (b < 1073741824) return (b / 1048576).toFixed(1) + ' MiB';
    return (b / 1073741824).toFixed(2) + ' GiB';
  }

  function fmtTime(ms) {
    if (ms == null || ms === '') return '–';
    const d = new Date(Number(ms));
    if (Number.isNaN(d.getTime())) return String(ms);
    return d.toLocaleString();
  }

  function queueHref(name) {
    return '#/queue/' + encodeURIComponent(name);
  }

  function push(arr, v) {
    arr.push(v);
    if (arr.length > HISTORY) arr.splice(0, arr.length - HISTORY);
  }

  // A small SVG sparkline; the newest point sits at the right edge. `second` draws a second line (receives).
  function spark(values, opts) {
    opts = opts || {};
    const w = opts.w || 120;
    const h = opts.h || 24;
    const cls = opts.cls || '';
    const second = opts.second || null;
    const all = second ? values.concat(second) : values;
    let max = 0;
    for (const v of all) if (v > max) max = v;
    const top = max > 0 ? max : 1;
    // At least MIN_SLOTS points wide, so a young history is still readable; the full HISTORY once it has it.
    const slots = Math.min(HISTORY, Math.max(MIN_SLOTS, values.length, second ? second.length : 0));
    const step = w / (slots - 1);
    const pts = (vals) => {
      const off = slots - vals.length;
      return vals.map((v, i) => {
        const x = (off + i) * step;
        const y = h - 1 - (Math.max(0, v) / top) * (h - 3);
        return x.toFixed(1) + ',' + y.toFixed(1);
      });
    };
    let body = '';
    if (values.length >= 2) {
      const p = pts(values);
      const x0 = ((slots - values.length) * step).toFixed(1);
      if (!second) body += '<path class="area" d="M' + x0 + ',' + h + ' L' + p.join(' L') + ' L' + w + ',' + h + ' Z"/>';
      body += '<polyline class="line" points="' + p.join(' ') + '"/>';
    }
    if (second && second.length >= 2) body += '<polyline class="line2" points="' + pts(second).join(' ') + '"/>';
    const title = opts.title ? '<title>' + esc(opts.title) + (values.length ? ' (max ' + esc(fmtRate(max)) + ')' : '') + '</title>' : '';
    return '<svg class="spark ' + cls + '" viewBox="0 0 ' + w + ' ' + h + '" preserveAspectRatio="none" role="img">' + title + body + '</svg>';
  }

  // ---- network --------------------------------------------------------------------------------------------------

  async function getJSON(url) {
    const res = await fetch(url, { headers: { Accept: 'application/json' }, cache: 'no-store' });
    let data = null;
    try {
      data = await res.json();
    } catch (_) {
      data = null;
    }
    if (!res.ok) {
      const err = new Error((data && (data.error || data.message)) || 'HTTP ' + res.status);
      err.status = res.status;
      throw err;
    }
    return data;
  }

  // One SQS action over AWS JSON 1.0; throws Error("Type: message") on an SQS error.
  async function sqs(action, body) {
    const res = await fetch('/', {
      method: 'POST',
      headers: withCsrf({ 'X-Amz-Target': 'AmazonSQS.' + action, 'Content-Type': 'application/x-amz-json-1.0' }),
      body: JSON.stringify(body || {}),
    });
    const text = await res.text();
    let data = {};
    try {
      data = text ? JSON.parse(text) : {};
    } catch (_) {
      data = {};
    }
    if (!res.ok) {
      const type = String(data.__type || data.code || '').split('#').pop() || 'HTTP ' + res.status;
      throw new Error(type + (data.message || data.Message ? ': ' + (data.message || data.Message) : ''));
    }
    return data;
  }

  function withCsrf(headers) {
    if (auth.csrf) headers['X-Sluice-Csrf'] = auth.csrf;
    return headers;
  }

  // POST a JSON body to one of the dashboard's own endpoints (/ui/login, /ui/logout).
  async function postJSON(url, body) {
    const res = await fetch(url, {
      method: 'POST',
      headers: withCsrf({ 'Content-Type': 'application/json', Accept: 'application/json' }),
      body: JSON.stringify(body || {}),
    });
    let data = null;
    try {
      data = await res.json();
    } catch (_) {
      data = null;
    }
    if (!res.ok) throw new Error((data && data.error) || 'HTTP ' + res.status);
    return data;
  }

  // ---- login ----------------------------------------------------------------------------------------------------

  function applySession(s) {
    auth.required = !!(s && s.auth_required);
    auth.csrf = (s && s.logged_in && s.csrf_token) || null;
    auth.who = s && s.logged_in ? s.access_key_id + ' · ' + s.account_id : null;
    const who = $('#who');
    const out = $('#logout');
    who.textContent = auth.who || '';
    out.hidden = !auth.csrf;
  }

  function showLogin(message) {
    auth.loginShown = true;
    clearTimeout(timer);
    setConn('offline', 'login required');
    const view = $('#view');
    view.__html = null;
    view.innerHTML =
      '<section class="panel login" data-testid="login">' +
      '<h2>Log in</h2>' +
      '<p class="muted small">This server requires credentials. Use one of its access keys (the pair you sign SQS requests with).</p>' +
      '<form id="login-form" class="login-form">' +
      '<label>Access key id <input type="text" id="login-key" data-testid="login-key" autocomplete="username" spellcheck="false" required></label>' +
      '<label>Secret access key <input type="password" id="login-secret" data-testid="login-secret" autocomplete="current-password" required></label>' +
      '<button type="submit" data-testid="login-button">Log in</button>' +
      '<span class="muted small" id="login-error" data-testid="login-error"></span>' +
      '</form></section>';
    if (message) $('#login-error').textContent = message;
    $('#login-form').addEventListener('submit', async (e) => {
      e.preventDefault();
      try {
        const s = await postJSON('/ui/login', { access_key_id: $('#login-key').value.trim(), secret_access_key: $('#login-secret').value });
        applySession(s);
        auth.loginShown = false;
        view.innerHTML = '';
        startDashboard();
      } catch (err) {
        $('#login-error').textContent = err.message;
      }
    });
    $('#login-key').focus();
  }

  async function logout() {
    try {
      await postJSON('/ui/logout', {});
    } catch (err) {
      toast('Logout failed: ' + err.message, true);
      return;
    }
    applySession({ auth_required: auth.required, logged_in: false });
    showLogin('Logged out.');
  }

  // ---- polling --------------------------------------------------------------------------------------------------

  let chain = Promise.resolve();
  let timer = null;

  // Serialises refreshes: a poll and a refresh after an action never overlap.
  function refreshNow() {
    chain = chain.then(doRefresh, doRefresh);
    return chain;
  }

  function schedule() {
    clearTimeout(timer);
    if (auth.loginShown) return;
    timer = setTimeout(() => refreshNow().finally(schedule), POLL_MS);
  }

  async function doRefresh() {
    if (auth.loginShown) return;
    try {
      const data = await getJSON('/api/queues');
      ingest((data && data.queues) || []);
      const topics = await getJSON('/api/topics').catch(() => null);
      state.topics = (topics && topics.topics) || [];
      setConn('live', 'live · ' + new Date().toLocaleTimeString());
    } catch (e) {
      // The session ended (expiry, logout elsewhere, a restart of the server): log in again.
      if (auth.required && (e.status === 401 || e.status === 403)) {
        applySession({ auth_required: true, logged_in: false });
        showLogin('Your session has ended; log in again.');
        return;
      }
      setConn('offline', 'offline: ' + e.message);
    }
    if (state.route.view === 'queue') {
      await loadQueue(state.route.name);
    }
    render();
  }

  function ingest(queues) {
    const now = performance.now() / 1000;
    state.queues = queues;
    state.byName = new Map(queues.map((q) => [q.name, q]));
    state.dlqArns = new Set(queues.map((q) => q.dlq_arn).filter(Boolean));
    state.loaded = true;

    const base = state.base;
    const dt = base ? now - base.t : 0;
    if (base && dt < MIN_RATE_INTERVAL_S) return; // too close to the last sample: keep the rates we have

    const counters = new Map();
    const rates = new Map();
    let tv = 0, ti = 0, ts = 0, tr = 0, anyRate = false;
    for (const q of queues) {
      const c = { sent: q.sent_total || 0, received: q.received_total || 0, deleted: q.deleted_total || 0 };
      counters.set(q.name, c);
      const b = base && base.counters.get(q.name);
      let r = null;
      if (b) {
        // A counter that went down (restart, re-created queue) counts from zero.
        const d = (now2, then) => (now2 >= then ? now2 - then : now2);
        r = { send: d(c.sent, b.sent) / dt, recv: d(c.received, b.received) / dt, del: d(c.deleted, b.deleted) / dt };
        rates.set(q.name, r);
        ts += r.send;
        tr += r.recv;
        anyRate = true;
      }
      tv += q.visible || 0;
      ti += q.inflight || 0;
      let h = state.hist.get(q.name);
      if (!h) {
        h = { visible: [], inflight: [], send: [], recv: [] };
        state.hist.set(q.name, h);
      }
      push(h.visible, q.visible || 0);
      push(h.inflight, q.inflight || 0);
      if (r) {
        push(h.send, r.send);
        push(h.recv, r.recv);
      }
    }
    for (const name of Array.from(state.hist.keys())) if (!counters.has(name)) state.hist.delete(name);
    push(state.totals.visible, tv);
    push(state.totals.inflight, ti);
    if (anyRate) {
      push(state.totals.send, ts);
      push(state.totals.recv, tr);
    }
    state.rates = rates;
    state.base = { t: now, counters };
  }

  async function loadQueue(name) {
    const enc = encodeURIComponent(name);
    const jobs = [
      getJSON('/api/queues/' + enc).then(
        (data) => { state.detail = { name, data }; },
        (e) => { state.detail = e.status === 404 ? { name, missing: true } : { name, error: e.message, data: state.detail && state.detail.name === name ? state.detail.data : null }; }
      ),
      getJSON('/api/queues/' + enc + '/peek?max=' + state.peekMax).then(
        (data) => { state.peek = { name, messages: (data && data.messages) || [] }; },
        (e) => { state.peek = { name, error: e.message }; }
      ),
    ];
    await Promise.all(jobs);
    const d = state.detail && state.detail.data;
    if (d && d.arn && (d.dead_letter_sources || []).length) {
      try {
        const r = await sqs('ListMessageMoveTasks', { SourceArn: d.arn, MaxResults: 10 });
        state.moveTasks = { name, results: r.Results || [] };
      } catch (e) {
        state.moveTasks = { name, error: e.message };
      }
    } else {
      state.moveTasks = null;
    }
  }

  function setConn(kind, text) {
    const el = $('#conn');
    el.dataset.state = kind;
    el.textContent = text;
  }

  // ---- toasts and confirmation ----------------------------------------------------------------------------------

  function toast(text, isError) {
    const el = document.createElement('div');
    el.className = 'toast' + (isError ? ' error' : '');
    el.dataset.testid = isError ? 'toast-error' : 'toast';
    el.textContent = text;
    $('#toasts').appendChild(el);
    setTimeout(() => el.remove(), isError ? 9000 : 5000);
  }

  // An in-page confirmation (not window.confirm): resolves true on "confirm", false on cancel/Escape.
  function confirmDialog(title, text, okLabel) {
    const overlay = $('#confirm');
    const ok = $('#confirm-ok');
    const cancel = $('#confirm-cancel');
    $('#confirm-title').textContent = title;
    $('#confirm-text').textContent = text;
    ok.textContent = okLabel || 'Confirm';
    overlay.hidden = false;
    cancel.focus();
    return new Promise((resolve) => {
      const done = (answer) => {
        overlay.hidden = true;
        ok.onclick = cancel.onclick = overlay.onclick = null;
        document.removeEventListener('keydown', onKey, true);
        resolve(answer);
      };
      const onKey = (e) => {
        if (e.key === 'Escape') {
          e.preventDefault();
          done(false);
        }
      };
      ok.onclick = () => done(true);
      cancel.onclick = () => done(false);
      overlay.onclick = (e) => { if (e.target === overlay) done(false); };
      document.addEventListener('keydown', onKey, true);
    });
  }

  // ---- routing --------------------------------------------------------------------------------------------------

  function parseRoute() {
    const m = /^#\/queue\/(.+)$/.exec(location.hash);
    if (m) {
      let name = m[1];
      try {
        name = decodeURIComponent(name);
      } catch (_) { /* keep it raw */ }
      return { view: 'queue', name };
    }
    return { view: 'list' };
  }

  function onRoute() {
    if (auth.loginShown) return;
    const r = parseRoute();
    const changed = r.view !== state.route.view || r.name !== state.route.name;
    state.route = r;
    if (!changed && $('#view').firstChild) return;
    if (r.view === 'queue') {
      state.detail = null;
      state.peek = null;
      state.moveTasks = null;
      buildQueueView(r.name);
      window.scrollTo(0, 0);
      refreshNow();
    } else {
      buildListView();
    }
    render();
  }

  function render() {
    if (auth.loginShown) return;
    if (state.route.view === 'queue') renderQueue();
    else renderList();
  }

  // ---- the queue list -------------------------------------------------------------------------------------------

  const COLUMNS = [
    { key: 'name', label: 'Queue', cls: '' },
    { key: 'visible', label: 'Visible', cls: 'num' },
    { key: 'inflight', label: 'In flight', cls: 'num' },
    { key: 'delayed', label: 'Delayed', cls: 'num' },
    { key: 'oldest', label: 'Oldest', cls: 'num' },
    { key: 'send', label: 'Sent/s', cls: 'num' },
    { key: 'recv', label: 'Recv/s', cls: 'num' },
    { key: null, label: 'Depth', cls: 'chart' },
    { key: null, label: 'Send / receive', cls: 'chart' },
  ];

  function buildListView() {
    const view = $('#view');
    view.innerHTML =
      '<section data-testid="queue-list">' +
      '<div class="cards" id="summary"></div>' +
      '<div class="panel">' +
      '<div class="toolbar">' +
      '<input type="search" id="search" data-testid="queue-search" placeholder="Search queues…" autocomplete="off" spellcheck="false">' +
      '<span class="muted small" id="match-count" data-testid="match-count"></span>' +
      '<span class="grow"></span>' +
      '<form id="create-form" class="toolbar flush">' +
      '<input type="text" id="create-name" data-testid="create-name" placeholder="new-queue or new-queue.fifo" autocomplete="off" spellcheck="false">' +
      '<button type="submit" data-testid="create-button">Create queue</button>' +
      '</form>' +
      '</div>' +
      '<table data-testid="queue-table"><thead><tr id="thead"></tr></thead><tbody id="tbody"></tbody></table>' +
      '<div id="list-empty"></div>' +
      '<div class="pager">' +
      '<span class="muted small" id="page-info" data-testid="page-info"></span>' +
      '<button type="button" id="page-prev" data-testid="page-prev">‹ Prev</button>' +
      '<button type="button" id="page-next" data-testid="page-next">Next ›</button>' +
      '</div>' +
      '</div>' +
      '</section>' +
      '<section class="panel"><h2>SNS topics</h2><div id="topics" data-testid="topics"></div></section>';
    const search = $('#search');
    search.value = state.list.search;
    search.addEventListener('input', () => {
      state.list.search = search.value;
      state.list.page = 0;
      renderList();
    });
    $('#page-prev').addEventListener('click', () => {
      state.list.page = Math.max(0, state.list.page - 1);
      renderList();
    });
    $('#page-next').addEventListener('click', () => {
      state.list.page += 1;
      renderList();
    });
    $('#thead').addEventListener('click', (e) => {
      const th = e.target.closest('th[data-sort]');
      if (!th) return;
      const key = th.dataset.sort;
      if (state.list.sort === key) state.list.asc = !state.list.asc;
      else {
        state.list.sort = key;
        state.list.asc = key === 'name';
      }
      state.list.page = 0;
      renderList();
    });
    $('#create-form').addEventListener('submit', async (e) => {
      e.preventDefault();
      const input = $('#create-name');
      const name = input.value.trim();
      if (!name) return;
      const body = { QueueName: name };
      if (name.endsWith('.fifo')) body.Attributes = { FifoQueue: 'true' };
      try {
        await sqs('CreateQueue', body);
        toast('Created queue ' + name);
        input.value = '';
        await refreshNow();
      } catch (err) {
        toast('CreateQueue failed: ' + err.message, true);
      }
    });
  }

  function sortValue(q, key) {
    const r = state.rates.get(q.name);
    switch (key) {
      case 'visible': return q.visible || 0;
      case 'inflight': return q.inflight || 0;
      case 'delayed': return q.delayed || 0;
      case 'oldest': return q.oldest_age_seconds || 0;
      case 'send': return r ? r.send : -1;
      case 'recv': return r ? r.recv : -1;
      default: return q.name;
    }
  }

  function renderTopics() {
    const box = $('#topics');
    if (!box) return;
    const topics = state.topics || [];
    if (!topics.length) {
      box.textContent = 'No topics.';
      return;
    }
    const esc = (v) => String(v).replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]);
    box.innerHTML =
      '<table><thead><tr><th>Topic</th><th>FIFO</th><th>Subscriptions (confirmed / pending)</th><th>Published</th></tr></thead><tbody>' +
      topics
        .map((t) => '<tr data-testid="topic-row"><td>' + esc(t.name) + '</td><td>' + (t.fifo ? 'yes' : '') + '</td><td>' +
          t.subscriptions_confirmed + ' / ' + t.subscriptions_pending + '</td><td>' + t.published_total + '</td></tr>')
        .join('') +
      '</tbody></table>';
  }

  function renderList() {
    renderTopics();
    if (!$('#tbody')) return;
    const { search, sort, asc } = state.list;
    const needle = search.trim().toLowerCase();
    let rows = needle ? state.queues.filter((q) => q.name.toLowerCase().includes(needle)) : state.queues.slice();
    rows.sort((a, b) => {
      const va = sortValue(a, sort), vb = sortValue(b, sort);
      let c = typeof va === 'string' ? va.localeCompare(vb) : va - vb;
      if (c === 0 && sort !== 'name') c = a.name.localeCompare(b.name);
      return asc ? c : -c;
    });
    const pages = Math.max(1, Math.ceil(rows.length / PAGE_SIZE));
    if (state.list.page >= pages) state.list.page = pages - 1;
    const page = state.list.page;
    const shown = rows.slice(page * PAGE_SIZE, (page + 1) * PAGE_SIZE);

    // summary cards
    const tq = state.queues.length;
    let tv = 0, ti = 0, td = 0;
    for (const q of state.queues) {
      tv += q.visible || 0;
      ti += q.inflight || 0;
      td += q.delayed || 0;
    }
    const T = state.totals;
    const last = (a) => (a.length ? a[a.length - 1] : null);
    setHTML($('#summary'),
      card('Queues', fmtInt(tq), 'total-queues', '') +
      card('Visible', fmtInt(tv), 'total-visible', spark(T.visible, { w: 200, h: 34, title: 'visible messages' })) +
      card('In flight', fmtInt(ti), 'total-inflight', spark(T.inflight, { w: 200, h: 34, title: 'in-flight messages' })) +
      card('Delayed', fmtInt(td), 'total-delayed', '') +
      card('Sent/s', fmtRate(last(T.send)), 'total-send-rate', spark(T.send, { w: 200, h: 34, cls: 'send', title: 'sent per second' })) +
      card('Received/s', fmtRate(last(T.recv)), 'total-recv-rate', spark(T.recv, { w: 200, h: 34, cls: 'send', title: 'received per second' })));

    setHTML($('#thead'), COLUMNS.map((c) => {
      if (!c.key) return '<th class="' + c.cls + '">' + esc(c.label) + '</th>';
      const cls = ['sortable', c.cls, sort === c.key ? 'sorted' : '', sort === c.key && asc ? 'asc' : ''].join(' ');
      return '<th class="' + cls + '" data-sort="' + c.key + '" data-testid="sort-' + c.key + '">' + esc(c.label) + '</th>';
    }).join(''));

    setHTML($('#tbody'), shown.map(rowHTML).join(''));

    let empty = '';
    if (!state.loaded) empty = '<div class="empty">Loading…</div>';
    else if (!state.queues.length) empty = '<div class="empty" data-testid="no-queues">No queues yet. Create one above or with any SQS client.</div>';
    else if (!rows.length) empty = '<div class="empty" data-testid="no-matches">No queue matches “' + esc(search) + '”.</div>';
    setHTML($('#list-empty'), empty);

    $('#match-count').textContent = needle ? fmtInt(rows.length) + ' of ' + fmtInt(tq) + ' queues' : '';
    $('#page-info').textContent = rows.length
      ? 'Page ' + (page + 1) + ' of ' + pages + ' · ' + fmtInt(page * PAGE_SIZE + 1) + '–' + fmtInt(page * PAGE_SIZE + shown.length) + ' of ' + fmtInt(rows.length)
      : '';
    $('#page-prev').disabled = page === 0;
    $('#page-next').disabled = page >= pages - 1;
  }

  function card(label, value, testid, chart) {
    return '<div class="card"><div class="label">' + esc(label) + '</div>' +
      '<div class="value" data-testid="' + testid + '">' + esc(value) + '</div>' + chart + '</div>';
  }

  function rowHTML(q) {
    const r = state.rates.get(q.name);
    const h = state.hist.get(q.name) || { visible: [], send: [], recv: [] };
    const tags = (q.fifo ? '<span class="tag">FIFO</span>' : '') + (state.dlqArns.has(q.arn) ? '<span class="tag dlq">DLQ</span>' : '');
    return '<tr data-testid="queue-row" data-queue="' + esc(q.name) + '">' +
      '<td class="name"><a href="' + esc(queueHref(q.name)) + '" data-testid="queue-link" title="' + esc(q.name) + '">' + esc(q.name) + '</a>' + tags + '</td>' +
      '<td class="num" data-testid="queue-visible" data-value="' + (q.visible || 0) + '">' + fmtInt(q.visible || 0) + '</td>' +
      '<td class="num" data-testid="queue-inflight">' + fmtInt(q.inflight || 0) + '</td>' +
      '<td class="num" data-testid="queue-delayed">' + fmtInt(q.delayed || 0) + '</td>' +
      '<td class="num" data-testid="queue-oldest">' + (q.visible || q.inflight || q.delayed ? fmtAge(q.oldest_age_seconds) : '–') + '</td>' +
      '<td class="num" data-testid="queue-send-rate">' + fmtRate(r ? r.send : null) + '</td>' +
      '<td class="num" data-testid="queue-recv-rate">' + fmtRate(r ? r.recv : null) + '</td>' +
      '<td class="chart">' + spark(h.visible, { title: 'visible messages' }) + '</td>' +
      '<td class="chart">' + spark(h.send, { cls: 'send', second: h.recv, title: 'sent (green) / received (amber) per second' }) + '</td>' +
      '</tr>';
  }

  // ---- one queue ------------------------------------------------------------------------------------------------

  function buildQueueView(name) {
    const view = $('#view');
    view.innerHTML =
      '<section data-testid="queue-page" data-queue="' + esc(name) + '">' +
      '<div class="crumbs"><a href="#/" data-testid="back-link">Queues</a> / <span class="mono">' + esc(name) + '</span></div>' +
      '<div class="qhead">' +
      '<div class="grow"><h1 data-testid="queue-title">' + esc(name) + '<span id="qtags"></span></h1>' +
      '<div class="muted mono small" id="qurl" data-testid="queue-url"></div></div>' +
      '<div class="actions">' +
      '<button type="button" id="redrive-btn" class="primary" data-testid="redrive-button" hidden>Start redrive</button>' +
      '<button type="button" id="purge-btn" class="danger-outline" data-testid="purge-button">Purge</button>' +
      '</div></div>' +
      '<div id="qmissing"></div>' +
      '<div class="cards" id="qstats"></div>' +
      '<div class="grid2">' +
      '<div class="panel"><h2>Send a test message</h2>' +
      '<form id="send-form">' +
      '<textarea id="send-body" data-testid="send-body" placeholder="Message body" spellcheck="false">{"hello": "from the sluice dashboard"}</textarea>' +
      '<div class="form-row" id="send-extra"></div>' +
      '<div class="form-row"><button type="submit" class="primary" id="send-btn" data-testid="send-button">Send message</button>' +
      '<span class="muted small" id="send-result" data-testid="send-result"></span></div>' +
      '</form></div>' +
      '<div class="panel"><h2>Dead-letter queues</h2><div id="qrel" data-testid="queue-relations"></div></div>' +
      '</div>' +
      '<div class="panel spaced">' +
      '<div class="toolbar"><h2 class="flush">Messages</h2>' +
      '<span class="muted small">a peek at the oldest visible messages; peeking doesn’t change their visibility or receive count</span>' +
      '<span class="grow"></span>' +
      '<label class="muted small">show <select id="peek-max" data-testid="peek-max">' +
      [10, 25, 50, 100].map((n) => '<option value="' + n + '"' + (n === state.peekMax ? ' selected' : '') + '>' + n + '</option>').join('') +
      '</select></label>' +
      '<button type="button" id="peek-refresh" data-testid="peek-refresh">Refresh</button></div>' +
      '<div id="qpeek"></div></div>' +
      '<div class="panel"><h2>Attributes</h2><div id="qattrs" data-testid="attributes"></div></div>' +
      '<div class="panel"><h2>Tags</h2><div id="qtagsp" data-testid="tags"></div></div>' +
      '</section>';

    $('#send-form').addEventListener('submit', (e) => {
      e.preventDefault();
      sendMessage(name);
    });
    $('#purge-btn').addEventListener('click', () => purge(name));
    $('#redrive-btn').addEventListener('click', () => redrive(name));
    $('#peek-refresh').addEventListener('click', () => refreshNow());
    $('#peek-max').addEventListener('change', (e) => {
      state.peekMax = Number(e.target.value) || 10;
      refreshNow();
    });
  }

  function currentQueue(name) {
    const q = state.byName.get(name);
    const d = state.detail && state.detail.name === name ? state.detail.data : null;
    return { q, d };
  }

  function queueUrl(name) {
    const { q, d } = currentQueue(name);
    return (q && q.url) || (d && d.url) || null;
  }

  function isFifo(name) {
    const { q, d } = currentQueue(name);
    if (q) return !!q.fifo;
    if (d && d.attributes) return d.attributes.FifoQueue === 'true';
    return name.endsWith('.fifo');
  }

  async function sendMessage(name) {
    const url = queueUrl(name);
    const out = $('#send-result');
    if (!url) {
      toast('Queue ' + name + ' is not loaded yet', true);
      return;
    }
    const body = { QueueUrl: url, MessageBody: $('#send-body').value };
    if (isFifo(name)) {
      body.MessageGroupId = ($('#send-group') && $('#send-group').value.trim()) || 'dashboard';
      const dedup = $('#send-dedup') && $('#send-dedup').value.trim();
      const { d } = currentQueue(name);
      const cbd = d && d.attributes && d.attributes.ContentBasedDeduplication === 'true';
      if (dedup) body.MessageDeduplicationId = dedup;
      else if (!cbd) body.MessageDeduplicationId = 'dashboard-' + Date.now() + '-' + Math.random().toString(36).slice(2, 10);
    } else {
      const delay = $('#send-delay') && $('#send-delay').value.trim();
      if (delay) body.DelaySeconds = Number(delay);
    }
    const btn = $('#send-btn');
    btn.disabled = true;
    try {
      const r = await sqs('SendMessage', body);
      out.textContent = 'sent ' + (r.MessageId || '');
      toast('Sent message ' + (r.MessageId || '') + ' to ' + name);
      await refreshNow();
    } catch (e) {
      out.textContent = '';
      toast('SendMessage failed: ' + e.message, true);
    } finally {
      btn.disabled = false;
    }
  }

  async function purge(name) {
    const url = queueUrl(name);
    if (!url) return;
    const { q } = currentQueue(name);
    const n = q ? (q.visible || 0) + (q.inflight || 0) + (q.delayed || 0) : null;
    const ok = await confirmDialog('Purge ' + name + '?',
      'This deletes ' + (n == null ? 'all messages' : 'all ' + fmtInt(n) + ' message' + (n === 1 ? '' : 's')) +
      ' in ' + name + ' (visible, in flight and delayed). It cannot be undone.', 'Purge queue');
    if (!ok) return;
    try {
      await sqs('PurgeQueue', { QueueUrl: url });
      toast('Purged ' + name);
      await refreshNow();
    } catch (e) {
      toast('PurgeQueue failed: ' + e.message, true);
    }
  }

  async function redrive(name) {
    const { d } = currentQueue(name);
    if (!d || !d.arn) return;
    const sources = d.dead_letter_sources || [];
    const ok = await confirmDialog('Redrive ' + name + '?',
      'This moves the messages in ' + name + ' back to the queue' + (sources.length === 1 ? ' ' : 's they came from: ') +
      sources.join(', ') + '.', 'Start redrive');
    if (!ok) return;
    try {
      const r = await sqs('StartMessageMoveTask', { SourceArn: d.arn });
      toast('Redrive started' + (r.TaskHandle ? ' (task ' + String(r.TaskHandle).slice(0, 16) + '…)' : ''));
      await refreshNow();
    } catch (e) {
      toast('StartMessageMoveTask failed: ' + e.message, true);
    }
  }

  function renderQueue() {
    const name = state.route.name;
    if (!$('#qstats')) return;
    const { q, d } = currentQueue(name);
    const missing = state.detail && state.detail.name === name && state.detail.missing && !q;
    setHTML($('#qmissing'), missing
      ? '<div class="panel" data-testid="queue-not-found">No queue named <b>' + esc(name) + '</b>. <a href="#/">Back to the list</a>.</div>'
      : state.detail && state.detail.error ? '<div class="panel muted">Could not load details: ' + esc(state.detail.error) + '</div>' : '');
    $('#purge-btn').disabled = missing || !q;

    const tags = (q && q.fifo ? '<span class="tag">FIFO</span>' : '') + (q && state.dlqArns.has(q.arn) ? '<span class="tag dlq">DLQ</span>' : '');
    setHTML($('#qtags'), tags);
    $('#qurl').textContent = (q && q.url) || (d && d.url) || '';

    const h = state.hist.get(name) || { visible: [], inflight: [], send: [], recv: [] };
    const r = state.rates.get(name);
    const a = (d && d.attributes) || {};
    const num = (v, attr) => (v != null ? v : a[attr] != null ? Number(a[attr]) : null);
    const visible = num(q && q.visible, 'ApproximateNumberOfMessages');
    const inflight = num(q && q.inflight, 'ApproximateNumberOfMessagesNotVisible');
    const delayed = num(q && q.delayed, 'ApproximateNumberOfMessagesDelayed');
    setHTML($('#qstats'),
      statCard('Visible', fmtInt(visible), 'stat-visible', visible, spark(h.visible, { w: 200, h: 34, title: 'visible messages' })) +
      statCard('In flight', fmtInt(inflight), 'stat-inflight', inflight, spark(h.inflight, { w: 200, h: 34, title: 'in-flight messages' })) +
      statCard('Delayed', fmtInt(delayed), 'stat-delayed', delayed, '') +
      statCard('Oldest', q && (q.visible || q.inflight || q.delayed) ? fmtAge(q.oldest_age_seconds) : '–', 'stat-oldest', q ? q.oldest_age_seconds : null, '') +
      statCard('Sent/s', fmtRate(r ? r.send : null), 'stat-send-rate', r ? r.send : null, spark(h.send, { w: 200, h: 34, cls: 'send', title: 'sent per second' })) +
      statCard('Received/s', fmtRate(r ? r.recv : null), 'stat-recv-rate', r ? r.recv : null, spark(h.recv, { w: 200, h: 34, cls: 'send', title: 'received per second' })) +
      statCard('Size', q ? fmtBytes(q.bytes) : '–', 'stat-bytes', q ? q.bytes : null, '') +
      statCard('Totals', q ? fmtInt(q.sent_total) + ' / ' + fmtInt(q.received_total) + ' / ' + fmtInt(q.deleted_total) : '–', 'stat-totals', null,
        '<div class="muted small">sent / received / deleted' + (q && q.dead_lettered_total ? ' · ' + fmtInt(q.dead_lettered_total) + ' dead-lettered' : '') + '</div>'));

    // send form extras depend on the queue type
    const fifo = isFifo(name);
    const extra = $('#send-extra');
    if (extra.dataset.fifo !== String(fifo)) {
      extra.dataset.fifo = String(fifo);
      extra.innerHTML = fifo
        ? '<label>Message group ID<input type="text" id="send-group" data-testid="send-group" value="dashboard"></label>' +
          '<label>Deduplication ID (optional)<input type="text" id="send-dedup" data-testid="send-dedup" placeholder="generated"></label>'
        : '<label>Delay seconds<input type="number" id="send-delay" data-testid="send-delay" min="0" max="900" placeholder="queue default"></label>';
    }

    // relations: its DLQ and the queues that use it as theirs
    let rel = '';
    if (d) {
      let maxRc = null;
      try {
        if (a.RedrivePolicy) maxRc = JSON.parse(a.RedrivePolicy).maxReceiveCount;
      } catch (_) { /* shown raw in attributes */ }
      rel += '<p><span class="muted">Dead-letter queue:</span> ' + (d.dlq_name
        ? '<a href="' + esc(queueHref(d.dlq_name)) + '" data-testid="dlq-link">' + esc(d.dlq_name) + '</a>' +
          (maxRc != null ? ' <span class="muted small">after ' + esc(maxRc) + ' receives</span>' : '')
        : '<span class="muted" data-testid="no-dlq">none</span>') + '</p>';
      const sources = d.dead_letter_sources || [];
      rel += '<p><span class="muted">Dead-letter queue for:</span> ' + (sources.length
        ? '</p><ul class="links" data-testid="dlq-sources">' + sources.map((s) =>
          '<li><a href="' + esc(queueHref(s)) + '" data-testid="source-link">' + esc(s) + '</a></li>').join('') + '</ul>'
        : '<span class="muted">no queue</span></p>');
      if (sources.length) {
        rel += '<p class="muted small">“Start redrive” moves this queue’s messages back to the queues they came from.</p>';
        const mt = state.moveTasks && state.moveTasks.name === name ? state.moveTasks : null;
        if (mt && mt.results && mt.results.length) {
          rel += '<table class="small" data-testid="redrive-tasks"><thead><tr><th>Redrive</th><th>Status</th><th class="num">Moved</th><th class="num">To move</th><th>Started</th></tr></thead><tbody>' +
            mt.results.map((t) => '<tr data-testid="redrive-task"><td class="mono">' + esc(t.DestinationArn ? t.DestinationArn.split(':').pop() : 'sources') + '</td>' +
              '<td data-testid="redrive-status">' + esc(t.Status) + (t.FailureReason ? ' <span class="muted">(' + esc(t.FailureReason) + ')</span>' : '') + '</td>' +
              '<td class="num">' + fmtInt(t.ApproximateNumberOfMessagesMoved) + '</td>' +
              '<td class="num">' + fmtInt(t.ApproximateNumberOfMessagesToMove) + '</td>' +
              '<td>' + esc(fmtTime(t.StartedTimestamp)) + '</td></tr>').join('') + '</tbody></table>';
        }
      }
    } else if (!missing) {
      rel = '<span class="muted">Loading…</span>';
    }
    setHTML($('#qrel'), rel);
    const redriveBtn = $('#redrive-btn');
    const isDlq = !!(d && (d.dead_letter_sources || []).length);
    redriveBtn.hidden = !isDlq;
    const running = !!(state.moveTasks && state.moveTasks.name === name && (state.moveTasks.results || []).some((t) => t.Status === 'RUNNING'));
    redriveBtn.disabled = running;
    redriveBtn.textContent = running ? 'Redrive running…' : 'Start redrive';

    // peek
    let peek = '';
    const p = state.peek && state.peek.name === name ? state.peek : null;
    if (!p) peek = '<div class="empty">Loading…</div>';
    else if (p.error) peek = '<div class="empty">Could not peek: ' + esc(p.error) + '</div>';
    else if (!p.messages.length) peek = '<div class="empty" data-testid="peek-empty">No visible messages.</div>';
    else peek = '<ul class="messages" data-testid="peek-list">' + p.messages.map(messageHTML).join('') + '</ul>';
    setHTML($('#qpeek'), peek);

    // attributes and tags
    if (d && d.attributes) {
      const keys = Object.keys(d.attributes).sort();
      setHTML($('#qattrs'), '<dl class="attrs">' + (d.arn ? '<dt>QueueArn</dt><dd>' + esc(d.arn) + '</dd>' : '') + keys.filter((k) => !(k === 'QueueArn' && d.arn)).map((k) =>
        '<dt>' + esc(k) + '</dt><dd data-attr="' + esc(k) + '">' + attrValue(k, d.attributes[k]) + '</dd>').join('') + '</dl>');
      const tk = Object.keys(d.tags || {}).sort();
      setHTML($('#qtagsp'), tk.length
        ? '<dl class="attrs">' + tk.map((k) => '<dt>' + esc(k) + '</dt><dd>' + esc(d.tags[k]) + '</dd>').join('') + '</dl>'
        : '<span class="muted">No tags.</span>');
    } else {
      setHTML($('#qattrs'), missing ? '' : '<span class="muted">Loading…</span>');
      setHTML($('#qtagsp'), '');
    }
  }

  function statCard(label, value, testid, raw, chart) {
    return '<div class="card"><div class="label">' + esc(label) + '</div>' +
      '<div class="value" data-testid="' + testid + '"' + (raw != null ? ' data-value="' + esc(raw) + '"' : '') + '>' + esc(value) + '</div>' + chart + '</div>';
  }

  function attrValue(k, v) {
    if (/Timestamp$/.test(k) && /^\d+$/.test(String(v))) {
      return esc(v) + ' <span class="muted">(' + esc(new Date(Number(v) * 1000).toLocaleString()) + ')</span>';
    }
    if ((k === 'RedrivePolicy' || k === 'RedriveAllowPolicy' || k === 'Policy') && v) {
      try {
        return esc(JSON.stringify(JSON.parse(v)));
      } catch (_) { /* raw below */ }
    }
    if (/Seconds$/.test(k) && /^\d+$/.test(String(v)) && Number(v) >= 60) {
      return esc(v) + ' <span class="muted">(' + esc(fmtAge(Number(v))) + ')</span>';
    }
    return esc(v);
  }

  function messageHTML(m) {
    const attrs = m.attributes || {};
    const names = Object.keys(attrs).sort();
    const attrHTML = names.length
      ? '<div class="mattrs">' + names.map((n) => {
        const a = attrs[n] || {};
        const val = a.string_value != null ? a.string_value
          : a.binary_value != null ? '(binary, ' + Math.floor(String(a.binary_value).length * 3 / 4) + ' bytes base64: ' + String(a.binary_value).slice(0, 40) + (String(a.binary_value).length > 40 ? '…' : '') + ')'
            : '';
        return '<span class="mono">' + esc(n) + '</span> <span class="muted">' + esc(a.data_type || '') + '</span> = <span class="mono">' + esc(val) + '</span>';
      }).join(' · ') + '</div>'
      : '';
    const body = String(m.body == null ? '' : m.body);
    const MAX = 4000;
    const shown = body.length > MAX ? body.slice(0, MAX) + '\n… (' + fmtInt(body.length - MAX) + ' more characters)' : body;
    return '<li data-testid="peek-message" data-message-id="' + esc(m.message_id) + '">' +
      '<div class="meta"><span class="mono">' + esc(m.message_id) + '</span>' +
      '<span>sent ' + esc(fmtTime(m.sent_timestamp)) + '</span>' +
      '<span>received ' + fmtInt(m.receive_count || 0) + '×</span>' +
      '<span>' + fmtInt(body.length) + ' chars</span></div>' +
      '<pre data-testid="peek-body">' + esc(shown) + '</pre>' + attrHTML + '</li>';
  }

  // ---- start ----------------------------------------------------------------------------------------------------

  function startDashboard() {
    onRoute();
    refreshNow().finally(schedule);
  }

  window.addEventListener('hashchange', onRoute);
  $('#logout').addEventListener('click', logout);
  getJSON('/ui/session').then(
    (s) => {
      applySession(s);
      if (auth.required && !auth.csrf) showLogin();
      else startDashboard();
    },
    // An older server without /ui/session: no login.
    () => startDashboard()
  );
})();

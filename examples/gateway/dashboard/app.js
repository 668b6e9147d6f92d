// The example gateway's live dashboard. It reads the gateway's /ws event
// stream (hello, stats, request, breaker and health events) and shows it.
// Plain JavaScript, no build step and no library; every value that comes
// from the stream reaches the page as text, never as HTML.
'use strict';

(() => {
  const TOKEN_KEY = 'proxy.dashboard.token';
  const RATE_SPAN = 10e3; // request rates over the last 10 s
  const RATIO_SPAN = 60e3; // error and cache hit ratios over the last minute
  const CHART_SPAN = 5 * 60e3; // the charts show the last 5 minutes
  const CHART_RATE_SPAN = 1e3; // the chart's request rate: over a second
  const MAX_EVENTS = 40;
  // The outcomes that count as errors: the call failed in the gateway or
  // the backend (the 5xx answers). Rate-limited calls are counted apart.
  const ERROR_OUTCOMES = ['error', 'timeout', 'no_healthy_instance', 'circuit_open', 'overloaded'];
  const DEMO_PRINCIPAL = 'localhost-demo';

  // The page is served at <root>/dashboard/; the stream and the API hang
  // off <root>.
  const root = new URL('..', location.href);
  const $ = (id) => document.getElementById(id);

  const state = {
    token: sessionStorage.getItem(TOKEN_KEY) || '',
    demo: false, // this client may open the stream without a token
    ws: null,
    retries: 0, // failed connections in a row
    timer: 0,
    services: new Map(), // name -> view
    total: newSeries(),
    snapshot: null, // the latest stats event's data
    events: [], // the latest events, newest first
    problems: [], // the latest events other than successful requests
    breakerAt: new Map(), // service -> time (ms) of its latest breaker event
    frame: 0,
    sampleEvery: 1e3, // the history keeps a sample per stats event, at most this often
    onlyProblems: false, // the events list leaves out successful requests
  };

  // ---- Connection ----------------------------------------------------

  async function start() {
    $('login-form').addEventListener('submit', onLogin);
    $('signout').addEventListener('click', () => signOut(''));
    $('only-problems').addEventListener('change', (e) => {
      state.onlyProblems = e.target.checked;
      schedule();
    });
    const cfg = await gatewayConfig();
    state.demo = cfg.demo === true;
    if (cfg.stats_interval_ms > 0) state.sampleEvery = Math.max(250, cfg.stats_interval_ms);
    if (state.token || state.demo) {
      connect();
    } else {
      showLogin('');
    }
  }

  // gatewayConfig asks the gateway whether this client may open the stream
  // without a token (demo) and how often it sends stats.
  async function gatewayConfig() {
    try {
      const r = await fetch(new URL('dashboard/config.json', root), { cache: 'no-store' });
      return r.ok ? await r.json() : {};
    } catch (_) {
      return {};
    }
  }

  // checkToken asks the gateway whether the stream would take token. It
  // returns '' when it would, why not when it would not, or null when the
  // gateway cannot be reached.
  async function checkToken(token) {
    let r;
    try {
      r = await fetch(new URL('dashboard/config.json', root), {
        headers: { Authorization: 'Bearer ' + token },
        cache: 'no-store',
      });
    } catch (_) {
      return null;
    }
    if (r.status === 401) return 'The gateway did not accept this token.';
    if (r.status === 403) {
      let message = 'this token may not watch the stream';
      try {
        message = (await r.json()).error.message || message;
      } catch (_) { /* keep the general message */ }
      return `The gateway refused: ${message}.`;
    }
    return r.ok ? '' : null;
  }

  async function onLogin(e) {
    e.preventDefault();
    const input = $('token');
    const token = input.value.trim();
    if (!token) return;
    const button = e.target.querySelector('button');
    button.disabled = true;
    $('login-error').textContent = '';
    const refusal = await checkToken(token);
    button.disabled = false;
    if (refusal === null) {
      $('login-error').textContent = 'The gateway cannot be reached.';
      return;
    }
    if (refusal) {
      $('login-error').textContent = refusal;
      input.select();
      return;
    }
    input.value = '';
    state.token = token;
    sessionStorage.setItem(TOKEN_KEY, token);
    connect();
  }

  function connect() {
    clearTimeout(state.timer);
    setConn('connecting', state.retries ? 'reconnecting…' : 'connecting…');
    const url = new URL('ws', root);
    url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
    let ws;
    if (state.token) {
      // Browsers cannot set a header on a WebSocket: the token travels as
      // a subprotocol, or, when it has characters a subprotocol may not,
      // as the token parameter.
      try {
        ws = new WebSocket(url, ['proxy.v1', 'bearer.' + state.token]);
      } catch (_) {
        url.searchParams.set('token', state.token);
        ws = new WebSocket(url, ['proxy.v1']);
      }
    } else {
      ws = new WebSocket(url, ['proxy.v1']);
    }
    let opened = false;
    ws.onopen = () => {
      opened = true;
      state.retries = 0;
      setConn('live', 'live');
      $('login').hidden = true;
      $('board').hidden = false;
      $('signout').hidden = !state.token;
    };
    ws.onmessage = (m) => {
      let ev;
      try {
        ev = JSON.parse(m.data);
      } catch (_) {
        return;
      }
      handle(ev);
    };
    ws.onclose = () => {
      if (state.ws !== ws) return; // replaced or signed out
      state.ws = null;
      if (opened) {
        retry();
      } else {
        refused();
      }
    };
    state.ws = ws;
  }

  // refused handles a stream that closed before it opened: a token the
  // gateway no longer accepts, a demo that no longer applies, or a gateway
  // that is down.
  async function refused() {
    if (state.token) {
      const refusal = await checkToken(state.token);
      if (refusal) {
        signOut(refusal);
        return;
      }
    } else if ((await gatewayConfig()).demo !== true) {
      state.demo = false;
      showLogin('This gateway needs a token.');
      return;
    }
    retry();
  }

  function retry() {
    state.retries++;
    const seconds = Math.min(30, 2 ** Math.min(state.retries - 1, 5));
    setConn('retry', `offline: retrying in ${seconds} s`);
    state.timer = setTimeout(connect, seconds * 1000 * (0.8 + 0.4 * Math.random()));
  }

  function signOut(message) {
    sessionStorage.removeItem(TOKEN_KEY);
    state.token = '';
    const ws = state.ws;
    state.ws = null;
    if (ws) ws.close();
    clearTimeout(state.timer);
    showLogin(message);
  }

  function showLogin(message) {
    setConn('signed-out', 'signed out');
    $('who').textContent = '';
    $('signout').hidden = true;
    $('board').hidden = true;
    $('login').hidden = false;
    $('login-error').textContent = message;
    $('token').focus();
  }

  function setConn(kind, text) {
    const el = $('conn');
    el.dataset.state = kind;
    el.textContent = text;
  }

  // ---- Events --------------------------------------------------------

  function handle(ev) {
    const d = ev.data || {};
    switch (ev.type) {
      case 'hello':
        $('who').textContent = d.principal === DEMO_PRINCIPAL
          ? 'demo: no token needed on this machine'
          : `signed in as ${d.principal}`;
        for (const name of d.services || []) view(name);
        break;
      case 'stats':
        onStats(d);
        break;
      case 'request':
        addEvent(ev.time, d.outcome, outcomeTone(d.outcome), requestText(d));
        break;
      case 'breaker': {
        const v = view(d.service);
        v.breaker = d.to;
        state.breakerAt.set(d.service, Date.parse(ev.time));
        addEvent(ev.time, 'breaker', breakerTone(d.to), `${d.service} breaker ${d.from} → ${d.to}`);
        break;
      }
      case 'health': {
        const error = (d.error || '').replace(`${d.instance}: `, '');
        const text = `${d.service} · ${d.instance} ${d.change}` + (error ? `: ${error}` : '');
        addEvent(ev.time, d.change, d.healthy ? 'ok' : d.change === 'ejected' ? 'warn' : 'bad', text);
        break;
      }
      default:
        return;
    }
    schedule();
  }

  function onStats(snap) {
    const t = Date.parse(snap.time);
    state.snapshot = snap;
    record(state.total, sample(t, snap.total));
    for (const [name, s] of Object.entries(snap.services || {})) {
      const v = view(name);
      record(v.series, sample(t, s.calls));
      v.calls = s.calls;
      v.health = s.health;
      // A breaker event newer than this snapshot wins.
      if (!(state.breakerAt.get(name) > t)) v.breaker = s.health.breaker || '';
    }
    // A service the gateway no longer has (its configuration was reloaded)
    // goes.
    for (const [name, v] of state.services) {
      if (snap.services && !(name in snap.services)) {
        v.el.remove();
        state.services.delete(name);
      }
    }
  }

  function addEvent(time, badge, tone, text) {
    const e = { time: new Date(time), badge, tone, text };
    for (const list of badge === 'ok' ? [state.events] : [state.events, state.problems]) {
      list.unshift(e);
      if (list.length > MAX_EVENTS) list.length = MAX_EVENTS;
    }
  }

  function requestText(d) {
    let s = d.service + (d.instance ? ` · ${d.instance}` : '') + ` · ${d.status} · ${fmtMs(d.duration_ms)}`;
    if (d.cached) s += ' · cached';
    return s;
  }

  // ---- Figures -------------------------------------------------------

  // A series is the history of one service's counters (or of the total),
  // a sample per state.sampleEvery at most, and the latest sample.
  function newSeries() {
    return { history: [], cur: null };
  }

  function sample(t, calls) {
    const o = calls.outcomes || {};
    const lat = calls.latency || {};
    return {
      t,
      req: calls.requests || 0,
      err: ERROR_OUTCOMES.reduce((n, k) => n + (o[k] || 0), 0),
      limited: o.rate_limited || 0,
      hits: calls.cache_hits || 0,
      looks: (calls.cache_hits || 0) + (calls.cache_misses || 0),
      p50: lat.count ? lat.p50_ns / 1e6 : null,
      p99: lat.count ? lat.p99_ns / 1e6 : null,
    };
  }

  function record(series, s) {
    if (series.cur && (s.req < series.cur.req || s.t < series.cur.t)) {
      series.history = []; // the gateway restarted
    }
    series.cur = s;
    const h = series.history;
    const last = h[h.length - 1];
    if (!last || s.t - last.t >= state.sampleEvery) h.push(s);
    while (h.length > 2 && h[1].t < s.t - CHART_SPAN - CHART_RATE_SPAN) h.shift();
  }

  // baseline returns the latest sample at least span before the current
  // one, or the oldest there is, or null when there is none before it.
  function baseline(series, span) {
    const { history: h, cur } = series;
    if (!cur) return null;
    let b = null;
    for (const s of h) {
      if (s.t >= cur.t) break;
      if (!b || s.t <= cur.t - span) b = s;
    }
    return b;
  }

  function rate(series) {
    const b = baseline(series, RATE_SPAN);
    return b ? ((series.cur.req - b.req) * 1000) / (series.cur.t - b.t) : null;
  }

  function ratio(series, num, den) {
    const b = baseline(series, RATIO_SPAN);
    if (!b) return null;
    const d = series.cur[den] - b[den];
    return d > 0 ? (series.cur[num] - b[num]) / d : null;
  }

  // ---- Rendering -----------------------------------------------------

  function schedule() {
    if (!state.frame) state.frame = requestAnimationFrame(render);
  }

  function render() {
    state.frame = 0;
    const snap = state.snapshot;
    if (snap) {
      $('meta').textContent = `up ${fmtDuration(snap.uptime_seconds)} · ${snap.stream_clients} stream client${snap.stream_clients === 1 ? '' : 's'}`;
      const t = state.total;
      const errors = ratio(t, 'err', 'req');
      setText($('total-rate'), fmtRate(rate(t)));
      setText($('total-errors'), fmtPct(errors), errorTone(errors));
      setText($('total-p50'), fmtMs(t.cur.p50));
      setText($('total-p99'), fmtMs(t.cur.p99));
      setText($('total-cache'), fmtPct(ratio(t, 'hits', 'looks')));
      setText($('total-limited'), fmtCount(t.cur.limited));
      setText($('total-inflight'), fmtCount(snap.total.in_flight));
    }
    for (const v of state.services.values()) renderService(v);
    renderEvents();
  }

  // view returns the card of a service, making it on first sight.
  function view(name) {
    let v = state.services.get(name);
    if (v) return v;
    const el = $('service-template').content.firstElementChild.cloneNode(true);
    el.dataset.service = name;
    const fields = {};
    for (const node of el.querySelectorAll('[data-field]')) fields[node.dataset.field] = node;
    fields.name.textContent = name;
    v = {
      name, el, fields, series: newSeries(), calls: null, health: null, breaker: '',
      instances: new Map(), list: el.querySelector('.instances'),
      rate: el.querySelector('[data-chart="rate"]'), latency: el.querySelector('[data-chart="latency"]'),
    };
    state.services.set(name, v);
    // Keep the cards in name order, as the gateway lists its services.
    const names = [...state.services.keys()].sort();
    const next = state.services.get(names[names.indexOf(name) + 1]);
    $('services').insertBefore(el, next ? next.el : null);
    return v;
  }

  function renderService(v) {
    const fields = v.fields;
    const s = v.series;
    if (v.health) {
      v.el.dataset.status = v.health.status;
      setBadge(fields.status, v.health.status, { up: 'ok', degraded: 'warn', down: 'bad' }[v.health.status]);
      renderInstances(v);
    }
    setBadge(fields.breaker, v.breaker, breakerTone(v.breaker));
    fields.breaker.parentElement.hidden = !v.breaker;
    if (!s.cur) return;
    const errors = ratio(s, 'err', 'req');
    setText(fields.rate, fmtRate(rate(s)));
    setText(fields.errors, fmtPct(errors), errorTone(errors));
    setText(fields.p50, fmtMs(s.cur.p50));
    setText(fields.p99, fmtMs(s.cur.p99));
    setText(fields.cache, fmtPct(ratio(s, 'hits', 'looks')));
    setText(fields.limited, fmtCount(s.cur.limited), s.cur.limited ? 'warn' : '');
    setText(fields.requests, fmtCount(s.cur.req));
    setText(fields.inflight, fmtCount(v.calls.in_flight || 0));
    drawCharts(v);
  }

  function renderInstances(v) {
    const seen = new Set();
    for (const inst of v.health.instance_details || []) {
      seen.add(inst.name);
      let row = v.instances.get(inst.name);
      if (!row) {
        const li = document.createElement('li');
        li.dataset.instance = inst.name;
        li.innerHTML = '<span class="dot"></span><span class="label"></span><span class="state"></span>' +
          '<span class="detail"><span class="calls"></span><span class="staged"></span><span class="fault"></span></span>';
        row = {
          li,
          label: li.querySelector('.label'),
          fault: li.querySelector('.fault'),
          staged: li.querySelector('.staged'),
          state: li.querySelector('.state'),
          calls: li.querySelector('.calls'),
        };
        row.label.textContent = inst.name;
        v.instances.set(inst.name, row);
        v.list.append(li);
      }
      row.li.dataset.state = inst.state;
      row.li.title = inst.check_error ? `health check: ${inst.check_error}` : '';
      setText(row.state, inst.state);
      setText(row.calls, `${fmtCount(inst.calls)} calls, ${fmtCount(inst.failures)} failed`);
      const fault = inst.fault || {};
      const faults = [fault.down ? 'down' : '', fault.error_rate ? `${fmtPct(fault.error_rate)} errors` : ''].filter(Boolean);
      setText(row.fault, faults.length ? `fault: ${faults.join(', ')}` : '');
      setText(row.staged, fault.latency ? `latency +${fault.latency}` + (fault.jitter ? ` ±${fault.jitter}` : '') : '');
    }
    for (const [name, row] of v.instances) {
      if (!seen.has(name)) {
        row.li.remove();
        v.instances.delete(name);
      }
    }
  }

  function renderEvents() {
    const list = $('events');
    const events = state.onlyProblems ? state.problems : state.events;
    $('events-empty').hidden = events.length > 0;
    const items = events.map((e) => {
      const li = document.createElement('li');
      const time = document.createElement('time');
      time.dateTime = e.time.toISOString();
      time.textContent = e.time.toLocaleTimeString([], { hour12: false });
      const badge = document.createElement('span');
      badge.className = 'badge';
      setBadge(badge, e.badge, e.tone);
      const text = document.createElement('span');
      text.className = 'text';
      text.textContent = e.text;
      li.append(time, badge, text);
      return li;
    });
    list.replaceChildren(...items);
  }

  // drawCharts draws, over the last CHART_SPAN, the request rate at each
  // sample (over the second before it) and the latency quantiles.
  function drawCharts(v) {
    const h = v.series.history;
    const W = 300;
    const H = 48;
    const end = h.length ? h[h.length - 1].t : 0;
    const start = h.length ? Math.max(h[0].t, end - CHART_SPAN) : 0;
    const rates = [];
    const p50 = [];
    const p99 = [];
    let j = 0; // the sample the rate at i is measured from
    for (let i = 0; i < h.length; i++) {
      while (j + 1 < i && h[j + 1].t <= h[i].t - CHART_RATE_SPAN) j++;
      if (h[i].t < start) continue;
      if (i > 0) rates.push([h[i].t, ((h[i].req - h[j].req) * 1000) / (h[i].t - h[j].t)]);
      p50.push([h[i].t, h[i].p50]);
      p99.push([h[i].t, h[i].p99]);
    }
    const x = (t) => (end > start ? ((t - start) / (end - start)) * W : W);
    const rateMax = niceCeil(Math.max(1, ...rates.map((p) => p[1])));
    const latMax = niceCeil(Math.max(1, ...p99.map((p) => p[1] || 0)));
    const y = (max) => (val) => H - 1 - (val / max) * (H - 4);
    const line = path(rates, x, y(rateMax));
    v.rate.querySelector('.line').setAttribute('d', line);
    v.rate.querySelector('.area').setAttribute('d', rates.length > 1
      ? `${line} L${x(rates[rates.length - 1][0]).toFixed(1)},${H} L${x(rates[0][0]).toFixed(1)},${H} Z` : '');
    v.latency.querySelector('.p50').setAttribute('d', path(p50, x, y(latMax)));
    v.latency.querySelector('.p99').setAttribute('d', path(p99, x, y(latMax)));
    setText(v.fields['rate-max'], `0–${fmtNumber(rateMax)} req/s`);
    setText(v.fields['latency-max'], `0–${fmtMs(latMax)}`);
    setText(v.fields.span, end > start ? `last ${fmtDuration((end - start) / 1000)}` : 'waiting for data…');
  }

  // path returns an SVG path through the points, broken where a value is
  // null.
  function path(points, x, y) {
    let d = '';
    let pen = 'M';
    for (const [t, val] of points) {
      if (val === null || !isFinite(val)) {
        pen = 'M';
        continue;
      }
      d += `${pen}${x(t).toFixed(1)},${y(val).toFixed(1)} `;
      pen = 'L';
    }
    return d.trim();
  }

  // niceCeil rounds v up to 1, 2 or 5 times a power of ten.
  function niceCeil(v) {
    const p = 10 ** Math.floor(Math.log10(v));
    for (const m of [1, 2, 5, 10]) if (v <= m * p) return m * p;
    return 10 * p;
  }

  // ---- Formatting ----------------------------------------------------

  function setText(el, text, tone) {
    if (el.textContent !== text) el.textContent = text;
    if (tone !== undefined) {
      if (tone) el.dataset.tone = tone;
      else delete el.dataset.tone;
    }
  }

  function setBadge(el, text, tone) {
    setText(el, text || '', tone || '');
  }

  function outcomeTone(o) {
    if (o === 'ok') return 'ok';
    if (o === 'rate_limited' || o === 'canceled') return 'warn';
    return 'bad';
  }

  function breakerTone(s) {
    return { closed: 'ok', 'half-open': 'warn', open: 'bad' }[s] || '';
  }

  function errorTone(r) {
    if (!r) return '';
    return r >= 0.05 ? 'bad' : 'warn';
  }

  function fmtNumber(v) {
    return v >= 100 ? String(Math.round(v)) : String(+v.toPrecision(2));
  }

  function fmtCount(n) {
    return Number(n || 0).toLocaleString('en-US');
  }

  function fmtRate(v) {
    if (v === null) return '—';
    if (v === 0) return '0';
    return v < 10 ? v.toFixed(1) : String(Math.round(v));
  }

  function fmtPct(v) {
    if (v === null) return '—';
    if (v === 0) return '0%';
    if (v < 0.001) return '<0.1%';
    return v < 0.1 ? `${(v * 100).toFixed(1)}%` : `${Math.round(v * 100)}%`;
  }

  function fmtMs(ms) {
    if (ms === null || ms === undefined) return '—';
    if (ms < 0.01) return '<0.01 ms';
    if (ms < 1) return `${ms.toFixed(2)} ms`;
    if (ms < 10) return `${ms.toFixed(1)} ms`;
    if (ms < 1000) return `${Math.round(ms)} ms`;
    return `${(ms / 1000).toFixed(ms < 10000 ? 2 : 1)} s`;
  }

  function fmtDuration(seconds) {
    const s = Math.round(seconds);
    if (s < 60) return `${s} s`;
    if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
    return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
  }

  start();
})();

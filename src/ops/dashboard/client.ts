/**
 * The page's code (browser JavaScript, ES5-style so it runs on an old tablet too). It listens to
 * `api/stream` (relative, so it works behind a path prefix) and renders every frame. It never
 * trusts that the feed is alive: when the stream errors or no frame came for `STALE_MS`, the page
 * says "disconnected, stale since …" and greys the numbers, which are no longer the gateway's state.
 * Liveness (`health`, as /healthz) and condition (`condition`: healthy / degraded with reasons) are
 * shown apart; a gateway without `condition` in its status gets one derived here from the uplinks.
 */
import { CHARTS_JS } from './client-charts.js';

export const CLIENT_JS = String.raw`
(function () {
  'use strict';
  var STALE_MS = 5000;
  var $ = function (id) { return document.getElementById(id); };
  var last = null, rates = [], lastFrameAt = 0, staleSince = null;
  var chosen = loadChosen();
  var knownTopics = '';

  function loadChosen() {
    var m = /(?:^|[#&])topics=([^&]*)/.exec(location.hash);
    if (m) return decodeURIComponent(m[1]).split(',').filter(Boolean);
    try { var s = JSON.parse(localStorage.getItem('sluice.topics') || 'null'); if (Array.isArray(s)) return s; } catch (e) {}
    return null;
  }
  function saveChosen() { try { localStorage.setItem('sluice.topics', JSON.stringify(chosen)); } catch (e) {} }
  function num(n) { return typeof n === 'number' && isFinite(n) ? n.toLocaleString('en-US') : '–'; }
  function short(n) {
    if (typeof n !== 'number' || !isFinite(n)) return '–';
    var a = Math.abs(n);
    if (a !== 0 && (a >= 1e6 || a < 0.01)) return n.toPrecision(3);
    return String(Math.round(n * 100) / 100);
  }
  function bytes(n) {
    if (typeof n !== 'number' || !isFinite(n)) return '–';
    var u = ['B', 'KiB', 'MiB', 'GiB', 'TiB'], i = 0;
    while (n >= 1024 && i < u.length - 1) { n /= 1024; i++; }
    return (i ? n.toFixed(1) : String(n)) + ' ' + u[i];
  }
  function age(ms) {
    if (typeof ms !== 'number' || !isFinite(ms)) return '–';
    var s = Math.max(0, Math.round(ms / 1000));
    if (s < 60) return s + ' s';
    if (s < 3600) return Math.floor(s / 60) + ' min ' + (s % 60) + ' s';
    if (s < 86400) return Math.floor(s / 3600) + ' h ' + Math.floor((s % 3600) / 60) + ' min';
    return Math.floor(s / 86400) + ' d ' + Math.floor((s % 86400) / 3600) + ' h';
  }
  function clock(ts) { return new Date(ts).toLocaleTimeString(); }
  function set(id, text) { var e = $(id); if (e && e.textContent !== text) e.textContent = text; }
  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }
  function pill(id, text, cls) { var p = $(id); p.textContent = text; p.className = 'pill ' + cls; }
  /** A table row whose cells carry their column name (shown as a label when the table is cards). */
  function row(tbody, cells) {
    var heads = tbody.parentNode.querySelectorAll('th');
    var tr = document.createElement('tr');
    cells.forEach(function (c, i) { if (heads[i]) c.setAttribute('data-label', heads[i].textContent); tr.appendChild(c); });
    return tr;
  }
  function fill(id, nodes, emptyText, cols) {
    var box = $(id);
    box.textContent = '';
    if (!nodes.length) {
      var empty = cols ? document.createElement('tr') : el('li', 'empty', emptyText);
      if (cols) { var td = el('td', 'empty', emptyText); td.colSpan = cols; empty.appendChild(td); }
      box.appendChild(empty);
      return;
    }
    nodes.forEach(function (n) { box.appendChild(n); });
  }
  function kv(id, obj) {
    var box = $(id);
    box.textContent = '';
    Object.keys(obj || {}).forEach(function (k) {
      box.appendChild(el('dt', '', k));
      box.appendChild(el('dd', '', num(obj[k])));
    });
  }
  function truthy(v) { return v === true || v === 'up' || v === 'connected'; }
  ${CHARTS_JS}

  /** The gateway's condition; derived from the uplinks and drivers when the status has none. */
  function conditionOf(st) {
    if (st.condition && typeof st.condition.state === 'string') return st.condition;
    var reasons = (st.health && st.health.reasons) || [];
    reasons = reasons.slice();
    (st.uplinks || []).forEach(function (u) {
      if (!truthy(u.connected) && u.pendingEvents > 0) reasons.push('uplink ' + u.name + ' is down with ' + u.pendingEvents + ' events waiting' + (u.lastError ? ' (' + u.lastError + ')' : ''));
    });
    (st.drivers || []).forEach(function (d) {
      (d.devices || []).forEach(function (dev) { if (dev.state === 'down') reasons.push('driver ' + d.name + ' device ' + dev.device + ' is down'); });
    });
    return { state: reasons.length ? 'degraded' : 'healthy', reasons: reasons };
  }

  function renderHeader(st, now) {
    var gw = st.gateway || {};
    set('gw-id', gw.id || '');
    set('gw-version', gw.version ? 'v' + gw.version : '');
    var up = typeof gw.uptimeSeconds === 'number' ? gw.uptimeSeconds * 1000 : typeof gw.startedAt === 'number' ? now - gw.startedAt : null;
    set('gw-uptime', up === null ? '' : 'up ' + age(up));
    var h = st.health;
    if (h && typeof h.ok === 'boolean') pill('health', h.ok ? 'alive' : 'failing', h.ok ? 'ok' : 'bad');
    var c = conditionOf(st);
    pill('condition', c.state, c.state === 'healthy' ? 'ok' : 'warn');
    var box = $('reasons');
    box.textContent = '';
    (c.reasons || []).forEach(function (r) { box.appendChild(el('li', '', r)); });
    $('problems').hidden = !(c.reasons || []).length;
  }

  function renderIngest(st, now) {
    var ing = st.ingest || {};
    set('ingest-received', num(ing.received));
    set('ingest-rejected', num(ing.rejected));
    kv('rejections', ing.rejectedByReason);
    var rate = null;
    if (last && typeof ing.received === 'number' && now > last.now) rate = Math.max(0, (ing.received - last.received) / ((now - last.now) / 1000));
    last = { now: now, received: ing.received };
    if (rate === null) return;
    set('ingest-rate', short(rate));
    rates.push(rate);
    if (rates.length > 120) rates.shift();
    var line = $('rate-chart').querySelector('polyline');
    var max = Math.max.apply(null, rates) || 1;
    line.setAttribute('points', rates.length < 2 ? '' : rates.map(function (v, i) {
      return ((i / (rates.length - 1)) * 300).toFixed(1) + ',' + (38 - (v / max) * 36).toFixed(1);
    }).join(' '));
  }

  function renderBuffer(st, now) {
    var b = st.buffer || {};
    var pct = b.maxBytes > 0 ? (100 * b.bytes) / b.maxBytes : null;
    set('buffer-fill', pct === null ? '–' : (pct < 10 ? pct.toFixed(1) : Math.round(pct)) + ' %');
    $('buffer-bar').style.width = pct === null ? '0' : Math.min(100, pct) + '%';
    $('buffer-bar').style.background = pct > 90 ? 'var(--bad)' : pct > 70 ? 'var(--warn)' : '';
    set('buffer-events', num(b.events));
    set('buffer-bytes', bytes(b.bytes) + ' of ' + bytes(b.maxBytes));
    set('buffer-oldest', typeof b.oldestTs === 'number' ? age(now - b.oldestTs) + ' ago' : 'empty');
    set('buffer-evicted', num(b.evicted));
    set('buffer-refused', num(b.refused));
    set('buffer-quarantined', num(b.quarantined));
    kv('evictions', b.evictedByReason);
  }

  function renderBroker(st, frame) {
    var br = st.broker || {};
    set('broker-clients', num(br.clients));
    set('broker-listeners', (br.listeners || []).map(function (l) { return typeof l === 'string' ? l : (l.host || '') + ':' + (l.port || ''); }).join(', ') || (br.listening ? 'listening' : 'not listening'));
    var tr = frame.topicRates;
    var body = $('topic-rates');
    fill('topic-rates', tr ? tr.topics.map(function (t) {
      return row(body, [el('td', 'topic', t.topic), el('td', 'num', short(t.rate)), el('td', 'num', num(t.total))]);
    }) : [], tr ? 'no events in the last seconds' : 'measuring…', 3);
    set('topic-rates-note', tr && tr.counted > tr.topics.length ? 'the ' + tr.topics.length + ' busiest of ' + tr.counted + ' active topics' : '');
  }

  function ack(ids) {
    return fetch('api/alarms/ack', {
      method: 'POST', credentials: 'same-origin', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ ids: ids }),
    }).then(function (r) { if (!r.ok) return r.json().then(function (b) { alert('not acknowledged: ' + b.error); }); });
  }

  function renderAlarms(st, frame, now) {
    var a = st.anomalies || {};
    set('anomalies-total', num(a.total));
    var list = frame.alarms;
    if (!list) { fill('alarms', [], 'this gateway sends no alarm list'); return; }
    set('alarms-open', num(list.unacknowledged));
    var open = [];
    fill('alarms', list.alarms.map(function (x) {
      var li = el('li', 'alarm' + (x.acked ? ' acked' : ''));
      li.setAttribute('data-id', String(x.id));
      var text = el('div', 'text');
      text.appendChild(el('span', 'sev ' + x.severity, x.severity));
      text.appendChild(document.createTextNode(x.text));
      li.appendChild(text);
      var meta = [clock(x.ts) + ' (' + age(now - x.ts) + ' ago)'];
      if (x.rule) meta.push('rule ' + x.rule);
      if (x.detector) meta.push('detector ' + x.detector);
      if (typeof x.value === 'number') meta.push('value ' + short(x.value) + (x.unit ? ' ' + x.unit : ''));
      li.appendChild(el('div', 'meta', meta.join(' · ')));
      if (x.detail) li.appendChild(el('div', 'detail', x.detail));
      if (x.acked) li.appendChild(el('div', 'mute note', 'acknowledged ' + clock(x.acked.at)));
      else {
        open.push(x.id);
        var b = el('button', '', 'Acknowledge');
        b.type = 'button';
        b.addEventListener('click', function () { b.disabled = true; ack([x.id]); });
        li.appendChild(b);
      }
      return li;
    }), 'no alarms');
    $('ack-all').disabled = !open.length;
    $('ack-all').onclick = function () { if (open.length) ack(open); };
  }

  function renderUplinks(st) {
    var body = $('uplinks');
    fill('uplinks', (st.uplinks || []).map(function (u) {
      var up = truthy(u.connected);
      return row(body, [
        el('td', '', u.name), el('td', 'mute', u.type), el('td', up ? 'ok' : 'bad', up ? 'connected' : 'down'),
        el('td', 'num', num(u.pendingEvents)), el('td', 'num', num(u.deliveredEvents)),
        el('td', 'num', typeof u.lagSeconds === 'number' ? age(u.lagSeconds * 1000) : '–'),
        el('td', 'num', num(u.retried)), el('td', 'num', num(u.deadLettered)),
        el('td', 'err', u.lastError || ''),
      ]);
    }), 'no uplink configured: events are kept in the buffer', 9);
  }

  function renderRules(st) {
    var body = $('rules');
    fill('rules', (st.rules || []).map(function (r) {
      return row(body, [
        el('td', r.disabled ? 'bad' : '', r.name + (r.disabled ? ' (disabled)' : '')), el('td', 'mute', r.kind),
        el('td', 'num', num(r.matches)), el('td', 'num', num(r.keys)), el('td', 'num', num(r.pending)),
        el('td', 'num', num((r.evictedKeys || 0) + (r.evictedPending || 0))),
        el('td', 'num', num((r.evalErrors || 0) + (r.failures || 0))),
        el('td', 'num', typeof r.evalSeconds === 'number' ? short(r.evalSeconds * 1000) + ' ms' : '–'),
      ]);
    }), 'no rules configured', 8);
  }

  function renderDrivers(st, now) {
    var rows = [], body = $('drivers');
    (st.drivers || []).forEach(function (d) {
      var devices = Array.isArray(d.devices) && d.devices.length ? d.devices : [d];
      devices.forEach(function (dev) {
        var state = dev.state || d.state || '';
        var lr = dev.lastReading;
        var reading = lr ? (lr.topic || '') + ' = ' + (typeof lr.value === 'number' ? short(lr.value) : JSON.stringify(lr.value)) + (typeof lr.ts === 'number' ? ' (' + age(now - lr.ts) + ' ago)' : '') : '–';
        var failures = dev.failures && typeof dev.failures === 'object' ? dev.failures : {};
        var total = Object.keys(failures).reduce(function (s, k) { return s + (Number(failures[k]) || 0); }, 0);
        var fcell = el('td', 'num', num(total));
        fcell.title = Object.keys(failures).map(function (k) { return k + ': ' + failures[k]; }).join(', ');
        rows.push(row(body, [
          el('td', '', d.name + (d.type ? ' (' + d.type + ')' : '')), el('td', '', dev === d ? '' : dev.device),
          el('td', state === 'up' ? 'ok' : state === 'degraded' || state === 'starting' ? 'warn' : state ? 'bad' : '', state),
          el('td', 'topic', reading), fcell, el('td', 'err', dev.lastError || ''),
        ]));
      });
    });
    fill('drivers', rows, 'no driver configured', 6);
  }

  function renderCharts(frame, now) {
    Charts.update(frame.readings, frame.alarms && frame.alarms.alarms, now);
    var topics = Charts.topics();
    if (topics.length > 200) { topics.slice(200).forEach(Charts.forget); topics = topics.slice(0, 200); }
    if (topics.join('\n') !== knownTopics) { knownTopics = topics.join('\n'); renderTopicPicker(topics); }
    var show = chosen ? chosen.filter(function (t) { return topics.indexOf(t) >= 0; }) : topics.slice(0, 4);
    var box = $('charts');
    if (!show.length) {
      if (!box.querySelector('.empty')) { box.textContent = ''; box.removeAttribute('data-topics'); box.appendChild(el('div', 'empty', 'no numeric readings yet')); }
      return;
    }
    Charts.show(show, box);
  }

  function renderTopicPicker(topics) {
    set('topic-count', String(topics.length));
    var box = $('topics');
    box.textContent = '';
    topics.forEach(function (t) {
      var label = el('label');
      var cb = document.createElement('input');
      cb.type = 'checkbox';
      cb.checked = chosen ? chosen.indexOf(t) >= 0 : topics.indexOf(t) < 4;
      cb.addEventListener('change', function () {
        var cur = chosen || topics.slice(0, 4);
        chosen = cb.checked ? cur.concat([t]) : cur.filter(function (x) { return x !== t; });
        saveChosen();
      });
      label.appendChild(cb);
      label.appendChild(document.createTextNode(' ' + t));
      box.appendChild(label);
    });
  }

  function render(frame) {
    var st = frame.status || {};
    var now = typeof frame.now === 'number' ? frame.now : Date.now();
    [renderHeader, renderIngest, renderBuffer].forEach(function (p) { try { p(st, now); } catch (e) { console.error(e); } });
    [renderBroker, renderAlarms].forEach(function (p) { try { p(st, frame, now); } catch (e) { console.error(e); } });
    [renderUplinks, renderRules, renderDrivers].forEach(function (p) { try { p(st, now); } catch (e) { console.error(e); } });
    try { renderCharts(frame, now); } catch (e) { console.error(e); }
    document.body.setAttribute('data-frames', String(Number(document.body.getAttribute('data-frames') || 0) + 1));
  }

  /** The feed is gone (or silent): say since when the numbers are stale, and what we do about it. */
  function markStale(why) {
    if (staleSince === null) staleSince = lastFrameAt || Date.now();
    document.body.classList.add('stale');
    pill('conn', why, 'bad');
    pill('health', 'unknown', 'mute');
    pill('condition', 'unknown', 'mute');
    // The last reasons are as stale as the rest: not shown as if current.
    $('problems').hidden = true;
    var b = $('stale');
    b.hidden = false;
    b.textContent = 'Disconnected from the gateway: the numbers below are stale since ' + clock(staleSince) +
      ' (' + age(Date.now() - staleSince) + ' ago). Reconnecting by itself every few seconds.';
  }
  function markLive() {
    staleSince = null;
    document.body.classList.remove('stale');
    $('stale').hidden = true;
    pill('conn', 'live', 'ok');
  }

  var es = new EventSource('api/stream');
  es.addEventListener('error', function () { markStale(es.readyState === 2 ? 'disconnected' : 'reconnecting'); });
  es.addEventListener('status', function (ev) {
    lastFrameAt = Date.now();
    markLive();
    try { render(JSON.parse(ev.data)); } catch (e) { console.error(e); }
  });
  setInterval(function () {
    if (lastFrameAt && Date.now() - lastFrameAt > STALE_MS) markStale(es.readyState === 1 ? 'no data' : 'disconnected');
  }, 1000);
  $('since').addEventListener('change', function () {
    var v = $('since').value, n = parseFloat(v);
    Charts.setSince(v, n * (v.slice(-1) === 'h' ? 3600000 : 60000));
  });
  window.addEventListener('resize', function () { Charts.resize(); });
})();
`;

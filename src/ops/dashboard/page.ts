/**
 * The dashboard page: one HTML document with inline CSS and JS (no framework, no external URL), a
 * few dozen KB, readable on a phone. It listens to `api/stream` (Server-Sent Events; relative, so it
 * works behind a path prefix) and renders every frame; the chart samples each topic's latest value
 * once a second and keeps the history in the page, capped at 120 points per topic. Everything from the gateway is inserted as text, never as HTML.
 *
 * The client code avoids backticks and template placeholders so it can live in this template string.
 */
export const PAGE_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light dark">
<title>Sluice</title>
<style>
:root{--bg:#f5f6f8;--card:#fff;--fg:#1b1f24;--mute:#5c6670;--line:#dde1e6;--ok:#1f8a4c;--warn:#b7791f;--bad:#c53030;--accent:#2b6cb0}
@media (prefers-color-scheme:dark){:root{--bg:#111418;--card:#1a1f25;--fg:#e6e9ed;--mute:#97a1ab;--line:#2c333b;--ok:#48bb78;--warn:#ecc94b;--bad:#fc8181;--accent:#63b3ed}}
*{box-sizing:border-box}
body{margin:0;font:14px/1.4 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;background:var(--bg);color:var(--fg)}
header{display:flex;flex-wrap:wrap;gap:.5rem 1rem;align-items:baseline;padding:.75rem 1rem;border-bottom:1px solid var(--line);background:var(--card)}
header h1{font-size:1.1rem;margin:0}
.mute{color:var(--mute)}
.pill{display:inline-block;padding:0 .5rem;border-radius:1rem;font-size:.8rem;border:1px solid currentColor}
.ok{color:var(--ok)}.warn{color:var(--warn)}.bad{color:var(--bad)}
main{display:grid;grid-template-columns:repeat(auto-fit,minmax(300px,1fr));gap:.75rem;padding:.75rem}
section{background:var(--card);border:1px solid var(--line);border-radius:.5rem;padding:.75rem;min-width:0}
section.wide{grid-column:1/-1}
h2{font-size:.8rem;text-transform:uppercase;letter-spacing:.05em;margin:0 0 .5rem;color:var(--mute)}
.big{font-size:1.8rem;font-weight:600;font-variant-numeric:tabular-nums}
.kv{display:grid;grid-template-columns:auto 1fr;gap:.15rem .75rem;font-variant-numeric:tabular-nums}
.kv dt{color:var(--mute)}.kv dd{margin:0;text-align:right}
.bar{height:.6rem;background:var(--line);border-radius:.3rem;overflow:hidden;margin:.4rem 0}
.bar>div{height:100%;background:var(--accent);width:0;transition:width .4s}
table{width:100%;border-collapse:collapse;font-variant-numeric:tabular-nums}
th,td{text-align:left;padding:.25rem .4rem;border-bottom:1px solid var(--line);vertical-align:top}
th{color:var(--mute);font-weight:500;font-size:.8rem}
td.num,th.num{text-align:right}
.scroll{overflow-x:auto}
.err{color:var(--bad);font-size:.8rem;word-break:break-word}
svg{display:block;width:100%;height:60px}
#rate-chart{height:40px}
svg .line{fill:none;stroke:var(--accent);stroke-width:1.5;vector-effect:non-scaling-stroke}
svg text{fill:var(--mute);font-size:10px}
.chart{margin-bottom:.75rem}
.chart .title{display:flex;justify-content:space-between;gap:.5rem;font-size:.85rem}
.chart .title span:first-child{overflow:hidden;text-overflow:ellipsis;white-space:nowrap}
details summary{cursor:pointer;color:var(--mute);font-size:.85rem}
#topics label{display:block;font-size:.85rem;overflow:hidden;text-overflow:ellipsis;white-space:nowrap}
ul.plain{list-style:none;margin:0;padding:0}
ul.plain li{padding:.25rem 0;border-bottom:1px solid var(--line);font-size:.85rem}
.empty{color:var(--mute);font-style:italic}
</style>
</head>
<body>
<header>
<h1>Sluice <span id="gw-id" class="mute">…</span></h1>
<span id="gw-version" class="mute"></span>
<span id="gw-uptime" class="mute"></span>
<span style="flex:1"></span>
<span id="health" class="pill"></span>
<span id="conn" class="pill warn">connecting</span>
</header>
<div id="problems" class="err" style="padding:0 1rem" hidden></div>
<main>
<section>
<h2>Ingest</h2>
<div><span id="ingest-rate" class="big">–</span> <span class="mute">events/s</span></div>
<svg id="rate-chart" viewBox="0 0 300 40" preserveAspectRatio="none" aria-label="ingest rate"><polyline class="line" points=""/></svg>
<dl class="kv">
<dt>received</dt><dd id="ingest-received">–</dd>
<dt>rejected</dt><dd id="ingest-rejected">–</dd>
<dt>MQTT clients</dt><dd id="broker-clients">–</dd>
</dl>
<dl class="kv" id="rejections"></dl>
</section>
<section>
<h2>Buffer</h2>
<div><span id="buffer-fill" class="big">–</span> <span class="mute">full</span></div>
<div class="bar"><div id="buffer-bar"></div></div>
<dl class="kv">
<dt>events</dt><dd id="buffer-events">–</dd>
<dt>bytes</dt><dd id="buffer-bytes">–</dd>
<dt>oldest</dt><dd id="buffer-oldest">–</dd>
<dt>evicted</dt><dd id="buffer-evicted">–</dd>
<dt>refused</dt><dd id="buffer-refused">–</dd>
<dt>quarantined</dt><dd id="buffer-quarantined">–</dd>
</dl>
<dl class="kv" id="evictions"></dl>
</section>
<section>
<h2>Anomalies</h2>
<div><span id="anomalies-total" class="big">–</span> <span class="mute">total</span></div>
<dl class="kv" id="anomalies-by"></dl>
<ul class="plain" id="anomalies-recent"></ul>
</section>
<section class="wide">
<h2>Uplinks</h2>
<div class="scroll"><table>
<thead><tr><th>name</th><th>type</th><th>link</th><th class="num">pending</th><th class="num">delivered</th><th class="num">lag</th><th class="num">retried</th><th class="num">dead-lettered</th><th>last error</th></tr></thead>
<tbody id="uplinks"></tbody>
</table></div>
</section>
<section class="wide">
<h2>Drivers and devices</h2>
<div class="scroll"><table>
<thead><tr><th>driver</th><th>device</th><th>state</th><th>last reading</th><th class="num">failures</th><th>last error</th></tr></thead>
<tbody id="drivers"></tbody>
</table></div>
</section>
<section class="wide">
<h2>Live readings</h2>
<div id="charts"></div>
<details><summary>choose topics (<span id="topic-count">0</span> seen)</summary><div id="topics"></div></details>
</section>
</main>
<script>
(function () {
  'use strict';
  var MAX_POINTS = 120;
  var $ = function (id) { return document.getElementById(id); };
  var last = null;
  var rates = [];
  var series = {};
  var topics = [];
  var chosen = loadChosen();

  function loadChosen() {
    var m = /(?:^|[#&])topics=([^&]*)/.exec(location.hash);
    if (m) return decodeURIComponent(m[1]).split(',').filter(Boolean);
    try { var s = JSON.parse(localStorage.getItem('sluice.topics') || 'null'); if (Array.isArray(s)) return s; } catch (e) {}
    return null;
  }
  function saveChosen() {
    try { localStorage.setItem('sluice.topics', JSON.stringify(chosen)); } catch (e) {}
  }
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
  function set(id, text) { var e = $(id); if (e && e.textContent !== text) e.textContent = text; }
  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }
  function row(cells) {
    var tr = document.createElement('tr');
    cells.forEach(function (c) { tr.appendChild(c); });
    return tr;
  }
  function fill(id, nodes, emptyText, cols) {
    var box = $(id);
    box.textContent = '';
    if (!nodes.length) {
      var empty = cols ? row([el('td', 'empty', emptyText)]) : el('li', 'empty', emptyText);
      if (cols) empty.firstChild.colSpan = cols;
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
  function polyline(svg, values, w, h) {
    var line = svg.querySelector('polyline');
    if (values.length < 2) { line.setAttribute('points', ''); return null; }
    var min = Math.min.apply(null, values), max = Math.max.apply(null, values);
    var span = max - min || 1;
    var pts = values.map(function (v, i) {
      var x = (i / Math.max(1, values.length - 1)) * w;
      var y = h - 2 - ((v - min) / span) * (h - 4);
      return x.toFixed(1) + ',' + y.toFixed(1);
    });
    line.setAttribute('points', pts.join(' '));
    return { min: min, max: max };
  }
  function truthy(v) { return v === true || v === 'up' || v === 'connected'; }

  function renderHeader(st, now) {
    var gw = st.gateway || {};
    set('gw-id', gw.id || '');
    set('gw-version', gw.version ? 'v' + gw.version : '');
    var up = typeof gw.uptimeMs === 'number' ? gw.uptimeMs : typeof gw.uptime === 'number' ? gw.uptime * 1000 : typeof gw.startedAt === 'number' ? now - gw.startedAt : null;
    set('gw-uptime', up === null ? '' : 'up ' + age(up));
    var h = st.health;
    var pill = $('health');
    if (h && typeof h.ok === 'boolean') {
      pill.textContent = h.ok ? 'healthy' : 'unhealthy';
      pill.className = 'pill ' + (h.ok ? 'ok' : 'bad');
    }
    var reasons = h && Array.isArray(h.reasons) ? h.reasons : [];
    set('problems', reasons.join('; '));
    $('problems').hidden = reasons.length === 0;
  }

  function renderIngest(st, now) {
    var ing = st.ingest || {};
    set('ingest-received', num(ing.received));
    set('ingest-rejected', num(ing.rejected));
    kv('rejections', ing.rejectedByReason);
    set('broker-clients', st.broker ? num(st.broker.clients) : '–');
    var rate = typeof ing.rate === 'number' ? ing.rate : null;
    if (rate === null && last && typeof ing.received === 'number' && typeof last.received === 'number' && now > last.now) {
      rate = Math.max(0, (ing.received - last.received) / ((now - last.now) / 1000));
    }
    last = { now: now, received: ing.received };
    if (rate !== null) {
      set('ingest-rate', short(rate));
      rates.push(rate);
      if (rates.length > MAX_POINTS) rates.shift();
      polyline($('rate-chart'), rates, 300, 40);
    }
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

  function renderAnomalies(st, now) {
    var a = st.anomalies || {};
    set('anomalies-total', num(a.total));
    kv('anomalies-by', a.byDetector);
    var recent = Array.isArray(a.recent) ? a.recent.slice(-10).reverse() : [];
    fill('anomalies-recent', recent.map(function (r) {
      var li = el('li');
      var when = typeof r.ts === 'number' ? age(now - r.ts) + ' ago' : '';
      li.appendChild(el('span', 'mute', when + ' '));
      li.appendChild(el('strong', '', r.topic || r.rule || ''));
      var what = [];
      if (r.detector) what.push(r.detector);
      if (r.value !== undefined && !r.reason) what.push('value ' + short(r.value));
      if (r.score !== undefined) what.push('score ' + short(r.score));
      if (r.reason) what.push(r.reason);
      li.appendChild(el('span', '', ' ' + (what.length ? what.join(', ') : JSON.stringify(r))));
      return li;
    }), 'none yet');
  }

  function renderUplinks(st) {
    var ups = Array.isArray(st.uplinks) ? st.uplinks : [];
    fill('uplinks', ups.map(function (u) {
      var link = el('td', '', truthy(u.connected) ? 'connected' : 'down');
      link.className = truthy(u.connected) ? 'ok' : 'bad';
      return row([
        el('td', '', u.name), el('td', 'mute', u.type), link,
        el('td', 'num', num(u.pendingEvents)), el('td', 'num', num(u.deliveredEvents)),
        el('td', 'num', typeof u.lagSeconds === 'number' ? age(u.lagSeconds * 1000) : '–'),
        el('td', 'num', num(u.retried)), el('td', 'num', num(u.deadLettered)),
        el('td', 'err', u.lastError || ''),
      ]);
    }), 'no uplink configured: events are kept in the buffer', 9);
  }

  function renderDrivers(st, now) {
    var rows = [];
    (Array.isArray(st.drivers) ? st.drivers : []).forEach(function (d) {
      var devices = Array.isArray(d.devices) && d.devices.length ? d.devices : [d];
      devices.forEach(function (dev, i) {
        var state = dev.state || d.state || '';
        var stateCell = el('td', '', state);
        stateCell.className = state === 'up' ? 'ok' : state === 'degraded' || state === 'starting' ? 'warn' : state ? 'bad' : '';
        var lr = dev.lastReading;
        var reading = lr ? (lr.topic || '') + ' = ' + (typeof lr.value === 'number' ? short(lr.value) : JSON.stringify(lr.value)) + (typeof lr.ts === 'number' ? ' (' + age(now - lr.ts) + ' ago)' : '') : '–';
        var failures = dev.failures && typeof dev.failures === 'object' ? dev.failures : {};
        var total = Object.keys(failures).reduce(function (s, k) { return s + (Number(failures[k]) || 0); }, 0);
        var fcell = el('td', 'num', num(total));
        fcell.title = Object.keys(failures).map(function (k) { return k + ': ' + failures[k]; }).join(', ');
        rows.push(row([
          el('td', '', i === 0 ? d.name + (d.type ? ' (' + d.type + ')' : '') : ''),
          el('td', '', dev === d ? '' : dev.device), stateCell, el('td', '', reading), fcell,
          el('td', 'err', dev.lastError || ''),
        ]));
      });
    });
    fill('drivers', rows, 'no driver configured', 6);
  }

  function renderCharts(readings, st) {
    var byTopic = {};
    (readings || []).forEach(function (r) { byTopic[r.topic] = r; });
    // Without a readings feed, fall back to the drivers' last readings.
    if (!readings || !readings.length) {
      (Array.isArray(st.drivers) ? st.drivers : []).forEach(function (d) {
        (d.devices || []).forEach(function (dev) {
          var lr = dev.lastReading;
          if (lr && typeof lr.value === 'number' && lr.topic) byTopic[lr.topic] = { topic: lr.topic, ts: lr.ts, value: lr.value };
        });
      });
    }
    Object.keys(byTopic).forEach(function (t) {
      var r = byTopic[t];
      var s = series[t] || (series[t] = { ts: 0, values: [] });
      if (r.ts !== s.ts) {
        s.ts = r.ts;
        s.values.push(r.value);
        if (s.values.length > MAX_POINTS) s.values.shift();
      }
    });
    var known = Object.keys(series).sort();
    if (known.length > 200) {
      known.slice(200).forEach(function (t) { delete series[t]; });
      known = known.slice(0, 200);
    }
    if (known.join('\\n') !== topics.join('\\n')) {
      topics = known;
      renderTopicPicker();
    }
    var show = chosen ? chosen.filter(function (t) { return series[t]; }) : known.slice(0, 4);
    var box = $('charts');
    if (!show.length) {
      if (!box.querySelector('.empty')) { box.textContent = ''; box.appendChild(el('div', 'empty', 'no numeric readings yet')); }
      return;
    }
    var want = show.join('\\n');
    if (box.getAttribute('data-topics') !== want) {
      box.textContent = '';
      box.setAttribute('data-topics', want);
      show.forEach(function (t) {
        var c = el('div', 'chart');
        c.setAttribute('data-topic', t);
        var title = el('div', 'title');
        title.appendChild(el('span', '', t));
        title.appendChild(el('span', 'value', ''));
        c.appendChild(title);
        var svg = document.createElementNS('http://www.w3.org/2000/svg', 'svg');
        svg.setAttribute('viewBox', '0 0 300 60');
        svg.setAttribute('preserveAspectRatio', 'none');
        var pl = document.createElementNS('http://www.w3.org/2000/svg', 'polyline');
        pl.setAttribute('class', 'line');
        svg.appendChild(pl);
        c.appendChild(svg);
        c.appendChild(el('div', 'mute range', ''));
        box.appendChild(c);
      });
    }
    Array.prototype.forEach.call(box.querySelectorAll('.chart'), function (c) {
      var s = series[c.getAttribute('data-topic')];
      if (!s) return;
      c.querySelector('.value').textContent = short(s.values[s.values.length - 1]);
      var mm = polyline(c.querySelector('svg'), s.values, 300, 60);
      c.querySelector('.range').textContent = mm ? 'min ' + short(mm.min) + ' · max ' + short(mm.max) + ' · last ' + s.values.length + ' readings' : '';
    });
  }

  function renderTopicPicker() {
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
    var parts = [renderHeader, renderIngest, renderBuffer, renderAnomalies, renderUplinks, renderDrivers];
    parts.forEach(function (p) {
      try { p(st, now); } catch (e) { if (window.console) console.error(e); }
    });
    try { renderCharts(frame.readings, st); } catch (e) { if (window.console) console.error(e); }
    document.body.setAttribute('data-frames', String(Number(document.body.getAttribute('data-frames') || 0) + 1));
  }

  function connState(text, cls) {
    var c = $('conn');
    c.textContent = text;
    c.className = 'pill ' + cls;
  }

  var es = new EventSource('api/stream');
  es.addEventListener('open', function () { connState('live', 'ok'); });
  es.addEventListener('error', function () { connState(es.readyState === 2 ? 'disconnected' : 'reconnecting', 'bad'); });
  es.addEventListener('status', function (ev) {
    connState('live', 'ok');
    try { render(JSON.parse(ev.data)); } catch (e) { if (window.console) console.error(e); }
  });
})();
</script>
</body>
</html>
`;

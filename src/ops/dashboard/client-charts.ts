/**
 * The page's time-series charts (browser code, run inside client.ts's scope: it uses its `el`,
 * `short` and `age`). One uPlot chart per chosen topic, with a time axis, the topic's unit on the
 * value axis, and a dashed line and dot where an anomaly or alarm was raised. A chart starts from
 * `api/history` (the ring log's newest stretch), then grows with the live feed. Per-topic state
 * is in a Map (topics are user data: `constructor` is a topic like any other).
 */
export const CHARTS_JS = String.raw`
var Charts = (function () {
  var MAX_POINTS = 4000;
  var HEIGHT = 180;
  var series = new Map();
  var sinceText = '1h';
  var sinceMs = 3600000;
  var gatewayNow = Date.now();

  function css(name) { return getComputedStyle(document.documentElement).getPropertyValue(name).trim() || '#888'; }

  function get(topic) {
    var s = series.get(topic);
    if (!s) {
      s = { topic: topic, x: [], y: [], markers: new Map(), unit: '', lastTs: 0, plot: null, el: null, plotUnit: null, loading: false };
      series.set(topic, s);
    }
    return s;
  }

  function trim(s, now) {
    var cut = (now - sinceMs) / 1000, i = 0;
    while (i < s.x.length && s.x[i] < cut) i++;
    if (s.x.length - i > MAX_POINTS) i = s.x.length - MAX_POINTS;
    if (i > 0) { s.x.splice(0, i); s.y.splice(0, i); }
  }

  function drawMarkers(u, s) {
    if (!s.markers.size) return;
    var ctx = u.ctx, bb = u.bbox, r = 4 * (window.devicePixelRatio || 1), shown = 0;
    ctx.save();
    s.markers.forEach(function (m) {
      var x = u.valToPos(m.ts / 1000, 'x', true);
      if (!(x >= bb.left && x <= bb.left + bb.width)) return;
      shown++;
      var color = m.severity === 'critical' ? css('--bad') : css('--warn');
      ctx.strokeStyle = color;
      ctx.fillStyle = color;
      ctx.setLineDash([4, 3]);
      ctx.beginPath(); ctx.moveTo(x, bb.top); ctx.lineTo(x, bb.top + bb.height); ctx.stroke();
      ctx.setLineDash([]);
      if (typeof m.value === 'number') {
        var y = u.valToPos(m.value, 'y', true);
        ctx.beginPath(); ctx.arc(x, Math.max(bb.top, Math.min(bb.top + bb.height, y)), r, 0, 2 * Math.PI); ctx.fill();
      }
    });
    ctx.restore();
    if (s.el) s.el.setAttribute('data-markers', String(shown));
  }

  function makePlot(s) {
    var box = s.el.querySelector('.plot');
    box.textContent = '';
    if (!window.uPlot) { box.appendChild(el('div', 'empty', 'the chart library did not load')); return; }
    var grid = { stroke: css('--line'), width: 1 };
    var axis = { stroke: css('--mute'), grid: grid, ticks: grid };
    s.plotUnit = s.unit;
    s.plot = new window.uPlot({
      width: Math.max(200, box.clientWidth || 300),
      height: HEIGHT,
      legend: { show: false },
      cursor: { drag: { x: false, y: false } },
      // The chosen window, ending at the gateway's clock; narrowed to where data starts (at least a minute).
      scales: { x: { time: true, range: function (u, min) {
        var now = gatewayNow / 1000;
        var lo = Math.max(now - sinceMs / 1000, Math.min(typeof min === 'number' ? min : now, now - 60));
        return [lo, now];
      } } },
      series: [{}, { label: s.topic, stroke: css('--accent'), width: 1.5 }],
      axes: [
        Object.assign({}, axis),
        Object.assign({}, axis, { label: s.unit || 'value', size: 56, values: function (u, vals) { return vals.map(short); } }),
      ],
      hooks: { draw: [function (u) { drawMarkers(u, s); }] },
    }, [s.x, s.y], box);
  }

  function paint(s) {
    if (!s.el) return;
    var n = s.y.length;
    s.el.querySelector('.value').textContent = n ? short(s.y[n - 1]) + (s.unit ? ' ' + s.unit : '') : '';
    s.el.setAttribute('data-points', String(n));
    if (!s.plot || s.plotUnit !== s.unit) makePlot(s);
    else s.plot.setData([s.x, s.y]);
  }

  // The gateway runs at most two history scans at a time (more get a 503): queue the rest.
  var scans = 0, queued = [];
  function loadHistory(s) {
    if (s.loading) return;
    s.loading = true;
    if (scans >= 2) { queued.push(s); return; }
    scan(s);
  }

  function scan(s) {
    scans++;
    var url = 'api/history?topic=' + encodeURIComponent(s.topic) + '&since=' + encodeURIComponent(sinceText) + '&max=600';
    fetch(url, { cache: 'no-store', credentials: 'same-origin' })
      .then(function (r) { return r.ok ? r.json() : r.json().then(function (b) { throw new Error(b.error || r.status); }); })
      .then(function (h) {
        var firstLive = s.x.length ? s.x[0] * 1000 : Infinity;
        var hx = [], hy = [];
        h.points.forEach(function (p) { if (p[0] < firstLive) { hx.push(p[0] / 1000); hy.push(p[1]); } });
        s.x = hx.concat(s.x);
        s.y = hy.concat(s.y);
        if (h.unit) s.unit = h.unit;
        h.markers.forEach(function (m) { s.markers.set(m.id, m); });
        if (s.el) {
          s.el.setAttribute('data-history', String(h.points.length));
          var note = s.el.querySelector('.range');
          note.textContent = h.complete ? '' : 'history reaches back to ' + new Date(h.reached).toLocaleTimeString() + ' (the log is busy; older readings not scanned)';
        }
        paint(s);
      })
      .catch(function (e) { if (s.el) s.el.querySelector('.range').textContent = 'history not loaded: ' + e.message; })
      .then(function () {
        s.loading = false;
        scans--;
        if (queued.length) scan(queued.shift());
      });
  }

  return {
    /** Live readings and alarms of one frame. */
    update: function (readings, alarms, now) {
      gatewayNow = now;
      (readings || []).forEach(function (r) {
        var s = get(r.topic);
        if (r.unit) s.unit = r.unit;
        if (r.ts <= s.lastTs) return;
        s.lastTs = r.ts;
        s.x.push(r.ts / 1000);
        s.y.push(r.value);
        trim(s, now);
      });
      (alarms || []).forEach(function (a) {
        var s = series.get(a.topic);
        if (s && !s.markers.has(a.id)) s.markers.set(a.id, { ts: a.readingTs || a.ts, value: a.value, severity: a.severity, rule: a.rule });
      });
      series.forEach(function (s) { if (s.markers.size > 200) s.markers.delete(s.markers.keys().next().value); });
    },
    topics: function () { return Array.from(series.keys()).sort(); },
    forget: function (topic) { series.delete(topic); },
    /** Draws the charts of these topics, creating (and loading the history of) new ones. */
    show: function (topics, box) {
      var want = topics.join('\n');
      if (box.getAttribute('data-topics') !== want) {
        box.textContent = '';
        box.setAttribute('data-topics', want);
        series.forEach(function (s) { if (s.plot) s.plot.destroy(); s.plot = null; s.el = null; });
        topics.forEach(function (t) {
          var s = get(t);
          var c = el('div', 'chart');
          c.setAttribute('data-topic', t);
          var title = el('div', 'title');
          title.appendChild(el('span', '', t));
          title.appendChild(el('span', 'value', ''));
          c.appendChild(title);
          c.appendChild(el('div', 'plot'));
          c.appendChild(el('div', 'mute range', ''));
          box.appendChild(c);
          s.el = c;
          loadHistory(s);
        });
      }
      topics.forEach(function (t) { paint(get(t)); });
    },
    setSince: function (text, ms) {
      sinceText = text;
      sinceMs = ms;
      series.forEach(function (s) { if (s.el) loadHistory(s); });
    },
    resize: function () {
      series.forEach(function (s) {
        if (s.plot && s.el) s.plot.setSize({ width: Math.max(200, s.el.querySelector('.plot').clientWidth), height: HEIGHT });
      });
    },
  };
})();
`;

/**
 * The dashboard page: one HTML document with inline CSS and JS (no framework) plus the chart library
 * from `assets/` (uPlot, served by the gateway: no external URL, it works with no internet), readable
 * on a phone (tables turn into cards below 640 px). The client code is client.ts. Everything from
 * the gateway is inserted as text, never as HTML.
 */
import { CLIENT_JS } from './client.js';

const CSS = String.raw`
:root{--bg:#f5f6f8;--card:#fff;--fg:#1b1f24;--mute:#5c6670;--line:#dde1e6;--ok:#1f8a4c;--warn:#b7791f;--bad:#c53030;--accent:#2b6cb0}
@media (prefers-color-scheme:dark){:root{--bg:#111418;--card:#1a1f25;--fg:#e6e9ed;--mute:#97a1ab;--line:#2c333b;--ok:#48bb78;--warn:#ecc94b;--bad:#fc8181;--accent:#63b3ed}}
*{box-sizing:border-box}
body{margin:0;font:14px/1.4 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;background:var(--bg);color:var(--fg)}
header{display:flex;flex-wrap:wrap;gap:.4rem .75rem;align-items:center;padding:.75rem 1rem;border-bottom:1px solid var(--line);background:var(--card)}
header h1{font-size:1.1rem;margin:0}
.mute{color:var(--mute)}
.pill{display:inline-block;padding:0 .5rem;border-radius:1rem;font-size:.8rem;border:1px solid currentColor;white-space:nowrap}
.ok{color:var(--ok)}.warn{color:var(--warn)}.bad{color:var(--bad)}
.banner{margin:.75rem .75rem 0;padding:.5rem .75rem;border-radius:.5rem;border:1px solid currentColor;background:var(--card)}
.banner ul{margin:.25rem 0 0;padding-left:1.2rem}
body.stale main{opacity:.5;filter:grayscale(1)}
main{display:grid;grid-template-columns:repeat(auto-fit,minmax(300px,1fr));gap:.75rem;padding:.75rem}
section{background:var(--card);border:1px solid var(--line);border-radius:.5rem;padding:.75rem;min-width:0}
section.wide{grid-column:1/-1}
h2{font-size:.8rem;text-transform:uppercase;letter-spacing:.05em;margin:0 0 .5rem;color:var(--mute)}
.big{font-size:1.8rem;font-weight:600;font-variant-numeric:tabular-nums}
.kv{display:grid;grid-template-columns:auto 1fr;gap:.15rem .75rem;font-variant-numeric:tabular-nums;margin:.25rem 0}
.kv dt{color:var(--mute)}.kv dd{margin:0;text-align:right;overflow-wrap:anywhere}
.bar{height:.6rem;background:var(--line);border-radius:.3rem;overflow:hidden;margin:.4rem 0}
.bar>div{height:100%;background:var(--accent);width:0;transition:width .4s}
table{width:100%;border-collapse:collapse;font-variant-numeric:tabular-nums}
th,td{text-align:left;padding:.25rem .4rem;border-bottom:1px solid var(--line);vertical-align:top}
th{color:var(--mute);font-weight:500;font-size:.8rem}
td.num,th.num{text-align:right}
td.topic{overflow-wrap:anywhere}
.err{color:var(--bad);font-size:.8rem;overflow-wrap:anywhere}
@media (max-width:640px){
 table.cards thead{display:none}
 table.cards tr{display:block;border:1px solid var(--line);border-radius:.4rem;margin:0 0 .5rem;padding:.25rem .5rem}
 table.cards td{display:flex;justify-content:space-between;gap:1rem;border:0;padding:.1rem 0;text-align:right}
 table.cards td::before{content:attr(data-label);color:var(--mute);text-align:left}
 table.cards td.err{display:block;text-align:left}
 table.cards td.err::before{display:block}
 table.cards td:empty{display:none}
}
svg{display:block;width:100%;height:40px}
svg .line{fill:none;stroke:var(--accent);stroke-width:1.5;vector-effect:non-scaling-stroke}
.chart{margin-bottom:1rem;min-width:0}
.chart .title{display:flex;justify-content:space-between;gap:.5rem;font-size:.85rem}
.chart .title span:first-child{overflow:hidden;text-overflow:ellipsis;white-space:nowrap}
.chart .plot{width:100%;min-height:180px;overflow:hidden}
.uplot,.uplot *{font-family:inherit}
.u-legend{display:none}
details summary{cursor:pointer;color:var(--mute);font-size:.85rem}
#topics label{display:block;font-size:.85rem;overflow:hidden;text-overflow:ellipsis;white-space:nowrap}
ul.plain{list-style:none;margin:0;padding:0}
ul.plain li{padding:.4rem 0;border-bottom:1px solid var(--line);font-size:.85rem}
.alarm{display:grid;grid-template-columns:1fr auto;gap:.1rem .5rem}
.alarm .text{font-weight:600;overflow-wrap:anywhere}
.alarm .meta,.alarm .detail{grid-column:1;font-size:.8rem;color:var(--mute);overflow-wrap:anywhere}
.alarm button,.tools button,.tools select{font:inherit;font-size:.8rem;padding:.15rem .5rem;border-radius:.3rem;border:1px solid var(--line);background:var(--card);color:var(--fg);cursor:pointer}
.alarm button{grid-column:2;grid-row:1/span 3;align-self:center}
.alarm.acked{opacity:.6}
.alarm .note{grid-column:1;font-size:.8rem}
@media (max-width:640px){.alarm{grid-template-columns:1fr}.alarm button{grid-column:1;grid-row:auto;justify-self:start;margin-top:.25rem}}
.sev{display:inline-block;padding:0 .35rem;border-radius:.25rem;font-size:.7rem;font-weight:600;text-transform:uppercase;margin-right:.35rem;border:1px solid currentColor}
.sev.critical{color:var(--bad)}.sev.warning{color:var(--warn)}.sev.info{color:var(--accent)}
.tools{display:flex;flex-wrap:wrap;gap:.5rem;align-items:center;margin-bottom:.5rem}
.empty{color:var(--mute);font-style:italic}
`;

const BODY = String.raw`
<header>
<h1>Sluice <span id="gw-id" class="mute">…</span></h1>
<span id="gw-version" class="mute"></span>
<span id="gw-uptime" class="mute"></span>
<span style="flex:1"></span>
<span class="mute">process</span> <span id="health" class="pill" title="liveness, as /healthz">…</span>
<span class="mute">condition</span> <span id="condition" class="pill" title="whether data flows">…</span>
<span id="conn" class="pill warn">connecting</span>
</header>
<div id="stale" class="banner bad" role="alert" hidden></div>
<div id="problems" class="banner warn" hidden><strong>Degraded:</strong><ul id="reasons"></ul></div>
<main>
<section>
<h2>Ingest</h2>
<div><span id="ingest-rate" class="big">–</span> <span class="mute">events/s</span></div>
<svg id="rate-chart" viewBox="0 0 300 40" preserveAspectRatio="none" aria-label="ingest rate"><polyline class="line" points=""/></svg>
<dl class="kv">
<dt>received</dt><dd id="ingest-received">–</dd>
<dt>rejected</dt><dd id="ingest-rejected">–</dd>
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
<h2>Broker</h2>
<div><span id="broker-clients" class="big">–</span> <span class="mute">MQTT clients connected</span></div>
<dl class="kv"><dt>listeners</dt><dd id="broker-listeners">–</dd></dl>
<table class="cards"><thead><tr><th>topic</th><th class="num">events/s</th><th class="num">events</th></tr></thead>
<tbody id="topic-rates"></tbody></table>
<div id="topic-rates-note" class="mute" style="font-size:.8rem"></div>
</section>
<section class="wide">
<h2>Alarms</h2>
<div class="tools"><span><span id="alarms-open" class="big">–</span> <span class="mute">unacknowledged</span></span>
<span class="mute" id="anomalies-total-line"><span id="anomalies-total">–</span> anomalies since start</span>
<span style="flex:1"></span><button id="ack-all" type="button">Acknowledge all</button></div>
<ul class="plain" id="alarms"></ul>
</section>
<section class="wide">
<h2>Readings</h2>
<div class="tools"><label class="mute">history <select id="since"><option value="15m">15 min</option><option value="1h" selected>1 h</option><option value="6h">6 h</option><option value="24h">24 h</option></select></label>
<details><summary>choose topics (<span id="topic-count">0</span> seen)</summary><div id="topics"></div></details></div>
<div id="charts"></div>
</section>
<section class="wide">
<h2>Uplinks</h2>
<table class="cards">
<thead><tr><th>name</th><th>type</th><th>link</th><th class="num">pending</th><th class="num">delivered</th><th class="num">lag</th><th class="num">retried</th><th class="num">dead-lettered</th><th>last error</th></tr></thead>
<tbody id="uplinks"></tbody>
</table>
</section>
<section class="wide">
<h2>Rules</h2>
<table class="cards">
<thead><tr><th>rule</th><th>kind</th><th class="num">matches</th><th class="num">keys</th><th class="num">pending</th><th class="num">evicted</th><th class="num">errors</th><th class="num">cpu</th></tr></thead>
<tbody id="rules"></tbody>
</table>
</section>
<section class="wide">
<h2>Drivers and devices</h2>
<table class="cards">
<thead><tr><th>driver</th><th>device</th><th>state</th><th>last reading</th><th class="num">failures</th><th>last error</th></tr></thead>
<tbody id="drivers"></tbody>
</table>
</section>
</main>
`;

export const PAGE_HTML = String.raw`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light dark">
<title>Sluice</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="assets/uplot.css">
<style>${CSS}</style>
</head>
<body>${BODY}
<script src="assets/uplot.js"></script>
<script>${CLIENT_JS}</script>
</body>
</html>
`;

/**
 * Attacks on the gateway's HTTP surface, replayed against the compiled gateway as a child process
 * with real clients: Node http/fetch for what curl would send, mqtt.js over WebSocket, and headless
 * Chromium for what a malicious web page can make the operator's browser do. Each case asserts the
 * attack now fails and changed nothing.
 *
 * Chromium resolves `*.evil.example` to 127.0.0.1 (`--host-resolver-rules`), so the attacker's pages
 * are served from a look-alike origin such as `http://127.0.0.1.evil.example:PORT` on this machine,
 * the way the review reached a gateway on loopback.
 */
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { createServer, request, type Server } from 'node:http';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import mqtt from 'mqtt';
import { type Browser, chromium, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hashPassword } from '../../src/auth/password.js';
import { waitFor } from '../helpers/gateway.js';
import { freePort, tempDir } from '../helpers/peers.js';
import { type ChildGateway, startChildGateway } from './child-gateway.js';

const ROOT = new URL('../..', import.meta.url).pathname;
const EVIL = '127.0.0.1.evil.example';

/** A raw HTTP request (any Host, Origin, content type), as curl would send it. */
function raw(
  port: number,
  opts: { method?: string; path: string; headers?: Record<string, string>; body?: string },
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, method: opts.method ?? 'GET', path: opts.path, headers: opts.headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
    });
    req.on('error', reject);
    req.end(opts.body);
  });
}

interface Consumers {
  consumers: { name: string; committedSeq: number; deliveredEvents: number }[];
  idleReleased: number;
}

describe('HTTP surface attacks', () => {
  let gw: ChildGateway;
  let wsPort: number;
  let browser: Browser;
  let page: Page;
  let evil: Server;
  let evilPort: number;
  const consumers = async () => (await (await fetch(`${gw.url}/api/events/consumers`)).json()) as Consumers;
  const received = async () => (await gw.status()).ingest.received;

  beforeAll(async () => {
    wsPort = await freePort();
    const mqttPort = await freePort();
    gw = await startChildGateway({
      broker: {
        listeners: [
          { host: '127.0.0.1', port: mqttPort },
          { host: '127.0.0.1', port: wsPort, ws: true },
        ],
      },
      http: { consumers: { idleTimeout: '3s' } },
      // An uplink whose URL carries a password, to a port where nothing listens.
      uplinks: [{ name: 'cloud', type: 'mqtt', url: 'mqtt://gw:hunter2-secret@127.0.0.1:9', reconnect: { minDelay: '200ms', maxDelay: '500ms' } }],
    });
    // The attacker's site: serves whatever page a case sets.
    let html = '<p>nothing</p>';
    evil = createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/html' });
      res.end(html);
    });
    await new Promise<void>((r) => evil.listen(0, '127.0.0.1', r));
    evilPort = (evil.address() as { port: number }).port;
    (globalThis as { setEvilPage?: (h: string) => void }).setEvilPage = (h) => {
      html = h;
    };
    browser = await chromium.launch({
      executablePath: '/usr/bin/chromium',
      headless: true,
      args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--host-resolver-rules=MAP *.evil.example 127.0.0.1'],
    });
    page = await browser.newPage();
  }, 90_000);

  afterAll(async () => {
    await browser?.close();
    evil?.close();
    await gw?.stop();
    gw?.cleanup();
  });

  const openEvilPage = async (html: string) => {
    (globalThis as unknown as { setEvilPage: (h: string) => void }).setEvilPage(html);
    await page.goto(`http://${EVIL}:${evilPort}/`);
  };

  it('refuses ingest and WebSocket MQTT from a look-alike origin (127.0.0.1.evil.example)', async () => {
    const before = await received();
    // Chromium: a page on the look-alike host posts a forged reading (a simple text/plain POST).
    await openEvilPage('<p>evil</p>');
    const fromPage = await page.evaluate(async (url) => {
      try {
        const r = await fetch(`${url}/api/events`, {
          method: 'POST',
          mode: 'no-cors',
          headers: { 'content-type': 'text/plain' },
          body: JSON.stringify({ topic: 'plant/forged', payload: 1 }),
        });
        return r.type;
      } catch (e) {
        return String(e);
      }
    }, gw.url);
    expect(fromPage).toBeDefined();
    // The same with a forged Origin header, curl-like.
    const forged = await raw(gw.httpPort, {
      method: 'POST',
      path: '/api/events',
      headers: { origin: `http://${EVIL}`, 'content-type': 'text/plain' },
      body: JSON.stringify({ topic: 'plant/forged', payload: 2 }),
    });
    expect(forged.status).toBe(403);
    await new Promise((r) => setTimeout(r, 300));
    expect(await received()).toBe(before);

    // mqtt.js over WebSocket with that Origin: no session.
    const outcome = await mqtt
      .connectAsync(`ws://127.0.0.1:${wsPort}`, {
        reconnectPeriod: 0,
        connectTimeout: 5000,
        wsOptions: { headers: { origin: `http://${EVIL}` } },
      })
      .then(async (c) => {
        await c.endAsync();
        return 'connected';
      })
      .catch((err: Error) => err.message);
    expect(outcome).not.toBe('connected');
    // A page genuinely on loopback still connects.
    const ok = await mqtt.connectAsync(`ws://127.0.0.1:${wsPort}`, {
      reconnectPeriod: 0,
      wsOptions: { headers: { origin: 'http://127.0.0.1:8080' } },
    });
    await ok.endAsync();
  });

  it('refuses a cross-site ack and an out-of-range ack; the cursor does not move', async () => {
    // A real consumer reads one batch (a trusted loopback client, so the name is created).
    const post = await fetch(`${gw.url}/api/events`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify([1, 2].map((i) => ({ topic: 'plant/ack', payload: i }))),
    });
    expect(post.status).toBe(200);
    const batch = (await (await fetch(`${gw.url}/api/events?consumer=historian&max=2`)).json()) as { batchId: string };
    // The historian keeps a long poll open (as it would), so it is not idle however slow this case runs.
    const hold = new AbortController();
    const holding = fetch(`${gw.url}/api/events?consumer=historian&wait=60s`, { signal: hold.signal }).catch(() => undefined);
    const cursor = async () => (await consumers()).consumers.find((c) => c.name === 'historian')!.committedSeq;
    const before = await cursor();

    // Chromium: the page posts text/plain (no preflight) and a form, each moving the cursor to 2^53-1.
    await openEvilPage(`<form id=f method=POST action="${gw.url}/api/events/ack" enctype="text/plain">
      <input name='{"consumer":"historian","upTo":9007199254740991,"x":"' value='"}'></form>`);
    await page.evaluate(async (url) => {
      await fetch(`${url}/api/events/ack`, {
        method: 'POST',
        mode: 'no-cors',
        headers: { 'content-type': 'text/plain' },
        body: JSON.stringify({ consumer: 'historian', upTo: 2 ** 53 - 1 }),
      }).catch(() => undefined);
    }, gw.url);
    await Promise.all([page.waitForNavigation().catch(() => undefined), page.evaluate(() => (document.getElementById('f') as HTMLFormElement).submit())]);
    expect(await page.content()).toMatch(/another site/);
    expect(await cursor()).toBe(before);

    // curl-like: text/plain is refused (415), an upTo beyond what was handed out is a 400.
    const plain = await raw(gw.httpPort, {
      method: 'POST',
      path: '/api/events/ack',
      headers: { 'content-type': 'text/plain' },
      body: JSON.stringify({ consumer: 'historian', upTo: 2 ** 53 - 1 }),
    });
    expect(plain.status).toBe(415);
    for (const body of [{ consumer: 'historian', upTo: 2 ** 53 - 1 }, { consumer: 'historian', batchId: '1-999999' }]) {
      const r = await fetch(`${gw.url}/api/events/ack`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
      expect(r.status).toBe(400);
    }
    expect(await cursor()).toBe(before);
    // The real ack works.
    const ack = await fetch(`${gw.url}/api/events/ack`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ consumer: 'historian', batchId: batch.batchId }),
    });
    expect(ack.status).toBe(200);
    expect(await cursor()).toBeGreaterThan(before);
    hold.abort();
    await holding;
  });

  it('creates no consumer for a cross-site page, and releases an idle one after idleTimeout', async () => {
    await openEvilPage(
      Array.from({ length: 20 }, (_, i) => `<img src="${gw.url}/api/events?consumer=evil${i}">`).join('') +
        `<script>fetch("${gw.url}/api/events?consumer=evil-fetch", {mode: "no-cors"}).catch(() => {})</script>`,
    );
    await page.waitForLoadState('load');
    await new Promise((r) => setTimeout(r, 300));
    expect((await consumers()).consumers.map((c) => c.name).filter((n) => n.startsWith('evil'))).toEqual([]);
    // A consumer that reads once and goes away stops holding the log after idleTimeout (3 s here).
    await fetch(`${gw.url}/api/events?consumer=gone&max=1`);
    expect((await consumers()).consumers.map((c) => c.name)).toContain('gone');
    await waitFor(async () => !(await consumers()).consumers.some((c) => c.name === 'gone'), 40_000, 'the idle consumer to be released');
    expect((await consumers()).idleReleased).toBeGreaterThanOrEqual(1);
    expect(gw.logs.some((l) => l.consumer === 'gone' && /idle/.test(l.msg))).toBe(true);
  });

  it('refuses a DNS-rebound host name (reading status and consumer streams)', async () => {
    // Chromium: a name that resolves to the gateway, as after a rebinding.
    await page.goto(`http://rebind.evil.example:${gw.httpPort}/`);
    const seen = await page.evaluate(async () => {
      const r = await fetch('/api/status');
      return { status: r.status, text: await r.text() };
    });
    expect(seen.status).toBe(403);
    expect(seen.text).not.toContain('gw-faults');
    const stream = await raw(gw.httpPort, { path: '/api/events?consumer=historian', headers: { host: `attacker.example:${gw.httpPort}` } });
    expect(stream.status).toBe(403);
    // The gateway's own names still work.
    for (const host of [`127.0.0.1:${gw.httpPort}`, `localhost:${gw.httpPort}`, `[::1]:${gw.httpPort}`])
      expect((await raw(gw.httpPort, { path: '/api/status', headers: { host } })).status).toBe(200);
  });

  it('answers 400, not 503, to a deeply nested payload', async () => {
    const depth = 10_000;
    const r = await fetch(`${gw.url}/api/events`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: `{"topic":"plant/deep","payload":${'['.repeat(depth)}${']'.repeat(depth)}}`,
    });
    expect(r.status).toBe(400);
    expect(r.headers.get('retry-after')).toBeNull();
    expect(((await r.json()) as { error: string }).error).toMatch(/nested deeper/);
  });

  it('shows no URL password in uplink status or logs', async () => {
    await waitFor(async () => Boolean((await gw.status()).uplinks[0]?.lastError), 10_000, 'the uplink to report an error');
    const status = JSON.stringify(await gw.status());
    expect(status).toContain('127.0.0.1:9');
    expect(status).not.toContain('hunter2-secret');
    expect(JSON.stringify(gw.logs)).not.toContain('hunter2-secret');
  });
});

describe('HTTP listener limits and auth rules', () => {
  it('validate exits 1 naming http.auth for a listener off loopback without auth', async () => {
    const dir = tempDir('sluice-sec-validate-');
    try {
      const file = join(dir.path, 'c.json');
      writeFileSync(file, JSON.stringify({ http: { host: '0.0.0.0' } }));
      const run = promisify(execFile);
      const err = await run('node', ['src/cli/bin.js', 'validate', '-c', file], { cwd: ROOT }).then(
        () => undefined,
        (e: { code: number; stderr: string }) => e,
      );
      expect(err?.code).toBe(1);
      expect(err?.stderr).toMatch(/http\.auth/);
      writeFileSync(file, JSON.stringify({ http: { host: '0.0.0.0', allowAnonymous: true } }));
      const ok = await run('node', ['src/cli/bin.js', 'validate', '-c', file], { cwd: ROOT });
      expect(ok.stdout).toMatch(/ok/);
    } finally {
      dir.cleanup();
    }
  });

  it('caps connections and closes idle sockets; trustLoopback: false asks loopback clients for the password', async () => {
    const gw = await startChildGateway(
      {
        http: {
          maxConnections: 20,
          headersTimeout: '1s',
          trustLoopback: false,
          auth: { username: 'admin', passwordHash: await hashPassword('right-pw') },
        },
      },
      { nofile: 512 },
    );
    const idle: Socket[] = [];
    try {
      for (let i = 0; i < 100; i++) {
        const s = connect(gw.httpPort, '127.0.0.1');
        s.on('error', () => {});
        idle.push(s);
      }
      await new Promise((r) => setTimeout(r, 300));
      const open = () => idle.filter((s) => !s.destroyed && s.readyState === 'open').length;
      // The cap closed all but 20 (the kernel accepts them; the gateway closes them at once).
      await waitFor(() => open() <= 20, 5000, 'the connection cap to close the excess');
      // Idle sockets are closed after headersTimeout: the listener serves again.
      await waitFor(() => open() === 0, 5000, 'idle sockets to be closed');
      expect(await gw.healthz()).toBe(200);

      // Behind a reverse proxy every client is loopback: with trustLoopback false they authenticate.
      const anon = await fetch(`${gw.url}/api/status`);
      expect(anon.status).toBe(401);
      const auth = { authorization: `Basic ${Buffer.from('admin:right-pw').toString('base64')}` };
      const status = (await (await fetch(`${gw.url}/api/status`, { headers: auth })).json()) as {
        http: { refusedConnections: number };
      };
      expect(status.http.refusedConnections).toBeGreaterThanOrEqual(60);
      expect(gw.logs.some((l) => /http\.maxConnections/.test(l.msg))).toBe(true);
      // ... and an anonymous loopback client cannot post to HTTP ingest either.
      const ingest = await fetch(`${gw.url}/api/events`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ topic: 'x', payload: 1 }),
      });
      expect(ingest.status).toBe(401);
    } finally {
      for (const s of idle) s.destroy();
      await gw.stop();
      gw.cleanup();
    }
  });
  it('an anonymous client (allowAnonymous) can read but cannot create or remove consumers', async () => {
    // trustLoopback: false makes this loopback client anonymous, as a LAN client would be.
    const gw = await startChildGateway({ http: { trustLoopback: false, allowAnonymous: true } });
    try {
      expect((await fetch(`${gw.url}/api/status`)).status).toBe(200);
      for (let i = 0; i < 20; i++) {
        const r = await fetch(`${gw.url}/api/events?consumer=anon${i}`);
        expect(r.status).toBe(403);
        await r.arrayBuffer();
      }
      const list = (await (await fetch(`${gw.url}/api/events/consumers`)).json()) as Consumers;
      expect(list.consumers).toEqual([]);
      expect((await fetch(`${gw.url}/api/events/consumers?consumer=x`, { method: 'DELETE' })).status).toBe(403);
    } finally {
      await gw.stop();
      gw.cleanup();
    }
  });
});

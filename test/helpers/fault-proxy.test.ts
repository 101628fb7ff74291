/** The fault proxy itself: passes bytes untouched, and each fault does what it says. */
import { connect, createServer, type Server, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type FaultProxy, startFaultProxy } from './fault-proxy.js';
import { until } from './until.js';

function echoServer(): Promise<{ server: Server; port: number }> {
  const server = createServer((s) => {
    s.on('error', () => {});
    s.pipe(s);
  });
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () => resolve({ server, port: (server.address() as { port: number }).port })),
  );
}

function open(port: number): Promise<{ sock: Socket; received: () => Buffer; ended: Promise<string> }> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const sock = connect(port, '127.0.0.1');
    const ended = new Promise<string>((r) => {
      sock.on('error', (err: NodeJS.ErrnoException) => r(err.code ?? 'error'));
      sock.on('end', () => r('end'));
    });
    sock.on('data', (c) => chunks.push(c));
    sock.once('connect', () => resolve({ sock, received: () => Buffer.concat(chunks), ended }));
    sock.once('error', reject);
  });
}

describe('fault proxy', () => {
  let echo: { server: Server; port: number };
  let proxy: FaultProxy;
  beforeAll(async () => {
    echo = await echoServer();
    proxy = await startFaultProxy({ targetPort: echo.port });
  });
  afterAll(async () => {
    await proxy.close();
    echo.server.close();
  });

  it('passes bytes through unchanged and in order, with and without a delay', async () => {
    const c = await open(proxy.port);
    const data = Buffer.from(Array.from({ length: 200_000 }, (_, i) => i % 251));
    c.sock.write(data);
    await until(() => c.received().length === data.length);
    expect(c.received().equals(data)).toBe(true);

    proxy.delay(100);
    const t0 = Date.now();
    for (let i = 0; i < 50; i++) c.sock.write(Buffer.from([i]));
    await until(() => c.received().length === data.length + 50);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(90); // each way delayed: a fact of the fault, not a perf figure
    expect([...c.received().subarray(data.length)]).toEqual(Array.from({ length: 50 }, (_, i) => i));
    proxy.delay(0);
    c.sock.destroy();
  });

  it('cut ends the stream cleanly; reset aborts it with ECONNRESET', async () => {
    const a = await open(proxy.port);
    await until(() => proxy.stats.open >= 1);
    proxy.cut();
    expect(await a.ended).toBe('end');
    const b = await open(proxy.port);
    b.sock.write('x');
    await until(() => b.received().length === 1);
    proxy.reset();
    expect(await b.ended).toBe('ECONNRESET');
    expect(proxy.stats.cuts).toBe(1);
    expect(proxy.stats.resets).toBe(1);
  });

  it('blackhole stalls open and new connections without closing them, and loses nothing after', async () => {
    const a = await open(proxy.port);
    a.sock.write('1');
    await until(() => a.received().length === 1);
    proxy.blackhole(true);
    a.sock.write('234');
    const b = await open(proxy.port); // accepted, but nothing reaches the server
    b.sock.write('hello');
    await new Promise((r) => setTimeout(r, 200));
    expect(a.received().toString()).toBe('1');
    expect(b.received().length).toBe(0);
    proxy.blackhole(false);
    await until(() => a.received().toString() === '1234' && b.received().toString() === 'hello');
    a.sock.destroy();
    b.sock.destroy();
  });

  it('refuse resets new connections at once', async () => {
    proxy.refuse(true);
    const c = await open(proxy.port).catch(() => undefined);
    const outcome = c ? await c.ended : 'ECONNRESET';
    expect(outcome).toBe('ECONNRESET');
    proxy.refuse(false);
    expect(proxy.stats.refused).toBe(1);
  });
});

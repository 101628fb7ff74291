/**
 * A TCP fault proxy for tests: sits between a client and a real server and injects the faults a
 * field link has, on command.
 *
 * - `cut()`: closes every open connection cleanly (FIN both ways), as a peer that restarts does.
 * - `reset()`: aborts every open connection with a TCP RST, as a NAT box or firewall that forgets it.
 * - `blackhole(true)`: nothing moves any more, in either direction, and no FIN or RST is sent: open
 *   connections stall (reads stop, so the senders' buffers fill) and new ones are accepted but never
 *   reach the server — a cable pulled somewhere past the first hop. `blackhole(false)` resumes the
 *   stalled connections in order, losing no byte.
 * - `refuse(true)`: new connections are accepted and reset at once (connection refused).
 * - `delay(ms)`: every chunk is forwarded `ms` later, order kept (a slow satellite or cellular link).
 *
 * Guarantees: the proxy never reorders, duplicates or alters a byte; a fault only stops or ends a
 * stream. It holds no more than the sockets' own buffers plus the chunks in a delay line (each
 * direction pauses its reader while more than 1 MiB is in flight). `stats` counts connections and
 * faults, for test reports.
 */
import { createServer, type Server, Socket } from 'node:net';

export interface FaultProxyStats {
  /** Connections accepted since start. */
  connections: number;
  /** Connections open now. */
  open: number;
  cuts: number;
  resets: number;
  blackholes: number;
  refused: number;
  bytesUp: number;
  bytesDown: number;
}

export interface FaultProxy {
  readonly port: number;
  readonly host: string;
  /** `<scheme>://127.0.0.1:<port>` with the scheme of the proxied service. */
  url(scheme: string): string;
  cut(): void;
  reset(): void;
  blackhole(on: boolean): void;
  refuse(on: boolean): void;
  delay(ms: number): void;
  /** Points new connections at another target (a restarted server on a new port). */
  retarget(port: number, host?: string): void;
  readonly stats: FaultProxyStats;
  close(): Promise<void>;
}

const MAX_IN_FLIGHT = 1024 * 1024;

interface Pair {
  client: Socket;
  server: Socket;
  /** Resumes forwarding after a blackhole. */
  resume(): void;
}

/** Starts a proxy on a free loopback port (or `listenPort`) in front of `targetHost:targetPort`. */
export async function startFaultProxy(opts: {
  targetPort: number;
  targetHost?: string;
  listenPort?: number;
}): Promise<FaultProxy> {
  let target = { host: opts.targetHost ?? '127.0.0.1', port: opts.targetPort };
  let delayMs = 0;
  let holed = false;
  let refusing = false;
  const pairs = new Set<Pair>();
  const stats: FaultProxyStats = {
    connections: 0,
    open: 0,
    cuts: 0,
    resets: 0,
    blackholes: 0,
    refused: 0,
    bytesUp: 0,
    bytesDown: 0,
  };

  /** Forwards `from` → `to` through the delay line; `count` tallies bytes. */
  function forward(from: Socket, to: Socket, count: (n: number) => void): { resume(): void } {
    let inFlight = 0;
    let chain = Promise.resolve();
    const queue: { due: number; chunk: Buffer }[] = [];
    let timer: NodeJS.Timeout | undefined;
    const pump = () => {
      timer = undefined;
      if (holed) {
        // Held in the line until the blackhole lifts.
        timer = setTimeout(pump, 20);
        return;
      }
      const now = Date.now();
      while (queue.length && queue[0].due <= now) {
        const { chunk } = queue.shift()!;
        inFlight -= chunk.length;
        if (!to.destroyed) to.write(chunk);
      }
      if (queue.length) timer = setTimeout(pump, queue[0].due - now);
      if (inFlight < MAX_IN_FLIGHT && !holed && from.isPaused()) from.resume();
    };
    from.on('data', (chunk: Buffer) => {
      count(chunk.length);
      if (delayMs <= 0 && queue.length === 0) {
        if (!to.write(chunk)) {
          from.pause();
          to.once('drain', () => {
            if (!holed) from.resume();
          });
        }
        return;
      }
      inFlight += chunk.length;
      queue.push({ due: Date.now() + delayMs, chunk });
      if (!timer) timer = setTimeout(pump, Math.max(0, queue[0].due - Date.now()));
      if (inFlight >= MAX_IN_FLIGHT) from.pause();
    });
    // A clean end travels on (after what is still in the delay line).
    from.on('end', () => {
      chain = chain.then(async () => {
        while (queue.length) await new Promise((r) => setTimeout(r, 5));
        to.end();
      });
    });
    from.on('close', () => {
      if (timer) clearTimeout(timer);
    });
    return {
      resume() {
        if (inFlight < MAX_IN_FLIGHT) from.resume();
      },
    };
  }

  function connectUpstream(client: Socket): void {
    const server = new Socket();
    // Nothing reaches the server until the pair is wired; a blackholed client waits here.
    client.pause();
    const pair: Pair = {
      client,
      server,
      resume: () => {},
    };
    pairs.add(pair);
    stats.open++;
    const destroyBoth = () => {
      if (!pairs.delete(pair)) return;
      stats.open--;
      client.destroy();
      server.destroy();
    };
    client.on('error', destroyBoth);
    server.on('error', destroyBoth);
    client.on('close', destroyBoth);
    server.on('close', destroyBoth);
    server.connect(target.port, target.host, () => {
      const up = forward(client, server, (n) => {
        stats.bytesUp += n;
      });
      const down = forward(server, client, (n) => {
        stats.bytesDown += n;
      });
      pair.resume = () => {
        up.resume();
        down.resume();
      };
      if (holed) server.pause();
      else client.resume();
    });
  }

  const pending = new Set<Socket>();
  const proxy: Server = createServer((client) => {
    stats.connections++;
    client.setNoDelay(true);
    if (refusing) {
      stats.refused++;
      client.resetAndDestroy();
      return;
    }
    if (holed) {
      // Accepted (the first hop answers) but nothing gets through until the blackhole lifts.
      pending.add(client);
      client.pause();
      client.on('error', () => pending.delete(client));
      client.on('close', () => pending.delete(client));
      return;
    }
    connectUpstream(client);
  });

  await new Promise<void>((resolve, reject) => {
    proxy.once('error', reject);
    proxy.listen(opts.listenPort ?? 0, '127.0.0.1', () => resolve());
  });
  const { port } = proxy.address() as { port: number };

  return {
    port,
    host: '127.0.0.1',
    url: (scheme) => `${scheme}://127.0.0.1:${port}`,
    stats,
    cut() {
      stats.cuts++;
      for (const p of [...pairs]) {
        p.client.end();
        p.server.end();
        // A peer that ignores the FIN is closed for good shortly after.
        setTimeout(() => {
          p.client.destroy();
          p.server.destroy();
        }, 200).unref();
      }
      for (const c of pending) c.destroy();
    },
    reset() {
      stats.resets++;
      for (const p of [...pairs]) {
        p.client.resetAndDestroy();
        p.server.resetAndDestroy();
      }
      for (const c of pending) c.resetAndDestroy();
    },
    blackhole(on) {
      if (on === holed) return;
      holed = on;
      if (on) {
        stats.blackholes++;
        for (const p of pairs) {
          p.client.pause();
          p.server.pause();
        }
        return;
      }
      for (const p of pairs) p.resume();
      for (const c of [...pending]) {
        pending.delete(c);
        if (!c.destroyed) connectUpstream(c);
      }
    },
    refuse(on) {
      refusing = on;
    },
    delay(ms) {
      delayMs = ms;
    },
    retarget(newPort, host = target.host) {
      target = { host, port: newPort };
    },
    close() {
      for (const p of [...pairs]) {
        p.client.destroy();
        p.server.destroy();
      }
      for (const c of pending) c.destroy();
      return new Promise((resolve) => proxy.close(() => resolve()));
    },
  };
}

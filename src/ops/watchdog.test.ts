/**
 * The watchdog against a real notify socket: a small receiver in the system Python stands in for
 * systemd's end (it records each datagram and closes the barrier fds systemd-notify passes, as
 * systemd does), and the real `systemd-notify` binary sends.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { tempDir } from '../../test/helpers/peers.js';
import { silentLogger } from '../core/log.js';
import { startWatchdog, type Watchdog } from './watchdog.js';

const RECEIVER = `
import os, socket, sys, time
path, out = sys.argv[1], sys.argv[2]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(path)
with open(out, 'a', buffering=1) as f:
    while True:
        msg, anc, flags, addr = s.recvmsg(4096, socket.CMSG_SPACE(64))
        for level, kind, data in anc:
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                for i in range(0, len(data) - len(data) % 4, 4):
                    os.close(int.from_bytes(data[i:i + 4], sys.byteorder))
        for line in msg.decode().splitlines():
            f.write('%d %s\\n' % (time.time() * 1000, line))
`;
import { until } from '../../test/helpers/until.js';

const hasNotify = existsSync('/usr/bin/systemd-notify') || existsSync('/bin/systemd-notify');
const dir = tempDir('sluice-watchdog-');
let receiver: ChildProcess | undefined;
let dog: Watchdog | undefined;

afterEach(() => {
  dog?.stop();
  receiver?.kill();
});

async function listen(name: string): Promise<{ socket: string; lines(): { ts: number; text: string }[] }> {
  const socket = join(dir.path, `${name}.sock`);
  const out = join(dir.path, `${name}.log`);
  receiver = spawn('/usr/bin/python3', ['-c', RECEIVER, socket, out], { stdio: 'ignore' });
  for (let i = 0; i < 100 && !existsSync(socket); i++) await new Promise((r) => setTimeout(r, 20));
  return {
    socket,
    lines: () =>
      existsSync(out)
        ? readFileSync(out, 'utf8')
            .trim()
            .split('\n')
            .filter(Boolean)
            .map((l) => ({ ts: Number(l.slice(0, l.indexOf(' '))), text: l.slice(l.indexOf(' ') + 1) }))
        : [],
  };
}

describe.skipIf(!hasNotify)('watchdog', () => {
  it('does nothing outside systemd', () => {
    dog = startWatchdog({ logger: silentLogger, env: {} });
    expect(dog.enabled).toBe(false);
    expect(dog.intervalMs).toBe(0);
    dog.ready();
  });

  it('sends READY=1, heartbeats every half period, and STOPPING=1', async () => {
    const peer = await listen('beats');
    dog = startWatchdog({
      logger: silentLogger,
      env: { NOTIFY_SOCKET: peer.socket, WATCHDOG_USEC: '400000', PATH: process.env.PATH },
      statusText: () => 'ingest 42',
    });
    expect(dog.intervalMs).toBe(200);
    dog.ready();
    expect(await until(() => peer.lines().some((l) => l.text === 'READY=1'))).toBe(true);
    expect(await until(() => peer.lines().filter((l) => l.text === 'WATCHDOG=1').length >= 3)).toBe(true);
    expect(peer.lines().some((l) => l.text === 'STATUS=ingest 42')).toBe(true);
    dog.stopping();
    expect(await until(() => peer.lines().some((l) => l.text === 'STOPPING=1'))).toBe(true);
  });

  it('stops the heartbeat while the event loop is blocked and while unhealthy', async () => {
    const peer = await listen('stall');
    let healthy = true;
    dog = startWatchdog({
      logger: silentLogger,
      env: { NOTIFY_SOCKET: peer.socket, WATCHDOG_USEC: '400000', PATH: process.env.PATH },
      healthy: () => healthy,
    });
    expect(await until(() => dog!.sent >= 2)).toBe(true);
    // Start the block right after a heartbeat completed, so no notify child is in flight (on a
    // loaded machine one could otherwise land inside the window).
    const sentBefore = dog.sent;
    expect(await until(() => dog!.sent > sentBefore)).toBe(true);
    // Block the loop for 3 periods: no heartbeat can go out, and the late tick is not sent either.
    const blockedFrom = Date.now();
    while (Date.now() - blockedFrom < 700) {
      /* busy: the loop is stuck */
    }
    const blockedTo = Date.now();
    await new Promise((r) => setTimeout(r, 100));
    expect(dog.skipped).toBeGreaterThanOrEqual(1);
    const during = peer
      .lines()
      .filter((l) => l.text === 'WATCHDOG=1' && l.ts > blockedFrom + 50 && l.ts < blockedTo + 50);
    expect(during).toEqual([]);
    expect(await until(() => peer.lines().some((l) => l.text === 'WATCHDOG=1' && l.ts > blockedTo + 50))).toBe(true);

    healthy = false;
    const skippedBefore = dog.skipped;
    // Let a notification already in flight finish (slow on a loaded machine), then count.
    await new Promise((r) => setTimeout(r, 1000));
    const sentAt = dog.sent;
    await new Promise((r) => setTimeout(r, 500));
    expect(dog.sent).toBe(sentAt);
    expect(dog.skipped).toBeGreaterThan(skippedBefore);
  });
});

/**
 * systemd readiness and watchdog (sd_notify) for `Type=notify` + `WatchdogSec=` (deploy/sluice.service).
 *
 * Guarantees:
 * - outside systemd (no `NOTIFY_SOCKET`) every call is a no-op: nothing is spawned;
 * - `ready()` sends `READY=1`; `stopping()` sends `STOPPING=1` (systemd then waits for the exit
 *   instead of expecting heartbeats);
 * - with `WATCHDOG_USEC` set (for this PID), a heartbeat `WATCHDOG=1` goes out every half period,
 *   from a timer on the main event loop, so heartbeats stop by themselves if the loop hangs; a
 *   tick that comes more than `stallMs` late (the loop was blocked that long) or finds `healthy()`
 *   false sends nothing, so systemd restarts a gateway that is alive but stuck. Skips are counted.
 *
 * Why a child process: sd_notify is a datagram on an AF_UNIX socket and Node has no unix datagram
 * sockets (dgram is UDP only). Native addons for it have no arm prebuilds, so this runs the
 * `systemd-notify` binary, present wherever systemd is. The unit sets `NotifyAccess=all` because the
 * message comes from a child; systemd-notify (systemd >= 246) waits on a barrier until systemd has
 * read the message, so the sender's cgroup is still known (no race with its exit). One child at a
 * time: a heartbeat is skipped while the previous one is still running, and a child is killed after
 * 5 s, so a stuck notify cannot pile up processes.
 */
import { spawn } from 'node:child_process';
import type { Logger } from 'pino';

export interface WatchdogOptions {
  logger: Logger;
  /** The gateway is fit to run (e.g. the ring log is open); a false stops the heartbeats. */
  healthy?: () => boolean;
  /** A short status line for `systemctl status` (sent with heartbeats). */
  statusText?: () => string;
  /** A tick later than this means the event loop stalled: no heartbeat. Default: half the period. */
  stallMs?: number;
  env?: NodeJS.ProcessEnv;
  /** The notify binary (tests). */
  notifyBin?: string;
}

export interface Watchdog {
  /** True when running under systemd with a notify socket. */
  readonly enabled: boolean;
  /** Heartbeat interval in ms, or 0 when systemd asked for no watchdog. */
  readonly intervalMs: number;
  readonly sent: number;
  readonly skipped: number;
  ready(): void;
  stopping(): void;
  /** Stops the heartbeat timer. */
  stop(): void;
}

export function startWatchdog(options: WatchdogOptions): Watchdog {
  const env = options.env ?? process.env;
  const socket = env.NOTIFY_SOCKET;
  const bin = options.notifyBin ?? 'systemd-notify';
  const log = options.logger;
  const usec = Number(env.WATCHDOG_USEC);
  const forUs = env.WATCHDOG_PID === undefined || Number(env.WATCHDOG_PID) === process.pid;
  const intervalMs = socket && forUs && usec > 0 ? Math.max(50, Math.floor(usec / 2000)) : 0;
  const stallMs = options.stallMs ?? intervalMs / 2;
  let busy = false;
  let sent = 0;
  let skipped = 0;
  let timer: NodeJS.Timeout | undefined;
  let warned = false;

  const notify = (args: string[], onDone?: (ok: boolean) => void) => {
    if (!socket) return;
    busy = true;
    const child = spawn(bin, args, { stdio: ['ignore', 'ignore', 'pipe'], env: { ...env, NOTIFY_SOCKET: socket } });
    let stderr = '';
    child.stderr?.on('data', (d) => {
      stderr = (stderr + d).slice(-500);
    });
    const kill = setTimeout(() => child.kill('SIGKILL'), 5000);
    kill.unref();
    const done = (ok: boolean, why?: string) => {
      clearTimeout(kill);
      busy = false;
      if (!ok && !warned) {
        warned = true;
        log.warn({ args, why }, 'systemd notification failed; systemd may consider the gateway unresponsive');
      }
      onDone?.(ok);
    };
    child.once('error', (err) => done(false, err.message));
    child.once('exit', (code) => done(code === 0, code === 0 ? undefined : stderr.trim() || `exit ${code}`));
  };

  let expected = 0;
  const tick = () => {
    const now = Date.now();
    const late = now - expected;
    expected = now + intervalMs;
    let why: string | undefined;
    if (late > stallMs) why = `the event loop stalled for ${late} ms`;
    else if (options.healthy && !options.healthy()) why = 'the gateway reports itself unhealthy';
    else if (busy) why = 'the previous notification is still running';
    if (why) {
      skipped++;
      log.warn({ late }, `watchdog heartbeat skipped: ${why}`);
      return;
    }
    const args = ['WATCHDOG=1'];
    const text = options.statusText?.();
    if (text) args.push(`--status=${text}`);
    notify(args, (ok) => {
      if (ok) sent++;
    });
  };

  if (intervalMs > 0) {
    expected = Date.now() + intervalMs;
    timer = setInterval(tick, intervalMs);
    // The heartbeat must not keep a stopping process alive.
    timer.unref();
  }

  return {
    enabled: Boolean(socket),
    intervalMs,
    get sent() {
      return sent;
    },
    get skipped() {
      return skipped;
    },
    ready() {
      notify(['--ready', `--status=running (pid ${process.pid})`]);
    },
    stopping() {
      if (timer) clearInterval(timer);
      timer = undefined;
      notify(['STOPPING=1', '--status=stopping']);
    },
    stop() {
      if (timer) clearInterval(timer);
      timer = undefined;
    },
  };
}

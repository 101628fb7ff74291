/**
 * The fleet commands that act on the running gateway directly (everything but `config.set`, whose
 * apply-and-roll-back lives in apply.ts): ping, status, config.get, driver.restart, device.write,
 * uplink.flush, log.level.
 */
import { redactConfig } from '../config/redact.js';
import type { CommandBody, VerifiedCommand } from './command.js';
import type { FleetGateway } from './gateway-port.js';
import { configHash, configVersion } from './lkg.js';

export class GatewayCommands {
  private logLevelTimer?: NodeJS.Timeout;
  private levelBefore?: string;

  constructor(private readonly gateway: FleetGateway) {}

  /** Ends a temporary log level's timer (the level stays as it is). */
  stop(): void {
    clearTimeout(this.logLevelTimer);
  }

  async run(cmd: Pick<VerifiedCommand, 'id' | 'type' | 'body'>): Promise<unknown> {
    const g = this.gateway;
    switch (cmd.type) {
      case 'ping':
        return { pong: true, ts: Date.now(), configVersion: configVersion(g.config) };
      case 'status':
        return g.status();
      case 'config.get':
        return { version: configVersion(g.config), hash: configHash(g.config), config: redactConfig(g.config) };
      case 'driver.restart': {
        const { name } = cmd.body as CommandBody<'driver.restart'>;
        await g.restartDriver(name);
        return { restarted: name };
      }
      case 'device.write': {
        const body = cmd.body as CommandBody<'device.write'>;
        if (!g.writePoint) throw new Error('this gateway cannot write to devices');
        const r = await g.writePoint({ ...body, requester: `fleet:${cmd.id}` });
        if (!r.ok) throw new Error(`write ${r.outcome}: ${r.error}`);
        return { outcome: r.outcome, ...(r.readBack !== undefined ? { readBack: r.readBack } : {}) };
      }
      case 'uplink.flush': {
        const { name } = cmd.body as CommandBody<'uplink.flush'>;
        const names = g.status().uplinks.map((u) => u.name);
        if (name && !names.includes(name))
          throw new Error(`no running uplink named "${name}" (running: ${names.join(', ') || 'none'})`);
        g.flushUplinks(name);
        return { flushed: name ? [name] : names };
      }
      case 'log.level': {
        const { level, for: forMs } = cmd.body as CommandBody<'log.level'>;
        clearTimeout(this.logLevelTimer);
        // Back to the level from before the first of a run of log.level commands, not the one just set.
        this.levelBefore ??= g.logger.level;
        g.logger.level = level;
        if (!forMs) this.levelBefore = undefined;
        if (forMs) {
          this.logLevelTimer = setTimeout(() => {
            g.logger.level = this.levelBefore ?? g.config.gateway.logLevel;
            this.levelBefore = undefined;
          }, forMs);
          this.logLevelTimer.unref();
        }
        return { level, until: forMs ? Date.now() + forMs : null };
      }
      case 'config.set':
        throw new Error('config.set is run by the fleet agent');
    }
  }
}

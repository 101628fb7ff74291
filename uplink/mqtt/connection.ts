/**
 * The connection settings an `mqtt` uplink names (broker URL, credentials, TLS files, keepalive,
 * connect timeout) as mqtt.js options. The sink connects with them, and so does the fleet agent,
 * which opens a connection of its own to the same broker.
 */
import type { IClientOptions } from 'mqtt';
import { type LoadedTls, loadTls } from '../tls.js';
import type { MqttUplinkConfig } from './schema.js';

export type { MqttUplinkConfig } from './schema.js';

/**
 * The options every connection to this uplink's broker shares; throws when a TLS file is unreadable
 * (`tls`: the uplink's TLS files when the caller has loaded them already).
 */
export function mqttConnectOptions(c: MqttUplinkConfig, tls: LoadedTls | undefined = loadTls(c.tls, c.name)): IClientOptions {
  return {
    username: c.username,
    password: c.password,
    protocolVersion: c.protocolVersion,
    keepalive: Math.max(1, Math.round(c.keepalive / 1000)),
    connectTimeout: c.connectTimeout,
    ...(tls ?? {}),
  };
}

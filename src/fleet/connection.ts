/**
 * The fleet's own MQTT connection, made to the broker of the mqtt uplink named by `fleet.uplink`
 * (same url, TLS and credentials). It is a separate client so commands keep flowing whatever the
 * uplink's batching and reconnect logic do, with a persistent session (`clean: false`, clientId
 * `<gateway id>-fleet`): QoS 1 commands published while the gateway is offline are queued by the
 * broker and delivered when it reconnects. The last will marks the retained state `offline`.
 */
import type { IClientOptions } from 'mqtt';
import { type MqttUplinkConfig, mqttConnectOptions } from '../../uplink/mqtt/connection.js';
import type { Config } from '../config/schema.js';
import { canonicalJson } from './canonical.js';

export interface FleetTopics {
  cmd: string;
  result: string;
  state: string;
  status: string;
}

export function fleetTopics(prefix: string, gatewayId: string): FleetTopics {
  const base = `${prefix}/${gatewayId}`;
  return { cmd: `${base}/cmd`, result: `${base}/cmd/result`, state: `${base}/state`, status: `${base}/status` };
}

export interface FleetConnection {
  url: string;
  options: IClientOptions;
  topics: FleetTopics;
  /** Identity of the connection settings: a change means reconnecting. */
  key: string;
}

/** The connection a config asks for, or undefined without a fleet section. Throws when a TLS file is unreadable. */
export function fleetConnection(config: Config, willPayload: string): FleetConnection | undefined {
  const fleet = config.fleet;
  if (!fleet) return undefined;
  const uplink = config.uplinks.find((u) => u.name === fleet.uplink && u.type === 'mqtt') as
    | MqttUplinkConfig
    | undefined;
  if (!uplink) throw new Error(`fleet.uplink names no mqtt uplink "${fleet.uplink}"`);
  const topics = fleetTopics(fleet.topicPrefix, config.gateway.id);
  const settings = {
    url: uplink.url,
    username: uplink.username,
    password: uplink.password,
    tls: uplink.tls,
    keepalive: uplink.keepalive,
    connectTimeout: uplink.connectTimeout,
    prefix: fleet.topicPrefix,
  };
  const options: IClientOptions = {
    ...mqttConnectOptions(uplink),
    clientId: `${config.gateway.id}-fleet`,
    clean: false,
    protocolVersion: 4,
    // Jittered per gateway, so a fleet coming back from a broker outage does not reconnect in step.
    reconnectPeriod: 2000 + Math.floor(Math.random() * 3000),
    // Results and state published while offline wait for the reconnect instead of being dropped.
    queueQoSZero: false,
    resubscribe: true,
    will: { topic: topics.state, payload: Buffer.from(willPayload), qos: 1, retain: true },
  };
  return { url: uplink.url, options, topics, key: canonicalJson(settings) };
}

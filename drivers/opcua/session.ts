/**
 * What the OPC UA driver does on an open session: resolve browse paths to NodeIds, create the
 * subscription and its monitored items (one CreateMonitoredItems request per group of nodes with
 * the same parameters), poll with Read requests, and write a node.
 */
import {
  AttributeIds,
  type ClientMonitoredItemBase,
  type ClientSession,
  type ClientSubscription,
  type DataValue,
  DataChangeFilter,
  DataChangeTrigger,
  DataType,
  DeadbandType,
  makeBrowsePath,
  type NodeId,
  resolveNodeId,
  StatusCodes,
  TimestampsToReturn,
  Variant,
  VariantArrayType,
} from 'node-opcua-client';
import type { WriteOutcome } from '../driver.js';
import type { WriteValue } from '../write/schema.js';
import type { OpcuaConfig, OpcuaNodeConfig } from './schema.js';
import { toJson, toVariantValue } from './values.js';

export type UaSession = ClientSession;

export interface NodeHandle {
  cfg: OpcuaNodeConfig;
  name: string;
  topic: string;
  nodeId?: NodeId;
  /** The type of the node's value as last seen (a write sends the same type). */
  variant?: { dataType: DataType; arrayType: VariantArrayType };
  last?: { payload: Record<string, unknown>; stale: boolean };
}

/** Resolves every node's NodeId; returns the nodes that could not be resolved, and why. */
export async function resolveNodes(session: UaSession, nodes: NodeHandle[]): Promise<[NodeHandle, string][]> {
  const bad: [NodeHandle, string][] = [];
  const byPath: NodeHandle[] = [];
  for (const n of nodes) {
    if (n.cfg.nodeId !== undefined) {
      try {
        n.nodeId = resolveNodeId(n.cfg.nodeId);
      } catch (err) {
        bad.push([n, `"${n.cfg.nodeId}" is not a NodeId (${(err as Error).message})`]);
      }
    } else byPath.push(n);
  }
  for (let i = 0; i < byPath.length; i += 500) {
    const chunk = byPath.slice(i, i + 500);
    const results = await session.translateBrowsePath(chunk.map((n) => makeBrowsePath('RootFolder', n.cfg.browsePath!)));
    results.forEach((r, j) => {
      const target = r.statusCode.isGood() ? r.targets?.[0]?.targetId : undefined;
      if (target) chunk[j].nodeId = resolveNodeId(target.toString());
      else bad.push([chunk[j], `browse path ${chunk[j].cfg.browsePath} does not resolve (${r.statusCode.name})`]);
    });
  }
  return bad;
}

export interface SubscriptionHandlers {
  changed(n: NodeHandle, dv: DataValue): void;
  /** A notification or a keep-alive arrived. */
  heard(): void;
  /** Nothing arrived for three keep-alive periods. */
  silent(): void;
}

const KEEPALIVE_COUNT = 10;

export class UaSubscription {
  private watchdog?: NodeJS.Timeout;
  private lastHeard = Date.now();

  private constructor(private readonly sub: ClientSubscription) {}

  static async create(
    session: UaSession,
    c: OpcuaConfig,
    nodes: NodeHandle[],
    h: SubscriptionHandlers,
  ): Promise<UaSubscription> {
    const sub = await session.createSubscription2({
      requestedPublishingInterval: c.publishingInterval,
      requestedMaxKeepAliveCount: KEEPALIVE_COUNT,
      requestedLifetimeCount: KEEPALIVE_COUNT * 6,
      maxNotificationsPerPublish: 0,
      publishingEnabled: true,
      priority: 1,
    });
    const self = new UaSubscription(sub);
    const heard = () => {
      self.lastHeard = Date.now();
      h.heard();
    };
    sub.on('keepalive', heard);
    sub.on('received_notifications', heard);
    // Nodes with the same sampling interval, queue size and deadband share one request.
    const groups = new Map<string, NodeHandle[]>();
    for (const n of nodes) {
      const key = JSON.stringify(params(n.cfg, c));
      const g = groups.get(key) ?? [];
      g.push(n);
      groups.set(key, g);
    }
    for (const [key, members] of groups) {
      const p = JSON.parse(key) as ReturnType<typeof params>;
      const filter =
        p.deadband !== undefined
          ? new DataChangeFilter({
              trigger: DataChangeTrigger.StatusValue,
              deadbandType: p.deadbandType === 'percent' ? DeadbandType.Percent : DeadbandType.Absolute,
              deadbandValue: p.deadband,
            })
          : undefined;
      const group = await sub.monitorItems(
        members.map((n) => ({ nodeId: n.nodeId!, attributeId: AttributeIds.Value })),
        { samplingInterval: p.samplingInterval, queueSize: p.queueSize, discardOldest: true, ...(filter ? { filter } : {}) },
        TimestampsToReturn.Both,
      );
      group.on('changed', (_item: ClientMonitoredItemBase, dv: DataValue, index: number) => {
        const n = members[index];
        if (n) h.changed(n, dv);
      });
    }
    const period = Math.max(c.publishingInterval * KEEPALIVE_COUNT, 1000);
    self.watchdog = setInterval(() => {
      if (Date.now() - self.lastHeard > 3 * period) {
        self.lastHeard = Date.now();
        h.silent();
      }
    }, period);
    self.watchdog.unref();
    return self;
  }

  close(): void {
    clearInterval(this.watchdog);
    this.sub.removeAllListeners();
  }
}

function params(n: OpcuaNodeConfig, c: OpcuaConfig) {
  return {
    samplingInterval: n.samplingInterval ?? c.samplingInterval,
    queueSize: n.queueSize ?? c.queueSize,
    deadband: n.deadband,
    deadbandType: n.deadbandType,
  };
}

/** One Read of every node (in requests of at most 500 nodes). */
export async function pollOnce(session: UaSession, nodes: NodeHandle[], _timeout: number): Promise<[NodeHandle, DataValue][]> {
  const out: [NodeHandle, DataValue][] = [];
  for (let i = 0; i < nodes.length; i += 500) {
    const chunk = nodes.slice(i, i + 500);
    const dvs = await session.read(chunk.map((n) => ({ nodeId: n.nodeId!, attributeId: AttributeIds.Value })));
    dvs.forEach((dv, j) => out.push([chunk[j], dv]));
  }
  return out;
}

/** Writes a node's value with the type the node holds; with `verify`, reads it back and compares. */
export async function writeNode(session: UaSession, n: NodeHandle, value: WriteValue, verify: boolean): Promise<WriteOutcome> {
  if (!n.nodeId) throw new Error(`node "${n.name}" did not resolve on the server`);
  if (!n.variant) {
    const current = await session.read({ nodeId: n.nodeId, attributeId: AttributeIds.Value });
    if (!current.value || current.value.dataType === DataType.Null)
      throw new Error(`node "${n.name}" has no value whose type a write could follow`);
    n.variant = { dataType: current.value.dataType, arrayType: current.value.arrayType };
  }
  const { dataType, arrayType } = n.variant;
  let v: unknown;
  try {
    v = toVariantValue(dataType, arrayType, value);
  } catch (err) {
    throw new Error(`node "${n.name}" holds ${DataType[dataType]}: the value ${(err as Error).message}`);
  }
  const status = await session.write({
    nodeId: n.nodeId,
    attributeId: AttributeIds.Value,
    value: { value: new Variant({ dataType, arrayType, value: v }) },
  });
  if (!status.isGood()) throw new Error(`the server refused the write: ${status.name}`);
  if (!verify) return {};
  const back = await session.read({ nodeId: n.nodeId, attributeId: AttributeIds.Value });
  if (back.statusCode !== StatusCodes.Good && !back.statusCode.isGood())
    throw new Error(`read-back failed: ${back.statusCode.name}`);
  return { readBack: back.value ? toJson(back.value) : null };
}

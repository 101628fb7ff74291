/**
 * Walks an OPC UA server's address space (hierarchical references, forward) from a node, to a
 * depth, for `sluice opcua browse`: each node's NodeId, browse name (with its namespace index, as a
 * browse path needs it), class, and for variables the current value and type. Bounded: at most
 * `maxNodes` nodes are visited.
 */
import {
  AttributeIds,
  BrowseDirection,
  type ClientSession,
  DataType,
  NodeClass,
  type ReferenceDescription,
  resolveNodeId,
} from 'node-opcua-client';
import { toJson } from './values.js';

export interface BrowsedNode {
  nodeId: string;
  browseName: string;
  nodeClass: string;
  depth: number;
  /** `/Objects/1:Plant/1:Temperature`: what `browsePath:` in the config takes. */
  path: string;
  dataType?: string;
  value?: unknown;
  children?: number;
}

export async function browseTree(
  session: ClientSession,
  opts: { node: string; depth: number; maxNodes: number; rootPath?: string },
): Promise<{ nodes: BrowsedNode[]; truncated: boolean }> {
  const out: BrowsedNode[] = [];
  let truncated = false;
  const walk = async (nodeId: string, path: string, depth: number): Promise<void> => {
    if (depth > opts.depth) return;
    const res = await session.browse({
      nodeId: resolveNodeId(nodeId),
      referenceTypeId: 'HierarchicalReferences',
      includeSubtypes: true,
      browseDirection: BrowseDirection.Forward,
      resultMask: 63,
    });
    const refs = (res.references ?? []) as ReferenceDescription[];
    const variables = refs.filter((r) => r.nodeClass === NodeClass.Variable);
    const values = variables.length
      ? await session.read(variables.map((r) => ({ nodeId: r.nodeId, attributeId: AttributeIds.Value })))
      : [];
    for (const r of refs) {
      if (out.length >= opts.maxNodes) {
        truncated = true;
        return;
      }
      const name = `${r.browseName.namespaceIndex}:${r.browseName.name}`;
      const childPath = `${path}/${name}`;
      const node: BrowsedNode = {
        nodeId: r.nodeId.toString(),
        browseName: name,
        nodeClass: NodeClass[r.nodeClass],
        depth,
        path: childPath,
      };
      const vi = variables.indexOf(r);
      if (vi >= 0 && values[vi]?.value) {
        node.dataType = DataType[values[vi].value.dataType];
        node.value = toJson(values[vi].value);
      }
      out.push(node);
      if (r.nodeClass === NodeClass.Object || r.nodeClass === NodeClass.Variable) await walk(node.nodeId, childPath, depth + 1);
    }
  };
  await walk(opts.node, opts.rootPath ?? (opts.node === 'RootFolder' || opts.node === 'i=84' ? '' : `<${opts.node}>`), 1);
  return { nodes: out, truncated };
}

// What `seawall node list`, `seawall identity list` and `seawall ipcache list` show: the store
// read once, as Cilium's `cilium node list`, `cilium identity list` and the ipcache map dump would.

import type { KvstoreClient } from './client.ts';
import {
  decodeIPPair,
  decodeNode,
  ID_PREFIX,
  ipPrefix,
  type NodeInfo,
  nodesPrefix,
  parseIdKey,
  parseLabelsKey,
  parseValueKey,
  VALUE_PREFIX,
} from './layout.ts';

export interface IdentityRow {
  id: number;
  labels: string[];
  /** Nodes holding a reference (value/<labels>/<node>). */
  referencedBy: string[];
}

export interface IPCacheRow {
  ip: string;
  id: number;
  hostIP: string;
}

export interface StoreView {
  nodes: NodeInfo[];
  identities: IdentityRow[];
  ipcache: IPCacheRow[];
  /** Values that did not decode, with where and why. */
  problems: string[];
}

export async function readStore(c: KvstoreClient, cluster = 'default'): Promise<StoreView> {
  const problems: string[] = [];
  const nodes: NodeInfo[] = [];
  for (const [k, v] of (await c.list(nodesPrefix(cluster))).entries) {
    try {
      nodes.push(decodeNode(k, v));
    } catch (e) {
      problems.push((e as Error).message);
    }
  }
  const refs = new Map<string, string[]>();
  for (const k of (await c.list(VALUE_PREFIX)).entries.keys()) {
    const v = parseValueKey(k);
    if (v === undefined) continue;
    const list = refs.get(v.labels) ?? [];
    list.push(v.node);
    refs.set(v.labels, list);
  }
  const identities: IdentityRow[] = [];
  for (const [k, v] of (await c.list(ID_PREFIX)).entries) {
    const id = parseIdKey(k);
    if (id === undefined) {
      problems.push(`${k}: not an identity key`);
      continue;
    }
    identities.push({ id, labels: parseLabelsKey(v).toStrings(), referencedBy: (refs.get(v) ?? []).sort() });
  }
  const ipcache: IPCacheRow[] = [];
  for (const [k, v] of (await c.list(ipPrefix(cluster))).entries) {
    try {
      const p = decodeIPPair(k, v);
      ipcache.push({ ip: p.IP, id: p.ID, hostIP: p.HostIP });
    } catch (e) {
      problems.push((e as Error).message);
    }
  }
  nodes.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  identities.sort((a, b) => a.id - b.id);
  ipcache.sort((a, b) => ipNum(a.ip) - ipNum(b.ip));
  return { nodes, identities, ipcache, problems };
}

function ipNum(ip: string): number {
  const p = ip.split('.').map(Number);
  return p.length === 4 ? ((p[0]! << 24) | (p[1]! << 16) | (p[2]! << 8) | p[3]!) >>> 0 : 0;
}

// Cilium's kvstore layout (Documentation/kvstore.rst, pkg/allocator, pkg/identity/cache,
// pkg/ipcache/kvstore.go, pkg/node/store), so that `etcdctl get --prefix cilium/state` reads as it
// would on a Cilium cluster:
//
//   cilium/state/identities/v1/id/<id>               → labels key (`k8s:a=b;k8s:c=d;`), no lease:
//                                                      kept while any node references it, then GC'd
//   cilium/state/identities/v1/value/<labels>/<node> → <id>, on the node agent's lease (a reference)
//   cilium/state/ip/v1/<cluster>/<ip>                → IPIdentityPair JSON, on the agent's lease
//   cilium/state/nodes/v1/<cluster>/<node>           → Node JSON, on the agent's lease
//
// Pure: key builders and value codecs, each decoder saying what is wrong with a value it rejects.

import { SeawallError } from '../core/errors.ts';
import { LabelSet, parseLabel } from '../labels/label.ts';

export const STATE_PREFIX = 'cilium/state/';
export const IDENTITIES = 'cilium/state/identities/v1/';
export const ID_PREFIX = `${IDENTITIES}id/`;
export const VALUE_PREFIX = `${IDENTITIES}value/`;
export const IP_PREFIX = 'cilium/state/ip/v1/';
export const NODES_PREFIX = 'cilium/state/nodes/v1/';
/**
 * Seawall's own (not Cilium's): a node about to connect a pod at an address another node used
 * asks every node to confirm it applied the store up to that point (fence/<ip>/<node> → by
 * ack/<ip>/<requester>/<acker>), so none still judges the address by the old pod's identity.
 *
 * Cilium has no equivalent (checked in its source): pkg/ipcache/kvstore.go writes an
 * IPIdentityPair with UpdateIfDifferent and its watcher upserts whatever arrives, with no
 * acknowledgement; pkg/kvstore's other shared keys are the operator's heartbeat (store liveness),
 * the locks of pkg/kvstore/lock.go (mutual exclusion, not "everyone has applied"), and
 * kvstoremesh's sync canaries (the initial list was read once, not a later change). A Cilium agent
 * reusing an address therefore has a window in which other nodes still hold the old identity;
 * Seawall closes it (the "no window" for a moving pod), so it needs keys of its own. They
 * live under cilium/state/ so a Cilium operator's prefix reads see them, in a `seawall` folder so
 * no Cilium key is ever shadowed, and on the writer's lease so a dead agent's fences expire.
 */
export const FENCE_PREFIX = 'cilium/state/seawall/v1/fence/';
export const ACK_PREFIX = 'cilium/state/seawall/v1/ack/';

/** Cluster identities (Cilium's default range without cluster-mesh: 256..65535). */
export const MIN_ID = 256;
export const MAX_ID = 65535;

export class KvstoreError extends SeawallError {
  override name = 'KvstoreError';
}

/** Cilium's labels key: sorted `source:key=value`, each followed by `;`. */
export function labelsKey(ls: LabelSet): string {
  return ls.labels.length === 0 ? '' : `${ls.key};`;
}

export function parseLabelsKey(key: string): LabelSet {
  const parts = key.split(';').filter((p) => p !== '');
  return new LabelSet(parts.map((p) => parseLabel(p, 'unspec')));
}

export const idKey = (id: number): string => `${ID_PREFIX}${id}`;
/** The reference a node holds on a label set's identity. */
export const valueKey = (labels: string, node: string): string => `${VALUE_PREFIX}${labels}/${node}`;
export const valuePrefixOf = (labels: string): string => `${VALUE_PREFIX}${labels}/`;
export const ipPrefix = (cluster: string): string => `${IP_PREFIX}${cluster}/`;
export const ipKey = (cluster: string, ip: string): string => `${IP_PREFIX}${cluster}/${ip}`;
export const nodesPrefix = (cluster: string): string => `${NODES_PREFIX}${cluster}/`;
export const nodeKey = (cluster: string, node: string): string => `${NODES_PREFIX}${cluster}/${node}`;

export const fenceKey = (ip: string, node: string): string => `${FENCE_PREFIX}${ip}/${node}`;
export const ackKey = (ip: string, requester: string, node: string): string =>
  `${ACK_PREFIX}${ip}/${requester}/${node}`;

/** The numeric id of an `id/<id>` key, or undefined when the key is not one. */
export function parseIdKey(key: string): number | undefined {
  if (!key.startsWith(ID_PREFIX)) return undefined;
  const s = key.slice(ID_PREFIX.length);
  if (!/^[1-9][0-9]{0,9}$/.test(s)) return undefined;
  return Number(s);
}

/** `value/<labels>/<node>` → its parts (labels may hold `/`; the node is the last segment). */
export function parseValueKey(key: string): { labels: string; node: string } | undefined {
  if (!key.startsWith(VALUE_PREFIX)) return undefined;
  const rest = key.slice(VALUE_PREFIX.length);
  const i = rest.lastIndexOf('/');
  if (i <= 0 || i === rest.length - 1) return undefined;
  return { labels: rest.slice(0, i), node: rest.slice(i + 1) };
}

/** Cilium's identity.IPIdentityPair as JSON (the fields Seawall reads and writes). */
export interface IPIdentityPair {
  IP: string;
  Mask: string | null;
  /** The node the endpoint runs on (its address). */
  HostIP: string;
  ID: number;
  Key: number;
  Metadata: string;
  K8sNamespace?: string;
  K8sPodName?: string;
}

export function encodeIPPair(p: IPIdentityPair): string {
  return JSON.stringify(p);
}

export function decodeIPPair(key: string, raw: string): IPIdentityPair {
  let v: unknown;
  try {
    v = JSON.parse(raw);
  } catch (e) {
    throw new KvstoreError('kvstore-bad-value', `${key}: not JSON (${(e as Error).message})`);
  }
  const p = v as Partial<IPIdentityPair> | null;
  if (typeof p !== 'object' || p === null)
    throw new KvstoreError('kvstore-bad-value', `${key}: not an object`);
  if (typeof p.IP !== 'string') throw new KvstoreError('kvstore-bad-value', `${key}: IP missing`);
  if (typeof p.ID !== 'number' || !Number.isInteger(p.ID) || p.ID < 0)
    throw new KvstoreError(
      'kvstore-bad-value',
      `${key}: ID ${JSON.stringify(p.ID)} is not a numeric identity`,
    );
  return {
    IP: p.IP,
    Mask: typeof p.Mask === 'string' ? p.Mask : null,
    HostIP: typeof p.HostIP === 'string' ? p.HostIP : '',
    ID: p.ID,
    Key: typeof p.Key === 'number' ? p.Key : 0,
    Metadata: typeof p.Metadata === 'string' ? p.Metadata : '',
    ...(typeof p.K8sNamespace === 'string' ? { K8sNamespace: p.K8sNamespace } : {}),
    ...(typeof p.K8sPodName === 'string' ? { K8sPodName: p.K8sPodName } : {}),
  };
}

/** Cilium's node.Node as JSON (the fields Seawall uses). */
export interface NodeRecord {
  Name: string;
  Cluster: string;
  IPAddresses: Array<{ Type: string; IP: string }>;
  /** The node's pod CIDRs (Cilium: IPv4AllocCIDR plus IPv4SecondaryAllocCIDRs). */
  IPv4AllocCIDR: { IP: string; Mask: string } | null;
  IPv4SecondaryAllocCIDRs?: Array<{ IP: string; Mask: string }>;
  Labels: Record<string, string>;
}

/** Go's net.IPMask of a prefix length, base64 as encoding/json writes []byte. */
export function maskOf(len: number): string {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(len === 0 ? 0 : (0xffffffff << (32 - len)) >>> 0);
  return b.toString('base64');
}

export function maskLen(mask: string): number | undefined {
  const b = Buffer.from(mask, 'base64');
  if (b.length !== 4) return undefined;
  const n = b.readUInt32BE();
  let len = 0;
  while (len < 32 && (n & (0x80000000 >>> len)) !== 0) len++;
  return Buffer.from(maskOf(len), 'base64').readUInt32BE() === n ? len : undefined;
}

export interface NodeInfo {
  name: string;
  cluster: string;
  ip: string;
  podCIDRs: string[];
  labels: Record<string, string>;
}

export function encodeNode(n: NodeInfo): string {
  const cidr = (c: string): { IP: string; Mask: string } => {
    const [ip, len] = c.split('/');
    return { IP: ip!, Mask: maskOf(Number(len ?? 32)) };
  };
  const rec: NodeRecord = {
    Name: n.name,
    Cluster: n.cluster,
    IPAddresses: [{ Type: 'InternalIP', IP: n.ip }],
    IPv4AllocCIDR: n.podCIDRs.length === 0 ? null : cidr(n.podCIDRs[0]!),
    IPv4SecondaryAllocCIDRs: n.podCIDRs.slice(1).map(cidr),
    Labels: n.labels,
  };
  return JSON.stringify(rec);
}

export function decodeNode(key: string, raw: string): NodeInfo {
  let v: unknown;
  try {
    v = JSON.parse(raw);
  } catch (e) {
    throw new KvstoreError('kvstore-bad-value', `${key}: not JSON (${(e as Error).message})`);
  }
  const r = v as Partial<NodeRecord> | null;
  if (typeof r !== 'object' || r === null || typeof r.Name !== 'string')
    throw new KvstoreError('kvstore-bad-value', `${key}: not a node (Name missing)`);
  const ip = Array.isArray(r.IPAddresses)
    ? (r.IPAddresses.find((a) => a?.Type === 'InternalIP')?.IP ?? r.IPAddresses[0]?.IP)
    : undefined;
  if (typeof ip !== 'string')
    throw new KvstoreError('kvstore-bad-value', `${key}: node ${r.Name} has no address`);
  const cidrs: string[] = [];
  for (const c of [r.IPv4AllocCIDR, ...(r.IPv4SecondaryAllocCIDRs ?? [])]) {
    if (c === null || c === undefined || typeof c.IP !== 'string' || typeof c.Mask !== 'string') continue;
    const len = maskLen(c.Mask);
    if (len === undefined)
      throw new KvstoreError('kvstore-bad-value', `${key}: pod CIDR mask ${c.Mask} is not a prefix`);
    cidrs.push(`${c.IP}/${len}`);
  }
  const labels: Record<string, string> = {};
  if (typeof r.Labels === 'object' && r.Labels !== null)
    for (const [k, val] of Object.entries(r.Labels)) if (typeof val === 'string') labels[k] = val;
  return {
    name: r.Name,
    cluster: typeof r.Cluster === 'string' ? r.Cluster : '',
    ip,
    podCIDRs: cidrs,
    labels,
  };
}

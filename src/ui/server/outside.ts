// The peers outside the pods that a policy names, for the policies-only source: with manifests
// there is no traffic, so the map would show pod → pod pairs only and never the world, host,
// remote-node or kube-apiserver a rule admits. Each rule entry selecting a pod gives flows to or
// from an address the entry names (an address inside its CIDR, clear of the `except`s), or the
// address the live replay gives that entity, on the entry's ports.

import { ENTITY_IPS } from '../../datapath/node.ts';
import { DEFAULT_NODE_IP } from '../../datapath/topology.ts';
import { formatIPv4, maskOf, parsePrefix, prefixContains } from '../../identity/cidr.ts';
import type { FlowProtocol, FlowRequest, PeerRef } from '../../policy/types.ts';
import type {
  EgressRule,
  Entity,
  IngressRule,
  NetworkPolicy,
  PolicyObject,
  PortRule,
  Rule,
} from '../../policy-api/types.ts';

type EntityPeer = 'world' | 'host' | 'remote-node' | 'kube-apiserver';

/** The live replay's test hosts for entities (the datapath's); host is the node itself. */
export const ENTITY_ADDRESSES: Record<EntityPeer, string> = {
  world: ENTITY_IPS.world!,
  host: DEFAULT_NODE_IP,
  'remote-node': ENTITY_IPS['remote-node']!,
  'kube-apiserver': ENTITY_IPS['kube-apiserver']!,
};

/**
 * The address an entity's flows show: the live replay's, or, when an endpoint of the test already
 * has it, one from 100.64.255.0/24 (as the live runner picks), so that no two peers share one.
 */
export function entityAddress(entity: EntityPeer, used: ReadonlySet<string>): string {
  const usual = ENTITY_ADDRESSES[entity];
  if (entity === 'host' || !used.has(usual)) return usual;
  for (let i = 10; i < 250; i++) if (!used.has(`100.64.255.${i}`)) return `100.64.255.${i}`;
  return usual;
}

/**
 * An address inside `cidr` and outside every `except`: the first host address (the network
 * address itself for a /31 or /32). Undefined when the CIDR is not IPv4 or the excepts cover the
 * first 256 candidates.
 */
export function addressIn(cidr: string, except: readonly string[] = []): string | undefined {
  const p = parsePrefix(cidr);
  if (p === undefined || !cidr.includes('.')) return undefined;
  const ex = except.map((e) => parsePrefix(e)).filter((e) => e !== undefined);
  const size = 2 ** (32 - p.len);
  const first = p.len >= 31 ? 0 : 1;
  for (let i = first; i < Math.min(size, first + 256); i++) {
    const a = (p.addr + i) >>> 0;
    if ((a & maskOf(p.len)) >>> 0 !== p.addr) break;
    if (!ex.some((e) => prefixContains(e, { addr: a, len: 32 }))) return formatIPv4(a);
  }
  return undefined;
}

const ENTITY_PEERS = new Set<Entity>(['world', 'host', 'remote-node', 'kube-apiserver']);

function entityPeers(list: readonly Entity[] | undefined): PeerRef[] {
  const out: PeerRef[] = [];
  for (const e of list ?? []) {
    // `all` names the world too (the other entities it covers are in the cluster).
    const entity = e === 'all' ? 'world' : e;
    if (ENTITY_PEERS.has(entity)) out.push({ kind: 'entity', entity: entity as EntityPeer });
  }
  return out;
}

function cidrPeer(cidr: string | undefined, except: readonly string[] | undefined): PeerRef[] {
  if (cidr === undefined) return [];
  const ip = addressIn(cidr, except);
  return ip === undefined ? [] : [{ kind: 'ip', ip }];
}

/** The outside peers of one CNP/CCNP section entry. */
function cnpOutside(entry: IngressRule | EgressRule, ingress: boolean): PeerRef[] {
  const e = entry as IngressRule & EgressRule;
  return [
    ...entityPeers(ingress ? e.fromEntities : e.toEntities),
    ...((ingress ? e.fromCIDR : e.toCIDR) ?? []).flatMap((c) => cidrPeer(c, [])),
    ...((ingress ? e.fromCIDRSet : e.toCIDRSet) ?? []).flatMap((c) => cidrPeer(c.cidr, c.except)),
  ];
}

export interface PortChoice {
  protocol: FlowProtocol;
  port?: number;
}

/** Numbered ports of the entry (named ports and ranges' ends skipped: no traffic picks them). */
function cnpPorts(rules: readonly PortRule[] | undefined): PortChoice[] {
  const out: PortChoice[] = [];
  for (const r of rules ?? [])
    for (const p of r.ports ?? []) {
      if (p.port === undefined || !/^\d+$/.test(p.port) || p.port === '0') continue;
      const proto = p.protocol === 'UDP' || p.protocol === 'SCTP' ? p.protocol : 'TCP';
      out.push({ protocol: proto, port: Number(p.port) });
    }
  return out;
}

export interface OutsideEntry {
  direction: 'INGRESS' | 'EGRESS';
  peers: PeerRef[];
  /** Empty: the entry names no numbered port (every port): the caller picks. */
  ports: PortChoice[];
}

const SECTIONS = [
  ['ingress', 'INGRESS'],
  ['ingressDeny', 'INGRESS'],
  ['egress', 'EGRESS'],
  ['egressDeny', 'EGRESS'],
] as const;

/** Every entry of the selected rules (`ruleIndices`) of a policy that names an outside peer. */
export function outsideEntries(policy: PolicyObject, ruleIndices: ReadonlySet<number>): OutsideEntry[] {
  const out: OutsideEntry[] = [];
  const push = (e: OutsideEntry) => {
    if (e.peers.length > 0) out.push(e);
  };
  if (policy.kind === 'NetworkPolicy') {
    if (!ruleIndices.has(0)) return out;
    const spec = (policy as NetworkPolicy).spec;
    const knpPorts = (ps: readonly { port?: number | string; protocol?: string }[] | undefined) =>
      (ps ?? [])
        .filter((p) => typeof p.port === 'number' || (typeof p.port === 'string' && /^\d+$/.test(p.port)))
        .map((p) => ({ protocol: (p.protocol ?? 'TCP') as FlowProtocol, port: Number(p.port) }));
    for (const r of spec.ingress ?? [])
      push({
        direction: 'INGRESS',
        peers: (r.from ?? []).flatMap((p) => cidrPeer(p.ipBlock?.cidr, p.ipBlock?.except)),
        ports: knpPorts(r.ports),
      });
    for (const r of spec.egress ?? [])
      push({
        direction: 'EGRESS',
        peers: (r.to ?? []).flatMap((p) => cidrPeer(p.ipBlock?.cidr, p.ipBlock?.except)),
        ports: knpPorts(r.ports),
      });
    return out;
  }
  const rules: Rule[] = [...(policy.spec ? [policy.spec] : []), ...(policy.specs ?? [])];
  rules.forEach((rule, ri) => {
    if (!ruleIndices.has(ri)) return;
    for (const [section, direction] of SECTIONS)
      for (const e of (rule[section] as (IngressRule | EgressRule)[] | undefined) ?? [])
        push({
          direction,
          peers: cnpOutside(e, direction === 'INGRESS'),
          ports: cnpPorts(e.toPorts as PortRule[] | undefined),
        });
  });
  return out;
}

/**
 * The requests for one pod's outside entries: from each peer to the pod (ingress) or from the pod
 * to each peer (egress), on the entry's ports, else the pod's declared ports (ingress), else an
 * ICMP echo. Deduplicated.
 */
export function outsideRequests(
  pod: { namespace: string; name: string; ports?: readonly { port: number; protocol?: string }[] },
  entries: readonly OutsideEntry[],
): FlowRequest[] {
  const seen = new Set<string>();
  const out: FlowRequest[] = [];
  const me: PeerRef = { kind: 'endpoint', namespace: pod.namespace, name: pod.name };
  for (const e of entries) {
    let ports: PortChoice[] = e.ports;
    if (ports.length === 0 && e.direction === 'INGRESS')
      ports = (pod.ports ?? []).map((p) => ({
        protocol: (p.protocol ?? 'TCP') as FlowProtocol,
        port: p.port,
      }));
    if (ports.length === 0) ports = [{ protocol: 'ICMP' }];
    for (const p of e.peers)
      for (const port of ports) {
        const req: FlowRequest = {
          src: e.direction === 'INGRESS' ? p : me,
          dst: e.direction === 'INGRESS' ? me : p,
          protocol: port.protocol,
          ...(port.port !== undefined ? { dport: port.port } : { icmp: { type: 8, family: 'IPv4' } }),
        };
        const key = JSON.stringify(req);
        if (seen.has(key)) continue;
        seen.add(key);
        out.push(req);
      }
  }
  return out;
}

// Flow filters with the meaning of `hubble observe`'s flags: every given criterion must hold
// (AND), several values of one criterion are alternatives (OR). `pod`, `namespace`, `ip` and
// `port` match either side. Pod references are `[namespace/]name-prefix` (namespace default
// "default"), as Hubble reads them. Pure.

import { SeawallError } from '../core/errors.ts';
import type { Flow, FlowEndpoint, FlowVerdict } from '../flow/types.ts';

export interface PodRef {
  namespace: string;
  /** Pod name prefix ('' = any pod of the namespace). */
  prefix: string;
}

export interface FlowFilter {
  verdict?: FlowVerdict[];
  fromPod?: PodRef[];
  toPod?: PodRef[];
  pod?: PodRef[];
  namespace?: string[];
  fromNamespace?: string[];
  toNamespace?: string[];
  ip?: string[];
  fromIP?: string[];
  toIP?: string[];
  /** tcp, udp, sctp, icmp (v4 or v6), icmpv4, icmpv6; case-insensitive. */
  protocol?: string[];
  port?: number[];
  fromPort?: number[];
  toPort?: number[];
  trafficDirection?: Array<'INGRESS' | 'EGRESS'>;
  /** hubble --type: policy-verdict, drop, trace, l7. */
  type?: string[];
}

export const VERDICTS: readonly FlowVerdict[] = [
  'FORWARDED',
  'DROPPED',
  'ERROR',
  'AUDIT',
  'REDIRECTED',
  'TRACED',
  'TRANSLATED',
];

const EVENT_TYPES: Record<string, number> = { drop: 1, trace: 4, 'policy-verdict': 5, l7: 129 };

export class FilterError extends SeawallError<
  'bad-verdict' | 'bad-pod' | 'bad-port' | 'bad-direction' | 'bad-type'
> {
  override name = 'FilterError';
}

export function parsePodRef(s: string): PodRef {
  const slash = s.indexOf('/');
  if (slash < 0) {
    if (s === '') throw new FilterError('bad-pod', 'empty pod name');
    return { namespace: 'default', prefix: s };
  }
  const namespace = s.slice(0, slash);
  const prefix = s.slice(slash + 1);
  if (namespace === '' || prefix.includes('/')) {
    throw new FilterError('bad-pod', `pod must be [namespace/]name: ${s}`);
  }
  return { namespace, prefix };
}

export interface FilterFlags {
  verdict?: string[];
  fromPod?: string[];
  toPod?: string[];
  pod?: string[];
  namespace?: string[];
  fromNamespace?: string[];
  toNamespace?: string[];
  ip?: string[];
  fromIp?: string[];
  toIp?: string[];
  protocol?: string[];
  port?: string[];
  fromPort?: string[];
  toPort?: string[];
  trafficDirection?: string[];
  type?: string[];
}

function ports(vals: string[] | undefined): number[] | undefined {
  if (vals === undefined) return undefined;
  return vals.map((v) => {
    const n = Number(v);
    if (!/^\d+$/.test(v) || n > 65535) throw new FilterError('bad-port', `bad port: ${v}`);
    return n;
  });
}

/** Command-line flag values → a filter; throws FilterError on a value Hubble would refuse. */
export function filterFromFlags(f: FilterFlags): FlowFilter {
  const out: FlowFilter = {};
  if (f.verdict) {
    out.verdict = f.verdict.map((v) => {
      const u = v.toUpperCase() as FlowVerdict;
      if (!VERDICTS.includes(u)) {
        throw new FilterError('bad-verdict', `bad verdict ${v} (one of ${VERDICTS.join(', ')})`);
      }
      return u;
    });
  }
  if (f.fromPod) out.fromPod = f.fromPod.map(parsePodRef);
  if (f.toPod) out.toPod = f.toPod.map(parsePodRef);
  if (f.pod) out.pod = f.pod.map(parsePodRef);
  if (f.namespace) out.namespace = f.namespace;
  if (f.fromNamespace) out.fromNamespace = f.fromNamespace;
  if (f.toNamespace) out.toNamespace = f.toNamespace;
  if (f.ip) out.ip = f.ip;
  if (f.fromIp) out.fromIP = f.fromIp;
  if (f.toIp) out.toIP = f.toIp;
  if (f.protocol) out.protocol = f.protocol.map((p) => p.toLowerCase());
  const p = ports(f.port);
  if (p) out.port = p;
  const fp = ports(f.fromPort);
  if (fp) out.fromPort = fp;
  const tp = ports(f.toPort);
  if (tp) out.toPort = tp;
  if (f.trafficDirection) {
    out.trafficDirection = f.trafficDirection.map((d) => {
      const u = d.toUpperCase();
      if (u !== 'INGRESS' && u !== 'EGRESS') {
        throw new FilterError('bad-direction', `bad traffic direction ${d} (ingress or egress)`);
      }
      return u;
    });
  }
  if (f.type) {
    for (const t of f.type) {
      if (EVENT_TYPES[t] === undefined) {
        throw new FilterError('bad-type', `bad type ${t} (one of ${Object.keys(EVENT_TYPES).join(', ')})`);
      }
    }
    out.type = f.type;
  }
  return out;
}

function podMatches(ep: FlowEndpoint | undefined, refs: PodRef[]): boolean {
  if (ep?.pod_name === undefined) return false;
  return refs.some((r) => ep.namespace === r.namespace && ep.pod_name!.startsWith(r.prefix));
}

function nsMatches(ep: FlowEndpoint | undefined, nss: string[]): boolean {
  return ep?.namespace !== undefined && nss.includes(ep.namespace);
}

function portsOf(f: Flow): { src?: number; dst?: number } {
  const l4 = f.l4;
  if (l4 === undefined) return {};
  const pp = 'TCP' in l4 ? l4.TCP : 'UDP' in l4 ? l4.UDP : 'SCTP' in l4 ? l4.SCTP : undefined;
  if (pp === undefined) return {};
  const out: { src?: number; dst?: number } = {};
  if (pp.source_port !== undefined) out.src = pp.source_port;
  if (pp.destination_port !== undefined) out.dst = pp.destination_port;
  return out;
}

function protocolMatches(f: Flow, wanted: string[]): boolean {
  const l4 = f.l4;
  if (l4 === undefined) return false;
  const name = (Object.keys(l4)[0] ?? '').toLowerCase();
  return wanted.some((w) => w === name || (w === 'icmp' && name.startsWith('icmp')));
}

/** Whether one flow passes the filter (an empty filter passes everything). */
export function matchFlow(filter: FlowFilter, f: Flow): boolean {
  const s = f.source;
  const d = f.destination;
  if (filter.verdict && !filter.verdict.includes(f.verdict)) return false;
  if (filter.fromPod && !podMatches(s, filter.fromPod)) return false;
  if (filter.toPod && !podMatches(d, filter.toPod)) return false;
  if (filter.pod && !podMatches(s, filter.pod) && !podMatches(d, filter.pod)) return false;
  if (filter.namespace && !nsMatches(s, filter.namespace) && !nsMatches(d, filter.namespace)) return false;
  if (filter.fromNamespace && !nsMatches(s, filter.fromNamespace)) return false;
  if (filter.toNamespace && !nsMatches(d, filter.toNamespace)) return false;
  const srcIP = f.IP?.source;
  const dstIP = f.IP?.destination;
  if (filter.fromIP && (srcIP === undefined || !filter.fromIP.includes(srcIP))) return false;
  if (filter.toIP && (dstIP === undefined || !filter.toIP.includes(dstIP))) return false;
  if (filter.ip && !filter.ip.some((ip) => ip === srcIP || ip === dstIP)) return false;
  if (filter.protocol && !protocolMatches(f, filter.protocol)) return false;
  const p = portsOf(f);
  if (filter.fromPort && (p.src === undefined || !filter.fromPort.includes(p.src))) return false;
  if (filter.toPort && (p.dst === undefined || !filter.toPort.includes(p.dst))) return false;
  if (filter.port && !filter.port.some((x) => x === p.src || x === p.dst)) return false;
  if (
    filter.trafficDirection &&
    (f.traffic_direction === undefined ||
      !filter.trafficDirection.includes(f.traffic_direction as 'INGRESS' | 'EGRESS'))
  ) {
    return false;
  }
  if (filter.type && !filter.type.some((t) => EVENT_TYPES[t] === f.event_type?.type)) return false;
  return true;
}

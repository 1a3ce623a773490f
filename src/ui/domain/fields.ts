// Plain facts of one flow for tables and cards: names, ports, protocol, verdict class, L7 text.
// Pure; shared by the map, the table, the filter and the detail panel so they never disagree.

import type { Flow, FlowEndpoint } from '../../flow/types.ts';

export type VerdictClass = 'forwarded' | 'dropped' | 'audit' | 'other';

/** Hubble UI's colours: forwarded green, dropped red; audit is its own (amber). */
export function verdictClass(v: string): VerdictClass {
  switch (v) {
    case 'FORWARDED':
    case 'REDIRECTED':
    case 'TRANSLATED':
    case 'TRACED':
      return 'forwarded';
    case 'DROPPED':
    case 'ERROR':
      return 'dropped';
    case 'AUDIT':
      return 'audit';
    default:
      return 'other';
  }
}

export function protocolOf(f: Flow): string | undefined {
  const l4 = f.l4;
  if (l4 === undefined) return undefined;
  return Object.keys(l4)[0];
}

function ports(f: Flow): { source_port?: number; destination_port?: number } | undefined {
  const l4 = f.l4 as Record<string, { source_port?: number; destination_port?: number }> | undefined;
  if (l4 === undefined) return undefined;
  const p = l4.TCP ?? l4.UDP ?? l4.SCTP;
  return p;
}

export function destinationPort(f: Flow): number | undefined {
  return ports(f)?.destination_port;
}

export function sourcePort(f: Flow): number | undefined {
  return ports(f)?.source_port;
}

/** `8080/TCP`, `53/UDP`, `ICMPv4 8` (echo request), or the protocol alone. */
export function portText(f: Flow): string {
  const proto = protocolOf(f);
  if (proto === undefined) return '';
  const l4 = f.l4 as Record<string, { type?: number }>;
  if (proto === 'ICMPv4' || proto === 'ICMPv6') return `${proto} ${l4[proto]?.type ?? 0}`;
  const p = destinationPort(f);
  return p !== undefined ? `${p}/${proto}` : proto;
}

export function tcpFlagsText(f: Flow): string {
  const tcp = (f.l4 as { TCP?: { flags?: Record<string, boolean> } } | undefined)?.TCP;
  if (tcp?.flags === undefined) return '';
  return Object.keys(tcp.flags)
    .filter((k) => tcp.flags![k])
    .join(',');
}

export function labelValue(ep: FlowEndpoint | undefined, key: string): string | undefined {
  for (const l of ep?.labels ?? []) {
    const i = l.indexOf(':');
    const kv = i >= 0 ? l.slice(i + 1) : l;
    const eq = kv.indexOf('=');
    if (eq > 0 && kv.slice(0, eq) === key) return kv.slice(eq + 1);
  }
  return undefined;
}

export function reservedOf(ep: FlowEndpoint | undefined): string[] {
  return (ep?.labels ?? []).filter((l) => l.startsWith('reserved:')).map((l) => l.slice(9));
}

/** `ns/pod`, or the reserved entity, or the address. */
export function endpointText(ep: FlowEndpoint | undefined, ip: string | undefined): string {
  if (ep?.pod_name) return ep.namespace ? `${ep.namespace}/${ep.pod_name}` : ep.pod_name;
  const r = reservedOf(ep);
  // 0.0.0.0: no address known (the engine's verdicts on an entity, with no traffic).
  if (r.length > 0) return ip && ip !== '0.0.0.0' ? `${ip} (${r.join(',')})` : r.join(',');
  return ip ?? '';
}

/** The L7 request in a few words: `GET /api/users`, `DNS api.github.com. A`, `Kafka topic orders`. */
export function l7Text(f: Flow): string {
  const l7 = f.l7;
  if (l7 === undefined) return '';
  if (l7.http) {
    const h = l7.http as { method?: string; url?: string; code?: number };
    const path = pathOf(h.url ?? '');
    return `${h.method ?? ''} ${path}${h.code ? ` ${h.code}` : ''}`.trim();
  }
  if (l7.dns) {
    const d = l7.dns as { query?: string; qtypes?: string[]; rcode?: number };
    return `DNS ${d.query ?? ''}${d.qtypes?.length ? ` ${d.qtypes.join(',')}` : ''}`;
  }
  if (l7.kafka) {
    const k = l7.kafka as { topic?: string; api_key?: string };
    return `Kafka ${k.api_key ?? ''} ${k.topic ?? ''}`.trim();
  }
  return '';
}

/** The path of an absolute or relative URL (Hubble records `url` as `http://host/path`). */
export function pathOf(url: string): string {
  const m = /^[a-z][a-z0-9+.-]*:\/\/[^/]*(\/.*)?$/i.exec(url);
  if (m) return m[1] ?? '/';
  return url;
}

/** The policies the record itself names (Hubble's *_allowed_by / *_denied_by). */
export function recordPolicies(f: Flow): { field: string; text: string }[] {
  const out: { field: string; text: string }[] = [];
  for (const field of [
    'ingress_allowed_by',
    'egress_allowed_by',
    'ingress_denied_by',
    'egress_denied_by',
  ] as const) {
    for (const p of f[field] ?? [])
      out.push({ field, text: `${p.kind ?? 'policy'} ${p.namespace ? `${p.namespace}/` : ''}${p.name}` });
  }
  return out;
}

// Hubble's FlowFilter (flow.proto) over Seawall's flow records, with the Observer's semantics:
// within one filter every field that is set must match (AND) and the values of one field are
// alternatives (OR); a flow passes a request when any whitelist filter matches (or there is none)
// and no blacklist filter does. Filters are compiled once per request; bad values (a CIDR, a port,
// a regex, a protocol) are errors that name the field, as Hubble answers InvalidArgument.
// Regular expressions (http_path, http_url, dns_query) run through RE2 only.

import { BlockList, isIP } from 'node:net';
import { SeawallError } from '../../core/errors.ts';
import { fullMatchRegex } from '../../core/regex.ts';
import type { Flow, FlowEndpoint, TCPFlags } from '../../flow/types.ts';
import { compileMatchPattern, validMatchPattern } from '../../fqdn/pattern.ts';

/** A FlowFilter as protobufjs decodes it (enums as names, 64-bit as strings, lists present or absent). */
export interface HubbleFlowFilter {
  uuid?: string[];
  source_ip?: string[];
  source_ip_xlated?: string[];
  source_pod?: string[];
  source_fqdn?: string[];
  source_label?: string[];
  source_service?: string[];
  source_workload?: { name?: string; kind?: string }[];
  source_cluster_name?: string[];
  destination_ip?: string[];
  destination_pod?: string[];
  destination_fqdn?: string[];
  destination_label?: string[];
  destination_service?: string[];
  destination_workload?: { name?: string; kind?: string }[];
  destination_cluster_name?: string[];
  traffic_direction?: string[];
  verdict?: string[];
  drop_reason_desc?: string[];
  interface?: unknown[];
  event_type?: { type?: number; match_sub_type?: boolean; sub_type?: number }[];
  http_status_code?: string[];
  protocol?: string[];
  source_port?: string[];
  destination_port?: string[];
  reply?: boolean[];
  dns_query?: string[];
  source_identity?: number[];
  destination_identity?: number[];
  http_method?: string[];
  http_path?: string[];
  http_url?: string[];
  http_header?: { key?: string; value?: string }[];
  tcp_flags?: TCPFlags[];
  node_name?: string[];
  node_labels?: string[];
  ip_version?: string[];
  trace_id?: string[];
}

export class HubbleFilterError extends SeawallError<'bad-filter'> {
  override name = 'HubbleFilterError';
  constructor(field: string, why: string) {
    super('bad-filter', `FlowFilter.${field}: ${why}`);
  }
}

type Pred = (f: Flow) => boolean;

const PROTOCOLS = new Set(['tcp', 'udp', 'sctp', 'icmp', 'icmpv4', 'icmpv6', 'http', 'dns', 'kafka']);

function ipPred(field: string, vals: string[], pick: (f: Flow) => string | undefined): Pred {
  const exact = new Set<string>();
  const nets = new BlockList();
  for (const v of vals) {
    const slash = v.indexOf('/');
    if (slash < 0) {
      if (isIP(v) === 0)
        throw new HubbleFilterError(field, `${JSON.stringify(v)} is not an IP address or CIDR`);
      exact.add(v);
      continue;
    }
    const addr = v.slice(0, slash);
    const len = v.slice(slash + 1);
    const fam = isIP(addr);
    if (fam === 0 || !/^\d{1,3}$/.test(len) || Number(len) > (fam === 4 ? 32 : 128)) {
      throw new HubbleFilterError(field, `${JSON.stringify(v)} is not an IP address or CIDR`);
    }
    nets.addSubnet(addr, Number(len), fam === 4 ? 'ipv4' : 'ipv6');
  }
  return (f) => {
    const ip = pick(f);
    if (ip === undefined || ip === '') return false;
    if (exact.has(ip)) return true;
    const fam = isIP(ip);
    return fam !== 0 && nets.check(ip, fam === 4 ? 'ipv4' : 'ipv6');
  };
}

/** `[namespace/][name-prefix]`: no slash = a pod name prefix in any namespace. */
function podPred(field: string, vals: string[], side: (f: Flow) => FlowEndpoint | undefined): Pred {
  const refs = vals.map((v) => {
    const slash = v.indexOf('/');
    if (v === '' || v.indexOf('/', slash + 1) >= 0) {
      throw new HubbleFilterError(field, `${JSON.stringify(v)} is not [namespace/]pod-name-prefix`);
    }
    return slash < 0 ? { ns: '', prefix: v } : { ns: v.slice(0, slash), prefix: v.slice(slash + 1) };
  });
  return (f) => {
    const ep = side(f);
    if (ep === undefined) return false;
    return refs.some(
      (r) =>
        (r.ns === '' || ep.namespace === r.ns) &&
        (r.prefix === '' ? r.ns !== '' && ep.namespace === r.ns : (ep.pod_name ?? '').startsWith(r.prefix)),
    );
  };
}

function servicePred(field: string, vals: string[], key: 'source_service' | 'destination_service'): Pred {
  const refs = vals.map((v) => {
    const slash = v.indexOf('/');
    return slash < 0 ? { ns: '', prefix: v } : { ns: v.slice(0, slash), prefix: v.slice(slash + 1) };
  });
  if (refs.some((r) => r.ns === '' && r.prefix === ''))
    throw new HubbleFilterError(field, 'empty service name');
  return (f) => {
    const svc = (f as unknown as Record<string, { name?: string; namespace?: string } | undefined>)[key];
    if (svc?.name === undefined) return false;
    return refs.some((r) => (r.ns === '' || svc.namespace === r.ns) && svc.name!.startsWith(r.prefix));
  };
}

interface Requirement {
  source: string; // '' = any source
  key: string;
  op: 'exists' | 'notexists' | 'in' | 'notin';
  values: string[];
}

/** Kubernetes label-selector syntax over Cilium labels; a key may carry a source (`k8s:app`). */
export function parseLabelSelector(field: string, s: string): Requirement[] {
  const parts: string[] = [];
  let depth = 0;
  let cur = '';
  for (const c of s) {
    if (c === '(') depth++;
    if (c === ')') depth--;
    if (c === ',' && depth === 0) {
      parts.push(cur);
      cur = '';
    } else cur += c;
  }
  parts.push(cur);
  const bad = (why: string): never => {
    throw new HubbleFilterError(field, `${JSON.stringify(s)}: ${why}`);
  };
  return parts.map((raw) => {
    const p = raw.trim();
    if (p === '') bad('empty requirement');
    let key: string;
    let op: Requirement['op'];
    let values: string[] = [];
    const setOp = /^(\S+)\s+(in|notin)\s*\((.*)\)$/.exec(p);
    if (setOp !== null) {
      key = setOp[1]!;
      op = setOp[2] as 'in' | 'notin';
      values = setOp[3]!.split(',').map((x) => x.trim());
    } else if (p.startsWith('!')) {
      key = p.slice(1).trim();
      op = 'notexists';
    } else {
      const m = /^([^=!\s]+)\s*(==|=|!=)\s*(\S*)$/.exec(p);
      if (m !== null) {
        key = m[1]!;
        op = m[2] === '!=' ? 'notin' : 'in';
        values = [m[3]!];
      } else if (/^[^=!\s()]+$/.test(p)) {
        key = p;
        op = 'exists';
      } else return bad(`cannot parse ${JSON.stringify(p)}`);
    }
    const colon = key.indexOf(':');
    let source = colon < 0 ? '' : key.slice(0, colon);
    if (source === 'any') source = '';
    const k = colon < 0 ? key : key.slice(colon + 1);
    if (k === '') bad('empty label key');
    return { source, key: k, op, values };
  });
}

function labelValues(labels: string[] | undefined, r: Requirement): string[] {
  const out: string[] = [];
  for (const l of labels ?? []) {
    const colon = l.indexOf(':');
    const src = colon < 0 ? '' : l.slice(0, colon);
    const rest = colon < 0 ? l : l.slice(colon + 1);
    const eq = rest.indexOf('=');
    const key = eq < 0 ? rest : rest.slice(0, eq);
    if (key === r.key && (r.source === '' || r.source === src)) out.push(eq < 0 ? '' : rest.slice(eq + 1));
  }
  return out;
}

function labelPred(field: string, vals: string[], side: (f: Flow) => FlowEndpoint | undefined): Pred {
  const selectors = vals.map((v) => parseLabelSelector(field, v));
  return (f) => {
    const labels = side(f)?.labels;
    return selectors.some((reqs) =>
      reqs.every((r) => {
        const have = labelValues(labels, r);
        switch (r.op) {
          case 'exists':
            return have.length > 0;
          case 'notexists':
            return have.length === 0;
          case 'in':
            return have.some((v) => r.values.includes(v));
          case 'notin':
            return !have.some((v) => r.values.includes(v));
        }
        return false;
      }),
    );
  };
}

function fqdnPred(field: string, vals: string[], names: (f: Flow) => string[] | undefined): Pred {
  const ms = vals.map((v) => {
    if (!validMatchPattern(v))
      throw new HubbleFilterError(field, `${JSON.stringify(v)} is not a DNS name or pattern`);
    return compileMatchPattern(v);
  });
  return (f) => (names(f) ?? []).some((n) => ms.some((m) => m(n)));
}

function portPred(field: string, vals: string[], pick: (f: Flow) => number | undefined): Pred {
  const ports = new Set(
    vals.map((v) => {
      if (!/^\d{1,5}$/.test(v) || Number(v) > 65535)
        throw new HubbleFilterError(field, `${JSON.stringify(v)} is not a port`);
      return Number(v);
    }),
  );
  return (f) => {
    const p = pick(f);
    return p !== undefined && ports.has(p);
  };
}

function l4Ports(f: Flow): { src?: number; dst?: number } | undefined {
  const l4 = f.l4;
  if (l4 === undefined) return undefined;
  const pp = 'TCP' in l4 ? l4.TCP : 'UDP' in l4 ? l4.UDP : 'SCTP' in l4 ? l4.SCTP : undefined;
  if (pp === undefined) return undefined;
  return { src: pp.source_port ?? 0, dst: pp.destination_port ?? 0 };
}

/** An RE2 pattern that matches anywhere in the value (Go's regexp.MatchString). */
function regexPred(field: string, vals: string[], pick: (f: Flow) => string | undefined): Pred {
  const res = vals.map((v) => {
    try {
      return fullMatchRegex(`(?s:.*)(?:${v})(?s:.*)`);
    } catch (e) {
      throw new HubbleFilterError(field, `${JSON.stringify(v)}: ${(e as Error).message}`);
    }
  });
  return (f) => {
    const s = pick(f);
    return s !== undefined && res.some((r) => r.test(s));
  };
}

function urlPath(url: string | undefined): string | undefined {
  if (url === undefined) return undefined;
  try {
    return new URL(url).pathname;
  } catch {
    return undefined;
  }
}

/** `*` matches any run of characters except `/`; a pattern without `/` matches the node part. */
function globMatch(pattern: string, s: string): boolean {
  const parts = pattern.split('*');
  if (parts.length === 1) return pattern === s;
  if (!s.startsWith(parts[0]!)) return false;
  let i = parts[0]!.length;
  for (let k = 1; k < parts.length; k++) {
    const part = parts[k]!;
    const last = k === parts.length - 1;
    const j = last ? s.length - part.length : s.indexOf(part, i);
    if (j < i || (last && !s.endsWith(part))) return false;
    if (s.slice(i, j).includes('/')) return false;
    i = j + part.length;
  }
  return true;
}

function nodePred(field: string, vals: string[]): Pred {
  for (const v of vals) if (v === '') throw new HubbleFilterError(field, 'empty node name pattern');
  return (f) => {
    const n = f.node_name ?? '';
    const bare = n.slice(n.lastIndexOf('/') + 1);
    return vals.some((p) => {
      if (!p.includes('/')) return globMatch(p, bare);
      // `cluster/` alone: every node of the cluster.
      if (p.endsWith('/')) return n.startsWith(p);
      return globMatch(p, n);
    });
  };
}

function statusPred(field: string, vals: string[]): Pred {
  const ms = vals.map((v) => {
    if (/^\d{3}$/.test(v)) return (c: string) => c === v;
    const m = /^(\d{1,2})\+$/.exec(v);
    if (m === null)
      throw new HubbleFilterError(
        field,
        `${JSON.stringify(v)} is not a status code or prefix (404, 4+, 40+)`,
      );
    return (c: string) => c.startsWith(m[1]!);
  });
  return (f) => {
    const code = f.l7?.http?.code;
    if (typeof code !== 'number' || code < 100 || code > 599) return false;
    return ms.some((m) => m(String(code)));
  };
}

function protocolPred(field: string, vals: string[]): Pred {
  const want = vals.map((v) => {
    const p = v.toLowerCase();
    if (!PROTOCOLS.has(p))
      throw new HubbleFilterError(
        field,
        `unknown protocol ${JSON.stringify(v)} (one of ${[...PROTOCOLS].join(', ')})`,
      );
    return p;
  });
  return (f) => {
    const l4 = f.l4 === undefined ? '' : (Object.keys(f.l4)[0] ?? '').toLowerCase();
    return want.some((w) => {
      if (w === 'http' || w === 'dns' || w === 'kafka') return f.l7?.[w] !== undefined;
      if (w === 'icmp') return l4 === 'icmpv4' || l4 === 'icmpv6';
      return l4 === w;
    });
  };
}

function tcpFlagsPred(vals: TCPFlags[]): Pred {
  const sets = vals.map((v) =>
    Object.entries(v)
      .filter(([, on]) => on === true)
      .map(([k]) => k as keyof TCPFlags),
  );
  return (f) => {
    const flags = f.l4 !== undefined && 'TCP' in f.l4 ? f.l4.TCP.flags : undefined;
    if (flags === undefined) return false;
    return sets.some((s) => s.every((k) => flags[k] === true));
  };
}

function workloadPred(
  vals: { name?: string; kind?: string }[],
  side: (f: Flow) => FlowEndpoint | undefined,
): Pred {
  return (f) =>
    (side(f)?.workloads ?? []).some((w) =>
      vals.some((v) => (!v.name || v.name === w.name) && (!v.kind || v.kind === w.kind)),
    );
}

const src = (f: Flow): FlowEndpoint | undefined => f.source;
const dst = (f: Flow): FlowEndpoint | undefined => f.destination;

function set<T>(v: T[] | undefined): v is T[] {
  return v !== undefined && v.length > 0;
}

/** One FlowFilter → a predicate (every set field must match). Throws HubbleFilterError. */
export function compileFlowFilter(ff: HubbleFlowFilter): Pred {
  const preds: Pred[] = [];
  const add = (p: Pred): void => {
    preds.push(p);
  };
  if (set(ff.uuid)) {
    const u = new Set(ff.uuid);
    add((f) => u.has(f.uuid));
  }
  if (set(ff.source_ip)) add(ipPred('source_ip', ff.source_ip, (f) => f.IP?.source));
  if (set(ff.destination_ip)) add(ipPred('destination_ip', ff.destination_ip, (f) => f.IP?.destination));
  // Seawall does no SNAT: no record has a translated source, so this matches nothing.
  if (set(ff.source_ip_xlated)) add(ipPred('source_ip_xlated', ff.source_ip_xlated, () => undefined));
  if (set(ff.source_pod)) add(podPred('source_pod', ff.source_pod, src));
  if (set(ff.destination_pod)) add(podPred('destination_pod', ff.destination_pod, dst));
  if (set(ff.source_fqdn)) add(fqdnPred('source_fqdn', ff.source_fqdn, (f) => f.source_names));
  if (set(ff.destination_fqdn))
    add(fqdnPred('destination_fqdn', ff.destination_fqdn, (f) => f.destination_names));
  if (set(ff.source_label)) add(labelPred('source_label', ff.source_label, src));
  if (set(ff.destination_label)) add(labelPred('destination_label', ff.destination_label, dst));
  if (set(ff.source_service)) add(servicePred('source_service', ff.source_service, 'source_service'));
  if (set(ff.destination_service))
    add(servicePred('destination_service', ff.destination_service, 'destination_service'));
  if (set(ff.source_workload)) add(workloadPred(ff.source_workload, src));
  if (set(ff.destination_workload)) add(workloadPred(ff.destination_workload, dst));
  if (set(ff.source_cluster_name)) {
    const c = ff.source_cluster_name;
    add((f) => c.includes(f.source?.cluster_name ?? ''));
  }
  if (set(ff.destination_cluster_name)) {
    const c = ff.destination_cluster_name;
    add((f) => c.includes(f.destination?.cluster_name ?? ''));
  }
  if (set(ff.traffic_direction)) {
    const d = ff.traffic_direction;
    add((f) => d.includes(f.traffic_direction ?? 'TRAFFIC_DIRECTION_UNKNOWN'));
  }
  if (set(ff.verdict)) {
    const v = ff.verdict;
    add((f) => v.includes(f.verdict));
  }
  if (set(ff.drop_reason_desc)) {
    const d = ff.drop_reason_desc;
    add((f) => d.includes(f.drop_reason_desc ?? 'DROP_REASON_UNKNOWN'));
  }
  if (set(ff.event_type)) {
    const ets = ff.event_type;
    add((f) =>
      ets.some(
        (e) =>
          (e.type ?? 0) === (f.event_type?.type ?? 0) &&
          (!e.match_sub_type || (e.sub_type ?? 0) === (f.event_type?.sub_type ?? 0)),
      ),
    );
  }
  if (set(ff.http_status_code)) add(statusPred('http_status_code', ff.http_status_code));
  if (set(ff.protocol)) add(protocolPred('protocol', ff.protocol));
  if (set(ff.source_port)) add(portPred('source_port', ff.source_port, (f) => l4Ports(f)?.src));
  if (set(ff.destination_port))
    add(portPred('destination_port', ff.destination_port, (f) => l4Ports(f)?.dst));
  if (set(ff.reply)) {
    const r = ff.reply;
    add((f) => f.is_reply !== undefined && r.includes(f.is_reply));
  }
  if (set(ff.dns_query))
    add(regexPred('dns_query', ff.dns_query, (f) => f.l7?.dns?.query as string | undefined));
  if (set(ff.source_identity)) {
    const ids = ff.source_identity.map(Number);
    add((f) => ids.includes(f.source?.identity ?? 0));
  }
  if (set(ff.destination_identity)) {
    const ids = ff.destination_identity.map(Number);
    add((f) => ids.includes(f.destination?.identity ?? 0));
  }
  if (set(ff.http_method)) {
    const m = ff.http_method.map((x) => x.toUpperCase());
    add((f) => {
      const method = f.l7?.http?.method;
      return typeof method === 'string' && m.includes(method.toUpperCase());
    });
  }
  if (set(ff.http_path))
    add(regexPred('http_path', ff.http_path, (f) => urlPath(f.l7?.http?.url as string | undefined)));
  if (set(ff.http_url)) add(regexPred('http_url', ff.http_url, (f) => f.l7?.http?.url as string | undefined));
  if (set(ff.http_header)) {
    const hs = ff.http_header;
    add((f) => {
      const have = (f.l7?.http?.headers ?? []) as { key?: string; value?: string }[];
      return hs.some((h) =>
        have.some((x) => x.key?.toLowerCase() === h.key?.toLowerCase() && x.value === (h.value ?? '')),
      );
    });
  }
  if (set(ff.tcp_flags)) add(tcpFlagsPred(ff.tcp_flags));
  if (set(ff.node_name)) add(nodePred('node_name', ff.node_name));
  if (set(ff.ip_version)) {
    const v = ff.ip_version;
    add((f) => v.includes(f.IP?.ipVersion ?? 'IP_NOT_USED'));
  }
  // Seawall's records carry no interface, trace context or node labels: such filters match nothing.
  if (set(ff.interface) || set(ff.trace_id) || set(ff.node_labels)) add(() => false);
  return (f) => preds.every((p) => p(f));
}

/** whitelist − blacklist: any whitelist filter (or none given) and no blacklist filter. */
export function compileFlowFilters(
  whitelist: HubbleFlowFilter[] = [],
  blacklist: HubbleFlowFilter[] = [],
): Pred {
  const w = whitelist.map(compileFlowFilter);
  const b = blacklist.map(compileFlowFilter);
  return (f) => (w.length === 0 || w.some((p) => p(f))) && !b.some((p) => p(f));
}

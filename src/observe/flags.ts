// `hubble observe`'s flags → a GetFlows request, with hubble's meaning (cilium/hubble
// cmd/observe/flows_filter.go and flows.go). Flags are read in order: `--not` turns the next
// filter flag into the denylist. Filters build two FlowFilters, left and right, sent as
// alternatives: a from-/to- flag goes into both, an either-side flag (`--pod`, `--ip`, `--port`,
// `--label`, `--fqdn`, `--service`, `--workload`, `--identity`) puts its source field into the left
// one and its destination field into the right one, so `--pod A --port 80` means "source A with
// source port 80, or destination A with destination port 80". Namespaces (`-n`, --from-namespace,
// --to-namespace) are prefixed to the pod and service names when the filters are built (`--pod
// client -n shop` is `shop/client`). Equal left and right collapse to one filter.
// Wrong values are errors that name the flag, as hubble's are. Pure.

import { SeawallError } from '../core/errors.ts';
import { type TCPFlags, TRACE_POINT_NAMES } from '../flow/types.ts';
import { RESERVED_NAMES } from '../identity/reserved.ts';
import { compileFlowFilters, type HubbleFlowFilter } from './hubble/filter.ts';

export class FlagError extends SeawallError<'bad-flag'> {
  override name = 'FlagError';
  constructor(message: string) {
    super('bad-flag', message);
  }
}

/** hubble's --verdict values: flow.proto's Verdict names, exactly (FORWARDED, not forwarded). */
export const VERDICTS = ['FORWARDED', 'DROPPED', 'AUDIT', 'REDIRECTED', 'ERROR', 'TRACED', 'TRANSLATED'];
/** hubble's list of --protocol values (the server's protocol filter knows these). */
export const PROTOCOLS = ['icmp', 'icmpv4', 'icmpv6', 'tcp', 'udp', 'sctp', 'dns', 'http', 'kafka'];
/** pkg/monitor/api MessageTypeNames. */
export const EVENT_TYPES: Record<string, number> = {
  drop: 1,
  debug: 2,
  capture: 3,
  trace: 4,
  'policy-verdict': 5,
  recorder: 6,
  'trace-sock': 7,
  l7: 129,
  agent: 130,
};
/** The trace sub-types by name (pkg/monitor/api TraceObservationPoints). */
export const TRACE_POINTS: Record<string, number> = Object.fromEntries(
  TRACE_POINT_NAMES.map((n, i) => [n, i]),
);
const TCP_FLAGS = ['SYN', 'FIN', 'RST', 'PSH', 'ACK', 'URG', 'ECE', 'CWR', 'NS'] as const;

/** hubble's conflict groups: two flags of one group cannot be combined. */
const CONFLICTS: string[][] = [
  ['from-fqdn', 'from-ip', 'ip', 'fqdn', 'from-namespace', 'namespace'],
  ['from-fqdn', 'from-ip', 'ip', 'fqdn', 'from-pod', 'pod'],
  ['to-fqdn', 'to-ip', 'ip', 'fqdn', 'to-namespace', 'namespace'],
  ['to-fqdn', 'to-ip', 'ip', 'fqdn', 'to-pod', 'pod'],
  ['to-pod', 'namespace'],
  ['from-pod', 'namespace'],
  ['to-service', 'namespace'],
  ['from-service', 'namespace'],
  ['label', 'from-label'],
  ['label', 'to-label'],
  ['service', 'from-service'],
  ['service', 'to-service'],
  ['port', 'to-port'],
  ['port', 'from-port'],
  ['identity', 'to-identity'],
  ['identity', 'from-identity'],
  ['workload', 'to-workload'],
  ['workload', 'from-workload'],
];

type Filter = HubbleFlowFilter & Record<string, unknown>;

/** One list (allowlist or denylist) under construction: hubble's filterTracker. */
class Tracker {
  left: Filter | undefined;
  right: Filter | undefined;
  ns: string[] = [];
  srcNs: string[] = [];
  dstNs: string[] = [];
  changed = new Set<string>();

  both(fn: (f: Filter) => void): void {
    this.leftOnly(fn);
    this.rightOnly(fn);
  }
  leftOnly(fn: (f: Filter) => void): void {
    this.left ??= {};
    fn(this.left);
  }
  rightOnly(fn: (f: Filter) => void): void {
    this.right ??= {};
    fn(this.right);
  }

  filters(): HubbleFlowFilter[] {
    if (
      this.left === undefined &&
      this.right === undefined &&
      this.ns.length + this.srcNs.length + this.dstNs.length === 0
    )
      return [];
    const left = this.left ?? {};
    const right = this.right ?? {};
    if (this.dstNs.length > 0) for (const f of [left, right]) withNamespaces(f, 'destination', this.dstNs);
    if (this.srcNs.length > 0) for (const f of [left, right]) withNamespaces(f, 'source', this.srcNs);
    if (this.ns.length > 0) {
      withNamespaces(left, 'source', this.ns);
      withNamespaces(right, 'destination', this.ns);
    }
    return JSON.stringify(left) === JSON.stringify(right) ? [left] : [left, right];
  }
}

/** hubble's namespaceModifier: `ns/` alone when no pod or service is named on that side. */
function withNamespaces(f: Filter, side: 'source' | 'destination', ns: string[]): void {
  const podKey = `${side}_pod` as const;
  const svcKey = `${side}_service` as const;
  if ((f[podKey] ?? []).length === 0 && (f[svcKey] ?? []).length === 0) f[podKey] = [''];
  const add = (vals: string[] | undefined): string[] | undefined => {
    if (vals === undefined || vals.length === 0) return vals;
    const out: string[] = [];
    for (const v of vals) {
      if (v.includes('/')) out.push(v);
      else for (const n of ns) out.push(`${n}/${v}`);
    }
    return out;
  };
  const p = add(f[podKey]);
  if (p !== undefined) f[podKey] = p;
  const s = add(f[svcKey]);
  if (s !== undefined) f[svcKey] = s;
}

const push = <K extends keyof HubbleFlowFilter>(
  f: Filter,
  k: K,
  v: NonNullable<HubbleFlowFilter[K]>[number],
): void => {
  const list = (f[k] ?? []) as unknown[];
  list.push(v);
  (f as Record<string, unknown>)[k] = list;
};

function identityOf(flag: string, v: string): number {
  if (/^\d+$/.test(v)) return Number(v);
  const r = RESERVED_NAMES.find(([, n]) => n === v);
  if (r === undefined) {
    throw new FlagError(
      `--${flag}: invalid security identity, expected one of ${RESERVED_NAMES.map(([, n]) => n).join(', ')} or a numeric value`,
    );
  }
  return r[0];
}

function workloadOf(v: string): { name?: string; kind?: string } {
  const slash = v.indexOf('/');
  return slash < 0 ? { name: v } : { kind: v.slice(0, slash), name: v.slice(slash + 1) };
}

function tcpFlagsOf(v: string): TCPFlags {
  const out: TCPFlags = {};
  for (const s of v.split(',')) {
    const u = s.toUpperCase();
    if (!(TCP_FLAGS as readonly string[]).includes(u))
      throw new FlagError(`--tcp-flags: unknown tcp flag: ${s}`);
    out[u as keyof TCPFlags] = true;
  }
  return out;
}

function eventTypeOf(v: string): { type: number; match_sub_type?: boolean; sub_type?: number } {
  const colon = v.indexOf(':');
  const t = colon < 0 ? v : v.slice(0, colon);
  const sub = colon < 0 ? undefined : v.slice(colon + 1);
  const type = EVENT_TYPES[t] ?? (/^\d+$/.test(t) ? Number(t) : undefined);
  if (type === undefined) {
    throw new FlagError(
      `--type: unable to parse type '${t}', not a known type name (${Object.keys(EVENT_TYPES).join(', ')}) and not a number`,
    );
  }
  if (sub === undefined) return { type };
  const named = type === EVENT_TYPES.trace ? TRACE_POINTS[sub] : undefined;
  const st = named ?? (/^\d+$/.test(sub) ? Number(sub) : undefined);
  if (st === undefined) {
    throw new FlagError(
      `--type: unable to parse event sub-type '${sub}', not a known sub-type name and not a number`,
    );
  }
  return { type, match_sub_type: true, sub_type: st };
}

/** Flags that take a value and build filters. */
const FILTER_FLAGS = new Set([
  'uuid',
  'node-name',
  'protocol',
  'tcp-flags',
  'type',
  'verdict',
  'http-status',
  'http-method',
  'http-path',
  'http-url',
  'http-header',
  'trace-id',
  'from-fqdn',
  'fqdn',
  'to-fqdn',
  'from-ip',
  'ip',
  'to-ip',
  'ip-version',
  'from-pod',
  'pod',
  'to-pod',
  'from-namespace',
  'namespace',
  'to-namespace',
  'from-label',
  'label',
  'to-label',
  'from-service',
  'service',
  'to-service',
  'from-port',
  'port',
  'to-port',
  'from-workload',
  'workload',
  'to-workload',
  'from-identity',
  'identity',
  'to-identity',
  'traffic-direction',
  'drop-reason-desc',
]);
/** Filter flags without a value. */
const FILTER_SWITCHES = new Set(['not', 'ipv4', 'ipv6']);

/** Every other flag of `seawall observe`: name → takes a value. */
const OTHER_FLAGS: Record<string, boolean> = {
  all: false,
  first: true,
  last: true,
  since: true,
  until: true,
  follow: false,
  output: true,
  'time-format': true,
  color: true,
  numeric: false,
  'print-node-name': false,
  'print-policy-names': false,
  'print-raw-filters': false,
  allowlist: true,
  denylist: true,
  server: true,
  node: true,
  socket: true,
  'input-file': true,
  'all-namespaces': false,
};
const SHORT: Record<string, string> = {
  f: 'follow',
  o: 'output',
  t: 'type',
  n: 'namespace',
  l: 'label',
  A: 'all-namespaces',
  '4': 'ipv4',
  '6': 'ipv6',
};

/** Go's time formats by hubble's names (--time-format). */
export const TIME_FORMATS = [
  'StampMilli',
  'RFC3339',
  'RFC3339Milli',
  'RFC3339Micro',
  'RFC3339Nano',
  'RFC1123Z',
] as const;
export type TimeFormat = (typeof TIME_FORMATS)[number];
export const OUTPUTS = ['compact', 'dict', 'json', 'jsonpb', 'table'] as const;
export type Output = (typeof OUTPUTS)[number];

export interface ObserveArgs {
  /** GetFlowsRequest as protojson-ish object (since/until as {seconds, nanos}). */
  request: {
    number?: number;
    first?: boolean;
    follow?: boolean;
    since?: { seconds: number; nanos: number };
    until?: { seconds: number; nanos: number };
    whitelist: HubbleFlowFilter[];
    blacklist: HubbleFlowFilter[];
  };
  output: Output;
  timeFormat: TimeFormat;
  color: 'auto' | 'always' | 'never';
  numeric: boolean;
  printNodeName: boolean;
  printPolicyNames: boolean;
  printRawFilters: boolean;
  server?: string;
  node?: string;
  socket?: string;
  inputFile?: string;
}

/** Hubble's default when no count, time or follow is given. */
export const DEFAULT_LAST = 20;

/** hubble's time flags: RFC 3339 (with or without fraction and offset) or a Go duration ago. */
export function parseTimeFlag(flag: string, v: string, nowMs: number): { seconds: number; nanos: number } {
  const dur = /^(?:(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h))+$/.test(v);
  if (dur) {
    const units: Record<string, number> = { ns: 1e-6, us: 1e-3, µs: 1e-3, ms: 1, s: 1e3, m: 60e3, h: 3600e3 };
    let ms = 0;
    for (const m of v.matchAll(/(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/g)) ms += Number(m[1]) * units[m[2]!]!;
    const t = nowMs - ms;
    const seconds = Math.floor(t / 1000);
    return { seconds, nanos: Math.round((t - seconds * 1000) * 1e6) };
  }
  const m = /^(\d{4}-\d{2}-\d{2})[Tt ](\d{2}:\d{2}:\d{2})(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})$/.exec(v);
  if (m !== null) {
    const ms = Date.parse(`${m[1]}T${m[2]}${m[4]!.toUpperCase()}`);
    if (!Number.isNaN(ms)) {
      const frac = m[3] === undefined ? 0 : Number(m[3].slice(1).padEnd(9, '0'));
      return { seconds: Math.floor(ms / 1000), nanos: frac };
    }
  }
  throw new FlagError(
    `--${flag}: failed to parse the ${flag} time: ${JSON.stringify(v)} (an RFC 3339 time like 2026-01-02T15:04:05Z, or a duration ago like 5m, 1h30m)`,
  );
}

function count(flag: string, v: string): number {
  if (!/^\d+$/.test(v)) throw new FlagError(`--${flag}: not a number: ${v}`);
  return Number(v);
}

function oneOf<T extends string>(flag: string, v: string, allowed: readonly T[]): T {
  if (!(allowed as readonly string[]).includes(v))
    throw new FlagError(`--${flag}: invalid value ${JSON.stringify(v)} (one of ${allowed.join(', ')})`);
  return v as T;
}

/** Raw JSON FlowFilters (--allowlist/--denylist): one or more objects per value. */
function rawFilters(flag: string, v: string): HubbleFlowFilter[] {
  const out: HubbleFlowFilter[] = [];
  let rest = v.trim();
  while (rest !== '') {
    // values may hold several JSON objects one after another, as hubble's decoder reads them
    let depth = 0;
    let inStr = false;
    let end = -1;
    for (let i = 0; i < rest.length; i++) {
      const c = rest[i];
      if (inStr) {
        if (c === '\\') i++;
        else if (c === '"') inStr = false;
      } else if (c === '"') inStr = true;
      else if (c === '{') depth++;
      else if (c === '}' && --depth === 0) {
        end = i + 1;
        break;
      }
    }
    let o: unknown;
    try {
      o = JSON.parse(end < 0 ? rest : rest.slice(0, end));
    } catch (e) {
      throw new FlagError(`invalid --${flag} flag: failed to decode '${v}': ${(e as Error).message}`);
    }
    if (typeof o !== 'object' || o === null || Array.isArray(o))
      throw new FlagError(`invalid --${flag} flag: failed to decode '${v}': not a FlowFilter object`);
    out.push(o as HubbleFlowFilter);
    rest = end < 0 ? '' : rest.slice(end).trim();
  }
  return out;
}

function applyFilter(t: Tracker, name: string, v: string): undefined {
  for (const g of CONFLICTS) {
    if (!g.includes(name)) continue;
    for (const other of g)
      if (other !== name && t.changed.has(other))
        throw new FlagError(`filters --${name} and --${other} cannot be combined`);
  }
  t.changed.add(name);
  const either = (src: keyof HubbleFlowFilter, dst: keyof HubbleFlowFilter, val: unknown): undefined => {
    t.leftOnly((f) => push(f, src, val as never));
    t.rightOnly((f) => push(f, dst, val as never));
    return undefined;
  };
  const all = (k: keyof HubbleFlowFilter, val: unknown): undefined => {
    t.both((f) => push(f, k, val as never));
    return undefined;
  };
  switch (name) {
    case 'uuid':
      return all('uuid', v);
    case 'fqdn':
      return either('source_fqdn', 'destination_fqdn', v);
    case 'from-fqdn':
      return all('source_fqdn', v);
    case 'to-fqdn':
      return all('destination_fqdn', v);
    case 'pod':
      return either('source_pod', 'destination_pod', v);
    case 'from-pod':
      return all('source_pod', v);
    case 'to-pod':
      return all('destination_pod', v);
    case 'ip':
      return either('source_ip', 'destination_ip', v);
    case 'from-ip':
      return all('source_ip', v);
    case 'to-ip':
      return all('destination_ip', v);
    case 'ipv4':
      return all('ip_version', 'IPv4');
    case 'ipv6':
      return all('ip_version', 'IPv6');
    case 'ip-version': {
      const l = v.toLowerCase();
      const ver = ['4', 'v4', 'ipv4', 'ip4'].includes(l)
        ? 'IPv4'
        : ['6', 'v6', 'ipv6', 'ip6'].includes(l)
          ? 'IPv6'
          : ['none', ''].includes(l)
            ? 'IP_NOT_USED'
            : undefined;
      if (ver === undefined)
        throw new FlagError(`--ip-version: invalid value ${JSON.stringify(v)} (none, v4, v6)`);
      return all('ip_version', ver);
    }
    case 'label':
      return either('source_label', 'destination_label', v);
    case 'from-label':
      return all('source_label', v);
    case 'to-label':
      return all('destination_label', v);
    case 'namespace':
      t.ns.push(v);
      return;
    case 'from-namespace':
      t.srcNs.push(v);
      return;
    case 'to-namespace':
      t.dstNs.push(v);
      return;
    case 'service':
      return either('source_service', 'destination_service', v);
    case 'from-service':
      return all('source_service', v);
    case 'to-service':
      return all('destination_service', v);
    case 'port':
      return either('source_port', 'destination_port', v);
    case 'from-port':
      return all('source_port', v);
    case 'to-port':
      return all('destination_port', v);
    case 'trace-id':
      return all('trace_id', v);
    case 'verdict':
      if (!VERDICTS.includes(v))
        throw new FlagError(`invalid --verdict value: ${v} (one of ${VERDICTS.join(', ')})`);
      return all('verdict', v);
    case 'http-status':
      return all('http_status_code', v);
    case 'http-method':
      return all('http_method', v);
    case 'http-path':
      return all('http_path', v);
    case 'http-url':
      return all('http_url', v);
    case 'http-header': {
      const colon = v.indexOf(':');
      if (colon <= 0) throw new FlagError(`--http-header: ${JSON.stringify(v)} is not key:value`);
      return all('http_header', { key: v.slice(0, colon), value: v.slice(colon + 1) });
    }
    case 'type':
      return all('event_type', eventTypeOf(v));
    case 'protocol':
      if (!PROTOCOLS.includes(v.toLowerCase()))
        throw new FlagError(
          `--protocol: unknown protocol ${JSON.stringify(v)} (one of ${PROTOCOLS.join(', ')})`,
        );
      return all('protocol', v);
    case 'workload':
      return either('source_workload', 'destination_workload', workloadOf(v));
    case 'from-workload':
      return all('source_workload', workloadOf(v));
    case 'to-workload':
      return all('destination_workload', workloadOf(v));
    case 'identity':
      return either('source_identity', 'destination_identity', identityOf(name, v));
    case 'from-identity':
      return all('source_identity', identityOf(name, v));
    case 'to-identity':
      return all('destination_identity', identityOf(name, v));
    case 'node-name':
      return all('node_name', v);
    case 'tcp-flags':
      return all('tcp_flags', tcpFlagsOf(v));
    case 'traffic-direction': {
      const d = v.toLowerCase();
      if (d !== 'ingress' && d !== 'egress')
        throw new FlagError(
          `--traffic-direction: ${v}: invalid traffic direction, expected ingress or egress`,
        );
      return all('traffic_direction', d.toUpperCase());
    }
    case 'drop-reason-desc':
      return all('drop_reason_desc', v.toUpperCase());
  }
}

/** `seawall observe`'s arguments (everything after `observe`) → what to ask and how to print. */
export function parseObserveArgs(argv: readonly string[], nowMs = Date.now()): ObserveArgs {
  const allow = new Tracker();
  const deny = new Tracker();
  let notNext = false;
  const o: ObserveArgs = {
    request: { whitelist: [], blacklist: [] },
    output: 'compact',
    timeFormat: 'StampMilli',
    color: 'auto',
    numeric: false,
    printNodeName: false,
    printPolicyNames: false,
    printRawFilters: false,
  };
  let all = false;
  let first: number | undefined;
  let last: number | undefined;
  let since: string | undefined;
  let until: string | undefined;
  let follow = false;
  let allNamespaces = false;
  const allowRaw: HubbleFlowFilter[] = [];
  const denyRaw: HubbleFlowFilter[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    let name: string;
    let inline: string | undefined;
    if (a.startsWith('--')) {
      const eq = a.indexOf('=');
      name = eq < 0 ? a.slice(2) : a.slice(2, eq);
      if (eq >= 0) inline = a.slice(eq + 1);
    } else if (a.startsWith('-') && a.length >= 2) {
      const long = SHORT[a[1]!];
      if (long === undefined) throw new FlagError(`unknown flag: ${a}`);
      name = long;
      if (a.length > 2) inline = a.slice(2).replace(/^=/, '');
    } else throw new FlagError(`unexpected argument: ${a}`);
    const takesValue = FILTER_FLAGS.has(name) || OTHER_FLAGS[name] === true;
    const known = takesValue || FILTER_SWITCHES.has(name) || OTHER_FLAGS[name] === false;
    if (!known) throw new FlagError(`unknown flag: --${name}`);
    let value = '';
    if (takesValue) {
      if (inline !== undefined) value = inline;
      else {
        const next = argv[i + 1];
        if (next === undefined) throw new FlagError(`--${name} needs a value`);
        value = next;
        i++;
      }
    } else if (inline !== undefined && name !== 'not') throw new FlagError(`--${name} takes no value`);
    if (name === 'not') {
      if (notNext) throw new FlagError('consecutive --not statements');
      notNext = true;
      continue;
    }
    if (FILTER_FLAGS.has(name) || FILTER_SWITCHES.has(name)) {
      applyFilter(notNext ? deny : allow, name, value);
      notNext = false;
      continue;
    }
    if (notNext) throw new FlagError(`--not must be followed by a filter flag, not --${name}`);
    switch (name) {
      case 'all':
        all = true;
        break;
      case 'first':
        first = count(name, value);
        break;
      case 'last':
        last = count(name, value);
        break;
      case 'since':
        since = value;
        break;
      case 'until':
        until = value;
        break;
      case 'follow':
        follow = true;
        break;
      case 'output':
        o.output = oneOf(name, value, OUTPUTS);
        break;
      case 'time-format':
        o.timeFormat = oneOf(name, value, TIME_FORMATS);
        break;
      case 'color':
        o.color = oneOf(name, value, ['auto', 'always', 'never'] as const);
        break;
      case 'numeric':
        o.numeric = true;
        break;
      case 'print-node-name':
        o.printNodeName = true;
        break;
      case 'print-policy-names':
        o.printPolicyNames = true;
        break;
      case 'print-raw-filters':
        o.printRawFilters = true;
        break;
      case 'allowlist':
        allowRaw.push(...rawFilters(name, value));
        break;
      case 'denylist':
        denyRaw.push(...rawFilters(name, value));
        break;
      case 'server':
        o.server = value;
        break;
      case 'node':
        o.node = value;
        break;
      case 'socket':
        o.socket = value;
        break;
      case 'input-file':
        o.inputFile = value;
        break;
      case 'all-namespaces':
        allNamespaces = true;
        break;
    }
  }
  if (notNext) throw new FlagError('trailing --not found in the arguments');
  if (allNamespaces && (allow.ns.length > 0 || deny.ns.length > 0))
    throw new FlagError('--all-namespaces (-A) and --namespace (-n) cannot be combined');
  const isFirst = (first ?? 0) > 0;
  const isLast = (last ?? 0) > 0;
  if (isFirst && isLast) throw new FlagError('cannot set both --first and --last');
  if (isFirst && all) throw new FlagError('cannot set both --first and --all');
  if (isFirst && follow) throw new FlagError('cannot set both --first and --follow');
  if (isLast && all) throw new FlagError('cannot set both --last and --all');
  if (o.output === 'table' && follow)
    throw new FlagError('table output format is not compatible with follow mode');
  if (o.server !== undefined && o.socket !== undefined)
    throw new FlagError('--server and --socket cannot be combined');
  const req = o.request;
  if (since !== undefined) req.since = parseTimeFlag('since', since, nowMs);
  // with --follow, hubble leaves until out (the server would stop at once)
  if (until !== undefined && !follow) req.until = parseTimeFlag('until', until, nowMs);
  let number = last ?? 0;
  if (req.since === undefined && req.until === undefined && !isFirst) {
    if (all) number = Number.MAX_SAFE_INTEGER;
    else if (number === 0 && !follow) number = DEFAULT_LAST;
  }
  if (isFirst) {
    number = first!;
    req.first = true;
  }
  if (number > 0) req.number = number;
  if (follow) req.follow = true;
  req.whitelist = [...allow.filters(), ...allowRaw];
  req.blacklist = [...deny.filters(), ...denyRaw];
  // the server's checks, here first: a bad CIDR, regex or label selector is the user's error
  try {
    compileFlowFilters(req.whitelist, req.blacklist);
  } catch (e) {
    throw new FlagError((e as Error).message);
  }
  return o;
}

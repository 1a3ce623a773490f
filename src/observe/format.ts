// Flows printed as `hubble observe` prints them (cilium/hubble pkg/printer): compact
//   Jan  2 03:04:05.678: shop/client:40000 (ID:1001) -> shop/server:8080 (ID:1002) policy-verdict:L3-L4 INGRESS ALLOWED (TCP Flags: SYN)
// (the arrow is `->` for a request, `<-` for a reply, printed from the requester's side, `<>` when
// unknown), dict (KEY: value blocks), table (tab-aligned columns under a header), and JSON (the
// GetFlowsResponse as given). Identities print as `(ID:n)`, reserved ones by name (`(world)`).
// Records come from a socket: human output escapes control characters (an ESC in a pod name must
// not repaint the terminal), and records not of the API's shape are refused, not printed as
// `undefined`. Pure.

import {
  type Flow,
  type FlowEndpoint,
  type FlowEvent,
  type FlowPolicy,
  TRACE_POINT_NAMES,
} from '../flow/types.ts';
import { RESERVED_NAMES } from '../identity/reserved.ts';
import type { TimeFormat } from './flags.ts';

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
const DAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];

export interface PrintOptions {
  timeFormat?: TimeFormat;
  /** `TIME [node]: ...` */
  nodeName?: boolean;
  /** The policies that allowed or denied a policy verdict, after its verdict. */
  policyNames?: boolean;
  /** Addresses instead of pod names (hubble --numeric). */
  numeric?: boolean;
  color?: boolean;
}

/** `Jan  2 15:04:05.000` in UTC (Hubble's compact time, Go's StampMilli). */
export function compactTime(rfc3339: string): string {
  return formatTime(rfc3339, 'StampMilli');
}

/** A flow's time in one of hubble's --time-format layouts (UTC, as hubble prints a Timestamp). */
export function formatTime(rfc3339: string, f: TimeFormat): string {
  const ms = Date.parse(rfc3339);
  if (Number.isNaN(ms)) return rfc3339;
  const d = new Date(ms);
  const frac = /\.(\d+)/.exec(rfc3339)?.[1] ?? '';
  const p2 = (n: number): string => String(n).padStart(2, '0');
  const hms = `${p2(d.getUTCHours())}:${p2(d.getUTCMinutes())}:${p2(d.getUTCSeconds())}`;
  const date = `${d.getUTCFullYear()}-${p2(d.getUTCMonth() + 1)}-${p2(d.getUTCDate())}`;
  const digits = (n: number): string => frac.padEnd(n, '0').slice(0, n);
  switch (f) {
    case 'StampMilli':
      return `${MONTHS[d.getUTCMonth()]} ${String(d.getUTCDate()).padStart(2, ' ')} ${hms}.${digits(3)}`;
    case 'RFC3339':
      return `${date}T${hms}Z`;
    case 'RFC3339Milli':
      return `${date}T${hms}.${digits(3)}Z`;
    case 'RFC3339Micro':
      return `${date}T${hms}.${digits(6)}Z`;
    case 'RFC3339Nano': {
      // Go's 999999999: trailing zeros (and a bare dot) dropped
      const n = digits(9).replace(/0+$/, '');
      return `${date}T${hms}${n === '' ? '' : `.${n}`}Z`;
    }
    case 'RFC1123Z':
      return `${DAYS[d.getUTCDay()]}, ${p2(d.getUTCDate())} ${MONTHS[d.getUTCMonth()]} ${d.getUTCFullYear()} ${hms} +0000`;
  }
}

function ports(f: Flow): { src?: number; dst?: number } {
  const l4 = f.l4;
  if (l4 === undefined) return {};
  const pp = 'TCP' in l4 ? l4.TCP : 'UDP' in l4 ? l4.UDP : 'SCTP' in l4 ? l4.SCTP : undefined;
  const out: { src?: number; dst?: number } = {};
  if (pp?.source_port !== undefined) out.src = pp.source_port;
  if (pp?.destination_port !== undefined) out.dst = pp.destination_port;
  return out;
}

/** hubble's Hostname: pod (namespace/name), else DNS names, else the address; `:port` when known. */
function host(f: Flow, side: 'source' | 'destination', o: PrintOptions): string {
  const ep = side === 'source' ? f.source : f.destination;
  const ip = (side === 'source' ? f.IP?.source : f.IP?.destination) ?? '';
  const names = side === 'source' ? f.source_names : f.destination_names;
  const port = side === 'source' ? ports(f).src : ports(f).dst;
  let h = ip;
  if (!o.numeric) {
    if (ep?.pod_name !== undefined) h = ep.namespace ? `${ep.namespace}/${ep.pod_name}` : ep.pod_name;
    else if (names !== undefined && names.length > 0) h = names.join(',');
  }
  if (port !== undefined && port !== 0)
    return ip.includes(':') && h === ip ? `[${h}]:${port}` : `${h}:${port}`;
  return h;
}

const RESERVED = new Map<number, string>(RESERVED_NAMES);

function identity(ep: FlowEndpoint | undefined): string {
  const id = ep?.identity ?? 0;
  const r = RESERVED.get(id);
  return r !== undefined ? `(${r})` : `(ID:${id})`;
}

/** pkg/monitor/api PolicyMatchType String(). */
const MATCH_NAME: Record<number, string> = {
  0: 'none',
  1: 'L3-Only',
  2: 'L3-L4',
  3: 'L4-Only',
  4: 'all',
  5: 'L3-Proto',
  6: 'Proto-Only',
};
/** pkg/monitor/api DropReason strings for the reasons Seawall emits. */
const DROP_TEXT: Record<number, string> = {
  132: 'Invalid source ip',
  133: 'Policy denied',
  181: 'Policy denied by denylist',
};

/** hubble's GetFlowType: `policy-verdict:L3-L4 INGRESS`, `to-endpoint`, `Policy denied`, `http-request`. */
export function flowType(f: Flow): string {
  if (f.l7 !== undefined) {
    const proto =
      f.l7.http !== undefined
        ? 'http'
        : f.l7.dns !== undefined
          ? 'dns'
          : f.l7.kafka !== undefined
            ? 'kafka'
            : 'l7';
    return `${proto}-${(f.l7.type ?? 'UNKNOWN_L7_TYPE').toLowerCase()}`;
  }
  const t = f.event_type?.type;
  const sub = f.event_type?.sub_type ?? 0;
  if (t === 4) return TRACE_POINT_NAMES[sub] ?? `${sub}`;
  if (t === 1) return DROP_TEXT[sub] ?? String(f.drop_reason_desc ?? sub);
  if (t === 5) {
    let s = `policy-verdict:${MATCH_NAME[f.policy_match_type ?? 0] ?? 'unknown'}`;
    if (f.traffic_direction === 'INGRESS' || f.traffic_direction === 'EGRESS') s += ` ${f.traffic_direction}`;
    return s;
  }
  return 'UNKNOWN';
}

const C = {
  green: '\u001b[32m',
  red: '\u001b[31m',
  yellow: '\u001b[33m',
  cyan: '\u001b[36m',
  reset: '\u001b[0m',
};

/** hubble's verdict word: ALLOWED/DENIED/AUDITED for policy verdicts. */
function verdictText(f: Flow, color: boolean): string {
  const pv = f.event_type?.type === 5;
  let text: string = f.verdict;
  let c = '';
  if (f.verdict === 'FORWARDED' || f.verdict === 'REDIRECTED') {
    if (pv) text = 'ALLOWED';
    c = C.green;
  } else if (f.verdict === 'DROPPED' || f.verdict === 'ERROR') {
    if (pv) text = 'DENIED';
    c = C.red;
  } else if (f.verdict === 'AUDIT') {
    if (pv) text = 'AUDITED';
    c = C.yellow;
  }
  return color && c !== '' ? `${c}${text}${C.reset}` : text;
}

function policyNames(ps: FlowPolicy[] | undefined): string[] {
  return (ps ?? []).map((p) =>
    p.name === undefined
      ? (p.labels ?? []).join(',')
      : [p.kind, p.namespace, p.name].filter((x) => x !== undefined && x !== '').join('/'),
  );
}

/** ` BY kind/namespace/name, ...` for a policy verdict with the policies behind it. */
function byPolicies(f: Flow): string {
  const names = [
    ...policyNames(f.ingress_allowed_by),
    ...policyNames(f.egress_allowed_by),
    ...policyNames(f.ingress_denied_by),
    ...policyNames(f.egress_denied_by),
  ];
  return names.length > 0 ? ` BY ${names.join(', ')}` : '';
}

/** Source and destination as hubble prints them, with the arrow: replies from the requester's side. */
function endpoints(f: Flow, o: PrintOptions): { src: string; dst: string; arrow: string } {
  let src = escapeControl(`${host(f, 'source', o)} ${identity(f.source)}`);
  let dst = escapeControl(`${host(f, 'destination', o)} ${identity(f.destination)}`);
  let arrow = '->';
  if (f.is_reply === undefined) arrow = '<>';
  else if (f.is_reply) {
    arrow = '<-';
    [src, dst] = [dst, src];
  }
  if (o.color) {
    src = `${C.cyan}${src}${C.reset}`;
    dst = `${C.cyan}${dst}${C.reset}`;
  }
  return { src, dst, arrow };
}

/** One `hubble observe -o compact` line (record fields escaped, then colored when asked). */
export function formatCompact(e: FlowEvent, o: PrintOptions = {}): string {
  const f = e.flow;
  const { src, dst, arrow } = endpoints(f, o);
  const node = o.nodeName ? ` [${escapeControl(e.node_name ?? f.node_name ?? '')}]` : '';
  const by = o.policyNames && f.event_type?.type === 5 ? escapeControl(byPolicies(f)) : '';
  const time = escapeControl(formatTime(e.time, o.timeFormat ?? 'StampMilli'));
  return `${time}${node}: ${src} ${arrow} ${dst} ${escapeControl(flowType(f))} ${verdictText(f, o.color === true)}${by} (${escapeControl(f.Summary ?? '')})`;
}

/** One `-o dict` block (the caller puts hubble's `------------` between blocks). */
export function formatDict(e: FlowEvent, o: PrintOptions = {}): string {
  const f = e.flow;
  const { src, dst } = endpoints(f, { ...o, color: false });
  const by = o.policyNames && f.event_type?.type === 5 ? escapeControl(byPolicies(f)) : '';
  return [
    `  TIMESTAMP: ${escapeControl(formatTime(e.time, o.timeFormat ?? 'StampMilli'))}`,
    ...(o.nodeName ? [`       NODE: ${escapeControl(e.node_name ?? f.node_name ?? '')}`] : []),
    `     SOURCE: ${src}`,
    `DESTINATION: ${dst}`,
    `       TYPE: ${escapeControl(flowType(f))}`,
    `    VERDICT: ${verdictText(f, o.color === true)}${by}`,
    `    SUMMARY: ${escapeControl(f.Summary ?? '')}`,
  ].join('\n');
}

export const DICT_SEPARATOR = '------------';

/**
 * `-o table`: a header and one row per flow, columns padded as Go's tabwriter (minwidth 2,
 * padding 3) pads them.
 */
export function formatTable(events: readonly FlowEvent[], o: PrintOptions = {}): string[] {
  const header = [
    'TIMESTAMP',
    ...(o.nodeName ? ['NODE'] : []),
    'SOURCE',
    'DESTINATION',
    'TYPE',
    'VERDICT',
    'SUMMARY',
  ];
  const rows = [header];
  const srcAt = o.nodeName ? 2 : 1; // already escaped by endpoints()
  for (const e of events) {
    const f = e.flow;
    const { src, dst } = endpoints(f, { ...o, color: false });
    rows.push(
      [
        formatTime(e.time, o.timeFormat ?? 'StampMilli'),
        ...(o.nodeName ? [e.node_name ?? f.node_name ?? ''] : []),
        src,
        dst,
        flowType(f),
        verdictText(f, false),
        f.Summary ?? '',
      ].map((c, i) => (i === srcAt || i === srcAt + 1 ? c : escapeControl(c))),
    );
  }
  const widths = header.map((_, i) => Math.max(2, ...rows.map((r) => r[i]!.length)) + 3);
  return rows.map((r) =>
    r
      .map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!)))
      .join('')
      .trimEnd(),
  );
}

/**
 * Control characters as visible escapes: C0 (ESC, CR, BS, NUL...), DEL, C1 (a lone 0x9b is a CSI
 * on some terminals) and the bidirectional overrides that reorder what is shown. `\` is escaped
 * too, so an escape in the output always came from us.
 */
export function escapeControl(s: string): string {
  return s.replace(
    /[\\\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g,
    (c) => {
      if (c === '\\') return '\\\\';
      const n = c.charCodeAt(0);
      return n <= 0xff ? `\\x${n.toString(16).padStart(2, '0')}` : `\\u${n.toString(16).padStart(4, '0')}`;
    },
  );
}

const isObj = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * Why a decoded line is not a flow event of the API's shape (`{"flow": {...}, "time": ...}`), or
 * undefined. Checks what the compact format and the filters read, so neither meets a surprise.
 */
export function flowEventProblem(v: unknown): string | undefined {
  if (!isObj(v)) return 'not a JSON object';
  if (typeof v.time !== 'string') return 'no `time`';
  const f = v.flow;
  if (!isObj(f)) return 'no `flow` object';
  if (typeof f.verdict !== 'string') return 'no `flow.verdict`';
  for (const k of ['IP', 'l4', 'source', 'destination'] as const) {
    if (f[k] !== undefined && !isObj(f[k])) return `\`flow.${k}\` is not an object`;
  }
  if (isObj(f.l4)) {
    const layers = Object.values(f.l4);
    if (layers.length !== 1 || !isObj(layers[0])) return '`flow.l4` is not one protocol object';
  }
  for (const k of ['Summary', 'traffic_direction', 'drop_reason_desc'] as const) {
    if (f[k] !== undefined && typeof f[k] !== 'string') return `\`flow.${k}\` is not a string`;
  }
  for (const k of [
    'ingress_allowed_by',
    'egress_allowed_by',
    'ingress_denied_by',
    'egress_denied_by',
  ] as const) {
    if (f[k] !== undefined && !(Array.isArray(f[k]) && (f[k] as unknown[]).every(isObj)))
      return `\`flow.${k}\` is not a list of policies`;
  }
  if (f.event_type !== undefined && !isObj(f.event_type)) return '`flow.event_type` is not an object';
  if (f.is_reply !== undefined && typeof f.is_reply !== 'boolean') return '`flow.is_reply` is not a boolean';
  for (const side of ['source', 'destination'] as const) {
    const ep = f[side];
    if (
      isObj(ep) &&
      ep.labels !== undefined &&
      !(Array.isArray(ep.labels) && ep.labels.every((l) => typeof l === 'string'))
    ) {
      return `\`flow.${side}.labels\` is not a list of strings`;
    }
  }
  return undefined;
}

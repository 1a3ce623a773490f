// One flow per line in the spirit of `hubble observe -o compact`:
//   TIME  SRC:PORT (ns/pod) -> DST:PORT (ns/pod)  VERDICT  (summary)  DIRECTION reason policies
// Peers that are not pods show their reserved entity (world, host, ...) or their identity. Pure.
// Records come from a socket: human output escapes control characters (an ESC in a pod name must
// not repaint the terminal), and records not of the API's shape are refused, not printed as
// `undefined`.

import { summaryOf } from '../flow/record.ts';
import type { Flow, FlowEndpoint, FlowEvent, FlowPolicy } from '../flow/types.ts';

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

/** `Jan  2 15:04:05.000` in UTC (Hubble's compact time, Go's StampMilli). */
export function compactTime(rfc3339: string): string {
  const ms = Date.parse(rfc3339);
  if (Number.isNaN(ms)) return rfc3339;
  const d = new Date(ms);
  const p2 = (n: number): string => String(n).padStart(2, '0');
  return `${MONTHS[d.getUTCMonth()]} ${String(d.getUTCDate()).padStart(2, ' ')} ${p2(d.getUTCHours())}:${p2(d.getUTCMinutes())}:${p2(d.getUTCSeconds())}.${String(d.getUTCMilliseconds()).padStart(3, '0')}`;
}

function who(ep: FlowEndpoint | undefined): string {
  if (ep === undefined) return '?';
  if (ep.pod_name !== undefined) return `${ep.namespace ?? ''}/${ep.pod_name}`;
  const reserved = (ep.labels ?? []).filter((l) => l.startsWith('reserved:')).map((l) => l.slice(9));
  if (reserved.length > 0) return reserved.join(',');
  return ep.identity !== undefined ? `ID:${ep.identity}` : '?';
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

function policyNames(ps: FlowPolicy[] | undefined): string {
  return (ps ?? []).map((p) => (p.namespace !== undefined ? `${p.namespace}/${p.name}` : p.name)).join(', ');
}

/** The why of a record: direction, drop reason, and the policies that allowed or denied it. */
export function reasonOf(f: Flow): string {
  const dir = f.traffic_direction ?? 'TRAFFIC_DIRECTION_UNKNOWN';
  const prefix = dir === 'EGRESS' ? 'egress' : 'ingress';
  const parts: string[] = [dir];
  if (f.verdict === 'DROPPED') {
    parts.push(String(f.drop_reason_desc ?? 'DROP_REASON_UNKNOWN'));
    const denied = policyNames(f[`${prefix}_denied_by`]);
    if (denied) parts.push(`denied by ${denied}`);
  } else {
    const allowed = policyNames(f[`${prefix}_allowed_by`]);
    parts.push(allowed ? `allowed by ${allowed}` : 'no policy (default allow or allow-localhost)');
  }
  return parts.join(' ');
}

export function formatCompact(e: FlowEvent): string {
  const f = e.flow;
  const p = ports(f);
  const src = `${f.IP?.source ?? '?'}${p.src !== undefined ? `:${p.src}` : ''}`;
  const dst = `${f.IP?.destination ?? '?'}${p.dst !== undefined ? `:${p.dst}` : ''}`;
  const summary = f.Summary || summaryOf(f.l4);
  return escapeControl(
    `${compactTime(e.time)}  ${src} (${who(f.source)}) -> ${dst} (${who(f.destination)})  ${f.verdict}  (${summary})  ${reasonOf(f)}`,
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

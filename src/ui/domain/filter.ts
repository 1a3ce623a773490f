// Hubble UI's filter bar: entries `[!][from|to|both:]kind=value` (kinds label, ip, dns, identity,
// pod, port), separated by spaces or commas; every entry must hold (AND), `!` negates one. No
// direction means both: the source or the destination matches. Parse errors say where and why.

import type { Flow, FlowEndpoint } from '../../flow/types.ts';
import { destinationPort, sourcePort, verdictClass } from './fields.ts';

export const FILTER_KINDS = ['label', 'ip', 'dns', 'identity', 'pod', 'port'] as const;
export type FilterKind = (typeof FILTER_KINDS)[number];
export type FilterDirection = 'from' | 'to' | 'both';

export interface FilterEntry {
  kind: FilterKind;
  direction: FilterDirection;
  value: string;
  negative: boolean;
  /** The entry as written, for chips. */
  text: string;
}

export interface FilterParseError {
  /** 0-based offset of the entry in the input. */
  offset: number;
  entry: string;
  message: string;
}

export type FilterParse = { entries: FilterEntry[]; errors: FilterParseError[] };

const DIRECTIONS: readonly string[] = ['from', 'to', 'both'];

export function parseFilterEntry(text: string): FilterEntry | string {
  let s = text;
  let negative = false;
  if (s.startsWith('!')) {
    negative = true;
    s = s.slice(1);
  }
  let direction: FilterDirection = 'both';
  const colon = s.indexOf(':');
  const eq0 = s.indexOf('=');
  if (colon >= 0 && (eq0 < 0 || colon < eq0)) {
    const d = s.slice(0, colon);
    if (!DIRECTIONS.includes(d)) return `"${d}" is not a direction: write from:, to: or both:`;
    direction = d as FilterDirection;
    s = s.slice(colon + 1);
  }
  const eq = s.indexOf('=');
  if (eq < 0) return `no "=": write kind=value with kind one of ${FILTER_KINDS.join(', ')}`;
  const kind = s.slice(0, eq);
  const value = s.slice(eq + 1);
  if (!(FILTER_KINDS as readonly string[]).includes(kind))
    return `"${kind}" is not a filter kind: one of ${FILTER_KINDS.join(', ')}`;
  if (value === '') return `${kind}= needs a value`;
  if (kind === 'port' && !/^\d{1,5}$/.test(value)) return `port=${value}: a port is a number 0-65535`;
  if (kind === 'port' && Number(value) > 65535) return `port=${value}: a port is a number 0-65535`;
  if (kind === 'identity' && !/^\d+$/.test(value)) return `identity=${value}: an identity is a number`;
  return { kind: kind as FilterKind, direction, value, negative, text };
}

export function parseFilter(input: string): FilterParse {
  const out: FilterParse = { entries: [], errors: [] };
  const re = /[^\s,]+/g;
  for (let m = re.exec(input); m !== null; m = re.exec(input)) {
    const r = parseFilterEntry(m[0]);
    if (typeof r === 'string') out.errors.push({ offset: m.index, entry: m[0], message: r });
    else out.entries.push(r);
  }
  return out;
}

function labelMatches(ep: FlowEndpoint | undefined, want: string): boolean {
  const labels = ep?.labels ?? [];
  const eq = want.indexOf('=');
  const wantKey = eq < 0 ? want : want.slice(0, eq);
  const hasSource = wantKey.includes(':');
  for (const l of labels) {
    if (l === want) return true;
    if (hasSource) {
      if (eq < 0 && (l === want || l.startsWith(`${want}=`))) return true;
      continue;
    }
    const colon = l.indexOf(':');
    const kv = colon >= 0 ? l.slice(colon + 1) : l;
    if (kv === want) return true;
    if (eq < 0 && (kv === wantKey || kv.startsWith(`${wantKey}=`))) return true;
  }
  return false;
}

function sameName(a: string, b: string): boolean {
  const n = (s: string) => (s.endsWith('.') ? s.slice(0, -1) : s).toLowerCase();
  return n(a) === n(b);
}

/** Whether one side of the flow matches the entry (negation is applied by the caller). */
function sideMatches(f: Flow, side: 'source' | 'destination', e: FilterEntry): boolean {
  const ep = f[side];
  switch (e.kind) {
    case 'label':
      return labelMatches(ep, e.value);
    case 'ip':
      return (side === 'source' ? f.IP?.source : f.IP?.destination) === e.value;
    case 'identity':
      return ep?.identity !== undefined && String(ep.identity) === e.value;
    case 'pod': {
      // `ns/name` or `name`; a prefix of the pod name matches, as `hubble observe --pod` does.
      if (!ep?.pod_name) return false;
      const slash = e.value.indexOf('/');
      if (slash >= 0)
        return ep.namespace === e.value.slice(0, slash) && ep.pod_name.startsWith(e.value.slice(slash + 1));
      return ep.pod_name.startsWith(e.value);
    }
    case 'dns': {
      const names = side === 'source' ? f.source_names : f.destination_names;
      if ((names ?? []).some((n) => sameName(n, e.value))) return true;
      // A DNS query names the name it asks for on its destination side.
      const q = (f.l7?.dns as { query?: string } | undefined)?.query;
      return side === 'destination' && q !== undefined && sameName(q, e.value);
    }
    case 'port': {
      const p = side === 'source' ? sourcePort(f) : destinationPort(f);
      return p !== undefined && String(p) === e.value;
    }
  }
}

export function entryMatches(f: Flow, e: FilterEntry): boolean {
  const hit =
    e.direction === 'from'
      ? sideMatches(f, 'source', e)
      : e.direction === 'to'
        ? sideMatches(f, 'destination', e)
        : sideMatches(f, 'source', e) || sideMatches(f, 'destination', e);
  return e.negative ? !hit : hit;
}

export type VerdictFilter = 'all' | 'forwarded' | 'dropped' | 'audit';

export interface FlowFilter {
  entries: readonly FilterEntry[];
  verdict: VerdictFilter;
}

export function flowMatches(f: Flow, filter: FlowFilter): boolean {
  if (filter.verdict !== 'all' && verdictClass(f.verdict) !== filter.verdict) return false;
  for (const e of filter.entries) if (!entryMatches(f, e)) return false;
  return true;
}

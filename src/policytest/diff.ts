// `seawall diff A B`: how connectivity between the same endpoints changes from policy set A to
// policy set B. For each ordered endpoint pair and protocol, the port space is cut where any
// MapState entry of either side (the source's egress, the destination's ingress, in A or in B)
// starts or ends; inside one piece every port meets the same entries, so one `decide` per piece
// and policy set answers for all of it. Pieces with the same answers are merged back into ranges.
// Where both allow through a proxy, the L7 rules (from the redirect entries) are compared rule
// by rule.

import type {
  EndpointPolicy,
  FlowProtocol,
  FlowRequest,
  L7RuleSet,
  PolicyEngineAPI,
  Verdict,
} from '../policy/types.ts';
import { PROTO } from '../policy/types.ts';
import type { PortRuleDNS, PortRuleHTTP, PortRuleKafka } from '../policy-api/types.ts';
import { peerForEndpoint } from './parse.ts';
import type { TestEndpoint } from './types.ts';

export type ChangeKind = 'added' | 'removed' | 'changed';

/** What one policy set says about one piece of port space. */
export interface Access {
  allowed: boolean;
  /** L7 rules per direction that proxies the connection ("egress http: GET /x"), sorted. */
  l7: string[];
}

export interface ConnectionChange {
  kind: ChangeKind;
  from: string;
  to: string;
  protocol: FlowProtocol;
  /** "8080", "8000-8999", "all" (1-65535), or the ICMP type for ICMP. */
  ports: string;
  before: Access;
  after: Access;
  /** For `changed`: L7 rules only in B, only in A. */
  l7Added?: string[];
  l7Removed?: string[];
}

export interface ConnectivityDiff {
  a: string;
  b: string;
  endpoints: number;
  pairs: number;
  changes: ConnectionChange[];
}

const L4: ReadonlyArray<{ protocol: FlowProtocol; proto: number }> = [
  { protocol: 'TCP', proto: PROTO.TCP },
  { protocol: 'UDP', proto: PROTO.UDP },
  { protocol: 'SCTP', proto: PROTO.SCTP },
];

function epName(e: TestEndpoint): string {
  return e.namespace !== undefined && !e.external ? `${e.namespace}/${e.name}` : e.name;
}

export function diffConnectivity(
  a: { label: string; engine: PolicyEngineAPI },
  b: { label: string; engine: PolicyEngineAPI },
  endpoints: readonly TestEndpoint[],
): ConnectivityDiff {
  const eps = [...endpoints].sort((x, y) => cmp(epName(x), epName(y)));
  const changes: ConnectionChange[] = [];
  let pairs = 0;
  const policyOf = (engine: PolicyEngineAPI, ep: TestEndpoint): EndpointPolicy | undefined =>
    ep.external || ep.namespace === undefined ? undefined : engine.endpointPolicy(ep.namespace, ep.name);
  const pols = new Map<TestEndpoint, [EndpointPolicy | undefined, EndpointPolicy | undefined]>();
  for (const e of eps) pols.set(e, [policyOf(a.engine, e), policyOf(b.engine, e)]);
  for (const src of eps) {
    for (const dst of eps) {
      if (src === dst) continue;
      // Between two outside addresses no Cilium policy applies.
      if ((src.external || src.namespace === undefined) && (dst.external || dst.namespace === undefined))
        continue;
      pairs++;
      const [sa, sb] = pols.get(src)!;
      const [da, db] = pols.get(dst)!;
      const base = { src: peerForEndpoint(src), dst: peerForEndpoint(dst) };
      for (const { protocol, proto } of L4) {
        const cuts = new Set<number>([1, 65536]);
        for (const [p, dir] of [
          [sa, 'EGRESS'],
          [sb, 'EGRESS'],
          [da, 'INGRESS'],
          [db, 'INGRESS'],
        ] as const) {
          for (const e of p?.entries ?? []) {
            if (e.key.direction !== dir || (e.key.proto !== 0 && e.key.proto !== proto)) continue;
            cuts.add(Math.max(1, e.key.portLo));
            cuts.add(e.key.portHi + 1);
          }
        }
        const points = [...cuts].filter((c) => c >= 1 && c <= 65536).sort((x, y) => x - y);
        let run: { lo: number; hi: number; before: Access; after: Access } | undefined;
        const flush = (): void => {
          if (run && !sameAccess(run.before, run.after)) {
            changes.push(
              change(epName(src), epName(dst), protocol, portText(run.lo, run.hi), run.before, run.after),
            );
          }
          run = undefined;
        };
        for (let i = 0; i + 1 < points.length; i++) {
          const lo = points[i]!;
          const hi = points[i + 1]! - 1;
          const req: FlowRequest = { ...base, protocol, dport: lo };
          const before = access(a.engine, req, sa, da);
          const after = access(b.engine, req, sb, db);
          if (run && sameAccess(run.before, before) && sameAccess(run.after, after)) run.hi = hi;
          else {
            flush();
            run = { lo, hi, before, after };
          }
        }
        flush();
      }
      // ICMP echo, the probe `seawall matrix` uses too.
      for (const [protocol, type, family] of [
        ['ICMP', 8, 'IPv4'],
        ['ICMPv6', 128, 'IPv6'],
      ] as const) {
        const req: FlowRequest = { ...base, protocol, icmp: { type, family } };
        const before = access(a.engine, req, sa, da);
        const after = access(b.engine, req, sb, db);
        if (!sameAccess(before, after))
          changes.push(change(epName(src), epName(dst), protocol, `type ${type}`, before, after));
      }
    }
  }
  return { a: a.label, b: b.label, endpoints: eps.length, pairs, changes };
}

function change(
  from: string,
  to: string,
  protocol: FlowProtocol,
  ports: string,
  before: Access,
  after: Access,
): ConnectionChange {
  const kind: ChangeKind =
    before.allowed && !after.allowed ? 'removed' : !before.allowed ? 'added' : 'changed';
  const c: ConnectionChange = { kind, from, to, protocol, ports, before, after };
  if (kind === 'changed') {
    c.l7Added = after.l7.filter((r) => !before.l7.includes(r));
    c.l7Removed = before.l7.filter((r) => !after.l7.includes(r));
  }
  return c;
}

function portText(lo: number, hi: number): string {
  if (lo === 1 && hi === 65535) return 'all';
  return lo === hi ? String(lo) : `${lo}-${hi}`;
}

function sameAccess(x: Access, y: Access): boolean {
  return x.allowed === y.allowed && x.l7.length === y.l7.length && x.l7.every((r, i) => r === y.l7[i]);
}

/**
 * The engine's answer for a connection (no L7 request), with the L7 rules the proxy would apply:
 * those of the redirect entries the connection meets in each direction's MapState.
 */
function access(
  engine: PolicyEngineAPI,
  req: FlowRequest,
  src: EndpointPolicy | undefined,
  dst: EndpointPolicy | undefined,
): Access {
  const v: Verdict = engine.decide(req, 0);
  if (!v.allowed) return { allowed: false, l7: [] };
  const l7: string[] = [];
  if (src?.egress.enforced) l7.push(...rulesAt(src, 'EGRESS', v.dstIdentity, req).map((r) => `egress ${r}`));
  if (dst?.ingress.enforced)
    l7.push(...rulesAt(dst, 'INGRESS', v.srcIdentity, req).map((r) => `ingress ${r}`));
  return { allowed: true, l7: [...new Set(l7)].sort(cmp) };
}

function rulesAt(p: EndpointPolicy, dir: 'INGRESS' | 'EGRESS', peer: number, req: FlowRequest): string[] {
  if (req.dport === undefined) return [];
  const proto = req.protocol === 'TCP' ? PROTO.TCP : req.protocol === 'UDP' ? PROTO.UDP : PROTO.SCTP;
  const port = req.dport;
  const hits = p.entries.filter(
    (e) =>
      e.verdict !== 'deny' &&
      e.key.direction === dir &&
      (e.key.identity === 0 || e.key.identity === peer) &&
      (e.key.proto === 0 || e.key.proto === proto) &&
      e.key.portLo <= port &&
      port <= e.key.portHi,
  );
  const redirects = hits.filter((e) => e.verdict === 'redirect');
  if (redirects.length === 0) return [];
  // Cilium merges an allow without L7 for the same connection as an L7 wildcard.
  if (hits.some((e) => e.verdict === 'allow'))
    return [`${redirects[0]!.l7?.parser ?? 'l7'}: any request (an L4 allow voids the L7 rules)`];
  return redirects.flatMap((e) => (e.l7 ? ruleTexts(e.l7) : []));
}

export function ruleTexts(s: L7RuleSet): string[] {
  switch (s.parser) {
    case 'http':
      return s.rules.length === 0 ? ['http: any request'] : s.rules.map((r) => `http: ${httpText(r)}`);
    case 'kafka':
      return s.rules.map((r) => `kafka: ${kafkaText(r)}`);
    case 'dns':
      return s.rules.map((r) => `dns: ${dnsText(r)}`);
  }
}

function httpText(r: PortRuleHTTP): string {
  const parts = [r.method ?? '*', r.path ?? '*'];
  if (r.host !== undefined) parts.push(`host ${r.host}`);
  for (const h of r.headers ?? []) parts.push(`header ${h}`);
  for (const h of r.headerMatches ?? [])
    parts.push(`headerMatch ${h.name}${h.value !== undefined ? `=${h.value}` : ''}`);
  return parts.join(' ');
}

function kafkaText(r: PortRuleKafka): string {
  const parts: string[] = [];
  for (const k of ['role', 'apiKey', 'apiVersion', 'clientID', 'topic'] as const) {
    if (r[k] !== undefined) parts.push(`${k}=${r[k]}`);
  }
  return parts.length > 0 ? parts.join(' ') : 'any';
}

function dnsText(r: PortRuleDNS): string {
  return r.matchName !== undefined ? `matchName ${r.matchName}` : `matchPattern ${r.matchPattern ?? ''}`;
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

// ---------------------------------------------------------------- formats

export type DiffFormat = 'text' | 'markdown' | 'json' | 'dot';

const SIGN: Record<ChangeKind, string> = { added: '+', removed: '-', changed: '~' };

function accessText(x: Access): string {
  if (!x.allowed) return 'denied';
  return x.l7.length > 0 ? 'allowed (L7 rules)' : 'allowed';
}

function portLabel(c: ConnectionChange): string {
  if (c.protocol === 'ICMP' || c.protocol === 'ICMPv6') return `${c.protocol} ${c.ports}`;
  return c.ports === 'all' ? `all ${c.protocol} ports` : `${c.ports}/${c.protocol}`;
}

function summary(d: ConnectivityDiff): string {
  const n = (k: ChangeKind) => d.changes.filter((c) => c.kind === k).length;
  if (d.changes.length === 0) return `no change in connectivity (${d.endpoints} endpoints, ${d.pairs} pairs)`;
  return `${d.changes.length} change${d.changes.length === 1 ? '' : 's'}: ${n('added')} added, ${n('removed')} removed, ${n('changed')} changed (${d.endpoints} endpoints, ${d.pairs} pairs)`;
}

function l7Lines(c: ConnectionChange, indent: string): string[] {
  const out: string[] = [];
  if (c.kind === 'changed') {
    for (const r of c.l7Added ?? []) out.push(`${indent}+ ${r}`);
    for (const r of c.l7Removed ?? []) out.push(`${indent}- ${r}`);
  } else {
    const x = c.kind === 'added' ? c.after : c.before;
    for (const r of x.l7) out.push(`${indent}${SIGN[c.kind]} ${r}`);
  }
  return out;
}

export function formatDiff(d: ConnectivityDiff, format: DiffFormat): string {
  switch (format) {
    case 'json':
      return `${JSON.stringify({ ...d, equal: d.changes.length === 0 }, null, 2)}\n`;
    case 'markdown': {
      const out = [`### Connectivity: \`${d.a}\` → \`${d.b}\``, '', summary(d)];
      if (d.changes.length > 0) {
        out.push('', '| | from | to | port | before | after |', '|:-:|---|---|---|---|---|');
        for (const c of d.changes) {
          // A `|` in a rule (a regex alternation) would end the table cell.
          const rules = l7Lines(c, '').map((l) => `\`${l.replace(/\|/g, '\\|')}\``);
          const after =
            rules.length > 0 ? `${accessText(c.after)}<br>${rules.join('<br>')}` : accessText(c.after);
          out.push(
            `| ${SIGN[c.kind]} | ${c.from} | ${c.to} | ${portLabel(c)} | ${accessText(c.before)} | ${after} |`,
          );
        }
      }
      return `${out.join('\n')}\n`;
    }
    case 'dot': {
      const colour: Record<ChangeKind, string> = { added: 'darkgreen', removed: 'red', changed: 'orange' };
      const out = ['digraph connectivity_diff {', `  label=${JSON.stringify(`${d.a} → ${d.b}`)};`];
      const nodes = [...new Set(d.changes.flatMap((c) => [c.from, c.to]))].sort(cmp);
      for (const n of nodes) out.push(`  ${JSON.stringify(n)};`);
      for (const c of d.changes) {
        const style = c.kind === 'removed' ? ', style=dashed' : '';
        out.push(
          `  ${JSON.stringify(c.from)} -> ${JSON.stringify(c.to)} [label=${JSON.stringify(`${SIGN[c.kind]} ${portLabel(c)}`)}, color=${colour[c.kind]}${style}];`,
        );
      }
      out.push('}');
      return `${out.join('\n')}\n`;
    }
    default: {
      const out = [`connectivity diff ${d.a} → ${d.b}`];
      for (const c of d.changes) {
        out.push(
          `${SIGN[c.kind]} ${c.from} → ${c.to} ${portLabel(c)}: ${accessText(c.before)} → ${accessText(c.after)}`,
        );
        out.push(...l7Lines(c, '    '));
      }
      out.push(summary(d));
      return `${out.join('\n')}\n`;
    }
  }
}

// Warnings that need more than one policy in view (for `seawall validate`):
//  - fqdn-without-dns-rule: toFQDNs only learns IPs from DNS answers that passed a DNS L7 rule;
//    when no rule selecting overlapping subjects has one, the toFQDNs rule allows nothing.
//  - l7-voided-by-l4-allow: an allow without L7 rules for the same peer and port makes the L7
//    rules of another entry ineffective (any matching entry without L7 allows every request).
//  - conflicting-l7-parsers: two L7 types on the same selector and port cannot be merged.
// Everything is decided statically from selectors: two selectors overlap unless provably disjoint.

import type { Issue, SourcePos } from '../policy-api/issue.ts';
import type {
  EndpointSelector,
  K8sLabelSelector,
  L7Rules,
  NetworkPolicy,
  PolicyObject,
  PortProtocol,
  PortRule,
  Rule,
} from '../policy-api/types.ts';
import { EGRESS_PEERS, INGRESS_PEERS } from '../policy-api/validate-rule.ts';

type Direction = 'ingress' | 'egress';
type Parser = 'http' | 'kafka' | 'dns' | 'l7proto';

interface Requirement {
  key: string;
  op: 'In' | 'NotIn' | 'Exists' | 'DoesNotExist';
  values: string[];
}

interface Subject {
  /** Host-firewall rules select nodes, not pods. */
  node: boolean;
  reqs: Requirement[];
  key: string;
}

interface PortSpec {
  /** Number range, or a named port. */
  lo: number;
  hi: number;
  named?: string;
  /** undefined = ANY (TCP, UDP, SCTP). */
  proto?: string;
}

/** One PortRule (or a peer-only entry) of one allow entry. */
interface Slot {
  policy: PolicyObject;
  subject: Subject;
  dir: Direction;
  /** Canonical peer; '' = any peer (toPorts without L3). */
  peer: string;
  /** undefined = all ports (entry without toPorts). */
  ports?: PortSpec[];
  parser?: Parser;
  pos: SourcePos;
  path: string;
}

interface FQDNUse {
  policy: PolicyObject;
  subject: Subject;
  pos: SourcePos;
  path: string;
}

const NS_KEY = 'io.kubernetes.pod.namespace';
const PEER_FIELDS: Record<Direction, readonly string[]> = {
  ingress: [...INGRESS_PEERS, 'fromRequires'],
  egress: [...EGRESS_PEERS, 'toRequires'],
};

export function crossPolicyLint(policies: readonly PolicyObject[]): Issue[] {
  const slots: Slot[] = [];
  const fqdns: FQDNUse[] = [];
  for (const p of policies) collect(p, slots, fqdns);
  const issues: Issue[] = [];
  lintFQDN(fqdns, slots, issues);
  lintVoided(slots, issues);
  lintConflicts(slots, issues);
  return issues.sort(
    (a, b) => a.pos.file.localeCompare(b.pos.file) || a.pos.line - b.pos.line || a.pos.column - b.pos.column,
  );
}

// ---------------------------------------------------------------- collection

function collect(p: PolicyObject, slots: Slot[], fqdns: FQDNUse[]): void {
  if (p.kind === 'NetworkPolicy') {
    collectKNP(p, slots);
    return;
  }
  const ns = p.kind === 'CiliumNetworkPolicy' ? (p.metadata.namespace ?? 'default') : undefined;
  const rules: Array<[Rule, string]> = [];
  if (p.spec) rules.push([p.spec, 'spec']);
  (p.specs ?? []).forEach((r, i) => {
    rules.push([r, `specs[${i}]`]);
  });
  for (const [rule, base] of rules) {
    const node = rule.nodeSelector !== undefined;
    const sel = rule.nodeSelector ?? rule.endpointSelector;
    if (!sel) continue;
    const subject = makeSubject(sel, node ? undefined : ns, node);
    for (const dir of ['ingress', 'egress'] as const) {
      (rule[dir] ?? []).forEach((entry, ei) => {
        const e = entry as unknown as Record<string, unknown>;
        const path = `${base}.${dir}[${ei}]`;
        const peer = peerKey(e, dir, ns);
        if (dir === 'egress' && Array.isArray(e.toFQDNs) && e.toFQDNs.length > 0) {
          fqdns.push({
            policy: p,
            subject,
            pos: (e.toFQDNs[0] as { pos: SourcePos }).pos,
            path: `${path}.toFQDNs`,
          });
        }
        const toPorts = e.toPorts as PortRule[] | undefined;
        if (toPorts === undefined) {
          // Peers without toPorts allow every port; no peers and no toPorts allows nothing.
          if (peer !== '') slots.push({ policy: p, subject, dir, peer, pos: entry.pos, path });
          return;
        }
        toPorts.forEach((pr, pi) => {
          const parser = parserOf(pr.rules);
          const slot: Slot = {
            policy: p,
            subject,
            dir,
            peer,
            pos: pr.rules?.pos ?? pr.pos,
            path: `${path}.toPorts[${pi}]${pr.rules ? '.rules' : ''}`,
          };
          if (parser) slot.parser = parser;
          const ports = portSpecs(pr.ports);
          if (ports) slot.ports = ports;
          slots.push(slot);
        });
      });
    }
  }
}

function collectKNP(p: NetworkPolicy, slots: Slot[]): void {
  const ns = p.metadata.namespace ?? 'default';
  const subject = makeSubject(p.spec.podSelector, ns, false);
  const sections: Array<[Direction, Array<{ pos: SourcePos; ports?: unknown[]; peers?: unknown[] }>]> = [
    [
      'ingress',
      (p.spec.ingress ?? []).map((r) => ({ pos: r.pos, ...opt('ports', r.ports), ...opt('peers', r.from) })),
    ],
    [
      'egress',
      (p.spec.egress ?? []).map((r) => ({ pos: r.pos, ...opt('ports', r.ports), ...opt('peers', r.to) })),
    ],
  ];
  for (const [dir, entries] of sections) {
    entries.forEach((e, i) => {
      // KNP: absent or empty peers = every peer; absent or empty ports = every port.
      const peer = e.peers && e.peers.length > 0 ? `knp|${ns}|${canon(e.peers)}` : '';
      const slot: Slot = { policy: p, subject, dir, peer, pos: e.pos, path: `spec.${dir}[${i}]` };
      if (e.ports && e.ports.length > 0) {
        slot.ports = (e.ports as Array<{ port?: number | string; endPort?: number; protocol?: string }>).map(
          (pp) =>
            portSpec(pp.port === undefined ? undefined : String(pp.port), pp.endPort, pp.protocol ?? 'TCP'),
        );
      }
      slots.push(slot);
    });
  }
}

function opt<K extends string, V>(k: K, v: V | undefined): { [P in K]?: V } {
  return (v === undefined ? {} : { [k]: v }) as { [P in K]?: V };
}

function parserOf(r: L7Rules | undefined): Parser | undefined {
  if (!r) return undefined;
  if (r.http) return 'http';
  if (r.kafka) return 'kafka';
  if (r.dns) return 'dns';
  if (r.l7proto !== undefined) return 'l7proto';
  return undefined;
}

function peerKey(e: Record<string, unknown>, dir: Direction, ns: string | undefined): string {
  const parts: Record<string, unknown> = {};
  for (const f of PEER_FIELDS[dir]) if (e[f] !== undefined) parts[f] = e[f];
  if (Object.keys(parts).length === 0) return '';
  // The same selector means different pods in different namespaces (CNP scoping).
  return `${ns ?? '*'}|${canon(parts)}`;
}

function portSpecs(ports: PortProtocol[] | undefined): PortSpec[] | undefined {
  if (!ports || ports.length === 0) return undefined;
  return ports.map((p) => portSpec(p.port, p.endPort, p.protocol));
}

function portSpec(
  port: string | undefined,
  endPort: number | undefined,
  proto: string | undefined,
): PortSpec {
  const pr = proto === undefined || proto === 'ANY' ? undefined : proto;
  const base = pr === undefined ? {} : { proto: pr };
  if (port === undefined || port === '0') return { lo: 0, hi: 65535, ...base };
  if (/^\d+$/.test(port)) {
    const lo = Number(port);
    return { lo, hi: endPort !== undefined && endPort > lo ? endPort : lo, ...base };
  }
  return { lo: -1, hi: -1, named: port.toLowerCase(), ...base };
}

function portsOverlap(a: PortSpec[] | undefined, b: PortSpec[] | undefined): boolean {
  if (a === undefined || b === undefined) return true;
  return a.some((x) => b.some((y) => portOverlap(x, y)));
}

function portOverlap(x: PortSpec, y: PortSpec): boolean {
  if (x.proto !== undefined && y.proto !== undefined && x.proto !== y.proto) return false;
  if (x.named !== undefined || y.named !== undefined) {
    if (x.named !== undefined && y.named !== undefined) return x.named === y.named;
    // A named port against a number or range: it may resolve into the range; all-ports covers it.
    const other = x.named !== undefined ? y : x;
    return other.lo === 0 && other.hi === 65535;
  }
  return x.lo <= y.hi && y.lo <= x.hi;
}

/** True when every port of `inner` is covered by `outer` (so an allow on `outer` voids it). */
function portsCover(outer: PortSpec[] | undefined, inner: PortSpec[] | undefined): boolean {
  if (outer === undefined) return true;
  if (inner === undefined) return false;
  return inner.every((i) =>
    outer.some((o) => {
      if (o.proto !== undefined && o.proto !== i.proto) return false;
      if (o.named !== undefined || i.named !== undefined)
        return o.named === i.named || (o.lo === 0 && o.hi === 65535);
      return o.lo <= i.lo && i.hi <= o.hi;
    }),
  );
}

// ---------------------------------------------------------------- selectors

function makeSubject(
  sel: EndpointSelector | K8sLabelSelector,
  ns: string | undefined,
  node: boolean,
): Subject {
  const reqs: Requirement[] = [];
  for (const [k, v] of Object.entries(sel.matchLabels ?? {}))
    reqs.push({ key: bareKey(k), op: 'In', values: [v] });
  for (const e of sel.matchExpressions ?? []) {
    reqs.push({ key: bareKey(e.key), op: e.operator, values: [...(e.values ?? [])].sort() });
  }
  // A namespaced policy only ever selects pods of its namespace (a written one is overwritten).
  if (ns !== undefined) {
    const i = reqs.findIndex((r) => r.key === NS_KEY);
    if (i >= 0) reqs.splice(i, 1);
    reqs.push({ key: NS_KEY, op: 'In', values: [ns] });
  }
  reqs.sort((a, b) => a.key.localeCompare(b.key) || a.op.localeCompare(b.op));
  return { node, reqs, key: `${node ? 'node' : 'pod'}|${JSON.stringify(reqs)}` };
}

function bareKey(k: string): string {
  if (k.startsWith('k8s:')) return k.slice(4);
  if (k.startsWith('any:')) return k.slice(4);
  return k;
}

/** Could one endpoint be selected by both? False only when provably disjoint. */
export function subjectsOverlap(a: Subject, b: Subject): boolean {
  if (a.node !== b.node) return false;
  for (const x of a.reqs) {
    for (const y of b.reqs) {
      if (x.key === y.key && requirementsDisjoint(x, y)) return false;
    }
  }
  // Within one selector too (e.g. In [a] and In [b] on one key written twice).
  return true;
}

function requirementsDisjoint(x: Requirement, y: Requirement): boolean {
  const one = (p: Requirement, q: Requirement): boolean => {
    if (p.op === 'In' && q.op === 'In') return !p.values.some((v) => q.values.includes(v));
    if (p.op === 'In' && q.op === 'NotIn') return p.values.every((v) => q.values.includes(v));
    if (p.op === 'In' && q.op === 'DoesNotExist') return true;
    if (p.op === 'Exists' && q.op === 'DoesNotExist') return true;
    return false;
  };
  return one(x, y) || one(y, x);
}

// ---------------------------------------------------------------- the checks

function lintFQDN(uses: FQDNUse[], slots: Slot[], issues: Issue[]): void {
  const dnsSubjects = slots.filter((s) => s.dir === 'egress' && s.parser === 'dns').map((s) => s.subject);
  for (const u of uses) {
    if (dnsSubjects.some((s) => subjectsOverlap(s, u.subject))) continue;
    issues.push({
      code: 'fqdn-without-dns-rule',
      severity: 'warning',
      path: u.path,
      pos: u.pos,
      object: objectName(u.policy),
      message:
        'toFQDNs learns IPs only from DNS answers that pass a DNS L7 rule (toPorts rules.dns on port 53), and no egress rule of any policy selecting these endpoints has one: this rule allows nothing. Add an egress rule to the DNS server with rules: {dns: [{matchPattern: "*"}]}.',
    });
  }
}

function lintVoided(slots: Slot[], issues: Issue[]): void {
  for (const a of slots) {
    if (!a.parser) continue;
    const voider = slots.find(
      (b) =>
        b !== a &&
        !b.parser &&
        b.dir === a.dir &&
        (b.peer === '' || b.peer === a.peer) &&
        portsCover(b.ports, a.ports) &&
        subjectsOverlap(a.subject, b.subject),
    );
    if (!voider) continue;
    const where = `${objectName(voider.policy)} ${voider.path} (${voider.pos.file}:${voider.pos.line}:${voider.pos.column})`;
    const peer = voider.peer === '' ? 'every peer' : 'the same peer';
    issues.push({
      code: 'l7-voided-by-l4-allow',
      severity: 'warning',
      path: a.path,
      pos: a.pos,
      object: objectName(a.policy),
      message:
        `these ${a.parser} rules restrict nothing: ${where} allows ${peer} on this port without L7 rules, and any matching allow without L7 rules lets every request through` +
        (a.parser === 'dns'
          ? ' (queries are still proxied, so toFQDNs rules still learn their answers)'
          : ' (requests are still proxied and visible)'),
    });
  }
}

function lintConflicts(slots: Slot[], issues: Issue[]): void {
  const reported = new Set<Slot>();
  for (let i = 0; i < slots.length; i++) {
    const a = slots[i]!;
    if (!a.parser || reported.has(a)) continue;
    for (let j = i + 1; j < slots.length; j++) {
      const b = slots[j]!;
      if (!b.parser || b.parser === a.parser || b.dir !== a.dir || b.peer !== a.peer) continue;
      if (!a.ports || !b.ports || !portsOverlap(a.ports, b.ports)) continue;
      if (!subjectsOverlap(a.subject, b.subject)) continue;
      // Certain when both rules select the same endpoints; possible when their selectors overlap.
      const same = a.subject.key === b.subject.key;
      reported.add(b);
      issues.push({
        code: 'conflicting-l7-parsers',
        severity: same ? 'error' : 'warning',
        path: b.path,
        pos: b.pos,
        object: objectName(b.policy),
        message: `${b.parser} rules here and ${a.parser} rules at ${objectName(a.policy)} ${a.path} (${a.pos.file}:${a.pos.line}:${a.pos.column}) apply to the same peer and port${same ? '' : ' for endpoints both select'}; Cilium cannot merge conflicting L7 parsers and rejects the policy`,
      });
    }
  }
}

function objectName(p: PolicyObject): string {
  return p.metadata.namespace ? `${p.metadata.namespace}/${p.metadata.name}` : p.metadata.name;
}

/** Canonical JSON without source positions, keys sorted: equal selectors, equal strings. */
function canon(v: unknown): string {
  return JSON.stringify(strip(v));
}

function strip(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(strip);
  if (v && typeof v === 'object') {
    const out: Record<string, unknown> = {};
    for (const k of Object.keys(v).sort()) {
      if (k === 'pos') continue;
      out[k] = strip((v as Record<string, unknown>)[k]);
    }
    return out;
  }
  return v;
}

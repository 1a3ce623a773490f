// `seawall generate`: CiliumNetworkPolicies that allow exactly the traffic a flow log shows.
// One policy per workload seen as a pod (its selector labels, not per-pod hashes), with both an
// ingress and an egress section so that everything else is default-denied; peers are workloads,
// entities, /32 CIDRs or the FQDNs Hubble named, with ports merged per peer and HTTP/DNS rules
// where the log has L7 records. Dropped records and replies never produce an allow.

import { isIP } from 'node:net';
import {
  destinationNames,
  dnsQueryOf,
  httpOf,
  isRecordedRequest,
  l4Of,
  type Side,
  sideOf,
} from '../flow/replay.ts';
import type { Flow } from '../flow/types.ts';
import { toYAML, withComment, type YObject, type YValue } from './yaml.ts';

export interface GenerateOptions {
  /** Replace id-like path segments (numbers, UUIDs, long hex) with a pattern. */
  generalizePaths?: boolean;
}

export interface GeneratedPolicy {
  namespace: string;
  name: string;
  yaml: string;
}

export interface GenerateResult {
  policies: GeneratedPolicy[];
  /** Records passed over and why (sorted, with counts). */
  warnings: string[];
  /** Records that went into some rule. */
  used: number;
  total: number;
}

// Labels that differ per pod of one workload (or per rollout): never selector material.
const PER_POD_KEYS = new Set([
  'pod-template-hash',
  'controller-revision-hash',
  'pod-template-generation',
  'statefulset.kubernetes.io/pod-name',
  'apps.kubernetes.io/pod-index',
  'controller-uid',
  'batch.kubernetes.io/controller-uid',
  'job-name',
  'batch.kubernetes.io/job-name',
  'batch.kubernetes.io/job-completion-index',
  'app.kubernetes.io/version',
  'helm.sh/chart',
  'version',
]);
// The labels workloads are usually selected by; when a pod has any, only these are kept.
const SELECTOR_KEYS = new Set(['app', 'k8s-app', 'name', 'component', 'tier', 'role']);

export function selectorLabels(labels: Record<string, string>): Record<string, string> {
  const kept = Object.entries(labels).filter(([k]) => !PER_POD_KEYS.has(k));
  const preferred = kept.filter(([k]) => SELECTOR_KEYS.has(k) || k.startsWith('app.kubernetes.io/'));
  const use = preferred.length > 0 ? preferred : kept;
  return Object.fromEntries(use.sort(([a], [b]) => cmp(a, b)));
}

interface Workload {
  key: string;
  namespace: string;
  selector: Record<string, string>;
  pods: Set<string>;
  name: string;
  ingress: Map<string, PeerAgg>;
  egress: Map<string, PeerAgg>;
  records: number;
}

type PeerSpec =
  | { kind: 'workload'; wl: Workload }
  | { kind: 'entity'; entity: string }
  | { kind: 'cidr'; cidr: string }
  | { kind: 'fqdn'; names: string[] };

interface PortAgg {
  protocol: string;
  port: number;
  count: number;
  http: Map<string, { method: string; path: string; count: number }>;
  dns: Map<string, number>;
}

interface PeerAgg {
  key: string;
  peer: PeerSpec;
  count: number;
  ports: Map<string, PortAgg>;
  icmp: Map<string, { type: number; family: 'IPv4' | 'IPv6'; count: number }>;
}

const KUBE_DNS: Record<string, string> = {
  'k8s:io.kubernetes.pod.namespace': 'kube-system',
  'k8s:k8s-app': 'kube-dns',
};

export function generatePolicies(flows: readonly Flow[], opts: GenerateOptions = {}): GenerateResult {
  const workloads = new Map<string, Workload>();
  const skipped = new Map<string, number>();
  const skip = (why: string): void => {
    skipped.set(why, (skipped.get(why) ?? 0) + 1);
  };
  const workloadOf = (s: Side & { kind: 'pod' }): Workload | undefined => {
    const selector = selectorLabels(s.labels);
    if (Object.keys(selector).length === 0) return undefined;
    const key = `${s.namespace}\u0000${JSON.stringify(selector)}`;
    let w = workloads.get(key);
    if (!w) {
      w = {
        key,
        namespace: s.namespace,
        selector,
        pods: new Set(),
        name: '',
        ingress: new Map(),
        egress: new Map(),
        records: 0,
      };
      workloads.set(key, w);
    }
    w.pods.add(s.name);
    return w;
  };
  let used = 0;
  for (const f of flows) {
    if (!isRecordedRequest(f)) {
      skip(
        f.is_reply === true || f.l7?.type === 'RESPONSE'
          ? 'replies (allowed with their request)'
          : `verdict ${f.verdict} (not traffic that passed)`,
      );
      continue;
    }
    const l4 = l4Of(f);
    if (!l4) {
      skip('no destination port or ICMP type');
      continue;
    }
    const src = sideOf(f.source, f.IP?.source);
    const dst = sideOf(f.destination, f.IP?.destination);
    const srcW = src.kind === 'pod' ? workloadOf(src) : undefined;
    const dstW = dst.kind === 'pod' ? workloadOf(dst) : undefined;
    if (src.kind === 'pod' && !srcW)
      skip(`source pod ${src.namespace}/${src.name} has no labels to select it by`);
    if (dst.kind === 'pod' && !dstW)
      skip(`destination pod ${dst.namespace}/${dst.name} has no labels to select it by`);
    let any = false;
    // Egress of the source workload toward the destination.
    if (srcW) {
      const peer = egressPeer(dst, dstW, f);
      // A pod without labels was reported above, once.
      if ('why' in peer) {
        if (dst.kind !== 'pod') skip(`destination: ${peer.why}`);
      } else {
        addTo(srcW.egress, peer, l4, f, opts, true);
        srcW.records++;
        any = true;
      }
    }
    if (dstW) {
      const peer = ingressPeer(src, srcW);
      if ('why' in peer) {
        if (src.kind !== 'pod') skip(`source: ${peer.why}`);
      } else {
        addTo(dstW.ingress, peer, l4, f, opts, false);
        dstW.records++;
        any = true;
      }
    }
    if (any) used++;
    else if (src.kind !== 'pod' && dst.kind !== 'pod') skip('neither side is a pod');
  }
  for (const w of workloads.values()) addDNSForFQDNs(w);
  nameWorkloads([...workloads.values()]);
  const policies = [...workloads.values()]
    .sort((a, b) => cmp(a.namespace, b.namespace) || cmp(a.name, b.name))
    .map((w) => ({ namespace: w.namespace, name: w.name, yaml: renderPolicy(w) }));
  const warnings = [...skipped.entries()]
    .sort(([a], [b]) => cmp(a, b))
    .map(([why, n]) => `${n} record${n === 1 ? '' : 's'} passed over: ${why}`);
  return { policies, warnings, used, total: flows.length };
}

function egressPeer(dst: Side, dstW: Workload | undefined, f: Flow): PeerSpec | { why: string } {
  switch (dst.kind) {
    case 'pod':
      return dstW
        ? { kind: 'workload', wl: dstW }
        : { why: `pod ${dst.namespace}/${dst.name} has no labels to select it by` };
    case 'entity':
      return { kind: 'entity', entity: dst.entity };
    case 'external': {
      const names = destinationNames(f);
      if (names.length > 0) return { kind: 'fqdn', names: [...new Set(names)].sort(cmp) };
      return { kind: 'cidr', cidr: hostCIDR(dst.ip) };
    }
    default:
      return { why: dst.why };
  }
}

function ingressPeer(src: Side, srcW: Workload | undefined): PeerSpec | { why: string } {
  switch (src.kind) {
    case 'pod':
      return srcW
        ? { kind: 'workload', wl: srcW }
        : { why: `pod ${src.namespace}/${src.name} has no labels to select it by` };
    case 'entity':
      return { kind: 'entity', entity: src.entity };
    case 'external':
      return { kind: 'cidr', cidr: hostCIDR(src.ip) };
    default:
      return { why: src.why };
  }
}

function hostCIDR(ip: string): string {
  return isIP(ip) === 6 ? `${ip}/128` : `${ip}/32`;
}

function peerKey(p: PeerSpec): string {
  switch (p.kind) {
    case 'workload':
      return `0 ${p.wl.key}`;
    case 'entity':
      return `1 ${p.entity}`;
    case 'cidr':
      return `2 ${p.cidr}`;
    case 'fqdn':
      return `3 ${p.names.join(',')}`;
  }
}

function addTo(
  m: Map<string, PeerAgg>,
  peer: PeerSpec,
  l4: NonNullable<ReturnType<typeof l4Of>>,
  f: Flow,
  opts: GenerateOptions,
  egress: boolean,
): void {
  const key = peerKey(peer);
  let a = m.get(key);
  if (!a) {
    a = { key, peer, count: 0, ports: new Map(), icmp: new Map() };
    m.set(key, a);
  }
  a.count++;
  if (!('port' in l4)) {
    const family = l4.protocol === 'ICMP' ? 'IPv4' : 'IPv6';
    const k = `${family}/${l4.type}`;
    const e = a.icmp.get(k) ?? { type: l4.type, family, count: 0 };
    e.count++;
    a.icmp.set(k, e);
    return;
  }
  const pa = portAgg(a, l4.protocol, l4.port);
  pa.count++;
  // HTTP rules go where the proxy saw the request (Hubble's traffic_direction; ingress when
  // unknown); the other side allows the port at L4, so the request is not proxied twice.
  const seenHere = egress ? f.traffic_direction === 'EGRESS' : f.traffic_direction !== 'EGRESS';
  const http = seenHere ? httpOf(f) : undefined;
  if (http && l4.protocol === 'TCP') {
    const path = pathRule(http.path, opts.generalizePaths === true);
    const rk = `${http.method} ${path}`;
    const r = pa.http.get(rk) ?? { method: http.method, path, count: 0 };
    r.count++;
    pa.http.set(rk, r);
  }
  // DNS rules exist on egress only: the query is checked where it leaves the client.
  const q = egress ? dnsQueryOf(f) : undefined;
  if (q !== undefined && q.replace(/\.$/, '') !== '') {
    const name = q.replace(/\.$/, '').toLowerCase();
    pa.dns.set(name, (pa.dns.get(name) ?? 0) + 1);
  }
}

function portAgg(a: PeerAgg, protocol: string, port: number): PortAgg {
  const k = `${protocol}/${port}`;
  let p = a.ports.get(k);
  if (!p) {
    p = { protocol, port, count: 0, http: new Map(), dns: new Map() };
    a.ports.set(k, p);
  }
  return p;
}

/**
 * toFQDNs learns addresses only from DNS answers that passed a DNS rule: every name the
 * workload reaches by FQDN must be allowed by a DNS rule. Names go to the DNS server the log
 * shows the workload asking, else to kube-dns on 53 (UDP and TCP).
 */
function addDNSForFQDNs(w: Workload): void {
  const names = new Set<string>();
  for (const a of w.egress.values()) if (a.peer.kind === 'fqdn') for (const n of a.peer.names) names.add(n);
  if (names.size === 0) return;
  const dnsPorts = [...w.egress.values()].flatMap((a) => [...a.ports.values()].filter((p) => p.dns.size > 0));
  const covered = new Set(dnsPorts.flatMap((p) => [...p.dns.keys()]));
  const missing = [...names].filter((n) => !covered.has(n)).sort(cmp);
  if (missing.length === 0) return;
  let targets = dnsPorts;
  if (targets.length === 0) {
    const peer: PeerSpec = { kind: 'entity', entity: '\u0000kube-dns' };
    const key = '0 \u0000kube-dns';
    const a: PeerAgg = w.egress.get(key) ?? { key, peer, count: 0, ports: new Map(), icmp: new Map() };
    w.egress.set(key, a);
    targets = [portAgg(a, 'UDP', 53), portAgg(a, 'TCP', 53)];
  }
  // Names no query was seen for are added with count 0: the comments say they were inferred.
  for (const p of targets) for (const n of missing) if (!p.dns.has(n)) p.dns.set(n, 0);
}

const ID_SEGMENT = [
  /^[0-9]+$/,
  /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/,
  /^[0-9a-fA-F]{16,}$/,
];

/** An RE2 pattern matching the observed path (whole value, as Envoy matches it). */
export function pathRule(path: string, generalize: boolean): string {
  if (!generalize) return escapeRE2(path);
  const q = path.indexOf('?');
  const p = q < 0 ? path : path.slice(0, q);
  const segs = p.split('/').map((s) => (ID_SEGMENT.some((re) => re.test(s)) ? '[^/]+' : escapeRE2(s)));
  // A generalised path accepts any query string (ids often travel there too).
  return `${segs.join('/')}${q < 0 ? '' : '(\\?.*)?'}`;
}

function escapeRE2(s: string): string {
  return s.replace(/[\\.+*?()|[\]{}^$]/g, '\\$&');
}

function nameWorkloads(ws: Workload[]): void {
  const taken = new Set<string>();
  ws.sort((a, b) => cmp(a.key, b.key));
  for (const w of ws) {
    const s = w.selector;
    const base = dns1123(
      s['app.kubernetes.io/name'] ??
        s.app ??
        s['k8s-app'] ??
        s.name ??
        Object.values(s)[0] ??
        [...w.pods].sort(cmp)[0]!,
    );
    let name = base;
    for (let i = 2; taken.has(`${w.namespace}/${name}`); i++) name = `${base}-${i}`;
    taken.add(`${w.namespace}/${name}`);
    w.name = name;
  }
}

function dns1123(s: string): string {
  const n = s
    .toLowerCase()
    .replace(/[^a-z0-9.-]+/g, '-')
    .replace(/^[^a-z0-9]+|[^a-z0-9]+$/g, '')
    .slice(0, 200);
  return n === '' ? 'workload' : n;
}

// ---------------------------------------------------------------- rendering

function selectorOf(peer: Workload, from: Workload): YObject {
  const ml: Record<string, string> = { ...peer.selector };
  if (peer.namespace !== from.namespace) ml['k8s:io.kubernetes.pod.namespace'] = peer.namespace;
  return { matchLabels: ml };
}

function peerText(p: PeerSpec): string {
  switch (p.kind) {
    case 'workload':
      return `${p.wl.namespace} ${labelText(p.wl.selector)}`;
    case 'entity':
      return p.entity === '\u0000kube-dns' ? 'kube-dns' : `entity ${p.entity}`;
    case 'cidr':
      return p.cidr;
    case 'fqdn':
      return p.names.join(', ');
  }
}

function labelText(l: Record<string, string>): string {
  return Object.entries(l)
    .map(([k, v]) => `${k}=${v}`)
    .join(',');
}

const plural = (n: number, w: string): string => `${n} ${w}${n === 1 ? '' : 's'}`;

/** The toPorts list of a peer: plain ports merged into one PortRule, L7 ports one each. */
function toPortsOf(a: PeerAgg): YObject[] {
  const ports = [...a.ports.values()].sort((x, y) => cmp(x.protocol, y.protocol) || x.port - y.port);
  const out: YObject[] = [];
  const plain = ports.filter((p) => p.http.size === 0 && p.dns.size === 0);
  // Cilium takes at most 40 ports per PortRule.
  for (let i = 0; i < plain.length; i += 40) {
    out.push({ ports: plain.slice(i, i + 40).map((p) => ({ port: String(p.port), protocol: p.protocol })) });
  }
  for (const p of ports) {
    if (p.http.size > 0) {
      const http = [...p.http.values()]
        .sort((x, y) => cmp(x.method, y.method) || cmp(x.path, y.path))
        .map((r) => ({ method: r.method, path: r.path }));
      out.push({ ports: [{ port: String(p.port), protocol: p.protocol }], rules: { http } });
    } else if (p.dns.size > 0) {
      const dns = [...p.dns.keys()].sort(cmp).map((n) => ({ matchName: n }));
      out.push({ ports: [{ port: String(p.port), protocol: p.protocol }], rules: { dns } });
    }
  }
  return out;
}

function coverage(a: PeerAgg): string {
  const parts: string[] = [];
  const ports = [...a.ports.values()].sort((x, y) => cmp(x.protocol, y.protocol) || x.port - y.port);
  for (const p of ports) {
    parts.push(`${p.port}/${p.protocol} ×${p.count}`);
    for (const r of [...p.http.values()].sort((x, y) => cmp(x.method, y.method) || cmp(x.path, y.path)))
      parts.push(`${r.method} ${r.path} ×${r.count}`);
    for (const [n, c] of [...p.dns.entries()].sort(([x], [y]) => cmp(x, y)))
      parts.push(c === 0 ? `DNS ${n} (for toFQDNs)` : `DNS ${n} ×${c}`);
  }
  for (const i of [...a.icmp.values()].sort((x, y) => cmp(x.family, y.family) || x.type - y.type))
    parts.push(`ICMP ${i.family} type ${i.type} ×${i.count}`);
  return parts.join(', ');
}

function sectionEntries(w: Workload, dir: 'ingress' | 'egress'): YObject[] {
  const aggs = [...(dir === 'ingress' ? w.ingress : w.egress).values()].sort((x, y) => cmp(x.key, y.key));
  // Peers of one kind with the same ports share an entry (the smallest policy the flows allow).
  interface Group {
    field: string;
    peers: PeerAgg[];
    toPorts: YObject[];
    icmp: boolean;
  }
  const groups = new Map<string, Group>();
  for (const a of aggs) {
    const field = fieldOf(a.peer, dir);
    const toPorts = toPortsOf(a);
    if (toPorts.length > 0) {
      const k = `${field} ${JSON.stringify(toPorts)}`;
      const g: Group = groups.get(k) ?? { field, peers: [], toPorts, icmp: false };
      g.peers.push(a);
      groups.set(k, g);
    }
    if (a.icmp.size > 0) {
      const icmps = [...a.icmp.values()].sort((x, y) => cmp(x.family, y.family) || x.type - y.type);
      const fields = icmps.map((i) => ({ type: i.type, family: i.family }));
      const k = `${field} icmp ${JSON.stringify(fields)}`;
      const g: Group = groups.get(k) ?? { field, peers: [], toPorts: [{ fields }], icmp: true };
      g.peers.push(a);
      groups.set(k, g);
    }
  }
  const out: YObject[] = [];
  for (const g of groups.values()) {
    const entry: YObject = { [g.field]: peerValues(g.field, g.peers, w) };
    if (g.icmp) entry.icmps = g.toPorts;
    else entry.toPorts = g.toPorts;
    const lines = g.peers.map(
      (a) =>
        `${dir === 'ingress' ? 'from' : 'to'} ${peerText(a.peer)}: ${plural(a.count, 'flow')} (${coverage(a)})`,
    );
    if (g.field === 'toEndpoints' && g.peers.some((a) => a.peer.kind === 'entity')) {
      lines.push('DNS rule the toFQDNs rules need: it lets the DNS proxy learn their addresses');
    }
    out.push(withComment(entry, lines));
  }
  return out;
}

function fieldOf(p: PeerSpec, dir: 'ingress' | 'egress'): string {
  const f = dir === 'ingress' ? 'from' : 'to';
  switch (p.kind) {
    case 'workload':
      return `${f}Endpoints`;
    case 'entity':
      return p.entity === '\u0000kube-dns' ? 'toEndpoints' : `${f}Entities`;
    case 'cidr':
      return `${f}CIDR`;
    case 'fqdn':
      return 'toFQDNs';
  }
}

function peerValues(field: string, peers: PeerAgg[], w: Workload): YValue[] {
  const out: YValue[] = [];
  for (const a of peers) {
    const p = a.peer;
    if (p.kind === 'workload') out.push(selectorOf(p.wl, w));
    else if (p.kind === 'entity')
      out.push(field === 'toEndpoints' ? { matchLabels: { ...KUBE_DNS } } : p.entity);
    else if (p.kind === 'cidr') out.push(p.cidr);
    else for (const n of p.names) out.push({ matchName: n });
  }
  return out;
}

function renderPolicy(w: Workload): string {
  const ingress = sectionEntries(w, 'ingress');
  const egress = sectionEntries(w, 'egress');
  const none = (dir: string): YObject[] => [
    withComment({}, [`no ${dir} observed: this entry allows nothing (default deny)`]),
  ];
  const doc: YObject = {
    apiVersion: 'cilium.io/v2',
    kind: 'CiliumNetworkPolicy',
    metadata: {
      name: w.name,
      namespace: w.namespace,
      annotations: { 'policy.seawall.dev/generated-from': `${plural(w.records, 'flow record')}` },
    },
    spec: {
      endpointSelector: { matchLabels: { ...w.selector } },
      ingress: ingress.length > 0 ? ingress : none('ingress'),
      egress: egress.length > 0 ? egress : none('egress'),
    },
  };
  const pods = [...w.pods].sort(cmp);
  const shown = pods.length > 5 ? `${pods.slice(0, 5).join(', ')}, … (${pods.length} pods)` : pods.join(', ');
  return toYAML(doc, [
    `Generated by seawall generate: workload ${w.namespace} ${labelText(w.selector)} (pods: ${shown}).`,
    'Allows exactly the traffic observed; everything else is denied in both directions.',
  ]);
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** All policies as one multi-document YAML stream. */
export function formatPolicies(ps: readonly GeneratedPolicy[]): string {
  return ps.map((p) => `---\n${p.yaml}`).join('');
}

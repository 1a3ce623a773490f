// The one stand-in for the policy engine in tests and benches: the whole PolicyEngineAPI with no
// policy logic. Tests set endpoint policies directly (setPolicy; drainEndpointChanges follows them
// as the real change log would), give decide() canned verdicts, and read the calls it got.

import type { Issue } from '../../policy-api/issue.ts';
import type {
  EndpointChanges,
  EndpointPolicy,
  EndpointSpec,
  EngineConfig,
  FlowRequest,
  MapStateEntry,
  NumericIdentity,
  PeerRef,
  PolicyEngineAPI,
  Verdict,
} from '../types.ts';

export interface FakeEngineOptions {
  config?: Partial<EngineConfig>;
  /** The verdict of each flow (without it decide throws: the test meant no flows). */
  decide?: (flow: FlowRequest, nowMs?: number) => Verdict;
  /** Identities of peers (default: see FakeEngine.identityOf). */
  identityOf?: (peer: PeerRef) => NumericIdentity;
  /** Labels of identities (default: none). */
  labelsOf?: (id: NumericIdentity) => string[];
}

/** One call the fake got, in order (decide included; reads such as endpointPolicy are not). */
export interface FakeCall {
  method: keyof PolicyEngineAPI;
  args: unknown[];
}

interface ChangeLog {
  full: boolean;
  removed: Set<MapStateEntry>;
  added: Set<MapStateEntry>;
}

/** More pending changes than this and the log answers `full`, as the real one overflows. */
const LOG_MAX = 8192;

/**
 * Identities by default: pods 256+ in the order they are first upserted (0 when unknown),
 * entities as Cilium numbers them, outside addresses node-local (bit 24 | the sum of the octets).
 */
export class FakeEngine implements PolicyEngineAPI {
  readonly config: EngineConfig;
  readonly calls: FakeCall[] = [];
  private readonly opts: FakeEngineOptions;
  private readonly ids = new Map<string, number>();
  private readonly policies = new Map<string, EndpointPolicy>();
  /** Per endpoint, the entries (by object) set or dropped since the last drain. */
  private readonly logs = new Map<string, ChangeLog>();
  private next = 256;

  constructor(opts: FakeEngineOptions = {}) {
    this.opts = opts;
    this.config = { enforcementMode: 'default', clusterName: 'default', localNode: 'node-1', ...opts.config };
  }

  private record(method: keyof PolicyEngineAPI, args: unknown[]): void {
    this.calls.push({ method, args });
  }

  upsertNamespace(name: string, labels: Record<string, string>): void {
    this.record('upsertNamespace', [name, labels]);
  }

  upsertEndpoint(ep: EndpointSpec): void {
    this.record('upsertEndpoint', [ep]);
    const k = `${ep.namespace}/${ep.name}`;
    if (!this.ids.has(k)) this.ids.set(k, this.next++);
  }

  removeEndpoint(namespace: string | undefined, name: string): void {
    this.record('removeEndpoint', [namespace, name]);
    this.ids.delete(`${namespace}/${name}`);
    this.logs.delete(`${namespace}/${name}`);
  }

  upsertPolicy(p: Parameters<PolicyEngineAPI['upsertPolicy']>[0]): Issue[] {
    this.record('upsertPolicy', [p]);
    return [];
  }

  removePolicy(kind: string, namespace: string | undefined, name: string): void {
    this.record('removePolicy', [kind, namespace, name]);
  }

  learnDNS(name: string, ips: string[], ttlSeconds: number, nowMs?: number): void {
    this.record('learnDNS', nowMs === undefined ? [name, ips, ttlSeconds] : [name, ips, ttlSeconds, nowMs]);
  }

  decide(flow: FlowRequest, nowMs?: number): Verdict {
    this.record('decide', nowMs === undefined ? [flow] : [flow, nowMs]);
    if (this.opts.decide === undefined) throw new Error('FakeEngine: decide() without a decide option');
    return this.opts.decide(flow, nowMs);
  }

  /** Replaces parts of an endpoint's policy; the change log records the entries that came and went. */
  setPolicy(namespace: string, name: string, p: Partial<EndpointPolicy>): void {
    const k = `${namespace}/${name}`;
    const before = this.endpointPolicy(namespace, name);
    const after = { ...before, ...p };
    this.policies.set(k, after);
    const log = this.logs.get(k);
    if (log === undefined || log.full) return;
    const same = (a: EndpointPolicy['ingress'], b: EndpointPolicy['ingress']): boolean =>
      a.enforced === b.enforced && a.defaultDeny === b.defaultDeny;
    if (!same(before.ingress, after.ingress) || !same(before.egress, after.egress)) {
      this.logs.set(k, fullLog());
      return;
    }
    diffEntries(before.entries, after.entries, log);
    if (log.added.size + log.removed.size > LOG_MAX) this.logs.set(k, fullLog());
  }

  drainEndpointChanges(namespace: string | undefined, name: string): EndpointChanges {
    const k = `${namespace}/${name}`;
    const log = this.logs.get(k);
    this.logs.set(k, { full: false, removed: new Set(), added: new Set() });
    const identity = this.endpointPolicy(namespace, name).identity;
    if (log === undefined || log.full) return { identity, full: true, removed: [], added: [] };
    return { identity, full: false, removed: [...log.removed], added: [...log.added] };
  }

  endpointPolicy(namespace: string | undefined, name: string): EndpointPolicy {
    const k = `${namespace}/${name}`;
    const identity = this.ids.get(k) ?? 0;
    const p = this.policies.get(k);
    if (p !== undefined) return { ...p, identity };
    return {
      endpoint: k,
      identity,
      ingress: { enforced: false, defaultDeny: false },
      egress: { enforced: false, defaultDeny: false },
      entries: [],
      selectedBy: [],
    };
  }

  identityOf(peer: PeerRef): NumericIdentity {
    if (this.opts.identityOf !== undefined) return this.opts.identityOf(peer);
    if (peer.kind === 'endpoint') return this.ids.get(`${peer.namespace}/${peer.name}`) ?? 0;
    if (peer.kind === 'entity')
      return { host: 1, world: 2, 'remote-node': 6, 'kube-apiserver': 7 }[peer.entity];
    const n = peer.ip.split('.').reduce((a, o) => a + Number(o), 0);
    return 0x01000000 | n;
  }

  labelsOf(id: NumericIdentity): string[] {
    return this.opts.labelsOf?.(id) ?? [];
  }

  upsertService(
    namespace: string,
    name: string,
    labels: Record<string, string>,
    selector?: Record<string, string>,
    addresses?: readonly string[],
  ): Issue[] {
    this.record('upsertService', [namespace, name, labels, selector, addresses]);
    return [];
  }

  removeService(namespace: string, name: string): Issue[] {
    this.record('removeService', [namespace, name]);
    return [];
  }

  upsertCIDRGroup(name: string, labels: Record<string, string>, cidrs: readonly string[]): Issue[] {
    this.record('upsertCIDRGroup', [name, labels, cidrs]);
    return [];
  }

  removeCIDRGroup(name: string): Issue[] {
    this.record('removeCIDRGroup', [name]);
    return [];
  }

  upsertNode(name: string, labels: Record<string, string>, ip: string): void {
    this.record('upsertNode', [name, labels, ip]);
  }

  removeNode(name: string): void {
    this.record('removeNode', [name]);
  }
}

function fullLog(): ChangeLog {
  return { full: true, removed: new Set(), added: new Set() };
}

/**
 * Entries of `after` not in `before` and the reverse, by object (tests and benches reuse entry
 * objects, so a common head and tail are skipped by identity), netted into `log`.
 */
function diffEntries(
  before: readonly MapStateEntry[],
  after: readonly MapStateEntry[],
  log: ChangeLog,
): void {
  let head = 0;
  const max = Math.min(before.length, after.length);
  while (head < max && before[head] === after[head]) head++;
  let tb = before.length;
  let ta = after.length;
  while (tb > head && ta > head && before[tb - 1] === after[ta - 1]) {
    tb--;
    ta--;
  }
  const b = new Set(before.slice(head, tb));
  const a = new Set(after.slice(head, ta));
  for (const x of b) {
    if (a.has(x)) continue;
    if (log.added.has(x)) log.added.delete(x);
    else log.removed.add(x);
  }
  for (const x of a) {
    if (b.has(x)) continue;
    if (log.removed.has(x)) log.removed.delete(x);
    else log.added.add(x);
  }
}

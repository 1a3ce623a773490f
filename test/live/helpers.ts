// Shared by the live tests: the skip condition, a stub engine whose EndpointPolicies the test
// sets directly (datapath tests independent of the policy engine), and per-test node names.

import { liveUnavailable } from '../../src/datapath/preflight.ts';
import type {
  EndpointChanges,
  EndpointPolicy,
  EndpointSpec,
  EngineConfig,
  FlowRequest,
  MapStateEntry,
  PeerRef,
  PolicyEngineAPI,
  Verdict,
} from '../../src/policy/types.ts';

/** Why live tests cannot run here, or undefined when they can (the datapath's own preflight). */
export function liveSkipReason(): string | undefined {
  return liveUnavailable(['ip', 'nft']);
}

let seq = 0;
/** A node namespace name unique to this process and test. */
export function testNode(tag: string): string {
  seq++;
  return `seawall-t${process.pid % 100000}-${tag}${seq}`.slice(0, 40);
}

export function entry(
  direction: 'INGRESS' | 'EGRESS',
  identity: number,
  proto: number,
  portLo: number,
  portHi = portLo,
  verdict: MapStateEntry['verdict'] = 'allow',
): MapStateEntry {
  return { key: { direction, identity, proto, portLo, portHi }, verdict, derivedFrom: [] };
}

interface StubLog {
  full: boolean;
  removed: Set<MapStateEntry>;
  added: Set<MapStateEntry>;
}

/**
 * Entries of `after` not in `before` and the reverse, by object (tests and benches reuse entry
 * objects, so a common head and tail are skipped by identity), netted into `log`.
 */
function diffEntries(before: readonly MapStateEntry[], after: readonly MapStateEntry[], log: StubLog): void {
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

/** Identities: pods 256+ in the order they are added; entities as Cilium numbers them. */
export class StubEngine implements PolicyEngineAPI {
  readonly config: EngineConfig = { enforcementMode: 'default', clusterName: 'default', localNode: 'node-1' };
  private readonly ids = new Map<string, number>();
  private readonly policies = new Map<string, EndpointPolicy>();
  private next = 256;

  upsertNamespace(): void {}
  upsertEndpoint(ep: EndpointSpec): void {
    const k = `${ep.namespace}/${ep.name}`;
    if (!this.ids.has(k)) this.ids.set(k, this.next++);
  }
  removeEndpoint(ns: string | undefined, name: string): void {
    this.ids.delete(`${ns}/${name}`);
    this.logs.delete(`${ns}/${name}`);
  }
  upsertPolicy(): [] {
    return [];
  }
  removePolicy(): void {}
  learnDNS(): void {}
  decide(_f: FlowRequest): Verdict {
    throw new Error('stub');
  }
  setPolicy(ns: string, name: string, p: Partial<EndpointPolicy>): void {
    const k = `${ns}/${name}`;
    const before = this.endpointPolicy(ns, name);
    const after = { ...before, ...p };
    this.policies.set(k, after);
    const log = this.logs.get(k);
    if (log === undefined || log.full) return;
    const dir = (a: EndpointPolicy['ingress'], b: EndpointPolicy['ingress']): boolean =>
      a.enforced === b.enforced && a.defaultDeny === b.defaultDeny;
    if (!dir(before.ingress, after.ingress) || !dir(before.egress, after.egress)) {
      this.logs.set(k, { full: true, removed: new Set(), added: new Set() });
      return;
    }
    diffEntries(before.entries, after.entries, log);
    if (log.added.size + log.removed.size > 8192)
      this.logs.set(k, { full: true, removed: new Set(), added: new Set() });
  }
  /** Per endpoint, the entries (by object) set or dropped since the last drain. */
  private readonly logs = new Map<string, StubLog>();
  drainEndpointChanges(ns: string | undefined, name: string): EndpointChanges {
    const k = `${ns}/${name}`;
    const log = this.logs.get(k);
    this.logs.set(k, { full: false, removed: new Set(), added: new Set() });
    const identity = this.endpointPolicy(ns, name).identity;
    if (log === undefined || log.full) return { identity, full: true, removed: [], added: [] };
    return { identity, full: false, removed: [...log.removed], added: [...log.added] };
  }
  endpointPolicy(ns: string | undefined, name: string): EndpointPolicy {
    const k = `${ns}/${name}`;
    const base: EndpointPolicy = {
      endpoint: k,
      identity: this.ids.get(k) ?? 0,
      ingress: { enforced: false, defaultDeny: false },
      egress: { enforced: false, defaultDeny: false },
      entries: [],
      selectedBy: [],
    };
    const p = this.policies.get(k);
    return p ? { ...p, identity: base.identity } : base;
  }
  identityOf(peer: PeerRef): number {
    if (peer.kind === 'endpoint') return this.ids.get(`${peer.namespace}/${peer.name}`) ?? 0;
    if (peer.kind === 'entity') {
      return { host: 1, world: 2, 'remote-node': 6, 'kube-apiserver': 7 }[peer.entity];
    }
    // CIDR identities are node-local: bit 24 set
    const n = peer.ip.split('.').reduce((a, o) => a + Number(o), 0);
    return 0x01000000 | n;
  }
  labelsOf(): string[] {
    return [];
  }
}

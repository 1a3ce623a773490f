// The policy mirror every proxy process judges from: the agent's latest snapshot (peers: IP →
// identity; the endpoints that have redirect entries), replaced whole on each one and patched by
// the FQDN deltas that follow it (applyDelta), and what a
// parser derives from it per connection key (its rule sets), computed once per snapshot so the
// judges' compiled rules and decision memos are reused instead of rebuilt per request. The cache
// is bounded: past MAX_CACHED keys it starts over, so a pod dialling many addresses cannot grow it.

import type { FlowEndpoint } from '../flow/types.ts';
import type { RuleRef } from '../policy/types.ts';
import type { PortRuleHTTP, PortRuleKafka } from '../policy-api/types.ts';
import {
  type PolicyDelta,
  type PolicySnapshot,
  patchEndpoint,
  type SnapshotEndpoint,
  sideVerdict,
} from './ipc.ts';

const WORLD = 2;
const TCP = 6;
export const MAX_CACHED = 10_000;

type RulesOf = { http: PortRuleHTTP; kafka: PortRuleKafka };

/** One side's rules for a TCP connection of a parser; empty rules admit nothing. */
export interface SideRuleSet<R> {
  direction: 'INGRESS' | 'EGRESS';
  rules: readonly R[];
  /** The rules' policies, for the records' *_allowed_by. */
  policies?: readonly RuleRef[];
  /** Namespace of the side's endpoint (where HTTP's `secret` without namespace is looked up). */
  namespace?: string;
}

export class SnapshotMirror<T> {
  version = -1;
  protected peers = new Map<string, FlowEndpoint>();
  protected endpoints = new Map<string, SnapshotEndpoint>();
  private cache = new Map<string, T>();

  load(s: PolicySnapshot): void {
    this.peers = new Map(s.peers);
    this.endpoints = new Map(s.endpoints.map((e) => [e.ip, e]));
    this.cache = new Map();
    this.version = s.version;
  }

  /**
   * An FQDN delta on top of the snapshot (and deltas) before it. False when it cannot be applied:
   * no snapshot came yet, or it patches an endpoint the mirror lacks (then the mirror is dropped):
   * the proxy refuses everything until the agent's next snapshot.
   */
  applyDelta(d: PolicyDelta): boolean {
    if (!this.loaded) return false;
    for (const ip of d.removedPeers) this.peers.delete(ip);
    for (const [ip, ep] of d.peers) this.peers.set(ip, ep);
    for (const ip of d.removedEndpoints) this.endpoints.delete(ip);
    for (const e of d.endpoints) this.endpoints.set(e.ip, e);
    for (const p of d.patches) {
      const ep = this.endpoints.get(p.ip);
      // a patch for an endpoint the mirror lacks cannot be applied: refuse all until a snapshot
      if (ep === undefined) return this.unload();
      this.endpoints.set(p.ip, patchEndpoint(ep, p));
    }
    this.cache = new Map(); // rule sets derived from the old peers and entries
    this.version = d.version;
    return true;
  }

  /** Back to no snapshot (every request refused) until the agent's next one. */
  private unload(): false {
    this.version = -1;
    this.peers = new Map();
    this.endpoints = new Map();
    this.cache = new Map();
    return false;
  }

  /** False until the first snapshot: a proxy without one refuses everything. */
  get loaded(): boolean {
    return this.version >= 0;
  }

  /** The ipcache's identity of an address; world for one the snapshot does not know. */
  identityOf(ip: string): number {
    return this.peers.get(ip)?.identity ?? WORLD;
  }

  peer(ip: string): FlowEndpoint {
    return this.peers.get(ip) ?? { identity: WORLD, labels: ['reserved:world'] };
  }

  endpointOf(ip: string): SnapshotEndpoint | undefined {
    return this.endpoints.get(ip);
  }

  /**
   * The rule sets a request on a TCP connection must pass, both sides as `decide` builds them: the
   * source's egress and the destination's ingress, each where it redirects to `parser`. A side that
   * denies gives one set without rules, and so does a connection neither side redirects any more:
   * it admits nothing (fail closed). An allow beside the redirect is Cilium's L7 wildcard.
   * `withNamespace`: each set names its endpoint's namespace (HTTP looks `secret`s up there).
   */
  protected tcpRuleSets<P extends keyof RulesOf>(
    src: string,
    dst: string,
    port: number,
    parser: P,
    withNamespace = false,
  ): SideRuleSet<RulesOf[P]>[] {
    const out: SideRuleSet<RulesOf[P]>[] = [];
    const sides = [
      ['EGRESS', this.endpoints.get(src), this.identityOf(dst)],
      ['INGRESS', this.endpoints.get(dst), this.identityOf(src)],
    ] as const;
    for (const [direction, ep, peerId] of sides) {
      const v = sideVerdict(ep, direction, peerId, TCP, port, parser);
      if (v.kind === 'none') continue;
      const ns = withNamespace ? { namespace: ep?.namespace ?? 'default' } : {};
      if (v.kind === 'deny') return [{ direction, rules: [], ...ns }];
      const rules: RulesOf[P][] = [];
      for (const e of v.rules) if (e.l7?.parser === parser) rules.push(...(e.l7.rules as RulesOf[P][]));
      if (v.wildcard) rules.push({ pos: { file: '(l7 wildcard)', line: 0, column: 0 } } as RulesOf[P]);
      out.push({ direction, rules, policies: v.policies, ...ns });
    }
    return out.length > 0 ? out : [{ direction: 'INGRESS', rules: [] }];
  }

  /** The value for `key` in the current snapshot, computed on first use. */
  protected cached(key: string, compute: () => T): T {
    if (this.cache.has(key)) return this.cache.get(key) as T;
    const v = compute();
    if (this.cache.size >= MAX_CACHED) this.cache.clear();
    this.cache.set(key, v);
    return v;
  }
}

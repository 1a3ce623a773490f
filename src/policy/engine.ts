// The policy engine: repository of rules, identities, SelectorCache, per-endpoint resolved policy
// (MapState) kept up to date incrementally, and decide(flow) answering from the MapStates.

import { SeawallError } from '../core/errors.ts';
import { DNSCache } from '../fqdn/cache.ts';
import type { Identity } from '../identity/allocator.ts';
import {
  type IdentityAllocatorAPI,
  type IdentityBackend,
  type IPCacheAPI,
  MemoryIdentityBackend,
} from '../identity/backend.ts';
import { formatPrefix, type Prefix, parsePrefix } from '../identity/cidr.ts';
import { ID } from '../identity/reserved.ts';
import { type Label, LabelSet, SOURCE_K8S, SOURCE_NODE, SOURCE_RESERVED } from '../labels/label.ts';
import { LABEL_CLUSTER, podIdentityLabels } from '../labels/pod.ts';
import type { Issue } from '../policy-api/issue.ts';
import type { CIDRRule, PolicyObject, Service } from '../policy-api/types.ts';
import {
  type CIDRGroupInfo,
  type ClusterLookup,
  cidrGroupMatches,
  cidrGroupRefsOf,
  type ServiceInfo,
  serviceKey,
  serviceMatches,
  serviceRefsOf,
} from './cluster-objects.ts';
import { decideDirection, type PeerInfo, uniqRefList } from './decide.ts';
import {
  EndpointState,
  type FilterGroup,
  filtersOfEntry,
  type ResolveContext,
  refText,
  unionL7,
} from './endpoint.ts';
import { LOOKUP, type StateEntry } from './mapstate.ts';
import { type InternalRule, policyKey, policyKeyOf, translatePolicy } from './rules.ts';
import { type CachedSelector, SelectorCache } from './selectorcache.ts';
import type {
  ContainerPort,
  DirectionDecision,
  EndpointChanges,
  EndpointOptions,
  EndpointPolicy,
  EndpointSpec,
  EngineConfig,
  EngineDeps,
  FlowRequest,
  MapStateEntry,
  NumericIdentity,
  PeerRef,
  PolicyEngineAPI,
  TrafficDirection,
  Verdict,
} from './types.ts';

interface PodRecord {
  kind: 'pod';
  key: string;
  spec: EndpointSpec;
  state: EndpointState;
}

interface ExternalRecord {
  kind: 'external';
  key: string;
  spec: EndpointSpec;
  prefix: Prefix | undefined;
}

type EndpointRecord = PodRecord | ExternalRecord;

interface StoredPolicy {
  obj: PolicyObject;
  rules: InternalRule[];
  subjects: CachedSelector[];
  prefixes: Prefix[];
  /** References resolved at translation: a change to a matching object re-translates the policy. */
  serviceRefs: Service[];
  groupRefs: CIDRRule[];
}

interface NodeRecord {
  name: string;
  ip: string;
  /** Undefined for the local node (its address is the host's). */
  identity: Identity | undefined;
}

const ENTITY_IDS: Record<string, number> = {
  host: ID.host,
  'remote-node': ID.remoteNode,
  'kube-apiserver': ID.kubeApiserver,
  world: ID.world,
};

/**
 * The DNS cache whose answers label each backend's CIDR identities (fqdn: labels live on the
 * backend's identities): engines sharing a backend but not its DNS cache would select addresses
 * by one another's answers, so that is refused.
 */
const dnsOfBackend = new WeakMap<IdentityBackend, DNSCache>();

export class PolicyEngine implements PolicyEngineAPI {
  readonly config: EngineConfig;
  /** Where identities and the ipcache live (given, or a new memory backend). */
  readonly backend: IdentityBackend;
  readonly identities: IdentityAllocatorAPI;
  readonly ipcache: IPCacheAPI;
  readonly selectors: SelectorCache;
  /** The node's DNS cache (given, or a new one), shared by its pods as in Cilium. */
  readonly dns: DNSCache;
  private readonly namespaces = new Map<string, Record<string, string>>();
  private readonly endpoints = new Map<string, EndpointRecord>();
  private readonly byIP = new Map<string, EndpointRecord>();
  private readonly statesByIdentity = new Map<number, Set<EndpointState>>();
  /** Endpoints with egress named-port filters. */
  private readonly namedPortUsers = new Set<EndpointState>();
  private readonly policies = new Map<string, StoredPolicy>();
  private readonly rulesBySubject = new Map<CachedSelector, Set<InternalRule>>();
  /** /32 prefixes held because DNS answers point at them. */
  private readonly fqdnHeld = new Set<string>();
  /** The latest time DNS was learnt or expired at: pod address changes re-check fqdn names then. */
  private dnsNow = Number.NEGATIVE_INFINITY;
  private readonly ctx: ResolveContext;
  private readonly services = new Map<string, ServiceInfo>();
  private readonly cidrGroups = new Map<string, CIDRGroupInfo>();
  private readonly nodes = new Map<string, NodeRecord>();
  private readonly nodesByIP = new Map<string, NodeRecord>();
  /** Listeners this engine put on its backend and DNS cache, removed by close(). */
  private readonly unsubscribe: Array<() => void> = [];
  /** PolicyAuditMode set per endpoint (ns/name), kept across upserts; absent: the agent-wide one. */
  private readonly auditModes = new Map<string, boolean>();
  private readonly cluster: ClusterLookup = {
    services: () => this.services.values(),
    cidrGroups: () => this.cidrGroups.values(),
  };

  constructor(config?: Partial<EngineConfig>, deps: EngineDeps = {}) {
    this.config = {
      enforcementMode: config?.enforcementMode ?? 'default',
      clusterName: config?.clusterName ?? 'default',
      localNode: config?.localNode ?? 'node-1',
    };
    if (config?.policyAuditMode === true) this.config.policyAuditMode = true;
    this.backend = deps.identity ?? new MemoryIdentityBackend();
    this.dns = deps.dns ?? new DNSCache();
    const bound = dnsOfBackend.get(this.backend);
    if (bound === undefined) dnsOfBackend.set(this.backend, this.dns);
    else if (bound !== this.dns)
      throw new SeawallError(
        'engine-dns-not-shared',
        'engines sharing an identity backend share its CIDR and FQDN identities: give them the same DNS cache',
      );
    this.identities = this.backend.identities;
    this.ipcache = this.backend.ipcache;
    this.selectors = new SelectorCache(this.identities.all());
    this.unsubscribe.push(this.identities.addListener(this.selectors));
    this.ctx = {
      selectors: this.selectors,
      clusterName: this.config.clusterName,
      namedPortsOf: (id) => this.namedPortsOf(id),
    };
    const dnsListener = this.dns.subscribe((_name, added, removed, now) => {
      // Others (the DNS proxy) may learn into the shared cache directly: the clock follows.
      if (now > this.dnsNow) this.dnsNow = now;
      for (const ip of new Set([...added, ...removed])) this.refreshFQDN(ip, now);
    });
    this.unsubscribe.push(dnsListener);
  }

  /**
   * Gives back everything this engine holds in its backend (its pods' and nodes' identities and
   * ipcache entries, the CIDR identities of its policies, outside endpoints and learnt addresses)
   * and stops listening to the backend and the DNS cache, which outlive it when shared.
   */
  close(): void {
    for (const rec of [...this.endpoints.values()]) this.dropRecord(rec, false);
    for (const rec of [...this.nodes.values()]) this.dropNode(rec);
    for (const key of [...this.policies.keys()]) this.replacePolicy(key, undefined);
    for (const k of this.fqdnHeld) this.releasePrefix(parsePrefix(k)!);
    this.fqdnHeld.clear();
    for (const u of this.unsubscribe.splice(0)) u();
  }

  // ------------------------------------------------------------------ namespaces and endpoints

  upsertNamespace(name: string, labels: Record<string, string>): void {
    this.namespaces.set(name, { ...labels });
    // Namespace labels are identity labels: pods of the namespace move to new identities.
    for (const rec of [...this.endpoints.values()]) {
      if (rec.kind === 'pod' && (rec.spec.namespace ?? 'default') === name) this.upsertEndpoint(rec.spec);
    }
  }

  upsertEndpoint(ep: EndpointSpec): void {
    if (ep.external === true) {
      this.upsertExternal(ep);
      return;
    }
    const ns = ep.namespace ?? 'default';
    const key = `${ns}/${ep.name}`;
    const labelsInput = {
      namespace: ns,
      labels: ep.labels,
      namespaceLabels: this.namespaces.get(ns) ?? {},
      cluster: this.config.clusterName,
    };
    const labels = podIdentityLabels(
      ep.serviceAccount === undefined ? labelsInput : { ...labelsInput, serviceAccount: ep.serviceAccount },
    );
    const old = this.endpoints.get(key);
    const identity = this.identities.allocate(labels); // before releasing the old one: keeps the number
    const namedChanged = hasNamed(ep.ports) || (old !== undefined && hasNamed(old.spec.ports));
    const oldId = old?.kind === 'pod' ? old.state.identity.id : undefined;
    if (old !== undefined) this.dropRecord(old, old.kind === 'pod' && old.state.identity === identity);
    let state: EndpointState;
    if (old !== undefined && old.kind === 'pod' && old.state.identity === identity) {
      state = old.state;
      state.spec = ep;
    } else {
      state = new EndpointState(key, ep, identity, this.ctx);
      let set = this.statesByIdentity.get(identity.id);
      if (set === undefined) {
        set = new Set();
        this.statesByIdentity.set(identity.id, set);
      }
      set.add(state);
    }
    state.auditMode = this.auditModes.get(key) ?? this.config.policyAuditMode === true;
    const rec: PodRecord = { kind: 'pod', key, spec: ep, state };
    this.endpoints.set(key, rec);
    this.byIP.set(ep.ip, rec);
    this.ipcache.upsertEndpoint(ep.ip, identity.id, this);
    this.resolve(state);
    if (namedChanged) this.refreshEgressNamedPorts([identity.id, ...(oldId === undefined ? [] : [oldId])]);
    // The address is a pod's now (and the old one may not be): fqdn selection follows.
    this.refreshFQDN(ep.ip, this.dnsNow);
    if (old !== undefined && old.spec.ip !== ep.ip) this.refreshFQDN(old.spec.ip, this.dnsNow);
  }

  setEndpointOptions(namespace: string | undefined, name: string, opts: EndpointOptions): boolean {
    const rec = this.findEndpoint(namespace, name);
    if (rec === undefined || rec.kind !== 'pod') return false;
    if (opts.policyAuditMode === undefined) return true;
    this.auditModes.set(rec.key, opts.policyAuditMode);
    if (rec.state.auditMode !== opts.policyAuditMode) {
      rec.state.auditMode = opts.policyAuditMode;
      // every deny of the endpoint changes verdict and its default deny may: resolve in full
      this.resolve(rec.state);
    }
    return true;
  }

  endpointOptions(namespace: string | undefined, name: string): Required<EndpointOptions> | undefined {
    const rec = this.findEndpoint(namespace, name);
    if (rec === undefined || rec.kind !== 'pod') return undefined;
    return { policyAuditMode: rec.state.auditMode };
  }

  private upsertExternal(ep: EndpointSpec): void {
    const key = ep.name;
    const old = this.endpoints.get(key);
    const prefix = parsePrefix(ep.ip);
    if (prefix !== undefined) this.acquirePrefix(prefix);
    if (old !== undefined) this.dropRecord(old, false);
    const rec: ExternalRecord = { kind: 'external', key, spec: ep, prefix };
    this.endpoints.set(key, rec);
  }

  removeEndpoint(namespace: string | undefined, name: string): void {
    const rec = this.findEndpoint(namespace, name);
    if (rec === undefined) return;
    this.dropRecord(rec, false);
    this.auditModes.delete(rec.key); // endpoint options live as long as the endpoint
    if (rec.kind === 'pod' && hasNamed(rec.spec.ports)) this.refreshEgressNamedPorts([rec.state.identity.id]);
    // A live DNS answer for the freed address makes it fqdn-selectable again.
    if (rec.kind === 'pod') this.refreshFQDN(rec.spec.ip, this.dnsNow);
  }

  /** Forgets a record; `keepState` when the same identity continues under a new spec. */
  private dropRecord(rec: EndpointRecord, keepState: boolean): void {
    this.endpoints.delete(rec.key);
    if (rec.kind === 'external') {
      if (rec.prefix !== undefined) this.releasePrefix(rec.prefix);
      return;
    }
    if (this.byIP.get(rec.spec.ip) === rec) {
      this.byIP.delete(rec.spec.ip);
      this.ipcache.deleteEndpoint(rec.spec.ip, this);
    }
    const identity = rec.state.identity;
    if (!keepState) {
      rec.state.dispose();
      this.namedPortUsers.delete(rec.state);
      this.statesByIdentity.get(identity.id)?.delete(rec.state);
      if (this.statesByIdentity.get(identity.id)?.size === 0) this.statesByIdentity.delete(identity.id);
    }
    this.identities.release(identity);
  }

  private findEndpoint(namespace: string | undefined, name: string): EndpointRecord | undefined {
    if (namespace !== undefined)
      return this.endpoints.get(`${namespace}/${name}`) ?? this.endpoints.get(name);
    return this.endpoints.get(name) ?? this.endpoints.get(`default/${name}`);
  }

  private namedPortsOf(id: number): readonly ContainerPort[] {
    const out: ContainerPort[] = [];
    if (id === 0) {
      for (const set of this.statesByIdentity.values())
        for (const s of set) out.push(...(s.spec.ports ?? []));
      return out;
    }
    for (const s of this.statesByIdentity.get(id) ?? []) out.push(...(s.spec.ports ?? []));
    return out;
  }

  /** Pods of these identities changed their container ports: egress named ports follow. */
  private refreshEgressNamedPorts(ids: readonly number[]): void {
    const all = [...new Set([...ids, 0])]; // 0: wildcard peers resolve on every pod
    for (const s of this.namedPortUsers) s.refreshNamedPorts(all);
  }

  // ------------------------------------------------------------------ policies

  upsertPolicy(p: PolicyObject): Issue[] {
    return this.replacePolicy(policyKeyOf(p), p);
  }

  removePolicy(kind: string, namespace: string | undefined, name: string): void {
    this.replacePolicy(
      policyKey(kind, kind === 'CiliumClusterwideNetworkPolicy' ? undefined : namespace, name),
      undefined,
    );
  }

  private replacePolicy(key: string, p: PolicyObject | undefined): Issue[] {
    const old = this.policies.get(key);
    let next: StoredPolicy | undefined;
    if (p !== undefined) {
      const rules = translatePolicy(p, { clusterName: this.config.clusterName, cluster: this.cluster });
      const prefixes: Prefix[] = [];
      for (const r of rules)
        for (const e of r.entries)
          for (const pc of e.peers)
            if (pc.sel.prefixes !== undefined) for (const x of pc.sel.prefixes) prefixes.push(x);
      for (const pr of prefixes) this.acquirePrefix(pr);
      const subjects = rules.map((r) => this.selectors.add(r.subject));
      rules.forEach((r, i) => {
        const cs = subjects[i]!;
        let set = this.rulesBySubject.get(cs);
        if (set === undefined) {
          set = new Set();
          this.rulesBySubject.set(cs, set);
        }
        set.add(r);
      });
      next = {
        obj: p,
        rules,
        subjects,
        prefixes,
        serviceRefs: serviceRefsOf(p),
        groupRefs: cidrGroupRefsOf(p),
      };
      this.policies.set(key, next);
    } else {
      this.policies.delete(key);
    }
    const affected = new Set<number>();
    for (const sp of [old, next])
      for (const cs of sp?.subjects ?? []) for (const id of cs.ids) affected.add(id);
    if (old !== undefined) {
      old.rules.forEach((r, i) => {
        this.rulesBySubject.get(old.subjects[i]!)?.delete(r);
      });
    }
    const issues: Issue[] = [];
    const seen = new Set<string>();
    for (const id of affected) {
      const states = this.statesByIdentity.get(id);
      if (states === undefined) continue;
      // Only this policy's rules change for these endpoints: apply just them when that is local.
      const removed = selecting(old, id);
      const added = selecting(next, id);
      for (const s of states) {
        const delta = s.applyRuleDelta(removed, added, this.config.enforcementMode);
        if (delta !== undefined) {
          if (s.hasEgressNamedPorts) this.namedPortUsers.add(s);
          else this.namedPortUsers.delete(s);
        }
        for (const is of delta ?? this.resolve(s)) {
          if (seen.has(is.message)) continue;
          seen.add(is.message);
          issues.push(is);
        }
      }
    }
    if (old !== undefined) {
      for (const cs of old.subjects) {
        if (this.rulesBySubject.get(cs)?.size === 0) this.rulesBySubject.delete(cs);
        this.selectors.release(cs);
      }
      for (const pr of old.prefixes) this.releasePrefix(pr);
    }
    return issues;
  }

  // ------------------------------------------------------------------ Services, CIDR groups, nodes

  /**
   * Adds or replaces a Service. `selector` is its pod selector; a selector-less Service is reached
   * through `addresses` (its EndpointSlice/Endpoints backends). Policies whose toServices refer to
   * the Service (before or after) are re-translated; only endpoints they select are re-resolved.
   */
  upsertService(
    namespace: string,
    name: string,
    labels: Record<string, string>,
    selector?: Record<string, string>,
    addresses: readonly string[] = [],
  ): Issue[] {
    const key = serviceKey(namespace, name);
    const old = this.services.get(key);
    const svc: ServiceInfo = { namespace, name, labels: { ...labels }, addresses: [...addresses] };
    if (selector !== undefined) svc.selector = { ...selector };
    this.services.set(key, svc);
    return this.retranslate((sp) => sp.serviceRefs.some((r) => matchesEither(r, old, svc, serviceMatches)));
  }

  removeService(namespace: string, name: string): Issue[] {
    const key = serviceKey(namespace, name);
    const old = this.services.get(key);
    if (old === undefined) return [];
    this.services.delete(key);
    return this.retranslate((sp) => sp.serviceRefs.some((r) => serviceMatches(r, old)));
  }

  /** Adds or replaces a CiliumCIDRGroup (its externalCIDRs and labels). */
  upsertCIDRGroup(name: string, labels: Record<string, string>, cidrs: readonly string[]): Issue[] {
    const old = this.cidrGroups.get(name);
    const g: CIDRGroupInfo = { name, labels: { ...labels }, cidrs: [...cidrs] };
    this.cidrGroups.set(name, g);
    return this.retranslate((sp) => sp.groupRefs.some((r) => matchesEither(r, old, g, cidrGroupMatches)));
  }

  removeCIDRGroup(name: string): Issue[] {
    const old = this.cidrGroups.get(name);
    if (old === undefined) return [];
    this.cidrGroups.delete(name);
    return this.retranslate((sp) => sp.groupRefs.some((r) => cidrGroupMatches(r, old)));
  }

  private retranslate(affected: (sp: StoredPolicy) => boolean): Issue[] {
    const issues: Issue[] = [];
    for (const [key, sp] of [...this.policies])
      if (affected(sp)) issues.push(...this.replacePolicy(key, sp.obj));
    return issues;
  }

  /**
   * Adds or replaces a node. As with Cilium's --enable-node-selector-labels, a remote node with
   * labels gets its own remote-node-scoped identity (reserved:remote-node, its labels with the
   * node: source, and the cluster label), so fromNodes/toNodes can select it; a node without
   * labels keeps reserved:remote-node (6). The local node's address is the host's.
   */
  upsertNode(name: string, labels: Record<string, string>, ip: string): void {
    const old = this.nodes.get(name);
    let identity: Identity | undefined;
    let id: number = ID.host;
    if (name !== this.config.localNode) {
      if (Object.keys(labels).length === 0) {
        id = ID.remoteNode;
      } else {
        const ls: Label[] = Object.entries(labels).map(([key, value]) => ({
          source: SOURCE_NODE,
          key,
          value,
        }));
        ls.push({ source: SOURCE_RESERVED, key: 'remote-node', value: '' });
        ls.push({ source: SOURCE_K8S, key: LABEL_CLUSTER, value: this.config.clusterName });
        identity = this.identities.allocateNode(new LabelSet(ls)); // before releasing: keeps the number
        id = identity.id;
      }
    }
    if (old !== undefined) this.dropNode(old);
    const rec: NodeRecord = { name, ip, identity };
    this.nodes.set(name, rec);
    this.nodesByIP.set(ip, rec);
    if (!this.byIP.has(ip)) this.ipcache.upsertEndpoint(ip, id, this);
  }

  removeNode(name: string): void {
    const rec = this.nodes.get(name);
    if (rec !== undefined) this.dropNode(rec);
  }

  private dropNode(rec: NodeRecord): void {
    this.nodes.delete(rec.name);
    if (this.nodesByIP.get(rec.ip) === rec) {
      this.nodesByIP.delete(rec.ip);
      if (!this.byIP.has(rec.ip)) this.ipcache.deleteEndpoint(rec.ip, this);
    }
    if (rec.identity !== undefined) this.identities.release(rec.identity);
  }

  private rulesFor(identity: number): InternalRule[] {
    const out: InternalRule[] = [];
    for (const cs of this.selectors.selectorsOf(identity)) {
      const rules = this.rulesBySubject.get(cs);
      if (rules !== undefined) out.push(...rules);
    }
    return out;
  }

  private resolve(state: EndpointState): Issue[] {
    const issues = state.resolve(this.rulesFor(state.identity.id), this.config.enforcementMode);
    if (state.hasEgressNamedPorts) this.namedPortUsers.add(state);
    else this.namedPortUsers.delete(state);
    return issues;
  }

  // ------------------------------------------------------------------ CIDR and FQDN identities

  private acquirePrefix(p: Prefix): void {
    const id = this.identities.allocateCIDR(p);
    if (p.len > 0) this.ipcache.upsertPrefix(p, id.id);
  }

  private releasePrefix(p: Prefix): void {
    this.identities.releaseCIDR(p);
    if (p.len > 0 && this.identities.cidrIdentity(p) === undefined) this.ipcache.deletePrefix(p);
  }

  learnDNS(name: string, ips: string[], ttlSeconds: number, nowMs: number = Date.now()): void {
    this.expireDNS(nowMs);
    this.dns.learn(name, ips, ttlSeconds, nowMs);
  }

  /**
   * Drops DNS answers that expired before `nowMs` (their IPs leave the toFQDNs selections). O(1)
   * unless something is due: decide() calls it for every flow.
   */
  expireDNS(nowMs: number): void {
    if (nowMs > this.dnsNow) this.dnsNow = nowMs;
    if (this.dns.nextExpiry() >= nowMs) return;
    this.dns.gc(nowMs);
  }

  private refreshFQDN(ip: string, nowMs: number): void {
    const p = parsePrefix(ip);
    if (p === undefined || p.len !== 32) return;
    const k = formatPrefix(p);
    // In-cluster endpoints are never fqdn-selected: a pod's address holds no fqdn identity.
    const names = this.byIP.get(ip)?.kind === 'pod' ? [] : this.dns.namesForIP(ip, nowMs);
    if (names.length > 0) {
      if (!this.fqdnHeld.has(k)) {
        this.fqdnHeld.add(k);
        this.acquirePrefix(p);
      }
      this.identities.setFQDNNames(this.identities.cidrIdentity(p)!, new Set(names));
    } else if (this.fqdnHeld.has(k)) {
      this.identities.setFQDNNames(this.identities.cidrIdentity(p)!, new Set());
      this.fqdnHeld.delete(k);
      this.releasePrefix(p);
    }
  }

  // ------------------------------------------------------------------ decide

  identityOf(peer: PeerRef): NumericIdentity {
    return this.peerInfo(peer).id;
  }

  labelsOf(id: NumericIdentity): string[] {
    return this.identities.get(id)?.labels.toStrings() ?? [];
  }

  private peerInfo(peer: PeerRef): PeerInfo & { state?: EndpointState } {
    switch (peer.kind) {
      case 'entity':
        return { id: ENTITY_IDS[peer.entity] ?? ID.world, name: peer.entity };
      case 'ip': {
        const rec = this.byIP.get(peer.ip);
        if (rec !== undefined && rec.kind === 'pod')
          return { id: rec.state.identity.id, name: rec.key, state: rec.state };
        const node = this.nodesByIP.get(peer.ip);
        if (node !== undefined)
          return { id: this.ipcache.lookup(peer.ip), name: `node ${node.name} (${peer.ip})` };
        return { id: this.ipcache.lookup(peer.ip), name: peer.ip };
      }
      case 'endpoint': {
        const rec = this.findEndpoint(peer.namespace, peer.name);
        if (rec === undefined)
          return { id: ID.unknown, name: `${peer.namespace}/${peer.name} (unknown endpoint)` };
        if (rec.kind === 'pod') return { id: rec.state.identity.id, name: rec.key, state: rec.state };
        return { id: this.ipcache.lookup(rec.spec.ip), name: `${rec.key} (${rec.spec.ip})` };
      }
    }
  }

  describeIdentity(id: number): string {
    const identity = this.identities.get(id);
    if (identity === undefined) return `identity ${id}`;
    return `identity ${id} (${shortLabels(identity).join(' ')})`;
  }

  decide(flow: FlowRequest, nowMs?: number): Verdict {
    if (nowMs !== undefined) this.expireDNS(nowMs);
    const src = this.peerInfo(flow.src);
    const dst = this.peerInfo(flow.dst);
    const ctx = { describeIdentity: (id: number) => this.describeIdentity(id) };
    let egress: DirectionDecision | undefined;
    let ingress: DirectionDecision | undefined;
    if (src.state !== undefined) egress = decideDirection(ctx, src.state, 'EGRESS', dst, flow);
    if (dst.state !== undefined) ingress = decideDirection(ctx, dst.state, 'INGRESS', src, flow);
    const denied =
      egress !== undefined && !egress.allowed
        ? egress
        : ingress !== undefined && !ingress.allowed
          ? ingress
          : undefined;
    const allowed = denied === undefined;
    // A flow both sides pass is AUDIT when either passes it only by audit mode (decide.ts).
    const audited = !allowed
      ? undefined
      : egress?.audited !== undefined
        ? egress
        : ingress?.audited !== undefined
          ? ingress
          : undefined;
    const v: Verdict = {
      allowed,
      verdict: !allowed ? 'DROPPED' : audited !== undefined ? 'AUDIT' : 'FORWARDED',
      srcIdentity: src.id,
      dstIdentity: dst.id,
      explanation: [],
    };
    if (egress !== undefined) v.egress = egress;
    if (ingress !== undefined) v.ingress = ingress;
    const decidedBy: DirectionDecision | undefined = denied ?? audited ?? ingress ?? egress;
    if (decidedBy !== undefined) v.decidedBy = decidedBy.direction;
    if (denied?.reason !== undefined) v.reason = denied.reason;
    const head =
      audited?.audited !== undefined
        ? `AUDIT: ${src.name} → ${dst.name}: would be denied (${audited.audited.reason}) in ${audited.direction.toLowerCase()} of ${audited.endpoint} by ${audited.audited.by.map(refText).join(', ') || 'policyEnforcementMode=always'}; audit mode lets it pass`
        : allowed
          ? `ALLOWED: ${src.name} → ${dst.name}`
          : `DENIED (${denied!.reason ?? 'POLICY_DENIED'}) in ${denied!.direction.toLowerCase()} of ${denied!.endpoint}: ${src.name} → ${dst.name}`;
    v.explanation.push(head);
    if (egress === undefined && ingress === undefined)
      v.explanation.push('neither side is a local pod: no policy applies');
    for (const d of [egress, ingress]) if (d !== undefined) v.explanation.push(...d.explanation);
    return v;
  }

  /** Allocation-free verdict lookup on an endpoint's MapState (for the datapath and benchmarks). */
  lookup(endpointKey: string, d: TrafficDirection, identity: number, proto: number, port: number): number {
    const rec = this.endpoints.get(endpointKey);
    if (rec === undefined || rec.kind !== 'pod') return LOOKUP.NONE;
    return rec.state.resolution.mapState.lookup(d, identity, proto, port);
  }

  // ------------------------------------------------------------------ distilled policy

  endpointPolicy(namespace: string | undefined, name: string): EndpointPolicy {
    const rec = this.findEndpoint(namespace, name);
    if (rec === undefined || rec.kind !== 'pod') {
      const off = { enforced: false, defaultDeny: false };
      return {
        endpoint: `${namespace ?? ''}/${name}`,
        identity: ID.unknown,
        ingress: off,
        egress: off,
        entries: [],
        selectedBy: [],
      };
    }
    const res = rec.state.resolution;
    const entries: MapStateEntry[] = [];
    for (const e of res.mapState.values()) entries.push(toMapStateEntry(e));
    entries.sort(cmpEntry);
    return {
      endpoint: rec.key,
      identity: rec.state.identity.id,
      ingress: { ...res.ingress },
      egress: { ...res.egress },
      entries,
      selectedBy: uniqRefList(res.rules.map((r) => r.ref)),
    };
  }

  drainEndpointChanges(namespace: string | undefined, name: string): EndpointChanges {
    const rec = this.findEndpoint(namespace, name);
    if (rec === undefined || rec.kind !== 'pod')
      return { identity: ID.unknown, full: true, removed: [], added: [] };
    const d = rec.state.drainChanges();
    const out: EndpointChanges = { identity: rec.state.identity.id, full: d.full, removed: [], added: [] };
    for (const c of d.changes) {
      if (c.added) out.added.push(toMapStateEntry(c.entry));
      else out.removed.push({ key: keyOf(c.entry), verdict: c.entry.verdict, derivedFrom: [] });
    }
    return out;
  }

  /** Re-resolves every endpoint from scratch (the baseline incremental updates are measured against). */
  regenerateAll(): Issue[] {
    const issues: Issue[] = [];
    for (const set of this.statesByIdentity.values()) for (const s of set) issues.push(...this.resolve(s));
    return issues;
  }

  /** How many MapState entries an endpoint has (0 when unknown), without building them. */
  entryCount(endpointKey: string): number {
    const rec = this.endpoints.get(endpointKey);
    return rec === undefined || rec.kind !== 'pod' ? 0 : rec.state.resolution.mapState.size;
  }

  /** Keys of pods, for the CLI. */
  endpointKeys(): string[] {
    return [...this.endpoints.values()].filter((r) => r.kind === 'pod').map((r) => r.key);
  }

  /** Whether the last resolution of an endpoint failed (it keeps its previous policy). */
  endpointFailed(key: string): boolean {
    const rec = this.endpoints.get(key);
    return rec !== undefined && rec.kind === 'pod' && rec.state.failed;
  }
}

/** The rules of a stored policy whose subject selects an identity. */
function selecting(sp: StoredPolicy | undefined, id: number): InternalRule[] {
  if (sp === undefined) return [];
  const out: InternalRule[] = [];
  sp.rules.forEach((r, i) => {
    if (sp.subjects[i]!.ids.has(id)) out.push(r);
  });
  return out;
}

function matchesEither<R, O>(ref: R, a: O | undefined, b: O, match: (r: R, o: O) => boolean): boolean {
  return (a !== undefined && match(ref, a)) || match(ref, b);
}

function hasNamed(ports: readonly ContainerPort[] | undefined): boolean {
  return ports?.some((p) => p.name !== undefined) ?? false;
}

function keyOf(e: StateEntry<FilterGroup>): MapStateEntry['key'] {
  return { direction: e.direction, identity: e.identity, proto: e.proto, portLo: e.portLo, portHi: e.portHi };
}

function toMapStateEntry(e: StateEntry<FilterGroup>): MapStateEntry {
  const fs = filtersOfEntry(e);
  const m: MapStateEntry = {
    key: keyOf(e),
    verdict: e.verdict,
    derivedFrom: uniqRefList(fs.map((f) => f.entry.ref)),
  };
  if (e.verdict === 'redirect') {
    const l7 = unionL7(fs.flatMap((f) => (f.entry.l7 === undefined ? [] : [f.entry.l7])));
    if (l7 !== undefined) m.l7 = l7;
  }
  return m;
}

function cmpEntry(a: MapStateEntry, b: MapStateEntry): number {
  const x = a.key;
  const y = b.key;
  if (x.direction !== y.direction) return x.direction < y.direction ? -1 : 1;
  return (
    x.identity - y.identity ||
    x.proto - y.proto ||
    x.portLo - y.portLo ||
    x.portHi - y.portHi ||
    (a.verdict < b.verdict ? -1 : a.verdict > b.verdict ? 1 : 0)
  );
}

/** Labels worth showing: leave out Cilium's metadata labels and the covering cidr: prefixes. */
export function shortLabels(identity: Identity): string[] {
  const all = identity.labels.toStrings();
  if (identity.kind === 'cidr') {
    const own = `cidr:${formatPrefix(identity.prefix!)}`;
    return all.filter((l) => !l.startsWith('cidr:') || l === own);
  }
  return all.filter(
    (l) => !l.startsWith('k8s:io.cilium.k8s.') && !l.startsWith('k8s:io.cilium.k8s.namespace.labels'),
  );
}

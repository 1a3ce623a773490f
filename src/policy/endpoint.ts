// One endpoint's resolved policy: the rules selecting it, turned into per-peer filters over cached
// selectors, and distilled into its MapState. Selection changes (an identity joining or leaving a
// selector) update the MapState incrementally; a rule change re-resolves the endpoint.

import type { Identity } from '../identity/allocator.ts';
import { compileRequirements } from '../labels/selector.ts';
import type { Issue } from '../policy-api/issue.ts';
import { type ChangeLog, logChange, MapState, newChangeLog, type StateEntry } from './mapstate.ts';
import { endpointPeer, entityPeer, type PeerSelector, WILDCARD } from './peer.ts';
import { ALL_PORTS, formatPortSpec, type PortSpec } from './ports.ts';
import type { InternalRule, PeerChoice, RuleEntry } from './rules.ts';
import type { CachedSelector, SelectionUser, SelectorCache } from './selectorcache.ts';
import type {
  ContainerPort,
  DirectionPolicy,
  EndpointSpec,
  L7RuleSet,
  MapStateVerdict,
  RuleRef,
  TrafficDirection,
} from './types.ts';
import { PROTO } from './types.ts';

/** One (entry, peer) pair of a selecting rule, bound to its cached selector. */
export interface Filter {
  entry: RuleEntry;
  peer: PeerChoice;
  cs: CachedSelector;
  verdict: MapStateVerdict;
  /** Absent for synthetic filters (implicit allow-all, allow-localhost). */
  rule?: InternalRule;
  synthetic?: 'default-allow' | 'allow-localhost';
  /** The rule a synthetic default-allow is attributed to (the first enforcing one). */
  attributedTo?: InternalRule;
  /** Position within its rule (rules are ordered by key): the order a fresh resolution adds in. */
  ord: number;
}

/**
 * Filters that put the same keys for the same identities (one cached selector, direction,
 * verdict, L7 parser and port list): the group is expanded once per selected identity however
 * many rules share it, as Cilium merges rules per (port, protocol, L7) before expanding
 * identities. MapState entries record groups; their members are the rules behind an entry.
 */
export interface FilterGroup {
  readonly key: string;
  readonly cs: CachedSelector;
  /** The first member's entry: direction, ports, parser and verdict are the same for all. */
  readonly entry: RuleEntry;
  readonly verdict: MapStateVerdict;
  readonly members: Filter[];
  /** Members in resolution order, cached until the membership changes. */
  ordered?: Filter[] | undefined;
  /** Named-port groups remember what they inserted per identity, to remove exactly that. */
  expanded?: Map<number, Array<[number, number, number]>>;
}

/** Resolution order of filters: rules by key, then position in the rule; synthetic ones last. */
export function cmpFilter(a: Filter, b: Filter): number {
  if (a.rule === undefined || b.rule === undefined) {
    if (a.rule !== undefined) return -1;
    if (b.rule !== undefined) return 1;
    return a.ord - b.ord;
  }
  if (a.rule.key !== b.rule.key) return a.rule.key < b.rule.key ? -1 : 1;
  return a.ord - b.ord;
}

function orderedMembers(g: FilterGroup): Filter[] {
  if (g.ordered === undefined) g.ordered = g.members.length < 2 ? g.members : [...g.members].sort(cmpFilter);
  return g.ordered;
}

/** The filters behind a MapState entry, in resolution order. */
export function filtersOfEntry(e: StateEntry<FilterGroup>): Filter[] {
  if (e.more === undefined) return e.one === undefined ? [] : orderedMembers(e.one);
  const out: Filter[] = [];
  for (const g of e.more.keys()) for (const f of g.members) out.push(f);
  return out.sort(cmpFilter);
}

/**
 * Per port list (not per entry: rules without toPorts share ALL_PORTS, so thousands of L3 rules
 * compute and hold one), its part of the group key and whether it names a port.
 */
const portsInfo = new WeakMap<readonly PortSpec[], { key: string; named: boolean }>();
function portsInfoOf(ports: readonly PortSpec[]): { key: string; named: boolean } {
  let info = portsInfo.get(ports);
  if (info === undefined) {
    info = {
      key: ports.map((p) => `${p.proto}/${p.lo}-${p.hi}/${p.named ?? ''}`).join(','),
      named: ports.some((p) => p.named !== undefined),
    };
    portsInfo.set(ports, info);
  }
  return info;
}

function groupKey(f: Filter): string {
  const e = f.entry;
  return `${e.direction}|${f.verdict}|${e.l7?.parser ?? ''}|${portsInfoOf(e.ports).key}|${f.cs.key}`;
}

const NO_REQUIRES: readonly never[] = [];

export interface ResolveContext {
  selectors: SelectorCache;
  /** Container ports of the pods holding an identity (0 = every pod), for egress named ports. */
  namedPortsOf(identity: number): readonly ContainerPort[];
  clusterName: string;
}

export const LOCALHOST_REF: RuleRef = {
  kind: 'AgentConfig',
  name: 'allow-localhost',
  ruleIndex: 0,
  section: 'ingress',
  entryIndex: -1,
  pos: { file: '<agent>', line: 0, column: 0 },
};

interface Resolution {
  ingress: DirectionPolicy;
  egress: DirectionPolicy;
  rules: InternalRule[];
  filters: Set<Filter>;
  /** Each rule's filters, for taking one rule out. */
  byRule: Map<InternalRule, Filter[]>;
  /** The implicit allow-all filters of directions without default deny. */
  defaultAllow: Partial<Record<TrafficDirection, Filter>>;
  groups: Map<string, FilterGroup>;
  byCS: Map<CachedSelector, Set<FilterGroup>>;
  /** Egress groups with named ports: they resolve on the peer's pods, so pod changes re-expand them. */
  namedEgress: Set<FilterGroup>;
  mapState: MapState<FilterGroup>;
  /** Some selecting rule has from/toRequires (they rewrite other rules' peers). */
  requires: boolean;
}

/** Net entry-level changes handed to a consumer; `full` when it must start over. */
export interface DrainedChanges {
  full: boolean;
  changes: Array<{ entry: StateEntry<FilterGroup>; added: boolean }>;
}

export class EndpointState implements SelectionUser {
  private res: Resolution | undefined;
  /** The change log, from the first drain on (until then changes cost nothing extra). */
  private log: ChangeLog<FilterGroup> | undefined;
  /** Set when the last resolution failed and the previous policy is kept. */
  failed = false;
  /** PolicyAuditMode: every rule selecting this endpoint audits (read by the next resolve). */
  auditMode = false;

  constructor(
    readonly key: string,
    public spec: EndpointSpec,
    public identity: Identity,
    private readonly ctx: ResolveContext,
  ) {}

  get resolution(): Resolution {
    if (this.res === undefined) throw new Error(`endpoint ${this.key} has no policy yet`);
    return this.res;
  }

  get hasEgressNamedPorts(): boolean {
    return (this.res?.namedEgress.size ?? 0) > 0;
  }

  /**
   * The container ports of the pods holding these identities changed (0: of any pod): re-expands
   * the egress named-port filters that select them, instead of re-resolving the endpoint.
   */
  refreshNamedPorts(ids: Iterable<number>): void {
    const res = this.res;
    if (res === undefined) return;
    for (const id of ids) {
      for (const g of res.namedEgress) {
        const before = g.expanded!.get(id);
        if (before === undefined) continue;
        if (sameKeys(before, this.resolvePorts(g.entry.ports, 'EGRESS', id))) continue;
        this.expand(res, g, id, false);
        this.expand(res, g, id, true);
      }
    }
  }

  /**
   * Builds the policy from the selecting rules. On a resolution error the previous policy stays
   * (Cilium: endpoint regeneration fails) and the errors are returned.
   */
  resolve(rules: InternalRule[], mode: 'default' | 'always' | 'never'): Issue[] {
    const issues = conflicts(rules, this.key);
    if (issues.length > 0 && this.res !== undefined) {
      this.failed = true;
      return issues;
    }
    this.failed = issues.length > 0;
    const sorted = [...rules].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    const dirPol = (d: TrafficDirection): DirectionPolicy => directionPolicy(sorted, d, mode, this.auditMode);
    const next: Resolution = {
      ingress: dirPol('INGRESS'),
      egress: dirPol('EGRESS'),
      rules: sorted,
      filters: new Set(),
      byRule: new Map(),
      defaultAllow: {},
      groups: new Map(),
      byCS: new Map(),
      namedEgress: new Set(),
      mapState: new MapState<FilterGroup>(),
      requires: false,
    };
    if (mode !== 'never') {
      const requires = collectRequires(sorted);
      next.requires = requires !== undefined;
      for (const r of sorted) this.addRuleFilters(next, r, requires);
      for (const d of ['INGRESS', 'EGRESS'] as const) {
        const pol = d === 'INGRESS' ? next.ingress : next.egress;
        if (pol.enforced && !pol.defaultDeny) this.addSynthetic(next, d, WILDCARD, 'default-allow', sorted);
      }
      // allow-localhost=always: the local host may reach its pods even under default-deny.
      if (next.ingress.enforced) {
        this.addSynthetic(
          next,
          'INGRESS',
          entityPeer('host', this.ctx.clusterName),
          'allow-localhost',
          sorted,
        );
      }
    }
    const prev = this.res;
    this.res = next;
    if (this.log !== undefined) this.logResolution(prev, next, this.log);
    if (prev !== undefined) this.drop(prev);
    return issues;
  }

  /**
   * One policy changed: takes out the filters of `removed` and adds those of `added`, touching only
   * the MapState entries they change (Cilium's incremental policy update). Undefined when the change
   * is not local and the caller must resolve in full: enforcement or default deny changes, any
   * from/toRequires (they rewrite other rules' peers), a new L7 conflict, a failed endpoint.
   */
  applyRuleDelta(
    removed: readonly InternalRule[],
    added: readonly InternalRule[],
    mode: 'default' | 'always' | 'never',
  ): Issue[] | undefined {
    const res = this.res;
    if (res === undefined || this.failed || mode === 'never' || res.requires) return undefined;
    if (added.some((r) => r.requires !== undefined)) return undefined;
    const rules = [...res.rules];
    for (const r of removed) {
      const i = rules.indexOf(r);
      if (i < 0) return undefined;
      rules.splice(i, 1);
    }
    for (const r of added) rules.splice(sortedIndex(rules, r.key), 0, r);
    if (added.some((r) => r.entries.some((e) => e.l7 !== undefined)) && conflicts(rules, this.key).length > 0)
      return undefined;
    for (const d of ['INGRESS', 'EGRESS'] as const) {
      const pol = d === 'INGRESS' ? res.ingress : res.egress;
      // from the previous answer and the change alone: a scan of every rule only when a rule that
      // decided it went (thousands of policies on one endpoint stay linear)
      const enforced =
        mode === 'always' || stillSome(pol.enforced, removed, added, rules, (r) => r.enforces[d]);
      if (pol.enforced !== enforced) return undefined;
      if (!enforced) continue;
      const defaultDeny =
        mode === 'always' || stillSome(pol.defaultDeny, removed, added, rules, (r) => r.defaultDeny[d]);
      if (pol.defaultDeny !== defaultDeny) return undefined;
      // audit: the default deny audits unless an enforcing policy (or the mode) brings it too
      const enforcingDD =
        !this.auditMode &&
        (mode === 'always' ||
          stillSome(
            pol.defaultDeny && pol.auditDefaultDeny !== true,
            removed,
            added,
            rules,
            (r) => r.defaultDeny[d] && r.audit !== true,
          ));
      if ((pol.auditDefaultDeny === true) !== (defaultDeny && !enforcingDD)) return undefined;
    }
    for (const r of added) this.addRuleFilters(res, r, undefined);
    for (const r of removed) {
      for (const f of res.byRule.get(r) ?? []) this.removeFilter(res, f);
      res.byRule.delete(r);
    }
    res.rules = rules;
    // The implicit allow-all is attributed to the first enforcing rule: follow it if that changed.
    for (const d of ['INGRESS', 'EGRESS'] as const) {
      const old = res.defaultAllow[d];
      if (old === undefined) continue;
      if (old.attributedTo === rules.find((r) => r.enforces[d])) continue;
      this.addSynthetic(res, d, WILDCARD, 'default-allow', rules);
      this.removeFilter(res, old);
    }
    return [];
  }

  /** The filters of one rule, in order, into a resolution. */
  private addRuleFilters(res: Resolution, r: InternalRule, requires: InternalRule['requires']): void {
    let ord = 0;
    for (const e of r.entries) {
      const pol = e.direction === 'INGRESS' ? res.ingress : res.egress;
      if (!pol.enforced) continue;
      const extra = requires?.[e.direction][e.deny ? 'deny' : 'allow'] ?? NO_REQUIRES;
      for (const p of e.peers) {
        const peer: PeerChoice =
          p.reqs === undefined || extra.length === 0
            ? p
            : { ...p, sel: endpointPeer(compileRequirements([...p.reqs, ...extra])) };
        const verdict: MapStateVerdict = e.deny
          ? r.audit === true || this.auditMode
            ? 'audit'
            : 'deny'
          : e.l7 !== undefined
            ? 'redirect'
            : 'allow';
        this.addFilter(res, {
          entry: e,
          peer,
          cs: this.ctx.selectors.add(peer.sel),
          verdict,
          rule: r,
          ord: ord++,
        });
      }
    }
  }

  /** A re-resolution as entry changes: the keys that came and went (enforcement changes: full). */
  private logResolution(prev: Resolution | undefined, next: Resolution, log: ChangeLog<FilterGroup>): void {
    next.mapState.log = log;
    if (log.overflow) return;
    if (prev === undefined || !sameDir(prev.ingress, next.ingress) || !sameDir(prev.egress, next.egress)) {
      log.overflow = true;
      log.changes.clear();
      return;
    }
    const before = prev.mapState.keyed();
    const after = next.mapState.keyed();
    for (const [k, e] of after) if (!before.has(k)) logChange(log, k, e, true);
    for (const [k, e] of before) if (!after.has(k)) logChange(log, k, e, false);
  }

  /**
   * The net changes since the previous drain, and a fresh log from now on. The first drain
   * starts the log and answers `full`.
   */
  drainChanges(): DrainedChanges {
    const res = this.res;
    const log = this.log;
    this.log = newChangeLog();
    if (res !== undefined) res.mapState.log = this.log;
    if (res === undefined || log === undefined || log.overflow) return { full: true, changes: [] };
    const current = res.mapState.keyed();
    const changes: DrainedChanges['changes'] = [];
    for (const [k, c] of log.changes) {
      // an added entry may have been rebuilt by a re-resolution since: report the current object
      changes.push(c.added ? { entry: current.get(k) ?? c.entry, added: true } : c);
    }
    return { full: false, changes };
  }

  dispose(): void {
    if (this.res !== undefined) this.drop(this.res);
    this.res = undefined;
  }

  selectionChanged(cs: CachedSelector, added: readonly number[], removed: readonly number[]): void {
    const res = this.res;
    if (res === undefined) return;
    for (const g of res.byCS.get(cs) ?? []) {
      for (const id of removed) this.expand(res, g, id, false);
      for (const id of added) this.expand(res, g, id, true);
    }
  }

  private addSynthetic(
    res: Resolution,
    d: TrafficDirection,
    sel: PeerSelector,
    kind: 'default-allow' | 'allow-localhost',
    rules: InternalRule[],
  ): void {
    const first = rules.find((r) => r.enforces[d]);
    const ref: RuleRef =
      kind === 'allow-localhost'
        ? LOCALHOST_REF
        : first !== undefined
          ? { ...first.ref, section: d === 'INGRESS' ? 'ingress' : 'egress', entryIndex: -1 }
          : { ...LOCALHOST_REF, name: 'enforcement-mode', section: d === 'INGRESS' ? 'ingress' : 'egress' };
    const entry: RuleEntry = { direction: d, deny: false, peers: [], ports: ALL_PORTS, ref };
    const peer: PeerChoice = { sel, field: kind === 'allow-localhost' ? 'reserved:host' : '(any peer)' };
    const ord = kind === 'allow-localhost' ? 2 : d === 'INGRESS' ? 0 : 1;
    const f: Filter = {
      entry,
      peer,
      cs: this.ctx.selectors.add(sel),
      verdict: 'allow',
      synthetic: kind,
      ord,
    };
    if (kind === 'default-allow' && first !== undefined) f.attributedTo = first;
    this.addFilter(res, f);
  }

  /** Adds a filter to its group; only a new group is expanded (a shared one already is). */
  private addFilter(res: Resolution, f: Filter): void {
    res.filters.add(f);
    if (f.rule !== undefined) {
      const list = res.byRule.get(f.rule);
      if (list === undefined) res.byRule.set(f.rule, [f]);
      else list.push(f);
    } else if (f.synthetic === 'default-allow') res.defaultAllow[f.entry.direction] = f;
    const k = groupKey(f);
    const g = res.groups.get(k);
    if (g !== undefined) {
      g.members.push(f);
      g.ordered = undefined;
      return;
    }
    const ng: FilterGroup = { key: k, cs: f.cs, entry: f.entry, verdict: f.verdict, members: [f] };
    res.groups.set(k, ng);
    if (portsInfoOf(f.entry.ports).named) {
      ng.expanded = new Map();
      if (f.entry.direction === 'EGRESS') res.namedEgress.add(ng);
    }
    let set = res.byCS.get(f.cs);
    if (set === undefined) {
      set = new Set();
      res.byCS.set(f.cs, set);
      f.cs.users.add(this);
    }
    set.add(ng);
    if (f.cs.wildcard) this.expand(res, ng, 0, true);
    else for (const id of f.cs.ids) this.expand(res, ng, id, true);
  }

  /** Takes a filter out of its group; the last one out removes the group's entries. */
  private removeFilter(res: Resolution, f: Filter): void {
    res.filters.delete(f);
    const k = groupKey(f);
    const g = res.groups.get(k);
    if (g === undefined) return;
    const i = g.members.indexOf(f);
    if (i < 0) return;
    g.members.splice(i, 1);
    g.ordered = undefined;
    if (g.members.length === 0) {
      if (g.expanded !== undefined) for (const id of [...g.expanded.keys()]) this.expand(res, g, id, false);
      else if (g.cs.wildcard) this.expand(res, g, 0, false);
      else for (const id of g.cs.ids) this.expand(res, g, id, false);
      res.groups.delete(k);
      res.namedEgress.delete(g);
      const set = res.byCS.get(g.cs);
      set?.delete(g);
      if (set?.size === 0) {
        res.byCS.delete(g.cs);
        g.cs.users.delete(this);
      }
    }
    this.ctx.selectors.release(f.cs);
  }

  private drop(res: Resolution): void {
    const cur = this.res;
    for (const cs of res.byCS.keys())
      if (cur === undefined || cur === res || !cur.byCS.has(cs)) cs.users.delete(this);
    for (const f of res.filters) this.ctx.selectors.release(f.cs);
  }

  /** Inserts (or removes) the MapState keys of one group for one peer identity. */
  private expand(res: Resolution, g: FilterGroup, id: number, add: boolean): void {
    const ms = res.mapState;
    const d = g.entry.direction;
    const parser = g.entry.l7?.parser;
    if (g.expanded !== undefined) {
      let keys: Array<[number, number, number]>;
      if (add) {
        keys = this.resolvePorts(g.entry.ports, d, id);
        g.expanded.set(id, keys);
      } else {
        keys = g.expanded.get(id) ?? [];
        g.expanded.delete(id);
      }
      for (const [proto, lo, hi] of keys) {
        if (add) ms.add(d, id, proto, lo, hi, g.verdict, parser, g);
        else ms.remove(d, id, proto, lo, hi, g.verdict, parser, g);
      }
      return;
    }
    for (const p of g.entry.ports) {
      if (add) ms.add(d, id, p.proto, p.lo, p.hi, g.verdict, parser, g);
      else ms.remove(d, id, p.proto, p.lo, p.hi, g.verdict, parser, g);
    }
  }

  /** Named ports resolve on the destination pod: ingress the subject, egress the peer. */
  private resolvePorts(
    ports: readonly PortSpec[],
    d: TrafficDirection,
    peer: number,
  ): Array<[number, number, number]> {
    const out: Array<[number, number, number]> = [];
    for (const p of ports) {
      if (p.named === undefined) {
        out.push([p.proto, p.lo, p.hi]);
        continue;
      }
      const cands = d === 'INGRESS' ? (this.spec.ports ?? []) : this.ctx.namedPortsOf(peer);
      const seen = new Set<number>();
      for (const cp of cands) {
        if (cp.name?.toLowerCase() !== p.named) continue;
        const cproto = cp.protocol === 'UDP' ? PROTO.UDP : cp.protocol === 'SCTP' ? PROTO.SCTP : PROTO.TCP;
        if (p.proto !== PROTO.ANY && p.proto !== cproto) continue;
        if (seen.has(cp.port)) continue;
        seen.add(cp.port);
        out.push([p.proto, cp.port, cp.port]);
      }
    }
    return out;
  }
}

/**
 * Whether some rule of `rules` (the old list with `removed` out and `added` in) has `f`, given
 * whether some old rule had it.
 */
function stillSome(
  old: boolean,
  removed: readonly InternalRule[],
  added: readonly InternalRule[],
  rules: readonly InternalRule[],
  f: (r: InternalRule) => boolean,
): boolean {
  if (added.some(f)) return true;
  if (!old) return false;
  if (!removed.some(f)) return true;
  return rules.some(f);
}

/** Where a rule with this key goes in a list sorted by key. */
function sortedIndex(rules: readonly InternalRule[], key: string): number {
  let lo = 0;
  let hi = rules.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (rules[mid]!.key < key) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/**
 * Enforcement and default deny of one direction. The default deny is audited when no enforcing
 * rule brings it: only audited policies do, or the endpoint is in PolicyAuditMode. One enforcing
 * rule with default deny keeps it enforced (audit never opens what another policy denies).
 */
function directionPolicy(
  rules: readonly InternalRule[],
  d: TrafficDirection,
  mode: 'default' | 'always' | 'never',
  auditMode: boolean,
): DirectionPolicy {
  if (mode === 'never') return { enforced: false, defaultDeny: false };
  const enforced = mode === 'always' || rules.some((r) => r.enforces[d]);
  const defaultDeny = enforced && (mode === 'always' || rules.some((r) => r.defaultDeny[d]));
  const out: DirectionPolicy = { enforced, defaultDeny };
  // policyEnforcementMode=always brings its own default deny, which audits only with the endpoint
  const enforcingDD =
    !auditMode && (mode === 'always' || rules.some((r) => r.defaultDeny[d] && r.audit !== true));
  if (defaultDeny && !enforcingDD) out.auditDefaultDeny = true;
  return out;
}

function sameDir(a: DirectionPolicy, b: DirectionPolicy): boolean {
  return (
    a.enforced === b.enforced && a.defaultDeny === b.defaultDeny && a.auditDefaultDeny === b.auditDefaultDeny
  );
}

/** The from/toRequires of all selecting rules, per direction and allow/deny; undefined when none. */
function collectRequires(rules: readonly InternalRule[]): InternalRule['requires'] {
  let out: InternalRule['requires'];
  for (const r of rules) {
    if (r.requires === undefined) continue;
    out ??= { INGRESS: { allow: [], deny: [] }, EGRESS: { allow: [], deny: [] } };
    for (const d of ['INGRESS', 'EGRESS'] as const) {
      out[d].allow.push(...r.requires[d].allow);
      out[d].deny.push(...r.requires[d].deny);
    }
  }
  return out;
}

function sameKeys(a: ReadonlyArray<readonly number[]>, b: ReadonlyArray<readonly number[]>): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) {
    const x = a[i]!;
    const y = b[i]!;
    if (x[0] !== y[0] || x[1] !== y[1] || x[2] !== y[2]) return false;
  }
  return true;
}

/** Same selector and port with two different L7 parsers: Cilium's "cannot merge conflicting L7 parsers". */
function conflicts(rules: InternalRule[], endpoint: string): Issue[] {
  const seen = new Map<string, { parser: string; ref: RuleRef }>();
  const out: Issue[] = [];
  for (const r of rules) {
    for (const e of r.entries) {
      if (e.l7 === undefined) continue;
      for (const peer of e.peers) {
        for (const p of e.ports) {
          const k = `${e.direction}|${peer.sel.key}|${p.proto}|${p.named ?? `${p.lo}-${p.hi}`}`;
          const prev = seen.get(k);
          if (prev === undefined) {
            seen.set(k, { parser: e.l7.parser, ref: e.ref });
            continue;
          }
          if (prev.parser === e.l7.parser) continue;
          out.push({
            code: 'conflicting-l7-parsers',
            severity: 'error',
            path: `${e.ref.ruleIndex > 0 ? `specs[${e.ref.ruleIndex}]` : 'spec'}.${e.ref.section}[${e.ref.entryIndex}]`,
            pos: e.ref.pos,
            message:
              `cannot merge conflicting L7 parsers (${prev.parser}/${e.l7.parser}) for ${peer.field} on ` +
              `${formatPortSpec(p)} of endpoint ${endpoint}: ${refText(prev.ref)} and ${refText(e.ref)}; ` +
              'the endpoint keeps its previous policy',
            object: e.ref.namespace === undefined ? e.ref.name : `${e.ref.namespace}/${e.ref.name}`,
          });
        }
      }
    }
  }
  return out;
}

export function refText(r: RuleRef): string {
  const name = r.namespace === undefined ? r.name : `${r.namespace}/${r.name}`;
  const where =
    r.section === '' ? '' : r.entryIndex >= 0 ? ` ${r.section}[${r.entryIndex}]` : ` ${r.section}`;
  return `${r.kind} ${name} (${r.pos.file}:${r.pos.line}:${r.pos.column})${where}`;
}

export function unionL7(sets: readonly L7RuleSet[]): L7RuleSet | undefined {
  const first = sets[0];
  if (first === undefined) return undefined;
  switch (first.parser) {
    case 'http':
      return { parser: 'http', rules: sets.flatMap((s) => (s.parser === 'http' ? s.rules : [])) };
    case 'kafka':
      return { parser: 'kafka', rules: sets.flatMap((s) => (s.parser === 'kafka' ? s.rules : [])) };
    case 'dns':
      return { parser: 'dns', rules: sets.flatMap((s) => (s.parser === 'dns' ? s.rules : [])) };
  }
}

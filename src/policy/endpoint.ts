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
  /** Named-port filters remember what they inserted per identity, to remove exactly that. */
  expanded?: Map<number, Array<[number, number, number]>>;
}

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
  filters: Filter[];
  byCS: Map<CachedSelector, Filter[]>;
  /** Egress filters with named ports: they resolve on the peer's pods, so pod changes re-expand them. */
  namedEgress: Filter[];
  mapState: MapState<Filter>;
}

/** Net entry-level changes handed to a consumer; `full` when it must start over. */
export interface DrainedChanges {
  full: boolean;
  changes: Array<{ entry: StateEntry<Filter>; added: boolean }>;
}

export class EndpointState implements SelectionUser {
  private res: Resolution | undefined;
  /** The change log, from the first drain on (until then changes cost nothing extra). */
  private log: ChangeLog<Filter> | undefined;
  /** Set when the last resolution failed and the previous policy is kept. */
  failed = false;

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
    return (this.res?.namedEgress.length ?? 0) > 0;
  }

  /**
   * The container ports of the pods holding these identities changed (0: of any pod): re-expands
   * the egress named-port filters that select them, instead of re-resolving the endpoint.
   */
  refreshNamedPorts(ids: Iterable<number>): void {
    const res = this.res;
    if (res === undefined) return;
    for (const id of ids) {
      for (const f of res.namedEgress) {
        const before = f.expanded!.get(id);
        if (before === undefined) continue;
        if (sameKeys(before, this.resolvePorts(f.entry.ports, 'EGRESS', id))) continue;
        this.expand(res, f, id, false);
        this.expand(res, f, id, true);
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
    const dirPol = (d: TrafficDirection): DirectionPolicy => {
      if (mode === 'never') return { enforced: false, defaultDeny: false };
      const enforced = mode === 'always' || sorted.some((r) => r.enforces[d]);
      const defaultDeny = mode === 'always' || sorted.some((r) => r.defaultDeny[d]);
      return { enforced, defaultDeny: enforced && defaultDeny };
    };
    const next: Resolution = {
      ingress: dirPol('INGRESS'),
      egress: dirPol('EGRESS'),
      rules: sorted,
      filters: [],
      byCS: new Map(),
      namedEgress: [],
      mapState: new MapState<Filter>(),
    };
    if (mode !== 'never') {
      const requires = collectRequires(sorted);
      for (const r of sorted) {
        for (const e of r.entries) {
          const pol = e.direction === 'INGRESS' ? next.ingress : next.egress;
          if (!pol.enforced) continue;
          const extra = requires?.[e.direction][e.deny ? 'deny' : 'allow'] ?? [];
          for (const p of e.peers) {
            const peer: PeerChoice =
              p.reqs === undefined || extra.length === 0
                ? p
                : { ...p, sel: endpointPeer(compileRequirements([...p.reqs, ...extra])) };
            const verdict: MapStateVerdict = e.deny ? 'deny' : e.l7 !== undefined ? 'redirect' : 'allow';
            this.addFilter(next, { entry: e, peer, cs: this.ctx.selectors.add(peer.sel), verdict, rule: r });
          }
        }
      }
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

  /** A re-resolution as entry changes: the keys that came and went (enforcement changes: full). */
  private logResolution(prev: Resolution | undefined, next: Resolution, log: ChangeLog<Filter>): void {
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
    for (const f of res.byCS.get(cs) ?? []) {
      for (const id of removed) this.expand(res, f, id, false);
      for (const id of added) this.expand(res, f, id, true);
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
    this.addFilter(res, { entry, peer, cs: this.ctx.selectors.add(sel), verdict: 'allow', synthetic: kind });
  }

  private addFilter(res: Resolution, f: Filter): void {
    if (f.entry.ports.some((p) => p.named !== undefined)) {
      f.expanded = new Map();
      if (f.entry.direction === 'EGRESS') res.namedEgress.push(f);
    }
    res.filters.push(f);
    let list = res.byCS.get(f.cs);
    if (list === undefined) {
      list = [];
      res.byCS.set(f.cs, list);
      f.cs.users.add(this);
    }
    list.push(f);
    if (f.cs.wildcard) this.expand(res, f, 0, true);
    else for (const id of f.cs.ids) this.expand(res, f, id, true);
  }

  private drop(res: Resolution): void {
    const cur = this.res;
    for (const cs of res.byCS.keys())
      if (cur === undefined || cur === res || !cur.byCS.has(cs)) cs.users.delete(this);
    for (const f of res.filters) this.ctx.selectors.release(f.cs);
  }

  /** Inserts (or removes) the MapState keys of one filter for one peer identity. */
  private expand(res: Resolution, f: Filter, id: number, add: boolean): void {
    const ms = res.mapState;
    const d = f.entry.direction;
    const parser = f.entry.l7?.parser;
    if (f.expanded !== undefined) {
      let keys: Array<[number, number, number]>;
      if (add) {
        keys = this.resolvePorts(f.entry.ports, d, id);
        f.expanded.set(id, keys);
      } else {
        keys = f.expanded.get(id) ?? [];
        f.expanded.delete(id);
      }
      for (const [proto, lo, hi] of keys) {
        if (add) ms.add(d, id, proto, lo, hi, f.verdict, parser, f);
        else ms.remove(d, id, proto, lo, hi, f.verdict, parser, f);
      }
      return;
    }
    for (const p of f.entry.ports) {
      if (add) ms.add(d, id, p.proto, p.lo, p.hi, f.verdict, parser, f);
      else ms.remove(d, id, p.proto, p.lo, p.hi, f.verdict, parser, f);
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

function sameDir(a: DirectionPolicy, b: DirectionPolicy): boolean {
  return a.enforced === b.enforced && a.defaultDeny === b.defaultDeny;
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

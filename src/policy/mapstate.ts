// MapState: an endpoint's policy map, keyed as Cilium keys it: (direction, peer identity or 0,
// protocol or 0, destination port range) → allow | deny | redirect. Lookup semantics: every entry
// covering the packet applies: any deny ⇒ drop; else any allow ⇒ pass; else redirects ⇒ the
// proxy with the union of their L7 rules; none ⇒ the direction's default. Audit entries (denies
// of audited policies) decide nothing: they only mark what the rest lets pass as AUDIT. Inserts and lookups go
// through an index per direction and protocol slot from identity to entries: never a scan.

import type { MapStateVerdict, ProtoNumber, TrafficDirection } from './types.ts';
import { PROTO } from './types.ts';

export interface StateEntry<F> {
  direction: TrafficDirection;
  identity: number;
  proto: ProtoNumber;
  portLo: number;
  portHi: number;
  verdict: MapStateVerdict;
  /** L7 parser for redirect entries (entries with different parsers are kept apart). */
  parser?: string;
  /**
   * Which filters put this entry here (and how many times): most entries have one, held inline
   * (`one`, `oneN`); a second moves them all into `more`. A Map per entry was most of the
   * allocation (and the garbage collection) of a join with thousands of entries.
   */
  one: F | undefined;
  oneN: number;
  more: Map<F, number> | undefined;
}

const SLOTS = 6;
function slotOf(proto: number): number {
  switch (proto) {
    case PROTO.ANY:
      return 0;
    case PROTO.TCP:
      return 1;
    case PROTO.UDP:
      return 2;
    case PROTO.SCTP:
      return 3;
    case PROTO.ICMP:
      return 4;
    case PROTO.ICMPV6:
      return 5;
    default:
      return -1;
  }
}

/**
 * Lookup outcome codes for the allocation-free path. AUDIT is a flag ORed into NONE, ALLOW or
 * REDIRECT (never DENY): an audit entry covers the packet, so if it passes it passes as AUDIT.
 */
export const LOOKUP = { NONE: 0, ALLOW: 1, REDIRECT: 2, DENY: 3, AUDIT: 4 } as const;

/** Past this many pending changes the log gives up and says "recompile fully" (bounded memory). */
export const CHANGE_LOG_LIMIT = 8192;

/**
 * Entry-level changes since the last drain, net: an entry added and removed again in between
 * leaves no trace. `overflow`: too many to keep; the consumer must start over from the whole map.
 */
export interface ChangeLog<F> {
  changes: Map<string, { entry: StateEntry<F>; added: boolean }>;
  overflow: boolean;
}

export function newChangeLog<F>(): ChangeLog<F> {
  return { changes: new Map(), overflow: false };
}

/** Records one entry appearing (`added`) or disappearing under key `k`, netting out reversals. */
export function logChange<F>(log: ChangeLog<F>, k: string, entry: StateEntry<F>, added: boolean): void {
  if (log.overflow) return;
  const prev = log.changes.get(k);
  if (prev !== undefined && prev.added !== added) {
    log.changes.delete(k);
    return;
  }
  log.changes.set(k, { entry, added });
  if (log.changes.size > CHANGE_LOG_LIMIT) {
    log.overflow = true;
    log.changes.clear();
  }
}

export class MapState<F> {
  private readonly entries = new Map<string, StateEntry<F>>();
  /** Set while a consumer (the datapath) follows this map's changes; undefined costs nothing. */
  log: ChangeLog<F> | undefined;
  /** [direction][slot] → identity → entries. */
  private readonly index: Array<Array<Map<number, StateEntry<F>[]>>> = [0, 1].map(() =>
    Array.from({ length: SLOTS }, () => new Map<number, StateEntry<F>[]>()),
  );

  get size(): number {
    return this.entries.size;
  }

  values(): IterableIterator<StateEntry<F>> {
    return this.entries.values();
  }

  /** Entries by their key (direction|identity|proto|lo|hi|verdict|parser). */
  keyed(): ReadonlyMap<string, StateEntry<F>> {
    return this.entries;
  }

  add(
    direction: TrafficDirection,
    identity: number,
    proto: number,
    lo: number,
    hi: number,
    verdict: MapStateVerdict,
    parser: string | undefined,
    from: F,
  ): void {
    const slot = slotOf(proto);
    if (slot < 0) return;
    const k = entryKey(direction, identity, proto, lo, hi, verdict, parser);
    let e = this.entries.get(k);
    if (e === undefined) {
      this.flat = undefined;
      e = {
        direction,
        identity,
        proto,
        portLo: lo,
        portHi: hi,
        verdict,
        one: from,
        oneN: 0,
        more: undefined,
      };
      if (parser !== undefined) e.parser = parser;
      this.entries.set(k, e);
      if (this.log !== undefined) logChange(this.log, k, e, true);
      const m = this.index[direction === 'INGRESS' ? 0 : 1]![slot]!;
      const list = m.get(identity);
      if (list === undefined) m.set(identity, [e]);
      else list.push(e);
    }
    if (e.more !== undefined) e.more.set(from, (e.more.get(from) ?? 0) + 1);
    else if (e.one === from) e.oneN++;
    else if (e.one === undefined) {
      e.one = from;
      e.oneN = 1;
    } else {
      e.more = new Map([
        [e.one, e.oneN],
        [from, 1],
      ]);
      e.one = undefined;
      e.oneN = 0;
    }
  }

  remove(
    direction: TrafficDirection,
    identity: number,
    proto: number,
    lo: number,
    hi: number,
    verdict: MapStateVerdict,
    parser: string | undefined,
    from: F,
  ): void {
    const k = entryKey(direction, identity, proto, lo, hi, verdict, parser);
    const e = this.entries.get(k);
    if (e === undefined) return;
    if (e.more !== undefined) {
      const n = e.more.get(from);
      if (n === undefined) return;
      if (n > 1) {
        e.more.set(from, n - 1);
        return;
      }
      e.more.delete(from);
      if (e.more.size > 0) return;
    } else {
      if (e.one !== from) return;
      if (e.oneN > 1) {
        e.oneN--;
        return;
      }
    }
    this.entries.delete(k);
    if (this.log !== undefined) logChange(this.log, k, e, false);
    this.flat = undefined;
    const m = this.index[direction === 'INGRESS' ? 0 : 1]![slotOf(proto)]!;
    const list = m.get(identity);
    if (list === undefined) return;
    const i = list.indexOf(e);
    if (i >= 0) list.splice(i, 1);
    if (list.length === 0) m.delete(identity);
  }

  /** Every entry covering (identity, proto, port), wildcard identity and protocol included. */
  collect(
    direction: TrafficDirection,
    identity: number,
    proto: number,
    port: number,
    out: StateEntry<F>[],
  ): void {
    const d = this.index[direction === 'INGRESS' ? 0 : 1]!;
    const slot = slotOf(proto);
    if (slot < 0) return;
    pick(d[slot]!, identity, port, out);
    if (identity !== 0) pick(d[slot]!, 0, port, out);
    if (slot >= 1 && slot <= 3) {
      pick(d[0]!, identity, port, out);
      if (identity !== 0) pick(d[0]!, 0, port, out);
    }
  }

  /**
   * The combined outcome without allocating: DENY > ALLOW > REDIRECT > NONE, with the AUDIT flag
   * when an audit entry covers the packet and no deny does. Served from a flat
   * index (one map lookup and a scan of packed port ranges) that is rebuilt on the first lookup
   * after a change, so the datapath-facing lookup costs about as much as one Map.get.
   */
  lookup(direction: TrafficDirection, identity: number, proto: number, port: number): number {
    const slot = slotOf(proto);
    if (slot < 0) return LOOKUP.NONE;
    const flat = this.flat ?? this.buildFlat();
    const f = flat[(direction === 'INGRESS' ? 0 : SLOTS) + slot]!;
    let rank = 0;
    const own = f.byIdentity.get(identity);
    if (own !== undefined) rank = scan(own, port, rank);
    if (rank < 3 && (own === undefined || !f.merged)) rank = scan(f.wildcard, port, rank);
    const code = CODE[rank]!;
    // audit entries sit apart: a map without them pays one check
    const a = f.audit;
    if (a === undefined || code === LOOKUP.DENY) return code;
    return covers(a.byIdentity.get(identity), port) || covers(a.wildcard, port) ? code | LOOKUP.AUDIT : code;
  }

  private flat: FlatSlot[] | undefined;

  private buildFlat(): FlatSlot[] {
    const flat: FlatSlot[] = [];
    for (const d of this.index) {
      for (let slot = 0; slot < SLOTS; slot++) {
        // TCP, UDP and SCTP lookups also see the protocol-0 (any of the three) entries.
        const sources = slot >= 1 && slot <= 3 ? [d[slot]!, d[0]!] : [d[slot]!];
        const wild: number[] = [];
        const auditWild: number[] = [];
        for (const m of sources) pack(m.get(0), wild, auditWild);
        // Copy the wildcard-identity ranges into each identity's list while that stays small.
        const merged = wild.length <= 3 * 8;
        const byIdentity = new Map<number, Int32Array>();
        const auditBy = new Map<number, Int32Array>();
        const ids = new Set<number>();
        for (const m of sources) for (const id of m.keys()) if (id !== 0) ids.add(id);
        for (const id of ids) {
          const own: number[] = [];
          const audit: number[] = [];
          for (const m of sources) pack(m.get(id), own, audit);
          if (merged) own.push(...wild);
          byIdentity.set(id, Int32Array.from(own));
          if (audit.length > 0) auditBy.set(id, Int32Array.from(audit));
        }
        const fs: FlatSlot = { byIdentity, wildcard: Int32Array.from(wild), merged };
        if (auditBy.size > 0 || auditWild.length > 0)
          fs.audit = { byIdentity: auditBy, wildcard: Int32Array.from(auditWild) };
        flat.push(fs);
      }
    }
    this.flat = flat;
    return flat;
  }
}

/** Per direction and protocol slot: identity → packed (lo, hi, rank) triples. */
interface FlatSlot {
  byIdentity: Map<number, Int32Array>;
  wildcard: Int32Array;
  /** The wildcard triples are already part of every identity's list. */
  merged: boolean;
  /** Audit entries' packed (lo, hi, 0) triples, when the slot has any. */
  audit?: { byIdentity: Map<number, Int32Array>; wildcard: Int32Array };
}

const VERDICT_CODE: Record<MapStateVerdict, number> = { deny: 0, allow: 1, redirect: 2, audit: 3 };

/**
 * The identity of an entry: one per (key, verdict, parser), whatever rules contributed it. Opaque
 * and internal: six UTF-16 code units (identity as two 16-bit halves, protocol, ports, direction
 * and verdict), then the parser. One flat string per entry instead of a template's pieces and the
 * identity's decimal text: most of a large join's allocation was its keys.
 */
function entryKey(
  direction: TrafficDirection,
  identity: number,
  proto: number,
  lo: number,
  hi: number,
  verdict: MapStateVerdict,
  parser: string | undefined,
): string {
  const k = String.fromCharCode(
    identity >>> 16,
    identity & 0xffff,
    proto,
    lo,
    hi,
    (direction === 'INGRESS' ? 0 : 4) | VERDICT_CODE[verdict],
  );
  return parser === undefined ? k : k + parser;
}

function pack<F>(list: StateEntry<F>[] | undefined, out: number[], audit: number[]): void {
  if (list === undefined) return;
  for (const e of list) {
    if (e.verdict === 'audit') audit.push(e.portLo, e.portHi, 0);
    else out.push(e.portLo, e.portHi, RANK[e.verdict]);
  }
}

function scan(t: Int32Array, port: number, rank: number): number {
  for (let i = 0; i < t.length; i += 3) {
    if (port >= t[i]! && port <= t[i + 1]! && t[i + 2]! > rank) {
      rank = t[i + 2]!;
      if (rank === 3) break;
    }
  }
  return rank;
}

function covers(t: Int32Array | undefined, port: number): boolean {
  if (t === undefined) return false;
  for (let i = 0; i < t.length; i += 3) if (port >= t[i]! && port <= t[i + 1]!) return true;
  return false;
}

function pick<F>(
  m: Map<number, StateEntry<F>[]>,
  identity: number,
  port: number,
  out: StateEntry<F>[],
): void {
  const list = m.get(identity);
  if (list === undefined) return;
  for (const e of list) if (port >= e.portLo && port <= e.portHi) out.push(e);
}

/** Audit entries are packed apart (FlatSlot.audit): their rank is never scanned. */
const RANK: Record<MapStateVerdict, number> = { deny: 3, allow: 2, redirect: 1, audit: 0 };
const CODE = [LOOKUP.NONE, LOOKUP.REDIRECT, LOOKUP.ALLOW, LOOKUP.DENY];

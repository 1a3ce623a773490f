// MapState: an endpoint's policy map, keyed as Cilium keys it: (direction, peer identity or 0,
// protocol or 0, destination port range) → allow | deny | redirect. Lookup semantics: every entry
// covering the packet applies: any deny ⇒ drop; else any allow ⇒ pass; else redirects ⇒ the
// proxy with the union of their L7 rules; none ⇒ the direction's default. Inserts and lookups go
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
  /** Which filters put this entry here (and how many times). */
  contribs: Map<F, number>;
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

/** Lookup outcome codes for the allocation-free path. */
export const LOOKUP = { NONE: 0, ALLOW: 1, REDIRECT: 2, DENY: 3 } as const;

export class MapState<F> {
  private readonly entries = new Map<string, StateEntry<F>>();
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
    const k = `${direction}|${identity}|${proto}|${lo}|${hi}|${verdict}|${parser ?? ''}`;
    let e = this.entries.get(k);
    if (e === undefined) {
      e = { direction, identity, proto, portLo: lo, portHi: hi, verdict, contribs: new Map() };
      if (parser !== undefined) e.parser = parser;
      this.entries.set(k, e);
      const m = this.index[direction === 'INGRESS' ? 0 : 1]![slot]!;
      const list = m.get(identity);
      if (list === undefined) m.set(identity, [e]);
      else list.push(e);
    }
    e.contribs.set(from, (e.contribs.get(from) ?? 0) + 1);
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
    const k = `${direction}|${identity}|${proto}|${lo}|${hi}|${verdict}|${parser ?? ''}`;
    const e = this.entries.get(k);
    if (e === undefined) return;
    const n = e.contribs.get(from);
    if (n === undefined) return;
    if (n > 1) {
      e.contribs.set(from, n - 1);
      return;
    }
    e.contribs.delete(from);
    if (e.contribs.size > 0) return;
    this.entries.delete(k);
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

  /** The combined outcome without allocating: DENY > ALLOW > REDIRECT > NONE. */
  lookup(direction: TrafficDirection, identity: number, proto: number, port: number): number {
    const d = this.index[direction === 'INGRESS' ? 0 : 1]!;
    const slot = slotOf(proto);
    if (slot < 0) return LOOKUP.NONE;
    let best: number = LOOKUP.NONE;
    best = worst(best, d[slot]!.get(identity), port);
    if (best === LOOKUP.DENY) return best;
    if (identity !== 0) best = worst(best, d[slot]!.get(0), port);
    if (slot >= 1 && slot <= 3 && best !== LOOKUP.DENY) {
      best = worst(best, d[0]!.get(identity), port);
      if (identity !== 0 && best !== LOOKUP.DENY) best = worst(best, d[0]!.get(0), port);
    }
    return best;
  }
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

const RANK: Record<MapStateVerdict, number> = { deny: 3, allow: 2, redirect: 1 };
const CODE = [LOOKUP.NONE, LOOKUP.REDIRECT, LOOKUP.ALLOW, LOOKUP.DENY];

function worst<F>(best: number, list: StateEntry<F>[] | undefined, port: number): number {
  if (list === undefined) return best;
  let rank = best === LOOKUP.DENY ? 3 : best === LOOKUP.ALLOW ? 2 : best === LOOKUP.REDIRECT ? 1 : 0;
  for (const e of list) {
    if (port < e.portLo || port > e.portHi) continue;
    const r = RANK[e.verdict];
    if (r > rank) rank = r;
  }
  return CODE[rank]!;
}

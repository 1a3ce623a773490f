// SelectorCache (as in Cilium): every distinct peer/subject selector is matched against every
// identity once, and a new identity once against the selectors that could match it (selectors are
// indexed by one label they require). Users subscribe to hear about selection changes.

import type { Identity, IdentityListener } from '../identity/allocator.ts';
import type { PeerSelector } from './peer.ts';

export interface SelectionUser {
  selectionChanged(sel: CachedSelector, added: readonly number[], removed: readonly number[]): void;
}

export class CachedSelector {
  readonly ids = new Set<number>();
  readonly users = new Set<SelectionUser>();
  refs = 0;
  constructor(readonly peer: PeerSelector) {}
  get key(): string {
    return this.peer.key;
  }
  get wildcard(): boolean {
    return this.peer.kind === 'wildcard';
  }
}

export class SelectorCache implements IdentityListener {
  private readonly byKey = new Map<string, CachedSelector>();
  private readonly byIndexLabel = new Map<string, Set<CachedSelector>>();
  private readonly unindexed = new Set<CachedSelector>();
  /** identity → selectors that currently select it. */
  private readonly selectedBy = new Map<number, Set<CachedSelector>>();
  /** `key=value` → identities carrying that label (for matching a new indexed selector). */
  private readonly identitiesByLabel = new Map<string, Set<Identity>>();
  private readonly identities = new Map<number, Identity>();
  /** The label keys each identity was indexed under (labels may change in place). */
  private readonly indexedUnder = new Map<number, string[]>();

  constructor(initial: Iterable<Identity>) {
    for (const id of initial) this.indexIdentity(id);
  }

  get size(): number {
    return this.byKey.size;
  }

  get(key: string): CachedSelector | undefined {
    return this.byKey.get(key);
  }

  /** Takes a reference on the selector, matching it against all identities on first use. */
  add(peer: PeerSelector): CachedSelector {
    let cs = this.byKey.get(peer.key);
    if (cs === undefined) {
      cs = new CachedSelector(peer);
      this.byKey.set(peer.key, cs);
      if (peer.indexLabel !== undefined) {
        let set = this.byIndexLabel.get(peer.indexLabel);
        if (set === undefined) {
          set = new Set();
          this.byIndexLabel.set(peer.indexLabel, set);
        }
        set.add(cs);
      } else {
        this.unindexed.add(cs);
      }
      if (!cs.wildcard && peer.kind !== 'none') {
        const cands =
          peer.indexLabel !== undefined
            ? (this.identitiesByLabel.get(peer.indexLabel) ?? [])
            : this.identities.values();
        for (const id of cands) if (peer.matches(id)) this.select(cs, id.id);
      }
    }
    cs.refs++;
    return cs;
  }

  release(cs: CachedSelector): void {
    if (--cs.refs > 0) return;
    this.byKey.delete(cs.key);
    if (cs.peer.indexLabel !== undefined) this.byIndexLabel.get(cs.peer.indexLabel)?.delete(cs);
    else this.unindexed.delete(cs);
    for (const id of cs.ids) this.selectedBy.get(id)?.delete(cs);
  }

  /** Selectors currently selecting an identity (wildcards excluded). */
  selectorsOf(id: number): ReadonlySet<CachedSelector> {
    return this.selectedBy.get(id) ?? EMPTY;
  }

  identityAdded(id: Identity): void {
    this.indexIdentity(id);
    for (const cs of this.candidates(id)) {
      if (cs.wildcard || cs.peer.kind === 'none' || !cs.peer.matches(id)) continue;
      this.select(cs, id.id);
      for (const u of cs.users) u.selectionChanged(cs, [id.id], []);
    }
  }

  identityRemoved(id: Identity): void {
    const sels = this.selectedBy.get(id.id);
    this.unindexIdentity(id);
    if (sels === undefined) return;
    this.selectedBy.delete(id.id);
    for (const cs of sels) {
      cs.ids.delete(id.id);
      for (const u of cs.users) u.selectionChanged(cs, [], [id.id]);
    }
  }

  identityUpdated(id: Identity): void {
    // Labels changed in place: re-index and re-match the candidates and the current selectors.
    this.unindexIdentity(id);
    this.indexIdentity(id);
    const before = this.selectedBy.get(id.id) ?? new Set<CachedSelector>();
    const check = new Set<CachedSelector>([...before, ...this.candidates(id)]);
    for (const cs of check) {
      if (cs.wildcard || cs.peer.kind === 'none') continue;
      const now = cs.peer.matches(id);
      const was = cs.ids.has(id.id);
      if (now === was) continue;
      if (now) this.select(cs, id.id);
      else {
        cs.ids.delete(id.id);
        this.selectedBy.get(id.id)?.delete(cs);
      }
      for (const u of cs.users) u.selectionChanged(cs, now ? [id.id] : [], now ? [] : [id.id]);
    }
  }

  private *candidates(id: Identity): Iterable<CachedSelector> {
    yield* this.unindexed;
    for (const l of id.labels.labels) {
      const set = this.byIndexLabel.get(`${l.key}=${l.value}`);
      if (set !== undefined) yield* set;
    }
  }

  private select(cs: CachedSelector, id: number): void {
    cs.ids.add(id);
    let s = this.selectedBy.get(id);
    if (s === undefined) {
      s = new Set();
      this.selectedBy.set(id, s);
    }
    s.add(cs);
  }

  private indexIdentity(id: Identity): void {
    this.identities.set(id.id, id);
    const keys: string[] = [];
    this.indexedUnder.set(id.id, keys);
    for (const l of id.labels.labels) {
      const k = `${l.key}=${l.value}`;
      keys.push(k);
      let s = this.identitiesByLabel.get(k);
      if (s === undefined) {
        s = new Set();
        this.identitiesByLabel.set(k, s);
      }
      s.add(id);
    }
  }

  private unindexIdentity(id: Identity): void {
    this.identities.delete(id.id);
    for (const k of this.indexedUnder.get(id.id) ?? []) {
      const s = this.identitiesByLabel.get(k);
      if (s?.delete(id) && s.size === 0) this.identitiesByLabel.delete(k);
    }
    this.indexedUnder.delete(id.id);
  }
}

const EMPTY: ReadonlySet<CachedSelector> = new Set();

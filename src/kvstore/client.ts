// The etcd v3 client wrapper every kvstore user goes through (etcd3 from npm): the agent's lease,
// the keys this agent owns (put on its lease, re-put whenever the lease is replaced), one watch on
// cilium/state/ with a full resync after every disconnection, and the store's reachability.
//
// Owned keys are a desired state, not a queue of calls: own()/disown() change the map and mark the
// key dirty; one flusher writes dirty keys in batched transactions and retries while etcd is away,
// so a burst of changes (or an outage) costs one write per key's final state. A delete only
// removes a value this agent wrote (a transaction comparing the value): another agent that took the
// key over meanwhile (a pod that moved with its address) keeps it.

import { ConsecutiveBreaker, circuitBreaker, handleWhen, retry } from 'cockatiel';
import { Etcd3, type IKeyValue, isRecoverableError, type Lease } from 'etcd3';
import { KvstoreError, STATE_PREFIX } from './layout.ts';

export interface KvstoreStatus {
  reachable: boolean;
  /** Why the store is unreachable (the last error). */
  error?: string;
  /** Since when the current state holds (ms since the epoch). */
  since: number;
}

/** What a watch consumer hears: a full snapshot after (re)connecting, then single changes. */
export interface StateHandler {
  snapshot(entries: ReadonlyMap<string, string>): void;
  put(key: string, value: string): void;
  del(key: string): void;
}

/** A key that may only be written while another holds a value (an identity's master key). */
export interface Guard {
  key: string;
  value: string;
}

interface Owned {
  value: string;
  guard?: Guard;
}

export interface KvstoreClientOptions {
  /** Lease TTL in seconds (Cilium: 15 min; the agent uses less so a dead agent's keys go soon). */
  leaseTtlSeconds?: number;
  /** Per-call deadline (ms). */
  callTimeoutMs?: number;
  /** Delay between retries while etcd is unreachable (ms). */
  retryMs?: number;
  log?: (line: string) => void;
}

/** `etcd://HOST:PORT` (or http://) → the client URL; anything else is refused with the reason. */
export function parseEndpoint(raw: string): string {
  const m = /^(etcd|http):\/\/([A-Za-z0-9.-]+|\[[0-9a-fA-F:]+\]):([0-9]{1,5})\/?$/.exec(raw);
  if (m === null || Number(m[3]) < 1 || Number(m[3]) > 65535)
    throw new KvstoreError(
      'kvstore-bad-endpoint',
      `--kvstore ${JSON.stringify(raw)}: expected etcd://HOST:PORT`,
    );
  return `http://${m[2]}:${m[3]}`;
}

/** The first key after every key with this prefix (etcd's range_end for a prefix). */
export function prefixEnd(prefix: string): Buffer {
  const b = Buffer.from(prefix);
  for (let i = b.length - 1; i >= 0; i--) {
    if (b[i]! < 0xff) {
      const out = Buffer.from(b.subarray(0, i + 1));
      out[i]!++;
      return out;
    }
  }
  return Buffer.from([0]);
}

const BATCH = 64; // etcd's default --max-txn-ops is 128

export class KvstoreClient {
  readonly url: string;
  readonly etcd: Etcd3;
  /** Transactions and single writes sent (puts and deletes, allocation included). */
  writes = 0;
  /** Keys written (a transaction writing 3 keys counts 3). */
  keysWritten = 0;
  private readonly ttl: number;
  private readonly retryMs: number;
  private readonly log: (line: string) => void;
  private lease: Lease | undefined;
  private leaseId: Promise<string> | undefined;
  private readonly owned = new Map<string, Owned>();
  /** Keys to write (owned) or to remove (the value we wrote). */
  private readonly dirty = new Map<string, string | undefined>();
  /** What each dirty-for-delete key held when we last wrote it. */
  private readonly written = new Map<string, string>();
  private flushing: Promise<void> | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private readonly waiters: Array<() => void> = [];
  private statusNow: KvstoreStatus = { reachable: false, since: Date.now() };
  private readonly statusListeners = new Set<(s: KvstoreStatus) => void>();
  private closed = false;
  private watchStop: (() => void) | undefined;

  constructor(endpoint: string, opts: KvstoreClientOptions = {}) {
    this.url = parseEndpoint(endpoint);
    this.ttl = opts.leaseTtlSeconds ?? 15;
    this.retryMs = opts.retryMs ?? 300;
    this.log = opts.log ?? (() => {});
    const timeout = opts.callTimeoutMs ?? 3000;
    this.etcd = new Etcd3({
      hosts: this.url,
      dialTimeout: timeout,
      defaultCallOptions: (ctx) => (ctx.isStream ? {} : { deadline: Date.now() + timeout }),
      // etcd3's default keeps a dead host's breaker open 5 s: an agent would resync long after etcd
      // is back. Our own loops retry (watches are re-created, not resumed), the client does not.
      faultHandling: {
        host: () =>
          circuitBreaker(handleWhen(isRecoverableError), {
            halfOpenAfter: this.retryMs,
            breaker: new ConsecutiveBreaker(3),
          }),
        global: retry(handleWhen(isRecoverableError), { maxAttempts: 1 }),
      },
    });
  }

  get status(): KvstoreStatus {
    return this.statusNow;
  }

  onStatus(l: (s: KvstoreStatus) => void): () => void {
    this.statusListeners.add(l);
    return () => this.statusListeners.delete(l);
  }

  private setReachable(ok: boolean, error?: string): void {
    if (this.statusNow.reachable === ok && (ok || this.statusNow.error === error)) return;
    const changed = this.statusNow.reachable !== ok;
    this.statusNow = ok
      ? { reachable: true, since: Date.now() }
      : { reachable: false, error: error ?? 'unreachable', since: Date.now() };
    if (changed) this.log(ok ? 'kvstore: reachable' : `kvstore: unreachable (${error})`);
    for (const l of this.statusListeners) l(this.statusNow);
  }

  /** The agent's lease id, granted on first use and again after it was lost. */
  leaseIdNow(): Promise<string> {
    if (this.leaseId !== undefined) return this.leaseId;
    const lease = this.etcd.lease(this.ttl, { autoKeepAlive: true });
    this.lease = lease;
    const p = lease.grant();
    this.leaseId = p;
    p.catch(() => {
      if (this.lease === lease) {
        this.lease = undefined;
        this.leaseId = undefined;
      }
    });
    lease.on('lost', (err) => {
      if (this.lease !== lease) return;
      this.log(`kvstore: lease lost (${err.message}): every owned key is written again on a new one`);
      this.lease = undefined;
      this.leaseId = undefined;
      for (const [k, o] of this.owned) this.dirty.set(k, o.value);
      this.kick();
    });
    return p;
  }

  /** Puts `key` on the agent's lease (again after every lease change) until disown(). */
  own(key: string, value: string, guard?: Guard): void {
    const o = this.owned.get(key);
    if (o !== undefined && o.value === value) return;
    this.owned.set(key, guard === undefined ? { value } : { value, guard });
    this.dirty.set(key, value);
    this.kick();
  }

  /** Records a key already written on the lease (by an allocation transaction). */
  ownWritten(key: string, value: string, guard?: Guard): void {
    this.owned.set(key, guard === undefined ? { value } : { value, guard });
    this.written.set(key, value);
  }

  /** Removes `key` when it still holds what this agent wrote. */
  disown(key: string): void {
    if (!this.owned.delete(key) && !this.dirty.has(key)) return;
    this.dirty.set(key, undefined);
    this.kick();
  }

  /** Writes `key` again (its guard may need re-creating). */
  touch(key: string): void {
    const o = this.owned.get(key);
    if (o === undefined) return;
    this.dirty.set(key, o.value);
    this.kick();
  }

  ownedKeys(): string[] {
    return [...this.owned.keys()];
  }

  /** Resolves once every change made so far is in etcd (waits through an outage). */
  flushed(): Promise<void> {
    if (this.dirty.size === 0 && this.flushing === undefined) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  private kick(): void {
    if (this.closed || this.flushing !== undefined || this.retryTimer !== undefined) return;
    this.flushing = this.flush().finally(() => {
      this.flushing = undefined;
      if (this.dirty.size > 0 && !this.closed) {
        if (this.retryTimer === undefined)
          this.retryTimer = setTimeout(() => {
            this.retryTimer = undefined;
            this.kick();
          }, this.retryMs);
      } else {
        for (const w of this.waiters.splice(0)) w();
      }
    });
  }

  private async flush(): Promise<void> {
    while (this.dirty.size > 0 && !this.closed) {
      let lease: string;
      try {
        lease = await this.leaseIdNow();
      } catch (e) {
        this.setReachable(false, (e as Error).message);
        return;
      }
      const batch = [...this.dirty].slice(0, BATCH);
      const plain = batch.filter(([k, v]) => v === undefined || this.owned.get(k)?.guard === undefined);
      const guarded = batch.filter(([k, v]) => v !== undefined && this.owned.get(k)?.guard !== undefined);
      try {
        if (plain.length > 0) await this.writePlain(plain, lease);
        for (const [k, v] of guarded) await this.writeGuarded(k, v!, this.owned.get(k)!.guard!, lease);
        this.setReachable(true);
      } catch (e) {
        this.setReachable(false, (e as Error).message);
        return;
      }
      for (const [k, v] of batch) {
        if (this.dirty.get(k) !== v) continue; // changed again while in flight
        this.dirty.delete(k);
        if (v === undefined) this.written.delete(k);
        else this.written.set(k, v);
      }
    }
  }

  private async writePlain(batch: Array<[string, string | undefined]>, lease: string): Promise<void> {
    // Deletes are conditional (our value): one transaction each; puts go together.
    const puts = batch.filter(([, v]) => v !== undefined);
    if (puts.length > 0) {
      this.writes++;
      this.keysWritten += puts.length;
      await this.etcd.kv.txn({
        success: puts.map(([k, v]) => ({
          request_put: { key: Buffer.from(k), value: Buffer.from(v!), lease },
        })),
      });
    }
    for (const [k] of batch.filter(([, v]) => v === undefined)) {
      const had = this.written.get(k);
      if (had === undefined) continue;
      this.writes++;
      this.keysWritten++;
      await this.etcd.kv.txn({
        compare: [{ key: Buffer.from(k), target: 'Value', result: 'Equal', value: Buffer.from(had) }],
        success: [{ request_delete_range: { key: Buffer.from(k) } }],
      });
    }
  }

  /** The key only while its guard holds; a missing guard is re-created (Cilium: master key). */
  private async writeGuarded(key: string, value: string, g: Guard, lease: string): Promise<void> {
    this.writes++;
    this.keysWritten++;
    const put = { request_put: { key: Buffer.from(key), value: Buffer.from(value), lease } };
    const r = await this.etcd.kv.txn({
      compare: [{ key: Buffer.from(g.key), target: 'Value', result: 'Equal', value: Buffer.from(g.value) }],
      success: [put],
    });
    if (r.succeeded) return;
    this.writes++;
    this.keysWritten += 2;
    const r2 = await this.etcd.kv.txn({
      compare: [{ key: Buffer.from(g.key), target: 'Create', result: 'Equal', create_revision: 0 }],
      success: [{ request_put: { key: Buffer.from(g.key), value: Buffer.from(g.value) } }, put],
    });
    if (!r2.succeeded) this.log(`kvstore: ${key} not written: ${g.key} holds another value`);
  }

  /** One range read of a prefix: key → value, and the store revision it was read at. */
  async list(prefix: string): Promise<{ entries: Map<string, string>; revision: string }> {
    const r = await this.etcd.kv.range({ key: Buffer.from(prefix), range_end: prefixEnd(prefix) });
    const entries = new Map<string, string>();
    for (const kv of r.kvs) entries.set(kv.key.toString(), kv.value.toString());
    return { entries, revision: r.header.revision };
  }

  /**
   * Watches cilium/state/: a snapshot, then changes; after a disconnection, unreachable until a new
   * snapshot could be read (the consumer diffs it against what it holds: nothing is lost).
   * Resolves after the first snapshot; rejects when the store cannot be read at all.
   */
  async watch(h: StateHandler, prefix: string = STATE_PREFIX): Promise<void> {
    let stopped = false;
    let watcher: Awaited<ReturnType<ReturnType<Etcd3['watch']>['create']>> | undefined;
    let timer: NodeJS.Timeout | undefined;
    const resync = async (): Promise<void> => {
      const { entries, revision } = await this.list(prefix);
      if (stopped) return;
      h.snapshot(entries);
      const w = await this.etcd
        .watch()
        .prefix(prefix)
        .startRevision(String(BigInt(revision) + 1n))
        .create();
      if (stopped) {
        void w.cancel().catch(() => {});
        return;
      }
      watcher = w;
      const lost = (err: Error): void => {
        if (watcher !== w) return;
        watcher = undefined;
        void w.cancel().catch(() => {});
        this.setReachable(false, err.message);
        again();
      };
      w.on('put', (kv: IKeyValue) => h.put(kv.key.toString(), kv.value.toString()));
      w.on('delete', (kv: IKeyValue) => h.del(kv.key.toString()));
      w.on('disconnected', lost);
      w.on('error', lost);
      this.setReachable(true);
      // writes waiting for the store go now
      if (this.dirty.size > 0) this.kick();
    };
    const again = (): void => {
      if (stopped || timer !== undefined) return;
      timer = setTimeout(() => {
        timer = undefined;
        resync().catch((e: Error) => {
          this.setReachable(false, e.message);
          again();
        });
      }, this.retryMs);
    };
    this.watchStop = () => {
      stopped = true;
      if (timer !== undefined) clearTimeout(timer);
      void watcher?.cancel().catch(() => {});
    };
    try {
      await resync();
    } catch (e) {
      this.setReachable(false, (e as Error).message);
      this.watchStop();
      throw new KvstoreError('kvstore-unreachable', `kvstore ${this.url}: ${(e as Error).message}`, {
        cause: e,
      });
    }
  }

  /**
   * Stops watching and writing. `revoke`: the lease goes with every key on it (a clean agent
   * exit removes its endpoints, nodes and references at once); else the keys stay until it expires.
   */
  async close(opts: { revoke?: boolean } = {}): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.watchStop?.();
    if (this.retryTimer !== undefined) clearTimeout(this.retryTimer);
    await this.flushing?.catch(() => {});
    if (opts.revoke && this.lease !== undefined) await this.lease.revoke().catch(() => {});
    else this.lease?.release();
    for (const w of this.waiters.splice(0)) w();
    this.etcd.close();
  }
}

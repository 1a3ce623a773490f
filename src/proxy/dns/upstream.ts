// UDP exchanges with the servers pods asked, over a small pool of sockets per server instead of a
// socket per query (creating and closing one costs ~0.1 ms, most of a query's time through the
// proxy). Each query goes out as its own bytes under an id unique on its socket, picked at random
// and written in place, and the pod's id is put back in place on the answer (no copies). Only datagrams from the server's address and port with an id in
// flight are taken; a socket is retired after maxUses queries so its source port changes (ids and
// ports stay unpredictable, as a fresh socket per query would make them). Each socket is connected
// to its server: the kernel then drops datagrams from any other address before they reach us, and
// a send needs no address lookup (Node resolves even a literal address on an unconnected send).

import { randomInt } from 'node:crypto';
import type dgram from 'node:dgram';
import { canonicalIP } from '../../fqdn/ip.ts';
import { udpUpstream } from '../upstream-socket.ts';

export type Exchange = { kind: 'answer'; buf: Buffer } | { kind: 'timeout' } | { kind: 'error'; err: Error };

/** Told once how an exchange ended (a callback, not a promise: no microtask turn per query). */
export type ExchangeDone = (o: Exchange) => void;

interface Pending {
  clientID: number;
  timer: NodeJS.Timeout;
  done: ExchangeDone;
}

class PooledSocket {
  readonly sock: dgram.Socket;
  readonly inflight = new Map<number, Pending>();
  uses = 0;
  retired = false;
  /** Sends waiting for connect() to finish (a few, only right after the socket is made). */
  private waiting: Buffer[] | undefined = [];

  constructor(
    private readonly server: { ip: string; port: number },
    private readonly onStray: () => void,
    /** The pod the queries are for: in transparent mode they leave from its address. */
    source: string,
  ) {
    this.sock = udpUpstream(server, source, () => {
      const w = this.waiting ?? [];
      this.waiting = undefined;
      for (const b of w) this.write(b);
    });
    this.sock.on('error', (err) => this.failAll(err));
    this.sock.on('message', (msg, rinfo) => this.onMessage(msg, rinfo));
  }

  /**
   * A send error comes back as the socket's 'error' (failAll), as a refused port does; one thrown
   * at once fails the socket's exchanges on a later microtask (never within the caller's send).
   */
  private write(b: Buffer): void {
    if (this.waiting !== undefined) {
      this.waiting.push(b);
      return;
    }
    try {
      this.sock.send(b);
    } catch (e) {
      queueMicrotask(() => this.failAll(e as Error));
    }
  }

  private onMessage(msg: Buffer, rinfo: dgram.RemoteInfo): void {
    const p = msg.length >= 2 ? this.inflight.get(msg.readUInt16BE(0)) : undefined;
    if (p === undefined || rinfo.port !== this.server.port || !this.fromServer(rinfo.address)) {
      this.onStray(); // not an answer we wait for (late, stray or spoofed): dropped
      return;
    }
    this.inflight.delete(msg.readUInt16BE(0));
    clearTimeout(p.timer);
    msg.writeUInt16BE(p.clientID, 0); // the datagram is ours: the pod's id back in place
    this.closeIfDone();
    p.done({ kind: 'answer', buf: msg });
  }

  private serverIP: string | undefined;

  private fromServer(address: string): boolean {
    if (address === this.server.ip) return true;
    this.serverIP ??= canonicalIP(this.server.ip);
    return canonicalIP(address) === this.serverIP;
  }

  send(raw: Buffer, timeoutMs: number, done: ExchangeDone): void {
    this.uses++;
    let id = randomInt(65536);
    while (this.inflight.has(id)) id = randomInt(65536);
    // the query's own bytes, validated by the caller, with our id in place (the caller keeps the
    // pod's id in its ParsedQuery; nothing else reads the first two bytes)
    const out = raw;
    const clientID = out.readUInt16BE(0);
    out.writeUInt16BE(id, 0);
    const timer = setTimeout(() => {
      this.inflight.delete(id);
      this.closeIfDone();
      done({ kind: 'timeout' });
    }, timeoutMs);
    this.inflight.set(id, { clientID, timer, done });
    this.write(out);
  }

  failAll(err: Error): void {
    const ended = [...this.inflight.values()];
    this.inflight.clear();
    this.retired = true;
    this.closeIfDone();
    for (const p of ended) {
      clearTimeout(p.timer);
      p.done({ kind: 'error', err });
    }
  }

  timeoutAll(): void {
    const ended = [...this.inflight.values()];
    this.inflight.clear();
    for (const p of ended) {
      clearTimeout(p.timer);
      p.done({ kind: 'timeout' });
    }
  }

  closeIfDone(): void {
    if (this.retired && this.inflight.size === 0) {
      try {
        this.sock.close();
      } catch {
        // already closed
      }
    }
  }
}

export class UDPUpstreams {
  private readonly pools = new Map<string, { sockets: PooledSocket[]; next: number }>();

  constructor(
    private readonly onStray: () => void,
    /** Sockets per server. */
    private readonly size = 8,
    /** Queries per socket before it is replaced (a new source port). */
    private readonly maxUses = 1024,
  ) {}

  /** send() as a promise. */
  exchange(
    server: { ip: string; port: number },
    raw: Buffer,
    timeoutMs: number,
    source = '',
  ): Promise<Exchange> {
    return new Promise((resolve) => this.send(server, raw, timeoutMs, source, resolve));
  }

  /**
   * One query to `server`, on a socket of the pool of (`source`, server): one pod's queries only.
   * `raw` is changed in place: our id in its first two bytes. `done` is called once, never from
   * within send().
   */
  send(
    server: { ip: string; port: number },
    raw: Buffer,
    timeoutMs: number,
    source: string,
    done: ExchangeDone,
  ): void {
    const key = `${source}|${server.ip}|${server.port}`;
    let pool = this.pools.get(key);
    if (pool === undefined) {
      pool = { sockets: [], next: 0 };
      this.pools.set(key, pool);
    }
    let i: number;
    if (pool.sockets.length < this.size) {
      pool.sockets.push(new PooledSocket(server, this.onStray, source));
      i = pool.sockets.length - 1;
    } else {
      i = pool.next++ % this.size;
    }
    let s = pool.sockets[i]!;
    if (s.retired || s.uses >= this.maxUses || s.inflight.size > 4096) {
      s.retired = true;
      s.closeIfDone();
      s = new PooledSocket(server, this.onStray, source);
      pool.sockets[i] = s;
    }
    s.send(raw, timeoutMs, done);
  }

  close(): void {
    for (const pool of this.pools.values()) {
      for (const s of pool.sockets) {
        s.timeoutAll();
        s.retired = true;
        s.closeIfDone();
      }
    }
    this.pools.clear();
  }
}

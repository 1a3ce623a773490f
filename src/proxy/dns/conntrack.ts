// The kernel's connection tracking table as text (/proc/net/nf_conntrack, per network namespace),
// for two readers: the DNS proxy, which learns from it the server a redirected query was sent to
// (nat_pre DNATs UDP and TCP queries to the proxy; SO_ORIGINAL_DST exists for TCP only, so one
// way serves both), and the agent, which takes "in use" from it for FQDN zombies.
//
// Line format (one entry): `ipv4 2 udp 17 29 src=A dst=B sport=P dport=Q [UNREPLIED] src=C dst=D
// sport=R dport=S mark=M zone=0 use=2`, TCP with its state after the timeout. The first
// src/dst/sport/dport group is the original direction, the second the reply direction.
//
// The file is readable by root only; the proxy opens it before it drops privileges and re-reads
// the open descriptor from offset 0 per lookup (a seq_file starts over at 0).

import { closeSync, openSync, readSync } from 'node:fs';

export interface CtTuple {
  src: string;
  dst: string;
  sport: number;
  dport: number;
}

export interface CtEntry {
  proto: 'tcp' | 'udp' | 'other';
  /** TCP state (ESTABLISHED, TIME_WAIT, ...), '' for UDP. */
  state: string;
  orig: CtTuple;
  reply: CtTuple;
  mark: number;
  /** Seconds before the kernel drops the entry unless more packets come. */
  timeout: number;
}

const FIELD = /\b(src|dst|sport|dport|mark)=(\S+)/g;

/** One line, or undefined when it is not an IPv4 TCP/UDP entry with both tuples. */
export function parseConntrackLine(line: string): CtEntry | undefined {
  const parts = line.split(/\s+/);
  if (parts[0] !== 'ipv4') return undefined;
  const proto = parts[2] === 'tcp' ? 'tcp' : parts[2] === 'udp' ? 'udp' : 'other';
  if (proto === 'other') return undefined;
  const state = proto === 'tcp' && parts[5] !== undefined && !parts[5].includes('=') ? parts[5] : '';
  const vals: Record<string, string[]> = { src: [], dst: [], sport: [], dport: [], mark: [] };
  for (const m of line.matchAll(FIELD)) vals[m[1]!]!.push(m[2]!);
  if (vals.src!.length < 2 || vals.dst!.length < 2 || vals.sport!.length < 2 || vals.dport!.length < 2)
    return undefined;
  const tuple = (i: number): CtTuple => ({
    src: vals.src![i]!,
    dst: vals.dst![i]!,
    sport: Number(vals.sport![i]),
    dport: Number(vals.dport![i]),
  });
  const timeout = Number(parts[4]);
  return {
    proto,
    state,
    orig: tuple(0),
    reply: tuple(1),
    mark: Number(vals.mark![0] ?? 0),
    timeout: Number.isFinite(timeout) ? timeout : 0,
  };
}

export function parseConntrack(text: string): CtEntry[] {
  const out: CtEntry[] = [];
  for (const line of text.split('\n')) {
    const e = parseConntrackLine(line);
    if (e !== undefined) out.push(e);
  }
  return out;
}

/**
 * The original destination of a connection DNAT'd to `proxy`: the entry whose reply tuple runs
 * from the proxy's address and port back to the client. Searched as text first (the table may be
 * large; only the matching line is parsed).
 */
export function findOriginalDst(
  text: string,
  proto: 'tcp' | 'udp',
  client: { ip: string; port: number },
  proxy: { ip: string; port: number },
): { ip: string; port: number } | undefined {
  const e = findRedirectEntry(text, proto, client, proxy);
  return e === undefined ? undefined : { ip: e.orig.dst, port: e.orig.dport };
}

/** The conntrack entry of a connection DNAT'd to `proxy` (see findOriginalDst). */
export function findRedirectEntry(
  text: string,
  proto: 'tcp' | 'udp',
  client: { ip: string; port: number },
  proxy: { ip: string; port: number },
): CtEntry | undefined {
  const needle = `src=${proxy.ip} dst=${client.ip} sport=${proxy.port} dport=${client.port} `;
  let at = text.indexOf(needle);
  while (at >= 0) {
    const start = text.lastIndexOf('\n', at) + 1;
    const end = text.indexOf('\n', at);
    const e = parseConntrackLine(text.slice(start, end < 0 ? undefined : end));
    if (
      e !== undefined &&
      e.proto === proto &&
      e.orig.src === client.ip &&
      e.orig.sport === client.port &&
      e.reply.src === proxy.ip &&
      e.reply.sport === proxy.port
    )
      return e;
    at = text.indexOf(needle, at + 1);
  }
  return undefined;
}

/** An open conntrack file, re-read per call. */
export class ConntrackFile {
  private fd: number | undefined;
  private buf = Buffer.alloc(256 * 1024);

  constructor(readonly path = '/proc/net/nf_conntrack') {}

  /** Opens it now (call as root, before dropping privileges); throws when it cannot. */
  open(): this {
    this.fd = openSync(this.path, 'r');
    return this;
  }

  read(): string {
    if (this.fd === undefined) this.open();
    const chunks: Buffer[] = [];
    let pos = 0;
    for (;;) {
      const n = readSync(this.fd!, this.buf, 0, this.buf.length, pos);
      if (n === 0) break;
      chunks.push(Buffer.from(this.buf.subarray(0, n)));
      pos += n;
    }
    return chunks.length === 1 ? chunks[0]!.toString('latin1') : Buffer.concat(chunks).toString('latin1');
  }

  close(): void {
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
  }
}

/**
 * Original destinations by (transport, client address, client port), so that a query does not
 * read the whole table (a busy node's has tens of thousands of lines). An answer is kept only while
 * its conntrack entry is certain to exist: at most the entry's remaining timeout (less a second)
 * from the read, and at most maxAgeMs. While the entry exists no other connection can have the
 * same reply tuple (proxy → client address and port: the DNAT would clash), so the client's
 * address and port still mean the same original destination. Lookups that find nothing are not
 * kept (the query is answered SERVFAIL; the next one reads again).
 */
export class OriginalDstCache {
  private readonly m = new Map<string, { ip: string; port: number; until: number }>();

  constructor(
    private readonly read: () => string,
    private readonly proxy: { ip: string; port: number },
    private readonly now: () => number = () => performance.now(),
    private readonly maxAgeMs = 5000,
    private readonly maxEntries = 65536,
  ) {}

  /** Table reads so far (misses). */
  reads = 0;

  lookup(
    proto: 'tcp' | 'udp',
    client: { ip: string; port: number },
  ): { ip: string; port: number } | undefined {
    const key = `${proto}|${client.ip}|${client.port}`;
    const t = this.now();
    const hit = this.m.get(key);
    if (hit !== undefined) {
      if (hit.until > t) return { ip: hit.ip, port: hit.port };
      this.m.delete(key);
    }
    this.reads++;
    const e = findRedirectEntry(this.read(), proto, client, this.proxy);
    if (e === undefined) return undefined;
    const keepMs = Math.min(this.maxAgeMs, (e.timeout - 1) * 1000);
    if (keepMs > 0) {
      if (this.m.size >= this.maxEntries) this.sweep(t);
      this.m.set(key, { ip: e.orig.dst, port: e.orig.dport, until: t + keepMs });
    }
    return { ip: e.orig.dst, port: e.orig.dport };
  }

  get size(): number {
    return this.m.size;
  }

  /** Drops what is due; if still full, the oldest half (insertion order). */
  private sweep(t: number): void {
    for (const [k, v] of this.m) if (v.until <= t) this.m.delete(k);
    if (this.m.size < this.maxEntries) return;
    let n = this.m.size >> 1;
    for (const k of this.m.keys()) {
      if (n-- <= 0) break;
      this.m.delete(k);
    }
  }
}

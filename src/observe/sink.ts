// Where flow records go: a JSON-lines file (rotated by size), an in-memory ring buffer for
// `seawall observe`, and a small HTTP API on a unix socket that serves the ring.
// Each line is what `hubble observe -o jsonpb` prints: {"flow": {...}, "node_name": ..., "time": ...}.

import {
  closeSync,
  existsSync,
  fstatSync,
  ftruncateSync,
  mkdirSync,
  openSync,
  readSync,
  renameSync,
  rmSync,
  writeSync,
} from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { dirname } from 'node:path';
import { LineBatch, type Shape } from '../flow/template.ts';
import type { Flow, FlowEvent } from '../flow/types.ts';

/** A stored event with its sequence number (monotonic, never reused). */
export interface RingEntry {
  seq: number;
  event: FlowEvent;
}

/** Hubble's `--hubble-event-buffer-capacity` default. */
export const HUBBLE_EVENT_BUFFER_CAPACITY = 4095;

/**
 * Hubble accepts only capacities of the form 2^n − 1 (1, 3, 7, …, 65535); a message for anything
 * else, undefined when valid.
 */
export function checkHubbleCapacity(n: number): string | undefined {
  if (Number.isInteger(n) && n >= 1 && n <= 65535 && ((n + 1) & n) === 0) return undefined;
  return `hubble event buffer capacity must be 2^n-1 between 1 and 65535 (e.g. 4095), not ${n}`;
}

/** Fixed-capacity ring: the oldest events are dropped and counted as lost. */
export class FlowRing {
  private readonly slots: (RingEntry | undefined)[];
  /** Each slot's flow's shape (flow/template.ts), kept beside the entries (not in them: readers
   * print and compare entries). */
  private readonly shapes: (Shape | undefined)[];
  private next = 0; // seq of the next push
  lost = 0;
  private readonly listeners = new Set<(e: RingEntry) => void>();

  constructor(readonly capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError('ring capacity must be ≥ 1');
    this.slots = new Array(capacity);
    this.shapes = new Array(capacity).fill(undefined);
  }

  get size(): number {
    return Math.min(this.next, this.capacity);
  }

  /** Sequence number of the oldest event still held. */
  get firstSeq(): number {
    return this.next - this.size;
  }

  get seen(): number {
    return this.next;
  }

  /** `shape`: the flow's, as its copy was made (the gRPC encoder then needs no shapeOf). */
  push(event: FlowEvent, shape?: Shape): RingEntry {
    if (this.next >= this.capacity) this.lost++;
    const entry = { seq: this.next, event };
    const slot = this.next % this.capacity;
    this.slots[slot] = entry;
    this.shapes[slot] = shape;
    this.next++;
    for (const l of this.listeners) l(entry);
    return entry;
  }

  /** The shape `e`'s flow was pushed with, while the ring holds `e`. */
  shapeOf(e: RingEntry): Shape | undefined {
    const slot = e.seq % this.capacity;
    return this.slots[slot] === e ? this.shapes[slot] : undefined;
  }

  /** The event with this sequence number while the ring still holds it. */
  at(seq: number): RingEntry | undefined {
    if (seq < this.firstSeq || seq >= this.next) return undefined;
    return this.slots[seq % this.capacity];
  }

  /** Events with seq ≥ fromSeq, oldest first. */
  fromSeq(fromSeq: number): RingEntry[] {
    const out: RingEntry[] = [];
    for (let s = Math.max(fromSeq, this.firstSeq); s < this.next; s++) {
      const e = this.slots[s % this.capacity];
      if (e !== undefined) out.push(e);
    }
    return out;
  }

  /** Events whose time is at or after `since` (RFC 3339), oldest first. */
  since(sinceMs: number): RingEntry[] {
    return this.fromSeq(0).filter((e) => Date.parse(e.event.time) >= sinceMs);
  }

  last(n: number): RingEntry[] {
    return this.fromSeq(this.next - n);
  }

  subscribe(fn: (e: RingEntry) => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }
}

/** The descriptor-level calls RotatingFile makes; replaced in tests to inject failures. */
export interface FileOps {
  open(path: string, flags: string, mode: number): number;
  write(fd: number, buf: Buffer, offset: number, length: number): number;
  ftruncate(fd: number, len: number): void;
  size(fd: number): number;
  read(fd: number, buf: Buffer, position: number): number;
  close(fd: number): void;
}

export const nodeFileOps: FileOps = {
  open: (path, flags, mode) => openSync(path, flags, mode),
  write: (fd, buf, offset, length) => writeSync(fd, buf, offset, length),
  ftruncate: (fd, len) => ftruncateSync(fd, len),
  size: (fd) => fstatSync(fd).size,
  read: (fd, buf, position) => readSync(fd, buf, 0, buf.length, position),
  close: (fd) => closeSync(fd),
};

const NEWLINE = Buffer.from('\n');

/**
 * Appends lines to a file; past `maxBytes` it shifts file → file.1 → … → file.<keep>.
 * A line is written whole or not at all: a failed or short write (a full disk) is cut back to
 * the last line boundary and thrown, so the caller counts the record as lost. Should even the
 * cut fail, or the file be found ending mid-line (a crash), the next line starts on a new line:
 * one torn line, never a record glued onto it.
 */
export class RotatingFile {
  private fd: number | undefined;
  private bytes = 0;
  /** The file does not end with a newline: the next write begins with one. */
  private torn = false;

  constructor(
    readonly path: string,
    private readonly maxBytes = 10 * 1024 * 1024,
    private readonly keep = 3,
    private readonly ops: FileOps = nodeFileOps,
  ) {}

  write(line: string): void {
    this.writeData(Buffer.from(line.endsWith('\n') ? line : `${line}\n`));
  }

  /** Whole lines as bytes (each ending in a newline), in one write: all or, on a failure, none (thrown). */
  writeData(data: Buffer): void {
    if (this.fd === undefined) this.open();
    if (this.bytes > 0 && this.bytes + data.length > this.maxBytes) {
      this.rotate();
      this.open();
    }
    const fd = this.fd!;
    const out = this.torn ? Buffer.concat([NEWLINE, data]) : data;
    let done = 0;
    try {
      while (done < out.length) {
        const n = this.ops.write(fd, out, done, out.length - done);
        if (!(n > 0)) throw new Error(`wrote ${done} of ${out.length} bytes`);
        done += n;
      }
    } catch (e) {
      if (done > 0) this.cutBack(fd, done);
      throw e;
    }
    this.bytes += out.length;
    this.torn = false;
  }

  /** Undoes the `done` bytes of a failed write; if that fails too, the next write starts a line. */
  private cutBack(fd: number, done: number): void {
    try {
      this.ops.ftruncate(fd, this.bytes);
    } catch {
      this.bytes += done;
      this.torn = true;
    }
  }

  private open(): void {
    mkdirSync(dirname(this.path), { recursive: true });
    // a+: appends, and lets open() read the last byte
    const fd = this.ops.open(this.path, 'a+', 0o640);
    this.fd = fd;
    this.bytes = this.ops.size(fd);
    this.torn = false;
    if (this.bytes > 0) {
      const last = Buffer.alloc(1);
      this.torn = this.ops.read(fd, last, this.bytes - 1) === 1 && last[0] !== 0x0a;
    }
  }

  private rotate(): void {
    this.close();
    if (this.keep < 1) {
      rmSync(this.path, { force: true });
      return;
    }
    rmSync(`${this.path}.${this.keep}`, { force: true });
    for (let i = this.keep - 1; i >= 1; i--) {
      if (existsSync(`${this.path}.${i}`)) renameSync(`${this.path}.${i}`, `${this.path}.${i + 1}`);
    }
    if (existsSync(this.path)) renameSync(this.path, `${this.path}.1`);
  }

  close(): void {
    if (this.fd !== undefined) this.ops.close(this.fd);
    this.fd = undefined;
  }
}

export interface FlowSinkOptions {
  nodeName: string;
  ring: FlowRing;
  file?: RotatingFile;
  /** Called for each record (metrics). */
  observers?: ((f: Flow, shape: Shape | undefined) => void)[];
}

/**
 * Fans each record out to the file, the ring and the observers. A record the file could not take
 * (a full disk, ...) still reaches the ring and the observers, and is counted in `writeErrors`
 * (records missing from the flow log) with the last error's message.
 */
export class FlowSink {
  writeErrors = 0;
  lastWriteError: string | undefined;
  /** Flow log lines not written yet (batched: one write per event-loop turn, not per record). */
  private readonly pending = new LineBatch(MAX_PENDING_BYTES + 64 * 1024);
  private scheduled = false;
  constructor(private readonly o: FlowSinkOptions) {}

  /** `shape`: the flow's when it is a template's untouched copy (shapedCopy), else undefined. */
  emit(flow: Flow, shape?: Shape): FlowEvent {
    const event: FlowEvent = { flow, node_name: flow.node_name ?? this.o.nodeName, time: flow.time };
    if (this.o.file !== undefined) {
      this.pending.add(event, shape); // JSON.stringify(event), from its shape's pieces when it has one
      if (this.pending.used >= MAX_PENDING_BYTES) this.flush();
      else if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(() => this.flush());
      }
    }
    this.o.ring.push(event, shape);
    for (const obs of this.o.observers ?? []) obs(flow, shape);
    return event;
  }

  /**
   * Writes the pending lines in one go. When that fails (a full disk), they are written one by
   * one: the lines that fit are in the file, each that does not is counted in `writeErrors`.
   */
  flush(): void {
    this.scheduled = false;
    const batch = this.pending;
    if (batch.lines === 0 || this.o.file === undefined) return;
    try {
      this.o.file.writeData(batch.bytes());
    } catch {
      // the batch was cut back whole: line by line, as many as fit are written, each other counted
      for (let i = 0; i < batch.lines; i++) {
        try {
          this.o.file.writeData(batch.line(i));
        } catch (e) {
          this.writeErrors++;
          this.lastWriteError = (e as Error)?.message ?? String(e);
        }
      }
    } finally {
      batch.clear();
    }
  }

  close(): void {
    this.flush();
    this.o.file?.close();
  }
}

/** A batch of flow log lines is written at the latest when it reaches this size. */
const MAX_PENDING_BYTES = 256 * 1024;

/** A follower that falls this far behind is cut off rather than buffering without bound. */
const MAX_FOLLOWER_BACKLOG = 8 * 1024 * 1024;

function sendJSON(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(`${JSON.stringify(body)}\n`);
}

function handle(ring: FlowRing, startedAt: number, req: IncomingMessage, res: ServerResponse): void {
  const url = new URL(req.url ?? '/', 'http://seawall');
  if (req.method !== 'GET') {
    sendJSON(res, 405, { error: 'method not allowed' });
    return;
  }
  if (url.pathname === '/status') {
    const first = ring.fromSeq(ring.firstSeq)[0];
    const last = ring.last(1)[0];
    sendJSON(res, 200, {
      capacity: ring.capacity,
      size: ring.size,
      seen: ring.seen,
      lost: ring.lost,
      first_time: first?.event.time ?? null,
      last_time: last?.event.time ?? null,
      uptime_seconds: Math.round((Date.now() - startedAt) / 1000),
    });
    return;
  }
  if (url.pathname !== '/flows') {
    sendJSON(res, 404, { error: 'not found' });
    return;
  }

  const since = url.searchParams.get('since');
  const last = url.searchParams.get('last');
  const follow = url.searchParams.get('follow') === '1' || url.searchParams.get('follow') === 'true';
  let entries: RingEntry[];
  if (since !== null && since !== '') {
    const ms = /^\d+$/.test(since) ? Number(since) * 1000 : Date.parse(since);
    if (Number.isNaN(ms)) {
      sendJSON(res, 400, { error: `bad since: ${since}` });
      return;
    }
    entries = ring.since(ms);
  } else if (last !== null && /^\d+$/.test(last)) {
    entries = ring.last(Number(last));
  } else {
    entries = follow ? [] : ring.fromSeq(0);
  }
  res.writeHead(200, { 'content-type': 'application/x-ndjson' });
  let sent = entries.length > 0 ? entries[entries.length - 1]!.seq : ring.seen - 1;
  for (const e of entries) res.write(`${JSON.stringify(e.event)}\n`);
  if (!follow) {
    res.end();
    return;
  }
  const unsubscribe = ring.subscribe((e) => {
    if (e.seq <= sent) return;
    sent = e.seq;
    if (res.writableLength > MAX_FOLLOWER_BACKLOG) {
      unsubscribe();
      res.destroy();
      return;
    }
    res.write(`${JSON.stringify(e.event)}\n`);
  });
  const done = (): void => {
    unsubscribe();
  };
  req.on('close', done);
  res.on('close', done);
}

/** Serves GET /flows?since=&last=&follow=1 (NDJSON) and GET /status on a unix socket. */
export async function startFlowServer(socketPath: string, ring: FlowRing): Promise<Server> {
  mkdirSync(dirname(socketPath), { recursive: true });
  rmSync(socketPath, { force: true }); // a stale socket of a crashed run
  const startedAt = Date.now();
  const server = createServer((req, res) => {
    try {
      handle(ring, startedAt, req, res);
    } catch (e) {
      if (!res.headersSent) sendJSON(res, 500, { error: String(e) });
      else res.destroy();
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(socketPath, () => {
      server.off('error', reject);
      resolve();
    });
  });
  server.on('close', () => rmSync(socketPath, { force: true }));
  return server;
}

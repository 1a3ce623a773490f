// Hubble's Observer gRPC service over Seawall's flow ring: GetFlows (whitelist/blacklist filters,
// number/first, follow, since/until), ServerStatus and GetNodes, and the Peer service (Notify: this
// node, as Relay learns its peers), on a unix socket and optionally a TCP address, so that
// `hubble observe --server unix://…`, Hubble Relay and Hubble UI can read it.
// Each follower reads the ring with its own cursor, as Hubble's ring readers do: a follower that
// falls more than the ring's capacity behind gets a LostEvent (HUBBLE_RING_BUFFER) with the count
// instead of the overwritten flows, and the producer never waits for a slow client.
// Each ring entry is encoded once, as a framed gRPC message shared by every follower, and a
// follower's messages go out in batches: one HTTP/2 write per batch instead of one per flow.

import { mkdirSync, readFileSync, rmSync } from 'node:fs';
import { dirname } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import type protobuf from 'protobufjs';
import { SeawallError } from '../../core/errors.ts';
import type { Flow } from '../../flow/types.ts';
import type { FlowRing, RingEntry } from '../sink.ts';
import { FlowResponseEncoder, frameMessage } from './encode.ts';
import { compileFlowFilters, type HubbleFlowFilter } from './filter.ts';
import { parseRFC3339 } from './protojson.ts';
import { hubbleType } from './schema.ts';

export interface HubbleServerOptions {
  ring: FlowRing;
  nodeName: string;
  /** Reported by ServerStatus and GetNodes; default `seawall-<package version>`. */
  version?: string;
  /** When the observer started (ms since the epoch); default now. */
  startedAt?: number;
  /** Called with the flows a follower missed (the ring overwrote them), for the lost-events metric. */
  onLost?: (n: number) => void;
  /** Several flows per HTTP/2 write (default true); false: one grpc-js write per flow. */
  batchWrites?: boolean;
}

export interface HubbleListenOptions {
  /** Path of the unix socket (a stale one is replaced). */
  unixSocket?: string;
  /** `host:port` (port 0 = any free port); loopback unless you mean otherwise. */
  tcpAddress?: string;
}

export interface HubbleServerStats {
  /** GetFlows calls being served now. */
  activeStreams: number;
  /** Flows sent to clients. */
  sentFlows: number;
  /** Flows followers missed because the ring overwrote them (each reported as a LostEvent). */
  lostEvents: number;
  /** Records that could not be encoded as flow.Flow (skipped; a bug if ever non-zero). */
  encodeErrors: number;
  /** Writes to followers' streams (a batch of flows is one). */
  writes: number;
  /** GetFlows calls served with batched writes (the rest: one grpc-js write per message). */
  batchedStreams: number;
  /** Ring entries encoded from their shape's cached bytes (encode.ts), and encoded whole. */
  templatedEntries: number;
  encodedEntries: number;
}

export interface HubbleServerHandle {
  /** The unix socket path, when listening on one. */
  readonly unixSocket?: string;
  /** The bound `host:port` (with the real port), when listening on TCP. */
  readonly tcpAddress?: string;
  readonly stats: HubbleServerStats;
  /** Ends every stream and stops listening; removes the unix socket. */
  close(): Promise<void>;
}

export class HubbleServerError extends SeawallError<'hubble-listen'> {
  override name = 'HubbleServerError';
}

/** Messages one follower may have queued on its stream (about 0.5 MB of flows) before it pauses. */
const MAX_BUFFERED_MESSAGES = 1024;

/** Framed messages gathered into one write to a follower's HTTP/2 stream. */
const MAX_BATCH_BYTES = 64 * 1024;

/**
 * Bytes a follower may have queued on its HTTP/2 stream (about 0.5 MB of flows, as with
 * MAX_BUFFERED_MESSAGES) before it pauses. Pausing at the stream's own 16 KiB mark instead lets a
 * follower send one batch per event-loop turn, fewer flows than a busy producer pushes per turn.
 */
const MAX_BUFFERED_BYTES = 512 * 1024;

/** Where one follower's framed messages go. */
interface FollowerWire {
  /** true: messages go out as batches on the HTTP/2 stream; false: one call.write per message. */
  readonly batched: boolean;
  /** Sends framed messages (`bytes` in all); false when the follower should wait for `drain`. */
  send(frames: readonly Buffer[], bytes: number): boolean;
  onDrain(f: () => void): void;
}

interface RawHttp2Stream {
  write(b: Buffer): boolean;
  respond: unknown;
  destroyed: boolean;
  writableEnded: boolean;
  writableLength: number;
  on(ev: 'drain' | 'error', f: (...a: unknown[]) => void): void;
}

/**
 * The HTTP/2 stream under a grpc-js server call, when grpc-js is as this was written against
 * (1.14: the handler's call wraps the base call, which holds the stream and sends the headers).
 * grpc-js frames and writes each message on its own (a write and its callback per flow); framed
 * bytes written straight to the stream are the same bytes on the wire, many flows per write.
 * undefined (so one call.write per message) when the internals differ.
 */
function rawStreamOf(
  call: grpc.ServerWritableStream<Record<string, unknown>, Buffer>,
): { stream: RawHttp2Stream; sendHeaders: () => void } | undefined {
  const base = (
    call as unknown as { call?: { maybeSendMetadata?: unknown; stream?: Partial<RawHttp2Stream> } }
  ).call;
  const stream = base?.stream;
  if (
    base === undefined ||
    typeof base.maybeSendMetadata !== 'function' ||
    stream === undefined ||
    typeof stream.write !== 'function' ||
    typeof stream.respond !== 'function' ||
    typeof stream.on !== 'function'
  )
    return undefined;
  const send = base.maybeSendMetadata as () => void;
  return { stream: stream as RawHttp2Stream, sendHeaders: () => send.call(base) };
}

/** Batched writes on the raw stream when possible (`batch`), else grpc-js's per-message writes. */
function wireOf(
  call: grpc.ServerWritableStream<Record<string, unknown>, Buffer>,
  batch: boolean,
): FollowerWire {
  const raw = batch ? rawStreamOf(call) : undefined;
  if (raw !== undefined) {
    const { stream, sendHeaders } = raw;
    let headers = false;
    // a write racing the client's cancel fails here; grpc-js reports the cancel itself
    stream.on('error', () => {});
    return {
      batched: true,
      send(frames, bytes) {
        if (stream.destroyed || stream.writableEnded) return true;
        if (!headers) {
          headers = true;
          sendHeaders();
        }
        stream.write(frames.length === 1 ? frames[0]! : Buffer.concat(frames, bytes));
        // past the stream's 16 KiB mark write() said false, so 'drain' follows once it empties
        return stream.writableLength < MAX_BUFFERED_BYTES;
      },
      onDrain: (f) => stream.on('drain', f),
    };
  }
  return {
    batched: false,
    send(frames) {
      let ok = true;
      // grpc-js frames again: it is given the message without its prefix
      for (const f of frames)
        if (!call.write(f.subarray(5)) && call.writableLength >= MAX_BUFFERED_MESSAGES) ok = false;
      return ok;
    },
    onDrain: (f) => call.on('drain', f),
  };
}

const DECODE: protobuf.IConversionOptions = { enums: String, longs: String, defaults: false, arrays: false };

function packageVersion(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as {
      version?: string;
    };
    return `seawall-${pkg.version ?? 'dev'}`;
  } catch {
    return 'seawall-dev';
  }
}

interface Types {
  GetFlowsRequest: protobuf.Type;
  GetFlowsResponse: protobuf.Type;
  ServerStatusRequest: protobuf.Type;
  ServerStatusResponse: protobuf.Type;
  GetNodesRequest: protobuf.Type;
  GetNodesResponse: protobuf.Type;
  NotifyRequest: protobuf.Type;
  ChangeNotification: protobuf.Type;
}

function types(): Types {
  return {
    GetFlowsRequest: hubbleType('observer.GetFlowsRequest'),
    GetFlowsResponse: hubbleType('observer.GetFlowsResponse'),
    ServerStatusRequest: hubbleType('observer.ServerStatusRequest'),
    ServerStatusResponse: hubbleType('observer.ServerStatusResponse'),
    GetNodesRequest: hubbleType('observer.GetNodesRequest'),
    GetNodesResponse: hubbleType('observer.GetNodesResponse'),
    NotifyRequest: hubbleType('peer.NotifyRequest'),
    ChangeNotification: hubbleType('peer.ChangeNotification'),
  };
}

function method(
  name: string,
  req: protobuf.Type,
  responseStream: boolean,
  service = 'observer.Observer',
): grpc.MethodDefinition<Record<string, unknown>, Buffer> {
  return {
    path: `/${service}/${name}`,
    requestStream: false,
    responseStream,
    requestSerialize: (o) => Buffer.from(req.encode(req.fromObject(o)).finish()),
    requestDeserialize: (b) => req.toObject(req.decode(b), DECODE),
    // Responses are encoded by the handlers (once per ring entry, shared by every follower).
    responseSerialize: (b) => b,
    responseDeserialize: (b) => b,
  };
}

/** A point in time as [seconds, nanos] for exact comparisons. */
type Instant = readonly [number, number];

function instantOf(ts: unknown): Instant | undefined {
  if (ts === undefined || ts === null) return undefined;
  const o = ts as { seconds?: string | number; nanos?: number };
  return [Number(o.seconds ?? 0), o.nanos ?? 0];
}

function before(a: Instant, b: Instant): boolean {
  return a[0] < b[0] || (a[0] === b[0] && a[1] < b[1]);
}

const flowTimes = new WeakMap<Flow, Instant>();
function flowInstant(f: Flow): Instant {
  let t = flowTimes.get(f);
  if (t === undefined) {
    const p = parseRFC3339(f.time);
    t = typeof p === 'string' ? [0, 0] : [p.seconds, p.nanos];
    flowTimes.set(f, t);
  }
  return t;
}

function nowTimestamp(): { seconds: number; nanos: number } {
  const ms = Date.now();
  return { seconds: Math.floor(ms / 1000), nanos: (ms % 1000) * 1_000_000 };
}

/** Serves Hubble's Observer API over `o.ring`; resolves once every listener is bound. */
export async function startHubbleServer(
  o: HubbleServerOptions,
  listen: HubbleListenOptions,
): Promise<HubbleServerHandle> {
  if (listen.unixSocket === undefined && listen.tcpAddress === undefined) {
    throw new HubbleServerError(
      'hubble-listen',
      'startHubbleServer: give a unixSocket, a tcpAddress or both',
    );
  }
  const t = types();
  const ring = o.ring;
  const version = o.version ?? packageVersion();
  const startedAt = o.startedAt ?? Date.now();
  const stats: HubbleServerStats = {
    activeStreams: 0,
    sentFlows: 0,
    lostEvents: 0,
    encodeErrors: 0,
    writes: 0,
    batchedStreams: 0,
    templatedEntries: 0,
    encodedEntries: 0,
  };
  // Each entry's bytes by its ring slot (no per-entry WeakMap: its ephemerons cost every collection)
  const encodedSeq = new Float64Array(ring.capacity).fill(-1);
  const encodedBytes: (Buffer | null)[] = new Array(ring.capacity).fill(null);
  const encoder = new FlowResponseEncoder(o.nodeName);
  const closers = new Set<() => void>();

  const uptimeNs = (): string => String(BigInt(Math.max(0, Date.now() - startedAt)) * 1_000_000n);

  /** GetFlowsResponse{flow, node_name, time} for one entry, encoded and framed once; null if not encodable. */
  function encodeEntry(e: RingEntry): Buffer | null {
    const slot = e.seq % ring.capacity;
    if (encodedSeq[slot] === e.seq) return encodedBytes[slot]!;
    let b: Buffer | null;
    try {
      b = encoder.encode(e.event, ring.shapeOf(e));
      stats.templatedEntries = encoder.templated;
      stats.encodedEntries = encoder.encoded;
    } catch {
      stats.encodeErrors++;
      b = null;
    }
    encodedSeq[slot] = e.seq;
    encodedBytes[slot] = b;
    return b;
  }

  function lostEvent(n: number): Buffer {
    const msg = t.GetFlowsResponse.fromObject({
      lost_events: { source: 'HUBBLE_RING_BUFFER', num_events_lost: String(n) },
      node_name: o.nodeName,
      time: nowTimestamp(),
    });
    return frameMessage(t.GetFlowsResponse.encode(msg).finish());
  }

  function getFlows(call: grpc.ServerWritableStream<Record<string, unknown>, Buffer>): void {
    const req = call.request as {
      number?: string;
      first?: boolean;
      follow?: boolean;
      whitelist?: HubbleFlowFilter[];
      blacklist?: HubbleFlowFilter[];
      since?: unknown;
      until?: unknown;
    };
    const fail = (code: grpc.status, details: string): void => {
      // grpc-js sends a streaming call's status from an 'error' event
      call.emit('error', Object.assign(new Error(details), { code, details }));
    };
    if (req.first && req.follow) {
      fail(grpc.status.INVALID_ARGUMENT, 'first cannot be specified with follow');
      return;
    }
    let match: (f: Flow) => boolean;
    try {
      match = compileFlowFilters(req.whitelist ?? [], req.blacklist ?? []);
    } catch (e) {
      fail(grpc.status.INVALID_ARGUMENT, (e as Error).message);
      return;
    }
    const number = Number(req.number ?? 0);
    const since = instantOf(req.since);
    const until = instantOf(req.until);
    if (since !== undefined && until !== undefined && before(until, since)) {
      fail(grpc.status.INVALID_ARGUMENT, 'until is before since');
      return;
    }
    const inWindow = (f: Flow): boolean => {
      if (since === undefined && until === undefined) return true;
      const ft = flowInstant(f);
      return (since === undefined || !before(ft, since)) && (until === undefined || !before(until, ft));
    };
    const wanted = (e: RingEntry): boolean => match(e.event.flow) && inWindow(e.event.flow);

    // Where reading starts: the last `number` matching flows, the oldest held (first, since, or
    // everything), or only new flows (follow with no number and no since).
    const end = ring.seen;
    let cursor: number;
    if (!req.first && number > 0) {
      cursor = end;
      let found = 0;
      for (let s = end - 1; s >= ring.firstSeq && found < number; s--) {
        const e = ring.at(s);
        if (e !== undefined && wanted(e)) {
          found++;
          cursor = s;
        }
      }
    } else if (req.follow && number === 0 && since === undefined) cursor = end;
    else cursor = ring.firstSeq;
    let remaining = req.first && number > 0 ? number : Number.POSITIVE_INFINITY;
    const follow = req.follow === true;

    let done = false;
    let paused = false;
    let scheduled = false;
    stats.activeStreams++;
    const finish = (): void => {
      if (done) return;
      done = true;
      stats.activeStreams--;
      unsubscribe();
      closers.delete(finish);
      call.end();
    };
    closers.add(finish);

    // A follower whose stream is full stops reading the ring (and then loses what the ring
    // overwrites, counted): the producer and the other followers never wait for it.
    const wire = wireOf(call, o.batchWrites !== false);
    if (wire.batched) stats.batchedStreams++;
    let frames: Buffer[] = [];
    let bytes = 0;
    const flush = (): void => {
      if (frames.length === 0) return;
      stats.writes++;
      if (!wire.send(frames, bytes)) paused = true;
      frames = [];
      bytes = 0;
    };
    const write = (b: Buffer): void => {
      frames.push(b);
      bytes += b.length;
      if (bytes >= MAX_BATCH_BYTES || !wire.batched) flush();
    };
    const pump = (): void => {
      scheduled = false;
      while (!done && !paused) {
        if (!follow && cursor >= end) {
          flush();
          finish();
          return;
        }
        if (cursor >= ring.seen) break; // caught up: wait for the next push
        if (cursor < ring.firstSeq) {
          const n = ring.firstSeq - cursor;
          cursor = ring.firstSeq;
          stats.lostEvents += n;
          o.onLost?.(n);
          write(lostEvent(n));
          continue;
        }
        const e = ring.at(cursor++)!;
        if (!match(e.event.flow)) continue;
        if (!inWindow(e.event.flow)) {
          // Following past `until`: nothing later can be in the window.
          if (follow && until !== undefined && before(until, flowInstant(e.event.flow))) {
            flush();
            finish();
            return;
          }
          continue;
        }
        const buf = encodeEntry(e);
        if (buf === null) continue;
        stats.sentFlows++;
        write(buf);
        if (--remaining <= 0) {
          flush();
          finish();
          return;
        }
      }
      if (!done) flush();
    };
    const schedule = (): void => {
      if (!scheduled && !paused && !done) {
        scheduled = true;
        setImmediate(pump);
      }
    };
    const unsubscribe = follow ? ring.subscribe(schedule) : () => {};
    wire.onDrain(() => {
      paused = false;
      schedule();
    });
    call.on('cancelled', () => {
      if (done) return;
      done = true; // the client went away: no end() on a dead call
      stats.activeStreams--;
      unsubscribe();
      closers.delete(finish);
    });
    call.on('error', () => {});
    schedule();
  }

  const serverStatus = (
    _call: grpc.ServerUnaryCall<Record<string, unknown>, Buffer>,
    cb: grpc.sendUnaryData<Buffer>,
  ): void => {
    const msg = t.ServerStatusResponse.fromObject({
      num_flows: String(ring.size),
      max_flows: String(ring.capacity),
      seen_flows: String(ring.seen),
      uptime_ns: uptimeNs(),
      version,
    });
    cb(null, Buffer.from(t.ServerStatusResponse.encode(msg).finish()));
  };

  let address = '';
  const getNodes = (
    _call: grpc.ServerUnaryCall<Record<string, unknown>, Buffer>,
    cb: grpc.sendUnaryData<Buffer>,
  ): void => {
    const msg = t.GetNodesResponse.fromObject({
      nodes: [
        {
          name: o.nodeName,
          version,
          address,
          state: 'NODE_CONNECTED',
          tls: { enabled: false },
          uptime_ns: uptimeNs(),
          num_flows: String(ring.size),
          max_flows: String(ring.capacity),
          seen_flows: String(ring.seen),
        },
      ],
    });
    cb(null, Buffer.from(t.GetNodesResponse.encode(msg).finish()));
  };

  // Peer.Notify: this node as Relay's one peer (PEER_ADDED), then an open stream until close.
  const notify = (call: grpc.ServerWritableStream<Record<string, unknown>, Buffer>): void => {
    const msg = t.ChangeNotification.fromObject({ name: o.nodeName, address, type: 'PEER_ADDED' });
    call.write(Buffer.from(t.ChangeNotification.encode(msg).finish()));
    const finish = (): void => {
      closers.delete(finish);
      call.end();
    };
    closers.add(finish);
    call.on('cancelled', () => closers.delete(finish));
    call.on('error', () => {});
  };

  const server = new grpc.Server();
  server.addService({ Notify: method('Notify', t.NotifyRequest, true, 'peer.Peer') }, { Notify: notify });
  server.addService(
    {
      GetFlows: method('GetFlows', t.GetFlowsRequest, true),
      GetNodes: method('GetNodes', t.GetNodesRequest, false),
      ServerStatus: method('ServerStatus', t.ServerStatusRequest, false),
    },
    { GetFlows: getFlows, GetNodes: getNodes, ServerStatus: serverStatus },
  );

  const bind = (target: string): Promise<number> =>
    new Promise((resolve, reject) => {
      server.bindAsync(target, grpc.ServerCredentials.createInsecure(), (err, port) => {
        if (err !== null)
          reject(
            new HubbleServerError('hubble-listen', `cannot listen on ${target}: ${err.message}`, {
              cause: err,
            }),
          );
        else resolve(port);
      });
    });

  let tcpAddress: string | undefined;
  try {
    if (listen.unixSocket !== undefined) {
      mkdirSync(dirname(listen.unixSocket), { recursive: true });
      rmSync(listen.unixSocket, { force: true }); // a stale socket of a crashed run
      await bind(`unix://${listen.unixSocket}`);
      address = `unix://${listen.unixSocket}`;
    }
    if (listen.tcpAddress !== undefined) {
      const port = await bind(listen.tcpAddress);
      const host = listen.tcpAddress.slice(0, listen.tcpAddress.lastIndexOf(':'));
      tcpAddress = `${host}:${port}`;
      address = tcpAddress;
    }
  } catch (e) {
    server.forceShutdown();
    if (listen.unixSocket !== undefined) rmSync(listen.unixSocket, { force: true });
    throw e;
  }

  let closed: Promise<void> | undefined;
  const handle: HubbleServerHandle = {
    stats,
    close(): Promise<void> {
      closed ??= new Promise<void>((resolve) => {
        for (const c of [...closers]) c();
        const timer = setTimeout(() => server.forceShutdown(), 2000);
        server.tryShutdown(() => {
          clearTimeout(timer);
          if (listen.unixSocket !== undefined) rmSync(listen.unixSocket, { force: true });
          resolve();
        });
      });
      return closed;
    },
  };
  if (listen.unixSocket !== undefined) Object.assign(handle, { unixSocket: listen.unixSocket });
  if (tcpAddress !== undefined) Object.assign(handle, { tcpAddress });
  return handle;
}

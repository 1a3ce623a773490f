// The transparent Kafka proxy. For each accepted connection it learns the original destination
// (SO_ORIGINAL_DST through the addon, or a resolver the caller gives), asks for the connection's
// context (the agent's mirror), then reads the client's size-prefixed request frames one by one:
// each is parsed (protocol.ts) and judged (judge.ts) before any of its bytes goes upstream.
//  - allowed: the frame is forwarded unchanged to the original destination (one upstream
//    connection per client connection, opened at the first allowed request); the broker's
//    responses are relayed unchanged, so correlation ids are the client's own;
//  - denied: not forwarded; the client gets its key's error response with code 29 in the place
//    of the broker's, in request order (Kafka answers a connection's requests in order), and the
//    connection stays usable; a key with no such response closes the connection;
//  - a frame that does not parse, or is above the frame limit, closes the connection.
// Limits: the frame size (Kafka's 100 MiB default) and the requests awaiting their response per
// connection (beyond it the proxy stops reading from the client until responses come back).
// Fail closed: no original destination, no context, a rule set that cannot be read: the
// connection is refused or the request denied; no byte reaches the broker unjudged.

import { EventEmitter } from 'node:events';
import net from 'node:net';
import { type KafkaPeer, kafkaFlowRecord } from '../../flow/kafka-record.ts';
import type { Flow } from '../../flow/types.ts';
import { kafkaApiKeyName } from '../../l7/kafka.ts';
import type { ConnectionInfo, HostPort } from '../http/context.ts';
import { hostPortOf, type OriginalDstResolver, RedirectedConnections } from '../origdst.ts';
import { connectUpstream } from '../upstream-socket.ts';
import { DEFAULT_MAX_FRAME, FrameReader } from './frames.ts';
import { type JudgedRequest, judgeKafka, type KafkaContext, type KafkaJudgement } from './judge.ts';
import {
  type KafkaRequestFrame,
  parseRequest,
  refusalResponse,
  TOPIC_AUTHORIZATION_FAILED,
} from './protocol.ts';

export type KafkaLookup = (
  conn: ConnectionInfo,
) => KafkaContext | undefined | Promise<KafkaContext | undefined>;

export interface KafkaProxyOptions {
  lookup: KafkaLookup;
  /** Default: SO_ORIGINAL_DST through the addon; when it is missing every connection is refused. */
  originalDst?: OriginalDstResolver;
  originalDstAddon?: string;
  onFlow?: (flow: Flow) => void;
  /** Connections refused or closed before or while judging, with the reason. */
  onRefused?: (reason: string, conn?: Partial<ConnectionInfo>) => void;
  nodeName?: string;
  /** Largest request frame (default Kafka's socket.request.max.bytes, 100 MiB). */
  maxFrameBytes?: number;
  /** Largest response frame from the broker (default 256 MiB). */
  maxResponseBytes?: number;
  /** Requests awaiting a response per connection before the proxy stops reading (default 128). */
  maxInFlight?: number;
  /** Upstream TCP connect deadline (default 1 s, Cilium's --proxy-connect-timeout). */
  connectTimeoutMs?: number;
}

export interface KafkaProxyStats {
  connections: number;
  refused: number;
  requests: number;
  forwarded: number;
  denied: number;
  /** Connections closed because a frame did not parse or was too large. */
  malformed: number;
}

interface Slot {
  correlationId: number;
  /** Waiting for the broker's response (forwarded) or already answered (refused). */
  forwarded: boolean;
  data?: Buffer;
}

/** Records per request at most (one per topic). */
export const MAX_TOPIC_RECORDS = 32;

export class KafkaProxy extends EventEmitter {
  readonly stats: KafkaProxyStats = {
    connections: 0,
    refused: 0,
    requests: 0,
    forwarded: 0,
    denied: 0,
    malformed: 0,
  };
  private readonly listener: net.Server;
  private readonly redirected: RedirectedConnections;
  private readonly sockets = new Set<net.Socket>();
  private closed = false;
  private listenPort = 0;
  readonly maxFrameBytes: number;
  readonly maxResponseBytes: number;
  readonly maxInFlight: number;
  readonly connectTimeoutMs: number;

  constructor(private readonly opts: KafkaProxyOptions) {
    super();
    this.maxFrameBytes = opts.maxFrameBytes ?? DEFAULT_MAX_FRAME;
    this.maxResponseBytes = opts.maxResponseBytes ?? 256 * 1024 * 1024;
    this.maxInFlight = opts.maxInFlight ?? 128;
    this.connectTimeoutMs = opts.connectTimeoutMs ?? 1_000;
    this.redirected = new RedirectedConnections(opts.originalDst, opts.originalDstAddon);
    this.listener = net.createServer({ noDelay: true }, (s) => this.onConnection(s));
  }

  get unavailableReason(): string | undefined {
    return this.redirected.unavailable;
  }

  listen(port = 0, host = '127.0.0.1'): Promise<HostPort> {
    return new Promise((resolve, reject) => {
      this.listener.once('error', reject);
      this.listener.listen(port, host, () => {
        this.listener.off('error', reject);
        const a = this.address();
        this.listenPort = a.port;
        resolve(a);
      });
    });
  }

  address(): HostPort {
    const a = this.listener.address() as net.AddressInfo;
    return { address: a.address, port: a.port };
  }

  async close(): Promise<void> {
    this.closed = true;
    const done = new Promise<void>((r) => this.listener.close(() => r()));
    for (const s of this.sockets) s.destroy();
    await done;
  }

  private refuse(sock: net.Socket, reason: string, conn?: Partial<ConnectionInfo>): void {
    this.stats.refused++;
    sock.destroy();
    this.opts.onRefused?.(reason, conn);
  }

  private onConnection(sock: net.Socket): void {
    this.stats.connections++;
    this.sockets.add(sock);
    sock.once('close', () => this.sockets.delete(sock));
    sock.on('error', () => {});
    // nothing is read before the context is known
    sock.pause();
    if (this.closed) {
      this.refuse(sock, 'the proxy is closing', {
        remote: hostPortOf(sock.remoteAddress, sock.remotePort),
        local: hostPortOf(sock.localAddress, sock.localPort),
      });
      return;
    }
    const accepted = this.redirected.accept(sock);
    if ('refused' in accepted) {
      this.refuse(sock, accepted.refused, accepted.conn);
      return;
    }
    const info = accepted.info;
    Promise.resolve()
      .then(() => this.opts.lookup(info))
      .then(
        (ctx) => {
          if (sock.destroyed) return;
          if (ctx === undefined) return this.refuse(sock, 'no redirect context for this connection', info);
          new KafkaConnection(this, this.opts, sock, ctx, info).start();
        },
        (e) => this.refuse(sock, `redirect lookup failed: ${(e as Error).message}`, info),
      );
  }

  /** @internal */
  noteMalformed(reason: string, info: ConnectionInfo): void {
    this.stats.malformed++;
    this.opts.onRefused?.(reason, info);
  }

  /** @internal */
  get port(): number {
    return this.listenPort;
  }
}

class KafkaConnection {
  private readonly reader: FrameReader;
  private readonly upReader: FrameReader;
  private upstream: net.Socket | undefined;
  private readonly slots: Slot[] = [];
  private upstreamFull = false;
  private draining = false;
  private done = false;
  private readonly client: KafkaPeer;
  private readonly server: KafkaPeer;

  constructor(
    private readonly proxy: KafkaProxy,
    private readonly opts: KafkaProxyOptions,
    private readonly sock: net.Socket,
    private readonly ctx: KafkaContext,
    private readonly info: ConnectionInfo,
  ) {
    this.reader = new FrameReader(proxy.maxFrameBytes, 8);
    this.upReader = new FrameReader(proxy.maxResponseBytes, 4);
    this.client = { ip: info.remote.address, port: info.remote.port, endpoint: ctx.source };
    this.server = { ip: ctx.originalDst.address, port: ctx.originalDst.port, endpoint: ctx.destination };
  }

  start(): void {
    this.sock.on('data', (c: Buffer) => this.onClientData(c));
    this.sock.once('end', () => this.end());
    this.sock.once('close', () => this.end());
    this.sock.on('drain', () => this.upstream?.resume());
    this.sock.resume();
  }

  private end(): void {
    if (this.done) return;
    this.done = true;
    this.sock.destroy();
    // what was judged and written upstream still goes out (a FIN after it), answers are dropped
    const up = this.upstream;
    if (up !== undefined && !up.destroyed) {
      up.end();
      setTimeout(() => up.destroy(), 2_000).unref();
    }
  }

  private malformed(reason: string): void {
    this.proxy.noteMalformed(reason, this.info);
    this.end();
  }

  private onClientData(chunk: Buffer): void {
    if (this.done) return;
    this.reader.append(chunk);
    this.drain();
  }

  /** Judges buffered requests, in order, while fewer than maxInFlight await their response. */
  private drain(): void {
    if (this.draining) return;
    this.draining = true;
    try {
      while (!this.done && this.slots.length < this.proxy.maxInFlight) {
        let f: Buffer | undefined;
        try {
          f = this.reader.next();
        } catch (e) {
          this.malformed(`unreadable Kafka frame: ${(e as Error).message}`);
          return;
        }
        if (f === undefined) break;
        this.onRequest(f);
      }
    } finally {
      this.draining = false;
    }
    this.throttle();
  }

  private judge(req: KafkaRequestFrame): KafkaJudgement {
    let sets: ReturnType<KafkaContext['ruleSets']>;
    try {
      sets = this.ctx.ruleSets();
    } catch (e) {
      return { allowed: false, reason: `policy engine error: ${(e as Error).message}` };
    }
    const j: JudgedRequest = {
      apiKey: req.apiKey,
      apiVersion: req.apiVersion,
      clientID: req.clientID,
      topics: req.topics,
    };
    return judgeKafka(sets, j);
  }

  private onRequest(frame: Buffer): void {
    let req: KafkaRequestFrame;
    try {
      req = parseRequest(frame);
    } catch (e) {
      this.malformed(`unparseable Kafka request: ${(e as Error).message}`);
      return;
    }
    const stats = this.proxy.stats;
    stats.requests++;
    const j = this.judge(req);
    if (j.allowed) {
      stats.forwarded++;
      this.record(req, j, 0);
      if (req.expectsResponse) this.slots.push({ correlationId: req.correlationId, forwarded: true });
      const up = this.ensureUpstream();
      if (!up.write(frame)) this.upstreamFull = true;
      return;
    }
    stats.denied++;
    const answer = refusalResponse(req);
    this.record(req, j, TOPIC_AUTHORIZATION_FAILED);
    if (!req.expectsResponse) return;
    if (answer === undefined) {
      const name = kafkaApiKeyName(req.apiKey) ?? `key ${req.apiKey}`;
      this.malformed(`denied ${name} v${req.apiVersion} has no error response here: connection closed`);
      return;
    }
    this.slots.push({ correlationId: req.correlationId, forwarded: false, data: answer });
    this.flush();
  }

  private record(req: KafkaRequestFrame, j: KafkaJudgement, errorCode: number): void {
    const cb = this.opts.onFlow;
    if (cb === undefined) return;
    const topics = req.topics.length === 0 ? [''] : req.topics.slice(0, MAX_TOPIC_RECORDS);
    // a request naming thousands of topics must not become thousands of records: the last says so
    const more = req.topics.length - topics.length;
    const time = new Date();
    for (const [i, topic] of topics.entries()) {
      const notes = [
        ...(j.allowed || j.reason === undefined ? [] : [j.reason]),
        ...(more > 0 && i === topics.length - 1 ? [`and ${more} more topics`] : []),
      ];
      try {
        cb(
          kafkaFlowRecord({
            time,
            nodeName: this.opts.nodeName ?? '',
            verdict: j.allowed ? 'FORWARDED' : 'DROPPED',
            direction: this.ctx.direction,
            client: this.client,
            server: this.server,
            errorCode,
            apiVersion: req.apiVersion,
            apiKey: kafkaApiKeyName(req.apiKey) ?? String(req.apiKey),
            correlationId: req.correlationId,
            topic,
            ...(j.allowedBy !== undefined ? { allowedBy: j.allowedBy } : {}),
            ...(notes.length > 0 ? { note: notes.join('; ') } : {}),
            proxyPort: this.proxy.port,
          }),
        );
      } catch {
        // a record sink that throws never changes what the proxy does with the request
      }
    }
  }

  private ensureUpstream(): net.Socket {
    if (this.upstream !== undefined) return this.upstream;
    const dst = this.ctx.originalDst;
    // from the client's own address (upstream-socket.ts): the broker's node judges the pod
    const up = connectUpstream(dst, this.info.remote.address);
    this.upstream = up;
    const timer = setTimeout(() => {
      this.opts.onRefused?.(
        `upstream ${dst.address}:${dst.port} did not connect in ${this.proxy.connectTimeoutMs} ms`,
        this.info,
      );
      this.end();
    }, this.proxy.connectTimeoutMs);
    up.once('connect', () => clearTimeout(timer));
    up.on('error', (e) => {
      clearTimeout(timer);
      this.opts.onRefused?.(`upstream ${dst.address}:${dst.port}: ${e.message}`, this.info);
      this.end();
    });
    up.once('close', () => {
      clearTimeout(timer);
      this.end();
    });
    up.on('drain', () => {
      this.upstreamFull = false;
      this.drain();
    });
    up.on('data', (c: Buffer) => this.onUpstreamData(c));
    return up;
  }

  private onUpstreamData(chunk: Buffer): void {
    if (this.done) return;
    let frames: Buffer[];
    try {
      frames = this.upReader.push(chunk);
    } catch (e) {
      this.opts.onRefused?.(`unreadable response from the broker: ${(e as Error).message}`, this.info);
      this.end();
      return;
    }
    for (const f of frames) {
      const corr = f.readInt32BE(4);
      const slot = this.slots.find((s) => s.forwarded && s.data === undefined);
      if (slot === undefined || slot.correlationId !== corr) {
        // Kafka answers in order: anything else is not a response to what was forwarded
        this.opts.onRefused?.(`broker response with correlation id ${corr} out of order`, this.info);
        this.end();
        return;
      }
      slot.data = f;
    }
    this.flush();
  }

  private flush(): void {
    let full = false;
    while (this.slots.length > 0 && this.slots[0]!.data !== undefined) {
      const s = this.slots.shift()!;
      if (!this.sock.write(s.data!)) full = true;
    }
    // the client reads slower than the broker answers: stop reading the broker
    if (full) this.upstream?.pause();
    // slots freed: judge what waited (drain() itself is not re-entered: no recursion per request)
    this.drain();
  }

  /**
   * Reads from the client only while in-flight requests and upstream buffers are below their
   * limits and at most one frame limit is buffered: requests past the limit wait unjudged.
   */
  private throttle(): void {
    if (this.done) return;
    const stop =
      this.upstreamFull ||
      this.slots.length >= this.proxy.maxInFlight ||
      this.reader.pending > this.proxy.maxFrameBytes;
    if (stop && !this.sock.isPaused()) this.sock.pause();
    else if (!stop && this.sock.isPaused()) this.sock.resume();
  }
}

// The transparent HTTP proxy: HTTP/1.1 (and 1.0) and HTTP/2 with prior knowledge (h2c, what gRPC
// clients speak) on one port. For each accepted connection it learns the original destination
// (SO_ORIGINAL_DST through the addon, or a resolver the caller gives), asks the agent for the
// connection's redirect context, and then judges every request on its own with the engine's
// matchers (judge.ts). Denied: Cilium's 403 `Access denied` (gRPC: PERMISSION_DENIED); allowed:
// forwarded to the original destination with the header actions applied.
//
// Fail closed everywhere: no original destination, no context, a lookup that throws, a parser
// error, a rule set that cannot be read: the connection is closed or the request refused; no byte
// goes upstream for a request the judge did not admit.
//
// Parsing is Node's llhttp with its strict defaults (no lenient flag), driven on the socket by
// h1.ts (no http.createServer: see there why): Content-Length with Transfer-Encoding, repeated
// Content-Length, obs-fold, bare LF and invalid header bytes are parse errors (400, connection
// closed) before a request is judged. Without that parser the proxy does not start.
// Upstream, HTTP/1.1 goes over the proxy's own keep-alive pool (upstream.ts): the proxy writes
// the judged head itself and reads answers with a strict parser (response.ts); a malformed or
// smuggling-shaped answer is a 502 and its connection is closed.
//
// Cilium's proxy defaults where they apply (cilium-agent flags, pkg/option/config.go):
//  --http-request-timeout 3600 s: the upstream response deadline (Envoy route timeout) → 504;
//  --http-retry-count 3: retries after a failed attempt; here only attempts that failed before
//    any body byte was sent and any answer byte came back (connection failures, a kept-alive
//    connection the upstream had closed), as the body streams and is not kept;
//  --http-retry-timeout 0: no per-try timeout ("never");
//  --proxy-connect-timeout 1 s: the upstream TCP connect deadline.
// Downstream: headersTimeout/requestTimeout (Node's defaults) bound slow clients (408, closed).

import { EventEmitter } from 'node:events';
import http2 from 'node:http2';
import net from 'node:net';
import type stream from 'node:stream';
import { type HTTPRecordInput, httpFlowRecord, type L7Peer } from '../../flow/l7-record.ts';
import type { Flow } from '../../flow/types.ts';
import type { SecretResolver } from '../../l7/http.ts';
import type { RuleRef } from '../../policy/types.ts';
import { hostPortOf, type OriginalDstResolver, RedirectedConnections } from '../origdst.ts';
import { connectUpstream } from '../upstream-socket.ts';
import type { ConnectionInfo, HostPort, HTTPRuleSet, RedirectContext, RedirectLookup } from './context.ts';
import { type H1ClientError, type H1Request, type H1Response, H1Server } from './h1.ts';
import { HTTPJudge, type Judgement, NO_SECRET_HEADERS } from './judge.ts';
import { normalizeTarget, type TargetResult } from './normalize.ts';
import type { ResponseHead } from './response.ts';
import {
  type AcquireHandler,
  type ExchangeHandlers,
  type UpstreamConnection,
  UpstreamPool,
} from './upstream.ts';
import { randomUUIDv4 } from './uuid.ts';

export const ACCESS_DENIED_BODY = 'Access denied\r\n';
/** gRPC status codes the proxy itself returns (grpc/status codes). */
export const GRPC_STATUS = { INTERNAL: 13, PERMISSION_DENIED: 7, UNAVAILABLE: 14 } as const;

export interface HTTPProxyOptions {
  lookup: RedirectLookup;
  /** Default: SO_ORIGINAL_DST through the addon; when it is missing every connection is refused. */
  originalDst?: OriginalDstResolver;
  /** Where the addon is (default: its build output); for tests of its absence. */
  originalDstAddon?: string;
  onFlow?: (flow: Flow) => void;
  /**
   * In place of onFlow: each record's input, for httpFlowRecord (what it would build) without
   * building it; the node proxy sends it compact (records.ts) and the agent builds the Flow. The
   * uuid is then left to whoever builds it.
   */
  onRecord?: (record: HTTPRecordInput) => void;
  /** Connections refused and requests rejected before judging, with the reason. */
  onRefused?: (reason: string, conn?: Partial<ConnectionInfo>) => void;
  secrets?: SecretResolver;
  nodeName?: string;
  /** Largest request head (llhttp's limit; Node's default 16 KiB). */
  maxHeaderSize?: number;
  headersTimeoutMs?: number;
  requestTimeoutMs?: number;
  /** How often Node checks the two timeouts above. */
  timeoutCheckIntervalMs?: number;
  keepAliveTimeoutMs?: number;
  upstreamTimeoutMs?: number;
  connectTimeoutMs?: number;
  retryCount?: number;
}

export interface ProxyStats {
  connections: number;
  refused: number;
  requests: number;
  forwarded: number;
  denied: number;
  rejected: number;
}

const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authenticate',
  'proxy-authorization',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'expect',
  'http2-settings',
]);

const H2_PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n');

/** An HTTP/2 stream's raw header list as lower-case pairs, the pseudo-headers left out. */
function regularPairs(raw: readonly string[]): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const k = raw[i]!.toLowerCase();
    if (k.charCodeAt(0) !== 58) out.push([k, raw[i + 1]!]);
  }
  return out;
}

/**
 * Bytes of one HTTP/2 stream to another, with backpressure, and the end passed on: what pipe()
 * does for these streams, without its eight listeners and state per stream (a gRPC call has two
 * such directions). Errors and closes are handled by the caller's own listeners.
 */
function forward(from: stream.Readable, to: stream.Writable): void {
  from.on('data', (c: Buffer) => {
    if (to.destroyed) return;
    if (!to.write(c)) {
      from.pause();
      to.once('drain', () => from.resume());
    }
  });
  from.once('end', () => {
    if (!to.destroyed) to.end();
  });
}

function hostCount(headers: ReadonlyArray<readonly [string, string]>): number {
  let n = 0;
  for (const h of headers) if (h[0] === 'host') n++;
  return n;
}

/** Headers that end at this hop: the fixed list and whatever `Connection` names. */
function endToEnd(headers: ReadonlyArray<readonly [string, string]>): Array<[string, string]> {
  let named: Set<string> | undefined;
  for (const [k, v] of headers) {
    if (k !== 'connection') continue;
    named ??= new Set();
    for (const t of v.split(',')) named.add(t.trim().toLowerCase());
  }
  const out: Array<[string, string]> = [];
  for (const h of headers) {
    const k = h[0];
    if (!HOP_BY_HOP.has(k) && named?.has(k) !== true && k.charCodeAt(0) !== 58)
      out.push(h as [string, string]);
  }
  return out;
}

/** A header name is a token; a value has no CR, LF or NUL and is latin1: it cannot split a head. */
function safeHeader(name: string, value: string): boolean {
  if (name.length === 0) return false;
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i);
    if (c <= 32 || c >= 127 || c === 58) return false;
  }
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (c === 0 || c === 10 || c === 13 || c > 255) return false;
  }
  return true;
}

/** Where one request stands, for its two records. */
interface Exchange {
  ctx: RedirectContext;
  client: L7Peer;
  server: L7Peer;
  method: string;
  url: string;
  protocol: string;
  t0: bigint;
  headers: Array<[string, string]>;
  secretHeaders: ReadonlySet<string>;
  allowedBy?: { ingress?: RuleRef[]; egress?: RuleRef[] };
}

export class HTTPProxy extends EventEmitter {
  readonly stats: ProxyStats = {
    connections: 0,
    refused: 0,
    requests: 0,
    forwarded: 0,
    denied: 0,
    rejected: 0,
  };
  private readonly judge: HTTPJudge;
  private readonly listener: net.Server;
  private readonly h1: H1Server;
  private readonly h2: http2.Http2Server;
  private readonly redirected: RedirectedConnections;
  private readonly contexts = new WeakMap<object, RedirectContext>();
  private readonly h2Remote = new WeakMap<object, HostPort>();
  private pendingH2: RedirectContext | undefined;
  private readonly sockets = new Set<net.Socket>();
  private readonly upstream: UpstreamPool;
  private readonly sessions = new Map<string, http2.ClientHttp2Session>();
  private readonly h2Sessions = new Set<http2.Http2Session>();
  private readonly o: Required<
    Pick<
      HTTPProxyOptions,
      | 'nodeName'
      | 'maxHeaderSize'
      | 'headersTimeoutMs'
      | 'requestTimeoutMs'
      | 'timeoutCheckIntervalMs'
      | 'keepAliveTimeoutMs'
      | 'upstreamTimeoutMs'
      | 'connectTimeoutMs'
      | 'retryCount'
    >
  >;
  private closed = false;
  private pendingFlows: Array<{
    input: Parameters<typeof httpFlowRecord>[0];
    headers: ReadonlyArray<readonly [string, string]>;
    secret: ReadonlySet<string>;
  }> = [];

  constructor(private readonly opts: HTTPProxyOptions) {
    super();
    this.o = {
      nodeName: opts.nodeName ?? '',
      maxHeaderSize: opts.maxHeaderSize ?? 16 * 1024,
      headersTimeoutMs: opts.headersTimeoutMs ?? 60_000,
      requestTimeoutMs: opts.requestTimeoutMs ?? 300_000,
      timeoutCheckIntervalMs: opts.timeoutCheckIntervalMs ?? 1_000,
      keepAliveTimeoutMs: opts.keepAliveTimeoutMs ?? 60_000,
      upstreamTimeoutMs: opts.upstreamTimeoutMs ?? 3_600_000,
      connectTimeoutMs: opts.connectTimeoutMs ?? 1_000,
      retryCount: opts.retryCount ?? 3,
    };
    this.upstream = new UpstreamPool({
      connectTimeoutMs: this.o.connectTimeoutMs,
      requestTimeoutMs: this.o.upstreamTimeoutMs,
      idleTimeoutMs: this.o.keepAliveTimeoutMs,
      maxIdlePerDestination: 256,
      maxHeadSize: this.o.maxHeaderSize,
      maxHeaders: 200,
    });
    this.judge = new HTTPJudge(opts.secrets === undefined ? {} : { secrets: opts.secrets });
    this.redirected = new RedirectedConnections(opts.originalDst, opts.originalDstAddon);
    // Throws (the proxy does not start) when Node's strict HTTP parser is not there.
    this.h1 = new H1Server(
      {
        maxHeaderSize: this.o.maxHeaderSize,
        headersTimeoutMs: this.o.headersTimeoutMs,
        requestTimeoutMs: this.o.requestTimeoutMs,
        keepAliveTimeoutMs: this.o.keepAliveTimeoutMs,
        checkIntervalMs: this.o.timeoutCheckIntervalMs,
      },
      {
        onRequest: (req, res, expectContinue) => this.onH1Request(req, res, expectContinue),
        onClientError: (err, status, socket) => this.onClientError(err, status, socket),
        onRefusal: (err, status, socket) => this.onClientError(err, status, socket),
      },
    );
    this.h2 = http2.createServer({ maxSessionMemory: 32 });
    this.h2.on('session', (s) => {
      const ctx = this.pendingH2;
      if (ctx === undefined) {
        s.destroy();
        return;
      }
      this.contexts.set(s, ctx);
      // The client's address, once per session: the session's socket is a Proxy whose every
      // property read is a trap, and a gRPC channel carries thousands of calls.
      const sock = s.socket;
      this.h2Remote.set(s, hostPortOf(sock?.remoteAddress, sock?.remotePort));
      this.h2Sessions.add(s);
      s.once('close', () => this.h2Sessions.delete(s));
      s.on('error', () => {});
      // An HTTP/2 connection without open streams closes after the keep-alive timeout, as an
      // HTTP/1 one does; a quiet but open stream (a gRPC stream waiting for data) keeps it.
      let open = 0;
      s.on('stream', (st: http2.ServerHttp2Stream) => {
        open++;
        st.once('close', () => open--);
      });
      s.setTimeout(this.o.keepAliveTimeoutMs, () => {
        if (open === 0) s.close();
      });
    });
    this.h2.on(
      'stream',
      (stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders, _flags: number, raw: string[]) =>
        this.onH2Stream(stream, headers, raw),
    );
    this.listener = net.createServer({ noDelay: true }, (s) => this.onConnection(s));
  }

  /** Why redirected connections are refused, when the original-destination addon is missing. */
  get unavailableReason(): string | undefined {
    return this.redirected.unavailable;
  }

  listen(port = 0, host = '127.0.0.1'): Promise<HostPort> {
    return new Promise((resolve, reject) => {
      this.listener.once('error', reject);
      this.listener.listen(port, host, () => {
        this.listener.off('error', reject);
        resolve(this.address());
      });
    });
  }

  address(): HostPort {
    const a = this.listener.address() as net.AddressInfo;
    return { address: a.address, port: a.port };
  }

  private listenPort: number | undefined;
  private port(): number {
    this.listenPort ??= this.address().port;
    return this.listenPort;
  }

  async close(): Promise<void> {
    this.closed = true;
    await new Promise<void>((r) => this.listener.close(() => r()));
    this.h1.close();
    for (const s of this.h2Sessions) s.destroy();
    for (const s of this.sockets) s.destroy();
    this.upstream.destroy();
    for (const s of this.sessions.values()) s.destroy();
    this.sessions.clear();
  }

  /** Forgets compiled rule sets (secrets changed). */
  reloadSecrets(): void {
    this.judge.clear();
  }

  // ------------------------------------------------------------------ connections

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
    let ctx: RedirectContext | undefined;
    Promise.resolve()
      .then(() => this.opts.lookup(info))
      .then(
        (c) => {
          ctx = c;
          if (sock.destroyed) return;
          if (ctx === undefined) return this.refuse(sock, 'no redirect context for this connection', info);
          this.sniff(sock, ctx, info);
        },
        (e) => this.refuse(sock, `redirect lookup failed: ${(e as Error).message}`, info),
      );
  }

  /** Reads until the bytes are, or cannot be, HTTP/2's connection preface, then hands over. */
  private sniff(sock: net.Socket, ctx: RedirectContext, info: ConnectionInfo): void {
    let buf: Buffer = Buffer.alloc(0);
    const timer = setTimeout(() => {
      done();
      this.refuse(sock, 'no request before the headers timeout', info);
    }, this.o.headersTimeoutMs);
    const done = () => {
      clearTimeout(timer);
      sock.off('readable', onReadable);
      sock.off('end', onEnd);
    };
    const onEnd = () => {
      done();
      sock.destroy();
    };
    const onReadable = () => {
      for (let c = sock.read() as Buffer | null; c !== null; c = sock.read() as Buffer | null) {
        buf = buf.length === 0 ? c : Buffer.concat([buf, c]);
      }
      const n = Math.min(buf.length, H2_PREFACE.length);
      if (n === 0) return;
      const h2 = buf.subarray(0, n).equals(H2_PREFACE.subarray(0, n));
      if (h2 && buf.length < H2_PREFACE.length) return;
      done();
      sock.unshift(buf);
      if (h2) {
        this.pendingH2 = ctx;
        try {
          this.h2.emit('connection', sock);
        } finally {
          this.pendingH2 = undefined;
        }
      } else {
        this.contexts.set(sock, ctx);
        this.h1.handle(sock);
      }
    };
    sock.on('readable', onReadable);
    sock.on('end', onEnd);
  }

  /** A request refused before judging (h1.ts answers it: 400, 408, 417, 431, and closes). */
  private onClientError(err: H1ClientError, status: number, socket: net.Socket): void {
    this.stats.rejected++;
    this.opts.onRefused?.(`client error ${err.code} (${status}): ${err.message}`, {
      remote: hostPortOf(socket.remoteAddress, socket.remotePort),
    });
  }

  // ------------------------------------------------------------------ judging (both protocols)

  private ruleSets(ctx: RedirectContext): readonly HTTPRuleSet[] | Error {
    try {
      const s = typeof ctx.ruleSets === 'function' ? ctx.ruleSets() : ctx.ruleSets;
      return Array.isArray(s) ? s : new Error('rule sets are not a list');
    } catch (e) {
      return e as Error;
    }
  }

  private decide(
    ctx: RedirectContext,
    method: string,
    tgt: Extract<TargetResult, { ok: true }>,
    host: string | undefined,
    headers: Array<[string, string]>,
  ): Judgement {
    const sets = this.ruleSets(ctx);
    if (sets instanceof Error) {
      return {
        allowed: false,
        outcomes: [],
        headers,
        logged: [],
        secretHeaders: NO_SECRET_HEADERS,
        reason: `policy engine error: ${sets.message}`,
      };
    }
    const req: { method: string; path: string; host?: string; headers: Array<[string, string]> } = {
      method,
      path: tgt.path,
      headers,
    };
    if (host !== undefined) req.host = host;
    return this.judge.judge(sets, req);
  }

  private exchange(
    ctx: RedirectContext,
    remote: HostPort,
    method: string,
    path: string,
    host: string | undefined,
    protocol: string,
    headers: Array<[string, string]>,
  ): Exchange {
    return {
      ctx,
      client: { ip: remote.address, port: remote.port, endpoint: ctx.source },
      server: { ip: ctx.originalDst.address, port: ctx.originalDst.port, endpoint: ctx.destination },
      method,
      url: `http://${host ?? `${ctx.originalDst.address}:${ctx.originalDst.port}`}${path}`,
      protocol,
      t0: process.hrtime.bigint(),
      headers,
      secretHeaders: NO_SECRET_HEADERS,
    };
  }

  /**
   * Queues the record of a request or response: its time, latency and fields are taken now, the
   * record is built (and handed to onFlow) after the current I/O callbacks, in one batch per
   * event-loop turn, so building and encoding records never delays the bytes of the exchange.
   */
  private emitFlow(
    x: Exchange,
    type: 'REQUEST' | 'RESPONSE',
    verdict: 'FORWARDED' | 'DROPPED',
    extra: { code?: number; headers?: ReadonlyArray<readonly [string, string]>; note?: string } = {},
  ): void {
    if (this.opts.onFlow === undefined && this.opts.onRecord === undefined) return;
    const input: Parameters<typeof httpFlowRecord>[0] = {
      time: new Date(),
      nodeName: this.o.nodeName,
      type,
      verdict,
      direction: x.ctx.direction,
      client: x.client,
      server: x.server,
      method: x.method,
      url: x.url,
      protocol: x.protocol,
      proxyPort: this.port(),
    };
    if (this.opts.onRecord === undefined) input.uuid = randomUUIDv4();
    if (extra.code !== undefined) input.code = extra.code;
    if (extra.note !== undefined) input.note = extra.note;
    if (type === 'RESPONSE') input.latencyNs = process.hrtime.bigint() - x.t0;
    if (x.allowedBy !== undefined && verdict === 'FORWARDED') input.allowedBy = x.allowedBy;
    this.pendingFlows.push({
      input,
      headers: extra.headers ?? (type === 'REQUEST' ? x.headers : []),
      secret: x.secretHeaders,
    });
    if (this.pendingFlows.length === 1) setImmediate(() => this.flushFlows());
  }

  /** Hands the records still queued for the end of this turn to onFlow / onRecord now. */
  flushRecords(): void {
    if (this.pendingFlows.length > 0) this.flushFlows();
  }

  private flushFlows(): void {
    const cb = this.opts.onFlow;
    const onRecord = this.opts.onRecord;
    const batch = this.pendingFlows;
    this.pendingFlows = [];
    if (cb === undefined && onRecord === undefined) return;
    for (const p of batch) {
      try {
        p.input.headers =
          p.secret.size === 0
            ? p.headers
            : p.headers.map(([k, v]) => [k, p.secret.has(k) ? '[redacted]' : v]);
        if (onRecord !== undefined) onRecord(p.input);
        else cb!(httpFlowRecord(p.input));
      } catch {
        // A record sink that throws must not change what happens to the request.
      }
    }
  }

  /** The policies that admitted a request, per rule set (sets are immutable: computed once). */
  private readonly allowedBySet = new WeakMap<HTTPRuleSet, { ingress?: RuleRef[]; egress?: RuleRef[] }>();

  private readonly allowedByPair = new WeakMap<
    HTTPRuleSet,
    WeakMap<HTTPRuleSet, { ingress?: RuleRef[]; egress?: RuleRef[] }>
  >();

  private admitted(x: Exchange, j: Judgement): void {
    x.secretHeaders = j.secretHeaders;
    if (j.outcomes.length === 1) {
      const set = j.outcomes[0]!.set;
      let one = this.allowedBySet.get(set);
      if (one === undefined) {
        one = { [set.direction === 'INGRESS' ? 'ingress' : 'egress']: [...(set.policies ?? [])] };
        this.allowedBySet.set(set, one);
      }
      x.allowedBy = one;
      return;
    }
    // Both sides judged (egress, then ingress): one object per pair of sets as well, so that a
    // record's shape (records.ts, keyed by it) is one per pair and not one per request.
    const pair = j.outcomes.length === 2 ? j.outcomes : undefined;
    const cached = pair === undefined ? undefined : this.allowedByPair.get(pair[0]!.set)?.get(pair[1]!.set);
    if (cached !== undefined) {
      x.allowedBy = cached;
      return;
    }
    const by: { ingress?: RuleRef[]; egress?: RuleRef[] } = {};
    for (const o of j.outcomes) {
      const key = o.set.direction === 'INGRESS' ? 'ingress' : 'egress';
      by[key] = [...(by[key] ?? []), ...(o.set.policies ?? [])];
    }
    if (pair !== undefined) {
      let second = this.allowedByPair.get(pair[0]!.set);
      if (second === undefined) {
        second = new WeakMap();
        this.allowedByPair.set(pair[0]!.set, second);
      }
      second.set(pair[1]!.set, by);
    }
    x.allowedBy = by;
  }

  private logNote(j: Judgement): string | undefined {
    if (j.logged.length === 0) return undefined;
    return `header mismatch logged: ${j.logged.map((a) => a.name).join(', ')}`;
  }

  // ------------------------------------------------------------------ HTTP/1.x

  private localReply(
    res: H1Response,
    x: Exchange,
    code: number,
    body: string,
    extra: Array<[string, string]> = [],
    close = false,
  ): void {
    const headers: Array<[string, string]> = [
      ['content-type', 'text/plain'],
      ['content-length', String(Buffer.byteLength(body))],
      ...extra,
    ];
    res.writeHead(code, headers, close);
    res.end(body);
    if (close) headers.push(['connection', 'close']);
    this.emitFlow(x, 'RESPONSE', 'FORWARDED', { code, headers });
  }

  private onH1Request(req: H1Request, res: H1Response, expectContinue: boolean): void {
    this.stats.requests++;
    const sock = req.conn.sock;
    const ctx = this.contexts.get(sock);
    if (ctx === undefined) {
      // Every socket the h1 side sees came through sniff(); anything else is refused.
      res.destroy();
      return;
    }
    const method = req.method;
    const headers = req.headers;
    let tgt = normalizeTarget(method, req.url);
    // RFC 9112 §3.2: more than one Host is a 400; proxies that pick different ones disagree.
    if (tgt.ok && hostCount(headers) > 1) {
      tgt = { ok: false, error: 'more than one Host header' };
    }
    const host = tgt.ok && tgt.authority !== undefined ? tgt.authority : req.header('host');
    const remote = hostPortOf(sock.remoteAddress, sock.remotePort);
    const protocol = `HTTP/${req.httpVersion}`;
    // A body the client holds back for 100-continue never comes after a refusal: close then.
    const closeAfter = expectContinue;
    if (!tgt.ok) {
      const x = this.exchange(ctx, remote, method, req.url, host, protocol, headers);
      this.stats.rejected++;
      this.emitFlow(x, 'REQUEST', 'DROPPED', { note: `bad request target: ${tgt.error}` });
      req.discard();
      this.localReply(res, x, 400, 'Bad Request\r\n', [], true);
      return;
    }
    const x = this.exchange(ctx, remote, method, tgt.path, host, protocol, headers);
    if (tgt.redirect) {
      // UNESCAPE_AND_REDIRECT: the client asks again for the unescaped path, which is then judged.
      this.stats.rejected++;
      this.emitFlow(x, 'REQUEST', 'DROPPED', { note: 'escaped slashes: redirected to the normalized path' });
      req.discard();
      this.localReply(res, x, 307, '', [['location', tgt.path]], closeAfter);
      return;
    }
    const j = this.decide(ctx, method, tgt, host, headers);
    if (!j.allowed) {
      this.stats.denied++;
      x.secretHeaders = j.secretHeaders;
      this.emitFlow(x, 'REQUEST', 'DROPPED', { note: j.reason ?? 'denied' });
      req.discard();
      this.localReply(res, x, 403, ACCESS_DENIED_BODY, [], closeAfter);
      return;
    }
    this.admitted(x, j);
    this.stats.forwarded++;
    const note = this.logNote(j);
    this.emitFlow(x, 'REQUEST', 'FORWARDED', note === undefined ? {} : { note });
    if (expectContinue) res.writeContinue();
    this.forwardH1(req, res, x, tgt.path, host, j.headers);
  }

  private forwardH1(
    req: H1Request,
    res: H1Response,
    x: Exchange,
    path: string,
    host: string | undefined,
    judged: Array<[string, string]>,
  ): void {
    const dst = x.ctx.originalDst;
    const method = req.method;
    // The head upstream gets, written here: what llhttp parsed and the judge admitted, framing
    // re-stated explicitly (chunked or the one Content-Length llhttp accepted).
    let head = `${method} ${path} HTTP/1.1\r\nhost: ${host ?? `${dst.address}:${dst.port}`}\r\n`;
    let safe = host === undefined || safeHeader('host', host);
    for (const [k, v] of endToEnd(judged)) {
      if (k === 'host' || k === 'content-length') continue;
      safe &&= safeHeader(k, v);
      head += `${k}: ${v}\r\n`;
    }
    const cl = req.contentLength;
    const chunked = req.chunked;
    const hasBody = chunked || (cl !== undefined && cl !== '0');
    if (chunked) head += 'transfer-encoding: chunked\r\n';
    else if (cl !== undefined) head += `content-length: ${cl}\r\n`;
    head += '\r\n';
    if (!safe) {
      // A header action produced a value that would split the head: refused, never sent.
      req.discard();
      this.localReply(res, x, 500, 'invalid header after header actions\r\n', [], true);
      return;
    }
    new H1Forward(this, req, res, x, head, chunked, hasBody).send();
  }

  /** @internal for H1Forward: a local answer after a failed attempt. */
  failH1(req: H1Request, res: H1Response, x: Exchange, code: number, body: string): void {
    req.discard();
    this.localReply(res, x, code, body, [], true);
  }

  /** @internal for H1Forward */
  upstreamRefused(reason: string, dst: HostPort): void {
    this.opts.onRefused?.(reason, { originalDst: dst });
  }

  /** @internal for H1Forward */
  acquireUpstream(x: Exchange, h: AcquireHandler): void {
    this.upstream.acquire(x.ctx.originalDst, x.client.ip, h);
  }

  /** @internal for H1Forward */
  get retryCount(): number {
    return this.o.retryCount;
  }

  /** @internal for H1Forward */
  responseFlow(x: Exchange, code: number, headers: Array<[string, string]>): void {
    this.emitFlow(x, 'RESPONSE', 'FORWARDED', { code, headers });
  }

  // ------------------------------------------------------------------ HTTP/2 and gRPC

  private h2Reply(
    stream: http2.ServerHttp2Stream,
    x: Exchange,
    grpc: boolean,
    code: number,
    grpcStatus: number,
    message: string,
    extra: Record<string, string> = {},
  ): void {
    if (stream.destroyed || stream.headersSent) return;
    let headers: Record<string, string>;
    let body: string | undefined;
    if (grpc) {
      // Envoy's local reply to a gRPC request: trailers-only, HTTP 200, the status in grpc-status.
      headers = {
        ':status': '200',
        'content-type': 'application/grpc',
        'grpc-status': String(grpcStatus),
        'grpc-message': message.trim(),
      };
    } else {
      body = message;
      headers = { ':status': String(code), 'content-type': 'text/plain', ...extra };
    }
    try {
      stream.respond(headers, { endStream: body === undefined });
      if (body !== undefined) stream.end(body);
    } catch {
      stream.destroy();
    }
    const { ':status': status, ...rest } = headers;
    this.emitFlow(x, 'RESPONSE', 'FORWARDED', { code: Number(status), headers: Object.entries(rest) });
  }

  private onH2Stream(stream: http2.ServerHttp2Stream, hdrs: http2.IncomingHttpHeaders, raw: string[]): void {
    this.stats.requests++;
    stream.on('error', () => {});
    const ctx = this.contexts.get(stream.session as object);
    if (ctx === undefined) {
      stream.close(http2.constants.NGHTTP2_REFUSED_STREAM);
      return;
    }
    const method = String(hdrs[':method'] ?? '');
    const rawPath = String(hdrs[':path'] ?? '');
    const host = hdrs[':authority'] !== undefined ? String(hdrs[':authority']) : hdrs.host;
    const headers = regularPairs(Array.isArray(raw) ? raw : []);
    const grpc = String(hdrs['content-type'] ?? '').startsWith('application/grpc');
    const remote = this.h2Remote.get(stream.session as object) ?? hostPortOf(undefined, undefined);
    if (method === 'CONNECT') {
      stream.close(http2.constants.NGHTTP2_REFUSED_STREAM);
      return;
    }
    const tgt = normalizeTarget(method, rawPath);
    if (!tgt.ok) {
      const x = this.exchange(ctx, remote, method, rawPath, host, 'HTTP/2', headers);
      this.stats.rejected++;
      this.emitFlow(x, 'REQUEST', 'DROPPED', { note: `path cannot be normalized: ${tgt.error}` });
      this.h2Reply(stream, x, grpc, 400, GRPC_STATUS.INTERNAL, 'Bad Request\r\n');
      return;
    }
    const x = this.exchange(ctx, remote, method, tgt.path, host, 'HTTP/2', headers);
    if (tgt.redirect) {
      // Envoy rejects a gRPC call with escaped slashes (INTERNAL) instead of redirecting it.
      this.stats.rejected++;
      this.emitFlow(x, 'REQUEST', 'DROPPED', { note: 'escaped slashes: redirected to the normalized path' });
      this.h2Reply(stream, x, grpc, 307, GRPC_STATUS.INTERNAL, '', { location: tgt.path });
      return;
    }
    const j = this.decide(ctx, method, tgt, host, headers);
    if (!j.allowed) {
      this.stats.denied++;
      x.secretHeaders = j.secretHeaders;
      this.emitFlow(x, 'REQUEST', 'DROPPED', { note: j.reason ?? 'denied' });
      this.h2Reply(stream, x, grpc, 403, GRPC_STATUS.PERMISSION_DENIED, ACCESS_DENIED_BODY);
      return;
    }
    this.admitted(x, j);
    this.stats.forwarded++;
    const note = this.logNote(j);
    this.emitFlow(x, 'REQUEST', 'FORWARDED', note === undefined ? {} : { note });
    this.forwardH2(stream, x, tgt.path, host, j.headers, grpc);
  }

  private sessionFor(dst: HostPort, source: string): http2.ClientHttp2Session {
    const key = `${source}|${dst.address}|${dst.port}`;
    const s = this.sessions.get(key);
    if (s !== undefined && !s.closed && !s.destroyed) return s;
    const authority = dst.address.includes(':')
      ? `http://[${dst.address}]:${dst.port}`
      : `http://${dst.address}:${dst.port}`;
    // Nagle off, as on every other socket of the proxy: small frames (gRPC's) go out at once.
    const n = http2.connect(authority, {
      createConnection: () => connectUpstream(dst, source),
    });
    n.on('error', () => {});
    const forget = () => {
      if (this.sessions.get(key) === n) this.sessions.delete(key);
    };
    n.once('close', forget);
    n.once('goaway', forget);
    n.unref();
    this.sessions.set(key, n);
    return n;
  }

  private forwardH2(
    stream: http2.ServerHttp2Stream,
    x: Exchange,
    path: string,
    host: string | undefined,
    judged: Array<[string, string]>,
    grpc: boolean,
  ): void {
    const dst = x.ctx.originalDst;
    const h: http2.OutgoingHttpHeaders = {};
    for (const [k, v] of endToEnd(judged)) {
      if (k === 'host') continue;
      const prev = h[k];
      h[k] = prev === undefined ? v : Array.isArray(prev) ? [...prev, v] : [String(prev), v];
    }
    h[':method'] = x.method;
    h[':path'] = path;
    h[':scheme'] = 'http';
    h[':authority'] = host ?? `${dst.address}:${dst.port}`;
    if (grpc) h.te = 'trailers';
    let up: http2.ClientHttp2Stream;
    try {
      up = this.sessionFor(dst, x.client.ip).request(h, { endStream: stream.readableEnded });
    } catch {
      this.h2Reply(stream, x, grpc, 503, GRPC_STATUS.UNAVAILABLE, 'upstream connect error\r\n');
      return;
    }
    let trailers: http2.IncomingHttpHeaders | undefined;
    up.setTimeout(this.o.upstreamTimeoutMs, () => up.close(http2.constants.NGHTTP2_CANCEL));
    forward(stream, up);
    stream.on('close', () => {
      if (!up.closed) up.close(http2.constants.NGHTTP2_CANCEL);
    });
    up.on('error', () => {
      if (!stream.headersSent)
        this.h2Reply(
          stream,
          x,
          grpc,
          503,
          GRPC_STATUS.UNAVAILABLE,
          'upstream connect error or disconnect/reset before headers\r\n',
        );
      else stream.close(http2.constants.NGHTTP2_INTERNAL_ERROR);
    });
    up.on('close', () => {
      if (!stream.headersSent && !stream.destroyed) {
        this.h2Reply(stream, x, grpc, 503, GRPC_STATUS.UNAVAILABLE, 'upstream reset before headers\r\n');
      } else if (!stream.writableEnded && up.rstCode !== http2.constants.NGHTTP2_NO_ERROR) {
        stream.close(up.rstCode ?? http2.constants.NGHTTP2_INTERNAL_ERROR);
      }
    });
    up.on('response', (rh, flags) => {
      const status = Number(rh[':status'] ?? 502);
      const out: http2.OutgoingHttpHeaders = { ':status': status };
      const rec: Array<[string, string]> = [];
      for (const k in rh) {
        const v = rh[k];
        if (k.charCodeAt(0) === 58 || HOP_BY_HOP.has(k) || v === undefined) continue;
        out[k] = v;
        rec.push([k, Array.isArray(v) ? v.join(',') : String(v)]);
      }
      const endStream = (flags & http2.constants.NGHTTP2_FLAG_END_STREAM) !== 0;
      this.emitFlow(x, 'RESPONSE', 'FORWARDED', { code: status, headers: rec });
      try {
        stream.respond(out, endStream ? { endStream: true } : { waitForTrailers: true });
      } catch {
        up.close(http2.constants.NGHTTP2_CANCEL);
        return;
      }
      if (endStream) return;
      stream.on('wantTrailers', () => {
        const t: http2.OutgoingHttpHeaders = {};
        for (const [k, v] of Object.entries(trailers ?? {}))
          if (!k.startsWith(':') && v !== undefined) t[k] = v;
        try {
          stream.sendTrailers(t);
        } catch {
          stream.close();
        }
      });
      forward(up, stream);
    });
    up.on('trailers', (t) => {
      trailers = t;
    });
  }
}

/**
 * One admitted HTTP/1 request on its way upstream: its attempts (retried while nothing of the body
 * went and no answer came), its body, its answer. One object per request whose methods are the
 * callbacks, in place of a closure per callback: fewer objects for the young generation, and no
 * named closure per request (under tsx each costs a defineProperty of its name: 3.5% of the
 * proxy's CPU with three as instance fields).
 */
class H1Forward implements ExchangeHandlers, AcquireHandler {
  private attempt = 0;
  private bodyStarted = false;
  private responded = false;
  private current: UpstreamConnection | undefined;

  constructor(
    private readonly proxy: HTTPProxy,
    private readonly req: H1Request,
    private readonly res: H1Response,
    private readonly x: Exchange,
    private readonly head: string,
    private readonly chunked: boolean,
    private readonly hasBody: boolean,
  ) {
    res.onClose(() => this.current?.abort());
  }

  send(): void {
    this.attempt++;
    this.proxy.acquireUpstream(this.x, this);
  }

  acquired(err: NodeJS.ErrnoException | undefined, c?: UpstreamConnection): void {
    if (err !== undefined || c === undefined) {
      this.onError(err ?? new Error('no connection'), false);
      return;
    }
    if (this.res.destroyed) {
      c.abort();
      return;
    }
    this.current = c;
    c.begin(this.req.method, this.head, this.chunked, this);
    if (!this.hasBody) {
      c.endRequest();
      return;
    }
    // What arrived of the body goes now, the rest as it comes.
    this.req.body(
      (d) => this.bodyData(d),
      () => this.current?.endRequest(),
    );
  }

  private bodyData(d: Buffer): void {
    this.bodyStarted = true;
    const c = this.current;
    if (c !== undefined && !c.writeBody(d)) {
      const req = this.req;
      req.pause();
      c.socket.once('drain', () => req.resume());
    }
  }

  private fail(code: number, body: string): void {
    if (this.responded || this.res.headersSent) {
      this.res.destroy();
      return;
    }
    this.responded = true;
    this.proxy.failH1(this.req, this.res, this.x, code, body);
  }

  onHead(uh: ResponseHead): void {
    this.responded = true;
    const rh = endToEnd(uh.headers);
    this.res.writeHead(uh.status, rh);
    this.proxy.responseFlow(this.x, uh.status, rh);
  }

  onBody(chunk: Buffer): void {
    const c = this.current;
    if (!this.res.write(chunk, true) && c !== undefined) {
      c.socket.pause();
      this.res.onDrain(() => c.socket.resume());
    }
  }

  onEnd(): void {
    this.current = undefined;
    this.res.end();
  }

  onError(e: NodeJS.ErrnoException, started: boolean): void {
    this.current = undefined;
    const res = this.res;
    if (started || this.responded || res.headersSent) {
      res.destroy();
      return;
    }
    if (e.code === 'ETIMEDOUT_UPSTREAM') {
      this.fail(504, 'upstream request timeout\r\n');
      return;
    }
    if (e.code === 'UPSTREAM_BAD_RESPONSE') {
      this.proxy.upstreamRefused(`bad upstream response: ${e.message}`, this.x.ctx.originalDst);
      this.fail(502, 'upstream sent an invalid response\r\n');
      return;
    }
    if (!this.bodyStarted && this.attempt <= this.proxy.retryCount && !res.destroyed) {
      // The body waits (held, nothing of it sent) for the next connection.
      this.req.hold();
      this.send();
      return;
    }
    this.fail(
      503,
      `upstream connect error or disconnect/reset before headers. reset reason: ${e.code ?? e.message}\r\n`,
    );
  }
}

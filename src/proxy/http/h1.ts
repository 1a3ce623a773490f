// The proxy's downstream HTTP/1.x: Node's own llhttp driven directly on the accepted net.Socket,
// in place of http.createServer.
//
// Why: at the paced rate the proxy's p99 was its CPU share and its GC, not judging. node:http's
// server builds an IncomingMessage (a Readable) and a ServerResponse (a Writable) per request,
// with their timers, nextTicks and header objects; here a request is one small object, its
// answer one corked write. The parser is the one http.createServer uses (`_http_common`'s
// HTTPParser, llhttp), initialised as Node's server does with no lenient flag (insecureHTTPParser
// is never set) and the same header-size cap: Content-Length with Transfer-Encoding, repeated
// Content-Length, obs-fold, bare LF, invalid bytes, bad chunk sizes and oversized heads are parse
// errors exactly as before. `_http_common` is internal: `loadHTTPParser` checks it at start-up
// (its API and, on sample requests, that it is strict) and the proxy refuses to start without it.
//
// What node:http's server did that this keeps: requests on a connection answered in order, one at
// a time (a pipelined request waits, its body buffered up to a cap, and is judged when its turn
// comes); `Expect: 100-continue` (another expectation: 417); HTTP/1.1 without Host: 400; the
// headers and request timeouts (408 and close) and the keep-alive idle timeout, checked every
// `checkIntervalMs` as Node does; HTTP/1.0 keep-alive only when asked for; no byte parsed after a
// request that ends the connection. CONNECT closes the connection; an Upgrade request is a plain
// request (Upgrade is hop-by-hop and never passed on).

import { STATUS_CODES } from 'node:http';
import { createRequire } from 'node:module';
import type net from 'node:net';

interface Parser {
  initialize(type: number, resource: object, maxHeaderSize: number, lenient: number): void;
  execute(data: Buffer): number | (Error & { code?: string; bytesParsed?: number });
  finish(): undefined | (Error & { code?: string });
  close(): void;
  [k: number]: unknown;
}

interface ParserModule {
  HTTPParser: {
    new (): Parser;
    REQUEST: number;
    kOnMessageBegin: number;
    kOnHeaders: number;
    kOnHeadersComplete: number;
    kOnBody: number;
    kOnMessageComplete: number;
    kOnExecute: number;
    kLenientNone: number;
  };
  methods: string[];
}

export type ParserLoad = { ok: true; mod: ParserModule } | { ok: false; reason: string };
let loaded: ParserLoad | undefined;

/**
 * Node's llhttp binding, checked: the constructor and constants exist, and a sample parse behaves
 * as the strict parser must (a good request parses; Content-Length with Transfer-Encoding and an
 * obs-fold are errors). Anything else: not ok, with the reason.
 */
export function loadHTTPParser(): ParserLoad {
  if (loaded !== undefined) return loaded;
  loaded = checkParser();
  return loaded;
}

/** The check itself, on what `load` returns (tests give it stand-ins). */
export function checkParser(
  load: () => unknown = () => createRequire(import.meta.url)('_http_common'),
): ParserLoad {
  let mod: ParserModule;
  try {
    mod = load() as ParserModule;
  } catch (e) {
    return {
      ok: false,
      reason: `node's HTTP parser (_http_common) cannot be loaded: ${(e as Error).message}`,
    };
  }
  const P = mod?.HTTPParser;
  const keys = [
    'REQUEST',
    'kOnMessageBegin',
    'kOnHeaders',
    'kOnHeadersComplete',
    'kOnBody',
    'kOnMessageComplete',
    'kLenientNone',
  ] as const;
  if (typeof P !== 'function' || keys.some((k) => typeof P[k] !== 'number') || !Array.isArray(mod.methods)) {
    return { ok: false, reason: "node's HTTP parser (_http_common.HTTPParser) has an unknown shape" };
  }
  const sample = (wire: string): { heads: number; error?: string } => {
    const p = new P();
    p.initialize(P.REQUEST, {}, 16 * 1024, P.kLenientNone);
    let heads = 0;
    p[P.kOnHeadersComplete] = () => {
      heads++;
      return 0;
    };
    p[P.kOnBody] = () => {};
    p[P.kOnMessageComplete] = () => {};
    const r = p.execute(Buffer.from(wire, 'latin1'));
    p.close();
    return typeof r === 'number' ? { heads } : { heads, error: r.code ?? 'error' };
  };
  try {
    const good = sample('POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\nx');
    const smuggle = sample(
      'POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n',
    );
    const fold = sample('GET /a HTTP/1.1\r\nHost: x\r\nX: 1\r\n y\r\n\r\n');
    if (good.heads !== 1 || good.error !== undefined)
      return { ok: false, reason: "node's HTTP parser does not parse a plain request" };
    if (smuggle.error === undefined || fold.error === undefined)
      return { ok: false, reason: "node's HTTP parser is not strict (accepted CL with TE or obs-fold)" };
  } catch (e) {
    return { ok: false, reason: `node's HTTP parser failed its self-check: ${(e as Error).message}` };
  }
  return { ok: true, mod };
}

export interface H1Options {
  maxHeaderSize: number;
  headersTimeoutMs: number;
  requestTimeoutMs: number;
  keepAliveTimeoutMs: number;
  checkIntervalMs: number;
}

export interface H1ClientError {
  code: string;
  message: string;
}

export interface H1Handlers {
  /** A request whose turn came (the one before it on the connection is answered). */
  onRequest(req: H1Request, res: H1Response, expectContinue: boolean): void;
  /** A parse error or a timeout; the connection is answered with `status` and closed. */
  onClientError(err: H1ClientError, status: number, sock: net.Socket): void;
  /** A request refused before judging (417, 400 without Host): answered in its turn, then closed. */
  onRefusal(err: H1ClientError, status: number, sock: net.Socket): void;
}

/** Pipelined requests held at most, and their body bytes, before the socket stops being read. */
const MAX_QUEUED = 32;
const MAX_QUEUED_BYTES = 1 << 20;
/** A response head and a first body chunk up to this size go out as one string write. */
const MERGE_MAX_BYTES = 16 * 1024;

export function statusText(code: number): string {
  return STATUS_CODES[code] ?? 'Unknown';
}

/** One parsed request head, and its body as it arrives. */
export class H1Request {
  /** Header names lower-cased, values as sent, in order. */
  readonly headers: Array<[string, string]> = [];
  readonly chunked: boolean;
  readonly contentLength: string | undefined;
  bodyDone = false;
  private buffered: Buffer[] = [];
  private bufferedBytes = 0;
  private onData: ((c: Buffer) => void) | undefined;
  private onEnd: (() => void) | undefined;
  private discarding = false;

  constructor(
    readonly conn: H1Connection,
    readonly method: string,
    readonly url: string,
    readonly httpVersion: '1.0' | '1.1',
    raw: readonly string[],
    readonly keepAlive: boolean,
  ) {
    let chunked = false;
    let cl: string | undefined;
    for (let i = 0; i + 1 < raw.length; i += 2) {
      const k = raw[i]!.toLowerCase();
      const v = raw[i + 1]!;
      this.headers.push([k, v]);
      // llhttp admitted the framing: a Transfer-Encoding here ends in chunked, and there is at
      // most one Content-Length, never with it.
      if (k === 'transfer-encoding') chunked = true;
      else if (k === 'content-length' && cl === undefined) cl = v;
    }
    this.chunked = chunked;
    this.contentLength = cl;
  }

  /** The first value of a header (lower-case name). */
  header(name: string): string | undefined {
    for (const [k, v] of this.headers) if (k === name) return v;
    return undefined;
  }

  /** The body: what arrived so far at once, then as it comes; `end` when it is complete. */
  body(onData: (c: Buffer) => void, onEnd: () => void): void {
    this.onData = onData;
    this.onEnd = onEnd;
    const b = this.buffered;
    this.buffered = [];
    this.conn.unbuffer(this.bufferedBytes);
    this.bufferedBytes = 0;
    for (const c of b) onData(c);
    if (this.bodyDone) onEnd();
  }

  /** The body's destination goes (a failed attempt): what comes is kept until body() again. */
  hold(): void {
    this.onData = undefined;
    this.onEnd = undefined;
  }

  /** The body is read and dropped (a refused request: the connection stays usable). */
  discard(): void {
    this.discarding = true;
    this.onData = undefined;
    this.onEnd = undefined;
    this.conn.unbuffer(this.bufferedBytes);
    this.buffered = [];
    this.bufferedBytes = 0;
    this.resume();
  }

  /** Stop reading the connection (the body's destination is full). */
  pause(): void {
    this.conn.pauseFor('body');
  }

  resume(): void {
    this.conn.resumeFor('body');
  }

  /** @internal */
  push(c: Buffer): void {
    if (this.discarding) return;
    if (this.onData !== undefined) {
      this.onData(c);
      return;
    }
    this.buffered.push(c);
    this.bufferedBytes += c.length;
    this.conn.buffer(c.length);
  }

  /** @internal */
  complete(): void {
    this.bodyDone = true;
    const end = this.onEnd;
    this.onEnd = undefined;
    end?.();
  }
}

/** What a socket may hold on to: a borrowed buffer's copy. */
function kept(chunk: Buffer | string, borrowed: boolean): Buffer | string {
  return borrowed && typeof chunk !== 'string' ? Buffer.from(chunk) : chunk;
}

/** The answer to one request, written in its turn on the connection. */
export class H1Response {
  headersSent = false;
  finished = false;
  private chunked = false;
  private noBody = false;
  private closeAfter = false;
  private closeCbs: Array<() => void> | undefined;

  constructor(
    protected readonly conn: H1Connection,
    protected readonly req: H1Request,
  ) {}

  get destroyed(): boolean {
    return this.conn.dead;
  }

  writeContinue(): void {
    if (this.headersSent || this.conn.dead) return;
    this.conn.sock.write(`${this.conn.takeHead() ?? ''}HTTP/1.1 100 Continue\r\n\r\n`, 'latin1');
  }

  /**
   * The status line and `headers` (end-to-end ones: the caller drops hop-by-hop headers), with
   * the framing and connection headers this hop needs. `close`: the connection ends after it.
   */
  writeHead(status: number, headers: ReadonlyArray<readonly [string, string]>, close = false): void {
    if (this.headersSent || this.conn.dead) return;
    this.headersSent = true;
    const req = this.req;
    this.noBody = req.method === 'HEAD' || status === 204 || status === 304;
    let hasLength = false;
    let head = `HTTP/1.1 ${status} ${statusText(status)}\r\n`;
    for (const [k, v] of headers) {
      if (k === 'content-length') {
        if (status === 204 || status === 304) continue;
        hasLength = true;
      }
      head += `${k}: ${v}\r\n`;
    }
    this.closeAfter = close || !req.keepAlive || this.conn.closing;
    if (!this.noBody && !hasLength) {
      // A body without a length: chunked to an HTTP/1.1 client, to the close for HTTP/1.0.
      if (req.httpVersion === '1.1') this.chunked = true;
      else this.closeAfter = true;
    }
    if (this.chunked) head += 'transfer-encoding: chunked\r\n';
    if (this.closeAfter) head += 'connection: close\r\n';
    else if (req.httpVersion === '1.0') head += 'connection: keep-alive\r\n';
    head += '\r\n';
    this.conn.holdHead(head);
  }

  /**
   * Body bytes; false: wait for onDrain before writing more. `borrowed`: chunk is valid only during
   * the call (a view of a read buffer that is reused), so what the socket may keep is a copy.
   */
  write(chunk: Buffer | string, borrowed = false): boolean {
    if (!this.headersSent || this.finished || this.conn.dead) return true;
    if (this.noBody || chunk.length === 0) return true;
    const sock = this.conn.sock;
    const head = this.conn.takeHead() ?? '';
    if (!this.chunked) {
      // the head and a small body in one write (latin1 keeps every byte as it is; a new string)
      if (head !== '' && typeof chunk !== 'string' && chunk.length <= MERGE_MAX_BYTES)
        return sock.write(head + chunk.toString('latin1'), 'latin1');
      if (head !== '') sock.write(head, 'latin1');
      return sock.write(kept(chunk, borrowed));
    }
    const n = typeof chunk === 'string' ? Buffer.byteLength(chunk) : chunk.length;
    sock.write(`${head}${n.toString(16)}\r\n`, 'latin1');
    sock.write(kept(chunk, borrowed));
    return sock.write('\r\n', 'latin1');
  }

  end(body?: string): void {
    if (this.finished) return;
    if (body !== undefined) this.write(body);
    this.finished = true;
    if (this.conn.dead) return;
    const tail = `${this.conn.takeHead() ?? ''}${this.chunked ? '0\r\n\r\n' : ''}`;
    if (tail !== '') this.conn.sock.write(tail, 'latin1');
    this.conn.uncork();
    this.conn.responseDone(this.req, this.closeAfter);
  }

  /** Ends the connection now (a response that cannot be completed). */
  destroy(): void {
    this.conn.destroy();
  }

  onDrain(cb: () => void): void {
    if (this.conn.dead) return;
    this.conn.sock.once('drain', cb);
  }

  /** The connection went away before this response was complete. */
  onClose(cb: () => void): void {
    if (this.closeCbs === undefined) this.closeCbs = [cb];
    else this.closeCbs.push(cb);
  }

  /** @internal */
  closed(): void {
    if (this.finished) return;
    const cbs = this.closeCbs;
    this.closeCbs = undefined;
    for (const cb of cbs ?? []) cb();
  }
}

interface Pending {
  req: H1Request;
  res: H1Response;
  expectContinue: boolean;
}

/** One downstream connection: its parser, its queue of requests, its timers' state. */
export class H1Connection {
  dead = false;
  /** A request asked to close: nothing after it is parsed, the connection ends after its answer. */
  closing = false;
  private readonly parser: Parser;
  private readonly queue: Pending[] = [];
  private parsing: H1Request | undefined;
  private running = false;
  private corked = false;
  private queuedBytes = 0;
  private readonly paused = new Set<string>();
  /** performance.now() of the current request's first byte (0: none in progress). */
  messageStart = 0;
  headersDone = false;
  idleSince = performance.now();
  private headerChunks: string[] = [];
  private urlChunks = '';

  constructor(
    readonly sock: net.Socket,
    private readonly server: H1Server,
  ) {
    const { HTTPParser: P, methods } = server.mod;
    const p = new P();
    p.initialize(P.REQUEST, {}, server.o.maxHeaderSize, P.kLenientNone);
    p[P.kOnMessageBegin] = () => {
      this.messageStart = performance.now();
      this.headersDone = false;
    };
    // More than 32 header lines come in pieces before the head completes.
    p[P.kOnHeaders] = (headers: string[], url: string) => {
      for (const h of headers) this.headerChunks.push(h);
      this.urlChunks += url;
    };
    p[P.kOnHeadersComplete] = (
      major: number,
      minor: number,
      headers: string[] | undefined,
      method: number,
      url: string | undefined,
      _status: unknown,
      _reason: unknown,
      _upgrade: boolean,
      keepAlive: boolean,
    ): number => {
      this.headersDone = true;
      const raw = headers ?? this.headerChunks;
      const target = url ?? this.urlChunks;
      this.headerChunks = [];
      this.urlChunks = '';
      if (this.dead || this.closing) return 0;
      const m = methods[method] ?? '';
      if (m === 'CONNECT') {
        // A tunnel is never judged request by request: refused.
        this.destroy();
        return 0;
      }
      const version = major === 1 && minor === 0 ? '1.0' : '1.1';
      const req = new H1Request(this, m, target, version, raw, keepAlive);
      this.parsing = req;
      if (!keepAlive) this.closing = true;
      this.enqueue(req);
      return 0;
    };
    p[P.kOnBody] = (chunk: Buffer) => {
      if (!this.dead) this.parsing?.push(chunk);
    };
    p[P.kOnMessageComplete] = () => {
      this.messageStart = 0;
      const r = this.parsing;
      this.parsing = undefined;
      if (!this.dead) r?.complete();
    };
    this.parser = p;
    sock.on('data', (d: Buffer) => this.onData(d));
    sock.on('end', () => this.onEnd());
    sock.on('close', () => this.onClose());
    sock.resume();
  }

  private onData(d: Buffer): void {
    let data = d;
    while (!this.dead && !this.closing && data.length > 0) {
      const r = this.parser.execute(data);
      if (typeof r !== 'number') {
        // Bytes after a request that ends the connection are not parsed (nor an error).
        if (this.closing && r.code === 'HPE_CLOSED_CONNECTION') return;
        this.clientError({ code: r.code ?? 'HPE_ERROR', message: r.message }, errorStatus(r.code));
        return;
      }
      // llhttp stops after an Upgrade request's head; it is a plain request here, so the bytes
      // after it are the next request.
      data = data.subarray(r);
      if (r === 0) break;
    }
  }

  private onEnd(): void {
    if (this.dead) return;
    // The client is done sending: a request cut short is dropped; answers still owed go out,
    // then the connection ends.
    if (this.messageStart !== 0 && !this.closing) {
      this.destroy();
      return;
    }
    this.closing = true;
    if (this.queue.length === 0) this.sock.end();
  }

  private onClose(): void {
    this.dead = true;
    this.server.forget(this);
    this.releaseParser();
    for (const p of this.queue.splice(0)) p.res.closed();
  }

  private released = false;
  /** Frees the parser, later: this may run inside one of its callbacks (as Node defers it too). */
  private releaseParser(): void {
    if (this.released) return;
    this.released = true;
    setImmediate(() => this.parser.close());
  }

  /** @internal the timeout checker's verdicts. */
  clientError(err: H1ClientError, status: number): void {
    if (this.dead) return;
    this.server.handlers.onClientError(err, status, this.sock);
    const current = this.queue[0];
    this.dead = true;
    this.releaseParser();
    const pending = this.queue.splice(0);
    if (current?.res.headersSent) {
      // An answer is half written: nothing else can be put on this connection.
      this.sock.destroy();
    } else if (this.sock.writable) {
      this.uncork();
      this.sock.end(
        `HTTP/1.1 ${status} ${statusText(status)}\r\nconnection: close\r\ncontent-length: 0\r\n\r\n`,
        'latin1',
      );
      this.sock.destroySoon();
    } else this.sock.destroy();
    // Exchanges in flight end (their upstream requests are aborted): the client will never read
    // their answers.
    for (const p of pending) p.res.closed();
  }

  destroy(): void {
    if (this.dead) return;
    this.sock.destroy();
    this.onClose();
  }

  private enqueue(req: H1Request): void {
    let refusal: [number, H1ClientError] | undefined;
    let expectContinue = false;
    const expect = req.header('expect');
    if (expect !== undefined && req.httpVersion === '1.1') {
      if (expect.toLowerCase() === '100-continue') expectContinue = true;
      // An expectation the proxy cannot meet: 417, never forwarded.
      else refusal = [417, { code: 'EXPECTATION_FAILED', message: `Expect: ${expect}` }];
    }
    if (req.httpVersion === '1.1' && req.header('host') === undefined) {
      refusal = [400, { code: 'MISSING_HOST', message: 'HTTP/1.1 request without Host' }];
    }
    if (refusal !== undefined) {
      this.server.handlers.onRefusal(refusal[1], refusal[0], this.sock);
      this.queue.push({ req, res: new RefusalResponse(this, req, refusal[0]), expectContinue });
    } else this.queue.push({ req, res: new H1Response(this, req), expectContinue });
    if (this.queue.length > MAX_QUEUED) this.pauseFor('queue');
    this.run();
  }

  /** Starts the request at the head of the queue when the one before it is answered. */
  private run(): void {
    if (this.running) return;
    this.running = true;
    try {
      while (!this.dead && this.queue.length > 0 && !this.busy) {
        const p = this.queue[0]!;
        this.busy = true;
        if (p.res instanceof RefusalResponse) p.res.send();
        else this.server.handlers.onRequest(p.req, p.res, p.expectContinue);
      }
    } finally {
      this.running = false;
    }
  }

  private busy = false;

  /** @internal */
  responseDone(req: H1Request, close: boolean): void {
    const head = this.queue[0];
    if (head === undefined || head.req !== req) return;
    this.queue.shift();
    this.busy = false;
    // A body still arriving for an answered request is read and dropped.
    if (!req.bodyDone) req.discard();
    if (this.queue.length <= MAX_QUEUED) this.resumeFor('queue');
    if (close) {
      this.closing = true;
      this.dead = true;
      this.releaseParser();
      this.sock.destroySoon();
      for (const p of this.queue.splice(0)) p.res.closed();
      return;
    }
    if (this.queue.length === 0) {
      this.idleSince = performance.now();
      if (this.closing) this.sock.end();
      return;
    }
    this.run();
  }

  /**
   * @internal: the current response's head, held to go out with its first body bytes in one
   * write (a corked head and body went as a writev of two, about 2% of the proxy's CPU in Node's
   * writev path), or when the cork ends at the end of the tick: a head never waits for a body.
   */
  holdHead(head: string): void {
    this.corkOnce();
    this.pendingHead = head;
  }

  /** @internal: the held head, now the caller's to write before anything else. */
  takeHead(): string | undefined {
    const h = this.pendingHead;
    this.pendingHead = undefined;
    return h;
  }

  private pendingHead: string | undefined;

  /** @internal: corks the socket until the response ends or the current tick is over. */
  corkOnce(): void {
    if (this.corked) return;
    this.corked = true;
    this.sock.cork();
    process.nextTick(this.uncorkLater);
  }

  private readonly uncorkLater = (): void => this.uncork();

  uncork(): void {
    if (!this.corked) return;
    this.corked = false;
    const head = this.takeHead();
    if (head !== undefined && !this.dead) this.sock.write(head, 'latin1');
    this.sock.uncork();
  }

  /** @internal */
  buffer(n: number): void {
    this.queuedBytes += n;
    if (this.queuedBytes > MAX_QUEUED_BYTES) this.pauseFor('queue');
  }

  /** @internal */
  unbuffer(n: number): void {
    this.queuedBytes -= n;
    if (this.queuedBytes <= MAX_QUEUED_BYTES && this.queue.length <= MAX_QUEUED) this.resumeFor('queue');
  }

  pauseFor(why: string): void {
    if (this.paused.size === 0) this.sock.pause();
    this.paused.add(why);
  }

  resumeFor(why: string): void {
    if (!this.paused.delete(why)) return;
    if (this.paused.size === 0 && !this.dead) this.sock.resume();
  }

  /** @internal the timeout check: true when the connection was ended. */
  check(now: number): boolean {
    if (this.dead) return true;
    const o = this.server.o;
    if (this.messageStart !== 0) {
      const age = now - this.messageStart;
      if ((!this.headersDone && age > o.headersTimeoutMs) || age > o.requestTimeoutMs) {
        this.clientError({ code: 'ERR_HTTP_REQUEST_TIMEOUT', message: 'request timeout' }, 408);
        return true;
      }
    } else if (this.queue.length === 0 && now - this.idleSince > o.keepAliveTimeoutMs) {
      this.destroy();
      return true;
    }
    return false;
  }
}

/** A local answer for a request refused before judging (417, 400): written in its turn, then closed. */
class RefusalResponse extends H1Response {
  constructor(
    conn: H1Connection,
    req: H1Request,
    private readonly status: number,
  ) {
    super(conn, req);
  }

  send(): void {
    this.req.discard();
    this.writeHead(this.status, [['content-length', '0']], true);
    this.end();
  }
}

function errorStatus(code: string | undefined): number {
  return code === 'HPE_HEADER_OVERFLOW' ? 431 : 400;
}

/** The connections handed to the HTTP/1 side, and their timeout check. */
export class H1Server {
  readonly mod: ParserModule;
  private readonly conns = new Set<H1Connection>();
  private timer: NodeJS.Timeout | undefined;

  /** Throws when the parser is not there or not strict: the proxy does not start (fail closed). */
  constructor(
    readonly o: H1Options,
    readonly handlers: H1Handlers,
    p: ParserLoad = loadHTTPParser(),
  ) {
    if (!p.ok) throw new Error(`the HTTP proxy cannot start: ${p.reason}`);
    this.mod = p.mod;
  }

  handle(sock: net.Socket): H1Connection {
    const c = new H1Connection(sock, this);
    this.conns.add(c);
    if (this.timer === undefined) {
      this.timer = setInterval(() => {
        const now = performance.now();
        for (const x of this.conns) x.check(now);
      }, this.o.checkIntervalMs);
      this.timer.unref();
    }
    return c;
  }

  /** @internal */
  forget(c: H1Connection): void {
    this.conns.delete(c);
  }

  close(): void {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
    for (const c of this.conns) c.destroy();
    this.conns.clear();
  }
}

// The proxy's upstream side for HTTP/1.1: a keep-alive pool of plain sockets per original
// destination. The proxy writes each judged request's head itself and reads the answer with the
// strict parser of response.ts. node:http's client (ClientRequest, IncomingMessage, Agent) cost
// about half of the proxy's CPU per request; this is one socket write per request head and no
// per-request stream objects.
//
// One request at a time per connection (no upstream pipelining). A connection goes back to the
// pool only when its response was complete, framed by a length or chunks, keep-alive, and the
// whole request was written; anything else closes it.

import type net from 'node:net';
import { connectUpstream } from '../upstream-socket.ts';
import type { HostPort } from './context.ts';
import { type BodyFraming, ResponseError, type ResponseHead, ResponseParser } from './response.ts';

export interface UpstreamPoolOptions {
  connectTimeoutMs: number;
  /** Socket inactivity while a request is outstanding (the upstream response deadline). */
  requestTimeoutMs: number;
  /** An idle pooled connection is closed after this. */
  idleTimeoutMs: number;
  maxIdlePerDestination: number;
  maxHeadSize: number;
  maxHeaders: number;
}

export interface ExchangeHandlers {
  onHead(head: ResponseHead, framing: BodyFraming): void;
  /** chunk: a view of the pool's read buffer, valid only during the call (copy what is kept). */
  onBody(chunk: Buffer): void;
  onEnd(): void;
  /**
   * The exchange failed. `responseStarted`: a response head had arrived. Codes: ECONNECT_TIMEOUT,
   * ETIMEDOUT_UPSTREAM, UPSTREAM_BAD_RESPONSE, or the socket's own (ECONNREFUSED, ECONNRESET…).
   */
  onError(err: NodeJS.ErrnoException, responseStarted: boolean): void;
}

export class UpstreamConnection {
  readonly parser: ResponseParser;
  private handlers: ExchangeHandlers | undefined;
  private requestDone = false;
  private responseStarted = false;
  private chunked = false;
  private ended = false;
  /** A byte of the current answer arrived. */
  private gotBytes = false;
  /** performance.now() of the last byte in or out (the pool's sweep times inactivity from it). */
  lastActive = performance.now();

  constructor(
    readonly socket: net.Socket,
    private readonly pool: UpstreamPool,
    readonly key: string,
  ) {
    this.parser = new ResponseParser(
      { maxHeadSize: pool.o.maxHeadSize, maxHeaders: pool.o.maxHeaders },
      {
        onHead: (head, framing) => {
          this.responseStarted = true;
          this.handlers?.onHead(head, framing);
        },
        onBody: (c) => this.handlers?.onBody(c),
        // Acted on after the whole buffer was parsed: bytes after the response must be seen
        // (and the connection closed) before it can carry another request.
        onEnd: () => {
          this.ended = true;
        },
      },
    );
    socket.setNoDelay(true);
    // The pool's sockets read through `onread` (no 'data'); a socket handed in without it, here.
    socket.on('data', (d: Buffer) => this.read(d));
    socket.on('end', () => {
      let err: NodeJS.ErrnoException | undefined;
      try {
        this.parser.eof();
      } catch (e) {
        err = e as NodeJS.ErrnoException;
      }
      if (this.ended) this.afterParse(undefined);
      // Closed before any byte of the answer: a reset (retried when safe), not a bad response.
      else if (err !== undefined && this.gotBytes) this.fail(err);
      else this.fail(closedError());
      socket.destroy();
    });
    socket.on('error', (e) => this.fail(e));
    socket.on('close', () => {
      this.pool.forget(this);
      if (this.handlers !== undefined) this.fail(closedError());
    });
  }

  /**
   * Bytes from upstream. `d` may be a view of the pool's read buffer, valid only during the call:
   * the parser copies what it keeps, and onBody's consumer what it does not write at once.
   */
  read(d: Buffer): void {
    this.gotBytes = true;
    this.lastActive = performance.now();
    let err: NodeJS.ErrnoException | undefined;
    try {
      this.parser.feed(d);
    } catch (e) {
      err = e as NodeJS.ErrnoException;
    }
    this.afterParse(err);
  }

  /** @internal the pool's sweep: ends the connection when it was quiet too long. */
  check(now: number): void {
    // A connection still connecting has its own deadline (the pool's connect timer).
    if (this.socket.destroyed || this.socket.connecting) return;
    const quiet = now - this.lastActive;
    if (this.handlers === undefined) {
      if (quiet > this.pool.o.idleTimeoutMs) this.socket.destroy();
    } else if (quiet > this.pool.o.requestTimeoutMs) {
      this.fail(Object.assign(new Error('upstream timeout'), { code: 'ETIMEDOUT_UPSTREAM' }));
    }
  }

  /** Starts an exchange: writes the request head; the body follows with writeBody and endRequest. */
  begin(method: string, head: string, chunked: boolean, h: ExchangeHandlers): void {
    this.handlers = h;
    this.requestDone = false;
    this.responseStarted = false;
    this.gotBytes = false;
    this.chunked = chunked;
    this.parser.expect(method);
    this.lastActive = performance.now();
    this.socket.write(head, 'latin1');
  }

  /** Body bytes of the request; false: wait for 'drain' on the socket. */
  writeBody(chunk: Buffer): boolean {
    if (chunk.length === 0 || this.handlers === undefined) return true;
    this.lastActive = performance.now();
    if (!this.chunked) return this.socket.write(chunk);
    this.socket.cork();
    this.socket.write(`${chunk.length.toString(16)}\r\n`, 'latin1');
    this.socket.write(chunk);
    const ok = this.socket.write('\r\n', 'latin1');
    this.socket.uncork();
    return ok;
  }

  /** The request is complete (for chunked bodies: the last chunk). */
  endRequest(): void {
    if (this.handlers === undefined) return;
    if (this.chunked) this.socket.write('0\r\n\r\n', 'latin1');
    this.requestDone = true;
  }

  /** Ends the exchange without reusing the connection (downstream went away). */
  abort(): void {
    this.handlers = undefined;
    this.socket.destroy();
  }

  private afterParse(err: NodeJS.ErrnoException | undefined): void {
    if (!this.ended) {
      if (err !== undefined) this.fail(err);
      return;
    }
    this.ended = false;
    const h = this.handlers;
    if (err !== undefined || !this.requestDone) {
      // Bytes after a complete response (the response is good, the connection is not), or a
      // response that ended before the request body was all sent (an early 4xx: the request's
      // framing is unfinished): the response is passed on, the connection closed.
      this.handlers = undefined;
      this.socket.destroy();
    } else this.release();
    h?.onEnd();
  }

  private release(): void {
    this.handlers = undefined;
    if (this.parser.reusable && this.requestDone && !this.socket.destroyed) this.pool.park(this);
    else this.socket.destroy();
  }

  private fail(e: NodeJS.ErrnoException): void {
    const h = this.handlers;
    this.handlers = undefined;
    this.socket.destroy();
    h?.onError(e, this.responseStarted);
  }
}

/** The upstream sockets' read buffer, one per process. */
const READ_BUFFER = Buffer.allocUnsafe(64 * 1024);

function closedError(): NodeJS.ErrnoException {
  return Object.assign(new Error('upstream closed the connection'), { code: 'ECONNRESET' });
}

/**
 * Who waits for a connection: an object with a method, not a callback, so that a request's
 * forwarder (one object per request) needs no closure made per request for it.
 */
export interface AcquireHandler {
  acquired(err: NodeJS.ErrnoException | undefined, c?: UpstreamConnection): void;
}

export class UpstreamPool {
  private readonly idle = new Map<string, UpstreamConnection[]>();
  private readonly all = new Set<UpstreamConnection>();
  private closed = false;
  private sweeper: NodeJS.Timeout | undefined;
  /**
   * How often the sweep runs: a quarter of the shorter timeout, 10 ms to 1 s. One timer for the
   * pool in place of a socket timeout re-armed on every request and refreshed on every read and
   * write; a timeout fires up to this much late.
   */
  readonly sweepMs: number;

  constructor(readonly o: UpstreamPoolOptions) {
    this.sweepMs = Math.min(
      1000,
      Math.max(10, Math.floor(Math.min(o.requestTimeoutMs, o.idleTimeoutMs) / 4)),
    );
  }

  private sweep(): void {
    const now = performance.now();
    for (const c of this.all) c.check(now);
    if (this.all.size === 0 && this.sweeper !== undefined) {
      clearInterval(this.sweeper);
      this.sweeper = undefined;
    }
  }

  /**
   * An idle connection from `source` (the client's address: upstreams leave from it) to `dst`,
   * most recently used first, or a new one once connected.
   */
  acquire(dst: HostPort, source: string, h: AcquireHandler): void {
    const key = `${source}|${dst.address}|${dst.port}`;
    const list = this.idle.get(key);
    while (list !== undefined && list.length > 0) {
      const c = list.pop()!;
      if (c.socket.destroyed || !c.parser.idle) continue;
      // begin() sets the request's timeout in place of the idle one.
      h.acquired(undefined, c);
      return;
    }
    if (this.closed) {
      h.acquired(Object.assign(new Error('the proxy is closing'), { code: 'ECLOSING' }));
      return;
    }
    // Read into one buffer for every upstream socket of the process (net's `onread`), not into a
    // new 64 KiB buffer per read through the socket's Readable (its push, 'data' and read-more
    // tick): about a tenth of the proxy's user CPU per request. One buffer is enough: a read's
    // callback runs to its end before the next read, and nothing keeps a view of it past that.
    let reader: UpstreamConnection | undefined; // set below, before the socket can read
    const socket = connectUpstream(dst, source, {
      buffer: READ_BUFFER,
      callback: (n) => {
        reader?.read(READ_BUFFER.subarray(0, n));
        return true;
      },
    });
    const c = new UpstreamConnection(socket, this, key);
    reader = c;
    this.all.add(c);
    if (this.sweeper === undefined) {
      this.sweeper = setInterval(() => this.sweep(), this.sweepMs);
      this.sweeper.unref();
    }
    let settled = false;
    const done = (e?: NodeJS.ErrnoException) => {
      if (settled) return;
      settled = true;
      clearTimeout(t);
      socket.off('error', done);
      socket.off('connect', onConnect);
      if (e !== undefined) {
        socket.destroy();
        h.acquired(e);
      } else h.acquired(undefined, c);
    };
    const onConnect = () => done();
    const t = setTimeout(
      () => done(Object.assign(new Error('connect timeout'), { code: 'ECONNECT_TIMEOUT' })),
      this.o.connectTimeoutMs,
    );
    socket.once('connect', onConnect);
    socket.once('error', done);
  }

  park(c: UpstreamConnection): void {
    if (this.closed) {
      c.socket.destroy();
      return;
    }
    let list = this.idle.get(c.key);
    if (list === undefined) {
      list = [];
      this.idle.set(c.key, list);
    }
    if (list.length >= this.o.maxIdlePerDestination) {
      c.socket.destroy();
      return;
    }
    c.lastActive = performance.now();
    list.push(c);
  }

  forget(c: UpstreamConnection): void {
    this.all.delete(c);
    const list = this.idle.get(c.key);
    if (list === undefined) return;
    const i = list.indexOf(c);
    if (i >= 0) list.splice(i, 1);
    if (list.length === 0) this.idle.delete(c.key);
  }

  /** Connections open now (idle and busy). */
  get size(): number {
    return this.all.size;
  }

  destroy(): void {
    this.closed = true;
    if (this.sweeper !== undefined) clearInterval(this.sweeper);
    this.sweeper = undefined;
    for (const c of this.all) c.socket.destroy();
    this.all.clear();
    this.idle.clear();
  }
}

export { ResponseError };

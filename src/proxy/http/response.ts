// A strict HTTP/1.1 response parser for the proxy's upstream connections. llhttp stays on the
// downstream side (node:http's server); Node exposes llhttp for responses only through the
// internal `_http_common` module, so upstream responses are parsed here, strictly, by RFC 9112:
//  - lines end in CRLF (a bare CR or LF is an error), no obs-fold, header names are tokens,
//    values have no control bytes but HTAB; a head larger than the cap is an error;
//  - framing (§6.3): HEAD, 1xx, 204 and 304 have no body; Transfer-Encoding must be exactly
//    `chunked` and never comes with Content-Length; one Content-Length of digits only; else the
//    body runs to the close (and the connection is not reused);
//  - 1xx interim responses are passed over (the proxy answers 100-continue itself); 101 is an
//    error, as the proxy never asks for an upgrade;
//  - any byte after a complete response, before the next request was sent, is an error (a
//    response the proxy did not ask for would be matched to the next request).
// Any error means: 502 if nothing was sent downstream yet, and the upstream connection closed.

export interface ResponseHead {
  /** 0 for HTTP/1.0, 1 for HTTP/1.1. */
  minor: 0 | 1;
  status: number;
  reason: string;
  /** Names lower-cased, in order, repeats kept. */
  headers: Array<[string, string]>;
}

export type BodyFraming = 'none' | 'length' | 'chunked' | 'close';

export interface ResponseHandlers {
  onHead(head: ResponseHead, framing: BodyFraming, keepAlive: boolean): void;
  /** chunk: a view of the bytes fed, valid only during the call (copy what is kept). */
  onBody(chunk: Buffer): void;
  onEnd(): void;
}

export class ResponseError extends Error {
  readonly code = 'UPSTREAM_BAD_RESPONSE';
}

enum State {
  Idle,
  Head,
  Length,
  ChunkSize,
  ChunkData,
  ChunkDataEnd,
  Trailers,
  Close,
  Done,
}

/** tchar (RFC 9110 §5.6.2) */
const TOKEN = new Uint8Array(256);
for (const c of "!#$%&'*+-.^_`|~") TOKEN[c.charCodeAt(0)] = 1;
for (let c = 48; c <= 57; c++) TOKEN[c] = 1;
for (let c = 65; c <= 90; c++) TOKEN[c] = 1;
for (let c = 97; c <= 122; c++) TOKEN[c] = 1;

/** field-vchar, SP, HTAB and obs-text: what a header value (or reason phrase) may hold. */
function valueByte(c: number): boolean {
  return c === 9 || (c >= 32 && c !== 127);
}

const MAX_CHUNK_LINE = 4096;

export interface ResponseParserOptions {
  /** Largest response head, and largest trailer section (bytes). */
  maxHeadSize: number;
  maxHeaders: number;
}

export class ResponseParser {
  private state = State.Idle;
  private head: Buffer[] = [];
  private headLen = 0;
  private remaining = 0;
  private method = '';
  private keepAlive = false;

  constructor(
    private readonly opts: ResponseParserOptions,
    private readonly h: ResponseHandlers,
  ) {}

  /** A request was sent: the next bytes are its response. */
  expect(method: string): void {
    if (this.state !== State.Idle) throw new ResponseError('a response is still in progress');
    this.method = method;
    this.state = State.Head;
    this.head = [];
    this.headLen = 0;
  }

  /** The response is complete and the connection can carry the next request. */
  get reusable(): boolean {
    return this.state === State.Idle && this.keepAlive;
  }

  /** Between responses (nothing expected). */
  get idle(): boolean {
    return this.state === State.Idle;
  }

  /** Bytes arrived. Throws ResponseError on anything not strictly a response. */
  feed(buf: Buffer): void {
    let at = 0;
    while (at < buf.length) {
      switch (this.state) {
        case State.Idle:
        case State.Done:
          throw new ResponseError('bytes after the response');
        case State.Head:
          at = this.feedHead(buf, at);
          break;
        case State.Length: {
          const n = Math.min(this.remaining, buf.length - at);
          this.remaining -= n;
          const part = buf.subarray(at, at + n);
          at += n;
          if (this.remaining === 0) this.state = State.Done;
          this.h.onBody(part);
          if (this.state === State.Done) this.finish();
          break;
        }
        case State.ChunkSize:
          at = this.feedLine(buf, at, MAX_CHUNK_LINE, (line) => this.chunkSize(line));
          break;
        case State.ChunkData: {
          const n = Math.min(this.remaining, buf.length - at);
          this.remaining -= n;
          const part = buf.subarray(at, at + n);
          at += n;
          if (this.remaining === 0) {
            this.state = State.ChunkDataEnd;
            this.remaining = 2;
          }
          this.h.onBody(part);
          break;
        }
        case State.ChunkDataEnd: {
          // Exactly CRLF after the chunk's data.
          const want = this.remaining === 2 ? 13 : 10;
          if (buf[at] !== want) throw new ResponseError('chunk data not followed by CRLF');
          at++;
          this.remaining--;
          if (this.remaining === 0) this.state = State.ChunkSize;
          break;
        }
        case State.Trailers:
          at = this.feedLine(buf, at, this.opts.maxHeadSize, (line) => this.trailer(line));
          break;
        case State.Close:
          this.h.onBody(buf.subarray(at));
          at = buf.length;
          break;
      }
    }
  }

  /** Upstream closed. Completes a close-delimited body; anything else unfinished is an error. */
  eof(): void {
    if (this.state === State.Close) {
      this.state = State.Done;
      this.finish();
      return;
    }
    if (this.state !== State.Idle)
      throw new ResponseError('upstream closed before the response was complete');
  }

  private finish(): void {
    this.state = State.Idle;
    this.h.onEnd();
  }

  // ---------------------------------------------------------------- head

  private feedHead(buf: Buffer, at: number): number {
    // Look for CRLFCRLF across the bytes kept so far and this buffer.
    const prev = this.headLen;
    this.head.push(at === 0 ? buf : buf.subarray(at));
    this.headLen += buf.length - at;
    const all = this.head.length === 1 ? this.head[0]! : Buffer.concat(this.head, this.headLen);
    const from = Math.max(0, prev - 3);
    const end = all.indexOf('\r\n\r\n', from, 'latin1');
    if (end < 0) {
      if (this.headLen > this.opts.maxHeadSize) throw new ResponseError('response head too large');
      // A bare LF is an error now, not when (if ever) CRLFCRLF comes.
      for (let i = all.indexOf(10, Math.max(0, prev - 1)); i >= 0; i = all.indexOf(10, i + 1)) {
        if (i === 0 || all[i - 1] !== 13) throw new ResponseError('bare LF in the response head');
      }
      // kept past this call: a copy (buf may be a view of a read buffer that is reused)
      this.head = [this.head.length > 1 ? all : Buffer.from(all)];
      return buf.length;
    }
    if (end + 4 > this.opts.maxHeadSize) throw new ResponseError('response head too large');
    this.head = [];
    this.headLen = 0;
    this.parseHead(all.subarray(0, end));
    // What follows the head in this buffer.
    return buf.length - (all.length - (end + 4));
  }

  private parseHead(b: Buffer): void {
    // Line bounds, not a Buffer per line: a head is parsed in place.
    const lines = splitLines(b);
    const status = parseStatusLine(b, lines[0]!, lines[1]!);
    if (lines.length / 2 - 1 > this.opts.maxHeaders) throw new ResponseError('too many response headers');
    const headers: Array<[string, string]> = [];
    for (let i = 2; i < lines.length; i += 2) headers.push(parseField(b, lines[i]!, lines[i + 1]!));
    const head: ResponseHead = { minor: status.minor, status: status.status, reason: status.reason, headers };
    if (head.status >= 100 && head.status < 200) {
      if (head.status === 101) throw new ResponseError('101 Switching Protocols was not asked for');
      // Interim: the final response follows.
      this.state = State.Head;
      return;
    }
    let cl: string | undefined;
    let te: string | undefined;
    let close = head.minor === 0;
    for (const [k, v] of headers) {
      if (k === 'content-length') {
        if (cl !== undefined) throw new ResponseError('more than one Content-Length');
        cl = v;
      } else if (k === 'transfer-encoding') {
        if (te !== undefined) throw new ResponseError('more than one Transfer-Encoding');
        te = v;
      } else if (k === 'connection') {
        for (const t of v.split(',')) {
          const tok = t.trim().toLowerCase();
          if (tok === 'close') close = true;
          else if (tok === 'keep-alive' && head.minor === 0) close = false;
        }
      }
    }
    if (cl !== undefined && te !== undefined)
      throw new ResponseError('Content-Length with Transfer-Encoding');
    if (te !== undefined && head.minor === 0)
      throw new ResponseError('Transfer-Encoding in an HTTP/1.0 response');
    if (te !== undefined && te.toLowerCase() !== 'chunked')
      throw new ResponseError(`Transfer-Encoding ${te}`);
    let length = -1;
    if (cl !== undefined) {
      if (!/^[0-9]{1,15}$/.test(cl)) throw new ResponseError(`bad Content-Length ${JSON.stringify(cl)}`);
      length = Number(cl);
    }
    let framing: BodyFraming;
    if (this.method === 'HEAD' || head.status === 204 || head.status === 304) framing = 'none';
    else if (te !== undefined) framing = 'chunked';
    else if (length >= 0) framing = length === 0 ? 'none' : 'length';
    else framing = 'close';
    this.keepAlive = !close && framing !== 'close';
    this.state =
      framing === 'none'
        ? State.Done
        : framing === 'length'
          ? State.Length
          : framing === 'chunked'
            ? State.ChunkSize
            : State.Close;
    this.remaining = length;
    this.h.onHead(head, framing, this.keepAlive);
    if (this.state === State.Done) this.finish();
  }

  // ---------------------------------------------------------------- chunked

  private lineBuf: Buffer[] = [];
  private lineLen = 0;

  /** Collects one CRLF line (bare CR or LF is an error), then hands it over. */
  private feedLine(buf: Buffer, at: number, max: number, done: (line: Buffer) => void): number {
    const lf = buf.indexOf(10, at);
    const stop = lf < 0 ? buf.length : lf + 1;
    // a part kept for the next buffer is a copy (buf may be a read buffer that is reused)
    this.lineBuf.push(lf < 0 ? Buffer.from(buf.subarray(at, stop)) : buf.subarray(at, stop));
    this.lineLen += stop - at;
    if (this.lineLen > max) throw new ResponseError('chunk size line or trailer too long');
    if (lf < 0) return stop;
    const line = this.lineBuf.length === 1 ? this.lineBuf[0]! : Buffer.concat(this.lineBuf, this.lineLen);
    this.lineBuf = [];
    this.lineLen = 0;
    if (line.length < 2 || line[line.length - 2] !== 13) throw new ResponseError('bare LF');
    const body = line.subarray(0, line.length - 2);
    if (body.includes(13) || body.includes(10)) throw new ResponseError('bare CR');
    done(body);
    return stop;
  }

  private chunkSize(line: Buffer): void {
    let i = 0;
    let size = 0;
    for (; i < line.length; i++) {
      const d = hexVal(line[i]!);
      if (d < 0) break;
      size = size * 16 + d;
    }
    if (i === 0 || i > 13) throw new ResponseError('bad chunk size');
    if (i < line.length) {
      // chunk-ext: `;` then bytes a header value may hold (its grammar is not interpreted).
      if (line[i] !== 59 && line[i] !== 32 && line[i] !== 9) throw new ResponseError('bad chunk size');
      for (let j = i; j < line.length; j++)
        if (!valueByte(line[j]!)) throw new ResponseError('bad chunk extension');
    }
    if (size === 0) {
      this.state = State.Trailers;
      this.trailerBytes = 0;
      return;
    }
    this.remaining = size;
    this.state = State.ChunkData;
  }

  private trailerBytes = 0;

  private trailer(line: Buffer): void {
    if (line.length === 0) {
      this.state = State.Done;
      this.finish();
      return;
    }
    this.trailerBytes += line.length + 2;
    if (this.trailerBytes > this.opts.maxHeadSize) throw new ResponseError('trailers too large');
    // Validated, then dropped: trailers are not passed on.
    parseField(line, 0, line.length);
  }
}

function hexVal(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  if (c >= 65 && c <= 70) return c - 55;
  if (c >= 97 && c <= 102) return c - 87;
  return -1;
}

/** Splits a head on CRLF: [start, end) of each line; a CR or LF anywhere else is an error. */
function splitLines(b: Buffer): number[] {
  const out: number[] = [];
  let start = 0;
  for (let i = 0; i < b.length; i++) {
    const c = b[i]!;
    if (c === 13) {
      if (b[i + 1] !== 10) throw new ResponseError('bare CR in the response head');
      out.push(start, i);
      i++;
      start = i + 1;
    } else if (c === 10) throw new ResponseError('bare LF in the response head');
  }
  out.push(start, b.length);
  return out;
}

function parseStatusLine(b: Buffer, s: number, e: number): Pick<ResponseHead, 'minor' | 'status' | 'reason'> {
  // HTTP/1.x SP 3DIGIT [SP reason]
  const n = e - s;
  const ok =
    n >= 12 &&
    b.toString('latin1', s, s + 7) === 'HTTP/1.' &&
    (b[s + 7] === 48 || b[s + 7] === 49) &&
    b[s + 8] === 32 &&
    isDigit(b[s + 9]!) &&
    isDigit(b[s + 10]!) &&
    isDigit(b[s + 11]!) &&
    (n === 12 || b[s + 12] === 32);
  if (!ok)
    throw new ResponseError(
      `bad status line ${JSON.stringify(b.toString('latin1', s, Math.min(e, s + 64)))}`,
    );
  const status = (b[s + 9]! - 48) * 100 + (b[s + 10]! - 48) * 10 + (b[s + 11]! - 48);
  if (status < 100 || status > 599) throw new ResponseError(`status ${status} out of range`);
  for (let i = s + 13; i < e; i++) if (!valueByte(b[i]!)) throw new ResponseError('bad reason phrase');
  return {
    minor: b[s + 7] === 49 ? 1 : 0,
    status,
    reason: n > 13 ? b.toString('latin1', s + 13, e) : '',
  };
}

function isDigit(c: number): boolean {
  return c >= 48 && c <= 57;
}

/** field-name ":" OWS field-value OWS in b[start, end); no obs-fold, no space before the colon. */
function parseField(b: Buffer, start: number, end: number): [string, string] {
  if (end === start) throw new ResponseError('empty header line');
  if (b[start] === 32 || b[start] === 9) throw new ResponseError('obs-fold in the response head');
  let i = start;
  while (i < end && TOKEN[b[i]!] === 1) i++;
  if (i === start || i === end || b[i] !== 58) throw new ResponseError('bad header name');
  const name = b.toString('latin1', start, i).toLowerCase();
  let s = i + 1;
  let e = end;
  for (let j = s; j < e; j++) if (!valueByte(b[j]!)) throw new ResponseError(`bad byte in header ${name}`);
  while (s < e && (b[s] === 32 || b[s] === 9)) s++;
  while (e > s && (b[e - 1] === 32 || b[e - 1] === 9)) e--;
  return [name, b.toString('latin1', s, e)];
}

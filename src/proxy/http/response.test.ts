import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { type BodyFraming, ResponseError, ResponseParser } from './response.ts';

interface Got {
  heads: Array<{
    status: number;
    framing: BodyFraming;
    keepAlive: boolean;
    headers: Array<[string, string]>;
  }>;
  body: string;
  ends: number;
  error?: string;
  reusable: boolean;
}

/** Feeds `input` (in pieces of `split` bytes when given, to cross every boundary) after `method`. */
function run(method: string, input: string, opts: { split?: number; eof?: boolean } = {}): Got {
  const got: Got = { heads: [], body: '', ends: 0, reusable: false };
  const p = new ResponseParser(
    { maxHeadSize: 256, maxHeaders: 8 },
    {
      onHead: (h, framing, keepAlive) =>
        got.heads.push({ status: h.status, framing, keepAlive, headers: h.headers }),
      onBody: (c) => {
        got.body += c.toString('latin1');
      },
      onEnd: () => {
        got.ends++;
      },
    },
  );
  p.expect(method);
  const buf = Buffer.from(input, 'latin1');
  const step = opts.split ?? buf.length;
  try {
    for (let i = 0; i < buf.length; i += step) p.feed(buf.subarray(i, i + step));
    if (opts.eof === true) p.eof();
  } catch (e) {
    assert.ok(e instanceof ResponseError, String(e));
    got.error = e.message;
  }
  got.reusable = p.reusable;
  return got;
}

const ok = 'HTTP/1.1 200 OK\r\n';

interface Row {
  name: string;
  method?: string;
  input: string;
  eof?: boolean;
  status?: number;
  framing?: BodyFraming;
  body?: string;
  /** Complete and the connection reusable. */
  reusable?: boolean;
  /** An error matching this. */
  error?: RegExp;
}

const rows: Row[] = [
  // framing
  {
    name: 'Content-Length body',
    input: `${ok}Content-Length: 5\r\n\r\nhello`,
    status: 200,
    framing: 'length',
    body: 'hello',
    reusable: true,
  },
  {
    name: 'Content-Length 0',
    input: `${ok}Content-Length: 0\r\n\r\n`,
    framing: 'none',
    body: '',
    reusable: true,
  },
  {
    name: 'chunked body with extension and trailer',
    input: `${ok}Transfer-Encoding: chunked\r\n\r\n3;x=y\r\nabc\r\n2\r\nde\r\n0\r\nX-T: 1\r\n\r\n`,
    framing: 'chunked',
    body: 'abcde',
    reusable: true,
  },
  {
    name: 'chunked is case-insensitive',
    input: `${ok}Transfer-Encoding: Chunked\r\n\r\n1\r\na\r\n0\r\n\r\n`,
    body: 'a',
    reusable: true,
  },
  {
    name: 'close-delimited body ends at EOF, not reusable',
    input: `${ok}\r\nall of it`,
    eof: true,
    framing: 'close',
    body: 'all of it',
    reusable: false,
  },
  {
    name: 'HEAD: no body despite Content-Length',
    method: 'HEAD',
    input: `${ok}Content-Length: 10\r\n\r\n`,
    framing: 'none',
    body: '',
    reusable: true,
  },
  { name: '204 has no body', input: 'HTTP/1.1 204 No Content\r\n\r\n', framing: 'none', reusable: true },
  {
    name: '304 has no body despite Content-Length',
    input: 'HTTP/1.1 304 Not Modified\r\nContent-Length: 7\r\n\r\n',
    framing: 'none',
    reusable: true,
  },
  {
    name: '100 Continue then the final response',
    input: `HTTP/1.1 100 Continue\r\n\r\n${ok}Content-Length: 2\r\n\r\nok`,
    status: 200,
    body: 'ok',
    reusable: true,
  },
  {
    name: '103 Early Hints passed over',
    input: `HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n${ok}Content-Length: 0\r\n\r\n`,
    status: 200,
    reusable: true,
  },
  {
    name: 'Connection: close: complete, not reusable',
    input: `${ok}Connection: close\r\nContent-Length: 1\r\n\r\nx`,
    body: 'x',
    reusable: false,
  },
  {
    name: 'HTTP/1.0 not reusable',
    input: 'HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\nx',
    body: 'x',
    reusable: false,
  },
  {
    name: 'HTTP/1.0 with keep-alive reusable',
    input: 'HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 1\r\n\r\nx',
    body: 'x',
    reusable: true,
  },
  { name: 'status line without reason', input: 'HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n', reusable: true },
  {
    name: 'header value OWS trimmed, obs-text kept',
    input: `${ok}X-A: \t v\xe9 \t\r\nContent-Length: 0\r\n\r\n`,
    reusable: true,
  },
  // smuggling-shaped and malformed responses
  {
    name: 'Content-Length with Transfer-Encoding',
    input: `${ok}Content-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n`,
    error: /Content-Length with Transfer-Encoding/,
  },
  {
    name: 'two Content-Lengths, different',
    input: `${ok}Content-Length: 3\r\nContent-Length: 30\r\n\r\nabc`,
    error: /more than one Content-Length/,
  },
  {
    name: 'two Content-Lengths, same',
    input: `${ok}Content-Length: 3\r\nContent-Length: 3\r\n\r\nabc`,
    error: /more than one Content-Length/,
  },
  { name: 'Content-Length list', input: `${ok}Content-Length: 3, 3\r\n\r\nabc`, error: /bad Content-Length/ },
  { name: 'Content-Length signed', input: `${ok}Content-Length: +3\r\n\r\nabc`, error: /bad Content-Length/ },
  { name: 'Content-Length hex', input: `${ok}Content-Length: 0x3\r\n\r\nabc`, error: /bad Content-Length/ },
  {
    name: 'Transfer-Encoding not chunked',
    input: `${ok}Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n`,
    error: /Transfer-Encoding/,
  },
  {
    name: 'two Transfer-Encodings',
    input: `${ok}Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n`,
    error: /more than one Transfer-Encoding/,
  },
  {
    name: 'Transfer-Encoding in HTTP/1.0',
    input: 'HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n',
    error: /HTTP\/1\.0/,
  },
  {
    name: 'a second response after the first (bytes after the response)',
    input: `${ok}Content-Length: 2\r\n\r\nok${ok}Content-Length: 4\r\n\r\nevil`,
    error: /bytes after the response/,
  },
  {
    name: 'body longer than Content-Length',
    input: `${ok}Content-Length: 2\r\n\r\nokX`,
    error: /bytes after the response/,
  },
  { name: 'bare LF in the head', input: 'HTTP/1.1 200 OK\nContent-Length: 0\n\r\n\r\n', error: /bare LF/ },
  { name: 'bare LF, the head never ends', input: 'HTTP/1.1 200 OK\nContent-Length: 0\n\n', error: /bare LF/ },
  { name: 'bare CR in the head', input: `${ok}X-A: a\rb\r\nContent-Length: 0\r\n\r\n`, error: /bare CR/ },
  {
    name: 'obs-fold',
    input: `${ok}X-A: 1\r\n Transfer-Encoding: chunked\r\nContent-Length: 0\r\n\r\n`,
    error: /obs-fold/,
  },
  { name: 'space before colon', input: `${ok}Content-Length : 5\r\n\r\nhello`, error: /bad header name/ },
  { name: 'NUL in a value', input: `${ok}X-A: a\x00b\r\nContent-Length: 0\r\n\r\n`, error: /bad byte/ },
  {
    name: 'header line without colon',
    input: `${ok}Content-Length 5\r\n\r\nhello`,
    error: /bad header name/,
  },
  { name: 'not HTTP', input: 'SSH-2.0-OpenSSH\r\n\r\n', error: /bad status line/ },
  { name: 'HTTP/2 status line', input: 'HTTP/2 200\r\n\r\n', error: /bad status line/ },
  { name: 'two-digit status', input: 'HTTP/1.1 20 OK\r\n\r\n', error: /bad status line/ },
  { name: 'status out of range', input: 'HTTP/1.1 999 X\r\n\r\n', error: /out of range/ },
  { name: '101 never asked for', input: 'HTTP/1.1 101 Switching Protocols\r\n\r\n', error: /101/ },
  {
    name: 'head over the cap',
    input: `${ok}X-Big: ${'a'.repeat(300)}\r\n\r\n`,
    error: /head too large/,
  },
  {
    name: 'head over the cap without an end',
    input: `${ok}X-Big: ${'a'.repeat(300)}`,
    error: /head too large/,
  },
  {
    name: 'too many headers',
    input: `${ok}${'X-A: 1\r\n'.repeat(9)}\r\n`,
    error: /too many/,
  },
  {
    name: 'bad chunk size',
    input: `${ok}Transfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n`,
    error: /bad chunk size/,
  },
  {
    name: 'chunk size too large',
    input: `${ok}Transfer-Encoding: chunked\r\n\r\nffffffffffffffff\r\n`,
    error: /bad chunk size/,
  },
  {
    name: 'chunk data without CRLF',
    input: `${ok}Transfer-Encoding: chunked\r\n\r\n3\r\nabcX\r\n0\r\n\r\n`,
    error: /not followed by CRLF/,
  },
  {
    name: 'chunk size line with bare LF',
    input: `${ok}Transfer-Encoding: chunked\r\n\r\n3\nabc\r\n0\r\n\r\n`,
    error: /bare LF/,
  },
  {
    name: 'chunk extension with a control byte',
    input: `${ok}Transfer-Encoding: chunked\r\n\r\n3;\x01\r\nabc\r\n0\r\n\r\n`,
    error: /bad chunk extension/,
  },
  {
    name: 'bad trailer',
    input: `${ok}Transfer-Encoding: chunked\r\n\r\n0\r\nbad trailer\r\n\r\n`,
    error: /bad header name/,
  },
  {
    name: 'EOF inside a Content-Length body',
    input: `${ok}Content-Length: 5\r\n\r\nhel`,
    eof: true,
    error: /closed before the response was complete/,
  },
  {
    name: 'EOF inside a chunked body',
    input: `${ok}Transfer-Encoding: chunked\r\n\r\n5\r\nhel`,
    eof: true,
    error: /closed before the response was complete/,
  },
  { name: 'EOF inside the head', input: 'HTTP/1.1 200 OK\r\nX-', eof: true, error: /closed before/ },
];

describe('strict upstream response parser', () => {
  for (const r of rows) {
    for (const split of [undefined, 1, 7]) {
      test(`${r.name}${split === undefined ? '' : ` (in ${split}-byte pieces)`}`, () => {
        const eof = r.eof === undefined ? {} : { eof: r.eof };
        const got = run(r.method ?? 'GET', r.input, split === undefined ? eof : { ...eof, split });
        if (r.error !== undefined) {
          assert.match(got.error ?? '(no error)', r.error);
          return;
        }
        assert.equal(got.error, undefined);
        assert.equal(got.heads.length, 1, 'one final head (1xx passed over)');
        assert.equal(got.ends, 1, 'complete');
        if (r.status !== undefined) assert.equal(got.heads[0]!.status, r.status);
        if (r.framing !== undefined) assert.equal(got.heads[0]!.framing, r.framing);
        if (r.body !== undefined) assert.equal(got.body, r.body);
        if (r.reusable !== undefined) assert.equal(got.reusable, r.reusable);
      });
    }
  }

  test('header names lower-cased, values trimmed, repeats kept in order', () => {
    const got = run(
      'GET',
      `${ok}Set-Cookie: a=1\r\nX-A:  \tv \r\nset-cookie: b=2\r\nContent-Length: 0\r\n\r\n`,
    );
    assert.deepEqual(got.heads[0]!.headers, [
      ['set-cookie', 'a=1'],
      ['x-a', 'v'],
      ['set-cookie', 'b=2'],
      ['content-length', '0'],
    ]);
  });

  test('the next response is parsed after expect() again', () => {
    const got: number[] = [];
    const p = new ResponseParser(
      { maxHeadSize: 1024, maxHeaders: 10 },
      { onHead: (h) => got.push(h.status), onBody: () => {}, onEnd: () => {} },
    );
    p.expect('GET');
    p.feed(Buffer.from(`${ok}Content-Length: 0\r\n\r\n`));
    p.expect('GET');
    p.feed(Buffer.from('HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n'));
    assert.deepEqual(got, [200, 404]);
    assert.equal(p.reusable, true);
  });

  test('bytes while nothing was asked are an error', () => {
    const p = new ResponseParser(
      { maxHeadSize: 1024, maxHeaders: 10 },
      { onHead: () => {}, onBody: () => {}, onEnd: () => {} },
    );
    assert.throws(() => p.feed(Buffer.from(`${ok}Content-Length: 0\r\n\r\n`)), /bytes after the response/);
  });
});

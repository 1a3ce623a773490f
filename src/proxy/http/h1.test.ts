// The downstream HTTP/1.x driver (h1.ts): the parser check that keeps the proxy from starting
// without Node's strict llhttp, and what node:http's server did that h1.ts now does itself
// (queued pipelined bodies, HTTP/1.0 keep-alive, Connection: close, expectations, long heads,
// deep pipelines, framing to HTTP/1.0 clients), through the proxy on loopback.

import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, describe, test } from 'node:test';
import { checkParser, H1Server, loadHTTPParser } from './h1.ts';
import {
  ingress,
  parseResponses,
  rawExchange,
  rules,
  type Seen,
  startProxy,
  startUpstream,
  type TestProxy,
  type Upstream,
} from './test-support.ts';

const policy = rules({ method: 'GET|POST', path: '/public/.*' });
const get = (path: string, extra = '', version = '1.1'): string =>
  `GET ${path} HTTP/${version}\r\nHost: shop\r\n${extra}\r\n`;

/** A stand-in for `_http_common` whose parser accepts everything as one request. */
function lenientModule(): unknown {
  class P {
    static REQUEST = 1;
    static kOnMessageBegin = 0;
    static kOnHeaders = 1;
    static kOnHeadersComplete = 2;
    static kOnBody = 3;
    static kOnMessageComplete = 4;
    static kOnExecute = 5;
    static kLenientNone = 0;
    [k: number]: unknown;
    initialize() {}
    close() {}
    execute(d: Buffer) {
      (this[2] as () => void)();
      return d.length;
    }
  }
  return { HTTPParser: P, methods: ['GET'] };
}

describe("h1.ts: Node's parser, checked at start-up", () => {
  const cases: Array<{ name: string; load: () => unknown; ok: boolean; reason?: RegExp }> = [
    { name: "this Node's _http_common passes", load: undefined as unknown as () => unknown, ok: true },
    {
      name: 'a missing module: not ok',
      load: () => {
        throw new Error('Cannot find module');
      },
      ok: false,
      reason: /cannot be loaded/,
    },
    {
      name: 'an unknown shape: not ok',
      load: () => ({ HTTPParser: {} }),
      ok: false,
      reason: /unknown shape/,
    },
    { name: 'a lenient parser: not ok', load: lenientModule, ok: false, reason: /not strict/ },
  ];
  for (const c of cases) {
    test(c.name, () => {
      const r = c.load === undefined ? checkParser() : checkParser(c.load);
      assert.equal(r.ok, c.ok, r.ok ? '' : r.reason);
      if (!r.ok && c.reason !== undefined) assert.match(r.reason, c.reason);
    });
  }

  test('without the parser the HTTP/1 side refuses to start', () => {
    const opts = {
      maxHeaderSize: 16384,
      headersTimeoutMs: 1000,
      requestTimeoutMs: 1000,
      keepAliveTimeoutMs: 1000,
      checkIntervalMs: 1000,
    };
    const handlers = { onRequest: () => {}, onClientError: () => {}, onRefusal: () => {} };
    assert.throws(
      () => new H1Server(opts, handlers, checkParser(lenientModule)),
      /cannot start: .*not strict/,
    );
    assert.ok(loadHTTPParser().ok);
    assert.doesNotThrow(() => new H1Server(opts, handlers).close());
  });
});

interface Row {
  name: string;
  send: string[];
  statuses: number[];
  upstream: number;
  closed?: boolean;
  check?: (seen: Seen[], raw: string) => void;
}

const many = Array.from({ length: 40 }, (_, i) => `X-H${i}: v${i}\r\n`).join('');
const deep = Array.from({ length: 100 }, (_, i) => get(`/public/${i}`)).join('');

const rows: Row[] = [
  {
    name: 'a pipelined request behind a body waits its turn, its own body intact',
    send: [
      'POST /public/a HTTP/1.1\r\nHost: shop\r\nContent-Length: 3\r\n\r\nabc' +
        'POST /public/b HTTP/1.1\r\nHost: shop\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nde\r\n0\r\n\r\n' +
        get('/public/c'),
    ],
    statuses: [200, 200, 200],
    upstream: 3,
    check: (s) =>
      assert.deepEqual(
        s.map((x) => `${x.url}=${x.body}`),
        ['/public/a=abc', '/public/b=de', '/public/c='],
      ),
  },
  {
    name: 'HTTP/1.0 with Connection: keep-alive: two answers on one connection',
    send: [
      get('/public/1', 'Connection: keep-alive\r\n', '1.0') +
        get('/public/2', 'Connection: keep-alive\r\n', '1.0'),
    ],
    statuses: [200, 200],
    upstream: 2,
    check: (_s, raw) => {
      for (const r of parseResponses(raw)) assert.equal(r.headers.connection, 'keep-alive');
    },
  },
  {
    name: 'Connection: close: answered, closed, nothing after it parsed or forwarded',
    send: [get('/public/1', 'Connection: close\r\n') + get('/public/2')],
    statuses: [200],
    upstream: 1,
    closed: true,
    check: (_s, raw) => assert.equal(parseResponses(raw)[0]!.headers.connection, 'close'),
  },
  {
    name: 'an expectation other than 100-continue: 417, never forwarded',
    send: ['POST /public/a HTTP/1.1\r\nHost: shop\r\nExpect: 200-ok\r\nContent-Length: 1\r\n\r\nx'],
    statuses: [417],
    upstream: 0,
    closed: true,
  },
  {
    name: 'more than 32 header lines (the parser hands them over in pieces): all forwarded',
    send: [get('/public/many', many)],
    statuses: [200],
    upstream: 1,
    check: (s) => {
      assert.equal(s[0]!.headers['x-h0'], 'v0');
      assert.equal(s[0]!.headers['x-h39'], 'v39');
      assert.equal(s[0]!.url, '/public/many');
    },
  },
  {
    name: 'a pipeline deeper than the queue cap: every request answered, in order',
    send: [deep],
    statuses: Array.from({ length: 100 }, () => 200),
    upstream: 100,
    check: (s) =>
      assert.deepEqual(
        s.map((x) => x.url),
        Array.from({ length: 100 }, (_, i) => `/public/${i}`),
      ),
  },
  {
    name: "upstream's own Connection and Keep-Alive headers are not passed on",
    send: [get('/public/ka')],
    statuses: [200],
    upstream: 1,
    check: (_s, raw) => {
      assert.doesNotMatch(raw, /keep-alive/i);
      assert.equal((raw.match(/^connection:/gim) ?? []).length, 0);
    },
  },
];

describe('h1.ts through the proxy', () => {
  let up: Upstream;
  let p: TestProxy;
  before(async () => {
    up = await startUpstream((req, res, body) => {
      const out = JSON.stringify({ url: req.url, body });
      // node:http adds Connection: keep-alive and Keep-Alive itself; the proxy drops them.
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(out) });
      res.end(out);
    });
    p = await startProxy(up.address, [ingress(policy)]);
  });
  after(async () => {
    await p.close();
    await up.close();
  });

  for (const r of rows) {
    test(r.name, async () => {
      const seenBefore = up.seen.length;
      const opts: Parameters<typeof rawExchange>[2] = { timeoutMs: 3000 };
      if (r.closed !== true) opts.expectResponses = r.statuses.length;
      const res = await rawExchange(p.address, r.send, opts);
      assert.deepEqual(
        parseResponses(res.data).map((x) => x.status),
        r.statuses,
        res.data.slice(0, 400),
      );
      if (r.closed === true) assert.equal(res.closed, true, 'the proxy closes the connection');
      await new Promise((d) => setTimeout(d, 30));
      const seen = up.seen.slice(seenBefore);
      assert.equal(seen.length, r.upstream, JSON.stringify(seen.map((s) => `${s.method} ${s.url}`)));
      r.check?.(seen, res.data);
    });
  }

  test("a response's head reaches the client before a body that comes later", async () => {
    // the head waits for the first body bytes only until the end of its tick (holdHead)
    const up2 = await startUpstream((_req, res) => {
      res.writeHead(200, { 'content-length': '4' });
      res.flushHeaders();
      setTimeout(() => res.end('late'), 400);
    });
    const p2 = await startProxy(up2.address, [ingress(policy)]);
    const sock = net.connect(p2.address.port, p2.address.address);
    try {
      const t0 = performance.now();
      let data = '';
      let headAt = Number.NaN;
      const done = new Promise<void>((resolve) => {
        sock.on('data', (d: Buffer) => {
          data += d.toString('latin1');
          if (Number.isNaN(headAt) && data.includes('\r\n\r\n')) headAt = performance.now() - t0;
          if (data.endsWith('late')) resolve();
        });
      });
      sock.write(get('/public/slow-body'));
      await done;
      const total = performance.now() - t0;
      assert.ok(headAt < 300, `the head came after ${headAt.toFixed(0)} ms, with the body`);
      assert.ok(total >= 390, `the body came after ${total.toFixed(0)} ms`);
      const [res] = parseResponses(data);
      assert.equal(res?.status, 200);
      assert.equal(res?.body, 'late');
    } finally {
      sock.destroy();
      await p2.close();
      await up2.close();
    }
  });

  test('a body without a length goes to an HTTP/1.0 client unchunked, to the close', async () => {
    const up2 = await startUpstream((_req, res) => {
      res.write('part1-');
      setTimeout(() => res.end('part2'), 20);
    });
    const p2 = await startProxy(up2.address, [ingress(policy)]);
    try {
      const r = await rawExchange(p2.address, [get('/public/s', '', '1.0')], { timeoutMs: 3000 });
      assert.equal(r.closed, true);
      const [res] = parseResponses(r.data);
      assert.equal(res?.status, 200);
      assert.equal(res?.headers['transfer-encoding'], undefined);
      assert.equal(res?.headers.connection, 'close');
      assert.equal(res?.body, 'part1-part2');
    } finally {
      await p2.close();
      await up2.close();
    }
  });
});

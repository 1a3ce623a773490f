// The HTTP/1.x proxy on loopback: a real upstream node:http server that counts what reaches it,
// the proxy with a fixed redirect context pointing at it, and raw sockets for the requests.

import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { secretsFromDir } from './judge.ts';
import { HTTPProxy } from './proxy.ts';
import {
  httpOf,
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

const policy = rules(
  { method: 'GET', path: '/public/.*' },
  { method: 'POST', path: '/api/items', headers: ['X-Env: prod'] },
  { method: 'GET', path: '/admin', host: 'admin\\.shop' },
  {
    method: 'GET',
    path: '/hm',
    headerMatches: [
      { name: 'x-tenant', value: 'a', mismatch: 'REPLACE' },
      { name: 'x-drop', value: 'never', mismatch: 'DELETE' },
      { name: 'x-log', value: 'v', mismatch: 'LOG' },
      { name: 'x-add', value: '1', mismatch: 'ADD' },
    ],
  },
  { method: 'GET', path: '/secret', headerMatches: [{ name: 'x-token', secret: { name: 'token' } }] },
  {
    method: 'GET',
    path: '/missing-secret',
    headerMatches: [{ name: 'x-token', secret: { name: 'absent' } }],
  },
  { method: 'PUT|POST', path: '/upload' },
  { method: 'OPTIONS|HEAD' },
);

const get = (path: string, host = 'shop', extra = ''): string =>
  `GET ${path} HTTP/1.1\r\nHost: ${host}\r\n${extra}\r\n`;

interface Row {
  name: string;
  send: Array<string | Buffer>;
  /** Status codes, in order. */
  statuses: number[];
  /** Requests that must reach upstream. */
  upstream: number;
  /** The proxy closes the connection. */
  closed?: boolean;
  gapMs?: number;
  check?: (seen: Seen[], raw: string) => void;
}

const rows: Row[] = [
  // method, path, host, headers
  { name: 'GET allowed', send: [get('/public/a')], statuses: [200], upstream: 1 },
  {
    name: 'DELETE denied',
    send: ['DELETE /public/a HTTP/1.1\r\nHost: shop\r\n\r\n'],
    statuses: [403],
    upstream: 0,
  },
  { name: 'path denied', send: [get('/private')], statuses: [403], upstream: 0 },
  { name: 'path with query matches whole value', send: [get('/public/a?x=1')], statuses: [200], upstream: 1 },
  { name: 'host allowed', send: [get('/admin', 'admin.shop')], statuses: [200], upstream: 1 },
  { name: 'host denied', send: [get('/admin', 'evil')], statuses: [403], upstream: 0 },
  {
    name: 'header allowed',
    send: ['POST /api/items HTTP/1.1\r\nHost: shop\r\nX-Env: prod\r\nContent-Length: 2\r\n\r\nhi'],
    statuses: [200],
    upstream: 1,
    check: (s) => assert.equal(s[0]!.body, 'hi'),
  },
  {
    name: 'header wrong value denied',
    send: ['POST /api/items HTTP/1.1\r\nHost: shop\r\nX-Env: dev\r\nContent-Length: 2\r\n\r\nhi'],
    statuses: [403],
    upstream: 0,
  },
  {
    name: 'denied body is drained and the connection stays usable',
    send: ['POST /api/items HTTP/1.1\r\nHost: shop\r\nContent-Length: 5\r\n\r\nGET /', get('/public/after')],
    statuses: [403, 200],
    upstream: 1,
    check: (s) => assert.equal(s[0]!.url, '/public/after'),
  },
  {
    name: 'headerMatches actions applied upstream',
    send: [get('/hm', 'shop', 'X-Tenant: b\r\nX-Drop: yes\r\nX-Log: other\r\n')],
    statuses: [200],
    upstream: 1,
    check: (s) => {
      const h = s[0]!.headers;
      assert.equal(h['x-tenant'], 'a');
      assert.equal(h['x-drop'], undefined);
      assert.equal(h['x-log'], 'other');
      assert.equal(h['x-add'], '1');
    },
  },
  {
    name: 'secret header matches',
    send: [get('/secret', 'shop', 'X-Token: s3cret\r\n')],
    statuses: [200],
    upstream: 1,
  },
  {
    name: 'secret header wrong',
    send: [get('/secret', 'shop', 'X-Token: guess\r\n')],
    statuses: [403],
    upstream: 0,
  },
  {
    name: 'missing secret never matches',
    send: [get('/missing-secret', 'shop', 'X-Token: \r\n')],
    statuses: [403],
    upstream: 0,
  },
  // keep-alive and pipelining
  {
    name: 'pipelined requests judged one by one, answered in order',
    send: [
      get('/public/1') + get('/private') + get('/public/2') + get('/public/../admin') + get('/public/3'),
    ],
    statuses: [200, 403, 200, 403, 200],
    upstream: 3,
    check: (s) =>
      assert.deepEqual(
        s.map((x) => x.url),
        ['/public/1', '/public/2', '/public/3'],
      ),
  },
  {
    name: 'chunked body forwarded chunked',
    send: [
      'PUT /upload HTTP/1.1\r\nHost: shop\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n',
    ],
    statuses: [200],
    upstream: 1,
    check: (s) => {
      assert.equal(s[0]!.body, 'abcde');
      assert.equal(s[0]!.headers['transfer-encoding'], 'chunked');
    },
  },
  {
    name: 'Expect: 100-continue allowed: 100 from the proxy, then the body',
    send: ['PUT /upload HTTP/1.1\r\nHost: shop\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n', 'body'],
    gapMs: 150,
    statuses: [200],
    upstream: 1,
    check: (s, raw) => {
      assert.match(raw, /^HTTP\/1\.1 100 Continue/);
      assert.equal(s[0]!.body, 'body');
      assert.equal(s[0]!.headers.expect, undefined);
    },
  },
  {
    name: 'Expect: 100-continue denied: 403 without 100, connection closed',
    send: ['PUT /nope HTTP/1.1\r\nHost: shop\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n', 'body'],
    gapMs: 150,
    statuses: [403],
    upstream: 0,
    closed: true,
    check: (_s, raw) => assert.doesNotMatch(raw, / 100 Continue/),
  },
  {
    name: 'HTTP/1.0 without Host',
    send: ['GET /public/old HTTP/1.0\r\n\r\n'],
    statuses: [200],
    upstream: 1,
    closed: true,
  },
  {
    name: 'absolute-form: the authority replaces Host',
    send: ['GET http://admin.shop/admin HTTP/1.1\r\nHost: evil\r\n\r\n'],
    statuses: [200],
    upstream: 1,
    check: (s) => {
      assert.equal(s[0]!.url, '/admin');
      assert.equal(s[0]!.headers.host, 'admin.shop');
    },
  },
  {
    name: 'absolute-form: a judged Host cannot be smuggled in the header',
    send: ['GET http://evil/admin HTTP/1.1\r\nHost: admin.shop\r\n\r\n'],
    statuses: [403],
    upstream: 0,
  },
  { name: 'OPTIONS *', send: ['OPTIONS * HTTP/1.1\r\nHost: shop\r\n\r\n'], statuses: [200], upstream: 1 },
  // path normalisation bypass attempts: judged (and forwarded) on the normalised path
  { name: 'bypass /public/../admin', send: [get('/public/../admin')], statuses: [403], upstream: 0 },
  {
    name: 'bypass //admin (host rule)',
    send: [get('//admin', 'admin.shop')],
    statuses: [200],
    upstream: 1,
    check: (s) => assert.equal(s[0]!.url, '/admin'),
  },
  { name: 'bypass //private', send: [get('//private')], statuses: [403], upstream: 0 },
  { name: 'bypass %2e%2e', send: [get('/public/%2e%2e/private')], statuses: [403], upstream: 0 },
  { name: 'bypass %2E%2E mixed', send: [get('/public/.%2E/private')], statuses: [403], upstream: 0 },
  { name: 'bypass backslash', send: [get('/public\\..\\private')], statuses: [403], upstream: 0 },
  {
    name: 'escaped slash %2F: 307 to the normalised path, not forwarded',
    send: [get('/public%2F..%2Fprivate')],
    statuses: [307],
    upstream: 0,
    check: (_s, raw) => assert.equal(parseResponses(raw)[0]!.headers.location, '/private'),
  },
  {
    name: 'forwarded path is the normalised one',
    send: [get('/public/./x/../%79')],
    statuses: [200],
    upstream: 1,
    check: (s) => assert.equal(s[0]!.url, '/public/y'),
  },
  {
    name: 'bad percent-encoding: 400',
    send: [get('/public/%zz')],
    statuses: [400],
    upstream: 0,
    closed: true,
  },
  // smuggling attempts: llhttp's strict parser, never a request upstream
  {
    name: 'smuggling: Content-Length with Transfer-Encoding',
    send: [
      'POST /upload HTTP/1.1\r\nHost: shop\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n' +
        get('/admin', 'admin.shop'),
    ],
    statuses: [400],
    upstream: 0,
    closed: true,
  },
  {
    name: 'smuggling: two Content-Lengths',
    send: [
      'POST /upload HTTP/1.1\r\nHost: shop\r\nContent-Length: 3\r\nContent-Length: 30\r\n\r\nabc' +
        get('/public/x'),
    ],
    statuses: [400],
    upstream: 0,
    closed: true,
  },
  {
    name: 'smuggling: obs-fold',
    send: ['GET /public/a HTTP/1.1\r\nHost: shop\r\nX-A: 1\r\n Transfer-Encoding: chunked\r\n\r\n'],
    statuses: [400],
    upstream: 0,
    closed: true,
  },
  {
    name: 'smuggling: bare LF line ends',
    send: ['GET /public/a HTTP/1.1\nHost: shop\n\n'],
    statuses: [400],
    upstream: 0,
    closed: true,
  },
  {
    name: 'smuggling: NUL in a header value',
    send: [Buffer.from('GET /public/a HTTP/1.1\r\nHost: shop\r\nX-A: a\x00b\r\n\r\n', 'latin1')],
    statuses: [400],
    upstream: 0,
    closed: true,
  },
  {
    name: 'smuggling: space in a header name',
    send: ['GET /public/a HTTP/1.1\r\nHost: shop\r\nTransfer-Encoding : chunked\r\n\r\n'],
    statuses: [400],
    upstream: 0,
    closed: true,
  },
  {
    name: 'smuggling: Transfer-Encoding not ending in chunked',
    send: ['POST /upload HTTP/1.1\r\nHost: shop\r\nTransfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n'],
    statuses: [400],
    upstream: 0,
    closed: true,
  },
  {
    name: 'smuggling: bad chunk size',
    send: ['PUT /upload HTTP/1.1\r\nHost: shop\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n'],
    // The head was judged and forwarded; the broken body never completes a request upstream.
    statuses: [400],
    upstream: 0,
    closed: true,
  },
  {
    name: 'two Host headers: 400',
    send: ['GET /admin HTTP/1.1\r\nHost: admin.shop\r\nHost: evil\r\n\r\n'],
    statuses: [400],
    upstream: 0,
    closed: true,
  },
  {
    name: 'Upgrade is not passed on (hop-by-hop): a plain request upstream',
    send: [get('/public/ws', 'shop', 'Connection: Upgrade\r\nUpgrade: websocket\r\n')],
    statuses: [200],
    upstream: 1,
    check: (s) => {
      assert.equal(s[0]!.headers.upgrade, undefined);
    },
  },
  {
    name: 'HTTP/1.1 without Host: 400',
    send: ['GET /public/a HTTP/1.1\r\n\r\n'],
    statuses: [400],
    upstream: 0,
    closed: true,
  },
  {
    name: 'oversized head: 431',
    send: [get('/public/a', 'shop', `X-Big: ${'a'.repeat(20_000)}\r\n`)],
    statuses: [431],
    upstream: 0,
    closed: true,
  },
  {
    name: 'CONNECT: closed',
    send: ['CONNECT admin.shop:443 HTTP/1.1\r\nHost: admin.shop:443\r\n\r\n'],
    statuses: [],
    upstream: 0,
    closed: true,
  },
];

describe('HTTP/1.x proxy on loopback', () => {
  let up: Upstream;
  let p: TestProxy;
  let secretDir: string;
  let upstreamConnections = 0;
  before(async () => {
    secretDir = mkdtempSync(join(tmpdir(), 'seawall-proxy-secrets-'));
    mkdirSync(join(secretDir, 'default'));
    writeFileSync(join(secretDir, 'default', 'token'), 's3cret');
    up = await startUpstream();
    up.server.on('connection', () => upstreamConnections++);
    p = await startProxy(up.address, [ingress(policy)], { secrets: secretsFromDir(secretDir) });
  });
  after(async () => {
    await p.close();
    await up.close();
    rmSync(secretDir, { recursive: true, force: true });
  });

  for (const r of rows) {
    test(r.name, async () => {
      const seenBefore = up.seen.length;
      const opts: Parameters<typeof rawExchange>[2] = { timeoutMs: 1500 };
      if (r.statuses.length > 0 && r.closed !== true) opts.expectResponses = r.statuses.length;
      if (r.gapMs !== undefined) opts.gapMs = r.gapMs;
      const res = await rawExchange(p.address, r.send, opts);
      const got = parseResponses(res.data);
      assert.deepEqual(
        got.map((x) => x.status),
        r.statuses,
        res.data.slice(0, 400),
      );
      for (const x of got) if (x.status === 403) assert.equal(x.body, 'Access denied\r\n');
      if (r.closed === true) assert.equal(res.closed, true, 'the proxy closes the connection');
      // Give a wrongly forwarded request time to arrive before counting.
      await new Promise((d) => setTimeout(d, 30));
      const seen = up.seen.slice(seenBefore);
      assert.equal(seen.length, r.upstream, JSON.stringify(seen.map((s) => `${s.method} ${s.url}`)));
      r.check?.(seen, res.data);
    });
  }

  test('upstream connections are reused (keep-alive agent per original destination)', async () => {
    const before = upstreamConnections;
    for (let i = 0; i < 5; i++) {
      const r = await rawExchange(p.address, [get(`/public/reuse${i}`)], { expectResponses: 1 });
      assert.deepEqual(
        parseResponses(r.data).map((x) => x.status),
        [200],
      );
    }
    assert.ok(upstreamConnections - before <= 1, `${upstreamConnections - before} new upstream connections`);
  });

  test('records: request and response for an allowed request, DROPPED and 403 for a denied one', async () => {
    p.flows.length = 0;
    await rawExchange(p.address, [get('/public/rec') + get('/private', 'shop', 'X-Token: s3cret\r\n')], {
      expectResponses: 2,
    });
    // Pipelined requests are judged as they arrive, so records of the two may interleave.
    const kinds = (url: string) =>
      p.flows
        .filter((f) => httpOf(f).url === url)
        .map((f) => `${f.l7?.type} ${f.verdict} ${httpOf(f).code ?? '-'}`);
    assert.deepEqual(kinds('http://shop/public/rec'), ['REQUEST FORWARDED -', 'RESPONSE FORWARDED 200']);
    assert.deepEqual(kinds('http://shop/private'), ['REQUEST DROPPED -', 'RESPONSE FORWARDED 403']);
    const req = p.flows.find((f) => f.l7?.type === 'REQUEST' && f.verdict === 'FORWARDED');
    const res = p.flows.find((f) => f.l7?.type === 'RESPONSE' && f.l7.http?.code === 200);
    const dropped = p.flows.find((f) => f.verdict === 'DROPPED');
    assert.equal(req!.Type, 'L7');
    assert.equal(req!.event_type?.type, 129);
    assert.equal(req!.is_reply, false);
    assert.equal(res!.is_reply, true);
    assert.ok(Number(res!.l7?.latency_ns) > 0);
    assert.equal(httpOf(req!).url, 'http://shop/public/rec');
    assert.equal(req!.ingress_allowed_by?.[0]?.name, 'backend-http');
    assert.equal(dropped!.ingress_allowed_by, undefined);
    assert.match(dropped!.Summary ?? '', /no HTTP rule matched/);
  });

  test('records: secret-compared header values are redacted, LOG is marked', async () => {
    p.flows.length = 0;
    await rawExchange(
      p.address,
      [get('/secret', 'shop', 'X-Token: s3cret\r\n') + get('/hm', 'shop', 'X-Log: no\r\n')],
      {
        expectResponses: 2,
      },
    );
    const h = httpOf(p.flows[0]!);
    assert.equal(h.headers?.find((x) => x.key === 'x-token')?.value, '[redacted]');
    assert.ok(!JSON.stringify(p.flows).includes('s3cret'));
    const hm = p.flows.find(
      (f) => f.l7?.type === 'REQUEST' && (f.l7.http as { url: string }).url === 'http://shop/hm',
    );
    assert.match(hm?.Summary ?? '', /header mismatch logged: x-log/);
  });

  test('a policy change applies to the next request on a kept-alive connection', async () => {
    const sock = net.connect(p.address.port, p.address.address);
    let data = '';
    sock.on('data', (d) => {
      data += d.toString('latin1');
    });
    await new Promise((r) => sock.once('connect', r));
    const waitFor = async (n: number) => {
      const t0 = Date.now();
      while (parseResponses(data).length < n && Date.now() - t0 < 2000)
        await new Promise((r) => setTimeout(r, 10));
    };
    try {
      sock.write(get('/public/change'));
      await waitFor(1);
      p.sets.current = [ingress(rules({ method: 'GET', path: '/other' }))];
      sock.write(get('/public/change'));
      await waitFor(2);
      p.sets.current = [ingress(policy)];
      sock.write(get('/public/change'));
      await waitFor(3);
      assert.deepEqual(
        parseResponses(data).map((x) => x.status),
        [200, 403, 200],
      );
    } finally {
      p.sets.current = [ingress(policy)];
      sock.destroy();
    }
  });

  test('a policy change while requests flow: no request judged by the old policy after it', async () => {
    const allowAll = [ingress(policy)];
    const denyPublic = [ingress(rules({ method: 'GET', path: '/other' }))];
    p.sets.current = allowAll;
    p.flows.length = 0;
    let swappedAt = -1;
    let stop = false;
    // Four keep-alive clients, each sending its next request as soon as the last is answered.
    const client = async () => {
      const sock = net.connect(p.address.port, p.address.address);
      await new Promise((r) => sock.once('connect', r));
      let data = '';
      sock.on('data', (d) => {
        data += d.toString('latin1');
      });
      let n = 0;
      while (!stop) {
        sock.write(get(`/public/flow${n}`));
        n++;
        const t0 = Date.now();
        while (parseResponses(data).length < n && Date.now() - t0 < 2000)
          await new Promise((r) => setImmediate(r));
      }
      sock.destroy();
    };
    const clients = Array.from({ length: 4 }, client);
    await new Promise((r) => setTimeout(r, 150));
    swappedAt = p.flows.length;
    p.sets.current = denyPublic;
    await new Promise((r) => setTimeout(r, 150));
    stop = true;
    await Promise.all(clients);
    p.sets.current = allowAll;
    const requests = (from: number, to?: number) =>
      p.flows.slice(from, to).filter((f) => f.l7?.type === 'REQUEST');
    assert.ok(
      requests(0, swappedAt).some((f) => f.verdict === 'FORWARDED'),
      'requests flowed before the change',
    );
    const afterChange = requests(swappedAt);
    assert.ok(afterChange.length > 0, 'requests flowed after the change');
    assert.deepEqual(
      afterChange.filter((f) => f.verdict === 'FORWARDED').map((f) => httpOf(f).url),
      [],
      'forwarded after the change',
    );
  });

  test('a rule-set lookup that throws is a 403, never a pass', async () => {
    const saved = p.sets.current;
    Object.defineProperty(p.sets, 'current', {
      configurable: true,
      get() {
        throw new Error('engine down');
      },
    });
    try {
      const r = await rawExchange(p.address, [get('/public/a')], { expectResponses: 1 });
      assert.deepEqual(
        parseResponses(r.data).map((x) => x.status),
        [403],
      );
    } finally {
      Object.defineProperty(p.sets, 'current', { configurable: true, writable: true, value: saved });
    }
  });
});

describe('HTTP/1.x proxy fails closed', () => {
  const closesWithoutForwarding = async (proxy: HTTPProxy, up: Upstream) => {
    const addr = await proxy.listen(0, '127.0.0.1');
    try {
      const r = await rawExchange(addr, [get('/public/a')], { timeoutMs: 1500 });
      assert.equal(r.data, '', 'nothing is answered');
      assert.equal(r.closed, true, 'the connection is closed');
      assert.equal(up.seen.length, 0, 'nothing reached upstream');
    } finally {
      await proxy.close();
    }
  };
  const cases: Array<{ name: string; make: (up: Upstream, refused: string[]) => HTTPProxy; reason: RegExp }> =
    [
      {
        name: 'no redirect context (unknown connection)',
        make: (up, refused) =>
          new HTTPProxy({
            lookup: () => undefined,
            originalDst: () => up.address,
            onRefused: (r) => refused.push(r),
          }),
        reason: /no redirect context/,
      },
      {
        name: 'the lookup throws',
        make: (up, refused) =>
          new HTTPProxy({
            lookup: () => {
              throw new Error('ipcache unavailable');
            },
            originalDst: () => up.address,
            onRefused: (r) => refused.push(r),
          }),
        reason: /redirect lookup failed: ipcache unavailable/,
      },
      {
        name: 'the lookup rejects',
        make: (up, refused) =>
          new HTTPProxy({
            lookup: () => Promise.reject(new Error('later')),
            originalDst: () => up.address,
            onRefused: (r) => refused.push(r),
          }),
        reason: /redirect lookup failed: later/,
      },
      {
        name: 'no original destination',
        make: (_up, refused) =>
          new HTTPProxy({
            lookup: () => undefined,
            originalDst: () => {
              throw new Error('no original destination: ENOENT');
            },
            onRefused: (r) => refused.push(r),
          }),
        reason: /no original destination/,
      },
      {
        name: 'the SO_ORIGINAL_DST addon is missing',
        make: (_up, refused) =>
          new HTTPProxy({
            lookup: () => undefined,
            originalDstAddon: '/nonexistent/seawall_origdst.node',
            onRefused: (r) => refused.push(r),
          }),
        reason: /addon is not built|Linux only/,
      },
      {
        name: 'the real addon on a connection nothing redirected (no conntrack NAT entry)',
        make: (_up, refused) => new HTTPProxy({ lookup: () => undefined, onRefused: (r) => refused.push(r) }),
        reason: /no original destination|addon is not built|Linux only/,
      },
    ];
  for (const c of cases) {
    test(c.name, async () => {
      const up = await startUpstream();
      const refused: string[] = [];
      try {
        await closesWithoutForwarding(c.make(up, refused), up);
        assert.match(refused.join('\n'), c.reason);
      } finally {
        await up.close();
      }
    });
  }

  test('slow client: headers not complete before the timeout get 408 and a close', async () => {
    const up = await startUpstream();
    const p = await startProxy(up.address, [ingress(policy)], {
      headersTimeoutMs: 300,
      timeoutCheckIntervalMs: 100,
    });
    try {
      const t0 = Date.now();
      const r = await rawExchange(p.address, ['GET /public/a HTTP/1.1\r\n', 'Host: shop\r\n'], {
        timeoutMs: 5000,
        gapMs: 50,
      });
      assert.equal(r.closed, true);
      assert.ok(Date.now() - t0 < 4000);
      assert.deepEqual(
        parseResponses(r.data).map((x) => x.status),
        [408],
      );
      assert.equal(up.seen.length, 0);
    } finally {
      await p.close();
      await up.close();
    }
  });

  test('silent client: closed after the headers timeout', async () => {
    const up = await startUpstream();
    const p = await startProxy(up.address, [ingress(policy)], { headersTimeoutMs: 300 });
    try {
      const r = await rawExchange(p.address, [], { timeoutMs: 5000 });
      assert.equal(r.closed, true);
    } finally {
      await p.close();
      await up.close();
    }
  });

  test('upstream refuses connections: 503 after the retries', async () => {
    const dead = net.createServer();
    await new Promise<void>((r) => dead.listen(0, '127.0.0.1', () => r()));
    const port = (dead.address() as net.AddressInfo).port;
    await new Promise<void>((r) => dead.close(() => r()));
    const p = await startProxy({ address: '127.0.0.1', port }, [ingress(policy)]);
    try {
      const r = await rawExchange(p.address, [get('/public/a')], { timeoutMs: 3000 });
      assert.deepEqual(
        parseResponses(r.data).map((x) => x.status),
        [503],
      );
    } finally {
      await p.close();
    }
  });

  test('upstream slower than the request timeout: 504', async () => {
    const up = await startUpstream((_req, res) => setTimeout(() => res.end('late'), 1500));
    const p = await startProxy(up.address, [ingress(policy)], { upstreamTimeoutMs: 200 });
    try {
      const r = await rawExchange(p.address, [get('/public/slow')], { timeoutMs: 3000 });
      assert.deepEqual(
        parseResponses(r.data).map((x) => x.status),
        [504],
      );
    } finally {
      await p.close();
      await up.close();
    }
  });

  test('the response streams back chunked when upstream sends no length', async () => {
    const up = await startUpstream((_req, res) => {
      res.write('part1-');
      setTimeout(() => res.end('part2'), 50);
    });
    const p = await startProxy(up.address, [ingress(policy)]);
    try {
      const r = await rawExchange(p.address, [get('/public/stream')], {
        expectResponses: 1,
        timeoutMs: 3000,
      });
      const [res] = parseResponses(r.data);
      assert.equal(res?.body, 'part1-part2');
      assert.equal(res?.headers['transfer-encoding'], 'chunked');
    } finally {
      await p.close();
      await up.close();
    }
  });

  test('HEAD is answered without a body', async () => {
    const up = await startUpstream((req, res) => {
      res.writeHead(200, { 'content-length': '10' });
      res.end(req.method === 'HEAD' ? undefined : '0123456789');
    });
    const p = await startProxy(up.address, [ingress(policy)]);
    try {
      const r = await rawExchange(
        p.address,
        ['HEAD /x HTTP/1.1\r\nHost: shop\r\n\r\n' + get('/public/next')],
        {
          timeoutMs: 1500,
        },
      );
      assert.match(r.data, /^HTTP\/1\.1 200/);
      assert.equal((r.data.match(/HTTP\/1\.1 200/g) ?? []).length, 2);
    } finally {
      await p.close();
      await up.close();
    }
  });
});

// The proxy's upstream side (upstream.ts, response.ts) end to end: a raw TCP upstream sends
// canned responses, well-formed and smuggling-shaped, and the client sees what the proxy made of
// them. A bad response is a 502 (or a cut connection once the head was passed on), and the
// upstream connection that carried it is never used again.

import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import net from 'node:net';
import { after, before, describe, test } from 'node:test';
import type { HostPort } from './context.ts';
import { ingress, parseResponses, rawExchange, rules, startProxy, type TestProxy } from './test-support.ts';
import { UpstreamConnection, UpstreamPool } from './upstream.ts';

interface RawUpstream {
  address: HostPort;
  /** Request heads (first line) per upstream connection, in order. */
  connections: string[][];
  /** Every request: the index of its upstream connection and its first line. */
  requests: Array<{ conn: number; line: string }>;
  close(): Promise<void>;
}

/** Answers each request by its path: `/r/NAME` gets `answers[NAME]`, written as is. */
async function rawUpstream(answers: Record<string, string>): Promise<RawUpstream> {
  const connections: string[][] = [];
  const requests: Array<{ conn: number; line: string }> = [];
  const socks = new Set<net.Socket>();
  const server = net.createServer((s) => {
    socks.add(s);
    s.on('close', () => socks.delete(s));
    s.on('error', () => {});
    const seen: string[] = [];
    const conn = connections.push(seen) - 1;
    let buf = '';
    s.on('data', (d) => {
      buf += d.toString('latin1');
      for (;;) {
        const end = buf.indexOf('\r\n\r\n');
        if (end < 0) return;
        const head = buf.slice(0, end);
        const cl = /\r\ncontent-length: *([0-9]+)/i.exec(head);
        const len = cl === null ? 0 : Number(cl[1]);
        if (buf.length < end + 4 + len) return;
        buf = buf.slice(end + 4 + len);
        const line = head.split('\r\n')[0]!;
        seen.push(line);
        requests.push({ conn, line });
        const name = /^[A-Z]+ \/r\/([^ ?]+)/.exec(line)?.[1] ?? '';
        const a = answers[name];
        if (a === undefined) s.write('HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n');
        else if (a.endsWith('<close>')) s.end(a.slice(0, -'<close>'.length));
        else if (line.startsWith('HEAD ') && name !== 'headbody')
          s.write(a.slice(0, a.indexOf('\r\n\r\n') + 4));
        else s.write(a);
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return {
    address: { address: '127.0.0.1', port: (server.address() as net.AddressInfo).port },
    connections,
    requests,
    close: () =>
      new Promise<void>((r) => {
        for (const s of socks) s.destroy();
        server.close(() => r());
      }),
  };
}

const ok = 'HTTP/1.1 200 OK\r\n';
const get = (path: string): string => `GET ${path} HTTP/1.1\r\nHost: shop\r\n\r\n`;
const answers: Record<string, string> = {
  good: `${ok}Content-Length: 2\r\n\r\nok`,
  chunked: `${ok}Transfer-Encoding: chunked\r\n\r\n2\r\nab\r\n1\r\nc\r\n0\r\n\r\n`,
  continue: `HTTP/1.1 100 Continue\r\n\r\n${ok}Content-Length: 2\r\n\r\nok`,
  toclose: `${ok}\r\nuntil the end<close>`,
  nocontent: 'HTTP/1.1 204 No Content\r\n\r\n',
  clte: `${ok}Content-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n`,
  twocl: `${ok}Content-Length: 2\r\nContent-Length: 40\r\n\r\nok`,
  extra: `${ok}Content-Length: 2\r\n\r\nok${ok}Content-Length: 4\r\n\r\nevil`,
  bigbody: `${ok}Content-Length: 2\r\n\r\nokSMUGGLED`,
  badhead: 'HTTP/1.1 200 OK\nContent-Length: 2\n\nok',
  obsfold: `${ok}X-A: 1\r\n Content-Length: 40\r\nContent-Length: 2\r\n\r\nok`,
  huge: `${ok}X-Big: ${'a'.repeat(20_000)}\r\nContent-Length: 2\r\n\r\nok`,
  upgrade: 'HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\n\r\n',
  badchunk: `${ok}Transfer-Encoding: chunked\r\n\r\n2\r\nabXX0\r\n\r\n`,
  headbody: `${ok}Content-Length: 2\r\n\r\nok`,
  cut: `${ok}Content-Length: 10\r\n\r\nabc<close>`,
};

interface Row {
  name: string;
  path: string;
  method?: string;
  /** Status the client sees; undefined: the connection is cut (the head was already sent). */
  status?: number;
  body?: string;
  /** The upstream connection is reused for the next request. */
  reused: boolean;
}

const rows: Row[] = [
  { name: 'Content-Length response', path: 'good', status: 200, body: 'ok', reused: true },
  { name: 'chunked response', path: 'chunked', status: 200, body: 'abc', reused: true },
  { name: '100 Continue from upstream passed over', path: 'continue', status: 200, body: 'ok', reused: true },
  { name: 'close-delimited response', path: 'toclose', status: 200, body: 'until the end', reused: false },
  { name: '204 without body', path: 'nocontent', status: 204, body: '', reused: true },
  { name: 'HEAD: no body', path: 'good', method: 'HEAD', status: 200, body: '', reused: true },
  {
    name: 'smuggling: a body after a HEAD answer: closed',
    path: 'headbody',
    method: 'HEAD',
    status: 200,
    reused: false,
  },
  { name: 'smuggling: Content-Length with Transfer-Encoding: 502', path: 'clte', status: 502, reused: false },
  { name: 'smuggling: two Content-Lengths: 502', path: 'twocl', status: 502, reused: false },
  {
    name: 'smuggling: a second response appended: first passed on, connection closed',
    path: 'extra',
    status: 200,
    body: 'ok',
    reused: false,
  },
  {
    name: 'smuggling: body longer than Content-Length: closed',
    path: 'bigbody',
    status: 200,
    body: 'ok',
    reused: false,
  },
  { name: 'bare LF in the response head: 502', path: 'badhead', status: 502, reused: false },
  { name: 'obs-fold in the response head: 502', path: 'obsfold', status: 502, reused: false },
  { name: 'response head over the cap: 502', path: 'huge', status: 502, reused: false },
  { name: '101 never asked for: 502', path: 'upgrade', status: 502, reused: false },
  { name: 'broken chunk framing after the head: cut', path: 'badchunk', reused: false },
  { name: 'upstream closes inside the body: cut', path: 'cut', reused: false },
];

describe('HTTP/1.x proxy: upstream responses parsed strictly', () => {
  let up: RawUpstream;
  let p: TestProxy;
  before(async () => {
    up = await rawUpstream(answers);
    p = await startProxy(up.address, [
      ingress(
        rules(
          { method: 'GET', path: '/r/.*' },
          { method: 'HEAD', path: '/r/.*' },
          {
            method: 'GET',
            path: '/inject',
            headerMatches: [{ name: 'x-add', value: 'a\r\nX-Evil: 1', mismatch: 'ADD' }],
          },
        ),
      ),
    ]);
  });
  after(async () => {
    await p.close();
    await up.close();
  });

  for (const r of rows) {
    test(r.name, async () => {
      const before = up.requests.length;
      const req = `${r.method ?? 'GET'} /r/${r.path} HTTP/1.1\r\nHost: shop\r\n\r\n`;
      const head = r.method === 'HEAD';
      const res = await rawExchange(
        p.address,
        [req],
        head ? { timeoutMs: 500 } : { timeoutMs: 1500, expectResponses: 1 },
      );
      if (head) {
        // parseResponses would wait for the Content-Length body a HEAD answer never has.
        assert.match(res.data, /^HTTP\/1\.1 200 OK\r\n/);
        assert.ok(res.data.endsWith('\r\n\r\n'), JSON.stringify(res.data));
      } else if (r.status === undefined) {
        assert.equal(res.closed, true, 'the client connection is cut');
      } else {
        const got = parseResponses(res.data);
        assert.equal(got[0]?.status, r.status, res.data.slice(0, 300));
        if (r.body !== undefined) assert.equal(got[0]?.body, r.body);
      }
      assert.doesNotMatch(res.data, /evil|SMUGGLED/);
      // The next request: on the same upstream connection only when that one was clean.
      await new Promise((d) => setTimeout(d, 20));
      const next = await rawExchange(p.address, [get('/r/good')], { timeoutMs: 1500, expectResponses: 1 });
      assert.equal(parseResponses(next.data)[0]?.status, 200);
      const seen = up.requests.slice(before);
      assert.equal(seen.length, 2, JSON.stringify(seen));
      assert.equal(seen[1]!.conn === seen[0]!.conn, r.reused, `reused: ${JSON.stringify(seen)}`);
    });
  }

  test('a header action value that would split the head: 500, nothing upstream', async () => {
    const before = up.requests.length;
    const res = await rawExchange(p.address, [get('/inject')], { timeoutMs: 1500, expectResponses: 1 });
    assert.equal(parseResponses(res.data)[0]?.status, 500);
    await new Promise((d) => setTimeout(d, 20));
    assert.equal(up.requests.length, before);
  });

  test('upstream connections are reused across client connections (one pool per destination)', async () => {
    const before = up.connections.length;
    for (let i = 0; i < 5; i++) {
      const r = await rawExchange(p.address, [get('/r/good')], { expectResponses: 1 });
      assert.equal(parseResponses(r.data)[0]?.status, 200);
    }
    assert.ok(
      up.connections.length - before <= 1,
      `${up.connections.length - before} new upstream connections`,
    );
  });
});

describe('HTTP/1.x proxy: retries', () => {
  test('an upstream connection lost before any body byte: retried, the late body goes to the retry', async () => {
    // The first upstream connection is closed as soon as the head arrives; the next one answers.
    let conns = 0;
    const bodies: string[] = [];
    const server = net.createServer((s) => {
      const n = conns++;
      s.on('error', () => {});
      let buf = '';
      s.on('data', (d) => {
        if (n === 0) {
          s.destroy();
          return;
        }
        buf += d.toString('latin1');
        const end = buf.indexOf('\r\n\r\n');
        if (end >= 0 && buf.length >= end + 4 + 4) {
          bodies.push(buf.slice(end + 4, end + 8));
          s.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok');
          buf = '';
        }
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    const address = { address: '127.0.0.1', port: (server.address() as net.AddressInfo).port };
    const p = await startProxy(address, [ingress(rules({ method: 'PUT', path: '/up' }))]);
    try {
      const res = await rawExchange(
        p.address,
        ['PUT /up HTTP/1.1\r\nHost: shop\r\nContent-Length: 4\r\n\r\n', 'body'],
        { gapMs: 200, timeoutMs: 3000, expectResponses: 1 },
      );
      assert.equal(parseResponses(res.data)[0]?.status, 200, res.data);
      assert.deepEqual(bodies, ['body']);
      assert.equal(conns, 2);
    } finally {
      await p.close();
      await new Promise<void>((r) => server.close(() => r()));
    }
  });
});

describe('UpstreamPool: timeouts from one sweep', () => {
  // The upstream answers `GET /r/NAME` as the row says: at once, never, or a byte every 40 ms.
  const pace = { now: 'ok', never: '', trickle: 'trickle' } as const;
  async function pacedUpstream(): Promise<{
    address: HostPort;
    closed: () => number;
    close(): Promise<void>;
  }> {
    let closed = 0;
    const socks = new Set<net.Socket>();
    const server = net.createServer((s) => {
      socks.add(s);
      s.on('error', () => {});
      s.on('close', () => {
        closed++;
        socks.delete(s);
      });
      s.on('data', (d) => {
        const name = /^GET \/r\/([a-z]+)/.exec(d.toString('latin1'))?.[1];
        if (name === 'now') s.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok');
        if (name === 'trickle') {
          s.write('HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\n');
          let i = 0;
          const t = setInterval(() => {
            if (s.destroyed || i === 6) return clearInterval(t);
            s.write('x');
            i++;
          }, 40);
        }
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    return {
      address: { address: '127.0.0.1', port: (server.address() as net.AddressInfo).port },
      closed: () => closed,
      close: () =>
        new Promise<void>((r) => {
          for (const s of socks) s.destroy();
          server.close(() => r());
        }),
    };
  }

  /** One request on a pool with these timeouts: how it ended, and the pool's size 300 ms later. */
  async function exchange(
    name: keyof typeof pace,
    o: { requestTimeoutMs: number; idleTimeoutMs: number },
  ): Promise<{ outcome: string; sizeAfter: number; upstreamClosed: number }> {
    const up = await pacedUpstream();
    const pool = new UpstreamPool({
      connectTimeoutMs: 1000,
      maxIdlePerDestination: 4,
      maxHeadSize: 16384,
      maxHeaders: 100,
      ...o,
    });
    try {
      const outcome = await new Promise<string>((resolve) => {
        pool.acquire(up.address, '127.0.0.1', {
          acquired: (err, c?: UpstreamConnection) => {
            if (err !== undefined || c === undefined) return resolve(`acquire: ${err?.code}`);
            let body = '';
            c.begin('GET', `GET /r/${name} HTTP/1.1\r\nhost: x\r\n\r\n`, false, {
              onHead: () => {},
              onBody: (b) => {
                body += b.toString('latin1');
              },
              onEnd: () => resolve(`done: ${body}`),
              onError: (e) => resolve(`error: ${e.code}`),
            });
            c.endRequest();
          },
        });
      });
      await new Promise((r) => setTimeout(r, 300));
      return { outcome, sizeAfter: pool.size, upstreamClosed: up.closed() };
    } finally {
      pool.destroy();
      await up.close();
    }
  }

  const rows: Array<{
    name: string;
    req: keyof typeof pace;
    o: { requestTimeoutMs: number; idleTimeoutMs: number };
    outcome: string;
    sizeAfter: number;
    upstreamClosed: number;
  }> = [
    {
      name: 'an answered request parks; the idle connection closes after the idle timeout',
      req: 'now',
      o: { requestTimeoutMs: 10_000, idleTimeoutMs: 100 },
      outcome: 'done: ok',
      sizeAfter: 0,
      upstreamClosed: 1,
    },
    {
      name: 'a parked connection stays while younger than the idle timeout',
      req: 'now',
      o: { requestTimeoutMs: 10_000, idleTimeoutMs: 5_000 },
      outcome: 'done: ok',
      sizeAfter: 1,
      upstreamClosed: 0,
    },
    {
      name: 'no answer within the request timeout: ETIMEDOUT_UPSTREAM, the connection closed',
      req: 'never',
      o: { requestTimeoutMs: 100, idleTimeoutMs: 5_000 },
      outcome: 'error: ETIMEDOUT_UPSTREAM',
      sizeAfter: 0,
      upstreamClosed: 1,
    },
    {
      name: 'an answer whose bytes keep coming is not timed out (inactivity, not a total)',
      req: 'trickle',
      o: { requestTimeoutMs: 100, idleTimeoutMs: 5_000 },
      outcome: 'done: xxxxxx',
      sizeAfter: 1,
      upstreamClosed: 0,
    },
  ];
  for (const row of rows) {
    test(row.name, async () => {
      const r = await exchange(row.req, row.o);
      assert.deepEqual(r, {
        outcome: row.outcome,
        sizeAfter: row.sizeAfter,
        upstreamClosed: row.upstreamClosed,
      });
    });
  }
});

describe('UpstreamPool: the sweep and a connection still connecting', () => {
  test('a connecting socket is left to its connect timer, however short the idle timeout', () => {
    const pool = new UpstreamPool({
      connectTimeoutMs: 1000,
      requestTimeoutMs: 10,
      idleTimeoutMs: 10,
      maxIdlePerDestination: 4,
      maxHeadSize: 16384,
      maxHeaders: 100,
    });
    const sock = new net.Socket();
    let connecting = true;
    Object.defineProperty(sock, 'connecting', { get: () => connecting });
    const c = new UpstreamConnection(sock, pool, 'k');
    c.lastActive = 0;
    c.check(performance.now());
    assert.equal(sock.destroyed, false, 'destroyed while connecting');
    connecting = false;
    c.check(performance.now());
    assert.equal(sock.destroyed, true, 'an idle connected socket past the idle timeout is closed');
    pool.destroy();
  });
});

describe('HTTP/1.x proxy: upstream bytes are read into one shared buffer; what outlives a read is a copy', () => {
  // Every upstream socket reads into the same buffer (upstream.ts, net's `onread`). A body the
  // client socket cannot take at once, a head or chunk-size line cut between reads, must not be
  // views of it: the next read (from any upstream connection) overwrites it. Each row sends two
  // bodies of different bytes at once, one to a client that reads late, and compares digests.
  // more than loopback's socket buffers hold (tcp_rmem and tcp_wmem: up to 6 and 4 MiB), so the
  // late client's socket keeps chunks in Node's own write queue
  const SIZE = 24 * 1024 * 1024;
  const bodies = [randomBytes(SIZE), randomBytes(SIZE)];
  const digest = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

  /** `framing`: how the upstream frames each body; `split`: the head comes in two writes. */
  async function upstream(framing: 'length' | 'chunked', split: boolean) {
    const server = net.createServer((s) => {
      s.on('error', () => {});
      s.once('data', async (d) => {
        const body = bodies[/GET \/b\/1 /.test(d.toString('latin1')) ? 1 : 0]!;
        const head =
          framing === 'length'
            ? `HTTP/1.1 200 OK\r\nX-Head: ${'h'.repeat(300)}\r\nContent-Length: ${SIZE}\r\n\r\n`
            : `HTTP/1.1 200 OK\r\nX-Head: ${'h'.repeat(300)}\r\nTransfer-Encoding: chunked\r\n\r\n`;
        const pause = () => new Promise((r) => setTimeout(r, 15));
        if (split) {
          s.write(head.slice(0, 40));
          await pause();
          s.write(head.slice(40));
        } else s.write(head);
        const piece = 1024 * 1024;
        for (let at = 0; at < SIZE; at += piece) {
          const part = body.subarray(at, at + piece);
          if (framing === 'length') s.write(part);
          else {
            // the chunk-size line cut between two writes
            const line = `${part.length.toString(16)}\r\n`;
            s.write(line.slice(0, 2));
            await pause();
            s.write(line.slice(2));
            s.write(part);
            s.write('\r\n');
          }
          await pause();
        }
        if (framing === 'chunked') s.write('0\r\n\r\n');
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    return { server, address: { address: '127.0.0.1', port: (server.address() as net.AddressInfo).port } };
  }

  /** GET /b/N; the client starts reading after `lateMs`; the body as received (chunks undone). */
  function fetchBody(at: HostPort, n: number, lateMs: number): Promise<{ head: string; body: Buffer }> {
    return new Promise((resolve, reject) => {
      const parts: Buffer[] = [];
      const c = net.connect(at.port, at.address, () => c.write(`GET /b/${n} HTTP/1.1\r\nHost: shop\r\n\r\n`));
      c.pause();
      setTimeout(() => c.resume(), lateMs);
      const t = setTimeout(() => reject(new Error('no complete answer')), 20_000);
      let total = 0;
      let end = -1;
      c.on('data', (d) => {
        parts.push(d);
        total += d.length;
        if (end < 0) end = Buffer.concat(parts).indexOf('\r\n\r\n');
        if (end < 0) return;
        // one concatenation at the end, not one per read (24 MiB)
        const chunked = /transfer-encoding: chunked/i.test(
          Buffer.concat(parts.slice(0, 2)).toString('latin1'),
        );
        if (chunked && !Buffer.concat(parts.slice(-2)).subarray(-5).equals(Buffer.from('0\r\n\r\n'))) return;
        if (!chunked && total < end + 4 + SIZE) return;
        const all = Buffer.concat(parts);
        const head = all.toString('latin1', 0, end);
        let raw = all.subarray(end + 4);
        if (chunked) {
          const out: Buffer[] = [];
          while (raw.length > 0) {
            const lf = raw.indexOf('\r\n');
            const size = Number.parseInt(raw.toString('latin1', 0, lf), 16);
            if (size === 0) break;
            out.push(raw.subarray(lf + 2, lf + 2 + size));
            raw = raw.subarray(lf + 2 + size + 2);
          }
          raw = Buffer.concat(out);
        }
        clearTimeout(t);
        c.destroy();
        resolve({ head, body: raw });
      });
      c.on('error', reject);
    });
  }

  const rows: Array<{ name: string; framing: 'length' | 'chunked'; split: boolean }> = [
    { name: 'Content-Length bodies, one client late: both intact', framing: 'length', split: false },
    { name: 'chunked bodies with cut size lines: both intact', framing: 'chunked', split: false },
    { name: 'heads cut between reads: headers intact', framing: 'length', split: true },
  ];
  for (const r of rows) {
    test(r.name, async () => {
      const up = await upstream(r.framing, r.split);
      const p = await startProxy(up.address, [ingress(rules({ method: 'GET', path: '/b/.*' }))]);
      try {
        const [late, early] = await Promise.all([fetchBody(p.address, 0, 400), fetchBody(p.address, 1, 0)]);
        for (const got of [late, early])
          assert.match(got.head, new RegExp(`\\r\\nx-head: ${'h'.repeat(300)}\\r\\n`));
        assert.equal(digest(late.body), digest(bodies[0]!), 'the late client got its own bytes');
        assert.equal(digest(early.body), digest(bodies[1]!));
      } finally {
        await p.close();
        await new Promise<void>((res) => up.server.close(() => res()));
      }
    });
  }
});

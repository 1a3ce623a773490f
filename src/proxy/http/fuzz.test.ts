// Fuzzing the HTTP/1.x proxy over raw sockets: generated requests (methods, tricky targets,
// framing headers, pipelines) and byte-level mutations of them. Whatever comes in: the proxy does
// not crash or hang (every exchange is bounded), and every request that reaches upstream is one
// the proxy recorded as FORWARDED and that the judge allows on the path upstream received.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import fc from 'fast-check';
import { HTTPJudge } from './judge.ts';
import { normalizeTarget } from './normalize.ts';
import {
  httpOf,
  ingress,
  parseResponses,
  rawExchange,
  rules,
  startProxy,
  startUpstream,
  type TestProxy,
  type Upstream,
} from './test-support.ts';

const set = ingress(
  rules(
    { method: 'GET', path: '/public/.*' },
    { method: 'POST', path: '/api/items', headers: ['X-Env: prod'] },
    { method: 'GET', path: '/admin', host: 'admin\\.shop' },
  ),
);

const methods = ['GET', 'POST', 'PUT', 'DELETE', 'HEAD', 'OPTIONS', 'CONNECT', 'G ET', 'get'];
const targets = [
  '/public/a',
  '/public/../admin',
  '//admin',
  '/public/%2e%2e/admin',
  '/public%2F..%2Fadmin',
  '/admin',
  '/api/items',
  'http://admin.shop/admin',
  'http://shop/public/x',
  '*',
  '/x?y=/../admin',
  '/public/a#frag',
  '/public/\\..\\admin',
  '/public/%zz',
];
const hosts = ['shop', 'admin.shop', 'evil', ''];
const versions = ['1.1', '1.1', '1.0', '2.0', '0.9'];
const extras = [
  'X-Env: prod',
  'Expect: 100-continue',
  'Connection: close',
  'Transfer-Encoding: chunked',
  'Content-Length: 3',
  'Content-Length: 30',
  ' X-Fold: y',
];

const requestArb = fc
  .record({
    // Biased towards requests the rules allow, so the oracle has forwarded requests to check.
    method: fc.oneof(
      { weight: 6, arbitrary: fc.constant('GET') },
      { weight: 4, arbitrary: fc.constantFrom(...methods) },
    ),
    target: fc.oneof(
      {
        weight: 4,
        arbitrary: fc.constantFrom('/public/a', '/public/./b', 'http://shop/public/x', '//public//c'),
      },
      { weight: 6, arbitrary: fc.constantFrom(...targets) },
    ),
    host: fc.constantFrom(...hosts),
    version: fc.constantFrom(...versions),
    extra: fc.subarray(extras, { maxLength: 2 }),
    body: fc.constantFrom('', 'abc', '3\r\nabc\r\n0\r\n\r\n'),
  })
  .map((r) => {
    const head = [`${r.method} ${r.target} HTTP/${r.version}`];
    if (r.host !== '') head.push(`Host: ${r.host}`);
    head.push(...r.extra);
    return `${head.join('\r\n')}\r\n\r\n${r.body}`;
  });

/** Well-formed requests with every target, so that bypass attempts reach the judge intact. */
const cleanArb = fc
  .record({
    method: fc.constantFrom('GET', 'GET', 'POST'),
    target: fc.constantFrom(...targets),
    host: fc.constantFrom(...hosts),
  })
  .map((r) => `${r.method} ${r.target} HTTP/1.1\r\nHost: ${r.host || 'shop'}\r\nContent-Length: 0\r\n\r\n`);

const inserts = [
  '\r',
  '\n',
  '\0',
  ' ',
  '\t',
  ':',
  '\x7f',
  '\xff',
  'Transfer-Encoding: chunked\r\n',
  'Content-Length: 5\r\n',
  '\r\n\r\n',
];

type Mutation =
  | { kind: 'insert'; at: number; what: string }
  | { kind: 'delete'; at: number; n: number }
  | { kind: 'flip'; at: number; byte: number };

const mutationArb: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ kind: fc.constant('insert' as const), at: fc.nat(), what: fc.constantFrom(...inserts) }),
  fc.record({ kind: fc.constant('delete' as const), at: fc.nat(), n: fc.integer({ min: 1, max: 4 }) }),
  fc.record({ kind: fc.constant('flip' as const), at: fc.nat(), byte: fc.integer({ min: 0, max: 255 }) }),
);

function mutate(s: string, ms: readonly Mutation[]): string {
  let out = s;
  for (const m of ms) {
    if (out.length === 0) break;
    const at = m.at % out.length;
    if (m.kind === 'insert') out = out.slice(0, at) + m.what + out.slice(at);
    else if (m.kind === 'delete') out = out.slice(0, at) + out.slice(at + m.n);
    else out = out.slice(0, at) + String.fromCharCode(m.byte) + out.slice(at + 1);
  }
  return out;
}

describe('HTTP/1.x proxy under fuzzing', () => {
  let up: Upstream;
  let p: TestProxy;
  const judge = new HTTPJudge();
  before(async () => {
    up = await startUpstream();
    p = await startProxy(up.address, [set], { headersTimeoutMs: 2000, timeoutCheckIntervalMs: 200 });
  });
  after(async () => {
    await p.close();
    await up.close();
  });

  /** Every upstream request is matched by one FORWARDED request record and passes the judge. */
  const checkUpstream = () => {
    const forwarded = new Map<string, number>();
    for (const f of p.flows) {
      if (f.l7?.type !== 'REQUEST' || f.verdict !== 'FORWARDED') continue;
      const h = httpOf(f);
      const key = `${h.method} ${h.url.replace(/^http:\/\/[^/]*/, '')}`;
      forwarded.set(key, (forwarded.get(key) ?? 0) + 1);
    }
    for (const s of up.seen) {
      const key = `${s.method} ${s.url}`;
      const n = forwarded.get(key) ?? 0;
      assert.ok(n > 0, `upstream got ${key} that the proxy never forwarded`);
      forwarded.set(key, n - 1);
      // What upstream received is already normal, and the rules admit it.
      const again = normalizeTarget(s.method, s.url);
      assert.ok(again.ok && again.path === s.url, `upstream path ${s.url} is not normalised`);
      const host = typeof s.headers.host === 'string' ? s.headers.host : undefined;
      const headers = Object.entries(s.headers).flatMap(([k, v]) =>
        typeof v === 'string' ? [[k, v] as [string, string]] : [],
      );
      const j = judge.judge(
        [set],
        host === undefined
          ? { method: s.method, path: s.url, headers }
          : { method: s.method, path: s.url, host, headers },
      );
      assert.ok(j.allowed, `upstream got ${key} (host ${host}) that the rules deny: ${j.reason}`);
    }
  };

  test('generated and mutated requests: nothing unjudged reaches upstream', { timeout: 90_000 }, async () => {
    const t0 = Date.now();
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.oneof(cleanArb, requestArb), { minLength: 1, maxLength: 3 }),
        fc.oneof(fc.constant([] as Mutation[]), fc.array(mutationArb, { minLength: 1, maxLength: 3 })),
        async (reqs, ms) => {
          const wire = mutate(reqs.join(''), ms);
          const r = await rawExchange(p.address, [Buffer.from(wire, 'latin1')], {
            timeoutMs: 400,
            expectResponses: reqs.length,
          });
          // Whatever came back parses as HTTP/1.x responses (or nothing, on a close).
          if (r.data.length > 0) assert.match(r.data, /^HTTP\/1\.[01] [0-9]{3} /);
          for (const x of parseResponses(r.data))
            if (x.status === 403) assert.equal(x.body, 'Access denied\r\n');
          checkUpstream();
        },
      ),
      { numRuns: 200, seed: 42, endOnFailure: true },
    );
    // Bounded: 200 exchanges of at most 400 ms each, plus slack.
    assert.ok(Date.now() - t0 < 80_000);
    // Give late upstream arrivals a moment, then check once more.
    await new Promise((r) => setTimeout(r, 100));
    checkUpstream();
    assert.ok(up.seen.length > 0, 'some generated requests were allowed (the oracle was exercised)');
    assert.ok(p.proxy.stats.denied > 0 && p.proxy.stats.rejected > 0);
  });

  test('the proxy still serves after the fuzzing', async () => {
    const r = await rawExchange(p.address, ['GET /public/ok HTTP/1.1\r\nHost: shop\r\n\r\n'], {
      expectResponses: 1,
    });
    assert.deepEqual(
      parseResponses(r.data).map((x) => x.status),
      [200],
    );
  });
});

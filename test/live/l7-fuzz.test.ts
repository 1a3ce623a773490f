// Issue 9, live fuzzing: generated and byte-mutated HTTP/1.x requests sent from a client pod
// through the real redirect (nat_pre DNAT) to the node's proxy process (uid 1337, judging from
// the agent's snapshot) and on to a server pod. Oracle: every request the server receives is
// normalised and allowed by the rules (the judge's own matchers); the proxy never crashes
// (no restart) and still serves afterwards; every exchange ends within its timeout.

import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import { ProxyComponent } from '../../src/agent/proxy.ts';
import { NodeRuntime } from '../../src/agent/runtime.ts';
import { delNetns, netnsExists } from '../../src/datapath/netns.ts';
import { FakeEngine } from '../../src/policy/testing/fake-engine.ts';
import type { L7RuleSet, MapStateEntry } from '../../src/policy/types.ts';
import type { PortRuleHTTP } from '../../src/policy-api/types.ts';
import { HTTPJudge } from '../../src/proxy/http/judge.ts';
import { normalizeTarget } from '../../src/proxy/http/normalize.ts';
import { ADDON_PATH } from '../../src/proxy/origdst.ts';
import { entry, liveSkipReason, testNode } from './helpers.ts';

const skip =
  liveSkipReason() ??
  (existsSync(ADDON_PATH) ? undefined : `addon not built (${ADDON_PATH}); run scripts/build-addon.sh`);

const pos = { file: 'live-fuzz', line: 1, column: 1 };
const RULES: PortRuleHTTP[] = [
  { pos, method: 'GET', path: '/public/.*' },
  { pos, method: 'POST', path: '/api/items', headers: ['X-Env: prod'] },
  { pos, method: 'GET', path: '/admin', host: 'admin\\.shop' },
];
const l7: L7RuleSet = { parser: 'http', rules: RULES };

// The server logs what it received (method, target, host) and answers 200.
const SERVER_CODE = `
const http = require('node:http');
http.createServer((req, res) => {
  process.stdout.write(JSON.stringify({ method: req.method, url: req.url, host: req.headers.host, env: req.headers['x-env'] }) + '\\n');
  req.resume();
  req.on('end', () => res.end('ok'));
}).listen(8080, '0.0.0.0', () => process.stdout.write(JSON.stringify({ listening: true }) + '\\n'));
process.on('SIGTERM', () => process.exit(0));
`;

// The client: one raw connection per case (base64 on stdin, one per line), each bounded by
// a timeout; one result line per case with how many bytes came back and the first status.
const CLIENT_CODE = `
const net = require('node:net');
const [host, port, ms] = process.argv.slice(1);
const lines = require('node:fs').readFileSync(0, 'utf8').trim().split('\\n');
(async () => {
  for (const l of lines) {
    const t0 = Date.now();
    const r = await new Promise((resolve) => {
      const s = net.connect(Number(port), host);
      let data = '';
      const done = (how) => { clearTimeout(t); s.destroy(); resolve({ how, data: data.slice(0, 200), ms: Date.now() - t0 }); };
      const t = setTimeout(() => done('timeout'), Number(ms));
      s.on('connect', () => s.write(Buffer.from(l, 'base64')));
      s.on('data', (d) => { data += d.toString('latin1'); });
      s.on('error', () => done('error'));
      s.on('close', () => done('closed'));
    });
    process.stdout.write(JSON.stringify(r) + '\\n');
  }
})();
`;

const methods = ['GET', 'POST', 'PUT', 'DELETE', 'HEAD', 'G ET', 'get'];
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
  '/public/\\..\\admin',
  '/public/%zz',
];
const extras = [
  'X-Env: prod',
  'Expect: 100-continue',
  'Transfer-Encoding: chunked',
  'Content-Length: 3',
  'Content-Length: 30',
  ' X-Fold: y',
];
const requestArb = fc
  .record({
    method: fc.oneof({ weight: 5, arbitrary: fc.constant('GET') }, fc.constantFrom(...methods)),
    target: fc.oneof(
      { weight: 3, arbitrary: fc.constantFrom('/public/a', '/public/./b', '//public//c') },
      { weight: 5, arbitrary: fc.constantFrom(...targets) },
    ),
    host: fc.constantFrom('shop', 'admin.shop', 'evil', ''),
    version: fc.constantFrom('1.1', '1.1', '1.0', '2.0'),
    extra: fc.subarray(extras, { maxLength: 2 }),
    body: fc.constantFrom('', 'abc', '3\r\nabc\r\n0\r\n\r\n'),
  })
  .map((r) => {
    const head = [`${r.method} ${r.target} HTTP/${r.version}`];
    if (r.host !== '') head.push(`Host: ${r.host}`);
    head.push(...r.extra);
    return `${head.join('\r\n')}\r\n\r\n${r.body}`;
  });
const inserts = [
  '\r',
  '\n',
  '\0',
  ' ',
  ':',
  '\x7f',
  '\xff',
  'Transfer-Encoding: chunked\r\n',
  'Content-Length: 5\r\n',
];
const mutationArb = fc.oneof(
  fc.record({ at: fc.nat(), insert: fc.constantFrom(...inserts) }),
  fc.record({ at: fc.nat(), del: fc.integer({ min: 1, max: 4 }) }),
  fc.record({ at: fc.nat(), byte: fc.integer({ min: 0, max: 255 }) }),
);
type Mutation = { at: number; insert?: string; del?: number; byte?: number };
function mutate(s: string, ms: readonly Mutation[]): string {
  let out = s;
  for (const m of ms) {
    const at = m.at % Math.max(1, out.length);
    if (m.insert !== undefined) out = out.slice(0, at) + m.insert + out.slice(at);
    else if (m.del !== undefined) out = out.slice(0, at) + out.slice(at + m.del);
    else out = out.slice(0, at) + String.fromCharCode(m.byte ?? 0) + out.slice(at + 1);
  }
  return out;
}

describe('live proxy under fuzzing (issue 9)', { skip, timeout: 240_000 }, () => {
  const net = 100 + (process.pid % 100);
  const clientIP = `10.${net}.13.1`;
  const serverIP = `10.${net}.13.2`;
  const engine = new FakeEngine();
  const logs: string[] = [];
  const proxy = new ProxyComponent({ parser: 'http', log: (l) => logs.push(l) });
  const rt = new NodeRuntime({ engine, node: testNode('fz'), flows: false, components: [proxy] });
  let server: ChildProcess | undefined;
  const seen: Array<{ method: string; url: string; host?: string; env?: string }> = [];
  let clientNs = '';

  before(async () => {
    engine.upsertEndpoint({ name: 'client', namespace: 'fz', labels: { app: 'client' }, ip: clientIP });
    engine.upsertEndpoint({ name: 'server', namespace: 'fz', labels: { app: 'server' }, ip: serverIP });
    const clientId = engine.identityOf({ kind: 'endpoint', namespace: 'fz', name: 'client' });
    const redirect: MapStateEntry = { ...entry('INGRESS', clientId, 6, 8080, 8080, 'redirect'), l7 };
    engine.setPolicy('fz', 'server', { ingress: { enforced: true, defaultDeny: true }, entries: [redirect] });
    await rt.start({
      pods: [
        { name: 'client', namespace: 'fz', labels: { app: 'client' }, ip: clientIP },
        { name: 'server', namespace: 'fz', labels: { app: 'server' }, ip: serverIP },
      ],
    });
    clientNs = rt.datapath.live({ kind: 'endpoint', namespace: 'fz', name: 'client' })!.ns;
    const serverNs = rt.datapath.live({ kind: 'endpoint', namespace: 'fz', name: 'server' })!.ns;
    server = spawn('ip', ['netns', 'exec', serverNs, process.execPath, '-e', SERVER_CODE], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    await new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('server did not start')), 15_000);
      createInterface({ input: server!.stdout! }).on('line', (l) => {
        const m = JSON.parse(l) as { listening?: boolean; method: string; url: string; host?: string };
        if (m.listening) {
          clearTimeout(t);
          resolve();
        } else seen.push(m);
      });
    });
  });

  after(async () => {
    if (server && server.exitCode === null) {
      server.kill('SIGTERM');
      await new Promise((r) => server!.once('exit', r));
    }
    await rt.stop().catch(() => {});
    for (const h of rt.datapath.topo.records) await delNetns(h.ns);
    if (netnsExists(rt.node)) await delNetns(rt.node);
  });

  const send = async (wires: string[], timeoutMs: number) => {
    const c = spawn(
      'ip',
      ['netns', 'exec', clientNs, process.execPath, '-e', CLIENT_CODE, serverIP, '8080', String(timeoutMs)],
      {
        stdio: ['pipe', 'pipe', 'inherit'],
      },
    );
    c.stdin!.end(`${wires.map((w) => Buffer.from(w, 'latin1').toString('base64')).join('\n')}\n`);
    const out: Array<{ how: string; data: string; ms: number }> = [];
    createInterface({ input: c.stdout! }).on('line', (l) => out.push(JSON.parse(l)));
    await new Promise((r) => c.once('exit', r));
    return out;
  };

  it('generated and mutated requests: nothing unjudged reaches the server, no crash, no hang', async () => {
    const cases = fc.sample(
      fc.tuple(
        fc.array(requestArb, { minLength: 1, maxLength: 3 }),
        fc.oneof(fc.constant([] as Mutation[]), fc.array(mutationArb, { minLength: 1, maxLength: 3 })),
      ),
      { numRuns: 150, seed: 9 },
    );
    const wires = cases.map(([reqs, ms]) => mutate(reqs.join(''), ms as Mutation[]));
    const results = await send(wires, 1500);
    assert.equal(results.length, wires.length, 'every case ran');
    for (const r of results) {
      assert.ok(r.ms < 5_000, 'bounded');
      if (r.data.length > 0) assert.match(r.data, /^HTTP\/1\.[01] [0-9]{3} /);
    }
    // the oracle: what the server got is normal and allowed
    await new Promise((r) => setTimeout(r, 300));
    const judge = new HTTPJudge();
    const set = { direction: 'INGRESS' as const, rules: RULES };
    for (const s of seen) {
      const again = normalizeTarget(s.method, s.url);
      assert.ok(again.ok && again.path === s.url, `server got ${s.url}, not normalised`);
      const headers: Array<[string, string]> = [];
      if (s.host !== undefined) headers.push(['host', s.host]);
      if (s.env !== undefined) headers.push(['x-env', s.env]);
      const j = judge.judge(
        [set],
        s.host === undefined
          ? { method: s.method, path: s.url, headers }
          : { method: s.method, path: s.url, host: s.host, headers },
      );
      assert.ok(j.allowed, `server got ${s.method} ${s.url} (host ${s.host}) that the rules deny`);
    }
    assert.ok(seen.length > 0, 'some generated requests were allowed (the oracle was exercised)');
    assert.ok(
      results.some((r) => r.data.startsWith('HTTP/1.1 403')),
      'some were refused with 403',
    );
    assert.equal(proxy.status().restarts, 0, `the proxy never crashed: ${logs.slice(-5).join(' | ')}`);
  });

  it('the proxy still serves after the fuzzing', async () => {
    const [r] = await send(['GET /public/ok HTTP/1.1\r\nHost: shop\r\nConnection: close\r\n\r\n'], 3000);
    assert.match(r?.data ?? '', /^HTTP\/1\.1 200 /);
    assert.equal(proxy.status().restarts, 0);
  });
});

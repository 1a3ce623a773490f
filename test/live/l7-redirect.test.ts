// Issue 9, live: MapState redirect entries send connections through the node's HTTP proxy (a
// supervised child process in the node namespace, judging from the mirror the agent pushed),
// never at L4. One node made here (unique names, removed in `after` even when a test fails):
// a client pod and a server pod with a node:http server on 8080 (redirected) and 9090 (plain
// L4 allow); curl in the client pod.

import assert from 'node:assert/strict';
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { ProxyComponent } from '../../src/agent/proxy.ts';
import { NodeRuntime } from '../../src/agent/runtime.ts';
import { delNetns, netnsExists } from '../../src/datapath/netns.ts';
import { findUlogdPluginDir } from '../../src/flow/nflog.ts';
import type { Flow } from '../../src/flow/types.ts';
import { FakeEngine } from '../../src/policy/testing/fake-engine.ts';
import type { L7RuleSet, MapStateEntry } from '../../src/policy/types.ts';
import type { PortRuleHTTP } from '../../src/policy-api/types.ts';
import { ADDON_PATH } from '../../src/proxy/origdst.ts';
import { entry, liveSkipReason, testNode } from './helpers.ts';

const run = promisify(execFile);
const skip =
  liveSkipReason() ??
  (existsSync(ADDON_PATH) ? undefined : `addon not built (${ADDON_PATH}); run scripts/build-addon.sh`);
const withFlows = findUlogdPluginDir() !== undefined;

const pos = { file: 'live', line: 1, column: 1 };
const http = (...rs: Array<Omit<PortRuleHTTP, 'pos'>>): L7RuleSet => ({
  parser: 'http',
  rules: rs.map((r) => ({ pos, ...r })),
});
const redirect = (
  direction: 'INGRESS' | 'EGRESS',
  identity: number,
  port: number,
  l7: L7RuleSet,
): MapStateEntry => ({ ...entry(direction, identity, 6, port, port, 'redirect'), l7 });

const SERVER_CODE = `
const http = require('node:http');
for (const port of [8080, 8081, 9090]) {
  http.createServer((req, res) => {
    process.stdout.write(JSON.stringify({ port, method: req.method, url: req.url }) + '\\n');
    res.end('server ' + port + ' saw ' + req.method + ' ' + req.url + '\\n');
  }).listen(port, '0.0.0.0', () => process.stdout.write(JSON.stringify({ listening: port }) + '\\n'));
}
process.on('SIGTERM', () => process.exit(0));
`;

describe('L7 redirection through the node proxy (issue 9)', { skip, timeout: 180_000 }, () => {
  const net = 100 + (process.pid % 100);
  const clientIP = `10.${net}.9.1`;
  const serverIP = `10.${net}.9.2`;
  const engine = new FakeEngine();
  // headerMatches secrets: a root-only (0700) directory the proxy reads before dropping to 1337
  const secrets = mkdtempSync(join(tmpdir(), 'seawall-l7-secrets-'));
  mkdirSync(join(secrets, 'l7'));
  writeFileSync(join(secrets, 'l7', 'api-token'), 'let-me-in\n');
  const proxy = new ProxyComponent({
    parser: 'http',
    backoffMs: 300,
    log: (l) => logs.push(l),
    secretsDir: secrets,
  });
  const logs: string[] = [];
  const rt = new NodeRuntime({
    engine,
    node: testNode('l7'),
    flows: withFlows ? {} : false,
    components: [proxy],
    log: (l) => logs.push(l),
  });
  let server: ChildProcess | undefined;
  const hits: Array<{ port: number; method: string; url: string }> = [];
  let clientNs = '';
  let clientId = 0;
  let serverId = 0;

  const serverPolicy = (rules: L7RuleSet) => ({
    ingress: { enforced: true, defaultDeny: true },
    entries: [
      redirect('INGRESS', clientId, 8080, rules),
      entry('INGRESS', 0, 6, 9090),
      entry('INGRESS', 0, 6, 8081),
      // reserved:host may not reach 8080 directly: only the proxy's uid passes
      entry('INGRESS', 1, 6, 8080, 8080, 'deny'),
    ],
  });

  before(async () => {
    engine.upsertEndpoint({ name: 'client', namespace: 'l7', labels: { app: 'client' }, ip: clientIP });
    engine.upsertEndpoint({ name: 'server', namespace: 'l7', labels: { app: 'server' }, ip: serverIP });
    clientId = engine.identityOf({ kind: 'endpoint', namespace: 'l7', name: 'client' });
    serverId = engine.identityOf({ kind: 'endpoint', namespace: 'l7', name: 'server' });
    engine.setPolicy('l7', 'server', serverPolicy(http({ method: 'GET', path: '/public/.*' })));
    // the client's egress: L7 on 8081 only (egress redirection), everything else allowed
    engine.setPolicy('l7', 'client', {
      egress: { enforced: true, defaultDeny: false },
      entries: [redirect('EGRESS', serverId, 8081, http({ path: '/eg/.*' }))],
    });
    await rt.start({
      pods: [
        { name: 'client', namespace: 'l7', labels: { app: 'client' }, ip: clientIP },
        { name: 'server', namespace: 'l7', labels: { app: 'server' }, ip: serverIP },
      ],
    });
    clientNs = rt.datapath.live({ kind: 'endpoint', namespace: 'l7', name: 'client' })!.ns;
    const serverNs = rt.datapath.live({ kind: 'endpoint', namespace: 'l7', name: 'server' })!.ns;
    server = spawn('ip', ['netns', 'exec', serverNs, process.execPath, '-e', SERVER_CODE], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let listening = 0;
    await new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('server did not start')), 15_000);
      createInterface({ input: server!.stdout! }).on('line', (l) => {
        const m = JSON.parse(l) as { listening?: number; port: number; method: string; url: string };
        if (m.listening !== undefined) {
          if (++listening === 3) {
            clearTimeout(t);
            resolve();
          }
        } else hits.push(m);
      });
    });
  });

  after(async () => {
    if (server && server.exitCode === null) {
      server.kill('SIGTERM');
      await new Promise((r) => server!.once('exit', r));
    }
    await rt.stop().catch(() => {});
    rmSync(secrets, { recursive: true, force: true });
    for (const h of rt.datapath.topo.records) await delNetns(h.ns);
    if (netnsExists(rt.node)) await delNetns(rt.node);
  });

  const curl = async (ns: string, url: string, method = 'GET', timeout = 3, headers: string[] = []) => {
    try {
      const r = await run('ip', [
        'netns',
        'exec',
        ns,
        'curl',
        '-s',
        '-m',
        String(timeout),
        '-X',
        method,
        '-o',
        '-',
        '-w',
        '\n%{http_code}',
        ...headers.flatMap((h) => ['-H', h]),
        url,
      ]);
      const cut = r.stdout.lastIndexOf('\n');
      return { code: Number(r.stdout.slice(cut + 1)), body: r.stdout.slice(0, cut) };
    } catch (e) {
      const out = (e as { stdout?: string }).stdout ?? '';
      return { code: Number(out.trim().split('\n').pop() ?? 0) || 0, body: '', failed: true };
    }
  };
  const fromClient = (port: number, path: string, method = 'GET') =>
    curl(clientNs, `http://${serverIP}:${port}${path}`, method);

  it('ingress: an allowed GET reaches the server through the proxy, POST /admin gets 403 and never does', async () => {
    const n = hits.length;
    const ok = await fromClient(8080, '/public/a');
    assert.equal(ok.code, 200, JSON.stringify({ ok, logs: logs.slice(-10) }));
    assert.equal(ok.body, 'server 8080 saw GET /public/a\n');
    const denied = await fromClient(8080, '/admin', 'POST');
    assert.equal(denied.code, 403);
    assert.equal(denied.body, 'Access denied\r\n');
    // path normalisation: a dot-segment bypass attempt is judged as /admin
    const bypass = await fromClient(8080, '/public/../admin');
    assert.equal(bypass.code, 403);
    assert.deepEqual(
      hits.slice(n).map((h) => `${h.port} ${h.method} ${h.url}`),
      ['8080 GET /public/a'],
    );
  });

  it('egress: the source pod’s L7 rules are enforced on its node', async () => {
    assert.equal((await fromClient(8081, '/eg/x')).code, 200);
    assert.equal((await fromClient(8081, '/other')).code, 403);
  });

  it('both sides L7: a request must pass the egress and the ingress rules', async () => {
    engine.setPolicy('l7', 'client', {
      egress: { enforced: true, defaultDeny: false },
      entries: [
        redirect('EGRESS', serverId, 8081, http({ path: '/eg/.*' })),
        redirect('EGRESS', serverId, 8080, http({ path: '/public/a.*' })),
      ],
    });
    await rt.sync();
    assert.equal((await fromClient(8080, '/public/abc')).code, 200, 'both allow');
    assert.equal((await fromClient(8080, '/public/b')).code, 403, 'ingress allows, egress denies');
    assert.equal((await fromClient(8080, '/private/a')).code, 403, 'egress denies first');
    engine.setPolicy('l7', 'client', {
      egress: { enforced: true, defaultDeny: false },
      entries: [redirect('EGRESS', serverId, 8081, http({ path: '/eg/.*' }))],
    });
    await rt.sync();
  });

  it('issue 11: egress L7 to the node itself: the upstream from the pod’s address is delivered and answered', async () => {
    // a server in the node namespace (reserved:host) on 8082, which records who connected
    const nodeIp = rt.datapath.topo.nodeIp;
    const code =
      "require('node:http').createServer((q, s) => { q.resume(); s.end(q.socket.remoteAddress); })" +
      ".listen(8082, '0.0.0.0', () => process.stdout.write('ready\\n'));" +
      "process.on('SIGTERM', () => process.exit(0));";
    const host = spawn('ip', ['netns', 'exec', rt.node, process.execPath, '-e', code], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    try {
      await new Promise<void>((resolve, reject) => {
        const t = setTimeout(() => reject(new Error('node server did not start')), 15_000);
        createInterface({ input: host.stdout! }).once('line', () => {
          clearTimeout(t);
          resolve();
        });
      });
      engine.setPolicy('l7', 'client', {
        egress: { enforced: true, defaultDeny: false },
        entries: [
          redirect('EGRESS', serverId, 8081, http({ path: '/eg/.*' })),
          redirect('EGRESS', 1, 8082, http({ path: '/eg/.*' })),
        ],
      });
      await rt.sync();
      const ok = await curl(clientNs, `http://${nodeIp}:8082/eg/x`);
      assert.equal(ok.code, 200, JSON.stringify(ok));
      assert.equal(ok.body.replace(/^::ffff:/, ''), clientIP, 'the node saw the pod, not itself');
      assert.equal((await curl(clientNs, `http://${nodeIp}:8082/other`)).code, 403);
    } finally {
      host.kill('SIGTERM');
      engine.setPolicy('l7', 'client', {
        egress: { enforced: true, defaultDeny: false },
        entries: [redirect('EGRESS', serverId, 8081, http({ path: '/eg/.*' }))],
      });
      await rt.sync();
    }
  });

  it('the proxy uid pass is not usable by other processes in the node namespace', async () => {
    // root in the node namespace is reserved:host; the server denies host on 8080
    const asRoot = await curl(rt.node, `http://${serverIP}:8080/public/a`, 'GET', 2);
    assert.equal(asRoot.code, 0, 'root in the node namespace was let through');
    assert.equal(proxy.status().uid, 1337, 'the proxy dropped to its uid after binding');
    // another uid (not the proxy's) gets nothing either
    const other = await run('ip', [
      'netns',
      'exec',
      rt.node,
      'setpriv',
      '--reuid',
      '1338',
      '--regid',
      '1338',
      '--clear-groups',
      'curl',
      '-s',
      '-m',
      '2',
      '-o',
      '/dev/null',
      '-w',
      '%{http_code}',
      `http://${serverIP}:8080/public/a`,
    ]).catch((e: { stdout?: string }) => ({ stdout: e.stdout ?? '' }));
    assert.equal(other.stdout.trim(), '000');
    // and the plain port stays reachable from the client at L4
    assert.equal((await fromClient(9090, '/x')).code, 200);
  });

  it('a policy change applies to the next request once rt.sync() resolved (acked by the proxy)', async () => {
    assert.equal((await fromClient(8080, '/public/x')).code, 200);
    // requests keep flowing on other connections while the change is made
    const flowing = Array.from({ length: 10 }, () => fromClient(8080, '/public/x'));
    engine.setPolicy('l7', 'server', serverPolicy(http({ method: 'GET', path: '/public/only' })));
    await rt.sync();
    await Promise.all(flowing);
    const after = await Promise.all(Array.from({ length: 10 }, () => fromClient(8080, '/public/x')));
    assert.deepEqual(
      after.map((r) => r.code),
      Array(10).fill(403),
    );
    assert.equal((await fromClient(8080, '/public/only')).code, 200);
    engine.setPolicy('l7', 'server', serverPolicy(http({ method: 'GET', path: '/public/.*' })));
    await rt.sync();
  });

  it('fail closed: with the proxy killed no redirected connection reaches the server; unrelated ports work; it recovers', async () => {
    const n = hits.length;
    proxy.kill('SIGKILL');
    await new Promise((r) => setTimeout(r, 50));
    // the supervisor waits 300 ms and a new proxy takes a second or more to start (node + tsx):
    // these run while nothing listens on the proxy port
    const codes: number[] = [];
    for (let i = 0; i < 5; i++) codes.push((await fromClient(8080, '/public/a')).code);
    const plain = await fromClient(9090, '/still');
    const redirectedHits = hits.slice(n).filter((h) => h.port === 8080).length;
    assert.equal(proxy.status().acked, -1, 'the checks above ran while the proxy was down');
    assert.deepEqual(codes, [0, 0, 0, 0, 0], 'redirected connections refused (RST)');
    assert.equal(redirectedHits, 0, 'none reached the server');
    assert.equal(plain.code, 200, 'an unrelated port keeps working');
    await proxy.whenReady();
    assert.ok(proxy.status().restarts >= 1);
    const r = await fromClient(8080, '/public/a');
    assert.equal(r.code, 200, 'recovered after the restart');
    assert.equal((await fromClient(8080, '/admin')).code, 403, 'and still judging');
  });

  it('headerMatches with a secret from --secrets: the header must carry the secret’s value', async () => {
    const rule = (name: string) =>
      http({ path: '/s/.*', headerMatches: [{ pos, name: 'x-token', secret: { namespace: 'l7', name } }] });
    engine.setPolicy('l7', 'server', serverPolicy(rule('api-token')));
    await rt.sync();
    const n = hits.length;
    const get = (h: string[]) => curl(clientNs, `http://${serverIP}:8080/s/a`, 'GET', 3, h);
    assert.equal((await get(['X-Token: let-me-in'])).code, 200, 'the secret’s value (newline dropped)');
    assert.equal((await get(['X-Token: guess'])).code, 403, 'another value');
    assert.equal((await get([])).code, 403, 'no header');
    // a secret that is not in the directory never matches, not even an empty header
    engine.setPolicy('l7', 'server', serverPolicy(rule('absent')));
    await rt.sync();
    assert.equal((await get(['X-Token:'])).code, 403, 'missing secret, empty header');
    assert.equal((await get(['X-Token: let-me-in'])).code, 403, 'missing secret');
    assert.deepEqual(
      hits.slice(n).map((h) => `${h.method} ${h.url}`),
      ['GET /s/a'],
    );
    engine.setPolicy('l7', 'server', serverPolicy(http({ method: 'GET', path: '/public/.*' })));
    await rt.sync();
  });

  it('the proxy’s L7 records reach the node’s flow pipeline', {
    skip: withFlows ? undefined : 'needs ulogd2',
  }, async () => {
    const from = rt.flows!.nextSeq;
    await fromClient(8080, '/admin', 'POST');
    let seen: Flow[] = [];
    const deadline = Date.now() + 5_000;
    while (Date.now() < deadline) {
      rt.flows!.drain();
      seen = rt.flows!.since(from).flatMap((e) => (e.event.flow ? [e.event.flow as Flow] : []));
      if (seen.some((f) => f.l7 !== undefined && f.verdict === 'DROPPED')) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    const l7 = seen.find((f) => f.l7 !== undefined && f.verdict === 'DROPPED');
    assert.ok(l7, JSON.stringify(seen).slice(0, 500));
    assert.equal(l7.l7?.http?.method, 'POST');
    assert.equal(l7.source?.identity, clientId);
    // as Hubble decodes Envoy's denials: no drop reason on an L7 record (DROP_REASON_UNKNOWN)
    assert.equal(l7.drop_reason_desc, undefined);
    assert.equal(l7.drop_reason, undefined);
  });

  it('issue 11: the proxied upstream connection is the client pod’s in the records, never the host’s', {
    skip: withFlows ? undefined : 'needs ulogd2',
  }, async () => {
    const ok = await fromClient(8080, '/public/upstream');
    assert.equal(ok.code, 200);
    // from the ring's start: the proxy reuses its upstream connections, made by the rows above
    const from = 0;
    const toServer = (f: Flow) =>
      f.IP?.destination === serverIP &&
      f.l4 !== undefined &&
      'TCP' in f.l4 &&
      f.l4.TCP.destination_port === 8080 &&
      f.is_reply !== true;
    // the proxy's own connection: from the node namespace's ports (topology.ts NODE_PORT_RANGE)
    const upstream = (f: Flow) =>
      toServer(f) && f.l4 !== undefined && 'TCP' in f.l4 && (f.l4.TCP.source_port ?? 0) >= 61000;
    let seen: Flow[] = [];
    const deadline = Date.now() + 5_000;
    while (Date.now() < deadline) {
      rt.flows!.drain();
      seen = rt.flows!.since(from).flatMap((e) => (e.event.flow ? [e.event.flow as Flow] : []));
      if (seen.some(upstream)) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    const up = seen.filter(upstream);
    assert.ok(up.length > 0, JSON.stringify(seen.filter(toServer)).slice(0, 800));
    for (const f of up) {
      assert.equal(f.IP?.source, clientIP, JSON.stringify(f));
      assert.equal(f.source?.identity, clientId, JSON.stringify(f));
    }
    // no host -> server record passed (the node's address was the source before; the row
    // above that tries the proxy's pass from the node namespace is DROPPED)
    assert.deepEqual(
      seen.filter((f) => toServer(f) && f.source?.identity === 1 && f.verdict !== 'DROPPED'),
      [],
    );
  });
});

// Issue 10, live: DNS redirect entries send a pod's queries (UDP and TCP) through the node's DNS
// proxy (a supervised child process in the node namespace), which judges each name, forwards
// allowed ones to the dnsmasq the pod asked (in the kube-dns pod) and holds each answer until the
// kernel allows its addresses for toFQDNs. One node made here (unique names, removed in `after`
// even when a test fails): a client pod, a kube-dns pod running dnsmasq, two test hosts standing
// for outside addresses with echo servers; the real policy engine with a CiliumNetworkPolicy.

import assert from 'node:assert/strict';
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { createInterface } from 'node:readline';
import { after, before, describe, it } from 'node:test';
import { FQDNComponent } from '../../src/agent/fqdn.ts';
import { ProxyComponent } from '../../src/agent/proxy.ts';
import { NodeRuntime, type TestHostSpec } from '../../src/agent/runtime.ts';
import { delNetns, netnsExists } from '../../src/datapath/netns.ts';
import { findUlogdPluginDir } from '../../src/flow/nflog.ts';
import type { Flow } from '../../src/flow/types.ts';
import { defaultEngineFactory } from '../../src/policy/default-engine.ts';
import type { EndpointSpec, PolicyEngineAPI } from '../../src/policy/types.ts';
import { loadPolicyText } from '../../src/policy-api/load.ts';
import {
  type DNSServer,
  dig,
  libcResolve,
  startDNSServer,
  writePodResolvConf,
} from '../../src/testbed/dns-server.ts';
import { liveSkipReason, testNode } from './helpers.ts';

const have = (cmd: string) => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;
const skip =
  liveSkipReason() ??
  (have('dnsmasq') && have('dig') ? undefined : 'needs dnsmasq and dig (scripts/setup-debian.sh)');

const withFlows = findUlogdPluginDir() !== undefined;
const net = 100 + (process.pid % 100);
const CLIENT = `10.${net}.10.1`;
const DNS = `10.${net}.10.2`;
const EXT = `10.${net}.20.1`; // api.example.com: short TTL
const EXT2 = `10.${net}.20.2`; // cache.example.com: long TTL (the restart)
const EXT3 = `10.${net}.20.3`; // other.example.com: the DNS rule allows the name, no toFQDNs

const POLICY = `
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: { name: client-fqdn, namespace: dq }
spec:
  endpointSelector: { matchLabels: { app: client } }
  egress:
  - toEndpoints:
    - matchLabels: { k8s-app: kube-dns }
    toPorts:
    - ports: [{ port: "53", protocol: ANY }]
      rules:
        dns:
        - matchPattern: "*.example.com"
  - toFQDNs:
    - matchName: api.example.com
    - matchName: cache.example.com
    toPorts:
    - ports: [{ port: "8443", protocol: TCP }]
`;

const PODS: EndpointSpec[] = [
  { name: 'client', namespace: 'dq', labels: { app: 'client' }, ip: CLIENT },
  { name: 'coredns', namespace: 'dq', labels: { 'k8s-app': 'kube-dns' }, ip: DNS },
];
const HOSTS: TestHostSpec[] = [EXT, EXT2, EXT3].map((ip) => ({ peer: { kind: 'ip', ip }, ip }));

// Echo server on 8443 (outside hosts) and a client that keeps one connection open and echoes.
const ECHO_SERVER = `
require('node:net').createServer((s) => { s.on('error', () => {}); s.pipe(s); })
  .listen(8443, '0.0.0.0', () => process.stdout.write('listening\\n'));
process.on('SIGTERM', () => process.exit(0));`;
const HOLDER = `
const s = require('node:net').connect(8443, process.argv[1]);
let n = 0;
s.on('connect', () => process.stdout.write('connected\\n'));
s.on('data', (d) => process.stdout.write('echo ' + d.toString().trim() + '\\n'));
s.on('error', (e) => process.stdout.write('error ' + e.code + '\\n'));
s.on('close', () => process.stdout.write('closed\\n'));
require('node:readline').createInterface({ input: process.stdin }).on('line', () => s.write('ping' + (++n) + '\\n'));`;
const CONNECT_ONCE = `
const s = require('node:net').connect(8443, process.argv[1]);
const t = setTimeout(() => { process.stdout.write('timeout'); process.exit(0); }, Number(process.argv[2]));
s.on('connect', () => { process.stdout.write('connected'); clearTimeout(t); s.destroy(); });
s.on('error', (e) => { process.stdout.write('error ' + e.code); clearTimeout(t); });`;
const GARBAGE = `
const d = require('node:dgram').createSocket('udp4');
const bufs = [Buffer.from('not dns at all'), Buffer.from([0x12,0x34,0x01,0x00,0x00,0x01,0,0,0,0,0,0,0xc0,0x0c,0,1,0,1]), Buffer.alloc(3)];
let got = 0;
d.on('message', () => got++);
for (const b of bufs) d.send(b, 53, process.argv[1]);
setTimeout(() => { process.stdout.write(String(got)); process.exit(0); }, 800);`;

function nodeIn(ns: string, code: string, args: string[]): ChildProcess {
  return spawn('ip', ['netns', 'exec', ns, process.execPath, '-e', code, ...args], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
}

function output(c: ChildProcess): Promise<string> {
  return new Promise((resolve) => {
    let out = '';
    c.stdout!.on('data', (d) => (out += d));
    c.once('exit', () => resolve(out));
  });
}

/** A holder's lines, awaited one at a time. */
class Lines {
  private readonly buf: string[] = [];
  private waiter: ((l: string) => void) | undefined;
  constructor(c: ChildProcess) {
    createInterface({ input: c.stdout! }).on('line', (l) => {
      if (this.waiter) {
        const w = this.waiter;
        this.waiter = undefined;
        w(l);
      } else this.buf.push(l);
    });
  }
  next(ms = 3000): Promise<string> {
    const b = this.buf.shift();
    if (b !== undefined) return Promise.resolve(b);
    return new Promise((resolve) => {
      const t = setTimeout(() => {
        this.waiter = undefined;
        resolve('(nothing)');
      }, ms);
      this.waiter = (l) => {
        clearTimeout(t);
        resolve(l);
      };
    });
  }
}

function makeEngine(): PolicyEngineAPI {
  const engine = defaultEngineFactory({});
  engine.upsertNamespace('dq', {});
  const loaded = loadPolicyText('dns-proxy.yaml', POLICY, { lint: false });
  assert.deepEqual(
    loaded.issues.filter((i) => i.severity === 'error'),
    [],
  );
  for (const p of loaded.policies) engine.upsertPolicy(p);
  return engine;
}

describe('the DNS proxy on a live node (issue 10)', { skip, timeout: 240_000 }, () => {
  const node = testNode('dns');
  const logs: string[] = [];
  const log = (l: string) => logs.push(l);
  const children: ChildProcess[] = [];
  let removeResolvConf: (() => void) | undefined;
  let engine: PolicyEngineAPI;
  let fqdn: FQDNComponent;
  let dnsProxy: ProxyComponent;
  let rt: NodeRuntime;
  let server: DNSServer | undefined;
  let clientNs = '';
  const runtimes: NodeRuntime[] = [];

  const components = () => {
    fqdn = new FQDNComponent({ tickMs: 250, log });
    dnsProxy = new ProxyComponent({
      parser: 'dns',
      backoffMs: 1500,
      log,
      onDNSAnswer: (a) => fqdn.learn(a),
    });
    return [fqdn, dnsProxy];
  };

  const startRuntime = async (adopt: boolean) => {
    engine = makeEngine();
    const cs = components();
    rt = new NodeRuntime({
      engine,
      node,
      adopt,
      flows: withFlows ? { pollMs: 20 } : false,
      components: cs,
      log,
    });
    runtimes.push(rt);
    await rt.start({
      pods: PODS,
      hosts: HOSTS,
      beforeUp: () => (cs[0] as FQDNComponent).restore(engine, rt.runDir, rt.datapath),
    });
  };

  before(async () => {
    await startRuntime(false);
    clientNs = rt.datapath.live({ kind: 'endpoint', namespace: 'dq', name: 'client' })!.ns;
    const dnsNs = rt.datapath.live({ kind: 'endpoint', namespace: 'dq', name: 'coredns' })!.ns;
    server = await startDNSServer(dnsNs, DNS, [
      { name: 'api.example.com', ips: [EXT], ttl: 2 },
      { name: 'www.example.com', cname: 'api.example.com', ttl: 2 },
      { name: 'cache.example.com', ips: [EXT2], ttl: 300 },
      { name: 'other.example.com', ips: [EXT3], ttl: 300 },
      { name: 'evil.test', ips: [EXT3], ttl: 300 },
    ]);
    for (const ip of HOSTS.map((h) => h.ip)) {
      const ns = rt.datapath.live({ kind: 'ip', ip })!.ns;
      const c = nodeIn(ns, ECHO_SERVER, []);
      children.push(c);
      await new Lines(c).next(10_000);
    }
    removeResolvConf = writePodResolvConf(clientNs, DNS);
  });

  after(async () => {
    for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
    await server?.stop().catch(() => {});
    removeResolvConf?.();
    for (const r of runtimes.reverse()) await r.stop().catch(() => {});
    for (const h of rt.datapath.topo.records) await delNetns(h.ns);
    if (netnsExists(node)) await delNetns(node);
  });

  const connectOnce = async (ip: string, ms = 1500) =>
    output(nodeIn(clientNs, CONNECT_ONCE, [ip, String(ms)]));

  it('an answer opens egress: refused before, the first connection right after the answer passes', async () => {
    assert.equal(await connectOnce(EXT, 700), 'timeout', 'no answer yet: toFQDNs selects nothing');
    const r = await dig(clientNs, DNS, 'api.example.com');
    assert.equal(r.status, 'NOERROR', JSON.stringify({ r, logs: logs.slice(-10) }));
    assert.deepEqual(r.answers, [EXT]);
    // no wait, no retry: the kernel allowed the address before the answer was released
    assert.equal(await connectOnce(EXT), 'connected');
    const st = fqdn.status();
    assert.ok(st.applied >= 1, JSON.stringify(st));
    process.stdout.write(
      `# answer-to-allowed: ${JSON.stringify(st.answerToAllowedMs)}, nft delta ${JSON.stringify(st.kernelDeltaMs)}\n`,
    );
  });

  it('allowed queries over UDP and TCP, and from the pod’s libc resolver; CNAMEs collapse onto the name', async () => {
    const udp = await dig(clientNs, DNS, 'cache.example.com');
    assert.equal(udp.status, 'NOERROR');
    assert.deepEqual(udp.answers, [EXT2]);
    const tcp = await dig(clientNs, DNS, 'cache.example.com', { tcp: true });
    assert.equal(tcp.status, 'NOERROR', JSON.stringify({ tcp, logs: logs.slice(-10) }));
    assert.deepEqual(tcp.answers, [EXT2]);
    assert.deepEqual(await libcResolve(clientNs, 'cache.example.com'), [EXT2]);
    const cname = await dig(clientNs, DNS, 'www.example.com');
    assert.equal(cname.status, 'NOERROR');
    assert.ok(cname.answers.includes(EXT), JSON.stringify(cname));
    // the DNS rule allows other.example.com, but no toFQDNs selects it: egress stays closed
    assert.equal((await dig(clientNs, DNS, 'other.example.com')).status, 'NOERROR');
    assert.equal(await connectOnce(EXT3, 700), 'timeout');
  });

  it('records: DNS L7 records and hubble_dns_* metrics; the connection to the learnt address carries destination_names', {
    skip: withFlows ? undefined : 'ulogd2 not installed',
  }, async () => {
    const p = rt.flows!;
    const seq = p.nextSeq;
    assert.equal((await dig(clientNs, DNS, 'api.example.com')).status, 'NOERROR');
    assert.equal((await dig(clientNs, DNS, 'evil.test')).status, 'REFUSED');
    assert.equal(await connectOnce(EXT), 'connected');
    const toExt = (f: Flow) =>
      f.IP?.destination === EXT && f.l7 === undefined && f.traffic_direction === 'EGRESS';
    const entries = await p.waitFor(seq, (es) => es.some((e) => toExt(e.event.flow)), 5000);
    const flows = entries.map((e) => e.event.flow);
    const dns = flows.filter((f) => f.l7?.dns !== undefined);
    assert.ok(
      dns.some((f) => f.l7?.type === 'RESPONSE' && (f.l7.dns as { ips?: string[] }).ips?.includes(EXT)),
      JSON.stringify(dns),
    );
    assert.ok(
      dns.some(
        (f) =>
          f.verdict === 'DROPPED' && (f.l7?.dns as { query?: string } | undefined)?.query === 'evil.test.',
      ),
    );
    // every name the cache has for the address (a CNAME's name too), on the verdict and the traces
    for (const f of flows.filter(toExt)) {
      assert.ok(f.destination_names?.includes('api.example.com'), JSON.stringify(f));
    }
    const text = await p.metrics.text();
    for (const line of [
      'hubble_dns_queries_total{rcode="",qtypes="A",ips_returned="0"}',
      'hubble_dns_queries_total{rcode="Policy denied",qtypes="A",ips_returned="0"}',
      'hubble_dns_responses_total{rcode="No Error",qtypes="A",ips_returned="1"}',
      'hubble_dns_response_types_total{type="A",qtypes="A"}',
      'hubble_policy_verdicts_total{direction="egress",match="l7/dns",action="forwarded"}',
      'hubble_policy_verdicts_total{direction="egress",match="l7/dns",action="dropped"}',
    ])
      assert.ok(text.includes(line), `${line} missing`);
  });

  it('refused queries over UDP and TCP never reach the server', async () => {
    const before = server!.queries.length;
    assert.equal((await dig(clientNs, DNS, 'evil.test')).status, 'REFUSED');
    assert.equal((await dig(clientNs, DNS, 'evil.test', { tcp: true })).status, 'REFUSED');
    assert.equal((await dig(clientNs, DNS, 'EVIL.test.')).status, 'REFUSED');
    assert.deepEqual(await libcResolve(clientNs, 'evil.test'), []);
    assert.deepEqual(server!.queries.slice(before), []);
  });

  it('malformed packets are dropped: nothing reaches the server, no answer, the proxy lives on', async () => {
    const before = server!.queries.length;
    const restarts = dnsProxy.status().restarts;
    assert.equal(await output(nodeIn(clientNs, GARBAGE, [DNS])), '0');
    assert.deepEqual(server!.queries.slice(before), []);
    assert.equal(dnsProxy.status().running, true);
    assert.equal(dnsProxy.status().restarts, restarts);
    assert.equal((await dig(clientNs, DNS, 'cache.example.com')).status, 'NOERROR');
  });

  it('TTL expiry closes egress for new connections; an established one survives (zombie)', async () => {
    const r = await dig(clientNs, DNS, 'api.example.com');
    assert.equal(r.status, 'NOERROR');
    const holder = nodeIn(clientNs, HOLDER, [EXT]);
    children.push(holder);
    const lines = new Lines(holder);
    assert.equal(await lines.next(), 'connected');
    holder.stdin!.write('x\n');
    assert.equal(await lines.next(), 'echo ping1');
    // TTL 2 s, tick 250 ms: well past expiry
    await new Promise((res) => setTimeout(res, 4000));
    assert.equal(await connectOnce(EXT, 700), 'timeout', 'a new connection is refused after expiry');
    holder.stdin!.write('x\n');
    assert.equal(
      await lines.next(),
      'echo ping2',
      JSON.stringify({ st: fqdn.status(), logs: logs.slice(-8) }),
    );
    assert.ok(fqdn.status().zombieConnections >= 1, JSON.stringify(fqdn.status()));
    holder.kill('SIGKILL');
  });

  it('the proxy killed: queries fail closed (none reaches the server) until it is back', async () => {
    const before = server!.queries.length;
    const exited = new Promise<void>((res) => {
      const t = setInterval(() => {
        if (!dnsProxy.status().running) {
          clearInterval(t);
          res();
        }
      }, 10);
    });
    dnsProxy.kill();
    await exited;
    // both at once, well inside the restart backoff
    const [udp, tcp] = await Promise.all([
      dig(clientNs, DNS, 'cache.example.com', { timeoutS: 1 }),
      dig(clientNs, DNS, 'cache.example.com', { timeoutS: 1, tcp: true }),
    ]);
    assert.equal(udp.noAnswer, true, JSON.stringify(udp));
    assert.equal(tcp.noAnswer, true, JSON.stringify(tcp));
    assert.deepEqual(server!.queries.slice(before), [], 'no query leaked to dnsmasq');
    await dnsProxy.whenReady();
    assert.equal((await dig(clientNs, DNS, 'cache.example.com')).status, 'NOERROR');
  });

  it('an agent restart keeps the cache: established and new egress to a learnt address survive', async () => {
    assert.equal((await dig(clientNs, DNS, 'cache.example.com')).status, 'NOERROR');
    const holder = nodeIn(clientNs, HOLDER, [EXT2]);
    children.push(holder);
    const lines = new Lines(holder);
    assert.equal(await lines.next(), 'connected');
    // the "crash": processes go, the namespaces and the table stay
    const old = rt;
    await dnsProxy.stop();
    await fqdn.stop();
    await old.flows?.stop();
    old.datapath.nft.close();
    runtimes.splice(runtimes.indexOf(old), 1);
    const queries = server!.queries.length;
    await startRuntime(true);
    assert.ok(fqdn.status().restored >= 1, JSON.stringify({ st: fqdn.status(), logs: logs.slice(-8) }));
    holder.stdin!.write('x\n');
    assert.equal(await lines.next(), 'echo ping1', 'the established connection outlived the restart');
    assert.equal(await connectOnce(EXT2), 'connected', 'a new connection needs no new answer');
    assert.equal(server!.queries.length, queries, 'no DNS query was needed');
    holder.kill('SIGKILL');
  });
});

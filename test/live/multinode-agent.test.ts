// Two `seawall agent --kvstore` processes, one per node, on a private etcd and one underlay: each
// enforces its own endpoints (node: in the endpoints file), and node2's agent SIGKILLed and
// started again keeps enforcing (its table stays, then is replaced in one transaction), node1
// keeps node2's endpoints throughout, and the restarted agent adopts its keys (still there after
// the old lease's TTL). A denied cross-node flow probed all along never connects.

import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type AgentStatus, fetchStatus } from '../../src/agent/agent.ts';
import { cleanup } from '../../src/datapath/cleanup.ts';
import { run } from '../../src/datapath/exec.ts';
import { Topology } from '../../src/datapath/topology.ts';
import { Underlay } from '../../src/datapath/underlay.ts';
import { KvstoreClient } from '../../src/kvstore/client.ts';
import { readStore } from '../../src/kvstore/read.ts';
import { etcdBinary, startEtcd, type TestEtcd } from '../../src/kvstore/testing/etcd.ts';
import { liveSkipReason, testNode } from './helpers.ts';

const skip = liveSkipReason() ?? (etcdBinary() === undefined ? 'needs etcd (etcd-server)' : undefined);
const REPO = join(import.meta.dirname, '..', '..');
const SERVER = '10.64.2.20';

const POLICY = `apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: server-in, namespace: ma}
spec:
  endpointSelector: {matchLabels: {app: server}}
  ingress:
  - fromEndpoints: [{matchLabels: {app: client}}]
    toPorts: [{ports: [{port: "8080", protocol: TCP}]}]
`;

const ENDPOINTS = `apiVersion: seawall/v1
kind: PolicyTest
metadata: {name: two-nodes}
spec:
  endpoints:
    - {name: client, namespace: ma, labels: {app: client}, ip: 10.64.1.10, node: node-1}
    - {name: intruder, namespace: ma, labels: {app: intruder}, ip: 10.64.1.11, node: node-1}
    - {name: server, namespace: ma, labels: {app: server}, ip: ${SERVER}, node: node-2}
  flows: []
`;

async function connect(ns: string, port: number): Promise<boolean> {
  const r = await run('ip', [
    'netns',
    'exec',
    ns,
    'timeout',
    '0.5',
    'bash',
    '-c',
    `exec 3<>/dev/tcp/${SERVER}/${port}`,
  ]);
  return r.code === 0;
}

describe('seawall agent --kvstore: two agents, one SIGKILLed and restarted', { skip }, () => {
  let etcd: TestEtcd;
  const dir = mkdtempSync(join(tmpdir(), 'seawall-mn-agent-'));
  const nodes = [testNode('ma'), testNode('ma')] as const;
  const underlay = `sw-ul-${process.pid}-ma`;
  const agents = new Map<string, ChildProcess>();
  const logs = new Map<string, string[]>();
  let server: ChildProcess | undefined;

  const sock = (node: string): string => join(dir, `${node}.sock`);
  function startAgent(i: 0 | 1): ChildProcess {
    const node = nodes[i];
    const child = spawn(
      process.execPath,
      [
        join(REPO, 'bin', 'seawall.js'),
        'agent',
        ...['--node', node, '--socket', sock(node), '--no-flows'],
        ...['--kvstore', etcd.endpoint, '--node-index', String(i + 1), '--underlay', underlay],
        ...['--pod-cidr', `10.64.${i + 1}.0/24`, '--k8s-node', `node-${i + 1}`, '--lease-ttl', '3'],
        ...['--policies', join(dir, 'policies'), '--endpoints', join(dir, 'endpoints.yaml')],
      ],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    const l = logs.get(node) ?? [];
    logs.set(node, l);
    child.stderr!.on('data', (d: Buffer) => l.push(d.toString()));
    agents.set(node, child);
    return child;
  }
  async function ready(node: string, check: (s: AgentStatus) => boolean): Promise<AgentStatus> {
    const end = Date.now() + 60_000;
    let last: AgentStatus | undefined;
    while (Date.now() < end) {
      try {
        last = await fetchStatus(sock(node));
        if (last.phase === 'enforcing' && check(last)) return last;
      } catch {
        // not serving yet
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.fail(
      `${node} not ready: ${JSON.stringify(last?.kvstore)} ${[...logs].map(([n, l]) => `${n}: ${l.join('')}`).join('\n')}`,
    );
  }
  const podNs = (i: 0 | 1, pod: string): string => new Topology({ node: nodes[i] }).nsName(`pod:ma/${pod}`);

  before(async () => {
    etcd = await startEtcd();
    mkdirSync(join(dir, 'policies'));
    writeFileSync(join(dir, 'policies', 'server.yaml'), POLICY);
    writeFileSync(join(dir, 'endpoints.yaml'), ENDPOINTS);
    startAgent(0);
    startAgent(1);
    for (const n of nodes) await ready(n, (s) => s.kvstore?.nodes === 2 && s.kvstore.remoteEndpoints >= 1);
    // the status API answers while the agent still loads: wait for the pods' namespaces too
    const pods = [podNs(0, 'client'), podNs(0, 'intruder'), podNs(1, 'server')];
    for (let i = 0; i < 600 && !pods.every((ns) => existsSync(`/run/netns/${ns}`)); i++)
      await new Promise((r) => setTimeout(r, 100));
    // a TCP server in the server pod (node2)
    server = spawn('ip', [
      'netns',
      'exec',
      podNs(1, 'server'),
      process.execPath,
      '-e',
      'require("net").createServer(s=>s.end()).listen(8080)',
    ]);
    // listening once node2's own host (allowed to its pods, as in Cilium) connects
    for (let i = 0; i < 100 && !(await connect(nodes[1], 8080)); i++)
      await new Promise((r) => setTimeout(r, 100));
  });
  after(async () => {
    server?.kill('SIGKILL');
    for (const c of agents.values()) if (c.exitCode === null && c.signalCode === null) c.kill('SIGTERM');
    await Promise.all(
      [...agents.values()].map(
        (c) =>
          new Promise((r) => (c.exitCode !== null || c.signalCode !== null ? r(null) : c.once('exit', r))),
      ),
    );
    for (const n of nodes) await cleanup({ node: n }).catch(() => {});
    await new Underlay(underlay).down().catch(() => {});
    await etcd?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('each agent enforces its own endpoints; cross-node flows by identity', async () => {
    for (const n of nodes) {
      const a = agents.get(n)!;
      assert.ok(
        a.exitCode === null && a.signalCode === null,
        `${n}'s agent exited: ${logs.get(n)?.join('')}`,
      );
    }
    const s1 = await fetchStatus(sock(nodes[0]));
    assert.deepEqual(s1.endpoints.map((e) => e.endpoint).sort(), ['ma/client', 'ma/intruder']);
    const s2 = await fetchStatus(sock(nodes[1]));
    assert.deepEqual(
      s2.endpoints.map((e) => e.endpoint),
      ['ma/server'],
    );
    assert.ok(
      await connect(podNs(0, 'client'), 8080),
      `client → server\n${logs.get(nodes[0])?.join('')}\n${logs.get(nodes[1])?.join('')}`,
    );
    assert.equal(await connect(podNs(0, 'intruder'), 8080), false, 'intruder → server denied');
  });

  it('node2 SIGKILLed and restarted: enforcement never lapses, its keys are adopted', async () => {
    let running = true;
    const counts = { leaked: 0, denied: 0, allowed: 0, allowedFailed: 0 };
    const probe = (async () => {
      while (running) {
        if (await connect(podNs(0, 'intruder'), 8080)) counts.leaked++;
        else counts.denied++;
        if (await connect(podNs(0, 'client'), 8080)) counts.allowed++;
        else counts.allowedFailed++;
      }
    })();
    // the probe stops however this test ends: a failed assertion must not leave it looping
    try {
      await new Promise((r) => setTimeout(r, 500));
      const a2 = agents.get(nodes[1])!;
      assert.ok(
        a2.exitCode === null && a2.signalCode === null,
        `node2's agent exited: ${logs.get(nodes[1])?.join('')}`,
      );
      const gone = new Promise((r) => a2.once('exit', r));
      a2.kill('SIGKILL');
      await gone;
      await new Promise((r) => setTimeout(r, 1000));
      const s1 = await fetchStatus(sock(nodes[0]));
      assert.ok(
        s1.kvstore!.remoteEndpoints >= 1,
        "node1 keeps the dead agent's endpoints until its lease expires",
      );
      startAgent(1);
      await ready(nodes[1], (s) => s.kvstore?.nodes === 2 && s.endpoints.length === 1);
      // past the old lease's TTL (3 s): the keys live on the new lease
      await new Promise((r) => setTimeout(r, 5000));
    } finally {
      running = false;
      await probe;
    }
    const c = new KvstoreClient(etcd.endpoint);
    const view = await readStore(c);
    await c.close();
    assert.ok(
      view.ipcache.some((e) => e.ip === SERVER),
      `server's key adopted: ${JSON.stringify(view.ipcache)}`,
    );
    assert.ok(
      view.nodes.some((n) => n.name === nodes[1]),
      'node2 record adopted',
    );
    assert.equal(counts.leaked, 0, `leaked connections: ${JSON.stringify(counts)}`);
    assert.ok(counts.denied > 10, `probed throughout: ${JSON.stringify(counts)}`);
    assert.ok(counts.allowed > 0, `the allowed flow connected: ${JSON.stringify(counts)}`);
    assert.ok(await connect(podNs(0, 'client'), 8080), 'client → server after the restart');
  });
});

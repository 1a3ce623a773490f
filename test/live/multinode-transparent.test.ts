// Issue 11: egress L7 at the source's node into a pod on another node that enforces ingress. The
// source node's HTTP proxy forwards from the pod's own address (IP_TRANSPARENT, as Cilium's proxy
// keeps the original source), so the destination's node judges the pod's identity: an ingress that
// admits the client passes, one that admits only remote-node (what node-1's address is to node-2)
// does not. The server sees the pod's address; the proxy runs as its uid with CAP_NET_RAW alone;
// the return path (fwmark rule, table 2004) is in the node namespaces only and goes with them.

import assert from 'node:assert/strict';
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { after, before, describe, it } from 'node:test';
import { ProxyComponent } from '../../src/agent/proxy.ts';
import { netnsExists } from '../../src/datapath/netns.ts';
import { etcdBinary } from '../../src/kvstore/testing/etcd.ts';
import { loadPolicyText } from '../../src/policy-api/load.ts';
import { stopChildren } from '../../src/testbed/children.ts';
import { LiveCluster } from '../../src/testbed/cluster.ts';
import { liveSkipReason, testNode } from './helpers.ts';

const skip = liveSkipReason() ?? (etcdBinary() === undefined ? 'needs etcd (etcd-server)' : undefined);

const POLICY = `
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: client-l7, namespace: tp}
spec:
  endpointSelector: {matchLabels: {app: client}}
  egress:
  - toEndpoints: [{matchLabels: {tier: backend}}]
    toPorts:
    - ports: [{port: "8080", protocol: TCP}]
      rules: {http: [{method: GET, path: /who}]}
---
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: server-in, namespace: tp}
spec:
  endpointSelector: {matchLabels: {app: server}}
  ingress:
  - fromEndpoints: [{matchLabels: {app: client}}]
    toPorts: [{ports: [{port: "8080", protocol: TCP}]}]
---
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: nodes-only-in, namespace: tp}
spec:
  endpointSelector: {matchLabels: {app: nodes-only}}
  ingress:
  - fromEntities: [remote-node]
    toPorts: [{ports: [{port: "8080", protocol: TCP}]}]
`;

// answers with the address the connection came from
const WHO_SERVER = `
require('node:http').createServer((req, res) => { req.resume(); res.end(req.socket.remoteAddress); })
  .listen(8080, '0.0.0.0', () => process.stdout.write('ready\\n'));
process.on('SIGTERM', () => process.exit(0));
`;

function startWho(ns: string): Promise<ChildProcess> {
  const c = spawn('ip', ['netns', 'exec', ns, process.execPath, '-e', WHO_SERVER], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`server in ${ns} did not start`)), 15_000);
    createInterface({ input: c.stdout! }).once('line', () => {
      clearTimeout(t);
      resolve(c);
    });
  });
}

/** curl from `ns`: status and body (status 0: no HTTP answer). */
function curl(ns: string, url: string): { status: number; body: string } {
  try {
    const out = execFileSync(
      'ip',
      ['netns', 'exec', ns, 'curl', '-s', '-m', '4', '-w', '\n%{http_code}', url],
      { encoding: 'utf8' },
    );
    const i = out.lastIndexOf('\n');
    return { status: Number(out.slice(i + 1)) || 0, body: out.slice(0, i) };
  } catch (e) {
    const out = String((e as { stdout?: unknown }).stdout ?? '');
    return { status: Number(out.slice(out.lastIndexOf('\n') + 1)) || 0, body: '' };
  }
}

describe('egress L7 into an ingress-enforcing pod on another node (transparent proxy)', { skip }, () => {
  let cluster: LiveCluster;
  const servers: ChildProcess[] = [];
  const n1 = testNode('tp');
  const n2 = testNode('tp');
  const proxy1 = new ProxyComponent({ parser: 'http' });
  before(async () => {
    cluster = await LiveCluster.start({
      nodes: [
        {
          name: n1,
          pods: [{ name: 'client', namespace: 'tp', labels: { app: 'client' }, ip: '10.63.1.10' }],
          podCIDRs: ['10.63.1.0/24'],
          components: [proxy1],
        },
        {
          name: n2,
          pods: [
            { name: 'server', namespace: 'tp', labels: { app: 'server', tier: 'backend' }, ip: '10.63.2.20' },
            {
              name: 'nodes-only',
              namespace: 'tp',
              labels: { app: 'nodes-only', tier: 'backend' },
              ip: '10.63.2.21',
            },
          ],
          podCIDRs: ['10.63.2.0/24'],
          components: [new ProxyComponent({ parser: 'http' })],
        },
      ],
      policies: loadPolicyText('policy.yaml', POLICY).policies,
      namespaces: new Map([['tp', {}]]),
    });
    await cluster.settle();
    for (const pod of ['server', 'nodes-only']) servers.push(await startWho(nsOf(n2, pod)));
  });
  after(async () => {
    await stopChildren(servers.splice(0));
    await cluster?.stop().catch(() => {}); // the last row stopped it already when it ran
  });

  const nsOf = (node: string, pod: string): string =>
    cluster.node(node).rt.datapath.live({ kind: 'endpoint', namespace: 'tp', name: pod })!.ns;

  it('node-2 judges the pod: its ingress admits the client, and one for remote-node only does not', () => {
    const client = nsOf(n1, 'client');
    const rows: Array<{ name: string; url: string; status: number[]; body?: string }> = [
      // the server saw the pod's address, not node-1's (the proxy kept the original source)
      { name: 'allowed both sides', url: 'http://10.63.2.20:8080/who', status: [200], body: '10.63.1.10' },
      {
        name: 'egress L7 denies the path (node-1 proxy)',
        url: 'http://10.63.2.20:8080/other',
        status: [403],
      },
      // from node-1's address (remote-node) this one passed before: it must not now
      { name: 'ingress for remote-node only', url: 'http://10.63.2.21:8080/who', status: [503, 0] },
    ];
    for (const r of rows) {
      const got = curl(client, r.url);
      assert.ok(r.status.includes(got.status), `${r.name}: HTTP ${got.status} ${got.body}`);
      if (r.body !== undefined) assert.equal(got.body.replace(/^::ffff:/, ''), r.body, r.name);
    }
  });

  it('the proxy runs as its uid with CAP_NET_RAW and nothing else', () => {
    const pid = proxy1.pid;
    assert.ok(pid !== undefined, 'the HTTP proxy runs');
    const st = readFileSync(`/proc/${pid}/status`, 'utf8');
    assert.match(st, /^Uid:\s+1337\s+1337\s+1337\s+1337$/m);
    // the JS thread (the main task) has CAP_NET_RAW (bit 13) alone
    assert.match(st, /^CapEff:\s+0000000000002000$/m);
    assert.match(st, /^CapPrm:\s+0000000000002000$/m);
  });

  it("the return path is in the node namespaces, not the machine's, and goes with them", async () => {
    for (const n of [n1, n2]) {
      const rules = execFileSync('ip', ['-n', n, 'rule', 'show'], { encoding: 'utf8' });
      assert.match(rules, /^9:\s+from all fwmark 0x200\/0xf00 lookup 2004/m, n);
      const routes = execFileSync('ip', ['-n', n, 'route', 'show', 'table', '2004'], { encoding: 'utf8' });
      assert.match(routes, /^local default dev lo/m, n);
    }
    const root = execFileSync('ip', ['rule', 'show'], { encoding: 'utf8' });
    assert.doesNotMatch(root, /lookup 2004/);
    await stopChildren(servers.splice(0));
    await cluster.stop();
    assert.equal(netnsExists(n1), false);
    assert.equal(netnsExists(n2), false);
  });
});

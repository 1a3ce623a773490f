// `seawall agent` as a process: enforces a policy directory, reloads on change, keeps the last
// good state when a file turns invalid, serves status, and keeps enforcing after SIGKILL.

import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { cpSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fetchStatus } from '../../src/agent/agent.ts';
import { cleanup } from '../../src/datapath/cleanup.ts';
import { delNetns } from '../../src/datapath/netns.ts';
import { runDirFor, stateFileFor, Topology } from '../../src/datapath/topology.ts';
import { stopStaleUlogd } from '../../src/datapath/ulogd.ts';
import { ProbePool } from '../../src/testbed/probe.ts';
import { liveSkipReason, testNode } from './helpers.ts';

const skip = liveSkipReason();
const REPO = join(import.meta.dirname, '..', '..');

function waitFor(check: () => Promise<boolean>, ms: number): Promise<boolean> {
  const until = Date.now() + ms;
  return (async () => {
    while (Date.now() < until) {
      if (await check().catch(() => false)) return true;
      await new Promise((r) => setTimeout(r, 100));
    }
    return false;
  })();
}

describe('seawall agent', { skip }, () => {
  const node = testNode('ag');
  const dir = mkdtempSync(join(tmpdir(), 'seawall-agent-'));
  const socket = join(dir, 'agent.sock');
  const policies = join(dir, 'policies');
  const topo = new Topology({ node });
  const clientNs = topo.nsName('pod:shop/client');
  const ledgerNs = topo.nsName('pod:shop/ledger');
  const probes = new ProbePool();
  let agent: ChildProcess | undefined;

  const startAgent = (): ChildProcess =>
    spawn(
      process.execPath,
      [
        join(REPO, 'bin', 'seawall.js'),
        'agent',
        '--policies',
        policies,
        '--endpoints',
        join(import.meta.dirname, 'testdata', 'agent', 'endpoints.yaml'),
        '--node',
        node,
        '--socket',
        socket,
      ],
      { stdio: ['ignore', 'inherit', 'inherit'] },
    );
  const tcp = async (port: number): Promise<boolean> =>
    (await probes.get(clientNs).connect('tcp', '10.0.7.20', port, 300)).passed;

  before(async () => {
    cpSync(join(import.meta.dirname, 'testdata', 'agent', 'policies'), policies, { recursive: true });
    agent = startAgent();
    assert.ok(
      await waitFor(async () => (await fetchStatus(socket)).counts.endpoints === 2, 20000),
      'agent up',
    );
    await probes.get(ledgerNs).listen('tcp', 8080);
    await probes.get(ledgerNs).listen('tcp', 9090);
  });

  after(async () => {
    probes.closeAll();
    agent?.kill('SIGKILL');
    // whatever happened, nothing of ours stays
    // a SIGKILLed agent leaves its ulogd in the node namespace
    stopStaleUlogd(runDirFor(node));
    for (const ns of [clientNs, ledgerNs, node]) await delNetns(ns);
    rmSync(stateFileFor(node), { force: true });
    rmSync(runDirFor(node), { recursive: true, force: true });
    rmSync(dir, { recursive: true, force: true });
  });

  it('enforces the policy directory and reports status', async () => {
    assert.equal(await tcp(8080), true);
    assert.equal(await tcp(9090), false);
    const s = await fetchStatus(socket);
    assert.deepEqual(s.policies, ['CiliumNetworkPolicy/shop/ledger-from-client']);
    const ledger = s.endpoints.find((e) => e.endpoint === 'shop/ledger');
    assert.equal(ledger?.ingress, 'default deny');
  });

  it('re-applies on change; an invalid file keeps the last good state', async () => {
    const file = join(policies, 'ledger.yaml');
    writeFileSync(
      file,
      `apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: ledger-from-client, namespace: shop}
spec:
  endpointSelector: {matchLabels: {app: ledger}}
  ingress:
    - fromEndpoints: [{matchLabels: {app: client}}]
      toPorts: [{ports: [{port: "9090", protocol: TCP}]}]
`,
    );
    assert.ok(
      await waitFor(async () => (await tcp(9090)) && !(await tcp(8080)), 5000),
      'new policy enforced',
    );
    writeFileSync(
      file,
      'apiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\nmetadata: {name: x}\nspec: {bogus: 1}\n',
    );
    assert.ok(
      await waitFor(async () => (await fetchStatus(socket)).invalidFiles.length === 1, 5000),
      'invalid file reported',
    );
    assert.equal(await tcp(9090), true, 'last good state stays');
    assert.equal(await tcp(8080), false);
  });

  it('keeps enforcing after SIGKILL; a restart adopts without an allow-all window', async () => {
    const a = agent;
    assert.ok(a && a.exitCode === null, 'agent running');
    a.kill('SIGKILL');
    await new Promise((r) => a.once('exit', r));
    assert.equal(await tcp(9090), true, 'allowed stays allowed');
    assert.equal(await tcp(8080), false, 'denied stays denied');
    // --cleanup leaves a live run alone but removes a dead one's namespaces; here we restart instead
    agent = startAgent();
    let leaked = false;
    const ok = await waitFor(async () => {
      if (await tcp(8080)) leaked = true;
      return (await fetchStatus(socket)).counts.endpoints === 2;
    }, 20000);
    assert.ok(ok, 'restarted');
    assert.equal(leaked, false, 'no allow-all window during restart');
    assert.equal(await tcp(8080), false);
  });

  it('clean exit removes what it made; --cleanup removes a crashed run', async () => {
    const a = agent;
    assert.ok(a && a.exitCode === null, 'agent running');
    a.kill('SIGTERM');
    await new Promise((r) => a.once('exit', r));
    agent = undefined;
    assert.equal(topo.records.length, 0);
    const { netnsExists } = await import('../../src/datapath/netns.ts');
    assert.equal(netnsExists(node), false, 'node namespace gone');
    assert.equal(netnsExists(ledgerNs), false, 'pod namespace gone');
    // only this test's node: other runs on the machine (crashed or not) are not ours to remove
    const r = await cleanup({ node });
    assert.ok(!r.removed.includes(node));
  });
});

// Issue 15, live: an agent loading a directory of 10,000 policy files keeps answering `status`
// while it loads, with the load's progress in the answer; once up, one edited file is applied
// without the other 9,999 being read or upserted again. An agent in this process (flows off).

import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { after, describe, it } from 'node:test';
import { Agent, type AgentStatus, fetchStatus } from '../../src/agent/agent.ts';
import { delNetns, netnsExists } from '../../src/datapath/netns.ts';
import { runDirFor, stateFileFor, Topology } from '../../src/datapath/topology.ts';
import { liveSkipReason, testNode } from './helpers.ts';

const skip = liveSkipReason();
const FILES = 10_000;

function policy(i: number, port: number): string {
  return `apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata:
  name: p-${i}
  namespace: shop
spec:
  endpointSelector:
    matchLabels:
      app: ledger
  ingress:
    - fromEndpoints:
        - matchLabels:
            app: client
      toPorts:
        - ports:
            - port: "${port}"
              protocol: TCP
`;
}

describe('agent with 10,000 policy files (issue 15)', { skip }, () => {
  const node = testNode('ld');
  const dir = mkdtempSync(join(tmpdir(), 'seawall-agent-load-'));
  const socket = join(dir, 'agent.sock');
  const policies = join(dir, 'policies');
  const topo = new Topology({ node });
  const logs: string[] = [];
  let agent: Agent | undefined;

  after(async () => {
    await agent?.stop();
    for (const ns of [topo.nsName('pod:shop/client'), topo.nsName('pod:shop/ledger'), node])
      if (netnsExists(ns)) await delNetns(ns);
    rmSync(stateFileFor(node), { force: true });
    rmSync(runDirFor(node), { recursive: true, force: true });
    rmSync(dir, { recursive: true, force: true });
  });

  it('answers status during the load, with progress; an edit is applied alone', {
    timeout: 600_000,
  }, async () => {
    mkdirSync(policies);
    const old = new Date(Date.now() - 3_600_000);
    for (let i = 0; i < FILES; i++) {
      const f = join(policies, `p${i}.yaml`);
      writeFileSync(f, policy(i, 1000 + (i % 50)));
      utimesSync(f, old, old);
    }
    agent = new Agent({
      policies,
      endpoints: join(import.meta.dirname, 'testdata', 'agent', 'endpoints.yaml'),
      node,
      socket,
      flows: false,
      debounceMs: 100,
      resyncMs: 0,
      log: (l) => logs.push(l),
    });
    const t0 = performance.now();
    let up = false;
    const started = agent.start().then(() => {
      up = true;
    });
    const answers: Array<{ ms: number; loading?: AgentStatus['loading'] }> = [];
    let refused = 0;
    while (!up) {
      const q = performance.now();
      try {
        const s = await fetchStatus(socket);
        answers.push({ ms: performance.now() - q, ...(s.loading ? { loading: s.loading } : {}) });
      } catch {
        refused++; // before the socket is served (endpoints being read)
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    await started;
    const startupMs = performance.now() - t0;
    const during = answers.filter((a) => a.loading !== undefined);
    const worst = Math.max(...answers.map((a) => a.ms));
    console.log(
      `startup with ${FILES} files: ${startupMs.toFixed(0)} ms; ${answers.length} status answers (${during.length} with progress, slowest ${worst.toFixed(0)} ms), ${refused} refused before serving`,
    );
    assert.ok(during.length > 0, 'status answered while the files were loading');
    assert.ok(
      during.every((a) => a.loading!.files === FILES && a.loading!.done <= FILES),
      'progress counts the files',
    );
    // slices of 20 ms; the bound has headroom for a loaded machine
    assert.ok(worst < 3000, `slowest status answer ${worst.toFixed(0)} ms`);

    const before = await fetchStatus(socket);
    assert.equal(before.policies.length, FILES);
    writeFileSync(join(policies, 'p7.yaml'), policy(7, 4242));
    const te = performance.now();
    let applied = false;
    while (!applied && performance.now() - te < 60_000) {
      await new Promise((r) => setTimeout(r, 20));
      applied = (await fetchStatus(socket)).applies > before.applies;
    }
    const editMs = performance.now() - te;
    console.log(
      `one file edited → applied: ${editMs.toFixed(0)} ms (debounce 50 ms + settle 100 ms included)`,
    );
    assert.ok(applied, 'the edit was applied');
  });
});

// `seawall test --live` stopped by a signal: the node in use is torn down (namespaces, ulogd, run
// dir), the runner returns, and the CLI (the one place that exits) sets the shell's code for the
// signal: 130 SIGINT, 143 SIGTERM. The testbed itself never calls process.exit.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { delNetns, netnsExists } from '../../src/datapath/netns.ts';
import { runDirFor, stateFileFor, Topology } from '../../src/datapath/topology.ts';
import { stopStaleUlogd } from '../../src/datapath/ulogd.ts';
import { liveSkipReason } from './helpers.ts';

const skip = liveSkipReason();
const REPO = join(import.meta.dirname, '..', '..');
const PODS = 20;

/** Many pods (a long bring-up) and denied flows (300 ms each: a long replay). */
function policyTestYaml(): string {
  const eps = Array.from(
    { length: PODS },
    (_, i) => `    - {name: pod${i}, namespace: sig, labels: {app: pod${i}}, ip: 10.0.11.${i + 10}}`,
  );
  const flows = Array.from(
    { length: 30 },
    (_, i) => `    - {from: sig/pod0, to: sig/pod1, port: ${9000 + i}, expect: denied}`,
  );
  return `apiVersion: seawall/v1
kind: PolicyTest
metadata: {name: many-denied}
spec:
  policies:
    - apiVersion: cilium.io/v2
      kind: CiliumNetworkPolicy
      metadata: {name: pod1-closed, namespace: sig}
      spec:
        endpointSelector: {matchLabels: {app: pod1}}
        ingress: [{fromEndpoints: [{matchLabels: {app: nobody}}]}]
  endpoints:
${eps.join('\n')}
  flows:
${flows.join('\n')}
`;
}

const rootNetns = (): string[] => {
  try {
    return readdirSync('/run/netns');
  } catch {
    return [];
  }
};

describe('seawall test --live: a signal tears the node down and exits with its code', { skip }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'seawall-live-signal-'));
  const file = join(dir, 'many.policytest.yaml');
  writeFileSync(file, policyTestYaml());
  const nodes: string[] = [];

  after(async () => {
    for (const node of nodes) {
      stopStaleUlogd(runDirFor(node));
      const topo = new Topology({ node });
      for (let i = 0; i < PODS; i++) {
        const ns = topo.nsName(`pod:sig/pod${i}`);
        if (netnsExists(ns)) await delNetns(ns);
      }
      if (netnsExists(node)) await delNetns(node);
      rmSync(stateFileFor(node), { force: true });
      rmSync(runDirFor(node), { recursive: true, force: true });
    }
    rmSync(dir, { recursive: true, force: true });
  });

  const rows: Array<{ name: string; signal: NodeJS.Signals; when: 'bring-up' | 'flows'; code: number }> = [
    { name: 'SIGINT while the node is being built', signal: 'SIGINT', when: 'bring-up', code: 130 },
    { name: 'SIGTERM while flows are being sent', signal: 'SIGTERM', when: 'flows', code: 143 },
  ];
  for (const r of rows) {
    it(r.name, async () => {
      const child = spawn(process.execPath, [join(REPO, 'bin', 'seawall.js'), 'test', '--live', file], {
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      const node = `seawall-lt${child.pid! % 100000}`;
      nodes.push(node);
      const topo = new Topology({ node });
      const mine = new Set([node, ...Array.from({ length: PODS }, (_, i) => topo.nsName(`pod:sig/pod${i}`))]);
      let stdout = '';
      let stderr = '';
      child.stdout!.on('data', (d: Buffer) => {
        stdout += d.toString();
      });
      child.stderr!.on('data', (d: Buffer) => {
        stderr += d.toString();
      });
      let running = true;
      const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((res) =>
        child.once('exit', (code, signal) => {
          running = false;
          res({ code, signal });
        }),
      );
      const until = Date.now() + 60_000;
      const made = (): number => rootNetns().filter((n) => mine.has(n)).length;
      // bring-up: a few namespaces exist; flows: all exist and the 9 s of denied probes are under way
      const ready = (): boolean =>
        r.when === 'bring-up' ? netnsExists(node) && made() >= 3 : made() === mine.size;
      while (running && !ready() && Date.now() < until) await new Promise((res) => setTimeout(res, 5));
      if (r.when === 'flows') await new Promise((res) => setTimeout(res, 1500));
      assert.ok(running, `exited before the signal: ${stdout}${stderr}`);
      assert.ok(ready(), 'the moment for the signal came');
      assert.doesNotMatch(stdout, /^(PASS|FAIL) /m, 'the replay had not finished');
      child.kill(r.signal);
      const killTimer = setTimeout(() => child.kill('SIGKILL'), 30_000);
      const ex = await exited;
      clearTimeout(killTimer);
      assert.equal(ex.code, r.code, `exit ${ex.code} ${ex.signal}; ${stdout}${stderr}`);
      assert.match(stdout, /interrupted: the node is torn down/);
      assert.deepEqual(
        rootNetns().filter((n) => mine.has(n)),
        [],
        'no namespace of this run remains',
      );
      assert.equal(existsSync(runDirFor(node)), false, 'run dir removed');
      assert.equal(existsSync(stateFileFor(node)), false, 'state file removed');
    });
  }
});

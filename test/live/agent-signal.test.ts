// `seawall agent` stopped by a signal during startup: whatever it made so far (the node
// namespace, the pods' namespaces, ulogd) goes, and the process exits with the shell's code for
// the signal (130 SIGINT, 143 SIGTERM). Many endpoints make startup long enough to hit it.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { delNetns, netnsExists } from '../../src/datapath/netns.ts';
import { runDirFor, stateFileFor, Topology } from '../../src/datapath/topology.ts';
import { stopStaleUlogd } from '../../src/datapath/ulogd.ts';
import { liveSkipReason, testNode } from './helpers.ts';

const skip = liveSkipReason();
const REPO = join(import.meta.dirname, '..', '..');
const PODS = 60;

function endpointsYaml(): string {
  const eps = Array.from(
    { length: PODS },
    (_, i) => `    - {name: pod${i}, namespace: load, labels: {app: pod${i}}, ip: 10.0.9.${i + 10}}`,
  );
  return `apiVersion: seawall/v1
kind: PolicyTest
metadata: {name: many-endpoints}
spec:
  endpoints:
${eps.join('\n')}
  flows: []
`;
}

const netnsNames = (): string[] => {
  try {
    return readdirSync('/run/netns');
  } catch {
    return [];
  }
};

describe('seawall agent: a signal during startup', { skip }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'seawall-agent-signal-'));
  mkdirSync(join(dir, 'policies'));
  const endpoints = join(dir, 'endpoints.yaml');
  writeFileSync(endpoints, endpointsYaml());
  const nodes: string[] = [];

  after(async () => {
    // whatever happened, nothing of ours stays
    for (const node of nodes) {
      stopStaleUlogd(runDirFor(node));
      const topo = new Topology({ node });
      for (let i = 0; i < PODS; i++) {
        const ns = topo.nsName(`pod:load/pod${i}`);
        if (netnsExists(ns)) await delNetns(ns);
      }
      if (netnsExists(node)) await delNetns(node);
      rmSync(stateFileFor(node), { force: true });
      rmSync(runDirFor(node), { recursive: true, force: true });
    }
    rmSync(dir, { recursive: true, force: true });
  });

  const rows: Array<{
    name: string;
    signal: NodeJS.Signals;
    /** When to send it: a fixed delay after spawn, or once this many pod namespaces exist. */
    when: { afterMs: number } | { pods: number };
    /** Exit codes accepted (null: killed by the signal before the handlers were in). */
    codes: Array<number | null>;
  }> = [
    { name: 'SIGTERM shortly after spawn', signal: 'SIGTERM', when: { afterMs: 300 }, codes: [143, null] },
    { name: 'SIGTERM once the node namespace exists', signal: 'SIGTERM', when: { pods: 0 }, codes: [143] },
    { name: 'SIGINT while pods are being connected', signal: 'SIGINT', when: { pods: 5 }, codes: [130] },
  ];
  for (const r of rows) {
    it(r.name, async () => {
      const node = testNode('sig');
      nodes.push(node);
      const topo = new Topology({ node });
      const podNs = Array.from({ length: PODS }, (_, i) => topo.nsName(`pod:load/pod${i}`));
      const ours = (): string[] => netnsNames().filter((n) => n === node || podNs.includes(n));
      const stderr: string[] = [];
      const child = spawn(
        process.execPath,
        [
          join(REPO, 'bin', 'seawall.js'),
          'agent',
          '--policies',
          join(dir, 'policies'),
          '--endpoints',
          endpoints,
          '--node',
          node,
          '--socket',
          join(dir, `${node}.sock`),
        ],
        { stdio: ['ignore', 'ignore', 'pipe'] },
      );
      child.stderr!.on('data', (d: Buffer) => stderr.push(d.toString()));
      const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((res) =>
        child.once('exit', (code, signal) => res({ code, signal })),
      );
      let running = true;
      void exited.then(() => {
        running = false;
      });
      if ('afterMs' in r.when) {
        await new Promise((res) => setTimeout(res, (r.when as { afterMs: number }).afterMs));
      } else {
        const want = r.when.pods;
        const until = Date.now() + 30_000;
        while (running && Date.now() < until) {
          if (netnsExists(node) && podNs.filter(netnsExists).length >= want) break;
          await new Promise((res) => setTimeout(res, 5));
        }
        assert.ok(running, `agent exited before the signal: ${stderr.join('')}`);
        assert.ok(netnsExists(node), 'the node namespace was made before the signal');
        assert.ok(ours().length < PODS + 1, 'the signal came during startup');
      }
      child.kill(r.signal);
      const killTimer = setTimeout(() => child.kill('SIGKILL'), 30_000);
      const ex = await exited;
      clearTimeout(killTimer);
      assert.ok(
        r.codes.includes(ex.code) && (ex.code !== null || ex.signal === r.signal),
        `exit ${ex.code} ${ex.signal}; stderr: ${stderr.join('')}`,
      );
      assert.deepEqual(ours(), [], 'no namespace of this node remains');
    });
  }
});

// `seawall agent` with audit mode, as processes: `seawall endpoint config shop/ledger
// PolicyAuditMode=Enabled` through the status API lets what the policy denies through (and
// Disabled refuses it again, every connection); `seawall agent --policy-audit-mode` starts with
// every endpoint audited. Bad options are refused by the CLI and by the agent.

import assert from 'node:assert/strict';
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fetchStatus } from '../../src/agent/agent.ts';
import { delNetns } from '../../src/datapath/netns.ts';
import { runDirFor, stateFileFor, Topology } from '../../src/datapath/topology.ts';
import { ProbePool } from '../../src/testbed/probe.ts';
import { liveSkipReason, testNode } from './helpers.ts';

const skip = liveSkipReason();
const REPO = join(import.meta.dirname, '..', '..');
const DATA = join(import.meta.dirname, 'testdata', 'audit-agent');
const N = 5;

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

function cli(args: string[]): Promise<{ code: number; out: string; err: string }> {
  return new Promise((resolve) =>
    execFile(process.execPath, [join(REPO, 'bin', 'seawall.js'), ...args], (e, out, err) =>
      resolve({ code: e === null ? 0 : typeof e.code === 'number' ? e.code : 1, out, err }),
    ),
  );
}

/** One agent on a node of its own; its client and ledger pods; removed whatever happens. */
function agentFixture(tag: string, extra: string[]) {
  const node = testNode(tag);
  const dir = mkdtempSync(join(tmpdir(), 'seawall-audit-agent-'));
  const socket = join(dir, 'agent.sock');
  const topo = new Topology({ node });
  const clientNs = topo.nsName('pod:shop/client');
  const ledgerNs = topo.nsName('pod:shop/ledger');
  const probes = new ProbePool();
  let agent: ChildProcess | undefined;
  const f = {
    socket,
    /** How many of N connections to the ledger's port get through. */
    passed: async (port: number): Promise<number> => {
      let n = 0;
      for (let i = 0; i < N; i++)
        if ((await probes.get(clientNs).connect('tcp', '10.0.13.20', port, 300)).passed) n++;
      return n;
    },
    async start(): Promise<void> {
      agent = spawn(
        process.execPath,
        [
          join(REPO, 'bin', 'seawall.js'),
          'agent',
          '--policies',
          join(DATA, 'policies'),
          '--endpoints',
          join(DATA, 'endpoints.yaml'),
          '--node',
          node,
          '--socket',
          socket,
          '--no-flows',
          ...extra,
        ],
        { stdio: ['ignore', 'inherit', 'inherit'] },
      );
      assert.ok(
        await waitFor(async () => (await fetchStatus(socket)).counts.endpoints === 2, 20000),
        'agent up',
      );
      for (const port of [8080, 9090]) await probes.get(ledgerNs).listen('tcp', port);
    },
    async stop(): Promise<void> {
      probes.closeAll();
      if (agent !== undefined && agent.exitCode === null) {
        const exited = new Promise((r) => agent!.once('exit', r));
        agent.kill('SIGTERM');
        await Promise.race([exited, new Promise((r) => setTimeout(r, 10000))]);
        if (agent.exitCode === null) agent.kill('SIGKILL');
      }
      for (const ns of [clientNs, ledgerNs, node]) await delNetns(ns);
      rmSync(stateFileFor(node), { force: true });
      rmSync(runDirFor(node), { recursive: true, force: true });
      rmSync(dir, { recursive: true, force: true });
    },
  };
  return f;
}

describe('seawall endpoint config PolicyAuditMode', { skip }, () => {
  const a = agentFixture('ae', []);
  before(() => a.start());
  after(() => a.stop());

  it('enforced first: the port no rule allows is refused every time', async () => {
    assert.equal(await a.passed(8080), N);
    assert.equal(await a.passed(9090), 0);
  });

  it('Enabled: what policy denies passes; status and config say so', async () => {
    const r = await cli([
      'endpoint',
      'config',
      'shop/ledger',
      'PolicyAuditMode=Enabled',
      '--socket',
      a.socket,
    ]);
    assert.equal(r.code, 0, r.err);
    assert.equal(r.out, 'PolicyAuditMode=Enabled\n');
    assert.equal(await a.passed(9090), N);
    const s = await fetchStatus(a.socket);
    const ledger = s.endpoints.find((e) => e.endpoint === 'shop/ledger');
    assert.equal(ledger?.policyAuditMode, true);
    assert.equal(ledger?.ingress, 'default deny (audited)');
    const shown = await cli(['endpoint', 'config', 'shop/ledger', '--socket', a.socket, '-o', 'json']);
    assert.deepEqual(JSON.parse(shown.out), {
      endpoint: 'shop/ledger',
      options: { PolicyAuditMode: 'Enabled' },
    });
  });

  it('Disabled: refused again, every connection', async () => {
    const r = await cli([
      'endpoint',
      'config',
      'shop/ledger',
      'PolicyAuditMode=Disabled',
      '--socket',
      a.socket,
    ]);
    assert.equal(r.code, 0, r.err);
    assert.equal(await a.passed(9090), 0);
    assert.equal(await a.passed(8080), N);
  });

  const bad = [
    {
      name: 'a value that is no boolean',
      args: ['shop/ledger', 'PolicyAuditMode=maybe'],
      err: /must be Enabled or Disabled/,
    },
    {
      name: 'an unknown option',
      args: ['shop/ledger', 'Debug=true'],
      err: /unknown endpoint option "Debug"/,
    },
    {
      name: 'an unknown endpoint',
      args: ['shop/nope', 'PolicyAuditMode=Enabled'],
      err: /no endpoint shop\/nope/,
    },
    { name: 'no namespace', args: ['ledger', 'PolicyAuditMode=Enabled'], err: /write NAMESPACE\/POD/ },
  ];
  for (const b of bad) {
    it(`refuses ${b.name} (exit 2)`, async () => {
      const r = await cli(['endpoint', 'config', ...b.args, '--socket', a.socket]);
      assert.equal(r.code, 2);
      assert.match(r.err, b.err);
    });
  }

  it('after the refusals enforcement is unchanged', async () => {
    assert.equal(await a.passed(9090), 0);
  });
});

describe('seawall agent --policy-audit-mode', { skip }, () => {
  const a = agentFixture('aw', ['--policy-audit-mode']);
  before(() => a.start());
  after(() => a.stop());

  it('every endpoint starts in PolicyAuditMode; one endpoint can be enforced again', async () => {
    assert.equal(await a.passed(9090), N);
    const s = await fetchStatus(a.socket);
    assert.ok(
      s.endpoints.every((e) => e.policyAuditMode === true),
      JSON.stringify(s.endpoints),
    );
    const r = await cli([
      'endpoint',
      'config',
      'shop/ledger',
      'PolicyAuditMode=Disabled',
      '--socket',
      a.socket,
    ]);
    assert.equal(r.code, 0, r.err);
    assert.equal(await a.passed(9090), 0);
  });
});

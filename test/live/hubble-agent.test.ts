// `seawall agent` serves Hubble's API: the Observer (and Peer) on its unix socket and on TCP,
// over the same records as its flow log; `seawall observe --server` reads them through gRPC.

import assert from 'node:assert/strict';
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fetchStatus } from '../../src/agent/agent.ts';
import { delNetns } from '../../src/datapath/netns.ts';
import { runDirFor, stateFileFor, Topology } from '../../src/datapath/topology.ts';
import { stopStaleUlogd } from '../../src/datapath/ulogd.ts';
import { findUlogdPluginDir } from '../../src/flow/nflog.ts';
import { connectHubble, type HubbleClient } from '../../src/observe/hubble/client.ts';
import { protoJSONProblems } from '../../src/observe/hubble/protojson.ts';
import { hubbleType } from '../../src/observe/hubble/schema.ts';
import { ProbePool } from '../../src/testbed/probe.ts';
import { liveSkipReason, testNode } from './helpers.ts';

const skip =
  liveSkipReason() ??
  (findUlogdPluginDir() === undefined
    ? 'needs ulogd2 and ulogd2-json (apt-get install ulogd2 ulogd2-json)'
    : undefined);
const REPO = join(import.meta.dirname, '..', '..');
const SEAWALL = join(REPO, 'bin', 'seawall.js');

async function waitFor(check: () => Promise<boolean>, ms: number): Promise<boolean> {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    if (await check().catch(() => false)) return true;
    await new Promise((r) => setTimeout(r, 100));
  }
  return false;
}

function seawall(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [SEAWALL, ...args], { timeout: 20_000 }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof err.code === 'number' ? err.code : 1;
      resolve({ code, stdout, stderr });
    });
  });
}

describe('seawall agent serves the Hubble API', { skip }, () => {
  const node = testNode('hb');
  const dir = mkdtempSync(join(tmpdir(), 'seawall-hubble-agent-'));
  const socket = join(dir, 'agent.sock');
  const hubbleSock = join(dir, 'hubble.sock');
  const flowLog = join(dir, 'flows.jsonl');
  const policies = join(dir, 'policies');
  const topo = new Topology({ node });
  const clientNs = topo.nsName('pod:shop/client');
  const ledgerNs = topo.nsName('pod:shop/ledger');
  const probes = new ProbePool();
  let agent: ChildProcess | undefined;
  let unix: HubbleClient | undefined;
  let tcpClient: HubbleClient | undefined;
  let tcpAddress = '';

  before(async () => {
    cpSync(join(import.meta.dirname, 'testdata', 'agent', 'policies'), policies, { recursive: true });
    // port 0 is refused by the flag check: pick one per process in a high range
    tcpAddress = `127.0.0.1:${20000 + (process.pid % 20000)}`;
    agent = spawn(
      process.execPath,
      [
        SEAWALL,
        'agent',
        '--policies',
        policies,
        '--endpoints',
        join(import.meta.dirname, 'testdata', 'agent', 'endpoints.yaml'),
        '--node',
        node,
        '--socket',
        socket,
        '--flow-log',
        flowLog,
        '--hubble-socket',
        hubbleSock,
        '--hubble-listen-address',
        tcpAddress,
        '--hubble-event-buffer-capacity',
        '1023',
      ],
      { stdio: ['ignore', 'inherit', 'inherit'] },
    );
    assert.ok(
      await waitFor(async () => (await fetchStatus(socket)).flows.state === 'running', 30000),
      'agent up with flow records',
    );
    await probes.get(ledgerNs).listen('tcp', 8080);
    unix = connectHubble(`unix://${hubbleSock}`);
    tcpClient = connectHubble(tcpAddress);
  });

  after(async () => {
    unix?.close();
    tcpClient?.close();
    probes.closeAll();
    const a = agent;
    if (a !== undefined && a.exitCode === null) {
      a.kill('SIGTERM');
      await new Promise((r) => {
        a.once('exit', r);
        setTimeout(r, 15000).unref();
      });
      if (a.exitCode === null) a.kill('SIGKILL');
    }
    stopStaleUlogd(runDirFor(node));
    for (const ns of [clientNs, ledgerNs, node]) await delNetns(ns);
    rmSync(stateFileFor(node), { force: true });
    rmSync(runDirFor(node), { recursive: true, force: true });
    rmSync(dir, { recursive: true, force: true });
  });

  it('ServerStatus and GetNodes on the unix socket and TCP: the node and its ring', async () => {
    for (const c of [unix!, tcpClient!]) {
      const s = await c.serverStatus();
      assert.equal(s.max_flows, '1023');
      const n = (await c.getNodes()) as { nodes: { name: string; state: string }[] };
      assert.deepEqual(
        n.nodes.map((x) => [x.name, x.state]),
        [[node, 'NODE_CONNECTED']],
      );
    }
  });

  it('Peer.Notify tells Relay about this node', async () => {
    const s = tcpClient!.notify();
    const first = await new Promise<Record<string, unknown>>((resolve, reject) => {
      s.once('data', resolve);
      s.once('error', reject);
    });
    s.on('error', () => {});
    s.cancel();
    assert.equal(first.name, node);
    assert.equal(first.type, 'PEER_ADDED');
  });

  it('flows read through gRPC (and seawall observe --server) are the flow log records', async () => {
    const client = probes.get(clientNs);
    const follower = unix!.streamFlows({ follow: true });
    const followed: Record<string, unknown>[] = [];
    follower.on('data', (r: Record<string, unknown>) => followed.push(r));
    follower.on('error', () => {});
    assert.equal((await client.connect('tcp', '10.0.7.20', 8080, 1000)).passed, true);
    assert.equal((await client.connect('tcp', '10.0.7.20', 9090, 500)).passed, false);
    const lines = (): Record<string, unknown>[] =>
      readFileSync(flowLog, 'utf8')
        .split('\n')
        .filter((l) => l !== '')
        .map((l) => JSON.parse(l) as Record<string, unknown>);
    assert.ok(
      await waitFor(async () => {
        const fs = lines().map((l) => l.flow as { verdict: string; is_reply?: boolean });
        return fs.some((f) => f.is_reply === true) && fs.some((f) => f.verdict === 'DROPPED');
      }, 10000),
      'allowed (with its reply) and denied records in the flow log',
    );
    await new Promise((r) => setTimeout(r, 500)); // the rest of the connection's events
    const logged = lines();
    const got = (await unix!.getFlows({})).filter((r) => r.flow !== undefined);
    assert.deepEqual(got, logged, 'GetFlows returns the flow log, record for record');
    assert.ok(await waitFor(async () => followed.length >= logged.length, 5000), 'follower saw them');
    follower.cancel();
    assert.deepEqual(followed.slice(0, logged.length), logged);

    const r = await seawall(['observe', '--server', `unix://${hubbleSock}`, '--last', '1000', '-o', 'json']);
    assert.equal(r.code, 0, r.stderr);
    const printed = r.stdout
      .split('\n')
      .filter((l) => l !== '')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    assert.deepEqual(printed, logged);
    // Cilium's events for the same traffic: the denial as a policy verdict and a drop (133), the
    // allowed connection's traces to the endpoint and back (is_reply true on the reply)
    const FlowT = hubbleType('flow.Flow');
    for (const l of logged) assert.deepEqual(protoJSONProblems(FlowT, l.flow), [], JSON.stringify(l.flow));
    const kinds = logged.map((l) => {
      const f = l.flow as {
        verdict: string;
        event_type: { type: number; sub_type?: number };
        is_reply?: boolean;
        trace_observation_point?: string;
      };
      return `${f.verdict} ${f.event_type.type}/${f.event_type.sub_type ?? 0}${f.trace_observation_point ? ` ${f.trace_observation_point}` : ''}${f.is_reply === undefined ? '' : ` reply=${f.is_reply}`}`;
    });
    for (const want of [
      'DROPPED 5/0',
      'DROPPED 1/133',
      'FORWARDED 5/0 reply=false',
      'FORWARDED 4/0 TO_ENDPOINT reply=false',
      'FORWARDED 4/0 TO_ENDPOINT reply=true',
    ])
      assert.ok(kinds.includes(want), `${want} in ${kinds.join(' | ')}`);
    const drops = await seawall(['observe', '--server', tcpAddress, '--verdict', 'DROPPED']);
    assert.equal(drops.code, 0, drops.stderr);
    assert.match(drops.stdout, /DROPPED/);
    assert.doesNotMatch(drops.stdout, /FORWARDED/);
  });
});

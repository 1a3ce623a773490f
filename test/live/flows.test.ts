// Live: policy verdicts on new connections become Hubble flow records. A node of its own runs the
// real engine, nftables and the flow pipeline (ulogd2 in the node namespace); real TCP
// connections are checked against the records, then read back through `seawall observe`.
// Skips without root, Linux, nft or ulogd2's JSON plugin; always removes its namespaces.

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { FlowPipeline } from '../../src/agent/flows.ts';
import { delNetns } from '../../src/datapath/netns.ts';
import { type LivePeer, NodeDatapath } from '../../src/datapath/node.ts';
import { findUlogdPluginDir } from '../../src/flow/nflog.ts';
import type { Flow, FlowEvent } from '../../src/flow/types.ts';
import { defaultEngineFactory } from '../../src/policy/default-engine.ts';
import type { PolicyEngineAPI } from '../../src/policy/types.ts';
import { loadPolicyBytes } from '../../src/policy-api/load.ts';
import { ProbePool } from '../../src/testbed/probe.ts';
import { liveSkipReason, testNode } from './helpers.ts';

const REPO = join(import.meta.dirname, '..', '..');
const skip =
  liveSkipReason() ??
  (findUlogdPluginDir() === undefined
    ? 'needs ulogd2 and ulogd2-json (apt-get install ulogd2 ulogd2-json)'
    : undefined);

const IP = { frontend: '10.0.8.10', backend: '10.0.8.20', db: '10.0.8.30' };

function get(socketPath: string, path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath, path }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => {
        body += d;
      });
      res.on('end', () => resolve(body));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('live flow records', { skip }, () => {
  const nodeName = testNode('fl');
  const dir = mkdtempSync(join(tmpdir(), 'seawall-flows-'));
  const socket = join(dir, 'hubble.sock');
  const flowLog = join(dir, 'flows.jsonl');
  const probes = new ProbePool();
  let engine: PolicyEngineAPI;
  let node: NodeDatapath | undefined;
  let pipeline: FlowPipeline | undefined;
  const pods: Record<string, LivePeer> = {};

  before(async () => {
    engine = defaultEngineFactory({});
    engine.upsertNamespace('shop', {});
    const file = join(import.meta.dirname, 'testdata', 'flows', 'policies.yaml');
    const loaded = loadPolicyBytes(file, readFileSync(file), { lint: false });
    assert.deepEqual(
      loaded.issues.filter((i) => i.severity === 'error'),
      [],
    );
    for (const p of loaded.policies) engine.upsertPolicy(p);
    node = new NodeDatapath(engine, { node: nodeName });
    await node.up();
    for (const [name, ip] of Object.entries(IP)) {
      const p = await node.addPod({ name, namespace: 'shop', labels: { app: name }, ip }, { sync: false });
      assert.ok(p);
      pods[name] = p;
    }
    await node.sync();
    pipeline = new FlowPipeline(node, { runDir: dir, socket, flowLog, pollMs: 20 });
    const st = await pipeline.start();
    assert.equal(st.state, 'running', st.reason);
    for (const port of [8080, 9090, 7070]) await probes.get(pods.backend!.ns).listen('tcp', port);
    await probes.get(pods.db!.ns).listen('tcp', 5432);
  });

  after(async () => {
    probes.closeAll();
    await pipeline?.stop();
    const names = Object.values(pods).map((p) => p.ns);
    await node?.down().catch(() => {});
    for (const ns of [...names, nodeName]) await delNetns(ns);
    rmSync(dir, { recursive: true, force: true });
  });

  /** Connects, then waits for the record of `direction` for this connection. */
  async function connect(
    from: string,
    to: string,
    port: number,
    direction: 'INGRESS' | 'EGRESS',
  ): Promise<{ passed: boolean; flow: Flow | undefined }> {
    const p = pipeline!;
    p.drain();
    const seq = p.nextSeq;
    const r = await probes.get(pods[from]!.ns).connect('tcp', pods[to]!.ip, port, 300);
    // the policy verdict (type 5): Cilium's drops and traces of the same packet come with it
    const mine = (e: { event: FlowEvent }): boolean =>
      e.event.flow.event_type?.type === 5 &&
      e.event.flow.IP?.source === pods[from]!.ip &&
      e.event.flow.IP?.destination === pods[to]!.ip &&
      e.event.flow.traffic_direction === direction &&
      'TCP' in (e.event.flow.l4 ?? {}) &&
      (e.event.flow.l4 as { TCP: { destination_port?: number } }).TCP.destination_port === port;
    const entries = await p.waitFor(seq, (es) => es.some(mine), 3000);
    return { passed: r.passed, flow: entries.find(mine)?.event.flow };
  }

  it('an allowed connection into an ingress-enforced pod is FORWARDED with the allowing policy', async () => {
    const { passed, flow } = await connect('frontend', 'backend', 8080, 'INGRESS');
    assert.equal(passed, true);
    assert.ok(flow, 'an INGRESS record');
    assert.equal(flow.verdict, 'FORWARDED');
    assert.equal(flow.traffic_direction, 'INGRESS');
    assert.equal(flow.drop_reason_desc, undefined);
    assert.equal(flow.source?.namespace, 'shop');
    assert.equal(flow.source?.pod_name, 'frontend');
    assert.equal(flow.destination?.pod_name, 'backend');
    assert.equal(
      flow.source?.identity,
      engine.identityOf({ kind: 'endpoint', namespace: 'shop', name: 'frontend' }),
    );
    assert.equal(
      flow.destination?.identity,
      engine.identityOf({ kind: 'endpoint', namespace: 'shop', name: 'backend' }),
    );
    assert.ok(flow.source?.labels?.includes('k8s:app=frontend'), String(flow.source?.labels));
    assert.ok(flow.destination?.labels?.includes('k8s:app=backend'));
    assert.equal(flow.destination?.ID, pods.backend!.endpointId);
    assert.deepEqual(
      flow.ingress_allowed_by?.map((p) => `${p.namespace}/${p.name}`),
      ['shop/backend-ingress'],
    );
    assert.equal(flow.node_name, nodeName);
    assert.deepEqual(flow.event_type, { type: 5 });
    assert.equal(flow.Type, 'L3_L4');
    assert.equal(flow.is_reply, false);
  });

  it('the same connection is also FORWARDED on the egress-enforced side', async () => {
    const { flow } = await connect('frontend', 'backend', 8080, 'EGRESS');
    assert.equal(flow?.verdict, 'FORWARDED');
    assert.deepEqual(
      flow?.egress_allowed_by?.map((p) => p.name),
      ['frontend-egress'],
    );
  });

  it('a port no rule allows is DROPPED with POLICY_DENIED', async () => {
    const { passed, flow } = await connect('frontend', 'backend', 9090, 'INGRESS');
    assert.equal(passed, false);
    assert.equal(flow?.verdict, 'DROPPED');
    assert.equal(flow?.drop_reason_desc, 'POLICY_DENIED');
    assert.equal(flow?.drop_reason, 133);
    assert.equal(flow?.ingress_allowed_by, undefined);
  });

  it('an explicit deny is DROPPED with POLICY_DENY and ingress_denied_by', async () => {
    const { passed, flow } = await connect('frontend', 'backend', 7070, 'INGRESS');
    assert.equal(passed, false);
    assert.equal(flow?.verdict, 'DROPPED');
    assert.equal(flow?.drop_reason_desc, 'POLICY_DENY');
    assert.deepEqual(
      flow?.ingress_denied_by?.map((p) => p.name),
      ['backend-deny-admin'],
    );
  });

  it('an egress drop is DROPPED in the EGRESS direction', async () => {
    const { passed, flow } = await connect('frontend', 'db', 5432, 'EGRESS');
    assert.equal(passed, false);
    assert.equal(flow?.verdict, 'DROPPED');
    assert.equal(flow?.traffic_direction, 'EGRESS');
    assert.equal(flow?.drop_reason_desc, 'POLICY_DENIED');
    assert.equal(flow?.source?.pod_name, 'frontend');
    assert.equal(flow?.destination?.pod_name, 'db');
  });

  it('every record agrees with the engine and is in the flow log', () => {
    const st = pipeline!.status();
    assert.equal(st.disagreements, 0);
    assert.ok(st.processed >= 5 && st.dropped >= 3, JSON.stringify(st));
    const lines = readFileSync(flowLog, 'utf8').trim().split('\n');
    assert.equal(lines.length, st.processed);
    const first = JSON.parse(lines[0]!) as FlowEvent;
    assert.deepEqual(Object.keys(first), ['flow', 'node_name', 'time']);
  });

  it('`seawall observe --last N -o json` reads them over the socket', async () => {
    const out = await new Promise<string>((resolve, reject) =>
      execFile(
        process.execPath,
        [join(REPO, 'bin', 'seawall.js'), 'observe', '--socket', socket, '--last', '50', '-o', 'json'],
        (e, stdout) => (e ? reject(e) : resolve(stdout)),
      ),
    );
    const events = out
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as FlowEvent);
    assert.equal(events.length, pipeline!.status().processed);
    for (const e of events) {
      assert.deepEqual(Object.keys(e), ['flow', 'node_name', 'time']);
      assert.equal(e.node_name, nodeName);
    }
    const kinds = new Set(
      events.map((e) => `${e.flow.traffic_direction} ${e.flow.verdict} ${e.flow.drop_reason_desc ?? ''}`),
    );
    for (const k of [
      'INGRESS FORWARDED ',
      'INGRESS DROPPED POLICY_DENIED',
      'INGRESS DROPPED POLICY_DENY',
      'EGRESS DROPPED POLICY_DENIED',
    ]) {
      assert.ok(kinds.has(k), `${k} in ${[...kinds].join(' | ')}`);
    }
    const dropsOnly = await new Promise<string>((resolve, reject) =>
      execFile(
        process.execPath,
        [
          join(REPO, 'bin', 'seawall.js'),
          'observe',
          '--socket',
          socket,
          '--verdict',
          'DROPPED',
          '-t',
          'policy-verdict',
          '--to-pod',
          'shop/db',
        ],
        (e, stdout) => (e ? reject(e) : resolve(stdout)),
      ),
    );
    const lines = dropsOnly.trim().split('\n');
    assert.equal(lines.length, 1, dropsOnly);
    assert.match(
      lines[0]!,
      /shop\/frontend:\d+ \(ID:\d+\) <> shop\/db:5432 \(ID:\d+\) policy-verdict:none EGRESS DENIED \(TCP Flags: SYN\)$/,
    );
  });

  it('serves Hubble metrics on the socket', async () => {
    const text = await get(socket, '/metrics');
    assert.match(
      text,
      /hubble_flows_processed_total\{protocol="TCP",type="PolicyVerdict",subtype="",verdict="DROPPED"\} \d+/,
    );
    // Hubble's drop metric counts every DROPPED flow: the denial's policy verdict and its drop event
    assert.match(text, /hubble_drop_total\{reason="POLICY_DENY",protocol="TCP"\} 2/);
    assert.match(
      text,
      /hubble_policy_verdicts_total\{direction="ingress",match="[a-z0-9-]+",action="forwarded"\} \d+/,
    );
  });
});

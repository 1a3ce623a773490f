// Live: audit mode in the kernel. Connections an audited policy would drop pass and their records
// say AUDIT with the policy that would have denied them; the enforcing policy keeps refusing every
// connection it denies (counted); an endpoint put in PolicyAuditMode lets those through as AUDIT
// too, until it is disabled again. Real TCP connections, the real engine, nftables and ulogd2 in a
// node namespace of the test's own; skips without root, Linux, nft or ulogd2-json.

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
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

const skip =
  liveSkipReason() ??
  (findUlogdPluginDir() === undefined
    ? 'needs ulogd2 and ulogd2-json (apt-get install ulogd2 ulogd2-json)'
    : undefined);

const REPO = join(import.meta.dirname, '..', '..');
const IP = { frontend: '10.0.12.10', backend: '10.0.12.20', db: '10.0.12.30' };
/** Connections per case: every one must pass (audited) or be refused (enforced). */
const N = 5;

describe('live audit mode', { skip }, () => {
  const nodeName = testNode('au');
  const dir = mkdtempSync(join(tmpdir(), 'seawall-audit-'));
  const probes = new ProbePool();
  let engine: PolicyEngineAPI;
  let node: NodeDatapath | undefined;
  let pipeline: FlowPipeline | undefined;
  const pods: Record<string, LivePeer> = {};

  before(async () => {
    engine = defaultEngineFactory({});
    engine.upsertNamespace('shop', {});
    const file = join(import.meta.dirname, 'testdata', 'audit', 'policies.yaml');
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
    pipeline = new FlowPipeline(node, {
      runDir: dir,
      socket: join(dir, 'hubble.sock'),
      flowLog: join(dir, 'flows.jsonl'),
      pollMs: 20,
      dedupWindowMs: 0,
    });
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

  /** N connections; how many got through, and the INGRESS records of them. */
  async function connectN(
    from: string,
    to: string,
    port: number,
  ): Promise<{ passed: number; flows: Flow[] }> {
    const p = pipeline!;
    p.drain();
    const seq = p.nextSeq;
    let passed = 0;
    for (let i = 0; i < N; i++) {
      const r = await probes.get(pods[from]!.ns).connect('tcp', pods[to]!.ip, port, 500);
      if (r.passed) passed++;
    }
    // policy verdicts only (type 5): drops and conntrack traces of the same packets are other events
    const mine = (e: { event: FlowEvent }): boolean =>
      e.event.flow.event_type?.type === 5 &&
      e.event.flow.IP?.source === pods[from]!.ip &&
      e.event.flow.IP?.destination === pods[to]!.ip &&
      e.event.flow.traffic_direction === 'INGRESS' &&
      (e.event.flow.l4 as { TCP?: { destination_port?: number } } | undefined)?.TCP?.destination_port ===
        port;
    // a refused connection logs each SYN retry: at least N records either way
    const entries = await p.waitFor(seq, (es) => es.filter(mine).length >= N, 5000);
    return { passed, flows: entries.filter(mine).map((e) => e.event.flow) };
  }

  const rows: Array<{
    name: string;
    from: string;
    to: string;
    port: number;
    passed: number;
    verdict: Flow['verdict'];
    deniedBy?: string[];
    allowedBy?: string[];
  }> = [
    {
      name: 'audited default deny: all pass, AUDIT naming the audited policy',
      from: 'frontend',
      to: 'backend',
      port: 9090,
      passed: N,
      verdict: 'AUDIT',
      deniedBy: ['backend-audit'],
    },
    {
      name: 'audited deny rule: all pass, AUDIT naming the deny',
      from: 'frontend',
      to: 'backend',
      port: 7070,
      passed: N,
      verdict: 'AUDIT',
      deniedBy: ['backend-audit'],
    },
    {
      name: 'allowed by the audited policy: FORWARDED',
      from: 'frontend',
      to: 'backend',
      port: 8080,
      passed: N,
      verdict: 'FORWARDED',
      allowedBy: ['backend-audit'],
    },
    {
      name: 'audited deny over an enforcing allow: AUDIT',
      from: 'backend',
      to: 'db',
      port: 5432,
      passed: N,
      verdict: 'AUDIT',
      deniedBy: ['db-audit'],
      allowedBy: ['db-enforce'],
    },
    {
      name: 'the enforcing policy keeps enforcing: every connection refused, DROPPED',
      from: 'frontend',
      to: 'db',
      port: 5432,
      passed: 0,
      verdict: 'DROPPED',
    },
  ];
  for (const r of rows) {
    it(r.name, async () => {
      const { passed, flows } = await connectN(r.from, r.to, r.port);
      assert.equal(passed, r.passed, `${passed} of ${N} connections passed`);
      assert.ok(flows.length >= N, `${flows.length} records`);
      for (const f of flows) {
        assert.equal(f.verdict, r.verdict, JSON.stringify(f));
        if (r.deniedBy)
          assert.deepEqual(
            f.ingress_denied_by?.map((p) => p.name),
            r.deniedBy,
          );
        if (r.allowedBy)
          assert.deepEqual(
            f.ingress_allowed_by?.map((p) => p.name),
            r.allowedBy,
          );
        if (r.verdict === 'AUDIT') assert.equal(f.drop_reason_desc, undefined);
      }
    });
  }

  it('endpoint PolicyAuditMode: the enforced drops pass as AUDIT, and are refused again when disabled', async () => {
    assert.equal(engine.setEndpointOptions?.('shop', 'db', { policyAuditMode: true }), true);
    await node!.sync();
    const on = await connectN('frontend', 'db', 5432);
    assert.equal(on.passed, N);
    for (const f of on.flows) {
      assert.equal(f.verdict, 'AUDIT');
      assert.deepEqual(
        f.ingress_denied_by?.map((p) => p.name),
        ['db-audit', 'db-enforce'],
      );
    }
    engine.setEndpointOptions?.('shop', 'db', { policyAuditMode: false });
    await node!.sync();
    const off = await connectN('frontend', 'db', 5432);
    assert.equal(off.passed, 0, 'refused again');
    for (const f of off.flows) assert.equal(f.verdict, 'DROPPED');
  });

  it('hubble_policy_verdicts_total counts action="audit"; seawall observe --verdict AUDIT shows only them', async () => {
    const text = await pipeline!.metricsText();
    // one series per match type (none: an audited default deny; l3-l4: an audited deny rule)
    const audited = [
      ...text.matchAll(
        /hubble_policy_verdicts_total\{direction="ingress",match="[^"]*",action="audit"\} (\d+)/g,
      ),
    ];
    const total = audited.reduce((n, m) => n + Number(m[1]), 0);
    assert.ok(total >= 4 * N, text);
    const out = await new Promise<string>((resolve, reject) =>
      execFile(
        process.execPath,
        [
          join(REPO, 'bin', 'seawall.js'),
          'observe',
          '--socket',
          join(dir, 'hubble.sock'),
          '--last',
          '500',
          '--verdict',
          'AUDIT',
          '-o',
          'json',
        ],
        (e, stdout) => (e ? reject(e) : resolve(stdout)),
      ),
    );
    const flows = out
      .trim()
      .split('\n')
      .map((l) => (JSON.parse(l) as FlowEvent).flow);
    assert.ok(flows.length >= 4 * N, `${flows.length} AUDIT records`);
    for (const f of flows) assert.equal(f.verdict, 'AUDIT');
  });

  it('every record agrees with the engine', () => {
    const st = pipeline!.status();
    assert.equal(st.disagreements, 0, JSON.stringify(st));
    assert.ok((st.audited ?? 0) >= 4 * N, JSON.stringify(st));
  });
});

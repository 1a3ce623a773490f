// The node runtime's one bring-up and tear-down: policy before any veth, components in order and
// in reverse, ulogd stopped before the namespace goes, the run dir removed (the flow log kept
// when asked), stop() idempotent and safe during start().

import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { NodeRuntime, type RuntimeComponent } from '../../src/agent/runtime.ts';
import { delNetns, netnsExists } from '../../src/datapath/netns.ts';
import { runDirFor } from '../../src/datapath/topology.ts';
import { findUlogdPluginDir } from '../../src/flow/nflog.ts';
import { FakeEngine } from '../../src/policy/testing/fake-engine.ts';
import type { EndpointSpec } from '../../src/policy/types.ts';
import { entry, liveSkipReason, testNode } from './helpers.ts';

const skip = liveSkipReason();
const noUlogd = findUlogdPluginDir() === undefined ? 'needs ulogd2 and ulogd2-json' : undefined;

const pods = (n: number, net: number): EndpointSpec[] =>
  Array.from({ length: n }, (_, i) => ({
    name: `p${i}`,
    namespace: 'rt',
    labels: {},
    ip: `10.0.${net}.${i + 1}`,
  }));

describe('node runtime', { skip }, () => {
  const made: NodeRuntime[] = [];
  const make = (o: Partial<ConstructorParameters<typeof NodeRuntime>[0]> = {}): NodeRuntime => {
    const rt = new NodeRuntime({ engine: new FakeEngine(), node: testNode('rt'), flows: false, ...o });
    made.push(rt);
    return rt;
  };
  after(async () => {
    for (const rt of made) {
      await rt.stop().catch(() => {});
      for (const h of rt.datapath.topo.records) await delNetns(h.ns);
      if (netnsExists(rt.node)) await delNetns(rt.node);
    }
  });

  it("every pod's policy and ipcache entry are in the kernel before its veth exists", async () => {
    const eng = new FakeEngine();
    const rt = make({ engine: eng });
    const topo = rt.datapath.topo;
    const add = topo.addHost.bind(topo);
    const seen: Array<{ key: string; endpoint: boolean; ipcache: boolean }> = [];
    topo.addHost = async (key: string, ip: string) => {
      const st = rt.datapath.nft.state;
      seen.push({
        key,
        endpoint: [...st.endpoints.values()].some((e) => `pod:${e.endpoint}` === key),
        ipcache: st.ipcache.has(ip),
      });
      return add(key, ip);
    };
    eng.upsertEndpoint({ name: 'p0', namespace: 'rt', labels: {}, ip: '10.0.61.1' });
    eng.setPolicy('rt', 'p0', {
      ingress: { enforced: true, defaultDeny: true },
      entries: [entry('INGRESS', 2, 6, 80)],
    });
    await rt.start({
      pods: pods(3, 61),
      hosts: [{ peer: { kind: 'ip', ip: '192.0.2.9' }, ip: '192.0.2.9' }],
    });
    assert.equal(seen.length, 4);
    for (const s of seen) assert.ok(s.ipcache, `${s.key}: ipcache entry before its veth`);
    for (const s of seen.filter((x) => x.key.startsWith('pod:')))
      assert.ok(s.endpoint, `${s.key}: policy before its veth`);
    await rt.stop();
    assert.equal(netnsExists(rt.node), false);
  });

  it('components start in order after the node is up and stop in reverse, before the namespace goes', async () => {
    const log: string[] = [];
    let rt!: NodeRuntime;
    const comp = (name: string): RuntimeComponent => ({
      name,
      start: (r) => {
        log.push(`start ${name} node=${netnsExists(r.node)} hosts=${r.datapath.topo.records.length}`);
      },
      stop: () => {
        log.push(`stop ${name} node=${netnsExists(rt.node)}`);
        if (name === 'b') throw new Error('a failing stop does not stop the tear-down');
      },
    });
    rt = make({ components: [comp('a'), comp('b')] });
    await rt.start({ pods: pods(1, 62) });
    await rt.stop();
    assert.deepEqual(log, [
      'start a node=true hosts=1',
      'start b node=true hosts=1',
      'stop b node=true',
      'stop a node=true',
    ]);
    assert.equal(netnsExists(rt.node), false);
  });

  it('stop() is idempotent: one tear-down, the same promise', async () => {
    const rt = make();
    await rt.start({ pods: pods(1, 63) });
    const a = rt.stop();
    const b = rt.stop();
    assert.equal(a, b);
    await a;
    await rt.stop();
    assert.equal(netnsExists(rt.node), false);
  });

  const during: Array<{ name: string; when: (rt: NodeRuntime) => boolean }> = [
    { name: 'before anything', when: () => true },
    { name: 'once the node namespace exists', when: (rt) => netnsExists(rt.node) },
    { name: 'while pods are being connected', when: (rt) => rt.datapath.topo.records.length >= 2 },
  ];
  for (const d of during) {
    it(`stop() during start (${d.name}): start rejects with agent-stopped, nothing remains`, async () => {
      const rt = make();
      const started = rt.start({ pods: pods(12, 64) });
      const outcome = started.then(
        () => 'started',
        (e: { code?: string }) => e.code ?? String(e),
      );
      const until = Date.now() + 20_000;
      while (!d.when(rt) && Date.now() < until) await new Promise((r) => setTimeout(r, 2));
      await rt.stop();
      assert.equal(await outcome, 'agent-stopped');
      assert.equal(netnsExists(rt.node), false, 'node namespace gone');
      for (const p of pods(12, 64)) {
        const ns = rt.datapath.topo.nsName(`pod:rt/${p.name}`);
        assert.equal(netnsExists(ns), false, `${ns} gone`);
      }
    });
  }

  it("keep: flow-log keeps an earlier run's flow log when stopped before the pipeline ran", async () => {
    const rt = make({ flows: { socket: false }, keep: 'flow-log' });
    const dir = runDirFor(rt.node);
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'flows.jsonl'), '{}\n');
    writeFileSync(join(dir, 'ulogd.log'), 'old\n');
    const started = rt.start({ pods: pods(1, 66) }).catch((e: { code?: string }) => e.code);
    await rt.stop();
    assert.equal(await started, 'agent-stopped');
    assert.deepEqual(readdirSync(dir), ['flows.jsonl']);
    const { rmSync } = await import('node:fs');
    rmSync(dir, { recursive: true, force: true });
  });

  it('the run dir goes on stop; keep: flow-log keeps only the flow log', { skip: noUlogd }, async () => {
    for (const keep of ['nothing', 'flow-log'] as const) {
      const rt = make({ flows: { socket: false }, keep });
      await rt.start({ pods: pods(1, 65) });
      const dir = runDirFor(rt.node);
      assert.ok(rt.flows?.available, rt.flows?.status().reason);
      const ulogdPid = rt.flows.status().ulogdPid;
      // the flow log opens on the first record; stand in for one, and for a stray file
      writeFileSync(join(dir, 'flows.jsonl'), '{}\n');
      mkdirSync(join(dir, 'stray'), { recursive: true });
      await rt.stop();
      assert.equal(netnsExists(rt.node), false);
      if (ulogdPid !== undefined) assert.equal(existsSync(`/proc/${ulogdPid}`), false, 'ulogd stopped');
      if (keep === 'nothing') assert.equal(existsSync(dir), false, 'run dir removed');
      else assert.deepEqual(readdirSync(dir), ['flows.jsonl'], 'only the flow log stays');
      if (keep === 'flow-log') {
        const { rmSync } = await import('node:fs');
        rmSync(dir, { recursive: true, force: true });
      }
    }
  });
});

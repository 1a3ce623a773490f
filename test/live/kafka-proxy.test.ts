// Issue 12, live: Kafka redirect entries send connections through the node's Kafka proxy (a
// supervised child process in the node namespace, judging from the agent's mirror), with the
// guide's corrected policy as MapState: the consumer pod's egress to the broker's 9092 redirects
// with `role: consume, topic: user-events` and `role: produce, topic: processed-events`. Real
// clients in the consumer pod (kcat, kafkajs), the test broker (src/testbed/kafka-broker.ts) in
// the broker pod. One node made here (unique names, removed in `after` even when a test fails).

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ProxyComponent } from '../../src/agent/proxy.ts';
import { NodeRuntime } from '../../src/agent/runtime.ts';
import { delNetns, netnsExists } from '../../src/datapath/netns.ts';
import { findUlogdPluginDir } from '../../src/flow/nflog.ts';
import type { Flow } from '../../src/flow/types.ts';
import { FakeEngine } from '../../src/policy/testing/fake-engine.ts';
import type { L7RuleSet, MapStateEntry } from '../../src/policy/types.ts';
import { ADDON_PATH } from '../../src/proxy/origdst.ts';
import { KafkaBrokers } from '../../src/testbed/kafka-broker.ts';
import { KafkaClientWorker } from '../../src/testbed/kafka-client.ts';
import { entry, liveSkipReason, testNode } from './helpers.ts';

const REPO = join(import.meta.dirname, '..', '..');
const CLIENT = join(REPO, 'src', 'testbed', 'kafka-client.ts');
const hasKcat = existsSync('/usr/bin/kcat');
const skip =
  liveSkipReason() ??
  (existsSync(ADDON_PATH) ? undefined : `addon not built (${ADDON_PATH}); run scripts/build-addon.sh`);
const withFlows = findUlogdPluginDir() !== undefined;

const pos = { file: 'live', line: 1, column: 1 };
const guideRules: L7RuleSet = {
  parser: 'kafka',
  rules: [
    { pos, role: 'consume', topic: 'user-events' },
    { pos, role: 'produce', topic: 'processed-events' },
  ],
};

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function exec(cmd: string, args: string[], input?: string, timeoutMs = 30_000): Promise<Run> {
  return new Promise((resolve) => {
    const p = spawn(cmd, args, { cwd: REPO, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
    });
    p.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    const t = setTimeout(() => p.kill('SIGKILL'), timeoutMs);
    p.on('close', (code) => {
      clearTimeout(t);
      resolve({ code: code ?? -1, stdout, stderr });
    });
    p.stdin.on('error', () => {});
    p.stdin.end(input ?? '');
  });
}

describe('Kafka proxy through the real redirect (issue 12)', { skip, timeout: 300_000 }, () => {
  const net = 100 + ((process.pid + 37) % 100);
  const consumerIP = `10.${net}.12.1`;
  const brokerIP = `10.${net}.12.2`;
  const broker = `${brokerIP}:9092`;
  const engine = new FakeEngine();
  const logs: string[] = [];
  const proxy = new ProxyComponent({ parser: 'kafka', backoffMs: 300, log: (l) => logs.push(l) });
  const rt = new NodeRuntime({
    engine,
    node: testNode('kafka'),
    flows: withFlows ? {} : false,
    components: [proxy],
    log: (l) => logs.push(l),
  });
  const brokers = new KafkaBrokers();
  let consumerNs = '';
  let brokerNs = '';
  let brokerId = 0;

  const kcat = (ns: string, args: string[], input?: string) =>
    exec('ip', ['netns', 'exec', ns, 'kcat', '-b', broker, '-m', '5', ...args], input, 20_000);
  const client = async (ns: string, args: string[]) => {
    const r = await exec('ip', ['netns', 'exec', ns, process.execPath, '--import', 'tsx', CLIENT, ...args]);
    const last = r.stdout.trim().split('\n').pop() ?? '';
    try {
      return JSON.parse(last) as {
        ok?: boolean;
        answered?: boolean;
        errorCodes?: number[];
        messages?: string[];
        error?: { name: string; type?: string; message: string };
      };
    } catch {
      throw new Error(`kafka client said: ${r.stdout} ${r.stderr}`);
    }
  };
  const reached = () => brokers.requests(brokerNs, 9092);

  before(async () => {
    engine.upsertEndpoint({
      name: 'consumer',
      namespace: 'kf',
      labels: { app: 'kafka-consumer' },
      ip: consumerIP,
    });
    engine.upsertEndpoint({ name: 'broker', namespace: 'kf', labels: { app: 'kafka-broker' }, ip: brokerIP });
    brokerId = engine.identityOf({ kind: 'endpoint', namespace: 'kf', name: 'broker' });
    const redirect: MapStateEntry = {
      ...entry('EGRESS', brokerId, 6, 9092, 9092, 'redirect'),
      l7: guideRules,
    };
    engine.setPolicy('kf', 'consumer', {
      egress: { enforced: true, defaultDeny: true },
      entries: [redirect],
    });
    await rt.start({
      pods: [
        { name: 'consumer', namespace: 'kf', labels: { app: 'kafka-consumer' }, ip: consumerIP },
        { name: 'broker', namespace: 'kf', labels: { app: 'kafka-broker' }, ip: brokerIP },
      ],
    });
    consumerNs = rt.datapath.live({ kind: 'endpoint', namespace: 'kf', name: 'consumer' })!.ns;
    brokerNs = rt.datapath.live({ kind: 'endpoint', namespace: 'kf', name: 'broker' })!.ns;
    await brokers.start(brokerNs, brokerIP, 9092);
    // user-events has messages to consume: produced in the broker's own namespace (no policy there)
    if (hasKcat) {
      const seed = await kcat(brokerNs, ['-P', '-t', 'user-events'], 'event-1\nevent-2\n');
      assert.equal(seed.code, 0, seed.stderr);
    } else {
      const r = await client(brokerNs, ['produce', broker, 'user-events', 'event-1', 'seed']);
      assert.ok(r.ok, JSON.stringify(r));
    }
  });

  after(async () => {
    await brokers.closeAll();
    await rt.stop().catch(() => {});
    for (const h of rt.datapath.topo.records) await delNetns(h.ns);
    if (netnsExists(rt.node)) await delNetns(rt.node);
  });

  it('kcat -P writes processed-events and kcat -C reads user-events through the proxy', {
    skip: hasKcat ? undefined : 'kcat not installed',
  }, async () => {
    const n = reached().length;
    const p = await kcat(consumerNs, ['-P', '-t', 'processed-events'], 'done-1\n');
    assert.equal(p.code, 0, `${p.stderr}\n${logs.slice(-10).join('\n')}`);
    assert.ok(
      reached()
        .slice(n)
        .some((r) => r.apiKey === 0 && r.topics.includes('processed-events')),
      'the Produce reached the broker',
    );
    const c = await kcat(consumerNs, ['-C', '-t', 'user-events', '-o', 'beginning', '-e', '-q']);
    assert.equal(c.code, 0, c.stderr);
    assert.deepEqual(c.stdout.trim().split('\n').slice(0, 2), ['event-1', 'event-2']);
  });

  it('kcat: payments is refused with Topic authorization failed, and nothing for it reaches the broker', {
    skip: hasKcat ? undefined : 'kcat not installed',
  }, async () => {
    const n = reached().length;
    const p = await kcat(consumerNs, ['-P', '-t', 'payments'], 'card-1\n');
    assert.notEqual(p.code, 0);
    assert.match(p.stderr, /[Tt]opic authorization failed/, p.stderr);
    const c = await kcat(consumerNs, ['-C', '-t', 'payments', '-o', 'beginning', '-e']);
    assert.notEqual(c.code, 0);
    assert.match(c.stderr, /[Tt]opic authorization failed/, c.stderr);
    assert.deepEqual(
      reached()
        .slice(n)
        .filter((r) => r.topics.includes('payments')),
      [],
    );
  });

  it('kafkajs: a producer writes processed-events, a consumer group reads user-events', async () => {
    const p = await client(consumerNs, ['produce', broker, 'processed-events', 'from-kafkajs', 'consumer-1']);
    assert.deepEqual(p, { ok: true });
    const c = await client(consumerNs, ['consume', broker, 'user-events', 'group-1', 'consumer-1', '1']);
    assert.equal(c.ok, true, JSON.stringify(c));
    assert.equal(c.messages?.[0], 'event-1');
    const groupCalls = new Set(reached().map((r) => r.apiKey));
    for (const k of [10, 11, 14, 9, 1]) assert.ok(groupCalls.has(k), `key ${k} reached the broker`);
  });

  it('kafkajs: payments is refused with TOPIC_AUTHORIZATION_FAILED (TopicAuthorizationException)', async () => {
    const n = reached().length;
    const p = await client(consumerNs, ['produce', broker, 'payments', 'card-1', 'consumer-1']);
    assert.equal(p.ok, false);
    assert.equal(p.error?.type, 'TOPIC_AUTHORIZATION_FAILED', JSON.stringify(p));
    const c = await client(consumerNs, ['consume', broker, 'payments', 'group-2', 'consumer-1', '1']);
    assert.equal(c.ok, false);
    assert.equal(c.error?.type, 'TOPIC_AUTHORIZATION_FAILED', JSON.stringify(c));
    assert.deepEqual(
      reached()
        .slice(n)
        .filter((r) => r.topics.includes('payments')),
      [],
    );
  });

  it('a denied key carrying no topic (DescribeGroups) gets code 29; Produce to user-events too', async () => {
    const d = await client(consumerNs, ['raw', broker, '15', '3', 'consumer-1']);
    assert.deepEqual(d, { answered: true, refused: true, errorCodes: [29] });
    const p = await client(consumerNs, ['raw', broker, '0', '7', 'consumer-1', 'user-events']);
    assert.deepEqual(p, { answered: true, refused: true, errorCodes: [29] });
    const ok = await client(consumerNs, ['raw', broker, '18', '3', 'consumer-1']);
    assert.deepEqual(ok, { answered: true, refused: false, errorCodes: [0] });
  });

  it('the proxy’s Kafka records reach the flow pipeline', {
    skip: withFlows ? undefined : 'needs ulogd2',
  }, async () => {
    const from = rt.flows!.nextSeq;
    await client(consumerNs, ['raw', broker, '1', '11', 'consumer-1', 'payments']);
    const seen: Flow[] = [];
    const deadline = Date.now() + 5_000;
    while (Date.now() < deadline && !seen.some((f) => f.l7?.kafka !== undefined)) {
      for (const e of rt.flows!.since(from)) if (e.event.flow) seen.push(e.event.flow as Flow);
      await new Promise((r) => setTimeout(r, 100));
    }
    const k = seen.find((f) => f.l7?.kafka !== undefined);
    assert.ok(k, JSON.stringify(seen).slice(0, 500));
    assert.equal(k.verdict, 'DROPPED');
    assert.equal(k.traffic_direction, 'EGRESS');
    assert.deepEqual(k.l7?.kafka, {
      error_code: 29,
      api_version: 11,
      api_key: 'fetch',
      correlation_id: 7,
      topic: 'payments',
    });
  });

  it('fail closed: with the proxy killed nothing reaches the broker; it recovers', async () => {
    const worker = new KafkaClientWorker(consumerNs);
    const ask = () =>
      worker.request({
        host: brokerIP,
        port: 9092,
        apiKey: 18,
        apiVersion: 3,
        clientID: 'consumer-1',
        topics: [],
        timeoutMs: 1000,
      });
    try {
      assert.deepEqual(await ask(), { answered: true, refused: false, errorCodes: [0] });
      const n = reached().length;
      proxy.kill('SIGKILL');
      await new Promise((r) => setTimeout(r, 50));
      // the supervisor waits 300 ms and a new proxy takes a second or more to start (node + tsx)
      const answers = [];
      for (let i = 0; i < 3; i++) answers.push(await ask());
      assert.equal(proxy.status().acked, -1, 'the requests above ran while the proxy was down');
      for (const a of answers) assert.equal(a.answered, false, JSON.stringify(a));
      assert.equal(reached().length, n, 'nothing reached the broker');
      await proxy.whenReady();
      assert.ok(proxy.status().restarts >= 1);
      assert.deepEqual(
        await ask(),
        { answered: true, refused: false, errorCodes: [0] },
        'recovered after the restart',
      );
    } finally {
      await worker.close();
    }
  });
});

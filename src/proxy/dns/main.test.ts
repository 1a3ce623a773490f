import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import dnsPacket from 'dns-packet';
import type { Flow } from '../../flow/types.ts';
import type { L7RuleSet, MapStateEntry } from '../../policy/types.ts';
import {
  type DNSAnswerMessage,
  encode,
  type PolicySnapshot,
  type ProxyMessage,
  type SnapshotEndpoint,
} from '../ipc.ts';
import { FlowBatcher } from '../process.ts';
import { AnswerAcks, DNSPolicyMirror, makeNodeDNSProxy } from './main.ts';
import type { DNSProxy, LearnedAnswer } from './proxy.ts';
import { query, startUpstream, type Upstream, udpAsk } from './testing/upstream.ts';

const pos = { file: 't.yaml', line: 1, column: 1 };
const DNS_ID = 300;
const dnsRules = (...names: string[]): L7RuleSet => ({
  parser: 'dns',
  rules: names.map((n) => (n.includes('*') ? { pos, matchPattern: n } : { pos, matchName: n })),
});
const e = (
  direction: 'INGRESS' | 'EGRESS',
  identity: number,
  proto: number,
  port: number,
  verdict: MapStateEntry['verdict'],
  l7?: L7RuleSet,
): MapStateEntry => ({
  key: { direction, identity, proto, portLo: port, portHi: port },
  verdict,
  derivedFrom: [],
  ...(l7 ? { l7 } : {}),
});
const ep = (ip: string, entries: MapStateEntry[], ingressDeny = false): SnapshotEndpoint => ({
  ip,
  endpoint: `prod/${ip}`,
  namespace: 'prod',
  ingress: { enforced: ingressDeny, defaultDeny: ingressDeny },
  egress: { enforced: true, defaultDeny: true },
  entries,
});
const snapshot = (endpoints: SnapshotEndpoint[]): PolicySnapshot => ({
  version: 1,
  peers: [
    ['10.0.0.1', { identity: 1000 }],
    ['10.0.0.53', { identity: DNS_ID }],
  ],
  endpoints,
});

describe('the DNS proxy’s policy mirror: peers for the records', () => {
  it('addresses outside the ipcache share one world endpoint until the next snapshot or delta', () => {
    const m = new DNSPolicyMirror();
    m.load(snapshot([]));
    const a = m.peer('8.8.8.8');
    assert.deepEqual(a, { identity: 2, labels: ['reserved:world'] });
    assert.equal(m.peer('1.1.1.1'), a, 'the same object: records.ts caches shapes per object');
    assert.deepEqual(m.peer('10.0.0.53'), { identity: DNS_ID });
    m.load(snapshot([]));
    const b = m.peer('8.8.8.8');
    assert.notEqual(b, a, 'a snapshot: a new object');
    const delta = {
      version: 2,
      peers: [],
      removedPeers: [],
      endpoints: [],
      patches: [],
      removedEndpoints: [],
    };
    assert.ok(m.applyDelta(delta));
    assert.notEqual(m.peer('8.8.8.8'), b, 'a delta: a new object');
  });
});

describe('the DNS proxy’s policy mirror', () => {
  const rows: Array<{
    name: string;
    endpoints: SnapshotEndpoint[];
    transport?: 'udp' | 'tcp';
    port?: number;
    want: string[] | null;
  }> = [
    {
      name: 'the egress redirect’s DNS rules',
      endpoints: [ep('10.0.0.1', [e('EGRESS', DNS_ID, 17, 53, 'redirect', dnsRules('*.example.com'))])],
      want: ['*.example.com'],
    },
    {
      name: 'rules of every matching redirect (UDP entry and an any-protocol entry), ORed',
      endpoints: [
        ep('10.0.0.1', [
          e('EGRESS', DNS_ID, 17, 53, 'redirect', dnsRules('a.example.com')),
          e('EGRESS', 0, 0, 53, 'redirect', dnsRules('b.example.com')),
        ]),
      ],
      want: ['a.example.com', 'b.example.com'],
    },
    {
      name: 'TCP judged like UDP when the entry is for TCP',
      endpoints: [ep('10.0.0.1', [e('EGRESS', DNS_ID, 6, 53, 'redirect', dnsRules('t.example.com'))])],
      transport: 'tcp',
      want: ['t.example.com'],
    },
    {
      name: 'an allow beside the redirect: the L7 wildcard admits every name',
      endpoints: [
        ep('10.0.0.1', [
          e('EGRESS', DNS_ID, 17, 53, 'redirect', dnsRules('a.example.com')),
          e('EGRESS', DNS_ID, 17, 53, 'allow'),
        ]),
      ],
      want: [],
    },
    {
      name: 'a deny wins: refused',
      endpoints: [
        ep('10.0.0.1', [
          e('EGRESS', DNS_ID, 17, 53, 'redirect', dnsRules('a.example.com')),
          e('EGRESS', DNS_ID, 17, 53, 'deny'),
        ]),
      ],
      want: null,
    },
    {
      name: 'another port: no redirect, refused',
      endpoints: [ep('10.0.0.1', [e('EGRESS', DNS_ID, 17, 53, 'redirect', dnsRules('a.example.com'))])],
      port: 5353,
      want: null,
    },
    {
      name: 'a redirect of another parser: refused',
      endpoints: [ep('10.0.0.1', [e('EGRESS', DNS_ID, 17, 53, 'redirect', { parser: 'http', rules: [] })])],
      want: null,
    },
    {
      name: 'a client that is no local endpoint: refused',
      endpoints: [],
      want: null,
    },
    {
      name: 'a local server whose ingress denies: refused',
      endpoints: [
        ep('10.0.0.1', [e('EGRESS', DNS_ID, 17, 53, 'redirect', dnsRules('a.example.com'))]),
        ep('10.0.0.53', [], true),
      ],
      want: null,
    },
  ];
  for (const r of rows) {
    it(r.name, () => {
      const m = new DNSPolicyMirror();
      assert.equal(m.rules('10.0.0.1', '10.0.0.53', 'udp', 53), null, 'no snapshot yet: refused');
      m.load(snapshot(r.endpoints));
      const got = m.rules('10.0.0.1', '10.0.0.53', r.transport ?? 'udp', r.port ?? 53);
      assert.deepEqual(got === null ? null : got.map((x) => x.matchName ?? x.matchPattern), r.want);
      // asked again: the same list object (compiled once by the proxy)
      assert.equal(m.rules('10.0.0.1', '10.0.0.53', r.transport ?? 'udp', r.port ?? 53), got);
    });
  }
});

describe('the node DNS proxy: answers held until the agent acknowledges', () => {
  let up: Upstream;
  let proxy: DNSProxy;
  const sent: ProxyMessage[] = [];
  const mirror = new DNSPolicyMirror();
  let acks: AnswerAcks;
  let ackMode: 'ok' | 'fail' | 'hold' = 'ok';

  before(async () => {
    up = await startUpstream({
      'api.example.com': { answers: [{ type: 'A', name: 'api.example.com', ttl: 30, data: '192.0.2.10' }] },
    });
    const send = (m: ProxyMessage) => {
      sent.push(m);
      if (m.type !== 'dns-answer') return;
      if (ackMode === 'ok') setTimeout(() => acks.settle(m.id, true), 20);
      if (ackMode === 'fail') setTimeout(() => acks.settle(m.id, false, 'nft failed'), 5);
    };
    acks = new AnswerAcks(send);
    // loopback stands for the pod and the server it asked (any peer: identity 0 in the entry)
    mirror.load({
      version: 1,
      peers: [['127.0.0.1', { identity: 1000 }]],
      endpoints: [ep('127.0.0.1', [e('EGRESS', 0, 17, up.port, 'redirect', dnsRules('*.example.com'))])],
    });
    proxy = makeNodeDNSProxy({
      address: '127.0.0.1',
      port: 0,
      node: 'n1',
      mirror,
      // as conntrack would say for a DNAT'd query
      originalDst: () => ({ ip: '127.0.0.1', port: up.port }),
      learn: (a) => acks.learn(a),
      send,
      responseMaxDelayMs: 300,
    });
    await proxy.start();
  });

  after(async () => {
    await proxy.close();
    await up.close();
  });

  const ask = async (name: string) => {
    const t0 = performance.now();
    const b = await udpAsk(proxy.port, query(name), 2000);
    const p = b === undefined ? undefined : (dnsPacket.decode(b) as { rcode?: string });
    return { p, ms: performance.now() - t0 };
  };

  it('an allowed answer goes to the agent first and is released on its ack', async () => {
    ackMode = 'ok';
    sent.length = 0;
    const { p } = await ask('api.example.com');
    assert.equal(p?.rcode, 'NOERROR');
    const msg = sent.find((m) => m.type === 'dns-answer') as DNSAnswerMessage | undefined;
    const now = performance.timeOrigin + performance.now();
    assert.ok(
      msg?.at !== undefined && msg.at <= now && msg.at > now - 2000,
      `at ${msg?.at}: when the proxy had it`,
    );
    assert.deepEqual(msg && { ...msg, id: 0, at: 0 }, {
      type: 'dns-answer',
      id: 0,
      endpoint: 'prod/127.0.0.1',
      name: 'api.example.com.',
      ips: ['192.0.2.10'],
      ttl: 30,
      at: 0,
    });
    // the records: a request and a response, with the pod's and the server's identities
    const flows = sent.filter((m) => m.type === 'flow');
    assert.equal(flows.length, 2);
    assert.equal(acks.size, 0);
  });

  it('a failed learn: SERVFAIL, the answer is not released', async () => {
    ackMode = 'fail';
    const { p } = await ask('api.example.com');
    assert.equal(p?.rcode, 'SERVFAIL');
  });

  it('no ack within the max delay: released anyway and counted', async () => {
    ackMode = 'hold';
    const before = proxy.stats.responseDelayExceeded;
    const { p, ms } = await ask('api.example.com');
    assert.equal(p?.rcode, 'NOERROR');
    assert.ok(ms >= 250, `held ${ms} ms`);
    assert.equal(proxy.stats.responseDelayExceeded, before + 1);
    assert.ok(
      sent.some((m) => m.type === 'dns-timeout' && m.name === 'api.example.com.'),
      'the agent is told (proxy_datapath_update_timeout_total)',
    );
  });

  it('a refused name never reaches the server nor the agent', async () => {
    ackMode = 'ok';
    const n = up.received.length;
    sent.length = 0;
    const { p } = await ask('evil.test');
    assert.equal(p?.rcode, 'REFUSED');
    assert.equal(up.received.length, n);
    assert.equal(
      sent.some((m) => m.type === 'dns-answer'),
      false,
    );
  });
});

describe('AnswerAcks: repeats the agent already allows are not sent', () => {
  const answer = (o: Partial<LearnedAnswer> = {}): LearnedAnswer => ({
    endpoint: 'prod/client',
    identity: 1000,
    name: 'api.example.com.',
    ips: ['192.0.2.1', '192.0.2.2'],
    ttl: 30,
    cnames: [],
    server: { ip: '10.0.0.53', port: 53 },
    transport: 'udp',
    ...o,
  });
  const T0 = 1_000_000;
  const rows: Array<{
    name: string;
    ack?: { ok: boolean; until?: number; minTtl?: number };
    /** After the ack: time passes, the revision changes. */
    laterMs?: number;
    revision?: number;
    repeat: Partial<LearnedAnswer>;
    sent: boolean;
  }> = [
    { name: 'same addresses, expiry within what the agent said: not sent', repeat: {}, sent: false },
    { name: 'some of the addresses: not sent', repeat: { ips: ['192.0.2.2'] }, sent: false },
    { name: 'a new address: sent', repeat: { ips: ['192.0.2.1', '192.0.2.3'] }, sent: true },
    { name: 'an expiry past what the agent said: sent', repeat: { ttl: 61 }, sent: true },
    { name: 'another endpoint: sent', repeat: { endpoint: 'prod/other' }, sent: true },
    { name: 'another name: sent', repeat: { name: 'www.example.com.' }, sent: true },
    { name: 'the agent revoked addresses since: sent', revision: 8, repeat: {}, sent: true },
    { name: 'its time is up: sent', laterMs: 60_000, repeat: { ttl: 0 }, sent: true },
    {
      name: 'the agent’s min TTL would extend it: sent',
      ack: { ok: true, until: T0 + 60_000, minTtl: 120 },
      repeat: { ttl: 1 },
      sent: true,
    },
    { name: 'an ack that says no until: sent', ack: { ok: true }, repeat: {}, sent: true },
    { name: 'a failed learn: sent', ack: { ok: false, until: T0 + 60_000 }, repeat: {}, sent: true },
  ];
  for (const r of rows) {
    it(r.name, async () => {
      const sent: ProxyMessage[] = [];
      let now = T0;
      let revision = 7;
      const acks = new AnswerAcks(
        (m) => sent.push(m),
        () => revision,
        () => now,
      );
      const first = acks.learn(answer());
      const id = (sent[0] as { id: number }).id;
      const ack = r.ack ?? { ok: true, until: T0 + 60_000, minTtl: 0 };
      acks.settle(id, ack.ok, ack.ok ? undefined : 'nft failed', ack);
      await first?.catch(() => {});
      now += r.laterMs ?? 1000;
      if (r.revision !== undefined) revision = r.revision;
      const again = acks.learn(answer(r.repeat));
      assert.equal(sent.length === 2, r.sent);
      assert.equal(again === undefined, !r.sent, 'a skipped repeat has nothing to wait for');
      assert.equal(acks.skipped, r.sent ? 0 : 1);
    });
  }
});

describe('FlowBatcher (flow records to the agent, one write per window or turn)', () => {
  const flow = (i: number) => ({ uuid: `u${i}`, verdict: 'FORWARDED', Type: 'L7' }) as unknown as Flow;
  const rows: Array<{ name: string; max: number; push: number; writesNow: number; writesLater: number }> = [
    { name: 'records of one turn: one write after it', max: 256, push: 3, writesNow: 0, writesLater: 1 },
    {
      name: 'past max: written at once, the rest after the turn',
      max: 2,
      push: 3,
      writesNow: 1,
      writesLater: 2,
    },
    { name: 'nothing pushed: nothing written', max: 256, push: 0, writesNow: 0, writesLater: 0 },
  ];
  for (const r of rows) {
    it(r.name, async () => {
      const writes: string[] = [];
      const b = new FlowBatcher((t) => writes.push(t), r.max); // a window of one turn
      for (let i = 0; i < r.push; i++) b.push(flow(i));
      assert.equal(writes.length, r.writesNow);
      await new Promise((res) => setImmediate(res));
      assert.equal(writes.length, r.writesLater);
      const want = Array.from({ length: r.push }, (_, i) => encode({ type: 'flow', flow: flow(i) })).join('');
      assert.equal(writes.join(''), want, 'the same lines send() writes, in order');
    });
  }

  it('a window: records of several turns in one write at its end', async () => {
    const writes: string[] = [];
    const b = new FlowBatcher((t) => writes.push(t), 256, undefined, 30);
    b.push(flow(1));
    await new Promise((res) => setImmediate(res));
    b.push(flow(2));
    await new Promise((res) => setImmediate(res));
    assert.equal(writes.length, 0, 'nothing written before the window ends');
    await new Promise((res) => setTimeout(res, 60));
    assert.deepEqual(writes, [
      encode({ type: 'flow', flow: flow(1) }) + encode({ type: 'flow', flow: flow(2) }),
    ]);
  });

  it('flush() writes what is pending (the proxy stopping)', () => {
    const writes: string[] = [];
    const b = new FlowBatcher((t) => writes.push(t));
    b.push(flow(1));
    b.flush();
    assert.equal(writes.length, 1);
    b.flush();
    assert.equal(writes.length, 1);
  });
});

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import dnsPacket from 'dns-packet';
import type { Flow } from '../../flow/types.ts';
import type { PortRuleDNS } from '../../policy-api/types.ts';
import type { ProxyMessage } from '../ipc.ts';
import { DNSFlowExpander } from './compact.ts';
import { DNSProxy, type LearnedAnswer, type RedirectContext } from './proxy.ts';
import { query, startUpstream, tcpAsk, type Upstream, udpAsk } from './testing/upstream.ts';
import { frame } from './wire.ts';

const pos = { file: 't.yaml', line: 1, column: 1 };
const RULES: PortRuleDNS[] = [
  { pos, matchName: 'api.example.com' },
  { pos, matchPattern: '*.cdn.example.net' },
];

let up: Upstream;
before(async () => {
  up = await startUpstream({
    'api.example.com': { answers: [{ type: 'A', name: 'api.example.com', ttl: 300, data: '203.0.113.10' }] },
    'img.cdn.example.net': {
      answers: [
        { type: 'CNAME', name: 'img.cdn.example.net', ttl: 600, data: 'edge.Provider.example.' },
        { type: 'CNAME', name: 'edge.provider.example', ttl: 60, data: 'pop1.provider.example' },
        { type: 'A', name: 'pop1.provider.example', ttl: 120, data: '198.51.100.7' },
        { type: 'AAAA', name: 'pop1.provider.example', ttl: 90, data: '2001:db8::7' },
      ],
    },
    'slow.cdn.example.net': {
      delayMs: 300,
      answers: [{ type: 'A', name: 'slow.cdn.example.net', ttl: 5, data: '198.51.100.8' }],
    },
    'big.cdn.example.net': {
      truncated: true,
      answers: [{ type: 'A', name: 'big.cdn.example.net', ttl: 5, data: '198.51.100.9' }],
    },
    'liar.cdn.example.net': {
      answers: [{ type: 'A', name: 'bank.example.org', ttl: 5, data: '192.0.2.66' }],
    },
  });
});
after(() => up.close());

function ctx(rules: readonly PortRuleDNS[] = RULES): RedirectContext {
  return {
    endpoint: {
      key: 'prod/app',
      identity: 1234,
      flow: { ID: 7, identity: 1234, namespace: 'prod', pod_name: 'app' },
    },
    server: { ip: '127.0.0.1', port: up.port, identity: 5678 },
    rules,
  };
}

async function withProxy(
  opts: Partial<ConstructorParameters<typeof DNSProxy>[0]>,
  fn: (p: DNSProxy, learned: LearnedAnswer[], flows: Flow[]) => Promise<void>,
): Promise<void> {
  const learned: LearnedAnswer[] = [];
  const flows: Flow[] = [];
  const p = new DNSProxy({
    resolveRedirect: () => ctx(),
    onAnswer: (a) => {
      learned.push(a);
    },
    onFlow: (f) => flows.push(f),
    ...opts,
  });
  await p.start();
  try {
    await fn(p, learned, flows);
  } finally {
    await p.close();
  }
}

type Answer = dnsPacket.Packet & { rcode?: string; answers?: Array<{ type: string; data?: unknown }> };

async function ask(port: number, transport: 'udp' | 'tcp', msg: Buffer): Promise<Answer | undefined> {
  if (transport === 'udp') {
    const b = await udpAsk(port, msg);
    return b && (dnsPacket.decode(b) as Answer);
  }
  const r = await tcpAsk(port, frame(msg));
  return r.answers[0] && (dnsPacket.decode(r.answers[0]) as Answer);
}

describe('DNS proxy: judged per name, forwarded or refused', () => {
  const rows: Array<{
    name: string;
    transport: 'udp' | 'tcp';
    qname: string;
    rcode: string;
    ips: string[];
    opts?: object;
  }> = [
    {
      name: 'matchName allowed (udp)',
      transport: 'udp',
      qname: 'api.example.com',
      rcode: 'NOERROR',
      ips: ['203.0.113.10'],
    },
    {
      name: 'matchName allowed (tcp)',
      transport: 'tcp',
      qname: 'api.example.com',
      rcode: 'NOERROR',
      ips: ['203.0.113.10'],
    },
    {
      name: 'case-insensitive, trailing dot',
      transport: 'udp',
      qname: 'API.Example.COM.',
      rcode: 'NOERROR',
      ips: ['203.0.113.10'],
    },
    {
      name: 'matchPattern label wildcard',
      transport: 'udp',
      qname: 'img.cdn.example.net',
      rcode: 'NOERROR',
      ips: ['198.51.100.7', '2001:db8::7'],
    },
    {
      name: 'pattern does not cross a dot (refused)',
      transport: 'udp',
      qname: 'a.b.cdn.example.net',
      rcode: 'REFUSED',
      ips: [],
    },
    {
      name: 'other name refused (udp)',
      transport: 'udp',
      qname: 'evil.example.com',
      rcode: 'REFUSED',
      ips: [],
    },
    {
      name: 'other name refused (tcp)',
      transport: 'tcp',
      qname: 'evil.example.com',
      rcode: 'REFUSED',
      ips: [],
    },
    {
      name: 'nameError option gives NXDOMAIN',
      transport: 'udp',
      qname: 'evil.example.com',
      rcode: 'NXDOMAIN',
      ips: [],
      opts: { rejectResponseCode: 'nameError' },
    },
  ];
  for (const r of rows) {
    test(r.name, async () => {
      await withProxy(r.opts ?? {}, async (p) => {
        const before = up.received.length;
        const a = await ask(p.port, r.transport, query(r.qname, 'A', 0x4242));
        assert.ok(a, 'an answer');
        assert.equal(a.id, 0x4242, 'same id');
        assert.equal(a.rcode, r.rcode);
        const ips = (a.answers ?? [])
          .filter((x) => x.type === 'A' || x.type === 'AAAA')
          .map((x) => String((x as { data?: unknown }).data));
        assert.deepEqual(ips, r.ips);
        const forwarded = up.received.length - before;
        assert.equal(forwarded, r.rcode === 'NOERROR' ? 1 : 0, 'only allowed queries reach the server');
      });
    });
  }
});

describe('DNS proxy: answers feed toFQDNs before release', () => {
  test('CNAME chain collapsed onto the queried name, lowest TTL', async () => {
    await withProxy({}, async (p, learned) => {
      await ask(p.port, 'udp', query('IMG.cdn.example.net'));
      assert.deepEqual(learned, [
        {
          endpoint: 'prod/app',
          identity: 1234,
          name: 'img.cdn.example.net.',
          ips: ['198.51.100.7', '2001:db8::7'],
          ttl: 60,
          cnames: ['edge.Provider.example.', 'pop1.provider.example.'],
          server: { ip: '127.0.0.1', port: up.port },
          transport: 'udp',
        },
      ]);
    });
  });

  test('refused and failed answers teach nothing', async () => {
    await withProxy({}, async (p, learned) => {
      await ask(p.port, 'udp', query('evil.example.com'));
      assert.deepEqual(learned, []);
    });
  });

  test('the answer waits for onAnswer', async () => {
    const order: string[] = [];
    await withProxy(
      {
        onAnswer: async () => {
          order.push('update started');
          await new Promise((r) => setTimeout(r, 40));
          order.push('update applied');
        },
      },
      async (p) => {
        const a = await ask(p.port, 'udp', query('api.example.com'));
        order.push('answer received');
        assert.equal(a?.rcode, 'NOERROR');
        assert.deepEqual(order, ['update started', 'update applied', 'answer received']);
        assert.equal(p.stats.learned, 1);
        assert.equal(p.stats.responseDelayExceeded, 0);
      },
    );
  });

  test('the wait is capped at --tofqdns-proxy-response-max-delay (100 ms), and counted', async () => {
    await withProxy({ onAnswer: () => new Promise((r) => setTimeout(r, 1000)) }, async (p) => {
      const t0 = Date.now();
      const a = await ask(p.port, 'udp', query('api.example.com'));
      const ms = Date.now() - t0;
      assert.equal(a?.rcode, 'NOERROR');
      assert.ok(ms >= 95 && ms < 900, `released after the cap, not the update (${ms} ms)`);
      assert.equal(p.stats.responseDelayExceeded, 1);
    });
  });

  test('answers for one name are handed over one at a time', async () => {
    let running = 0;
    let most = 0;
    await withProxy(
      {
        onAnswer: async () => {
          running++;
          most = Math.max(most, running);
          await new Promise((r) => setTimeout(r, 20));
          running--;
        },
      },
      async (p) => {
        await Promise.all([1, 2, 3].map((i) => ask(p.port, 'udp', query('api.example.com', 'A', i))));
        assert.equal(most, 1);
      },
    );
  });

  test('onAnswer failing: SERVFAIL, counted', async () => {
    await withProxy({ onAnswer: () => Promise.reject(new Error('nft failed')) }, async (p) => {
      const a = await ask(p.port, 'udp', query('api.example.com'));
      assert.equal(a?.rcode, 'SERVFAIL');
      assert.equal(p.stats.onAnswerErrors, 1);
    });
  });
});

describe('DNS proxy: answers relayed as the server sent them, or not at all', () => {
  test('TC bit honoured over UDP (the client retries over TCP)', async () => {
    await withProxy({}, async (p) => {
      const a = await ask(p.port, 'udp', query('big.cdn.example.net'));
      assert.ok(a && (a.flags! & dnsPacket.TRUNCATED_RESPONSE) !== 0);
    });
  });

  test('answer records outside the chain: SERVFAIL, not relayed, nothing learnt', async () => {
    await withProxy({}, async (p, learned) => {
      const a = await ask(p.port, 'udp', query('liar.cdn.example.net'));
      assert.equal(a?.rcode, 'SERVFAIL');
      assert.deepEqual(learned, []);
      assert.equal(p.stats.dropped['answer-mismatch'], 1);
    });
  });

  test('no redirect context: SERVFAIL, never forwarded', async () => {
    await withProxy({ resolveRedirect: () => undefined }, async (p) => {
      const before = up.received.length;
      const a = await ask(p.port, 'udp', query('api.example.com'));
      assert.equal(a?.rcode, 'SERVFAIL');
      assert.equal(up.received.length, before);
      assert.equal(p.stats.noContext, 1);
    });
  });

  test('a context lookup that throws is no context', async () => {
    await withProxy(
      {
        resolveRedirect: () => {
          throw new Error('ipcache');
        },
      },
      async (p) => {
        const a = await ask(p.port, 'tcp', query('api.example.com'));
        assert.equal(a?.rcode, 'SERVFAIL');
      },
    );
  });

  test('upstream timeout: nothing sent, counted', async () => {
    await withProxy({ upstreamTimeoutMs: 100 }, async (p) => {
      const b = await udpAsk(p.port, query('slow.cdn.example.net'), 600);
      assert.equal(b, undefined);
      assert.equal(p.stats.upstreamTimeouts, 1);
    });
  });

  test('empty DNS rule list forwards every query (as Cilium)', async () => {
    await withProxy({ resolveRedirect: () => ctx([]) }, async (p) => {
      const a = await ask(p.port, 'udp', query('api.example.com'));
      assert.equal(a?.rcode, 'NOERROR');
    });
  });
});

describe('DNS proxy: upstream socket pool', () => {
  test('queries with the same id at once each get their own answer, with their id', async () => {
    await withProxy({}, async (p) => {
      const names = ['api.example.com', 'img.cdn.example.net', 'big.cdn.example.net', 'api.example.com'];
      const answers = await Promise.all(names.map((n) => ask(p.port, 'udp', query(n, 'A', 77))));
      assert.deepEqual(
        answers.map((a) => [a?.id, a?.questions?.[0]?.name.toLowerCase()]),
        names.map((n) => [77, n]),
      );
    });
  });

  test('many queries through one pool, in batches (a burst beyond the socket buffer would be lost)', async () => {
    await withProxy({}, async (p) => {
      for (let batch = 0; batch < 6; batch++) {
        const ids = Array.from({ length: 50 }, (_, i) => batch * 50 + i);
        const answers = await Promise.all(
          ids.map((id) => ask(p.port, 'udp', query('api.example.com', 'A', id))),
        );
        assert.deepEqual(
          answers.map((a) => [a?.id, a?.rcode]),
          ids.map((id) => [id, 'NOERROR']),
        );
      }
    });
  });
});

describe('DNS proxy: bounds', () => {
  test('--dnsproxy-concurrency-limit: past it SERVFAIL at once, counted', async () => {
    await withProxy({ concurrencyLimit: 1 }, async (p) => {
      const [slow, fast] = await Promise.all([
        ask(p.port, 'udp', query('slow.cdn.example.net', 'A', 1)),
        new Promise((r) => setTimeout(r, 50)).then(() =>
          ask(p.port, 'udp', query('api.example.com', 'A', 2)),
        ),
      ]);
      assert.equal(slow?.rcode, 'NOERROR');
      assert.equal(fast?.rcode, 'SERVFAIL');
      assert.equal(p.stats.concurrencyRejected, 1);
    });
  });

  test('maxInFlight: past it queries are dropped (memory bound)', async () => {
    await withProxy({ maxInFlight: 1 }, async (p) => {
      const [slow, dropped] = await Promise.all([
        ask(p.port, 'udp', query('slow.cdn.example.net', 'A', 1)),
        new Promise((r) => setTimeout(r, 50)).then(() =>
          udpAsk(p.port, query('api.example.com', 'A', 2), 500),
        ),
      ]);
      assert.equal(slow?.rcode, 'NOERROR');
      assert.equal(dropped, undefined);
      assert.equal(p.stats.overloaded, 1);
    });
  });

  test('TCP idle connections are closed', async () => {
    await withProxy({ tcpIdleTimeoutMs: 100 }, async (p) => {
      const r = await tcpAsk(p.port, Buffer.alloc(0), { timeoutMs: 1000, want: 1 });
      assert.equal(r.closed, true);
    });
  });

  test('TCP: several queries pipelined on one connection', async () => {
    await withProxy({}, async (p) => {
      const bytes = Buffer.concat([1, 2, 3].map((i) => frame(query('api.example.com', 'A', i))));
      const r = await tcpAsk(p.port, bytes, { want: 3 });
      assert.deepEqual(r.answers.map((b) => dnsPacket.decode(b).id).sort(), [1, 2, 3]);
    });
  });
});

describe('DNS proxy: flow records', () => {
  test('request and response in Hubble shape', async () => {
    await withProxy({}, async (p, _l, flows) => {
      await ask(p.port, 'udp', query('img.cdn.example.net'));
      assert.equal(flows.length, 2);
      const [req, resp] = flows as [Flow, Flow];
      assert.equal(req.Type, 'L7');
      assert.equal(req.verdict, 'FORWARDED');
      assert.deepEqual(req.l7?.dns, {
        query: 'img.cdn.example.net.',
        observation_source: 'proxy',
        qtypes: ['A'],
      });
      assert.equal(req.l7?.type, 'REQUEST');
      assert.equal(req.source?.pod_name, 'app');
      assert.equal(req.destination?.identity, 5678);
      assert.equal(resp.l7?.type, 'RESPONSE');
      assert.equal(resp.is_reply, true);
      assert.deepEqual(resp.l7?.dns, {
        query: 'img.cdn.example.net.',
        ips: ['198.51.100.7', '2001:db8::7'],
        ttl: 60,
        cnames: ['edge.Provider.example.', 'pop1.provider.example.'],
        observation_source: 'proxy',
        qtypes: ['A'],
        rrtypes: ['CNAME', 'CNAME', 'A', 'AAAA'],
      });
      assert.equal(resp.IP?.source, '127.0.0.1');
      assert.equal(resp.destination?.pod_name, 'app');
    });
  });

  test('a refused query is one DROPPED request record', async () => {
    await withProxy({}, async (p, _l, flows) => {
      await ask(p.port, 'udp', query('evil.example.com', 'AAAA'));
      assert.deepEqual(
        flows.map((f) => [f.verdict, f.l7?.type, f.Summary]),
        [['DROPPED', 'REQUEST', 'DNS Query evil.example.com. AAAA']],
      );
    });
  });
});

describe('DNS proxy: records as compact lines (the node proxy), expanded, are the records as objects', () => {
  // the mirror's objects: the same ones query after query, as main.ts's resolveRedirect gives them
  const clientFlow = { ID: 7, identity: 1234, namespace: 'prod', pod_name: 'app', labels: ['k8s:app=app'] };
  const serverFlow = { ID: 9, identity: 5678, namespace: 'kube-system', pod_name: 'coredns' };
  const stable = (): RedirectContext => ({
    endpoint: { key: 'prod/app', identity: 1234, flow: clientFlow },
    server: { ip: '127.0.0.1', port: up.port, identity: 5678, flow: serverFlow },
    rules: RULES,
  });
  /** Time, uuid, latency and the client's port vary per run: the rest must be equal. */
  const normal = (f: Flow) => {
    const { time: _t, uuid: _u, l4: _l4, ...rest } = f as Flow & { l4?: unknown };
    if (rest.l7 !== undefined) rest.l7 = { ...rest.l7, latency_ns: 'n' } as typeof rest.l7;
    return rest;
  };
  const ROWS = [
    { name: 'allowed, CNAME chain with A and AAAA', msg: query('img.cdn.example.net'), records: 2 },
    { name: 'refused (AAAA)', msg: query('evil.example.com', 'AAAA'), records: 1 },
    {
      name: 'answer for another name: dropped, the query record only',
      msg: query('liar.cdn.example.net'),
      records: 1,
    },
  ];
  for (const row of ROWS) {
    for (const transport of ['udp', 'tcp'] as const) {
      test(`${row.name}, ${transport}`, async () => {
        const objects: Flow[] = [];
        const lines: string[] = [];
        await withProxy({ resolveRedirect: stable, onFlow: (f) => objects.push(f) }, async (p) => {
          await ask(p.port, transport, row.msg);
        });
        // onFlow is set too (withProxy's): lines take its place
        await withProxy(
          { resolveRedirect: stable, onFlowLine: (l) => lines.push(l) },
          async (p, _l, flows) => {
            await ask(p.port, transport, row.msg);
            assert.equal(flows.length, 0);
          },
        );
        assert.equal(lines.length, row.records);
        assert.ok(lines.every((l) => l.endsWith('\n')));
        // as the agent reads them (agent/proxy.ts)
        const agent = new DNSFlowExpander();
        const got: Flow[] = [];
        for (const l of lines
          .join('')
          .split('\n')
          .filter((x) => x !== '')) {
          const m = JSON.parse(l) as ProxyMessage;
          if (m.type === 'dns-shape') agent.shape(m);
          else if (m.type === 'dns-flow') got.push(agent.flow(m)!);
          else assert.fail(`a ${m.type} message`);
        }
        assert.equal(agent.unknown, 0);
        assert.deepEqual(got.map(normal), objects.map(normal));
      });
    }
  }
});

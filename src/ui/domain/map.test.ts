import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { icmpWorldEgress } from '../../flow/testing/flows.ts';
import { cardHeight, layoutKey, layoutMap } from './layout.ts';
import { buildServiceMap, busiestNamespace, cardOf, MAX_ADDRESSES, namespacesOf } from './map.ts';
import { httpGet, manyFlows, uiFlows } from './testing/flows.ts';

const flows = () => uiFlows().map((u) => u.flow);

describe('service map from flows', () => {
  it('cards per workload plus world, host, remote-node and kube-dns', () => {
    const m = buildServiceMap(flows());
    assert.deepEqual(
      m.cards.map((c) => `${c.id} ${c.kind}`),
      [
        'host host',
        'kube-system/coredns kube-dns',
        'production/backend workload',
        'production/frontend workload',
        'remote-node remote-node',
        'world world',
      ],
    );
  });

  it('arrows per port and protocol with the verdict status; replies are no arrows', () => {
    const m = buildServiceMap(flows());
    assert.deepEqual(
      m.arrows.map((a) => `${a.from} → ${a.to} ${a.port} ${a.status}`),
      [
        'host → production/backend 8080/TCP forwarded',
        'production/frontend → kube-system/coredns 53/UDP forwarded',
        'production/frontend → production/backend 8080/TCP forwarded',
        'production/frontend → production/backend 8443/TCP audit',
        'production/frontend → production/backend ICMPv4 8 dropped',
        'production/frontend → world 53/UDP dropped',
        'production/frontend → world ICMPv4 8 forwarded',
        'remote-node → production/backend 9090/TCP dropped',
      ],
    );
    const ab = m.arrows.find((a) => a.id === 'production/frontend→production/backend:8080/TCP')!;
    assert.deepEqual(ab.counts, { forwarded: 2, dropped: 0, audit: 0, other: 0 });
  });

  const statusRows: { name: string; records: [string, 'INGRESS' | 'EGRESS'][]; want: string }[] = [
    {
      name: 'both verdicts at one observation point: mixed',
      records: [
        ['FORWARDED', 'INGRESS'],
        ['DROPPED', 'INGRESS'],
      ],
      want: 'mixed',
    },
    {
      name: 'forwarded at egress, dropped at ingress: the connection was dropped',
      records: [
        ['FORWARDED', 'EGRESS'],
        ['DROPPED', 'INGRESS'],
      ],
      want: 'dropped',
    },
    {
      name: 'forwarded at both points',
      records: [
        ['FORWARDED', 'EGRESS'],
        ['FORWARDED', 'INGRESS'],
      ],
      want: 'forwarded',
    },
    {
      name: 'audit at ingress, forwarded at egress',
      records: [
        ['FORWARDED', 'EGRESS'],
        ['AUDIT', 'INGRESS'],
      ],
      want: 'audit',
    },
  ];
  for (const r of statusRows)
    it(`arrow status: ${r.name}`, () => {
      const base = flows()[0]!;
      const m = buildServiceMap(
        r.records.map(([verdict, traffic_direction]) => ({
          ...base,
          verdict: verdict as 'FORWARDED',
          traffic_direction,
        })),
      );
      assert.equal(m.arrows.length, 1);
      assert.equal(m.arrows[0]!.status, r.want);
    });

  it('L7 endpoints on the destination card: HTTP method and path without query, DNS names', () => {
    const m = buildServiceMap(flows());
    assert.deepEqual(m.cards.find((c) => c.id === 'production/backend')!.l7, ['GET /api/users']);
    assert.deepEqual(m.cards.find((c) => c.id === 'kube-system/coredns')!.l7, ['dns api.github.com']);
  });

  it('Kafka topics on the broker card (the Kafka proxy record: api_key and topic)', () => {
    const base = flows().find((f) => f.uuid === httpGet.uuid)!;
    const produce = {
      ...base,
      l7: { type: 'REQUEST' as const, kafka: { api_key: 'produce', topic: 'orders' } },
    };
    const fetch = {
      ...produce,
      l7: { type: 'REQUEST' as const, kafka: { api_key: 'fetch', topic: 'payments' } },
    };
    const m = buildServiceMap([produce, fetch, produce]);
    assert.deepEqual(m.cards.find((c) => c.id === 'production/backend')!.l7, [
      'kafka orders',
      'kafka payments',
    ]);
  });

  it('entity cards list the addresses seen there in numeric order; workload cards none', () => {
    const m = buildServiceMap(flows());
    const addresses = Object.fromEntries(m.cards.map((c) => [c.id, c.addresses]));
    assert.deepEqual(addresses, {
      host: ['10.0.0.1'],
      'kube-system/coredns': [],
      'production/backend': [],
      'production/frontend': [],
      'remote-node': ['10.0.2.1'],
      world: ['198.51.100.7', '203.0.113.10'],
    });
  });

  it('an entity card keeps at most MAX_ADDRESSES addresses, and none for 0.0.0.0', () => {
    const base = flows().find((f) => f.uuid === icmpWorldEgress.uuid)!;
    const many = Array.from({ length: MAX_ADDRESSES + 10 }, (_, i) => ({
      ...base,
      IP: { source: '10.0.1.10', destination: `198.51.${i >> 8}.${i & 255}`, ipVersion: 'IPv4' as const },
    }));
    const world = buildServiceMap(many).cards.find((c) => c.id === 'world')!;
    assert.equal(world.addresses.length, MAX_ADDRESSES);
    assert.equal(world.addresses[1], '198.51.0.1');
    const none = buildServiceMap([{ ...base, IP: { ...base.IP!, destination: '0.0.0.0' } }]);
    assert.deepEqual(none.cards.find((c) => c.id === 'world')!.addresses, []);
  });

  const toggles: { name: string; opts: object; gone: string }[] = [
    { name: 'hide host', opts: { hideHost: true }, gone: 'host' },
    { name: 'hide kube-dns', opts: { hideKubeDNS: true }, gone: 'kube-system/coredns' },
    { name: 'hide remote-node', opts: { hideRemoteNode: true }, gone: 'remote-node' },
  ];
  for (const t of toggles)
    it(`toggle: ${t.name}`, () => {
      const m = buildServiceMap(flows(), t.opts);
      assert.ok(!m.cards.some((c) => c.id === t.gone));
      assert.ok(!m.arrows.some((a) => a.from === t.gone || a.to === t.gone));
      assert.ok(m.cards.some((c) => c.id === 'production/frontend'));
    });

  it('namespace picker: the namespaces seen, and a namespace keeps flows with a side in it', () => {
    assert.deepEqual(namespacesOf(flows()), ['kube-system', 'production']);
    assert.equal(busiestNamespace(flows()), 'production');
    const m = buildServiceMap(flows(), { namespace: 'kube-system' });
    assert.deepEqual(
      m.cards.map((c) => c.id),
      ['kube-system/coredns', 'production/frontend'],
    );
  });

  const cardRows: { name: string; ep: object; want: string }[] = [
    {
      name: 'workload name wins',
      ep: {
        namespace: 'a',
        pod_name: 'web-1',
        workloads: [{ name: 'web', kind: 'Deployment' }],
        labels: ['k8s:app=x'],
      },
      want: 'a/web',
    },
    {
      name: 'then the app label',
      ep: { namespace: 'a', pod_name: 'web-1', labels: ['k8s:app=x'] },
      want: 'a/x',
    },
    { name: 'then the pod', ep: { namespace: 'a', pod_name: 'web-1', labels: [] }, want: 'a/web-1' },
    {
      name: 'a CIDR identity is world',
      ep: { identity: 16777217, labels: ['cidr:1.2.3.4/32', 'reserved:world'] },
      want: 'world',
    },
    {
      name: 'kube-apiserver wins over host',
      ep: { identity: 7, labels: ['reserved:host', 'reserved:kube-apiserver'] },
      want: 'kube-apiserver',
    },
    { name: 'an unlabelled identity', ep: { identity: 4 }, want: 'other:identity 4' },
  ];
  for (const r of cardRows) it(`card of: ${r.name}`, () => assert.equal(cardOf(r.ep).id, r.want));

  it('200 workloads over 10,000 flows: 200 cards, laid out without overlap', () => {
    const m = buildServiceMap(manyFlows(10_000).map((u) => u.flow));
    assert.equal(m.cards.length, 200);
    const l = layoutMap(m);
    const boxes = [...l.cards.values()];
    assert.equal(boxes.length, 200);
    for (let i = 0; i < boxes.length; i++)
      for (let j = i + 1; j < boxes.length; j++) {
        const a = boxes[i]!;
        const b = boxes[j]!;
        const overlap =
          a.x < b.x + b.width && b.x < a.x + a.width && a.y < b.y + b.height && b.y < a.y + a.height;
        assert.ok(!overlap, `${a.id} overlaps ${b.id}`);
      }
  });

  it('card height grows with L7 lines and stops at the cap', () => {
    assert.ok(cardHeight(1) > cardHeight(0));
    assert.equal(cardHeight(100), cardHeight(7));
  });
});

describe('layout key: the map is laid out again only when its graph changes', () => {
  const base = () => buildServiceMap(flows());
  const rows: {
    name: string;
    change: (fs: ReturnType<typeof flows>) => ReturnType<typeof flows>;
    same: boolean;
  }[] = [
    { name: 'more flows on the same arrows', change: (fs) => [...fs, ...fs], same: true },
    {
      name: 'a new port between known cards',
      change: (fs) => [
        ...fs,
        { ...fs[0]!, l4: { TCP: { source_port: 1, destination_port: 9999, flags: { SYN: true } } } },
      ],
      same: false,
    },
    {
      name: 'a new L7 line makes a card taller',
      change: (fs) => [
        ...fs,
        {
          ...fs.find((f) => f.uuid === httpGet.uuid)!,
          l7: { type: 'REQUEST', http: { method: 'PUT', url: 'http://backend:8080/x' } },
        },
      ],
      same: false,
    },
    {
      name: 'a card gone',
      change: (fs) =>
        fs.filter(
          (f) => f.uuid !== icmpWorldEgress.uuid && !f.destination?.labels?.includes('reserved:world'),
        ),
      same: false,
    },
  ];
  for (const r of rows)
    it(r.name, () =>
      assert.equal(layoutKey(buildServiceMap(r.change(flows()))) === layoutKey(base()), r.same),
    );
});

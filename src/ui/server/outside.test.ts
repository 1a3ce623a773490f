import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { loadPolicyTestFile } from '../../policytest/parse.ts';
import { loadScenario } from '../../policytest/scenario.ts';
import { buildServiceMap } from '../domain/map.ts';
import { addressIn, entityAddress, outsideRequests } from './outside.ts';
import { PolicyContext } from './policies.ts';
import { type FlowLine, policySource } from './sources.ts';

const TESTDATA = join(import.meta.dirname, '..', 'testdata');

describe('an address inside a CIDR', () => {
  const rows: { name: string; cidr: string; except?: string[]; want: string | undefined }[] = [
    { name: 'the first host address of a /24', cidr: '192.0.2.0/24', want: '192.0.2.1' },
    { name: 'a /32 is its address', cidr: '192.0.2.7/32', want: '192.0.2.7' },
    { name: 'a bare address', cidr: '192.0.2.7', want: '192.0.2.7' },
    { name: 'a /31 starts at its network address', cidr: '192.0.2.6/31', want: '192.0.2.6' },
    { name: 'clear of the excepts', cidr: '192.0.2.0/24', except: ['192.0.2.0/28'], want: '192.0.2.16' },
    { name: 'the excepts cover it all', cidr: '192.0.2.0/30', except: ['192.0.2.0/30'], want: undefined },
    { name: 'the world', cidr: '0.0.0.0/0', want: '0.0.0.1' },
    { name: 'IPv6 is not drawn', cidr: '2001:db8::/32', want: undefined },
    { name: 'not a CIDR', cidr: 'nope', want: undefined },
  ];
  for (const r of rows) it(r.name, () => assert.equal(addressIn(r.cidr, r.except), r.want));
});

describe('the address of an entity', () => {
  const rows: {
    name: string;
    entity: 'world' | 'host' | 'remote-node' | 'kube-apiserver';
    used: string[];
    want: string;
  }[] = [
    { name: 'world: the live replay test host', entity: 'world', used: [], want: '203.0.113.10' },
    { name: 'host: the node', entity: 'host', used: [], want: '172.31.255.1' },
    { name: 'remote-node', entity: 'remote-node', used: [], want: '172.31.255.2' },
    { name: 'kube-apiserver', entity: 'kube-apiserver', used: [], want: '172.31.255.3' },
    {
      name: 'a taken address moves to 100.64.255.0/24',
      entity: 'world',
      used: ['203.0.113.10', '100.64.255.10'],
      want: '100.64.255.11',
    },
  ];
  for (const r of rows) it(r.name, () => assert.equal(entityAddress(r.entity, new Set(r.used)), r.want));
});

describe('requests for the outside entries of a pod', () => {
  const pod = { namespace: 'web', name: 'site', ports: [{ port: 8080 }] };
  const rows: { name: string; entries: Parameters<typeof outsideRequests>[1]; want: string[] }[] = [
    {
      name: 'ingress on the entry ports',
      entries: [
        {
          direction: 'INGRESS',
          peers: [{ kind: 'entity', entity: 'world' }],
          ports: [{ protocol: 'UDP', port: 53 }],
        },
      ],
      want: ['world → web/site UDP 53'],
    },
    {
      name: 'ingress on every port: the pod declared ports',
      entries: [{ direction: 'INGRESS', peers: [{ kind: 'ip', ip: '192.0.2.1' }], ports: [] }],
      want: ['192.0.2.1 → web/site TCP 8080'],
    },
    {
      name: 'egress on every port: an ICMP echo',
      entries: [{ direction: 'EGRESS', peers: [{ kind: 'entity', entity: 'kube-apiserver' }], ports: [] }],
      want: ['web/site → kube-apiserver ICMP'],
    },
    {
      name: 'the same request twice is one',
      entries: [
        {
          direction: 'EGRESS',
          peers: [{ kind: 'ip', ip: '192.0.2.1' }],
          ports: [{ protocol: 'TCP', port: 443 }],
        },
        {
          direction: 'EGRESS',
          peers: [{ kind: 'ip', ip: '192.0.2.1' }],
          ports: [{ protocol: 'TCP', port: 443 }],
        },
      ],
      want: ['web/site → 192.0.2.1 TCP 443'],
    },
  ];
  const text = (p: { kind: string; ip?: string; entity?: string; namespace?: string; name?: string }) =>
    p.kind === 'ip' ? p.ip : p.kind === 'entity' ? p.entity : `${p.namespace}/${p.name}`;
  for (const r of rows)
    it(r.name, () =>
      assert.deepEqual(
        outsideRequests(pod, r.entries).map(
          (q) => `${text(q.src)} → ${text(q.dst)} ${q.protocol}${q.dport !== undefined ? ` ${q.dport}` : ''}`,
        ),
        r.want,
      ),
    );
});

/** The flows `seawall ui` shows for these files alone (a PolicyTest's flows when `test`). */
async function policyFlows(o: { files: string[]; policies?: string[]; test?: boolean }): Promise<FlowLine[]> {
  const sc = await loadScenario({ files: o.files, policies: o.policies ?? [] });
  const r = PolicyContext.create(sc);
  assert.ok(r.ctx, JSON.stringify(r.issues));
  const flows: FlowLine[] = [];
  const test = o.test ? (await loadPolicyTestFile(o.files[0]!)).tests[0] : undefined;
  const src = policySource(r.ctx, sc.endpoints, test);
  src.start(
    (f) => flows.push(f),
    () => {},
  );
  return flows;
}

describe('policies-only flows give the entities the addresses the policies name', () => {
  it('manifests: entity and CIDR peers of the rules become flows, with addresses on the cards', async () => {
    const flows = await policyFlows({
      files: [join(TESTDATA, 'manifests')],
      policies: [join(TESTDATA, 'manifest-policies.yaml')],
    });
    const lines = flows.map(
      (l) =>
        `${l.flow.IP?.source} → ${l.flow.IP?.destination} ${Object.keys(l.flow.l4 ?? {})[0]} ${l.flow.verdict}`,
    );
    assert.deepEqual(lines, [
      '10.0.3.20 → 10.0.3.10 TCP DROPPED',
      '10.0.3.10 → 10.0.3.20 TCP FORWARDED',
      '203.0.113.10 → 10.0.3.10 TCP FORWARDED',
      '172.31.255.1 → 10.0.3.10 TCP FORWARDED',
      '172.31.255.2 → 10.0.3.10 TCP FORWARDED',
      '10.0.3.10 → 192.0.2.16 TCP FORWARDED',
      '10.0.3.10 → 198.51.100.1 ICMPv4 DROPPED',
      '10.0.3.20 → 203.0.113.129 TCP FORWARDED',
      '10.0.3.20 → 172.31.255.3 TCP FORWARDED',
    ]);
    const cards = buildServiceMap(flows.map((l) => l.flow)).cards;
    const addresses = Object.fromEntries(
      cards.filter((c) => c.addresses.length > 0).map((c) => [c.id, c.addresses]),
    );
    assert.deepEqual(addresses, {
      host: ['172.31.255.1'],
      'kube-apiserver': ['172.31.255.3'],
      'remote-node': ['172.31.255.2'],
      world: ['192.0.2.16', '198.51.100.1', '203.0.113.10', '203.0.113.129'],
    });
  });

  it('a PolicyTest: an entity peer has the test host address the live replay gives it', async () => {
    const flows = await policyFlows({ files: [join(TESTDATA, 'demo.policytest.yaml')], test: true });
    const remote = flows.find((l) => (l.flow.source?.labels ?? []).includes('reserved:remote-node'));
    assert.equal(remote?.flow.IP?.source, '172.31.255.2');
    assert.ok(flows.every((l) => l.flow.IP?.source !== '0.0.0.0' && l.flow.IP?.destination !== '0.0.0.0'));
  });
});

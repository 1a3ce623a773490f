import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { CompiledEndpoint } from '../datapath/nft/compile.ts';
import type { Flow } from '../flow/types.ts';
import type { EndpointPolicy, MapStateEntry } from '../policy/types.ts';
import { type DNSFlowMessage, type DNSShapeMessage, dnsFlowMessage } from '../proxy/dns/compact.ts';
import type { HTTPFlowMessage, HTTPShapeMessage } from '../proxy/http/compact.ts';
import { type ProxyMessage, patchEndpoint, type SnapshotEndpoint } from '../proxy/ipc.ts';
import { buildDelta, buildSnapshot, diffEndpoint, ProxyRecords } from './proxy.ts';
import type { NodeRuntime } from './runtime.ts';

const pos = { file: 't', line: 1, column: 1 };
const ref = {
  kind: 'CiliumNetworkPolicy',
  namespace: 'ns',
  name: 'p',
} as unknown as MapStateEntry['derivedFrom'][0];

function entry(
  identity: number,
  verdict: MapStateEntry['verdict'],
  parser?: 'dns' | 'http',
  path = '/',
): MapStateEntry {
  const e: MapStateEntry = {
    key: { direction: 'EGRESS', identity, proto: 6, portLo: 80, portHi: 80 },
    verdict,
    derivedFrom: [ref],
  };
  if (parser === 'dns') e.l7 = { parser, rules: [{ pos, matchPattern: '*' }] };
  if (parser === 'http') e.l7 = { parser, rules: [{ pos, method: 'GET', path }] };
  return e;
}

const ep = (entries: MapStateEntry[], ip = '10.0.0.1'): SnapshotEndpoint => ({
  ip,
  endpoint: 'ns/client',
  namespace: 'ns',
  ingress: { enforced: false, defaultDeny: false },
  egress: { enforced: true, defaultDeny: true },
  entries,
});

const text = (es: MapStateEntry[]) =>
  es
    .map((e) => `${e.key.identity} ${e.verdict} ${e.l7?.parser ?? '-'} ${JSON.stringify(e.l7?.rules ?? [])}`)
    .sort();

describe('diffEndpoint (the entries an FQDN delta sends)', () => {
  const base = [entry(1001, 'redirect', 'dns'), entry(1002, 'allow')];
  const rows: Array<{
    name: string;
    was: MapStateEntry[];
    now: MapStateEntry[];
    removed: number;
    added: number;
  }> = [
    {
      name: 'the same entries (new objects): nothing',
      was: base,
      now: base.map((e) => structuredClone(e)),
      removed: 0,
      added: 0,
    },
    {
      name: 'a learnt identity: one entry added',
      was: base,
      now: [...base, entry(1003, 'allow')],
      removed: 0,
      added: 1,
    },
    { name: 'an expired identity: one entry removed', was: base, now: [base[0]!], removed: 1, added: 0 },
    {
      name: 'same key, other rules: removed and added',
      was: [entry(1003, 'redirect', 'http', '/a')],
      now: [entry(1003, 'redirect', 'http', '/b')],
      removed: 1,
      added: 1,
    },
    {
      name: 'same key and verdict, another parser: a second entry',
      was: [entry(1003, 'redirect', 'http')],
      now: [entry(1003, 'redirect', 'http'), entry(1003, 'redirect', 'dns')],
      removed: 0,
      added: 1,
    },
  ];
  for (const r of rows) {
    it(r.name, () => {
      const was = ep(r.was);
      const now = ep(r.now);
      const p = diffEndpoint(was, now);
      assert.equal(p.removed.length, r.removed);
      assert.equal(p.added.length, r.added);
      assert.deepEqual(text(patchEndpoint(was, p).entries), text(now.entries), 'the patch brings was to now');
    });
  }
});

/** A runtime with what buildSnapshot/buildDelta read: the kernel's compiled state and the engine. */
function fakeRuntime() {
  const policies = new Map<string, MapStateEntry[]>();
  const endpoints = new Map<number, CompiledEndpoint>();
  const ipcache = new Map<string, number>();
  const pods = [
    { key: 'pod:ns/client', id: 1, spec: { name: 'client', namespace: 'ns', labels: {}, ip: '10.0.0.1' } },
    { key: 'pod:ns/other', id: 2, spec: { name: 'other', namespace: 'ns', labels: {}, ip: '10.0.0.2' } },
  ];
  const compiled = (id: number, ip: string) => {
    endpoints.set(id, {
      id,
      endpoint: '',
      ip,
      in: { sets: [] },
      eg: { sets: [] },
    } as unknown as CompiledEndpoint);
  };
  const rt = {
    engine: {
      config: { clusterName: 'default' },
      labelsOf: (id: number) => [`test:id=${id}`],
      endpointPolicy: (ns: string, name: string): EndpointPolicy => ({
        endpoint: `${ns}/${name}`,
        identity: 1000,
        ingress: { enforced: false, defaultDeny: false },
        egress: { enforced: true, defaultDeny: true },
        entries: policies.get(`${ns}/${name}`) ?? [],
        selectedBy: [],
      }),
    },
    datapath: {
      nft: { state: { ipcache, endpoints } },
      podSpecs: () => pods,
      endpointIds: () => ({ 'pod:ns/client': 1, 'pod:ns/other': 2 }),
      topo: { nodeIp: '172.31.255.1', hostByIp: () => undefined },
    },
  };
  return { rt: rt as unknown as NodeRuntime, policies, ipcache, compiled };
}

describe('buildDelta (what an FQDN sync sends a proxy instead of a snapshot)', () => {
  it('after a snapshot: learnt addresses, patched endpoints, endpoints entering and leaving the mirror', () => {
    const { rt, policies, ipcache, compiled } = fakeRuntime();
    ipcache.set('10.0.0.1', 1000);
    ipcache.set('10.0.0.53', 1001);
    policies.set('ns/client', [entry(1001, 'redirect', 'dns')]);
    compiled(1, '10.0.0.1');
    compiled(2, '10.0.0.2');
    const sent = { peers: new Map(), endpoints: new Map() };
    const snap = buildSnapshot(rt, 1, sent);
    assert.deepEqual(
      snap.endpoints.map((e) => e.ip),
      ['10.0.0.1'],
    );

    const none = buildDelta(rt, 2, sent);
    assert.deepEqual(
      [none.peers, none.removedPeers, none.endpoints, none.patches, none.removedEndpoints],
      [[], [], [], [], []],
      'nothing changed: an empty delta',
    );

    // an answer: a new address and identity, the client's entry for it, the other pod's first redirect
    ipcache.set('192.0.2.10', 1002);
    ipcache.delete('10.0.0.53');
    policies.set('ns/client', [entry(1001, 'redirect', 'dns'), entry(1002, 'redirect', 'http')]);
    policies.set('ns/other', [entry(1002, 'redirect', 'http')]);
    compiled(1, '10.0.0.1');
    compiled(2, '10.0.0.2');
    const d = buildDelta(rt, 3, sent);
    assert.deepEqual(d.peers, [['192.0.2.10', { identity: 1002, labels: ['test:id=1002'] }]]);
    assert.deepEqual(d.removedPeers, ['10.0.0.53']);
    assert.deepEqual(
      d.patches.map((p) => [p.ip, p.removed.length, p.added.map((e) => e.key.identity)]),
      [['10.0.0.1', 0, [1002]]],
      'only the entry that changed',
    );
    assert.deepEqual(
      d.endpoints.map((e) => e.ip),
      ['10.0.0.2'],
      'a first redirect entry: the endpoint whole',
    );

    // the other pod loses its redirect: it leaves the mirror; an unchanged compiled form is skipped
    policies.set('ns/other', [entry(1002, 'allow')]);
    policies.set('ns/client', []); // not recompiled: the kernel still has the old form
    compiled(2, '10.0.0.2');
    const d2 = buildDelta(rt, 4, sent);
    assert.deepEqual(d2.removedEndpoints, ['10.0.0.2']);
    assert.deepEqual(d2.patches, []);
  });
});

describe('ProxyRecords (a proxy process’s records as the agent takes them)', () => {
  const client = { ID: 7, identity: 1234, labels: ['k8s:app=a'], namespace: 'prod', pod_name: 'a' };
  const server = { ID: 9, identity: 5678, namespace: 'kube-system', pod_name: 'coredns' };
  const shape: DNSShapeMessage = {
    type: 'dns-shape',
    id: 1,
    shape: {
      nodeName: 'n',
      type: 'REQUEST',
      verdict: 'FORWARDED',
      transport: 'UDP',
      client: { ip: '10.0.0.5', endpoint: client },
      server: { ip: '10.0.0.10', endpoint: server },
    },
  };
  const rec = (s: number): DNSFlowMessage =>
    dnsFlowMessage({
      s,
      t: Date.parse('2026-12-01T20:00:00.123Z'),
      cp: 40000,
      sp: 53,
      q: 'api.example.com.',
      qt: ['A'],
    });
  const httpShape: HTTPShapeMessage = {
    type: 'http-shape',
    id: 3,
    shape: {
      nodeName: 'n',
      type: 'REQUEST',
      verdict: 'FORWARDED',
      direction: 'INGRESS',
      client: { ip: '10.0.0.5', endpoint: client },
      server: { ip: '10.0.0.9', port: 8080, endpoint: server },
    },
  };
  const httpRec = (s: number): HTTPFlowMessage => ({
    type: 'http-flow',
    s,
    t: Date.parse('2026-12-01T20:00:00.123Z'),
    cp: 40000,
    m: 'GET',
    u: 'http://api/',
    p: 'HTTP/1.1',
  });
  const rows: Array<{ name: string; msgs: ProxyMessage[]; flows: number; lost: number }> = [
    {
      name: 'a flow message: ingested as it is',
      msgs: [{ type: 'flow', flow: { uuid: 'u' } as Flow }],
      flows: 1,
      lost: 0,
    },
    { name: 'a shape, then its records: expanded', msgs: [shape, rec(1), rec(1)], flows: 2, lost: 0 },
    {
      name: 'a record whose shape never came: lost, counted',
      msgs: [rec(2), shape, rec(1)],
      flows: 1,
      lost: 1,
    },
    {
      name: 'an HTTP shape, then its records: expanded',
      msgs: [httpShape, httpRec(3), httpRec(3)],
      flows: 2,
      lost: 0,
    },
    {
      name: 'an HTTP record whose shape never came: lost, counted',
      msgs: [httpRec(4), httpShape, httpRec(3)],
      flows: 1,
      lost: 1,
    },
    {
      name: 'losses the proxy reported: counted',
      msgs: [{ type: 'flows-lost', count: 17 }],
      flows: 0,
      lost: 17,
    },
  ];
  for (const r of rows) {
    it(r.name, () => {
      const flows: Flow[] = [];
      let lost = 0;
      const p = new ProxyRecords({ ingest: (f) => flows.push(f), lost: (n) => (lost += n) });
      for (const m of r.msgs) p.take(m as Parameters<ProxyRecords['take']>[0]);
      assert.equal(flows.length, r.flows);
      assert.equal(lost, r.lost);
    });
  }

  it('an expanded HTTP record is the one httpFlowRecord makes', () => {
    const flows: Flow[] = [];
    const p = new ProxyRecords({ ingest: (f) => flows.push(f), lost: () => assert.fail('lost') });
    p.take(httpShape);
    p.take(httpRec(3));
    const f = flows[0]!;
    assert.equal(f.Summary, 'HTTP/1.1 GET http://api/');
    assert.deepEqual(f.l4, { TCP: { source_port: 40000, destination_port: 8080 } });
    assert.deepEqual(f.source, client);
    assert.notEqual(f.source, client, 'each record its own objects');
  });

  it('an expanded record is the one dnsFlowRecord makes', () => {
    const flows: Flow[] = [];
    const p = new ProxyRecords({ ingest: (f) => flows.push(f), lost: () => assert.fail('lost') });
    p.take(shape);
    p.take(rec(1));
    const f = flows[0]!;
    assert.equal(f.time, '2026-12-01T20:00:00.123Z');
    assert.equal(f.Summary, 'DNS Query api.example.com. A');
    assert.deepEqual(f.source, client);
    assert.notEqual(f.source, client, 'each record its own objects');
    assert.deepEqual(f.l4, { UDP: { source_port: 40000, destination_port: 53 } });
  });
});

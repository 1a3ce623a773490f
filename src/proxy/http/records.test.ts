import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { type HTTPRecordInput, httpFlowRecord } from '../../flow/l7-record.ts';
import type { Flow, FlowEndpoint } from '../../flow/types.ts';
import type { RuleRef } from '../../policy/types.ts';
import { encode, type ProxyMessage } from '../ipc.ts';
import { HTTPFlowExpander } from './compact.ts';
import type { HTTPRuleSet } from './context.ts';
import { HTTPRecordMessages, MAX_HTTP_SHAPES_PER_PAIR } from './records.ts';
import {
  contextFor,
  ingress,
  parseResponses,
  rawExchange,
  rules,
  startProxy,
  startUpstream,
} from './test-support.ts';

const TIME = new Date('2026-12-01T20:00:00.123Z');
const UUID = '3b1f2c4e-5d6a-4b7c-8d9e-0f1a2b3c4d5e';

const client: FlowEndpoint = {
  ID: 7,
  identity: 1234,
  labels: ['k8s:app=app', 'k8s:io.kubernetes.pod.namespace=prod'],
  cluster_name: 'default',
  namespace: 'prod',
  pod_name: 'app',
};
const server: FlowEndpoint = {
  ID: 9,
  identity: 5678,
  labels: ['k8s:app=api', 'k8s:io.kubernetes.pod.namespace=prod'],
  namespace: 'prod',
  pod_name: 'api',
};
const world: FlowEndpoint = { identity: 2, labels: ['reserved:world'] };

const ref = (name: string, namespace?: string): RuleRef => ({
  kind: namespace === undefined ? 'CiliumClusterwideNetworkPolicy' : 'CiliumNetworkPolicy',
  name,
  ...(namespace === undefined ? {} : { namespace }),
  ruleIndex: 0,
  section: 'ingress',
  entryIndex: 0,
  pos: { file: 'p.yaml', line: 3, column: 5 },
});
const INGRESS_ONLY = { ingress: [ref('allow-get', 'prod')] };
const BOTH = {
  egress: [ref('egress-http', 'prod')],
  ingress: [ref('allow-get', 'prod'), ref('cluster-wide')],
};

/** A record input; a field given as undefined is left out. */
function input(o: { [K in keyof HTTPRecordInput]?: HTTPRecordInput[K] | undefined } = {}): HTTPRecordInput {
  const r = {
    time: TIME,
    nodeName: 'node-1',
    type: 'REQUEST',
    verdict: 'FORWARDED',
    direction: 'INGRESS',
    client: { ip: '10.0.1.5', port: 40123, endpoint: client },
    server: { ip: '10.0.1.9', port: 8080, endpoint: server },
    method: 'GET',
    url: 'http://api/public/item?id=1',
    protocol: 'HTTP/1.1',
    headers: [['host', 'api']],
    allowedBy: INGRESS_ONLY,
    proxyPort: 15001,
    ...o,
  } as Record<string, unknown>;
  for (const k of Object.keys(r)) if (r[k] === undefined) delete r[k];
  return r as unknown as HTTPRecordInput;
}

/** The agent's side: each line parsed as agent/proxy.ts does, shapes kept, records expanded. */
function expandAll(text: string, x = new HTTPFlowExpander(), uuid = UUID): Array<Flow | undefined> {
  const out: Array<Flow | undefined> = [];
  for (const l of text.split('\n').filter((s) => s !== '')) {
    const m = JSON.parse(l) as ProxyMessage;
    if (m.type === 'http-shape') x.shape(m);
    else if (m.type === 'http-flow') out.push(x.flow(m, uuid));
    else if (m.type === 'flow') out.push(m.flow);
    else assert.fail(`unexpected ${m.type}`);
  }
  return out;
}

describe('HTTP records: compact messages, expanded by the agent, equal the record object encoded', () => {
  const rows: Array<{ name: string; r: HTTPRecordInput }> = [
    { name: 'request forwarded, ingress, one policy', r: input() },
    {
      name: 'request forwarded, egress and ingress policies',
      r: input({ direction: 'EGRESS', allowedBy: BOTH }),
    },
    { name: 'request forwarded, no allowedBy', r: input({ allowedBy: undefined }) },
    {
      name: 'request denied, with its reason (allowedBy is not shown)',
      r: input({
        verdict: 'DROPPED',
        note: 'ingress: no HTTP rule matched',
        method: 'POST',
        url: 'http://api/admin',
      }),
    },
    { name: 'request forwarded with a LOG note', r: input({ note: 'headerMatches LOG: x-token mismatch' }) },
    {
      name: 'response with status, headers and latency',
      r: input({
        type: 'RESPONSE',
        code: 200,
        latencyNs: 1_234_567n,
        headers: [
          ['content-type', 'text/plain'],
          ['content-length', '2'],
        ],
      }),
    },
    {
      name: 'response 403 from the proxy, latency as a number',
      r: input({ type: 'RESPONSE', code: 403, latencyNs: 52_000, verdict: 'FORWARDED' }),
    },
    {
      name: 'response with a latency over a second',
      r: input({ type: 'RESPONSE', code: 504, latencyNs: 3_600_000_000_123n }),
    },
    { name: 'no headers, no proxy port', r: input({ headers: [], proxyPort: undefined }) },
    {
      name: 'headers with a redacted secret',
      r: input({
        headers: [
          ['authorization', '[redacted]'],
          ['host', 'api'],
        ],
      }),
    },
    {
      name: 'HTTP/1.0, an absolute-form target',
      r: input({ protocol: 'HTTP/1.0', url: 'http://10.0.1.9:8080/a' }),
    },
    {
      name: 'gRPC over HTTP/2',
      r: input({
        protocol: 'HTTP/2',
        method: 'POST',
        url: 'http://api/bench.Svc/Echo',
        headers: [['content-type', 'application/grpc']],
      }),
    },
    {
      name: 'IPv6 addresses',
      r: input({
        client: { ip: 'fd00::1:5', port: 40123, endpoint: client },
        server: { ip: 'fd00::1:9', port: 80, endpoint: server },
      }),
    },
    {
      name: 'escapes in the url, headers and note',
      r: input({
        url: 'http://api/p"a\\th/\u00e9\u2028',
        headers: [['x-q', 'a"b\\c\u0001']],
        note: 'why: "quoted"',
      }),
    },
    {
      name: 'egress to the world',
      r: input({ direction: 'EGRESS', server: { ip: '1.2.3.4', port: 80, endpoint: world } }),
    },
    { name: 'a status of 0 (no answer)', r: input({ type: 'RESPONSE', code: 0, latencyNs: 10n }) },
    {
      name: 'the uuid of the proxy, when it made one',
      r: input({ uuid: 'aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee' }),
    },
    {
      name: 'a kernel-style timestamp: the full record',
      r: input({ time: { seconds: 1_796_000_000, nanos: 123_456_789 }, uuid: UUID }),
    },
  ];
  for (const row of rows) {
    test(row.name, () => {
      const slow = encode({ type: 'flow', flow: httpFlowRecord({ uuid: UUID, ...row.r }) });
      const msgs = new HTTPRecordMessages();
      // twice: the first announces the shape, the second is the record alone
      const first = msgs.line(row.r);
      const second = msgs.line(row.r);
      const [a, b] = expandAll(first + second);
      assert.equal(encode({ type: 'flow', flow: a! }), slow);
      assert.equal(encode({ type: 'flow', flow: b! }), slow);
      assert.ok(second.length < first.length || first.startsWith('{"type":"flow"'), 'the shape goes once');
    });
  }

  test('each record expanded into its own endpoint objects', () => {
    const msgs = new HTTPRecordMessages();
    const [a, b] = expandAll(msgs.line(input()) + msgs.line(input()));
    assert.notEqual(a!.source, client);
    assert.notEqual(a!.source, b!.source);
    assert.deepEqual(a!.source, client);
  });

  test('without a uuid the agent makes one per record', () => {
    const msgs = new HTTPRecordMessages();
    const x = new HTTPFlowExpander();
    const text = msgs.line(input()) + msgs.line(input());
    const flows: Flow[] = [];
    for (const l of text.split('\n').filter((s) => s !== '')) {
      const m = JSON.parse(l) as ProxyMessage;
      if (m.type === 'http-shape') x.shape(m);
      else if (m.type === 'http-flow') flows.push(x.flow(m)!);
    }
    assert.equal(flows.length, 2);
    assert.match(flows[0]!.uuid, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    assert.notEqual(flows[0]!.uuid, flows[1]!.uuid);
  });
});

describe('HTTP records: shapes', () => {
  const rows: Array<{ name: string; inputs: HTTPRecordInput[]; built: number }> = [
    {
      name: 'the same shape: built once',
      inputs: [input(), input({ client: { ...input().client, port: 5 } }), input({ url: 'http://api/x' })],
      built: 1,
    },
    {
      name: 'request and response, forwarded and denied: a shape each',
      inputs: [input(), input({ type: 'RESPONSE', code: 200 }), input({ verdict: 'DROPPED' })],
      built: 3,
    },
    {
      name: 'another policies object: another shape; a denial ignores it',
      inputs: [
        input(),
        input({ allowedBy: BOTH }),
        input({ verdict: 'DROPPED' }),
        input({ verdict: 'DROPPED', allowedBy: BOTH }),
      ],
      built: 3,
    },
    {
      name: 'another endpoint object (a new snapshot): another shape',
      inputs: [input(), input({ client: { ...input().client, endpoint: { ...client } } })],
      built: 2,
    },
    {
      name: 'another server port or client address: another shape',
      inputs: [
        input(),
        input({ server: { ...input().server, port: 81 } }),
        input({ client: { ...input().client, ip: '10.0.1.6' } }),
      ],
      built: 3,
    },
    {
      name: 'another server address, direction, proxy port (or none) or node: another shape',
      inputs: [
        input(),
        input({ server: { ...input().server, ip: '10.0.1.99' } }),
        input({ direction: 'EGRESS' }),
        input({ proxyPort: 15002 }),
        input({ proxyPort: undefined }),
        input({ nodeName: 'node-b' }),
        input(),
      ],
      built: 6,
    },
  ];
  for (const row of rows) {
    test(row.name, () => {
      const msgs = new HTTPRecordMessages();
      const text = row.inputs.map((r) => msgs.line(r)).join('');
      assert.equal(msgs.built, row.built);
      assert.equal(text.split('\n').filter((l) => l.startsWith('{"type":"http-shape"')).length, row.built);
      // and every record expands into the slow path's record
      const flows = expandAll(text);
      row.inputs.forEach((r, i) => {
        assert.equal(JSON.stringify(flows[i]), JSON.stringify(httpFlowRecord({ uuid: UUID, ...r })));
      });
    });
  }

  test(`past ${MAX_HTTP_SHAPES_PER_PAIR} shapes per endpoint pair the pair starts over, records still expand`, () => {
    const msgs = new HTTPRecordMessages();
    const inputs = Array.from({ length: MAX_HTTP_SHAPES_PER_PAIR + 5 }, (_, i) =>
      input({ server: { ip: '10.0.1.9', port: 1000 + i, endpoint: server } }),
    );
    const text = [...inputs, inputs[0]!].map((r) => msgs.line(r)).join('');
    // the first shape was dropped with the pair's cache and is built (and announced) again
    assert.equal(msgs.built, MAX_HTTP_SHAPES_PER_PAIR + 6);
    const flows = expandAll(text);
    assert.equal(JSON.stringify(flows.at(-1)), JSON.stringify(httpFlowRecord({ uuid: UUID, ...inputs[0]! })));
  });
});

describe('HTTP records: losses', () => {
  test('after a loss every shape is announced again', () => {
    const msgs = new HTTPRecordMessages();
    msgs.line(input());
    // the batch with the shape was lost: a new agent-side expander stands for what the agent has
    msgs.lost();
    const flows = expandAll(msgs.line(input()), new HTTPFlowExpander());
    assert.ok(flows[0] !== undefined);
  });

  test('a record whose shape never came is undefined (the agent counts it lost)', () => {
    const msgs = new HTTPRecordMessages();
    msgs.line(input());
    const flows = expandAll(msgs.line(input()), new HTTPFlowExpander());
    assert.deepEqual(flows, [undefined]);
  });

  const bounded = [
    { name: 'with the bound (half the agent’s shapes per epoch): nothing lost', maxAnnounced: 2, lost: 0 },
    { name: 'without it: a shape in use is evicted, its records lost', maxAnnounced: 1_000, lost: 1 },
  ];
  for (const row of bounded) {
    test(`an agent keeping 4 shapes, 5 in use: ${row.name}`, () => {
      const msgs = new HTTPRecordMessages(row.maxAnnounced);
      const x = new HTTPFlowExpander(4);
      const inputs = Array.from({ length: 5 }, (_, i) =>
        input({ server: { ip: '10.0.1.9', port: 2000 + i, endpoint: server } }),
      );
      let lost = 0;
      for (let round = 0; round < 3; round++) {
        for (const r of inputs) lost += expandAll(msgs.line(r), x).filter((f) => f === undefined).length;
      }
      if (row.lost === 0) assert.equal(lost, 0);
      else assert.ok(lost >= row.lost, `lost ${lost}`);
    });
  }
});

describe('HTTPFlowExpander (the agent side)', () => {
  test('least recently used out first: a shape in use stays', () => {
    const msgs = new HTTPRecordMessages();
    const x = new HTTPFlowExpander(2);
    const a = input();
    const b = input({ server: { ...input().server, port: 1 } });
    const c = input({ server: { ...input().server, port: 2 } });
    expandAll(msgs.line(a), x);
    expandAll(msgs.line(b), x);
    expandAll(msgs.line(a), x); // a used last
    expandAll(msgs.line(c), x); // evicts b
    assert.equal(x.size, 2);
    assert.ok(expandAll(msgs.line(a), x)[0] !== undefined);
    assert.deepEqual(expandAll(msgs.line(b), x), [undefined]);
  });
});

describe('HTTP records from the proxy: what main.ts sends, expanded, is what onFlow got', () => {
  const policy = rules(
    { method: 'GET', path: '/public/.*' },
    {
      method: 'GET',
      path: '/secret',
      headerMatches: [{ name: 'X-Token', secret: { namespace: 'default', name: 'token' } }],
    },
  );
  const egress = (): HTTPRuleSet => ({ ...ingress(policy, 'client-egress'), direction: 'EGRESS' });
  // shapes: one per kind of record (the endpoint objects are the same on every connection, as the
  // mirror's are), not one per request
  const rows: Array<{
    name: string;
    sets: () => HTTPRuleSet[];
    send: string[];
    statuses: number[];
    shapes: number;
  }> = [
    {
      name: 'allowed and denied, ingress only',
      sets: () => [ingress(policy)],
      send: [
        'GET /public/a HTTP/1.1\r\nHost: shop\r\n\r\n',
        'POST /admin HTTP/1.1\r\nHost: shop\r\nContent-Length: 0\r\n\r\n',
      ],
      statuses: [200, 403],
      // forwarded request, denied request, response (the 403 one's too)
      shapes: 3,
    },
    {
      name: 'both sides judged (egress and ingress), a secret header redacted',
      sets: () => [egress(), ingress(policy)],
      send: [
        'GET /public/b HTTP/1.1\r\nHost: shop\r\n\r\n',
        'GET /secret HTTP/1.1\r\nHost: shop\r\nX-Token: s3cret\r\n\r\n',
        'GET /public/c HTTP/1.1\r\nHost: shop\r\n\r\n',
      ],
      statuses: [200, 200, 200],
      // forwarded request (the pair of sets' policies: one object), response
      shapes: 2,
    },
  ];
  for (const row of rows) {
    test(row.name, async () => {
      const up = await startUpstream();
      const msgs = new HTTPRecordMessages();
      const x = new HTTPFlowExpander();
      const pairs: Array<[string, string]> = [];
      const secrets = (ns: string | undefined, name: string) =>
        ns === 'default' && name === 'token' ? 's3cret' : undefined;
      const sets = { current: row.sets() as readonly HTTPRuleSet[] };
      const ctx = contextFor(up.address, sets);
      const p = await startProxy(up.address, sets.current, {
        lookup: () => ctx,
        secrets,
        onRecord: (r) => {
          const slow = encode({ type: 'flow', flow: httpFlowRecord({ uuid: UUID, ...r }) });
          const [fast] = expandAll(msgs.line(r), x);
          pairs.push([encode({ type: 'flow', flow: fast! }), slow]);
        },
      });
      try {
        // the same requests three times over: the shapes do not grow with the requests
        for (let i = 0; i < 3; i++) {
          const res = await rawExchange(p.address, [row.send.join('')], { expectResponses: row.send.length });
          assert.deepEqual(
            parseResponses(res.data).map((s) => s.status),
            row.statuses,
          );
        }
        await new Promise((d) => setTimeout(d, 20));
        assert.equal(pairs.length, 3 * 2 * row.send.length);
        for (const [fast, slow] of pairs) assert.equal(fast, slow);
        assert.ok(!pairs.some(([f]) => f.includes('s3cret')), 'the secret is redacted');
        assert.equal(msgs.built, row.shapes, `${msgs.built} shapes for ${pairs.length} records`);
      } finally {
        await p.close();
        await up.close();
      }
    });
  }
});

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { tcpAllowedIngress } from '../../flow/testing/flows.ts';
import { startHubbleServer } from '../../observe/hubble/server.ts';
import { ringOf } from '../../observe/hubble/testing.ts';
import { loadScenario } from '../../policytest/scenario.ts';
import { uiFlows } from '../domain/testing/flows.ts';
import { ruleKey } from '../domain/types.ts';
import { type Harness, startHarness } from '../testing/harness.ts';
import { PolicyContext } from './policies.ts';
import { hubbleSource, hubbleTarget, timestamp } from './sources.ts';

const POLICIES = join(import.meta.dirname, '..', 'testdata', 'policies.yaml');

function get(
  url: string,
  o: { method?: string; body?: string; host?: string; until?: (s: string) => boolean } = {},
): Promise<{ status: number; body: string; type: string }> {
  return new Promise((resolve, reject) => {
    const u = new URL(url);
    const req = request(
      {
        host: u.hostname,
        port: u.port,
        path: u.pathname + u.search,
        method: o.method ?? 'GET',
        headers: o.host ? { host: o.host } : {},
      },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => {
          body += d;
          if (o.until?.(body)) {
            req.destroy();
            resolve({ status: res.statusCode ?? 0, body, type: String(res.headers['content-type']) });
          }
        });
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, body, type: String(res.headers['content-type']) }),
        );
      },
    );
    req.on('error', reject);
    if (o.body !== undefined) req.write(o.body);
    req.end();
  });
}

describe('ui server over a saved flow file with policies', { timeout: 60_000 }, () => {
  let h: Harness;
  before(async () => {
    h = await startHarness({ flows: uiFlows(), policies: [POLICIES] });
  });
  after(() => h.close());

  it('the SSE stream sends the window as flow-log lines with their rule hits, then each new flow', async () => {
    const r = await get(`${h.url}/api/flows`, { until: (s) => s.includes('event: synced') });
    assert.equal(r.status, 200);
    assert.match(r.type, /text\/event-stream/);
    const win = r.body.split('\n\n').find((e) => e.startsWith('event: window'))!;
    const rows = JSON.parse(win.split('\n')[1]!.slice('data: '.length)) as {
      seq: number;
      line: Record<string, unknown>;
      rules: { name: string }[];
    }[];
    assert.equal(rows.length, 10);
    assert.equal(rows[0]!.seq, 1);
    assert.deepEqual(Object.keys(rows[0]!.line), ['flow', 'node_name', 'time']);
    assert.equal((rows[0]!.line.flow as { uuid: string }).uuid, tcpAllowedIngress.uuid);
    assert.deepEqual(rows[0]!.rules.map((x) => x.name).sort(), ['backend-ingress', 'frontend-egress']);

    const h2 = await startHarness({ flows: uiFlows(), policies: [POLICIES] });
    try {
      // A flow that arrives later is a `flow` event (the flow-log line, id = seq) and a `rules` event.
      // Added once the stream has sent its window, so that it arrives as a live event.
      let added = false;
      const live = get(`${h2.url}/api/flows`, {
        until: (s) => {
          if (!added && s.includes('event: synced')) {
            added = true;
            h2.server.store.add(
              {
                flow: { ...tcpAllowedIngress, uuid: 'live-1' },
                node_name: 'node-1',
                time: tcpAllowedIngress.time,
              },
              [{ ...uiFlows()[0]!.rules[0]!, file: 'x.yaml' }],
            );
          }
          return s.includes('event: rules') && s.includes('id: 11');
        },
      });
      const body = (await live).body;
      const ev = body
        .split('\n\n')
        .find((e) => e.startsWith('id: 11'))!
        .split('\n');
      assert.equal(ev[1], 'event: flow');
      const line = JSON.parse(ev[2]!.slice('data: '.length)) as Record<string, unknown>;
      assert.deepEqual(Object.keys(line), ['flow', 'node_name', 'time']);
      assert.match(body, /event: rules\ndata: \{"seq":11,"rules":\[\{"kind":"CiliumNetworkPolicy"/);
    } finally {
      await h2.close();
    }
  });

  it('/api/export: the filtered flows as JSON lines; a bad filter is a 400 that says why', async () => {
    const ok = await get(
      `${h.url}/api/export?filter=${encodeURIComponent('to:port=8080 !from:label=reserved:host')}&verdict=forwarded`,
    );
    assert.equal(ok.status, 200);
    const uuids = ok.body
      .trim()
      .split('\n')
      .map((l) => (JSON.parse(l) as { flow: { uuid: string } }).flow.uuid);
    assert.equal(uuids.length, 2);
    const upTo3 = await get(`${h.url}/api/export?until=3`);
    assert.deepEqual(
      upTo3.body
        .trim()
        .split('\n')
        .map((l) => (JSON.parse(l) as { flow: { uuid: string } }).flow.uuid),
      uiFlows()
        .slice(0, 3)
        .map((u) => u.flow.uuid),
    );
    const bad = await get(`${h.url}/api/export?filter=bogus=1`);
    assert.equal(bad.status, 400);
    assert.match(bad.body, /"bogus" is not a filter kind/);
    const badVerdict = await get(`${h.url}/api/export?verdict=maybe`);
    assert.equal(badVerdict.status, 400);
  });

  it('/api/policy: unknown endpoints and bad names are 400s with the known ones', async () => {
    const r = await get(`${h.url}/api/policy?endpoint=production/nope`);
    assert.equal(r.status, 400);
    assert.match(r.body, /no endpoint production\/nope \(known: .*production\/backend/);
    assert.equal((await get(`${h.url}/api/policy?endpoint=backend`)).status, 400);
    const good = await get(`${h.url}/api/policy?endpoint=production/backend`);
    assert.equal(good.status, 200);
  });

  const traceRows: { name: string; body: string; status: number; want: RegExp }[] = [
    {
      name: 'allowed',
      body: JSON.stringify({
        from: { pod: 'production/frontend' },
        to: { pod: 'production/backend' },
        port: 8080,
      }),
      status: 200,
      want: /Verdict: FORWARDED/,
    },
    {
      name: 'denied',
      body: JSON.stringify({
        from: { pod: 'production/frontend' },
        to: { pod: 'production/backend' },
        port: 9090,
      }),
      status: 200,
      want: /Verdict: DROPPED/,
    },
    { name: 'not JSON', body: '{', status: 400, want: /body:/ },
    {
      name: 'bad port',
      body: JSON.stringify({ from: { pod: 'a/b' }, to: { pod: 'a/c' }, port: 70000 }),
      status: 400,
      want: /1-65535/,
    },
    {
      name: 'unknown pod',
      body: JSON.stringify({ from: { pod: 'nobody' }, to: { pod: 'production/backend' }, port: 80 }),
      status: 400,
      want: /no unique pod/,
    },
  ];
  for (const r of traceRows)
    it(`/api/trace: ${r.name}`, async () => {
      const res = await get(`${h.url}/api/trace`, { method: 'POST', body: r.body });
      assert.equal(res.status, r.status, res.body);
      const j = JSON.parse(res.body) as { text?: string; error?: string };
      assert.match(j.text ?? j.error ?? '', r.want);
    });

  it('a request naming another Host is refused (DNS rebinding)', async () => {
    const r = await get(`${h.url}/api/info`, { host: 'evil.example:12000' });
    assert.equal(r.status, 403);
    assert.equal((await get(`${h.url}/api/info`)).status, 200);
  });
});

describe('ui server without policies', () => {
  it('policy view and trace say how to get them', async () => {
    const h = await startHarness({ flows: uiFlows() });
    try {
      const r = await get(`${h.url}/api/policy?endpoint=production/backend`);
      assert.equal(r.status, 404);
      assert.match(r.body, /--policies/);
      const info = JSON.parse((await get(`${h.url}/api/info`)).body) as { policies: boolean };
      assert.equal(info.policies, false);
    } finally {
      await h.close();
    }
  });
});

describe('ui server from a Hubble API (--server)', () => {
  const rows: [string, string | RegExp][] = [
    ['unix:///run/seawall/node-1/hubble.sock', 'unix:///run/seawall/node-1/hubble.sock'],
    ['/run/x.sock', 'unix:///run/x.sock'],
    ['127.0.0.1:4245', '127.0.0.1:4245'],
    ['[::1]:4245', '[::1]:4245'],
    ['http://x', /write unix:\/\/\/PATH or HOST:PORT/],
  ];
  for (const [input, want] of rows)
    it(`target ${input}`, () => {
      if (typeof want === 'string') assert.equal(hubbleTarget(input), want);
      else assert.throws(() => hubbleTarget(input), want);
    });

  it('follows GetFlows: the flows already held, then new ones as they come', async () => {
    const flows = uiFlows().map((u) => u.flow);
    const ring = ringOf(flows.slice(0, 4));
    const hubble = await startHubbleServer({ ring, nodeName: 'node-1' }, { tcpAddress: '127.0.0.1:0' });
    const h = await startHarness({ source: hubbleSource(hubble.tcpAddress!), policies: [POLICIES] });
    try {
      const waitFor = async (n: number) => {
        for (let i = 0; i < 200 && h.server.store.size < n; i++) await new Promise((r) => setTimeout(r, 25));
        assert.equal(h.server.store.size, n);
      };
      await waitFor(4);
      ring.push({ flow: flows[4]!, node_name: 'node-1', time: flows[4]!.time });
      await waitFor(5);
      const got = h.server.store.all().map((u) => u.flow.uuid);
      assert.deepEqual(
        got,
        flows.slice(0, 5).map((f) => f.uuid),
      );
      assert.ok(h.server.store.all()[0]!.rules.some((r) => r.name === 'backend-ingress'));
    } finally {
      await h.close();
      await hubble.close();
    }
  });
});

describe('ui server: an agent that restarts', () => {
  it('since is sent as a protobuf Timestamp', () => {
    assert.deepEqual(timestamp('2025-01-02T03:04:05.678901Z'), { seconds: '1735787045', nanos: 678901000 });
    assert.deepEqual(timestamp('2025-01-02T03:04:05Z'), { seconds: '1735787045', nanos: 0 });
  });

  it('reconnects and asks only for what came after, without repeating a flow', {
    timeout: 60_000,
  }, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'seawall-ui-reconnect-'));
    const sock = join(dir, 'hubble.sock');
    const flows = uiFlows().map((u, i) => ({ ...u.flow, time: `2025-01-02T03:04:0${i}.000Z` }));
    const ring = ringOf(flows.slice(0, 4));
    let hubble = await startHubbleServer({ ring, nodeName: 'node-1' }, { unixSocket: sock });
    const h = await startHarness({ source: hubbleSource(`unix://${sock}`) });
    const waitFor = async (n: number) => {
      for (let i = 0; i < 400 && h.server.store.size < n; i++) await new Promise((r) => setTimeout(r, 25));
      assert.equal(h.server.store.size, n);
    };
    try {
      await waitFor(4);
      await hubble.close();
      ring.push({ flow: flows[4]!, node_name: 'node-1', time: flows[4]!.time });
      hubble = await startHubbleServer({ ring, nodeName: 'node-1' }, { unixSocket: sock });
      await waitFor(5);
      await new Promise((r) => setTimeout(r, 300));
      assert.deepEqual(
        h.server.store.all().map((u) => u.flow.uuid),
        flows.slice(0, 5).map((f) => f.uuid),
      );
    } finally {
      await h.close();
      await hubble.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('the fixture flows agree with the engine', () => {
  it('every rule hit a fixture carries is one the engine finds for that flow with the test policies', async () => {
    const { ctx } = PolicyContext.create(await loadScenario({ files: [], policies: [POLICIES] }));
    assert.ok(ctx);
    for (const u of uiFlows()) {
      const got = new Set(ctx.explain(u.flow).map((r) => `${r.direction} ${r.effect} ${ruleKey(r)}`));
      for (const want of u.rules) {
        const k = `${want.direction} ${want.effect} ${ruleKey(want)}`;
        assert.ok(got.has(k), `${u.flow.uuid}: ${k} not in ${[...got].join(', ')}`);
      }
    }
  });
});

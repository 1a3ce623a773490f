// The endpoint config route of the status API (cilium-dbg endpoint config): option parsing and the
// route on the real engine, without a kernel (apply is counted, not run).

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { PolicyEngine } from '../policy/engine.ts';
import { cnp, pod } from '../policy/testutil.ts';
import { endpointConfigRoute, parseOptionArgs } from './endpoint-config.ts';

describe('endpoint config: Option=Value arguments', () => {
  const rows: Array<{ name: string; args: string[]; want?: Record<string, boolean>; err?: RegExp }> = [
    { name: 'Enabled', args: ['PolicyAuditMode=Enabled'], want: { PolicyAuditMode: true } },
    { name: 'Disabled', args: ['PolicyAuditMode=Disabled'], want: { PolicyAuditMode: false } },
    {
      name: 'case and on/off as Cilium reads them',
      args: ['policyauditmode=ON'],
      want: { PolicyAuditMode: true },
    },
    { name: 'true/false', args: ['PolicyAuditMode=false'], want: { PolicyAuditMode: false } },
    { name: 'none', args: [], want: {} },
    {
      name: 'unknown option',
      args: ['Debug=true'],
      err: /unknown endpoint option "Debug": the one served is PolicyAuditMode/,
    },
    { name: 'no =', args: ['PolicyAuditMode'], err: /write Option=Value/ },
    {
      name: 'not a boolean',
      args: ['PolicyAuditMode=maybe'],
      err: /PolicyAuditMode="maybe": the value must be Enabled or Disabled/,
    },
  ];
  for (const r of rows) {
    it(r.name, () => {
      if (r.err) assert.throws(() => parseOptionArgs(r.args), r.err);
      else assert.deepEqual(parseOptionArgs(r.args), r.want);
    });
  }
});

describe('endpoint config: the route', () => {
  const engine = (): PolicyEngine => {
    const e = new PolicyEngine({});
    e.upsertEndpoint(pod('shop/api', { app: 'api' }, '10.0.1.2'));
    e.upsertPolicy(cnp('shop', 'p', { endpointSelector: { matchLabels: { app: 'api' } }, ingress: [{}] }));
    return e;
  };
  const rows: Array<{
    name: string;
    method: string;
    url: string;
    status: number;
    body: RegExp;
    applies: number;
  }> = [
    {
      name: 'GET shows the mode',
      method: 'GET',
      url: '/endpoint/config?endpoint=shop/api',
      status: 200,
      body: /"PolicyAuditMode":"Disabled"/,
      applies: 0,
    },
    {
      name: 'POST sets it and applies before answering',
      method: 'POST',
      url: '/endpoint/config?endpoint=shop%2Fapi&PolicyAuditMode=Enabled',
      status: 200,
      body: /"PolicyAuditMode":"Enabled"/,
      applies: 1,
    },
    {
      name: 'unknown endpoint',
      method: 'POST',
      url: '/endpoint/config?endpoint=shop/nope&PolicyAuditMode=Enabled',
      status: 404,
      body: /no endpoint shop\/nope/,
      applies: 0,
    },
    {
      name: 'no endpoint',
      method: 'GET',
      url: '/endpoint/config?x=1',
      status: 400,
      body: /give endpoint=NAMESPACE\/POD/,
      applies: 0,
    },
    {
      name: 'bad value',
      method: 'POST',
      url: '/endpoint/config?endpoint=shop/api&PolicyAuditMode=2',
      status: 400,
      body: /must be Enabled or Disabled/,
      applies: 0,
    },
    {
      name: 'POST with nothing to set',
      method: 'POST',
      url: '/endpoint/config?endpoint=shop/api',
      status: 400,
      body: /nothing to set/,
      applies: 0,
    },
    {
      name: 'other methods',
      method: 'DELETE',
      url: '/endpoint/config?endpoint=shop/api',
      status: 405,
      body: /GET or POST/,
      applies: 0,
    },
  ];
  for (const r of rows) {
    it(r.name, async () => {
      const e = engine();
      let applies = 0;
      const a = await endpointConfigRoute(r.method, r.url, e, async () => {
        applies++;
      });
      assert.equal(a.status, r.status, a.body);
      assert.match(a.body, r.body);
      assert.equal(applies, r.applies);
    });
  }

  it('the engine really audits after the POST', async () => {
    const e = engine();
    e.upsertEndpoint(pod('shop/web', { app: 'web' }, '10.0.1.1'));
    e.upsertPolicy(
      cnp('shop', 'p', {
        endpointSelector: { matchLabels: { app: 'api' } },
        ingress: [{ fromEndpoints: [{ matchLabels: { app: 'db' } }] }],
      }),
    );
    const f = {
      src: { kind: 'endpoint', namespace: 'shop', name: 'web' },
      dst: { kind: 'endpoint', namespace: 'shop', name: 'api' },
      protocol: 'TCP',
      dport: 80,
    } as const;
    assert.equal(e.decide(f).verdict, 'DROPPED');
    await endpointConfigRoute(
      'POST',
      '/endpoint/config?endpoint=shop/api&PolicyAuditMode=Enabled',
      e,
      async () => {},
    );
    assert.equal(e.decide(f).verdict, 'AUDIT');
  });
});

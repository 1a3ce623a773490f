// Which flows `seawall test --live` sends (issue 10: DNS queries and FQDN destinations now are).

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parsePolicyTestText } from '../policytest/parse.ts';
import { isDNSQuery, liveSkip } from './live-test.ts';

const TEXT = `
apiVersion: seawall/v1
kind: PolicyTest
metadata: { name: skips }
spec:
  policies: []
  endpoints:
    - { name: client, namespace: shop, labels: { app: client }, ip: 10.0.1.1 }
    - { name: coredns, namespace: kube-system, labels: { k8s-app: kube-dns }, ip: 10.0.9.10 }
    - { name: partner, ip: 203.0.113.10, external: true }
  dns:
    - { name: api.partner.example, ips: [203.0.113.10], ttl: 300 }
  flows:
    - { from: shop/client, to: kube-system/coredns, port: 53, protocol: UDP, dns: { query: api.partner.example }, expect: allowed }
    - { from: shop/client, to: kube-system/coredns, port: 53, protocol: TCP, dns: { query: api.partner.example, type: AAAA }, expect: allowed }
    - { from: shop/client, to: api.partner.example, port: 443, expect: allowed }
    - { from: shop/client, to: 203.0.113.10, port: 443, expect: allowed }
    - { from: shop/client, to: kube-system/coredns, port: 53, protocol: UDP, expect: allowed }
    - { from: shop/client, to: kube-system/coredns, port: 5353, protocol: UDP, expect: allowed }
    - { from: shop/client, to: kube-system/coredns, port: 80, grpc: { service: a.B, method: C }, expect: allowed }
`;

test('liveSkip: DNS queries, FQDN destinations, plain connections to the DNS server and gRPC calls are sent', async () => {
  const parsed = await parsePolicyTestText('skips.yaml', TEXT);
  assert.deepEqual(
    parsed.issues.filter((i) => i.severity === 'error'),
    [],
  );
  const t = parsed.tests[0]!;
  const rows: Array<{ name: string; flow: number; dns: boolean; skip: RegExp | undefined }> = [
    { name: 'a UDP query', flow: 0, dns: true, skip: undefined },
    { name: 'a TCP AAAA query', flow: 1, dns: true, skip: undefined },
    { name: 'an FQDN destination', flow: 2, dns: false, skip: undefined },
    { name: 'a learnt address by IP', flow: 3, dns: false, skip: undefined },
    {
      name: 'UDP 53 without a query (sent as a query for no name of the table)',
      flow: 4,
      dns: false,
      skip: undefined,
    },
    { name: 'UDP to another port of the DNS pod', flow: 5, dns: false, skip: undefined },
    { name: 'a gRPC call (sent with grpc-js)', flow: 6, dns: false, skip: undefined },
  ];
  for (const r of rows) {
    const f = t.flows[r.flow]!;
    assert.equal(isDNSQuery(f), r.dns, r.name);
    const why = liveSkip(t, f);
    if (r.skip === undefined) assert.equal(why, undefined, r.name);
    else assert.match(why ?? '', r.skip, r.name);
  }
});

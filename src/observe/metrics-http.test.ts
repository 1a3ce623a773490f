// Hubble's http plugin from the proxy's records (flow/l7-record.ts builds them as the proxy does).

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type HTTPRecordInput, httpFlowRecord } from '../flow/l7-record.ts';
import { backend, dnsL7Egress, frontend } from '../flow/testing/flows.ts';
import type { Flow } from '../flow/types.ts';
import { FlowMetrics } from './metrics.ts';

const rec = (o: Partial<HTTPRecordInput>): Flow =>
  httpFlowRecord({
    time: new Date(0),
    nodeName: 'node-1',
    type: 'REQUEST',
    verdict: 'FORWARDED',
    direction: 'INGRESS',
    client: { ip: '10.0.1.10', port: 40000, endpoint: frontend },
    server: { ip: '10.0.1.20', port: 8080, endpoint: backend },
    method: 'GET',
    url: 'http://backend/',
    protocol: 'HTTP/1.1',
    ...o,
  });

describe('hubble_http_* metrics', () => {
  const rows: { name: string; flows: Flow[]; expect: string[]; absent?: string[] }[] = [
    {
      name: 'a request and its response (ingress: reporter server)',
      flows: [rec({}), rec({ type: 'RESPONSE', code: 200, latencyNs: 12_345_678n })],
      expect: [
        'hubble_http_requests_total{method="GET",protocol="HTTP/1.1",reporter="server"} 1',
        'hubble_http_responses_total{method="GET",protocol="HTTP/1.1",reporter="server",status="200"} 1',
        'hubble_http_request_duration_seconds_bucket{le="0.01",method="GET",reporter="server"} 0',
        'hubble_http_request_duration_seconds_bucket{le="0.025",method="GET",reporter="server"} 1',
        'hubble_http_request_duration_seconds_sum{method="GET",reporter="server"} 0.012345678',
        'hubble_http_request_duration_seconds_count{method="GET",reporter="server"} 1',
        // one policy verdict per request, match l7/http; the response is not a verdict
        'hubble_policy_verdicts_total{direction="ingress",match="l7/http",action="forwarded"} 1',
      ],
    },
    {
      name: 'egress redirect: reporter client; a denied request and its 403',
      flows: [
        rec({ direction: 'EGRESS', method: 'POST', verdict: 'DROPPED' }),
        rec({ direction: 'EGRESS', method: 'POST', type: 'RESPONSE', code: 403, latencyNs: 200_000 }),
      ],
      expect: [
        'hubble_http_requests_total{method="POST",protocol="HTTP/1.1",reporter="client"} 1',
        'hubble_http_responses_total{method="POST",protocol="HTTP/1.1",reporter="client",status="403"} 1',
        'hubble_http_request_duration_seconds_bucket{le="0.005",method="POST",reporter="client"} 1',
        'hubble_policy_verdicts_total{direction="egress",match="l7/http",action="dropped"} 1',
        // Hubble decodes Envoy's denials with no drop reason: counted as DROP_REASON_UNKNOWN
        'hubble_drop_total{reason="DROP_REASON_UNKNOWN",protocol="HTTP"} 1',
      ],
      absent: ['action="forwarded"'],
    },
    {
      name: 'gRPC over HTTP/2',
      flows: [rec({ method: 'POST', protocol: 'HTTP/2', url: 'http://cart/shop.Cart/Get' })],
      expect: ['hubble_http_requests_total{method="POST",protocol="HTTP/2",reporter="server"} 1'],
    },
    {
      name: 'DNS records are not HTTP requests',
      flows: [dnsL7Egress],
      expect: ['# TYPE hubble_http_requests_total counter'],
      absent: ['hubble_http_requests_total{', 'hubble_http_responses_total{'],
    },
  ];
  for (const r of rows) {
    it(r.name, async () => {
      const m = new FlowMetrics();
      for (const f of r.flows) m.observe(f);
      const text = await m.text();
      for (const e of r.expect) assert.ok(text.includes(e), `missing ${e} in\n${text}`);
      for (const a of r.absent ?? []) assert.ok(!text.includes(a), `unexpected ${a} in\n${text}`);
    });
  }
});

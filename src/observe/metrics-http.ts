// Hubble's `http` metrics plugin, from the proxy's L7 HTTP records:
//   hubble_http_requests_total{method,protocol,reporter}          one per REQUEST record
//   hubble_http_responses_total{method,protocol,reporter,status}  one per RESPONSE record
//   hubble_http_request_duration_seconds{method,reporter}         RESPONSE latency_ns, Prometheus'
//                                                                 default buckets (5 ms … 10 s)
// reporter is the proxy's side: `server` for an ingress redirect, `client` for egress, as Hubble
// names them; status is the response code in decimal. Records of other L7 kinds are not counted.

import { Counter, Histogram, type Registry } from 'prom-client';
import type { Flow } from '../flow/types.ts';
import type { MetricHandler, MetricPlugin } from './metrics-api.ts';

const BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

export class HTTPMetrics {
  private readonly requests: Counter<'method' | 'protocol' | 'reporter'>;
  private readonly responses: Counter<'method' | 'protocol' | 'reporter' | 'status'>;
  private readonly duration: Histogram<'method' | 'reporter'>;

  constructor(registry: Registry) {
    this.requests = new Counter({
      name: 'hubble_http_requests_total',
      help: 'Count of HTTP requests',
      labelNames: ['method', 'protocol', 'reporter'],
      registers: [registry],
    });
    this.responses = new Counter({
      name: 'hubble_http_responses_total',
      help: 'Count of HTTP responses',
      labelNames: ['method', 'protocol', 'reporter', 'status'],
      registers: [registry],
    });
    this.duration = new Histogram({
      name: 'hubble_http_request_duration_seconds',
      help: 'Quantiles of HTTP request duration in seconds',
      labelNames: ['method', 'reporter'],
      buckets: BUCKETS,
      registers: [registry],
    });
  }

  observe(f: Flow): void {
    const http = f.l7?.http as { method?: string; protocol?: string; code?: number } | undefined;
    if (http === undefined) return;
    const method = http.method ?? '';
    const protocol = http.protocol ?? '';
    const reporter = reporterOf(f);
    if (f.l7?.type === 'REQUEST') {
      this.requests.inc({ method, protocol, reporter });
    } else if (f.l7?.type === 'RESPONSE') {
      this.responses.inc({ method, protocol, reporter, status: String(http.code ?? 0) });
      const ns = Number(f.l7.latency_ns ?? 0);
      this.duration.observe({ method, reporter }, ns / 1e9);
    }
  }
}

function reporterOf(f: Flow): string {
  if (f.traffic_direction === 'INGRESS') return 'server';
  if (f.traffic_direction === 'EGRESS') return 'client';
  return 'unknown';
}

/** Hubble's `http` plugin (context options are accepted; the labels stay Hubble's http v1 set). */
export const httpPlugin: MetricPlugin = {
  name: 'http',
  init(registry): MetricHandler {
    const m = new HTTPMetrics(registry);
    return { process: (f) => m.observe(f) };
  },
};

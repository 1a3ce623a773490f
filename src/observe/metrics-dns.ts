// Hubble's dns metrics plugin, from the DNS proxy's L7 records (flow/dns-record.ts):
//   hubble_dns_queries_total{rcode,qtypes,ips_returned}    a request record
//   hubble_dns_responses_total{rcode,qtypes,ips_returned}  a response record
//   hubble_dns_response_types_total{type,qtypes}           each resource record type of a response
// Labels as Hubble sets them: rcode is "" on a request, "Policy denied" on a dropped record, else
// gopacket's name of the response code ("No Error", "Non-Existent Domain", ...); qtypes the
// query's types joined with ","; ips_returned the number of addresses in the answer.

import { Counter, type Registry } from 'prom-client';
import { dnsRcodeName } from '../flow/dns-record.ts';
import type { Flow } from '../flow/types.ts';
import type { MetricHandler, MetricPlugin } from './metrics-api.ts';

interface DNSFields {
  ips?: string[];
  rcode?: number;
  qtypes?: string[];
  rrtypes?: string[];
}

export class DNSMetrics {
  private readonly queries: Counter<'rcode' | 'qtypes' | 'ips_returned'>;
  private readonly responses: Counter<'rcode' | 'qtypes' | 'ips_returned'>;
  private readonly responseTypes: Counter<'type' | 'qtypes'>;

  constructor(registry: Registry) {
    this.queries = new Counter({
      name: 'hubble_dns_queries_total',
      help: 'Number of DNS queries observed',
      labelNames: ['rcode', 'qtypes', 'ips_returned'],
      registers: [registry],
    });
    this.responses = new Counter({
      name: 'hubble_dns_responses_total',
      help: 'Number of DNS responses observed',
      labelNames: ['rcode', 'qtypes', 'ips_returned'],
      registers: [registry],
    });
    this.responseTypes = new Counter({
      name: 'hubble_dns_response_types_total',
      help: 'Number of DNS response types',
      labelNames: ['type', 'qtypes'],
      registers: [registry],
    });
  }

  /** Counts a record when it is an L7 DNS one; every other record is ignored. */
  observe(f: Flow): void {
    const dns = f.l7?.dns as DNSFields | undefined;
    if (dns === undefined) return;
    const reply = f.is_reply === true || f.l7?.type === 'RESPONSE';
    const rcode = f.verdict === 'DROPPED' ? 'Policy denied' : reply ? dnsRcodeName(dns.rcode ?? 0) : '';
    const qtypes = (dns.qtypes ?? []).join(',');
    const labels = { rcode, qtypes, ips_returned: String(dns.ips?.length ?? 0) };
    if (!reply) {
      this.queries.inc(labels);
      return;
    }
    this.responses.inc(labels);
    for (const type of dns.rrtypes ?? []) this.responseTypes.inc({ type, qtypes });
  }
}

/** Hubble's `dns` plugin (context options are accepted; the labels stay Hubble's). */
export const dnsPlugin: MetricPlugin = {
  name: 'dns',
  init(registry): MetricHandler {
    const m = new DNSMetrics(registry);
    return { process: (f) => m.observe(f) };
  },
};

// Prometheus metrics with Hubble's names and labels, updated from each flow record:
//   hubble_flows_processed_total{type,subtype,verdict}  (flow plugin)
//   hubble_drop_total{reason,protocol}                  (drop plugin)
//   hubble_policy_verdicts_total{direction,match,action} (policy plugin)
//   hubble_lost_events_total{source}
// Label values follow Hubble: type is the monitor message type name, reason the DropReason enum
// name, protocol the L4 name, direction/action lowercased enums, match the lowercased match name.

import { Counter, Registry } from 'prom-client';
import { type Flow, MESSAGE_TYPE, POLICY_MATCH_NAME } from '../flow/types.ts';
import { ID } from '../identity/reserved.ts';
import { DNSMetrics } from './metrics-dns.ts';

const TYPE_NAME: Record<number, string> = {
  [MESSAGE_TYPE.DROP]: 'Drop',
  [MESSAGE_TYPE.CAPTURE]: 'Capture',
  [MESSAGE_TYPE.TRACE]: 'Trace',
  [MESSAGE_TYPE.POLICY_VERDICT]: 'PolicyVerdict',
  [MESSAGE_TYPE.ACCESS_LOG]: 'L7',
};

export function l4Protocol(f: Flow): string {
  const l4 = f.l4;
  if (l4 === undefined) return 'Unknown flow';
  return Object.keys(l4)[0] ?? 'Unknown flow';
}

function l7Name(f: Flow): string | undefined {
  if (f.l7?.http !== undefined) return 'HTTP';
  if (f.l7?.dns !== undefined) return 'DNS';
  if (f.l7?.kafka !== undefined) return 'Kafka';
  return undefined;
}

export class FlowMetrics {
  readonly registry: Registry;
  private readonly processed: Counter<'type' | 'subtype' | 'verdict'>;
  private readonly drops: Counter<'reason' | 'protocol'>;
  private readonly verdicts: Counter<'direction' | 'match' | 'action'>;
  private readonly lost: Counter<'source'>;
  private readonly dns: DNSMetrics;

  constructor(registry = new Registry()) {
    this.registry = registry;
    this.processed = new Counter({
      name: 'hubble_flows_processed_total',
      help: 'Total number of flows processed',
      labelNames: ['type', 'subtype', 'verdict'],
      registers: [registry],
    });
    this.drops = new Counter({
      name: 'hubble_drop_total',
      help: 'Number of drops',
      labelNames: ['reason', 'protocol'],
      registers: [registry],
    });
    this.verdicts = new Counter({
      name: 'hubble_policy_verdicts_total',
      help: 'Total number of Cilium network policy verdicts',
      labelNames: ['direction', 'match', 'action'],
      registers: [registry],
    });
    this.lost = new Counter({
      name: 'hubble_lost_events_total',
      help: 'Number of lost events',
      labelNames: ['source'],
      registers: [registry],
    });
    this.dns = new DNSMetrics(registry);
  }

  observe(f: Flow): void {
    this.dns.observe(f);
    const type = f.event_type?.type ?? 0;
    const l7 = l7Name(f);
    const typeName = l7 !== undefined ? 'L7' : (TYPE_NAME[type] ?? 'Unknown');
    this.processed.inc({ type: typeName, subtype: l7 ?? '', verdict: f.verdict });

    if (f.verdict === 'DROPPED') {
      this.drops.inc({
        reason: String(f.drop_reason_desc ?? 'DROP_REASON_UNKNOWN'),
        protocol: l4Protocol(f),
      });
    }

    const isVerdictEvent = type === MESSAGE_TYPE.POLICY_VERDICT || type === MESSAGE_TYPE.ACCESS_LOG;
    if (!isVerdictEvent) return;
    // Hubble does not count the policy verdicts of ingress from the local host.
    if (f.traffic_direction === 'INGRESS' && f.source?.identity === ID.host) return;
    const match = type === MESSAGE_TYPE.ACCESS_LOG ? `l7/${(l7 ?? 'l7').toLowerCase()}` : undefined;
    this.verdicts.inc({
      direction: (f.traffic_direction ?? 'TRAFFIC_DIRECTION_UNKNOWN').toLowerCase(),
      match: match ?? POLICY_MATCH_NAME[f.policy_match_type ?? 0] ?? 'none',
      action: f.verdict.toLowerCase(),
    });
  }

  /** Events lost before they became records (ring overflow, suppressed kernel events…). */
  addLost(source: string, n = 1): void {
    if (n > 0) this.lost.inc({ source }, n);
  }

  text(): Promise<string> {
    return this.registry.metrics();
  }
}

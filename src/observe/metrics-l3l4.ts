// Hubble's L3/L4 metric plugins (cilium pkg/hubble/metrics/<name>/handler.go), same names,
// labels, label order and conditions:
//   flow               hubble_flows_processed_total{protocol,type,subtype,verdict,<context>}
//   drop               hubble_drop_total{<context>,reason,protocol}
//   policy             hubble_policy_verdicts_total{direction,match,action,<context>}
//   tcp                hubble_tcp_flags_total{flag,family,<context>}          forwarded only
//   icmp               hubble_icmp_total{family,type,<context>}
//   port-distribution  hubble_port_distribution_total{protocol,port,<context>} forwarded/redirected, is_reply false
//   flows-to-world     hubble_flows_to_world_total{protocol,verdict[,port],<context>}  options any-drop, port, syn-only

import { Counter, type Registry } from 'prom-client';
import { icmpTypeCodeName } from '../flow/record.ts';
import { type Flow, MESSAGE_TYPE, POLICY_MATCH_NAME, TRACE_POINT_NAMES } from '../flow/types.ts';
import { ID } from '../identity/reserved.ts';
import type { MetricHandler, MetricPlugin } from './metrics-api.ts';
import { type ContextOptions, contextLabelNames, contextLabelValues } from './metrics-context.ts';

/** One label set's count: `n` in all, `reported` of it handed to prom-client. */
export interface CountCell {
  readonly values: string[];
  n: number;
  reported: number;
}

/** While a record's shape is recorded (recordCounts): each increment, with its cell. */
let recording: { cell: CountCell; n: number }[] | undefined;

/**
 * Runs `f` and returns the increments the counters made in it (their cells and amounts), so that
 * a record of the same shape can make them again without the handlers (FlowMetrics.observe).
 */
export function recordCounts(f: () => void): { cell: CountCell; n: number }[] {
  const out: { cell: CountCell; n: number }[] = [];
  recording = out;
  try {
    f();
  } finally {
    recording = undefined;
  }
  return out;
}

/**
 * A counter whose labels are given as values in `names` order. Increments are summed per label
 * set in a cell and handed to prom-client when metrics are read: prom-client hashes the label
 * object on every inc, a cost per flow the pipeline cannot afford. Cells stay (their count is
 * handed on as a difference), so that a shape's recorded increments (recordCounts) stay valid.
 */
export function counter(
  registry: Registry,
  name: string,
  help: string,
  names: readonly string[],
): (values: readonly string[], n?: number) => void {
  const cells = new Map<string, CountCell>();
  const c: Counter<string> = new Counter({
    name,
    help,
    labelNames: names as string[],
    registers: [registry],
    collect() {
      for (const p of cells.values()) {
        if (p.n === p.reported) continue;
        const labels: Record<string, string> = {};
        for (let i = 0; i < names.length; i++) labels[names[i]!] = p.values[i] ?? '';
        c.inc(labels, p.n - p.reported);
        p.reported = p.n;
      }
    },
  });
  return (values, n = 1) => {
    const key = values.join('\u0000');
    let p = cells.get(key);
    if (p !== undefined) p.n += n;
    else {
      p = { values: [...values], n, reported: 0 };
      cells.set(key, p);
    }
    recording?.push({ cell: p, n });
  };
}

/** Hubble's v1.FlowProtocol: the L7 protocol of an access log, else the L4 one. */
export function flowProtocol(f: Flow): string {
  const type = f.event_type?.type;
  if (type === MESSAGE_TYPE.ACCESS_LOG) {
    if (f.l7?.dns !== undefined) return 'DNS';
    if (f.l7?.http !== undefined) return 'HTTP';
    if (f.l7?.kafka !== undefined) return 'Kafka';
    return 'Unknown L7';
  }
  if (
    type === MESSAGE_TYPE.DROP ||
    type === MESSAGE_TYPE.TRACE ||
    type === MESSAGE_TYPE.POLICY_VERDICT ||
    type === MESSAGE_TYPE.CAPTURE
  ) {
    const l4 = f.l4;
    if (l4 !== undefined) {
      for (const k of ['TCP', 'UDP', 'ICMPv4', 'ICMPv6', 'SCTP'] as const) if (k in l4) return k;
    }
    return 'Unknown L4';
  }
  return 'Unknown flow';
}

function withContext(c: ContextOptions, f: Flow, values: string[]): string[] {
  if (c.labels.length === 0 && c.source.length === 0 && c.destination.length === 0) return values;
  return [...values, ...contextLabelValues(c, f)];
}

export const flowPlugin: MetricPlugin = {
  name: 'flow',
  init(reg, c): MetricHandler {
    const inc = counter(reg, 'hubble_flows_processed_total', 'Total number of flows processed', [
      'protocol',
      'type',
      'subtype',
      'verdict',
      ...contextLabelNames(c),
    ]);
    return {
      byShape: true,
      process(f) {
        const type = f.event_type?.type ?? 0;
        let typeName: string;
        let sub = '';
        switch (type) {
          case MESSAGE_TYPE.ACCESS_LOG:
            typeName = 'L7';
            if (f.l7?.dns !== undefined) sub = 'DNS';
            else if (f.l7?.http !== undefined) sub = 'HTTP';
            else if (f.l7?.kafka !== undefined) sub = 'Kafka';
            break;
          case MESSAGE_TYPE.DROP:
            typeName = 'Drop';
            break;
          case MESSAGE_TYPE.CAPTURE:
            typeName = 'Capture';
            break;
          case MESSAGE_TYPE.TRACE:
            typeName = 'Trace';
            sub = TRACE_POINT_NAMES[f.event_type?.sub_type ?? 0] ?? '';
            break;
          case MESSAGE_TYPE.POLICY_VERDICT:
            typeName = 'PolicyVerdict';
            break;
          default:
            typeName = 'Unknown';
            sub = String(type);
        }
        inc(withContext(c, f, [flowProtocol(f), typeName, sub, f.verdict]));
      },
    };
  },
};

export const dropPlugin: MetricPlugin = {
  name: 'drop',
  init(reg, c): MetricHandler {
    const inc = counter(reg, 'hubble_drop_total', 'Number of drops', [
      ...contextLabelNames(c),
      'reason',
      'protocol',
    ]);
    return {
      byShape: true,
      process(f) {
        if (f.verdict !== 'DROPPED') return;
        inc([
          ...contextLabelValues(c, f),
          String(f.drop_reason_desc ?? 'DROP_REASON_UNKNOWN'),
          flowProtocol(f),
        ]);
      },
    };
  },
};

export const policyPlugin: MetricPlugin = {
  name: 'policy',
  init(reg, c): MetricHandler {
    const inc = counter(
      reg,
      'hubble_policy_verdicts_total',
      'Total number of Cilium network policy verdicts',
      ['direction', 'match', 'action', ...contextLabelNames(c)],
    );
    return {
      byShape: true,
      process(f) {
        const type = f.event_type?.type;
        if (type !== MESSAGE_TYPE.POLICY_VERDICT && type !== MESSAGE_TYPE.ACCESS_LOG) return;
        // Hubble ignores verdicts whose source is the host (both directions) and health traffic
        if (f.source?.identity === ID.host) return;
        if (f.source?.identity === ID.health || f.destination?.identity === ID.health) return;
        let match: string;
        if (type === MESSAGE_TYPE.ACCESS_LOG) {
          // an L7 response is not a verdict of its own: the request's record carried it
          if (f.l7?.type === 'RESPONSE') return;
          const l7 =
            f.l7?.http !== undefined ? 'http' : f.l7?.dns !== undefined ? 'dns' : f.l7?.kafka ? 'kafka' : '';
          if (l7 === '') return;
          match = `l7/${l7}`;
        } else match = POLICY_MATCH_NAME[f.policy_match_type ?? 0] ?? 'none';
        inc(
          withContext(c, f, [
            (f.traffic_direction ?? 'TRAFFIC_DIRECTION_UNKNOWN').toLowerCase(),
            match,
            f.verdict.toLowerCase(),
          ]),
        );
      },
    };
  },
};

export const tcpPlugin: MetricPlugin = {
  name: 'tcp',
  init(reg, c): MetricHandler {
    const inc = counter(reg, 'hubble_tcp_flags_total', 'TCP flag occurrences', [
      'flag',
      'family',
      ...contextLabelNames(c),
    ]);
    return {
      byShape: true,
      process(f) {
        if (f.verdict !== 'FORWARDED' || f.IP === undefined || f.l4 === undefined || !('TCP' in f.l4)) return;
        const flags = f.l4.TCP.flags;
        if (flags === undefined) return;
        const rest = withContext(c, f, [f.IP.ipVersion]);
        if (flags.FIN) inc(['FIN', ...rest]);
        if (flags.SYN) inc([flags.ACK ? 'SYN-ACK' : 'SYN', ...rest]);
        if (flags.RST) inc(['RST', ...rest]);
      },
    };
  },
};

export const icmpPlugin: MetricPlugin = {
  name: 'icmp',
  init(reg, c): MetricHandler {
    const inc = counter(reg, 'hubble_icmp_total', 'Number of ICMP messages', [
      'family',
      'type',
      ...contextLabelNames(c),
    ]);
    return {
      byShape: true,
      process(f) {
        const l4 = f.l4;
        if (l4 === undefined) return;
        if ('ICMPv4' in l4)
          inc(
            withContext(c, f, ['IPv4', icmpTypeCodeName('IPv4', l4.ICMPv4.type ?? 0, l4.ICMPv4.code ?? 0)]),
          );
        // Hubble's handler labels ICMPv6 with family "IPv4" too; dashboards built on it expect that
        if ('ICMPv6' in l4)
          inc(
            withContext(c, f, ['IPv4', icmpTypeCodeName('IPv6', l4.ICMPv6.type ?? 0, l4.ICMPv6.code ?? 0)]),
          );
      },
    };
  },
};

export const portDistributionPlugin: MetricPlugin = {
  name: 'port-distribution',
  init(reg, c): MetricHandler {
    const inc = counter(
      reg,
      'hubble_port_distribution_total',
      'Numbers of packets distributed by destination port',
      ['protocol', 'port', ...contextLabelNames(c)],
    );
    return {
      byShape: true,
      process(f) {
        // a flow that may be a reply (is_reply absent or true) would count an ephemeral port
        if (
          (f.verdict !== 'FORWARDED' && f.verdict !== 'REDIRECTED') ||
          f.l4 === undefined ||
          f.is_reply !== false
        )
          return;
        const l4 = f.l4;
        if ('TCP' in l4) inc(withContext(c, f, ['TCP', String(l4.TCP.destination_port ?? 0)]));
        else if ('UDP' in l4) inc(withContext(c, f, ['UDP', String(l4.UDP.destination_port ?? 0)]));
        else if ('SCTP' in l4) inc(withContext(c, f, ['SCTP', String(l4.SCTP.destination_port ?? 0)]));
        else if ('ICMPv4' in l4) inc(withContext(c, f, ['ICMPv4', '0']));
        else if ('ICMPv6' in l4) inc(withContext(c, f, ['ICMPv6', '0']));
      },
    };
  },
};

export const flowsToWorldPlugin: MetricPlugin = {
  name: 'flows-to-world',
  options: ['any-drop', 'port', 'syn-only'],
  init(reg, c, options): MetricHandler {
    const has = (k: string): boolean => [...options.keys()].some((o) => o.toLowerCase() === k);
    const anyDrop = has('any-drop');
    const port = has('port');
    const synOnly = has('syn-only');
    const inc = counter(reg, 'hubble_flows_to_world_total', 'Total number of flows to reserved:world', [
      'protocol',
      'verdict',
      ...(port ? ['port'] : []),
      ...contextLabelNames(c),
    ]);
    return {
      byShape: true,
      process(f) {
        const l4 = f.l4;
        if (
          !(f.destination?.labels ?? []).includes('reserved:world') ||
          f.event_type === undefined ||
          l4 === undefined
        )
          return;
        if (f.verdict === 'DROPPED' && !anyDrop && f.drop_reason_desc !== 'POLICY_DENIED') return;
        const reply = f.is_reply === true;
        if (f.verdict !== 'DROPPED' && reply) return;
        if (synOnly && (!('TCP' in l4) || l4.TCP.flags?.SYN !== true || reply)) return;
        const values = [flowProtocol(f), f.verdict];
        if (port) {
          const pp = 'TCP' in l4 ? l4.TCP : 'UDP' in l4 ? l4.UDP : 'SCTP' in l4 ? l4.SCTP : undefined;
          values.push(pp !== undefined ? String(pp.destination_port ?? 0) : '');
        }
        inc(withContext(c, f, values));
      },
    };
  },
};

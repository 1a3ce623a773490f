// Prometheus metrics with Hubble's names and labels, updated from each flow record by the plugins
// that `--hubble-metrics` enables (Hubble's metric list: `flow drop:sourceContext=pod;...`), plus
// hubble_lost_events_total{source}, which Hubble always has. Plugins are in metrics-*.ts and
// listed in METRIC_PLUGINS below; a new one (http, dns, kafka) is one line there.
//
// The config string is Hubble's: metrics separated by spaces (or commas between names), each
// `name[:option[=value];option...]`; context options (sourceContext, destinationContext,
// labelsContext) on any metric. A bad name or option is an error saying which.

import { Counter, Registry } from 'prom-client';
import type { Shape } from '../flow/template.ts';
import type { Flow } from '../flow/types.ts';
import type { MetricHandler, MetricPlugin } from './metrics-api.ts';
import { isContextOption, MetricsConfigError, parseContextOptions } from './metrics-context.ts';
import { dnsPlugin } from './metrics-dns.ts';
import { httpPlugin } from './metrics-http.ts';
import { kafkaPlugin } from './metrics-kafka.ts';
import {
  type CountCell,
  dropPlugin,
  flowPlugin,
  flowProtocol,
  flowsToWorldPlugin,
  icmpPlugin,
  policyPlugin,
  portDistributionPlugin,
  recordCounts,
  tcpPlugin,
} from './metrics-l3l4.ts';

export { MetricsConfigError } from './metrics-context.ts';
export { flowProtocol };

/** Hubble's metric plugins by name. A plugin file (metrics-http.ts, ...) adds its one line here. */
export const METRIC_PLUGINS: readonly MetricPlugin[] = [
  flowPlugin,
  dropPlugin,
  policyPlugin,
  tcpPlugin,
  icmpPlugin,
  portDistributionPlugin,
  flowsToWorldPlugin,
  httpPlugin,
  dnsPlugin,
  kafkaPlugin,
];

/** What Seawall enabled before metrics were configurable (and still does by default). */
export const DEFAULT_METRICS = 'flow drop policy http dns kafka';

/**
 * hubble_lost_events_total's sources, Hubble's LostEventSource names lowercased: the ring
 * overwrote records a reader had not read; events were lost inside the observer before they
 * became records (a kernel event no record could be built of).
 */
export const LOST_SOURCE = { ring: 'hubble_ring_buffer', observer: 'observer_events_queue' } as const;
export type LostSource = (typeof LOST_SOURCE)[keyof typeof LOST_SOURCE];

export interface MetricSpec {
  name: string;
  options: Map<string, string>;
}

/** Hubble's metrics string → one spec per metric, in order; throws MetricsConfigError. */
export function parseMetricsConfig(s: string): MetricSpec[] {
  const out: MetricSpec[] = [];
  // names may also be comma-separated (`flow,drop`), but a comma inside options belongs to them
  const words = s.trim() === '' ? [] : s.trim().split(/\s+/);
  const parts: string[] = [];
  for (const w of words) {
    const colon = w.indexOf(':');
    const head = colon < 0 ? w : w.slice(0, colon);
    const names = head.split(',');
    for (let i = 0; i < names.length - 1; i++) parts.push(names[i]!);
    parts.push(colon < 0 ? names[names.length - 1]! : `${names[names.length - 1]}${w.slice(colon)}`);
  }
  const seen = new Set<string>();
  for (const p of parts) {
    if (p === '') continue;
    const colon = p.indexOf(':');
    const name = colon < 0 ? p : p.slice(0, colon);
    const plugin = METRIC_PLUGINS.find((m) => m.name === name);
    if (plugin === undefined) {
      throw new MetricsConfigError(
        'bad-metrics-config',
        `unknown metric '${name}' (one of ${METRIC_PLUGINS.map((m) => m.name).join(', ')})`,
      );
    }
    if (seen.has(name)) throw new MetricsConfigError('bad-metrics-config', `metric '${name}' given twice`);
    seen.add(name);
    const options = new Map<string, string>();
    if (colon >= 0) {
      for (const o of p.slice(colon + 1).split(';')) {
        if (o === '') continue;
        const eq = o.indexOf('=');
        const key = eq < 0 ? o : o.slice(0, eq);
        const value = eq < 0 ? '' : o.slice(eq + 1);
        if (!isContextOption(key) && !(plugin.options ?? []).includes(key.toLowerCase())) {
          throw new MetricsConfigError(
            'bad-metrics-config',
            `${name}: unknown option '${key}' (sourceContext, destinationContext, labelsContext${(plugin.options ?? []).map((x) => `, ${x}`).join('')})`,
          );
        }
        options.set(key, value);
      }
    }
    out.push({ name, options });
  }
  return out;
}

/** A shape's recorded counts, for one FlowMetrics. */
interface ShapeCounts {
  owner: FlowMetrics;
  counts: { cell: CountCell; n: number }[];
}

export class FlowMetrics {
  readonly registry: Registry;
  private readonly handlers: MetricHandler[] = [];
  /** The handlers whose counts are a shape's (byShape), and the others. */
  private readonly byShape: MetricHandler[] = [];
  private readonly perRecord: MetricHandler[] = [];
  private readonly lost: Counter<'source'>;
  private readonly flowLogErrors: Counter;

  /** `config`: Hubble's metrics string (default DEFAULT_METRICS); throws MetricsConfigError. */
  constructor(registry = new Registry(), config: string = DEFAULT_METRICS) {
    this.registry = registry;
    for (const spec of parseMetricsConfig(config)) {
      const plugin = METRIC_PLUGINS.find((m) => m.name === spec.name)!;
      const h = plugin.init(registry, parseContextOptions(spec.options), spec.options);
      this.handlers.push(h);
      (h.byShape === true ? this.byShape : this.perRecord).push(h);
    }
    this.lost = new Counter({
      name: 'hubble_lost_events_total',
      help: 'Number of lost events',
      labelNames: ['source'],
      registers: [registry],
    });
    // not a Hubble metric: records that are in the ring but missing from Seawall's flow log
    this.flowLogErrors = new Counter({
      name: 'seawall_flow_log_write_errors_total',
      help: 'Flow records the flow log could not take (a full disk, ...)',
      registers: [registry],
    });
  }

  /**
   * Counts one record. `shape`: its shape when it is a template's untouched copy (as the copy was
   * made): the byShape handlers' counts are those of every record of the shape, recorded for the
   * first and made again for the others.
   */
  observe(f: Flow, shape?: Shape): void {
    if (shape === undefined || this.byShape.length === 0) {
      for (const h of this.handlers) h.process(f);
      return;
    }
    const kept = shape.template.metrics as ShapeCounts | undefined;
    if (kept !== undefined && kept.owner === this) {
      for (const c of kept.counts) c.cell.n += c.n;
    } else {
      const counts = recordCounts(() => {
        for (const h of this.byShape) h.process(f);
      });
      shape.template.metrics = { owner: this, counts } satisfies ShapeCounts;
    }
    for (const h of this.perRecord) h.process(f);
  }

  /** Events lost before a reader got them (hubble_lost_events_total). */
  addLost(source: LostSource, n = 1): void {
    if (n > 0) this.lost.inc({ source }, n);
  }

  addFlowLogErrors(n: number): void {
    if (n > 0) this.flowLogErrors.inc(n);
  }

  text(): Promise<string> {
    return this.registry.metrics();
  }
}

// The shape of a Hubble metric plugin (Cilium's pkg/hubble/metrics/api): a name as `--hubble-metrics`
// spells it, and a handler made once per configuration that counts flows into its own metrics.
// Plugins live in metrics-*.ts; metrics.ts lists them (one line each).

import type { Registry } from 'prom-client';
import type { Flow } from '../flow/types.ts';
import type { ContextOptions } from './metrics-context.ts';

export interface MetricHandler {
  /** Counts one flow (called for every record, of every type). */
  process(f: Flow): void;
  /**
   * True when what process() counts depends only on the fields a record shares with the other
   * records of its shape (flow/template.ts: not time, uuid or the l4 source port), and it counts
   * only through metrics-l3l4.ts's counter(): a shape's counts are then recorded once and made
   * again for its copies (FlowMetrics.observe) without calling process().
   */
  readonly byShape?: boolean;
}

export interface MetricPlugin {
  /** `flow`, `drop`, `tcp`, `port-distribution`, ... as in `--hubble-metrics`. */
  readonly name: string;
  /** Options the plugin takes besides the context options (`any-drop`, `port`, ...). */
  readonly options?: readonly string[];
  init(registry: Registry, context: ContextOptions, options: ReadonlyMap<string, string>): MetricHandler;
}

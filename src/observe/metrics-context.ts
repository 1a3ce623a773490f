// Hubble's context options for metrics (pkg/hubble/metrics/api/context.go): extra labels naming
// the source and destination of each flow.
//   sourceContext=pod|ip         a `source` label: the first non-empty of the identifiers
//   destinationContext=namespace a `destination` label, likewise
//   labelsContext=source_pod,... named labels, in Hubble's fixed order
// Identifiers: identity, namespace, pod, pod-short, dns, ip, reserved-identity. A bad value is an
// error that says which option and value.

import { SeawallError } from '../core/errors.ts';
import type { Flow, FlowEndpoint } from '../flow/types.ts';

export class MetricsConfigError extends SeawallError<'bad-metrics-config'> {
  override name = 'MetricsConfigError';
}

const IDENTIFIERS = ['identity', 'namespace', 'pod', 'pod-short', 'dns', 'ip', 'reserved-identity'] as const;
type Identifier = (typeof IDENTIFIERS)[number];

/** labelsContext's labels in the order Hubble writes them. */
export const CONTEXT_LABELS = [
  'source_pod',
  'source_namespace',
  'source_workload',
  'source_app',
  'destination_pod',
  'destination_namespace',
  'destination_workload',
  'destination_app',
  'traffic_direction',
] as const;
type ContextLabel = (typeof CONTEXT_LABELS)[number];

export interface ContextOptions {
  source: Identifier[];
  destination: Identifier[];
  labels: ContextLabel[];
}

export const NO_CONTEXT: ContextOptions = { source: [], destination: [], labels: [] };

function identifiers(option: string, v: string): Identifier[] {
  return v.split('|').map((s) => {
    const id = s.toLowerCase();
    if (!(IDENTIFIERS as readonly string[]).includes(id)) {
      throw new MetricsConfigError(
        'bad-metrics-config',
        `${option}: unknown context '${s}' (one of ${IDENTIFIERS.join(', ')})`,
      );
    }
    return id as Identifier;
  });
}

/** The context options among a plugin's options (keys case-insensitive, as Hubble's). */
export function parseContextOptions(options: ReadonlyMap<string, string>): ContextOptions {
  const o: ContextOptions = { source: [], destination: [], labels: [] };
  for (const [key, value] of options) {
    switch (key.toLowerCase()) {
      case 'sourcecontext':
        o.source = identifiers(key, value);
        break;
      case 'destinationcontext':
        o.destination = identifiers(key, value);
        break;
      case 'labelscontext': {
        const want = new Set(value.split(','));
        for (const l of want) {
          if (!(CONTEXT_LABELS as readonly string[]).includes(l))
            throw new MetricsConfigError(
              'bad-metrics-config',
              `labelsContext: invalid value ${l} (one of ${CONTEXT_LABELS.join(', ')})`,
            );
        }
        o.labels = CONTEXT_LABELS.filter((l) => want.has(l));
        break;
      }
    }
  }
  return o;
}

export function isContextOption(key: string): boolean {
  const k = key.toLowerCase();
  return k === 'sourcecontext' || k === 'destinationcontext' || k === 'labelscontext';
}

/** Label names the options add, in Hubble's order: labelsContext's, then source, destination. */
export function contextLabelNames(c: ContextOptions): string[] {
  return [
    ...c.labels,
    ...(c.source.length > 0 ? ['source'] : []),
    ...(c.destination.length > 0 ? ['destination'] : []),
  ];
}

const APP_LABELS = ['k8s:app.kubernetes.io/name=', 'k8s:k8s-app=', 'k8s:app='];

function appOf(ep: FlowEndpoint | undefined): string {
  for (const l of ep?.labels ?? []) {
    for (const a of APP_LABELS) if (l.startsWith(a) && l.length > a.length) return l.slice(a.length);
  }
  return '';
}

/** Hubble's pod-short: the pod name without its ReplicaSet and pod hashes. */
export function shortPodName(name: string): string {
  const m = /^(.+?)(-[a-z0-9]+){1,2}$/.exec(name);
  return m === null ? name : m[1]!;
}

function reservedOf(labels: readonly string[] | undefined): string {
  const ls = labels ?? [];
  if (ls.includes('reserved:kube-apiserver')) return 'reserved:kube-apiserver';
  return ls.find((l) => l.startsWith('reserved:')) ?? '';
}

function sideContext(f: Flow, side: 'source' | 'destination', id: Identifier): string {
  const ep = f[side];
  const names = side === 'source' ? f.source_names : f.destination_names;
  switch (id) {
    case 'namespace':
      return ep?.namespace ?? '';
    case 'identity':
      return (ep?.labels ?? []).join(',');
    case 'pod':
    case 'pod-short': {
      if (ep === undefined) return '';
      const pod = id === 'pod' ? (ep.pod_name ?? '') : shortPodName(ep.pod_name ?? '');
      return ep.namespace ? `${ep.namespace}/${pod}` : pod;
    }
    case 'dns':
      return (names ?? []).join(',');
    case 'ip':
      return (side === 'source' ? f.IP?.source : f.IP?.destination) ?? '';
    case 'reserved-identity':
      return reservedOf(ep?.labels);
  }
}

/** Label values in contextLabelNames' order. */
export function contextLabelValues(c: ContextOptions, f: Flow): string[] {
  const out: string[] = [];
  for (const l of c.labels) {
    switch (l) {
      case 'source_pod':
        out.push(f.source?.pod_name ?? '');
        break;
      case 'source_namespace':
        out.push(f.source?.namespace ?? '');
        break;
      case 'source_workload':
        out.push(f.source?.workloads?.[0]?.name ?? '');
        break;
      case 'source_app':
        out.push(appOf(f.source));
        break;
      case 'destination_pod':
        out.push(f.destination?.pod_name ?? '');
        break;
      case 'destination_namespace':
        out.push(f.destination?.namespace ?? '');
        break;
      case 'destination_workload':
        out.push(f.destination?.workloads?.[0]?.name ?? '');
        break;
      case 'destination_app':
        out.push(appOf(f.destination));
        break;
      case 'traffic_direction': {
        const d = f.traffic_direction;
        out.push(d === undefined || d === 'TRAFFIC_DIRECTION_UNKNOWN' ? 'unknown' : d.toLowerCase());
        break;
      }
    }
  }
  const first = (side: 'source' | 'destination', ids: Identifier[]): string => {
    for (const id of ids) {
      const v = sideContext(f, side, id);
      if (v !== '') return v;
    }
    return '';
  };
  if (c.source.length > 0) out.push(first('source', c.source));
  if (c.destination.length > 0) out.push(first('destination', c.destination));
  return out;
}

// Kubernetes manifests → endpoints: one endpoint per workload (Pod, Deployment, StatefulSet,
// DaemonSet, ReplicaSet, Job, CronJob), named after it, with its pod template's labels, service
// account and container ports; Namespace objects give namespace labels. Used by `trace`,
// `matrix` and `policy show` when no PolicyTest file describes the endpoints.

import { isIP } from 'node:net';
import { asObj, type Obj, str, strMap } from '../core/plain.ts';
import type { ContainerPort } from '../policy/types.ts';
import type { Issue, SourcePos } from '../policy-api/issue.ts';
import type { OtherObject } from '../policy-api/types.ts';
import { IPAllocator } from './addresses.ts';
import type { K8sEndpoint, K8sNamespace } from './types.ts';

export const WORKLOAD_KINDS = [
  'Pod',
  'Deployment',
  'StatefulSet',
  'DaemonSet',
  'ReplicaSet',
  'Job',
  'CronJob',
];

export interface Workloads {
  endpoints: K8sEndpoint[];
  namespaces: K8sNamespace[];
  issues: Issue[];
}

/**
 * Reads workloads and namespaces out of non-policy objects. Addresses come from a Pod's
 * status.podIP when present, else are allocated (avoiding `usedIPs`).
 */
export function workloadsFrom(others: readonly OtherObject[], usedIPs: Iterable<string> = []): Workloads {
  const endpoints: K8sEndpoint[] = [];
  const namespaces: K8sNamespace[] = [];
  const issues: Issue[] = [];
  const pending: Array<{ ep: Omit<K8sEndpoint, 'ip'> & { ip?: string } }> = [];
  const used = new Set(usedIPs);
  for (const o of others) {
    const v = asObj(o.value);
    const meta = asObj(v?.metadata);
    const name = str(meta?.name);
    if (!v || !name) continue;
    if (o.kind === 'Namespace') {
      namespaces.push({ name, labels: strMap(meta?.labels), pos: o.pos });
      continue;
    }
    if (!WORKLOAD_KINDS.includes(o.kind)) continue;
    const tmpl = podTemplate(o.kind, v);
    if (!tmpl) {
      issues.push(warn(o.pos, `${o.kind} ${name} has no pod template; no endpoint made for it`));
      continue;
    }
    const namespace = str(meta?.namespace) ?? 'default';
    const podSpec = asObj(tmpl.spec) ?? {};
    const ep: Omit<K8sEndpoint, 'ip'> & { ip?: string } = {
      name,
      namespace,
      labels: strMap(asObj(tmpl.metadata)?.labels),
      node: str(podSpec.nodeName) ?? 'node-1',
      pos: o.pos,
      ipAllocated: false,
    };
    const sa = str(podSpec.serviceAccountName) ?? str(podSpec.serviceAccount);
    if (sa !== undefined) ep.serviceAccount = sa;
    const ports = containerPorts(podSpec);
    if (ports.length > 0) ep.ports = ports;
    const podIP = o.kind === 'Pod' ? str(asObj(v.status)?.podIP) : undefined;
    if (podIP !== undefined && isIP(podIP) !== 0 && !used.has(podIP)) {
      ep.ip = podIP;
      used.add(podIP);
    }
    if (
      endpoints.some((e) => e.namespace === namespace && e.name === name) ||
      pending.some((p) => p.ep.namespace === namespace && p.ep.name === name)
    ) {
      issues.push(
        warn(o.pos, `two workloads are named ${namespace}/${name}; only the first becomes an endpoint`),
      );
      continue;
    }
    pending.push({ ep });
  }
  const alloc = new IPAllocator(used);
  for (const { ep } of pending) {
    const ip = ep.ip ?? alloc.allocate();
    if (ip === undefined) continue;
    endpoints.push({ ...ep, ip, ipAllocated: ep.ip === undefined });
  }
  return { endpoints, namespaces, issues };
}

function podTemplate(kind: string, v: Obj): Obj | undefined {
  const spec = asObj(v.spec);
  if (kind === 'Pod') return { metadata: v.metadata, spec: v.spec };
  if (kind === 'CronJob') return asObj(asObj(asObj(spec?.jobTemplate)?.spec)?.template);
  return asObj(spec?.template);
}

function containerPorts(podSpec: Obj): ContainerPort[] {
  const out: ContainerPort[] = [];
  for (const list of [podSpec.initContainers, podSpec.containers]) {
    if (!Array.isArray(list)) continue;
    for (const c of list) {
      const ports = asObj(c)?.ports;
      if (!Array.isArray(ports)) continue;
      for (const p of ports) {
        const po = asObj(p);
        const port = po?.containerPort;
        if (typeof port !== 'number' || !Number.isInteger(port) || port < 1 || port > 65535) continue;
        const cp: ContainerPort = { port };
        const n = str(po?.name);
        if (n !== undefined) cp.name = n;
        const proto = str(po?.protocol);
        if (proto === 'TCP' || proto === 'UDP' || proto === 'SCTP') cp.protocol = proto;
        out.push(cp);
      }
    }
  }
  return out;
}

function warn(pos: SourcePos, message: string): Issue {
  return { code: 'workload-skipped', severity: 'warning', path: '', pos, message };
}

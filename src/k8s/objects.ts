// Kubernetes objects that policy peers refer to, read out of non-policy manifests: Services (with
// their Endpoints/EndpointSlice backends, for selector-less Services), CiliumCIDRGroups and Nodes.
// They come in through a PolicyTest's policyFiles or the offline commands' -f manifests, and are
// handed to the engine before the policies.

import { isIP } from 'node:net';
import { arr, asObj, type Obj, str, strMap } from '../core/plain.ts';
import type { PolicyEngineAPI } from '../policy/types.ts';
import type { Issue, SourcePos } from '../policy-api/issue.ts';
import type { OtherObject } from '../policy-api/types.ts';

export interface ServiceObject {
  namespace: string;
  name: string;
  labels: Record<string, string>;
  /** Absent for a selector-less Service. */
  selector?: Record<string, string>;
  /** Backend addresses from Endpoints / EndpointSlices (selector-less Services only use them). */
  addresses: string[];
}

export interface CIDRGroupObject {
  name: string;
  labels: Record<string, string>;
  cidrs: string[];
}

export interface NodeObject {
  name: string;
  labels: Record<string, string>;
  ip: string;
}

export interface ClusterObjects {
  services: ServiceObject[];
  cidrGroups: CIDRGroupObject[];
  nodes: NodeObject[];
  issues: Issue[];
}

const CIDR_GROUP_APIS = new Set(['cilium.io/v2alpha1', 'cilium.io/v2']);
const SERVICE_NAME_LABEL = 'kubernetes.io/service-name';

export function clusterObjectsFrom(others: readonly OtherObject[]): ClusterObjects {
  const out: ClusterObjects = { services: [], cidrGroups: [], nodes: [], issues: [] };
  // Backends per namespace/service, from Endpoints and EndpointSlices.
  const backends = new Map<string, Set<string>>();
  const addBackend = (ns: string, svc: string, ip: unknown) => {
    if (typeof ip !== 'string' || isIP(ip) !== 4) return;
    const k = `${ns}/${svc}`;
    let set = backends.get(k);
    if (set === undefined) {
      set = new Set();
      backends.set(k, set);
    }
    set.add(ip);
  };
  for (const o of others) {
    const v = asObj(o.value);
    const meta = asObj(v?.metadata);
    const name = str(meta?.name);
    if (!v || !name) continue;
    const ns = str(meta?.namespace) ?? 'default';
    const labels = strMap(meta?.labels);
    switch (o.kind) {
      case 'Service': {
        if (o.apiVersion !== 'v1') break;
        const spec = asObj(v.spec) ?? {};
        const svc: ServiceObject = { namespace: ns, name, labels, addresses: [] };
        const sel = strMap(spec.selector);
        if (Object.keys(sel).length > 0) svc.selector = sel;
        out.services.push(svc);
        break;
      }
      case 'Endpoints': {
        if (o.apiVersion !== 'v1') break;
        for (const sub of arr(v.subsets))
          for (const a of arr(asObj(sub)?.addresses)) addBackend(ns, name, asObj(a)?.ip);
        break;
      }
      case 'EndpointSlice': {
        const svc = labels[SERVICE_NAME_LABEL];
        if (svc === undefined || str(v.addressType) === 'IPv6') break;
        for (const e of arr(v.endpoints)) {
          const eo = asObj(e);
          // Only ready backends serve (an absent `ready` means ready).
          if (asObj(eo?.conditions)?.ready === false) continue;
          for (const a of arr(eo?.addresses)) addBackend(ns, svc, a);
        }
        break;
      }
      case 'CiliumCIDRGroup': {
        if (!CIDR_GROUP_APIS.has(o.apiVersion)) break;
        const cidrs: string[] = [];
        for (const c of arr(asObj(v.spec)?.externalCIDRs)) {
          if (typeof c === 'string') cidrs.push(c);
          else out.issues.push(warn(o.pos, `CiliumCIDRGroup ${name}: externalCIDRs entries must be strings`));
        }
        out.cidrGroups.push({ name, labels, cidrs });
        break;
      }
      case 'Node': {
        if (o.apiVersion !== 'v1') break;
        const ip = nodeIP(asObj(v.status));
        if (ip === undefined) {
          out.issues.push(
            warn(o.pos, `Node ${name} has no IPv4 InternalIP in status.addresses; it is left out`),
          );
          break;
        }
        out.nodes.push({ name, labels, ip });
        break;
      }
    }
  }
  for (const s of out.services) s.addresses = [...(backends.get(`${s.namespace}/${s.name}`) ?? [])].sort();
  return out;
}

function nodeIP(status: Obj | undefined): string | undefined {
  const addrs = arr(status?.addresses).map(asObj);
  for (const type of ['InternalIP', 'ExternalIP']) {
    for (const a of addrs) {
      const ip = str(a?.address);
      if (a?.type === type && ip !== undefined && isIP(ip) === 4) return ip;
    }
  }
  return undefined;
}

/** Hands the objects to an engine. */
export function applyClusterObjects(engine: PolicyEngineAPI, objs: ClusterObjects): Issue[] {
  const issues: Issue[] = [];
  for (const n of objs.nodes) engine.upsertNode(n.name, n.labels, n.ip);
  for (const g of objs.cidrGroups) issues.push(...engine.upsertCIDRGroup(g.name, g.labels, g.cidrs));
  for (const s of objs.services)
    issues.push(...engine.upsertService(s.namespace, s.name, s.labels, s.selector, s.addresses));
  return issues;
}

function warn(pos: SourcePos, message: string): Issue {
  return { code: 'cluster-object-skipped', severity: 'warning', path: '', pos, message };
}

// What the Kubernetes readers produce: endpoints and namespaces with where they were written.

import type { EndpointSpec } from '../policy/types.ts';
import type { SourcePos } from '../policy-api/issue.ts';

export interface K8sNamespace {
  name: string;
  labels: Record<string, string>;
  pos: SourcePos;
}

/** An endpoint as a manifest or a PolicyTest file describes it. */
export interface K8sEndpoint extends EndpointSpec {
  pos: SourcePos;
  /** True when `ip` was allocated rather than written. */
  ipAllocated: boolean;
}

/** The engine's view of an endpoint: without where it was written. */
export function toEndpointSpec(ep: K8sEndpoint): EndpointSpec {
  const { pos: _pos, ipAllocated: _alloc, ...spec } = ep;
  return spec;
}

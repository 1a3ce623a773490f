// The PolicyTest format (../shared/spec/policy-test-format.md) as typed objects, after decoding
// and reference resolution, plus the per-flow result the runner produces.

import type { K8sEndpoint, K8sNamespace } from '../k8s/types.ts';
import type {
  DenyReason,
  EnforcementMode,
  FlowProtocol,
  FlowRequest,
  PeerRef,
  TrafficDirection,
} from '../policy/types.ts';
import type { Issue, SourcePos } from '../policy-api/issue.ts';
import type { OtherObject, PolicyObject } from '../policy-api/types.ts';

export type Expectation = 'allowed' | 'denied' | 'audited';

/** Endpoints and namespaces of a PolicyTest are Kubernetes' (the same reader's types). */
export type TestNamespace = K8sNamespace;
export type TestEndpoint = K8sEndpoint;

export interface DNSRecord {
  name: string;
  ips: string[];
  ttl: number;
  pos: SourcePos;
}

/** One flow of a test, with `from`/`to` resolved to engine peers. */
export interface TestFlow {
  index: number;
  name?: string;
  /** As written in the file. */
  from: string;
  to: string;
  request: FlowRequest;
  /** Set when `to` named an FQDN: the name and the address it resolved to. */
  toFQDN?: { name: string; ip: string };
  expect: Expectation;
  expectReason?: DenyReason;
  pos: SourcePos;
}

export interface PolicyTest {
  name: string;
  description?: string;
  file: string;
  pos: SourcePos;
  enforcementMode: EnforcementMode;
  policies: PolicyObject[];
  namespaces: TestNamespace[];
  endpoints: TestEndpoint[];
  dns: DNSRecord[];
  flows: TestFlow[];
  /**
   * Non-policy objects found in policyFiles (Services, EndpointSlices, CiliumCIDRGroups, Nodes):
   * what toServices, cidrGroupRef/cidrGroupSelector and fromNodes/toNodes resolve against.
   * Not a field of the file format.
   */
  objects?: OtherObject[];
}

export interface ParsedTestFile {
  file: string;
  tests: PolicyTest[];
  issues: Issue[];
}

export type Outcome = 'allowed' | 'denied' | 'audited';

/** One flow's result: what `-o json` prints, one per line. */
export interface FlowResult {
  file: string;
  test: string;
  flow: number;
  name?: string;
  from: string;
  to: string;
  port?: number;
  protocol: FlowProtocol;
  expected: Expectation;
  expectedReason?: DenyReason;
  actual: Outcome;
  reason?: DenyReason;
  pass: boolean;
  decidedBy?: TrafficDirection;
  /** The L7 parser that judged the flow (a proxy redirect applied), when one did. */
  l7?: 'http' | 'kafka' | 'dns';
  explanation: string[];
}

export interface TestRun {
  test: PolicyTest;
  results: FlowResult[];
  /** Errors the engine reported while taking the policies (make the input invalid). */
  issues: Issue[];
  /** Wall time of the run, for JUnit. */
  seconds: number;
}

export const ENTITY_PEERS = ['world', 'host', 'remote-node', 'kube-apiserver'] as const;

export function peerLabel(p: PeerRef): string {
  switch (p.kind) {
    case 'endpoint':
      return `${p.namespace}/${p.name}`;
    case 'ip':
      return p.ip;
    case 'entity':
      return p.entity;
  }
}

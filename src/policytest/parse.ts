// PolicyTest files → typed tests | issues. Every field of the format is checked through a Cursor,
// so each issue names file:line:column; unknown fields are errors. Flow references (`from`, `to`)
// are resolved here, so a bad reference makes the file invalid before anything runs.

import { existsSync, statSync } from 'node:fs';
import { isIP } from 'node:net';
import { dirname, isAbsolute, relative, resolve } from 'node:path';
import { readRegularFile } from '../core/files.ts';
import { asObj, str, strMap } from '../core/plain.ts';
import { bareName, checkMatchName } from '../fqdn/name.ts';
import { IPAllocator } from '../k8s/addresses.ts';
import { clusterObjectsFrom } from '../k8s/objects.ts';
import { WORKLOAD_KINDS } from '../k8s/workloads.ts';
import { kafkaApiKeyByName } from '../l7/kafka.ts';
import type {
  ContainerPort,
  DenyReason,
  EnforcementMode,
  FlowProtocol,
  FlowRequest,
  L7Request,
  PeerRef,
} from '../policy/types.ts';
import { type Cursor, checkKnownFields, closest } from '../policy-api/cursor.ts';
import { cursorOf } from '../policy-api/decode-util.ts';
import type { Issue, SourcePos } from '../policy-api/issue.ts';
import { decodePolicyDocument, loadPolicies } from '../policy-api/load.ts';
import type { LoadResult, OtherObject, PolicyObject } from '../policy-api/types.ts';
import { decodeText, parseDocuments } from '../policy-api/yaml-source.ts';
import { checkIdentityLabels } from './endpoints.ts';
import {
  type DNSRecord,
  ENTITY_PEERS,
  type Expectation,
  type ParsedTestFile,
  type PolicyTest,
  type TestEndpoint,
  type TestFlow,
  type TestNamespace,
} from './types.ts';

export const API_VERSION = 'seawall/v1';
export const KIND = 'PolicyTest';

const TOP_FIELDS = ['apiVersion', 'kind', 'metadata', 'spec'];
const META_FIELDS = ['name', 'description'];
const SPEC_FIELDS = ['config', 'policies', 'policyFiles', 'namespaces', 'endpoints', 'dns', 'flows'];
const CONFIG_FIELDS = ['enforcementMode'];
const NS_FIELDS = ['name', 'labels'];
const EP_FIELDS = ['name', 'namespace', 'labels', 'serviceAccount', 'ip', 'node', 'ports', 'external'];
const PORT_FIELDS = ['name', 'port', 'protocol'];
const DNS_FIELDS = ['name', 'ips', 'ttl'];
const FLOW_FIELDS = [
  'name',
  'from',
  'to',
  'port',
  'protocol',
  'icmp',
  'http',
  'grpc',
  'kafka',
  'dns',
  'expect',
  'expectReason',
];
const ICMP_FIELDS = ['type', 'family'];
const HTTP_FIELDS = ['method', 'path', 'host', 'headers'];
const GRPC_FIELDS = ['service', 'method'];
const KAFKA_FIELDS = ['apiKey', 'apiVersion', 'clientID', 'topic', 'topics'];
const DNSQ_FIELDS = ['query', 'type'];

const PROTOCOLS: readonly FlowProtocol[] = ['TCP', 'UDP', 'SCTP', 'ICMP', 'ICMPv6'];
const EXPECTATIONS: readonly Expectation[] = ['allowed', 'denied', 'audited'];
const REASONS: readonly DenyReason[] = ['POLICY_DENIED', 'POLICY_DENY', 'L7_DENIED'];
const MODES: readonly EnforcementMode[] = ['default', 'always', 'never'];
const DEFAULT_TTL = 300;
export const CLUSTER_NAME = 'default';

export interface ParseOptions {
  /** Loads `policyFiles` (files or directories). Defaults to the policy loader. */
  loadFiles?: (paths: string[]) => Promise<LoadResult> | LoadResult;
}

/** Reads and parses one PolicyTest file. Never throws for bad input. */
export async function loadPolicyTestFile(file: string, opts: ParseOptions = {}): Promise<ParsedTestFile> {
  // Regular files only, at most 16 MiB: a FIFO or a device would block or never end.
  const r = readRegularFile(file);
  if (!r.ok) return { file, tests: [], issues: [fileIssue(file, r.code, r.message)] };
  const { text, issue } = decodeText(file, r.bytes);
  if (text === undefined) return { file, tests: [], issues: issue ? [issue] : [] };
  return parsePolicyTestText(file, text, opts);
}

/** True when some document of the text says `kind: PolicyTest` (cheap sniff for directory walks). */
export function looksLikePolicyTest(text: string): boolean {
  return /^kind:\s*["']?PolicyTest["']?\s*$/m.test(text) || /"kind"\s*:\s*"PolicyTest"/.test(text);
}

export async function parsePolicyTestText(
  file: string,
  text: string,
  opts: ParseOptions = {},
): Promise<ParsedTestFile> {
  const { docs, issues } = parseDocuments(file, text);
  const tests: PolicyTest[] = [];
  const names = new Map<string, Cursor>();
  for (const doc of docs) {
    const t = await decodeTest(file, doc.root, issues, opts);
    if (!t) continue;
    if (names.has(t.name)) {
      doc.root
        .field('metadata')
        ?.field('name')
        ?.error(
          'duplicate-test-name',
          `PolicyTest "${t.name}" is defined twice in this file; names must be unique`,
        );
    } else names.set(t.name, doc.root);
    tests.push(t);
  }
  if (docs.length === 0 && issues.length === 0) {
    issues.push(fileIssue(file, 'empty-file', 'file holds no PolicyTest document'));
  }
  // In reading order (policy files loaded through policyFiles keep their own order).
  issues.sort((a, b) =>
    a.pos.file === b.pos.file ? a.pos.line - b.pos.line || a.pos.column - b.pos.column : 0,
  );
  return { file, tests, issues };
}

async function decodeTest(
  file: string,
  root: Cursor,
  issues: Issue[],
  opts: ParseOptions,
): Promise<PolicyTest | undefined> {
  if (!root.expectMap()) return undefined;
  checkKnownFields(root, TOP_FIELDS, 'PolicyTest');
  const apiVersion = requiredString(root, 'apiVersion');
  const kind = requiredString(root, 'kind');
  if (kind !== undefined && kind !== KIND) {
    root.field('kind')?.error('wrong-kind', `kind must be ${KIND}, not "${kind}"`);
    return undefined;
  }
  if (apiVersion !== undefined && apiVersion !== API_VERSION) {
    root
      .field('apiVersion')
      ?.error('wrong-api-version', `apiVersion must be ${API_VERSION}, not "${apiVersion}"`);
  }
  const meta = root.field('metadata');
  let name: string | undefined;
  let description: string | undefined;
  if (!meta) root.error('missing-field', 'metadata is required (with metadata.name)');
  else if (meta.expectMap()) {
    checkKnownFields(meta, META_FIELDS, 'metadata');
    name = requiredString(meta, 'name');
    if (name === '') meta.field('name')?.error('empty-name', 'metadata.name must not be empty');
    const d = meta.field('description');
    if (d) description = d.string();
  }
  const spec = root.field('spec');
  if (!spec) {
    root.error('missing-field', 'spec is required');
    return undefined;
  }
  if (!spec.expectMap()) return undefined;
  checkKnownFields(spec, SPEC_FIELDS, 'PolicyTest spec');

  const test: PolicyTest = {
    name: name ?? '',
    file,
    pos: root.pos(),
    enforcementMode: decodeConfig(spec.field('config')),
    policies: [],
    namespaces: [],
    endpoints: [],
    dns: [],
    flows: [],
  };
  if (description !== undefined) test.description = description;

  test.namespaces = decodeNamespaces(spec.field('namespaces'));
  test.dns = decodeDNS(spec.field('dns'));
  // Policies (and the objects beside them) first: Namespace objects add namespace labels, which
  // the endpoints' identity labels are checked against.
  const objects: OtherObject[] = [];
  const nsObjects: NamespaceObject[] = [];
  test.policies = await decodePolicies(file, spec, issues, opts, objects, nsObjects);
  if (objects.length > 0) {
    test.objects = objects;
    // What the engine will not take (a Node without an address...) is said here, not dropped.
    issues.push(...clusterObjectsFrom(objects).issues);
  }
  mergeNamespaceObjects(test.namespaces, nsObjects, issues);
  test.endpoints = decodeEndpoints(spec.field('endpoints'), test.namespaces, test.dns);
  const flows = spec.field('flows');
  if (!flows) spec.warn('no-flows', 'spec.flows is empty: this PolicyTest checks nothing');
  else test.flows = decodeFlows(flows, test);
  return name === undefined ? undefined : test;
}

function decodeConfig(c: Cursor | undefined): EnforcementMode {
  if (!c?.expectMap()) return 'default';
  checkKnownFields(c, CONFIG_FIELDS, 'config');
  const m = c.field('enforcementMode');
  if (!m) return 'default';
  return oneOf(m, MODES, 'enforcementMode') ?? 'default';
}

// ---------------------------------------------------------------- policies

/**
 * What `spec.policies` holds besides policies: the objects policies refer to, as one
 * `kubectl apply -f` file would hold them (kind → the apiVersions Kubernetes serves it under).
 */
export const INLINE_OBJECT_KINDS: ReadonlyMap<string, readonly string[]> = new Map([
  ['CiliumCIDRGroup', ['cilium.io/v2alpha1', 'cilium.io/v2']],
  ['Service', ['v1']],
  ['Endpoints', ['v1']],
  ['EndpointSlice', ['discovery.k8s.io/v1']],
  ['Node', ['v1']],
  ['Namespace', ['v1']],
]);

const POLICY_KINDS = 'CiliumNetworkPolicy, CiliumClusterwideNetworkPolicy or NetworkPolicy';

/** A Namespace object from spec.policies or policyFiles: its labels, and where it was written. */
interface NamespaceObject {
  name: string;
  labels: Record<string, string>;
  pos: SourcePos;
  path: string;
}

async function decodePolicies(
  file: string,
  spec: Cursor,
  issues: Issue[],
  opts: ParseOptions,
  objects: OtherObject[],
  nsObjects: NamespaceObject[],
): Promise<PolicyObject[]> {
  const out: PolicyObject[] = [];
  const pf = spec.field('policyFiles');
  if (pf) {
    const paths: string[] = [];
    for (const item of pf.expectSeq() ? pf.items() : []) {
      const rel = item.string();
      if (rel === undefined) continue;
      const abs = resolve(dirname(file), rel);
      if (!existsSync(abs)) {
        item.error(
          'missing-policy-file',
          `policy file or directory "${rel}" does not exist (looked at ${abs})`,
        );
        continue;
      }
      // Relative to the working directory when below it, so explanations print short paths.
      const shown = relative(process.cwd(), abs);
      paths.push(shown === '' || shown.startsWith('..') || isAbsolute(shown) ? abs : shown);
    }
    if (paths.length > 0) {
      const load = opts.loadFiles ?? ((ps: string[]) => loadPolicies(ps, { lint: false }));
      try {
        const res = await load(paths);
        issues.push(...res.issues);
        out.push(...res.policies);
        // Services, CIDR groups, nodes… that peers refer to (the engine takes what it knows).
        for (const o of res.others) {
          if (o.kind === 'Namespace') {
            const ns = namespaceFromValue(o);
            if (ns) nsObjects.push(ns);
          } else if (o.kind !== 'PolicyTest') objects.push(o);
        }
      } catch (e) {
        pf.error('policy-files-unreadable', `cannot read policyFiles: ${(e as Error).message}`);
      }
    }
  }
  const inline = spec.field('policies');
  if (inline?.expectSeq()) {
    for (const item of inline.items()) {
      // Issues land in the cursor's list (the file's), with this file's positions.
      const r = decodePolicyDocument(item, { lint: false });
      out.push(...r.policies);
      for (const o of r.others) {
        const at = cursorOf(o) ?? item;
        if (!checkInlineObject(o, at)) continue;
        if (o.kind === 'Namespace') {
          const labelsC = at.field('metadata')?.field('labels');
          nsObjects.push({
            name: str(asObj(asObj(o.value)?.metadata)?.name) ?? '',
            labels: labelsC ? (labelsC.stringMap() ?? {}) : {},
            pos: (at.field('metadata')?.field('name') ?? at).pos(),
            path: at.pathString,
          });
        } else objects.push(o);
      }
      if (r.policies.length === 0 && r.others.length === 0 && r.issues.length === 0) {
        item.error(
          'not-a-policy',
          `spec.policies items must be ${POLICY_KINDS} objects, or objects they refer to (${[...INLINE_OBJECT_KINDS.keys()].join(', ')})`,
        );
      }
    }
  }
  // Two objects with one key would silently replace each other in the engine too.
  const seenObj = new Map<string, OtherObject>();
  for (const o of objects) {
    if (!INLINE_OBJECT_KINDS.has(o.kind)) continue;
    const meta = asObj(asObj(o.value)?.metadata);
    const scoped = o.kind !== 'CiliumCIDRGroup' && o.kind !== 'Node';
    const id = `${scoped ? `${str(meta?.namespace) ?? 'default'}/` : ''}${str(meta?.name) ?? ''}`;
    const prev = seenObj.get(`${o.kind}/${id}`);
    if (prev) {
      issues.push({
        code: 'duplicate-object',
        severity: 'error',
        path: cursorOf(o)?.pathString ?? '',
        pos: o.pos,
        message: `${o.kind} ${id} is defined twice (first at ${prev.pos.file}:${prev.pos.line}:${prev.pos.column})`,
      });
    } else seenObj.set(`${o.kind}/${id}`, o);
  }
  // Two policies with one key would silently replace each other in the engine.
  const seen = new Map<string, PolicyObject>();
  for (const p of out) {
    const key = `${p.kind}/${p.metadata.namespace ?? ''}/${p.metadata.name}`;
    const prev = seen.get(key);
    if (prev) {
      issues.push({
        code: 'duplicate-policy',
        severity: 'error',
        path: 'metadata.name',
        pos: p.pos,
        message: `${p.kind} ${p.metadata.namespace ? `${p.metadata.namespace}/` : ''}${p.metadata.name} is defined twice (first at ${prev.pos.file}:${prev.pos.line}:${prev.pos.column})`,
      });
    } else seen.set(key, p);
  }
  return out;
}

/** An inline non-policy object: one of INLINE_OBJECT_KINDS, under its apiVersion, with a name. */
function checkInlineObject(o: OtherObject, at: Cursor): boolean {
  const apis = INLINE_OBJECT_KINDS.get(o.kind);
  if (apis === undefined) {
    const where = WORKLOAD_KINDS.includes(o.kind) ? '; endpoints are listed under spec.endpoints' : '';
    (at.field('kind') ?? at).error(
      'not-a-policy',
      `spec.policies holds ${POLICY_KINDS} objects and the objects they refer to (${[...INLINE_OBJECT_KINDS.keys()].join(', ')}); ${o.kind} is neither${where}`,
    );
    return false;
  }
  if (!apis.includes(o.apiVersion)) {
    (at.field('apiVersion') ?? at).error(
      'unsupported-api-version',
      `${o.kind} with apiVersion ${JSON.stringify(o.apiVersion)} is not supported; use \`apiVersion: ${apis.join('` or `')}\``,
    );
    return false;
  }
  if (str(asObj(asObj(o.value)?.metadata)?.name) === undefined) {
    (at.field('metadata') ?? at).error('missing-name', `${o.kind} needs \`metadata.name\``);
    return false;
  }
  return true;
}

/** A Namespace read from a policy file (whose issues were reported with that file). */
function namespaceFromValue(o: OtherObject): NamespaceObject | undefined {
  const meta = asObj(asObj(o.value)?.metadata);
  const name = str(meta?.name);
  if (name === undefined) return undefined;
  return { name, labels: strMap(meta?.labels), pos: o.pos, path: '' };
}

/**
 * Namespace objects give namespace labels as `spec.namespaces` entries do. A namespace may be
 * described more than once (a list entry and a Namespace object, or two objects) only with the
 * same labels; different labels are an error at the later one, since one of them would be wrong.
 */
function mergeNamespaceObjects(namespaces: TestNamespace[], objs: NamespaceObject[], issues: Issue[]): void {
  for (const o of objs) {
    const prev = namespaces.find((n) => n.name === o.name);
    if (prev === undefined) {
      namespaces.push({ name: o.name, labels: o.labels, pos: o.pos });
      continue;
    }
    if (sameLabels(prev.labels, o.labels)) continue;
    issues.push({
      code: 'conflicting-namespace',
      severity: 'error',
      path: o.path,
      pos: o.pos,
      message: `Namespace ${o.name} has labels ${JSON.stringify(o.labels)} here but ${JSON.stringify(prev.labels)} at ${prev.pos.file}:${prev.pos.line}:${prev.pos.column}; give one set of labels`,
    });
  }
}

function sameLabels(a: Record<string, string>, b: Record<string, string>): boolean {
  const ka = Object.keys(a);
  return ka.length === Object.keys(b).length && ka.every((k) => Object.hasOwn(b, k) && a[k] === b[k]);
}

// ---------------------------------------------------------------- namespaces, dns, endpoints

function decodeNamespaces(c: Cursor | undefined): TestNamespace[] {
  const out: TestNamespace[] = [];
  if (!c?.expectSeq()) return out;
  for (const item of c.items()) {
    if (!item.expectMap()) continue;
    checkKnownFields(item, NS_FIELDS, 'namespace');
    const name = requiredString(item, 'name');
    const l = item.field('labels');
    const labels = l ? (l.stringMap() ?? {}) : {};
    if (name === undefined) continue;
    if (out.some((n) => n.name === name)) {
      item.field('name')?.error('duplicate-namespace', `namespace "${name}" is listed twice`);
      continue;
    }
    out.push({ name, labels, pos: item.pos() });
  }
  return out;
}

function decodeDNS(c: Cursor | undefined): DNSRecord[] {
  const out: DNSRecord[] = [];
  if (!c?.expectSeq()) return out;
  for (const item of c.items()) {
    if (!item.expectMap()) continue;
    checkKnownFields(item, DNS_FIELDS, 'dns record');
    const rawName = requiredString(item, 'name');
    const ipsC = item.field('ips');
    const ips: string[] = [];
    if (!ipsC) item.error('missing-field', 'dns record needs ips (the addresses the DNS server answers)');
    else if (ipsC.expectSeq()) {
      for (const ipC of ipsC.items()) {
        const ip = ipC.string();
        if (ip === undefined) continue;
        if (isIP(ip) === 0) ipC.error('invalid-ip', `"${ip}" is not an IP address`);
        else ips.push(ip);
      }
      if (ipsC.items().length === 0) ipsC.error('empty-list', 'ips must list at least one address');
    }
    let ttl = DEFAULT_TTL;
    const ttlC = item.field('ttl');
    if (ttlC) {
      const v = ttlC.integer();
      if (v !== undefined && v < 0) ttlC.error('out-of-range', 'ttl must be 0 or more seconds');
      else if (v !== undefined) ttl = v;
    }
    if (rawName === undefined) continue;
    // The toFQDNs matchName rule: a name a policy could not name is no use to a test.
    if (checkMatchName(rawName) !== undefined) {
      item.field('name')?.error('invalid-dns-name', `"${rawName}" is not a DNS name`);
      continue;
    }
    const name = bareName(rawName);
    if (out.some((r) => r.name === name)) {
      item.field('name')?.error('duplicate-dns-name', `dns name "${rawName}" is listed twice`);
      continue;
    }
    out.push({ name, ips, ttl, pos: item.pos() });
  }
  return out;
}

function decodeEndpoints(
  c: Cursor | undefined,
  namespaces: TestNamespace[],
  dns: DNSRecord[],
): TestEndpoint[] {
  const out: TestEndpoint[] = [];
  if (!c?.expectSeq()) return out;
  const items = c.items();
  // Addresses written anywhere are never allocated.
  const used = new Set<string>();
  for (const item of items) {
    const ip = item.field('ip')?.scalar();
    if (typeof ip === 'string') used.add(ip);
  }
  for (const r of dns) for (const ip of r.ips) used.add(ip);
  const alloc = new IPAllocator(used);
  const seenIP = new Map<string, string>();
  for (const item of items) {
    if (!item.expectMap()) continue;
    checkKnownFields(item, EP_FIELDS, 'endpoint');
    const name = requiredString(item, 'name');
    const ext = item.field('external');
    const external = ext ? ext.boolean() === true : false;
    const nsC = item.field('namespace');
    let namespace: string | undefined = external ? undefined : 'default';
    if (nsC) {
      const ns = nsC.string();
      if (external)
        nsC.error(
          'external-with-namespace',
          'an external endpoint is outside the cluster and has no namespace',
        );
      else if (ns !== undefined) namespace = ns;
    }
    const saC = item.field('serviceAccount');
    const serviceAccount = saC?.string();
    const nodeC = item.field('node');
    const node = nodeC?.string() ?? 'node-1';
    const labelsC = item.field('labels');
    const rawLabels = labelsC ? (labelsC.stringMap() ?? {}) : {};
    const nsLabels = namespaces.find((n) => n.name === namespace)?.labels ?? {};
    const labels =
      namespace === undefined
        ? rawLabels
        : checkIdentityLabels(
            rawLabels,
            {
              namespace,
              ...(serviceAccount !== undefined ? { serviceAccount } : {}),
              clusterName: CLUSTER_NAME,
              namespaceLabels: nsLabels,
            },
            labelsC,
          );
    if (external) {
      if (saC) saC.error('external-with-field', 'an external endpoint has no service account');
      if (item.field('ports'))
        item.field('ports')?.error('external-with-field', 'an external endpoint has no container ports');
    }
    const ports = decodePorts(item.field('ports'));
    const ipC = item.field('ip');
    let ip: string | undefined;
    let ipAllocated = false;
    if (ipC) {
      const v = ipC.string();
      if (v !== undefined && isIP(v) === 0) ipC.error('invalid-ip', `"${v}" is not an IP address`);
      else ip = v;
    } else if (external) {
      item.error('missing-field', 'an external endpoint needs an ip (its address outside the cluster)');
    } else {
      ip = alloc.allocate();
      ipAllocated = true;
    }
    if (name === undefined || ip === undefined) continue;
    const key = `${namespace ?? ''}/${name}`;
    if (out.some((e) => `${e.namespace ?? ''}/${e.name}` === key)) {
      item
        .field('name')
        ?.error('duplicate-endpoint', `endpoint ${namespace ? `${namespace}/` : ''}${name} is listed twice`);
      continue;
    }
    const prev = seenIP.get(ip);
    if (prev !== undefined) {
      ipC?.error('duplicate-ip', `ip ${ip} is already used by endpoint ${prev}`);
      continue;
    }
    seenIP.set(ip, key);
    const ep: TestEndpoint = { name, labels, ip, node, pos: item.pos(), ipAllocated };
    if (namespace !== undefined) ep.namespace = namespace;
    if (serviceAccount !== undefined && !external) ep.serviceAccount = serviceAccount;
    if (ports.length > 0) ep.ports = ports;
    if (external) ep.external = true;
    out.push(ep);
  }
  return out;
}

function decodePorts(c: Cursor | undefined): ContainerPort[] {
  const out: ContainerPort[] = [];
  if (!c?.expectSeq()) return out;
  for (const item of c.items()) {
    if (!item.expectMap()) continue;
    checkKnownFields(item, PORT_FIELDS, 'container port');
    const portC = item.field('port');
    if (!portC) {
      item.error('missing-field', 'container port needs port');
      continue;
    }
    const port = portC.integer();
    if (port === undefined) continue;
    if (port < 1 || port > 65535) {
      portC.error('out-of-range', `port ${port} is outside 1-65535`);
      continue;
    }
    const p: ContainerPort = { port };
    const nameC = item.field('name');
    if (nameC) {
      const n = nameC.string();
      if (n !== undefined) {
        if (!/^[a-z0-9]([a-z0-9-]{0,13}[a-z0-9])?$/.test(n) || !/[a-z]/.test(n)) {
          nameC.error(
            'invalid-port-name',
            `"${n}" is not a valid port name (IANA_SVC_NAME: ≤15 lowercase letters, digits, '-')`,
          );
        } else p.name = n;
      }
    }
    const protoC = item.field('protocol');
    if (protoC) {
      const proto = oneOf(protoC, ['TCP', 'UDP', 'SCTP'] as const, 'protocol');
      if (proto) p.protocol = proto;
    }
    out.push(p);
  }
  return out;
}

// ---------------------------------------------------------------- flows

function decodeFlows(c: Cursor, test: PolicyTest): TestFlow[] {
  const out: TestFlow[] = [];
  if (!c.expectSeq()) return out;
  c.items().forEach((item, index) => {
    const f = decodeFlow(item, index, test);
    if (f) out.push(f);
  });
  return out;
}

function decodeFlow(item: Cursor, index: number, test: PolicyTest): TestFlow | undefined {
  if (!item.expectMap()) return undefined;
  checkKnownFields(item, FLOW_FIELDS, 'flow');
  const before = item.issues.length;
  const nameC = item.field('name');
  const name = nameC?.string();
  const from = requiredString(item, 'from');
  const to = requiredString(item, 'to');
  const protoC = item.field('protocol');
  const protocol: FlowProtocol = protoC ? (oneOf(protoC, PROTOCOLS, 'protocol') ?? 'TCP') : 'TCP';
  const isICMP = protocol === 'ICMP' || protocol === 'ICMPv6';

  const portC = item.field('port');
  let port: number | undefined;
  if (portC) {
    const v = portC.integer();
    if (v !== undefined) {
      if (isICMP) {
        if (v !== 0)
          portC.error('port-with-icmp', 'ICMP flows have no port; omit it (or write 0) and use icmp.type');
      } else if (v < 1 || v > 65535) portC.error('out-of-range', `port ${v} is outside 1-65535`);
      else port = v;
    }
  } else if (!isICMP) item.error('missing-field', `a ${protocol} flow needs a destination port`);

  const icmpC = item.field('icmp');
  let icmp: FlowRequest['icmp'];
  if (icmpC) {
    if (!isICMP) icmpC.error('icmp-without-icmp-protocol', 'icmp is only for protocol ICMP or ICMPv6');
    else icmp = decodeICMP(icmpC, protocol);
  } else if (isICMP) {
    icmp = { type: 8, family: protocol === 'ICMP' ? 'IPv4' : 'IPv6' };
    if (protocol === 'ICMPv6') icmp.type = 128;
  }

  const l7 = decodeL7(item, protocol);

  const expectC = item.field('expect');
  let expect: Expectation | undefined;
  if (!expectC) item.error('missing-field', 'flow needs expect: allowed | denied | audited');
  else expect = oneOf(expectC, EXPECTATIONS, 'expect');
  const reasonC = item.field('expectReason');
  let expectReason: DenyReason | undefined;
  if (reasonC) {
    expectReason = oneOf(reasonC, REASONS, 'expectReason');
    if (expect !== undefined && expect !== 'denied') {
      reasonC.error(
        'reason-without-deny',
        'expectReason names a drop reason; it only goes with expect: denied',
      );
    }
  }

  const srcC = item.field('from');
  const dstC = item.field('to');
  const src = from !== undefined && srcC ? resolvePeer(from, 'from', srcC, test) : undefined;
  const dst = to !== undefined && dstC ? resolvePeer(to, 'to', dstC, test) : undefined;

  if (item.issues.length > before || from === undefined || to === undefined || !src || !dst || !expect) {
    return undefined;
  }
  const request: FlowRequest = { src: src.peer, dst: dst.peer, protocol };
  if (port !== undefined) request.dport = port;
  if (icmp) request.icmp = icmp;
  if (l7) request.l7 = l7;
  const flow: TestFlow = { index, from, to, request, expect, pos: item.pos() };
  if (name !== undefined) flow.name = name;
  if (dst.fqdn) flow.toFQDN = dst.fqdn;
  if (expectReason !== undefined) flow.expectReason = expectReason;
  return flow;
}

function decodeICMP(c: Cursor, protocol: FlowProtocol): FlowRequest['icmp'] {
  if (!c.expectMap()) return undefined;
  checkKnownFields(c, ICMP_FIELDS, 'icmp');
  const family = protocol === 'ICMPv6' ? 'IPv6' : 'IPv4';
  const famC = c.field('family');
  if (famC) {
    const f = oneOf(famC, ['IPv4', 'IPv6'] as const, 'icmp.family');
    if (f !== undefined && f !== family)
      famC.error('icmp-family-mismatch', `protocol ${protocol} carries ${family} ICMP, not ${f}`);
  }
  const typeC = c.field('type');
  let type = family === 'IPv4' ? 8 : 128;
  if (typeC) {
    const t = typeC.integer();
    if (t !== undefined && (t < 0 || t > 255)) typeC.error('out-of-range', `icmp type ${t} is outside 0-255`);
    else if (t !== undefined) type = t;
  }
  return { type, family };
}

function decodeL7(item: Cursor, protocol: FlowProtocol): L7Request | undefined {
  const kinds = ['http', 'grpc', 'kafka', 'dns'].filter((k) => item.field(k));
  if (kinds.length > 1) {
    item
      .field(kinds[1]!)
      ?.error('multiple-l7', `a flow carries one L7 request; it has ${kinds.join(' and ')}`, true);
    return undefined;
  }
  const kind = kinds[0];
  if (kind === undefined) return undefined;
  const c = item.field(kind)!;
  if (kind !== 'dns' && protocol !== 'TCP') {
    c.error('l7-not-tcp', `${kind} requests travel over TCP, not ${protocol}`, true);
    return undefined;
  }
  if (kind === 'dns' && protocol !== 'TCP' && protocol !== 'UDP') {
    c.error('l7-not-tcp', `DNS queries travel over UDP or TCP, not ${protocol}`, true);
    return undefined;
  }
  if (!c.expectMap()) return undefined;
  switch (kind) {
    case 'http': {
      checkKnownFields(c, HTTP_FIELDS, 'http');
      const r: L7Request = {
        kind: 'http',
        method: optString(c, 'method') ?? 'GET',
        path: optString(c, 'path') ?? '/',
      };
      const host = optString(c, 'host');
      if (host !== undefined) r.host = host;
      const h = c.field('headers');
      if (h) {
        const headers = h.stringMap();
        if (headers) r.headers = headers;
      }
      if (r.path !== '' && !r.path.startsWith('/') && r.path !== '*') {
        c.field('path')?.error('invalid-path', 'an HTTP request path starts with "/"');
      }
      return r;
    }
    case 'grpc': {
      checkKnownFields(c, GRPC_FIELDS, 'grpc');
      const service = requiredString(c, 'service');
      const method = requiredString(c, 'method');
      if (service === undefined || method === undefined) return undefined;
      return { kind: 'http', method: 'POST', path: `/${service}/${method}`, grpc: true };
    }
    case 'kafka': {
      checkKnownFields(c, KAFKA_FIELDS, 'kafka');
      const keyC = c.field('apiKey');
      let apiKey: number | undefined;
      if (!keyC) c.error('missing-field', 'kafka needs apiKey (a name such as produce, or its number)');
      else {
        const v = keyC.scalar();
        if (typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= 32767) apiKey = v;
        else if (typeof v === 'string') {
          apiKey = kafkaApiKeyByName(v);
          if (apiKey === undefined) keyC.error('invalid-kafka-api-key', `"${v}" is not a Kafka API key name`);
        } else keyC.error('wrong-type', `kafka.apiKey must be a name or a number, not ${keyC.describe()}`);
      }
      let apiVersion = 0;
      const verC = c.field('apiVersion');
      if (verC) {
        const v = verC.integer();
        if (v !== undefined && (v < 0 || v > 32767)) verC.error('out-of-range', 'apiVersion is 0-32767');
        else if (v !== undefined) apiVersion = v;
      }
      const clientID = optString(c, 'clientID') ?? '';
      const topics: string[] = [];
      const tC = c.field('topic');
      const tsC = c.field('topics');
      if (tC && tsC) tsC.error('topic-and-topics', 'write topic or topics, not both', true);
      else if (tC) {
        const t = tC.string();
        if (t !== undefined) topics.push(t);
      } else if (tsC) topics.push(...(tsC.stringList() ?? []));
      if (apiKey === undefined) return undefined;
      return { kind: 'kafka', apiKey, apiVersion, clientID, topics };
    }
    default: {
      checkKnownFields(c, DNSQ_FIELDS, 'dns');
      const query = requiredString(c, 'query');
      const tyC = c.field('type');
      let qtype = 'A';
      if (tyC) {
        const t = tyC.string();
        if (t !== undefined) {
          if (!/^[A-Za-z0-9]+$/.test(t)) tyC.error('invalid-dns-type', `"${t}" is not a DNS query type`);
          else qtype = t.toUpperCase();
        }
      }
      if (query === undefined) return undefined;
      return { kind: 'dns', query, qtype };
    }
  }
}

// ---------------------------------------------------------------- references

interface ResolvedPeer {
  peer: PeerRef;
  fqdn?: { name: string; ip: string };
}

/** The engine peer for an address: an in-cluster endpoint owning it, else the bare IP. */
export function peerForIP(ip: string, endpoints: readonly TestEndpoint[]): PeerRef {
  const ep = endpoints.find((e) => e.ip === ip);
  if (ep && !ep.external && ep.namespace !== undefined) {
    return { kind: 'endpoint', name: ep.name, namespace: ep.namespace };
  }
  return { kind: 'ip', ip };
}

export function peerForEndpoint(ep: TestEndpoint): PeerRef {
  if (ep.external || ep.namespace === undefined) return { kind: 'ip', ip: ep.ip };
  return { kind: 'endpoint', name: ep.name, namespace: ep.namespace };
}

function resolvePeer(
  ref: string,
  side: 'from' | 'to',
  at: Cursor,
  test: Pick<PolicyTest, 'endpoints' | 'dns'>,
): ResolvedPeer | undefined {
  const r = resolveReference(ref, side, test);
  if ('error' in r) {
    at.error(r.code, r.error);
    return undefined;
  }
  return r;
}

/** Resolves a flow reference; shared with `seawall trace` / `matrix`. */
export function resolveReference(
  ref: string,
  side: 'from' | 'to',
  test: Pick<PolicyTest, 'endpoints' | 'dns'>,
): ResolvedPeer | { code: string; error: string } {
  const eps = test.endpoints;
  const slash = ref.indexOf('/');
  if (slash >= 0) {
    const ns = ref.slice(0, slash);
    const name = ref.slice(slash + 1);
    // `name` keeps any further `/`, so `ns/name/extra` names no endpoint rather than ns/name.
    const ep = eps.find((e) => e.namespace === ns && e.name === name);
    if (ep) return { peer: peerForEndpoint(ep) };
    return {
      code: 'unknown-endpoint',
      error: `${side}: no endpoint ${ref}${didYouMean(ref, eps.map(epRef))}`,
    };
  }
  if (isIP(ref) !== 0) return { peer: peerForIP(ref, eps) };
  const byName = eps.filter((e) => e.name === ref);
  if (byName.length === 1) return { peer: peerForEndpoint(byName[0]!) };
  if (byName.length > 1) {
    return {
      code: 'ambiguous-endpoint',
      error: `${side}: "${ref}" names several endpoints (${byName.map(epRef).join(', ')}); write NAMESPACE/NAME`,
    };
  }
  if ((ENTITY_PEERS as readonly string[]).includes(ref)) {
    return { peer: { kind: 'entity', entity: ref as (typeof ENTITY_PEERS)[number] } };
  }
  const rec = test.dns.find((d) => d.name === bareName(ref));
  if (rec) {
    if (side === 'from') {
      return {
        code: 'fqdn-as-source',
        error: `from: "${ref}" is a DNS name; a flow's source is an endpoint, an IP or an entity`,
      };
    }
    const ip = rec.ips[0]!;
    return { peer: peerForIP(ip, eps), fqdn: { name: rec.name, ip } };
  }
  const names = [...eps.map((e) => e.name), ...ENTITY_PEERS, ...test.dns.map((d) => d.name)];
  const hint = side === 'to' && ref.includes('.') ? ' (an FQDN must be listed under spec.dns)' : '';
  return {
    code: 'unknown-peer',
    error: `${side}: "${ref}" is no endpoint, IP, entity${side === 'to' ? ' or DNS name' : ''}${hint}${didYouMean(ref, names)}`,
  };
}

function epRef(e: TestEndpoint): string {
  return e.namespace ? `${e.namespace}/${e.name}` : e.name;
}

function didYouMean(s: string, known: string[]): string {
  const g = closest(s, known);
  return g ? `; did you mean "${g}"?` : '';
}

// ---------------------------------------------------------------- small readers

function requiredString(c: Cursor, field: string): string | undefined {
  const f = c.field(field);
  if (!f || f.isNull) {
    (f ?? c).error('missing-field', `${c.pathString ? `${c.pathString}.` : ''}${field} is required`);
    return undefined;
  }
  return f.string();
}

function optString(c: Cursor, field: string): string | undefined {
  const f = c.field(field);
  return f ? f.string() : undefined;
}

function oneOf<T extends string>(c: Cursor, allowed: readonly T[], what: string): T | undefined {
  const v = c.string();
  if (v === undefined) return undefined;
  if ((allowed as readonly string[]).includes(v)) return v as T;
  const ci = allowed.find((a) => a.toLowerCase() === v.toLowerCase());
  const hint = ci ? ` (did you mean "${ci}"?)` : '';
  c.error('invalid-value', `${what} must be one of ${allowed.join(', ')}, not "${v}"${hint}`);
  return undefined;
}

function fileIssue(file: string, code: string, message: string): Issue {
  return { code, severity: 'error', path: '', pos: { file, line: 1, column: 1 }, message };
}

/** Files to run for `seawall test PATH...`: named files as given, directories walked for PolicyTests. */
export function isDirectory(p: string): boolean {
  try {
    return statSync(p).isDirectory();
  } catch {
    return false;
  }
}

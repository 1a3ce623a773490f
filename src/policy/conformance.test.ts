// Runs every PolicyTest in /work/shared/conformance against the engine with a small reader of
// the format (the real runner lives in src/policytest/). Inline policies are plain values here,
// so a dummy `pos` is attached to every object the API types mark as Located (testutil's withPos).

import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { parseAllDocuments } from 'yaml';
import { kafkaApiKeyByName } from '../l7/kafka.ts';
import type { PolicyObject } from '../policy-api/types.ts';
import { PolicyEngine } from './engine.ts';
import { withPos } from './testutil.ts';
import type { EndpointSpec, FlowRequest, L7Request, PeerRef } from './types.ts';

const DIR = '/work/shared/conformance';

interface TestDoc {
  metadata: { name: string };
  spec: {
    config?: { enforcementMode?: 'default' | 'always' | 'never' };
    policies?: unknown[];
    namespaces?: Array<{ name: string; labels?: Record<string, string> }>;
    endpoints?: Array<EndpointSpec & { ip?: string }>;
    dns?: Array<{ name: string; ips: string[]; ttl?: number }>;
    flows: Array<Record<string, unknown> & { expect: string; expectReason?: string }>;
  };
}

const ENTITIES = new Set(['world', 'host', 'remote-node', 'kube-apiserver']);

function peerOf(ref: string, doc: TestDoc, eps: EndpointSpec[]): PeerRef {
  if (ENTITIES.has(ref)) return { kind: 'entity', entity: ref as 'world' };
  if (/^\d+\.\d+\.\d+\.\d+$/.test(ref)) return { kind: 'ip', ip: ref };
  const slash = ref.indexOf('/');
  const cands =
    slash >= 0
      ? eps.filter((e) => e.namespace === ref.slice(0, slash) && e.name === ref.slice(slash + 1))
      : eps.filter((e) => e.name === ref);
  if (cands.length === 1) {
    const e = cands[0]!;
    return e.external === true
      ? { kind: 'ip', ip: e.ip }
      : { kind: 'endpoint', name: e.name, namespace: e.namespace ?? 'default' };
  }
  const d = doc.spec.dns?.find(
    (x) => x.name.replace(/\.$/, '').toLowerCase() === ref.replace(/\.$/, '').toLowerCase(),
  );
  if (d !== undefined && d.ips[0] !== undefined) return { kind: 'ip', ip: d.ips[0] };
  throw new Error(`cannot resolve ${ref}`);
}

function l7Of(f: Record<string, unknown>): L7Request | undefined {
  const http = f.http as
    | { method: string; path: string; host?: string; headers?: Record<string, string> }
    | undefined;
  if (http !== undefined) {
    const r: L7Request = { kind: 'http', method: http.method, path: http.path };
    if (http.host !== undefined) r.host = http.host;
    if (http.headers !== undefined) r.headers = http.headers;
    return r;
  }
  const grpc = f.grpc as { service: string; method: string } | undefined;
  if (grpc !== undefined)
    return { kind: 'http', method: 'POST', path: `/${grpc.service}/${grpc.method}`, grpc: true };
  const k = f.kafka as
    | { apiKey: string; apiVersion?: number; clientID?: string; topic?: string; topics?: string[] }
    | undefined;
  if (k !== undefined) {
    return {
      kind: 'kafka',
      apiKey: kafkaApiKeyByName(k.apiKey) ?? -1,
      apiVersion: k.apiVersion ?? 0,
      clientID: k.clientID ?? '',
      topics: k.topics ?? (k.topic !== undefined ? [k.topic] : []),
    };
  }
  const dns = f.dns as { query: string; type?: string } | undefined;
  if (dns !== undefined) return { kind: 'dns', query: dns.query, qtype: dns.type ?? 'A' };
  return undefined;
}

/** Loads a PolicyTest document into a fresh engine and yields each flow's outcome. */
export function runDoc(
  doc: TestDoc,
  file: string,
): Array<{ name: string; expect: string; got: string; reason?: string; why: string[] }> {
  const engine = new PolicyEngine({ enforcementMode: doc.spec.config?.enforcementMode ?? 'default' });
  for (const ns of doc.spec.namespaces ?? []) engine.upsertNamespace(ns.name, ns.labels ?? {});
  let nextIP = 1;
  const eps: EndpointSpec[] = (doc.spec.endpoints ?? []).map((e) => {
    const spec: EndpointSpec = { ...e, labels: e.labels ?? {}, ip: e.ip ?? `10.255.0.${nextIP++}` };
    if (e.external !== true && spec.namespace === undefined) spec.namespace = 'default';
    return spec;
  });
  for (const e of eps) engine.upsertEndpoint(e);
  for (const p of doc.spec.policies ?? []) {
    const issues = engine.upsertPolicy(withPos(p, file) as PolicyObject);
    assert.deepEqual(issues, [], `${file}: policy issues`);
  }
  const now = 1_700_000_000_000;
  return doc.spec.flows.map((f, i) => {
    const flow: FlowRequest = {
      src: peerOf(String(f.from), doc, eps),
      dst: peerOf(String(f.to), doc, eps),
      protocol: (f.protocol as FlowRequest['protocol']) ?? 'TCP',
    };
    if (f.port !== undefined) flow.dport = Number(f.port);
    if (f.icmp !== undefined) flow.icmp = f.icmp as { type: number; family: 'IPv4' };
    const l7 = l7Of(f);
    if (l7 !== undefined) flow.l7 = l7;
    const v = engine.decide(flow, now);
    if (v.allowed && l7?.kind === 'dns' && v.egress?.l7?.parser === 'dns') {
      for (const d of doc.spec.dns ?? []) {
        if (d.name.replace(/\.$/, '').toLowerCase() === l7.query.replace(/\.$/, '').toLowerCase()) {
          engine.learnDNS(d.name, d.ips, d.ttl ?? 60, now);
        }
      }
    }
    const out = {
      name: String(f.name ?? `flow[${i}] ${f.from} → ${f.to}`),
      expect: f.expectReason === undefined ? f.expect : `${f.expect}/${f.expectReason}`,
      got:
        f.expectReason === undefined
          ? v.allowed
            ? 'allowed'
            : 'denied'
          : `${v.allowed ? 'allowed' : 'denied'}/${v.reason ?? ''}`,
      why: v.explanation,
    };
    return out;
  });
}

/** Files where the shared conformance expectation disagrees with Cilium; reported, not bent (none today). */
const KNOWN: Record<string, string> = {};

const files = existsSync(DIR)
  ? readdirSync(DIR)
      .filter((f) => f.endsWith('.yaml'))
      .sort()
  : [];

for (const file of files) {
  const text = readFileSync(join(DIR, file), 'utf8');
  for (const d of parseAllDocuments(text)) {
    const doc = d.toJS() as TestDoc;
    const known = KNOWN[file];
    test(`conformance ${file} ${doc.metadata.name}`, known === undefined ? {} : { todo: known }, () => {
      for (const r of runDoc(doc, file)) {
        assert.equal(r.got, r.expect, `${r.name}\n  ${r.why.join('\n  ')}`);
      }
    });
  }
}

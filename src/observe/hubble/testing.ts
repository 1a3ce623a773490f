// Test support for the Hubble API: a ring of named flows (the fixtures of src/flow/testing plus L7
// records and variants), one second apart, and helpers to start a server on a temp socket.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { httpFlowRecord } from '../../flow/l7-record.ts';
import { backend, FLOWS, frontend, icmpWorldEgress, tcpAllowedIngress } from '../../flow/testing/flows.ts';
import type { Flow } from '../../flow/types.ts';
import { FlowRing } from '../sink.ts';

const http = {
  time: new Date(0),
  nodeName: 'node-1',
  type: 'REQUEST' as const,
  verdict: 'FORWARDED' as const,
  direction: 'INGRESS' as const,
  client: { ip: '10.0.1.10', port: 45000, endpoint: frontend },
  server: { ip: '10.0.1.20', port: 80, endpoint: backend },
  method: 'GET',
  url: 'http://backend/api/v1/items?page=2',
  protocol: 'HTTP/1.1',
};

/** Named flows A..J in ring order (see server.test.ts for what each filter row expects). */
export function corpus(): [string, Flow][] {
  const extra: Record<string, Flow> = {
    httpGet: httpFlowRecord({ ...http, uuid: '00000000-0000-4000-8000-0000000000a1' }),
    http404: httpFlowRecord({
      ...http,
      uuid: '00000000-0000-4000-8000-0000000000a2',
      type: 'RESPONSE',
      code: 404,
      latencyNs: 2_000_000,
    }),
    worldByName: {
      ...icmpWorldEgress,
      uuid: '00000000-0000-4000-8000-0000000000a3',
      destination_names: ['api.github.com'],
      node_name: 'node-2',
    },
    tcpSynAckReply: {
      ...tcpAllowedIngress,
      uuid: '00000000-0000-4000-8000-0000000000a4',
      l4: { TCP: { source_port: 40000, destination_port: 8080, flags: { SYN: true, ACK: true } } },
      is_reply: true,
      Summary: 'TCP Flags: SYN, ACK',
    },
  };
  const all = [...Object.entries(FLOWS), ...Object.entries(extra)];
  return all.map(([name, f], i) => [
    name,
    { ...f, time: `2025-01-02T03:04:${String(10 + i).padStart(2, '0')}Z` },
  ]);
}

export function ringOf(flows: Flow[], capacity = 4095, nodeName = 'node-1'): FlowRing {
  const ring = new FlowRing(capacity);
  for (const f of flows) ring.push({ flow: f, node_name: f.node_name ?? nodeName, time: f.time });
  return ring;
}

/** A temp directory for sockets, removed by the returned function. */
export function tempDir(): { dir: string; remove: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'seawall-hubble-'));
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

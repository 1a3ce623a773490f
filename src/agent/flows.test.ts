// The flow pipeline's accounting of kernel events without a record: an event whose record fails
// to build (the engine throws) is counted as an error and as lost, shown in status and in
// /metrics as hubble_lost_events_total{source="observer_events_queue"}, and logged; never dropped
// silently, never thrown into the event path.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { NodeDatapath } from '../datapath/node.ts';
import type { KernelEvent } from '../flow/nflog.ts';
import { BUILD_ERROR_SOURCE, FlowPipeline } from './flows.ts';

function fakeNode(decide: () => never): NodeDatapath {
  return {
    node: 'seawall-unit',
    engine: {
      decide,
      config: { clusterName: 'default' },
      identityOf: () => 2,
      labelsOf: () => ['reserved:world'],
    },
    endpointIds: () => ({}),
    topo: { nodeIp: '10.0.0.1', hostByIp: () => undefined },
  } as unknown as NodeDatapath;
}

function event(proto: number): KernelEvent {
  return {
    time: { seconds: 1_700_000_000, nanos: 0 },
    verdict: 'deny',
    dir: 'in',
    endpointId: 1,
    srcIP: '10.0.1.10',
    dstIP: '10.0.1.20',
    proto,
    sport: 40000,
    dport: 80,
  };
}

const lostMetric = (text: string, source: string): number => {
  const line = text.split('\n').find((l) => l.startsWith(`hubble_lost_events_total{source="${source}"}`));
  return line === undefined ? 0 : Number(line.split(' ').pop());
};

describe('FlowPipeline: events without a record', () => {
  const rows: Array<{
    name: string;
    events: KernelEvent[];
    want: { errors: number; lost: number; processed: number; buildErrorMetric: number; logs: number };
  }> = [
    {
      name: 'the engine throws: counted as errors and lost, logged',
      events: [event(6), event(17)],
      want: { errors: 2, lost: 2, processed: 0, buildErrorMetric: 2, logs: 2 },
    },
    {
      name: 'logging stops after ten, counting does not',
      events: Array.from({ length: 25 }, () => event(6)),
      want: { errors: 25, lost: 25, processed: 0, buildErrorMetric: 25, logs: 11 },
    },
    {
      name: 'a protocol the engine does not know: recorded from the kernel alone (verdict and drop), not lost (item 7)',
      events: [event(200)],
      want: { errors: 0, lost: 0, processed: 2, buildErrorMetric: 0, logs: 0 },
    },
  ];
  for (const r of rows) {
    it(r.name, async () => {
      const logs: string[] = [];
      const p = new FlowPipeline(
        fakeNode(() => {
          throw new Error('engine exploded');
        }),
        { runDir: '/nonexistent', flowLog: false, socket: false, log: (l) => logs.push(l) },
      );
      for (const ev of r.events) p.ingest(ev);
      const st = p.status();
      assert.deepEqual(
        { errors: st.errors, lost: st.lost, processed: st.processed },
        { errors: r.want.errors, lost: r.want.lost, processed: r.want.processed },
      );
      assert.equal(lostMetric(await p.metricsText(), BUILD_ERROR_SOURCE), r.want.buildErrorMetric);
      assert.equal(logs.length, r.want.logs, logs.join('\n'));
      if (r.want.errors > 0) assert.match(logs[0] ?? '', /flow record not built: .*engine exploded/);
    });
  }
});

describe('FlowPipeline: records as Cilium emits them', () => {
  const allowAll = (): never =>
    ({
      allowed: true,
      verdict: 'FORWARDED',
      decidedBy: 'INGRESS',
      srcIdentity: 2,
      dstIdentity: 2,
      explanation: [],
    }) as never;
  const denyAll = (): never =>
    ({
      allowed: false,
      verdict: 'DROPPED',
      reason: 'POLICY_DENIED',
      decidedBy: 'INGRESS',
      srcIdentity: 2,
      dstIdentity: 2,
      explanation: [],
    }) as never;
  const syn = (verdict: KernelEvent['verdict'], seconds: number, sport = 40000): KernelEvent => ({
    ...event(6),
    verdict,
    time: { seconds, nanos: 0 },
    sport,
    tcpFlags: { SYN: true },
  });
  const rows: {
    name: string;
    decide: () => never;
    events: KernelEvent[];
    want: string[];
    repeated: number;
  }[] = [
    {
      name: 'a retransmitted SYN (1 s, 3 s later) gives one forwarded verdict',
      decide: allowAll,
      events: [syn('fwd', 100), syn('fwd', 101), syn('fwd', 103)],
      want: ['FORWARDED/5'],
      repeated: 2,
    },
    {
      name: 'another source port is another connection',
      decide: allowAll,
      events: [syn('fwd', 100), syn('fwd', 100, 40001)],
      want: ['FORWARDED/5', 'FORWARDED/5'],
      repeated: 0,
    },
    {
      name: 'the same tuple after the window is a new connection',
      decide: allowAll,
      events: [syn('fwd', 100), syn('fwd', 200)],
      want: ['FORWARDED/5', 'FORWARDED/5'],
      repeated: 0,
    },
    {
      name: 'each denied SYN: a policy verdict and a drop, none folded (folding is off by default)',
      decide: denyAll,
      events: [syn('denied', 100), syn('denied', 101)],
      want: ['DROPPED/5', 'DROPPED/1', 'DROPPED/5', 'DROPPED/1'],
      repeated: 0,
    },
  ];
  for (const r of rows) {
    it(r.name, () => {
      const p = new FlowPipeline(fakeNode(r.decide), {
        runDir: '/nonexistent',
        flowLog: false,
        socket: false,
      });
      for (const ev of r.events) p.ingest(ev);
      const got = p.since(0).map((e) => `${e.event.flow.verdict}/${e.event.flow.event_type?.type}`);
      assert.deepEqual(got, r.want);
      assert.equal(p.status().repeatedVerdicts, r.repeated);
    });
  }
});

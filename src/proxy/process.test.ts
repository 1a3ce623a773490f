import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { describe, it } from 'node:test';
import type { Flow } from '../flow/types.ts';
import { encode, FLOW_FD_ENV, lineDecoder, type ProxyMessage } from './ipc.ts';
import { FlowBatcher, MAX_PENDING_FLOW_BYTES } from './process.ts';

const flow = (i: number) => ({ uuid: `u${i}`, verdict: 'FORWARDED', Type: 'L7' }) as unknown as Flow;
const line = (i: number) => encode({ type: 'flow', flow: flow(i) });
const turn = () => new Promise((r) => setImmediate(r));

describe('FlowBatcher: a bounded channel (a slow agent loses records, counted; never waits)', () => {
  const rows: Array<{
    name: string;
    /** Bytes the stream holds at each flush. */
    pending: number[];
    /** Records pushed before each flush. */
    batches: number[];
    lost: number;
    /** What the agent is sent, in order. */
    want: string;
  }> = [
    {
      name: 'room: every batch written',
      pending: [0, 10],
      batches: [2, 1],
      lost: 0,
      want: line(0) + line(1) + line(2),
    },
    {
      name: 'full: the batch is lost and counted, nothing written',
      pending: [MAX_PENDING_FLOW_BYTES],
      batches: [3],
      lost: 3,
      want: '',
    },
    {
      name: 'room again: the loss is reported ahead of the next batch',
      pending: [MAX_PENDING_FLOW_BYTES - 10, 0],
      batches: [2, 1],
      lost: 2,
      want: encode({ type: 'flows-lost', count: 2 }) + line(2),
    },
    {
      name: 'losses add up until reported once',
      pending: [MAX_PENDING_FLOW_BYTES, MAX_PENDING_FLOW_BYTES, 0],
      batches: [1, 2, 1],
      lost: 3,
      want: encode({ type: 'flows-lost', count: 3 }) + line(3),
    },
  ];
  for (const r of rows) {
    it(r.name, async () => {
      const writes: string[] = [];
      let pending = 0;
      const b = new FlowBatcher({ write: (t) => writes.push(t), pending: () => pending });
      let i = 0;
      for (let k = 0; k < r.batches.length; k++) {
        pending = r.pending[k]!;
        for (let n = 0; n < r.batches[k]!; n++) b.pushLine(line(i++));
        b.flush();
      }
      assert.equal(b.lost, r.lost);
      assert.equal(writes.join(''), r.want);
      await turn(); // the turn's scheduled flush finds nothing more to write
      assert.equal(writes.join(''), r.want);
    });
  }

  it('a loss is reported when there is room again, with no record coming', async () => {
    const writes: string[] = [];
    let pending = MAX_PENDING_FLOW_BYTES;
    const b = new FlowBatcher({ write: (t) => writes.push(t), pending: () => pending });
    b.pushLine(line(1));
    b.flush();
    pending = 0;
    for (let t = 0; t < 100 && writes.length === 0; t++) await new Promise((r) => setTimeout(r, 10));
    assert.deepEqual(writes, [encode({ type: 'flows-lost', count: 1 })]);
  });

  it('push(flow) and pushLine(encoded) write the same text', async () => {
    const a: string[] = [];
    const c: string[] = [];
    const b1 = new FlowBatcher((t) => a.push(t));
    const b2 = new FlowBatcher((t) => c.push(t));
    b1.push(flow(7));
    b2.pushLine(line(7));
    await turn();
    assert.deepEqual(a, c);
  });
});

const CHILD = `
import { sendFlowLine, useOwnRecordChannel } from ${JSON.stringify(join(import.meta.dirname, 'process.ts'))};
import { encode } from ${JSON.stringify(join(import.meta.dirname, 'ipc.ts'))};
useOwnRecordChannel();
const pad = 'x'.repeat(900);
let maxGap = 0, last = performance.now(), n = 0;
const tick = setInterval(() => { const t = performance.now(); maxGap = Math.max(maxGap, t - last); last = t; }, 5);
const t0 = performance.now();
const burst = () => {
  for (let i = 0; i < 200; i++) sendFlowLine(encode({ type: 'flow', flow: { uuid: String(n++), Summary: pad } }));
  if (performance.now() - t0 < 600) setImmediate(burst);
  else {
    clearInterval(tick);
    process.stdout.write(JSON.stringify({ sent: n, maxGap }) + '\\n');
    process.stdin.resume();
    process.stdin.on('end', () => process.exit(0));
  }
};
burst();
`;

describe('the DNS proxy process’s record channel (fd 3, as the agent opens it)', () => {
  it('an agent that does not read: the event loop keeps turning, records are lost, the loss is reported', async () => {
    const c = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', CHILD], {
      stdio: ['pipe', 'pipe', 'inherit', 'pipe'],
      env: { ...process.env, [FLOW_FD_ENV]: '3' },
    });
    const records = c.stdio[3] as Readable;
    records.pause(); // the agent busy: nothing read while the child writes
    try {
      let out = '';
      c.stdout!.on('data', (d: Buffer) => (out += d.toString()));
      for (let t = 0; t < 600 && !out.includes('\n'); t++) await new Promise((r) => setTimeout(r, 50));
      const { sent, maxGap } = JSON.parse(out) as { sent: number; maxGap: number };
      // about 1,000 records fit; far more were sent
      assert.ok(sent > 5000, `sent ${sent}`);
      // a blocking write would stall the loop until the reader reads (never, here); under load
      // a gap of some tens of ms is the machine's, not the channel's
      assert.ok(maxGap < 500, `event loop stalled ${maxGap.toFixed(0)} ms`);
      let flows = 0;
      let lost = 0;
      records.on(
        'data',
        lineDecoder<ProxyMessage>(
          (m) => {
            if (m.type === 'flow') flows++;
            else if (m.type === 'flows-lost') lost += m.count;
          },
          () => assert.fail('a broken line'),
        ),
      );
      records.resume();
      for (let t = 0; t < 200 && flows + lost < sent; t++) await new Promise((r) => setTimeout(r, 25));
      assert.ok(lost > 0, 'records were lost');
      assert.equal(flows + lost, sent, 'every record arrived or was counted lost');
      assert.ok(flows * 1000 <= MAX_PENDING_FLOW_BYTES * 2, `${flows} records queued: the bound held`);
    } finally {
      c.stdin!.end();
      await new Promise((r) => (c.exitCode !== null ? r(undefined) : c.once('exit', r)));
    }
  });
});

// A proxy that queues a record in the same turn as a snapshot arrives (its listener runs first),
// or hands it over in `beforeAck`, then acknowledges the snapshot: the record is written first.
const ACK_CHILD = (held: boolean) => `
import { sendFlowLine, serveAgent } from ${JSON.stringify(join(import.meta.dirname, 'process.ts'))};
import { SnapshotMirror } from ${JSON.stringify(join(import.meta.dirname, 'mirror.ts'))};
import { encode } from ${JSON.stringify(join(import.meta.dirname, 'ipc.ts'))};
const record = () => sendFlowLine(encode({ type: 'flow', flow: { uuid: 'before-the-ack' } }));
${held ? '' : "process.stdin.on('data', record);"}
serveAgent({
  parser: 'http',
  mirror: new SnapshotMirror(),
  address: '127.0.0.1',
  port: 1,
  uid: process.getuid(),
  close: async () => {},
  ${held ? 'beforeAck: record,' : ''}
});
`;

describe('serveAgent: records queued before an ack', () => {
  const rows = [
    { name: 'queued in the same turn (DNS, Kafka, HTTP): the record, then the ack', held: false },
    { name: 'held by the proxy, handed over by beforeAck (HTTP): the record, then the ack', held: true },
  ];
  for (const r of rows) {
    it(r.name, async () => {
      const c = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', ACK_CHILD(r.held)], {
        stdio: ['pipe', 'pipe', 'inherit'],
      });
      const seen: string[] = [];
      c.stdout!.on(
        'data',
        lineDecoder<ProxyMessage>(
          (m) => seen.push(m.type),
          () => assert.fail('a broken line'),
        ),
      );
      try {
        for (let t = 0; t < 400 && !seen.includes('ready'); t++) await new Promise((d) => setTimeout(d, 25));
        c.stdin!.write(
          `${JSON.stringify({ type: 'snapshot', snapshot: { version: 1, peers: [], endpoints: [] } })}\n`,
        );
        for (let t = 0; t < 400 && seen.length < 3; t++) await new Promise((d) => setTimeout(d, 25));
        assert.deepEqual(seen, ['ready', 'flow', 'ack']);
      } finally {
        c.stdin!.end();
        await new Promise((d) => (c.exitCode !== null ? d(undefined) : c.once('exit', d)));
      }
    });
  }
});

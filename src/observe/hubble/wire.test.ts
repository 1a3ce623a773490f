// GetFlows on the wire, read without any .proto: a hand-written protobuf reader finds each field
// of a GetFlowsResponse at the number Cilium's observer.proto and flow.proto give it (written here
// from those files, not from Seawall's copies), so a renumbered field in proto/ fails this test
// even though Seawall's server and client, built from the same copy, would still agree.

import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { tcpAllowedIngress as flow } from '../../flow/testing/flows.ts';
import { startHubbleServer } from './server.ts';
import { ringOf, tempDir } from './testing.ts';

type Field = { wt: number; v: bigint | Buffer };

/** Protobuf wire format → field number → values (varints as bigint, length-delimited as bytes). */
function fields(b: Buffer): Map<number, Field[]> {
  const out = new Map<number, Field[]>();
  let i = 0;
  const varint = (): bigint => {
    let v = 0n;
    let shift = 0n;
    for (;;) {
      const byte = b[i++]!;
      v |= BigInt(byte & 0x7f) << shift;
      if (byte < 0x80) return v;
      shift += 7n;
    }
  };
  while (i < b.length) {
    const tag = Number(varint());
    const wt = tag & 7;
    let v: bigint | Buffer;
    if (wt === 0) v = varint();
    else if (wt === 2) {
      const n = Number(varint());
      v = b.subarray(i, i + n);
      i += n;
    } else throw new Error(`wire type ${wt} at byte ${i}: not in these messages`);
    const f = tag >>> 3;
    out.set(f, [...(out.get(f) ?? []), { wt, v }]);
  }
  return out;
}

/** The value at a path of field numbers (the first of each repeated field unless an index is given). */
function at(msg: Buffer, path: (number | [number, number])[]): bigint | Buffer {
  let cur: bigint | Buffer = msg;
  for (const step of path) {
    const [num, idx] = Array.isArray(step) ? step : [step, 0];
    const fs = fields(cur as Buffer).get(num);
    if (fs === undefined || fs[idx] === undefined)
      throw new Error(`no field ${num} (path ${JSON.stringify(path)})`);
    cur = fs[idx]!.v;
  }
  return cur;
}

describe('GetFlows on the wire: Cilium field numbers', async () => {
  const tmp = tempDir();
  const server = await startHubbleServer(
    { ring: ringOf([flow]), nodeName: 'node-1' },
    { unixSocket: join(tmp.dir, 'h.sock') },
  );
  const client = new grpc.Client(`unix://${server.unixSocket}`, grpc.credentials.createInsecure());
  const got: Buffer[] = await new Promise((resolve, reject) => {
    const out: Buffer[] = [];
    const call = client.makeServerStreamRequest(
      '/observer.Observer/GetFlows',
      () => Buffer.alloc(0), // GetFlowsRequest{}: every flow held, then the end
      (b: Buffer) => b,
      {},
    );
    call.on('data', (b: Buffer) => out.push(b));
    call.on('error', reject);
    call.on('end', () => resolve(out));
  });
  client.close();
  await server.close();
  tmp.remove();

  it('one response', () => assert.equal(got.length, 1));
  const res = got[0]!;
  const str = (v: bigint | Buffer): string => (v as Buffer).toString('utf8');
  const FLOW = 1; // GetFlowsResponse.flow
  const rows: { name: string; path: (number | [number, number])[]; want: string | bigint }[] = [
    { name: 'GetFlowsResponse.node_name = 1000', path: [1000], want: 'node-1' },
    { name: 'GetFlowsResponse.time = 1001 (Timestamp.seconds = 1)', path: [1001, 1], want: 1735787045n },
    { name: 'Flow.time = 1 (Timestamp.nanos = 2)', path: [FLOW, 1, 2], want: 678901000n },
    { name: 'Flow.uuid = 34', path: [FLOW, 34], want: flow.uuid },
    { name: 'Flow.verdict = 2 (FORWARDED = 1)', path: [FLOW, 2], want: 1n },
    { name: 'Flow.IP = 5 (IP.source = 1)', path: [FLOW, 5, 1], want: '10.0.1.10' },
    { name: 'Flow.IP = 5 (IP.destination = 2)', path: [FLOW, 5, 2], want: '10.0.1.20' },
    { name: 'Flow.IP = 5 (IP.ipVersion = 3, IPv4 = 1)', path: [FLOW, 5, 3], want: 1n },
    { name: 'Flow.l4 = 6 (Layer4.TCP = 1, TCP.source_port = 1)', path: [FLOW, 6, 1, 1], want: 40000n },
    { name: 'TCP.destination_port = 2', path: [FLOW, 6, 1, 2], want: 8080n },
    { name: 'TCP.flags = 3 (TCPFlags.SYN = 2)', path: [FLOW, 6, 1, 3, 2], want: 1n },
    { name: 'Flow.source = 8 (Endpoint.ID = 1)', path: [FLOW, 8, 1], want: 101n },
    { name: 'Endpoint.identity = 2', path: [FLOW, 8, 2], want: 1001n },
    { name: 'Endpoint.namespace = 3', path: [FLOW, 8, 3], want: 'production' },
    { name: 'Endpoint.labels = 4', path: [FLOW, 8, 4], want: flow.source!.labels![0]! },
    { name: 'Endpoint.pod_name = 5', path: [FLOW, 8, 5], want: 'frontend' },
    { name: 'Endpoint.cluster_name = 7', path: [FLOW, 8, 7], want: 'default' },
    { name: 'Flow.destination = 9', path: [FLOW, 9, 5], want: 'backend' },
    { name: 'Flow.Type = 10 (L3_L4 = 1)', path: [FLOW, 10], want: 1n },
    { name: 'Flow.node_name = 11', path: [FLOW, 11], want: 'node-1' },
    { name: 'Flow.event_type = 19 (CiliumEventType.type = 1)', path: [FLOW, 19, 1], want: 5n },
    { name: 'Flow.traffic_direction = 22 (INGRESS = 1)', path: [FLOW, 22], want: 1n },
    { name: 'Flow.policy_match_type = 23', path: [FLOW, 23], want: 2n },
    { name: 'Flow.Summary = 100000', path: [FLOW, 100000], want: 'TCP Flags: SYN' },
    {
      name: 'Flow.ingress_allowed_by = 21002 (Policy.name = 1)',
      path: [FLOW, 21002, 1],
      want: 'backend-ingress',
    },
    { name: 'Policy.namespace = 2', path: [FLOW, 21002, 2], want: 'production' },
    {
      name: 'Policy.labels = 3',
      path: [FLOW, 21002, [3, 1]],
      want: flow.ingress_allowed_by![0]!.labels![1]!,
    },
    { name: 'Policy.kind = 5', path: [FLOW, 21002, 5], want: 'CiliumNetworkPolicy' },
  ];
  for (const r of rows) {
    it(r.name, () => {
      const v = at(res, r.path);
      assert.deepEqual(typeof r.want === 'string' ? str(v) : v, r.want);
    });
  }
  it('Flow.is_reply = 26: a BoolValue present and false', () => {
    const f = fields(at(res, [FLOW]) as Buffer).get(26);
    assert.equal(f?.length, 1);
    // protobufjs writes value = 1 as 0 (Go writes an empty message): false either way
    assert.deepEqual(
      fields(f![0]!.v as Buffer)
        .get(1)
        ?.map((x) => x.v) ?? [0n],
      [0n],
    );
  });
});

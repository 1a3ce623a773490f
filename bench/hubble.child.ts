// A Hubble follower for bench/hubble.bench.ts, in a process of its own (as `hubble observe -f` or
// Relay is): a grpc-js client of the Observer's GetFlows with follow=true on the agent's unix
// socket, decoding every GetFlowsResponse in full (protobufjs, as Go's proto.Unmarshal does) and
// counting flows and the LostEvents' num_events_lost (with the argument `count`: reading only
// the first byte, to tell flows from LostEvents, as a client that decodes nothing). Over IPC:
//   {connect: SOCKET}  opens the stream; answers {connected: true} once the call is made
//   'count'            answers {flows, lost, cpu} (cpu: this process's user+system µs so far)
//   'close'            cancels the stream and closes the client; answers {closed: true}

import * as grpc from '@grpc/grpc-js';
import { HUBBLE_CLIENT_OPTIONS } from '../src/observe/hubble/client.ts';
import { hubbleType } from '../src/observe/hubble/schema.ts';

const Res = hubbleType('observer.GetFlowsResponse');
const DECODE = process.argv[2] !== 'count';
const Req = hubbleType('observer.GetFlowsRequest');

let client: grpc.Client | undefined;
let call: grpc.ClientReadableStream<Buffer> | undefined;
let flows = 0;
let lost = 0;
let errors = 0;

function send(m: unknown): void {
  process.send?.(m);
}

process.on('message', (m: unknown) => {
  if (typeof m === 'object' && m !== null && 'connect' in m) {
    flows = 0;
    lost = 0;
    errors = 0;
    client = new grpc.Client(
      `unix://${(m as { connect: string }).connect}`,
      grpc.credentials.createInsecure(),
      HUBBLE_CLIENT_OPTIONS,
    );
    call = client.makeServerStreamRequest(
      '/observer.Observer/GetFlows',
      (o: Record<string, unknown>) => Buffer.from(Req.encode(Req.fromObject(o)).finish()),
      (b: Buffer) => b,
      { follow: true },
    );
    call.on('data', (b: Buffer) => {
      // field 1 (flow) is tag 0x0a; anything else is decoded (a LostEvent)
      if (!DECODE && b[0] === 0x0a) {
        flows++;
        return;
      }
      const r = Res.decode(b) as unknown as {
        flow?: { uuid?: string };
        lost_events?: { num_events_lost?: number | { toNumber(): number } };
      };
      if (r.flow !== undefined && r.flow !== null) {
        if (r.flow.uuid === undefined || r.flow.uuid.length === 0) errors++;
        flows++;
      } else if (r.lost_events !== undefined && r.lost_events !== null) {
        const n = r.lost_events.num_events_lost ?? 0;
        lost += typeof n === 'number' ? n : n.toNumber();
      } else errors++;
    });
    call.on('error', () => {});
    send({ connected: true });
  } else if (m === 'count') {
    const u = process.cpuUsage();
    send({ flows, lost, errors, cpu: u.user + u.system });
  } else if (m === 'close') {
    call?.cancel();
    client?.close();
    call = undefined;
    client = undefined;
    send({ closed: true });
  }
});
process.on('disconnect', () => process.exit(0));
process.on('SIGTERM', () => process.exit(0));
send({ ready: true });

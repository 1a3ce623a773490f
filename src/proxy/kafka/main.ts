// The node's Kafka proxy process: started by the agent inside the node network namespace
// (`ip netns exec <node> node --import tsx src/proxy/kafka/main.ts`), listening on the port that
// nat_pre DNATs Kafka-redirected connections to, judging from the policy mirror the agent pushes
// over stdin (../ipc.ts) and sending its L7 records back on stdout. Privileges as the HTTP
// proxy's (../http/main.ts): binds as root, then runs as the proxy uid, whose upstream
// connections pass the destination's ingress chain. Until the first snapshot every connection is
// refused.
//
// Arguments: --address A --port P --uid U --node NAME [--max-frame BYTES] [--max-in-flight N]

import { parseArgs } from 'node:util';
import { runMain, send, sendFlow, serveAgent } from '../process.ts';
import { useTransparentUpstream } from '../upstream-socket.ts';
import { KafkaMirror } from './mirror.ts';
import { KafkaProxy } from './proxy.ts';

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      address: { type: 'string', default: '0.0.0.0' },
      port: { type: 'string', default: '15002' },
      uid: { type: 'string', default: '1337' },
      node: { type: 'string', default: '' },
      'max-frame': { type: 'string' },
      'max-in-flight': { type: 'string' },
      // the HTTP proxy's option; the supervisor may pass it to every parser
      secrets: { type: 'string' },
    },
  });
  // upstreams leave from the client's address (Cilium's proxies are transparent); without the
  // addon every request is refused, never sent from the node's address
  const noTransparent = useTransparentUpstream();
  if (noTransparent !== undefined) send({ type: 'error', message: noTransparent });
  const mirror = new KafkaMirror();
  const proxy = new KafkaProxy({
    lookup: (c) => mirror.lookup(c),
    onFlow: sendFlow,
    onRefused: (reason) => send({ type: 'refused', reason }),
    nodeName: values.node ?? '',
    ...(values['max-frame'] !== undefined ? { maxFrameBytes: Number(values['max-frame']) } : {}),
    ...(values['max-in-flight'] !== undefined ? { maxInFlight: Number(values['max-in-flight']) } : {}),
  });
  if (proxy.unavailableReason !== undefined) send({ type: 'error', message: proxy.unavailableReason });
  const addr = await proxy.listen(Number(values.port), values.address);
  serveAgent({
    parser: 'kafka',
    mirror,
    address: addr.address,
    port: addr.port,
    uid: Number(values.uid),
    close: () => proxy.close(),
  });
}

if (import.meta.url === `file://${process.argv[1]}`) runMain('kafka', main);

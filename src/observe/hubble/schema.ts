// The Hubble API definitions (proto/flow, proto/observer, proto/peer, proto/relay) loaded once with protobufjs.
// The same files serve the gRPC server, the protojson check and the tests' client.

import { fileURLToPath } from 'node:url';
import protobuf from 'protobufjs';

/** Directory holding flow/flow.proto, observer/observer.proto, peer/peer.proto and relay/relay.proto. */
export const PROTO_DIR = fileURLToPath(new URL('./proto/', import.meta.url));
export const OBSERVER_PROTO = 'observer/observer.proto';
export const PEER_PROTO = 'peer/peer.proto';

let root: protobuf.Root | undefined;

/** The resolved protobufjs root (google/protobuf/* come bundled with protobufjs). */
export function hubbleRoot(): protobuf.Root {
  if (root === undefined) {
    const r = new protobuf.Root();
    r.resolvePath = (_origin, target) => (target.startsWith(PROTO_DIR) ? target : `${PROTO_DIR}${target}`);
    r.loadSync([OBSERVER_PROTO, PEER_PROTO], { keepCase: true });
    r.resolveAll();
    root = r;
  }
  return root;
}

export function hubbleType(name: string): protobuf.Type {
  return hubbleRoot().lookupType(name);
}

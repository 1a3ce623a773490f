// A Hubble Observer client built from the same .proto files with @grpc/grpc-js and
// @grpc/proto-loader, as any third-party client would build one. Responses come back as protojson
// (proto field names, enum names, 64-bit integers as strings), the shape `hubble observe -o json`
// prints, so they compare directly with Seawall's records. Used by the tests and the bench.

import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { toProtoJSON } from './protojson.ts';
import { hubbleType, OBSERVER_PROTO, PEER_PROTO, PROTO_DIR } from './schema.ts';

type Obj = Record<string, unknown>;

interface ObserverStub extends grpc.Client {
  GetFlows(req: Obj, opts?: grpc.CallOptions): grpc.ClientReadableStream<Obj>;
  ServerStatus(req: Obj, cb: (err: grpc.ServiceError | null, res?: Obj) => void): void;
  GetNodes(req: Obj, cb: (err: grpc.ServiceError | null, res?: Obj) => void): void;
}

interface PeerStub extends grpc.Client {
  Notify(req: Obj): grpc.ClientReadableStream<Obj>;
}

type Ctor<T> = new (target: string, creds: grpc.ChannelCredentials, options?: grpc.ChannelOptions) => T;

/**
 * A 4 MiB HTTP/2 flow-control window (grpc-js's default is 64 KiB, about 140 flows): a follower
 * that reads in bursts between busy event-loop turns otherwise stalls the server every 64 KiB and
 * falls a ring behind. grpc-go (the hubble CLI, Relay) grows its window towards 16 MiB by itself.
 */
export const HUBBLE_CLIENT_OPTIONS: grpc.ChannelOptions = { 'grpc-node.flow_control_window': 4 << 20 };
let stubCtor: Ctor<ObserverStub> | undefined;
let peerCtor: Ctor<PeerStub> | undefined;

function ctor(): Ctor<ObserverStub> {
  if (stubCtor === undefined) {
    const def = protoLoader.loadSync([OBSERVER_PROTO, PEER_PROTO], {
      includeDirs: [PROTO_DIR],
      keepCase: true,
      longs: String,
      enums: String,
      defaults: false,
      oneofs: true,
    });
    const pkg = grpc.loadPackageDefinition(def) as unknown as {
      observer: { Observer: Ctor<ObserverStub> };
      peer: { Peer: Ctor<PeerStub> };
    };
    stubCtor = pkg.observer.Observer;
    peerCtor = pkg.peer.Peer;
  }
  return stubCtor;
}

export interface HubbleClient {
  /** Every response of one GetFlows call, as protojson GetFlowsResponse objects. */
  getFlows(req: Obj, opts?: { onResponse?: (r: Obj) => void; signal?: AbortSignal }): Promise<Obj[]>;
  /** The raw stream, for follow (responses already protojson). */
  streamFlows(req: Obj): grpc.ClientReadableStream<Obj>;
  serverStatus(): Promise<Obj>;
  getNodes(): Promise<Obj>;
  /** Peer.Notify's stream (ChangeNotification objects, enums as names). */
  notify(): grpc.ClientReadableStream<Obj>;
  readonly stub: grpc.Client;
  close(): void;
}

/** `unix:///path/to.sock` or `127.0.0.1:4245`. */
export function connectHubble(target: string): HubbleClient {
  const Stub = ctor();
  const stub = new Stub(target, grpc.credentials.createInsecure(), HUBBLE_CLIENT_OPTIONS);
  let peer: PeerStub | undefined;
  const Res = hubbleType('observer.GetFlowsResponse');
  const Status = hubbleType('observer.ServerStatusResponse');
  const Nodes = hubbleType('observer.GetNodesResponse');
  const unary = (call: 'ServerStatus' | 'GetNodes', t: typeof Res) => (): Promise<Obj> =>
    new Promise((resolve, reject) => {
      stub[call]({}, (err, res) => (err !== null ? reject(err) : resolve(toProtoJSON(t, res ?? {}))));
    });
  const streamFlows = (req: Obj): grpc.ClientReadableStream<Obj> => {
    const s = stub.GetFlows(req);
    // protojson view of each message, in place of proto-loader's object
    const emit = s.emit.bind(s);
    s.emit = ((ev: string, ...args: unknown[]) =>
      ev === 'data' ? emit('data', toProtoJSON(Res, args[0] as Obj)) : emit(ev, ...args)) as typeof s.emit;
    return s;
  };
  return {
    stub,
    streamFlows,
    getFlows(req, opts = {}) {
      return new Promise((resolve, reject) => {
        const out: Obj[] = [];
        const s = streamFlows(req);
        opts.signal?.addEventListener('abort', () => s.cancel());
        s.on('data', (r: Obj) => {
          out.push(r);
          opts.onResponse?.(r);
        });
        s.on('error', (e: grpc.ServiceError) =>
          e.code === grpc.status.CANCELLED ? resolve(out) : reject(e),
        );
        s.on('end', () => resolve(out));
      });
    },
    serverStatus: unary('ServerStatus', Status),
    getNodes: unary('GetNodes', Nodes),
    notify() {
      peer ??= new peerCtor!(target, grpc.credentials.createInsecure(), HUBBLE_CLIENT_OPTIONS);
      return peer.Notify({});
    },
    close: () => {
      stub.close();
      peer?.close();
    },
  };
}

// The Hubble API as a node component: the Observer and Peer gRPC services over the flow
// pipeline's ring, on a unix socket (default /run/seawall/<node>/hubble.sock, where Cilium has
// /var/run/cilium/hubble.sock) and optionally TCP (`--hubble-listen-address`, Hubble's :4244).
// Started after the flow pipeline (it serves that ring), stopped before it. Without a flow
// pipeline (--no-flows) there is nothing to serve and nothing listens.

import { join } from 'node:path';
import { runDirFor } from '../datapath/topology.ts';
import { type HubbleServerHandle, startHubbleServer } from '../observe/hubble/server.ts';
import type { NodeRuntime, RuntimeComponent } from './runtime.ts';

/** Hubble's default TCP port (`--hubble-listen-address :4244`). */
export const HUBBLE_PORT = 4244;

export function defaultHubbleSocket(node: string): string {
  return join(runDirFor(node), 'hubble.sock');
}

export interface HubbleComponentOptions {
  /** Unix socket path; default /run/seawall/<node>/hubble.sock; false: none. */
  unixSocket?: string | false;
  /** `host:port` to listen on TCP as well (e.g. 127.0.0.1:4244). */
  listenAddress?: string;
  log?: (line: string) => void;
}

export class HubbleComponent implements RuntimeComponent {
  readonly name = 'Hubble API';
  private server: HubbleServerHandle | undefined;

  constructor(private readonly o: HubbleComponentOptions = {}) {}

  /** The running server (sockets, stats), once started. */
  get handle(): HubbleServerHandle | undefined {
    return this.server;
  }

  async start(rt: NodeRuntime): Promise<void> {
    const flows = rt.flows;
    if (flows === undefined) return;
    const unixSocket =
      this.o.unixSocket === false ? undefined : (this.o.unixSocket ?? defaultHubbleSocket(rt.node));
    if (unixSocket === undefined && this.o.listenAddress === undefined) return;
    this.server = await startHubbleServer(
      { ring: flows.ring, nodeName: rt.node, onLost: (n) => flows.addReaderLost(n) },
      {
        ...(unixSocket !== undefined ? { unixSocket } : {}),
        ...(this.o.listenAddress !== undefined ? { tcpAddress: this.o.listenAddress } : {}),
      },
    );
    const where = [this.server.unixSocket && `unix://${this.server.unixSocket}`, this.server.tcpAddress];
    this.o.log?.(`Hubble API on ${where.filter(Boolean).join(' and ')}`);
  }

  async stop(): Promise<void> {
    const s = this.server;
    this.server = undefined;
    await s?.close();
  }
}

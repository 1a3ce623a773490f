// Real gRPC servers for `seawall test --live`: one grpc-js process per pod namespace (the
// services built by protobufjs reflection from the flows' method names, see grpc-peer.cjs),
// so the proxy judges real HTTP/2 streams and the client's status is what a pod would see.

import { type ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { DatapathError } from '../datapath/exec.ts';
import { stopChildren } from './children.ts';

export const GRPC_PEER = join(import.meta.dirname, 'grpc-peer.cjs');

/** `pkg.Service/Method` (no leading slash) and how it is called. */
export interface GRPCMethod {
  path: string;
  kind: 'unary' | 'bidi';
}

/** The `service/method` of a request path `/pkg.Service/Method`, or undefined when it is not one. */
export function grpcPathOf(path: string): string | undefined {
  const m = /^\/([A-Za-z_][\w.]*)\/([A-Za-z_]\w*)$/.exec(path);
  return m ? `${m[1]}/${m[2]}` : undefined;
}

export class GRPCServers {
  private readonly procs: ChildProcess[] = [];
  /** Calls that reached a handler, in order: `ns port /pkg.Svc/Method`. */
  readonly hits: string[] = [];

  /** Starts a server in `ns` serving `methods` on each port; resolves once every port listens. */
  async start(ns: string, ports: ReadonlyMap<number, readonly GRPCMethod[]>): Promise<void> {
    const specs = [...ports].map(([p, ms]) => `${p}=${ms.map((m) => `${m.path}:${m.kind}`).join(',')}`);
    const c = spawn('ip', ['netns', 'exec', ns, process.execPath, GRPC_PEER, 'serve', ...specs], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    this.procs.push(c);
    let listening = 0;
    await new Promise<void>((resolve, reject) => {
      const t = setTimeout(
        () => reject(new DatapathError('listen-failed', `grpc server in ${ns}: no answer`)),
        15_000,
      );
      createInterface({ input: c.stdout! }).on('line', (line) => {
        let m: { listening?: number; port?: number; path?: string };
        try {
          m = JSON.parse(line) as typeof m;
        } catch {
          return;
        }
        if (m.listening !== undefined) {
          if (++listening === ports.size) {
            clearTimeout(t);
            resolve();
          }
        } else this.hits.push(`${ns} ${m.port} ${m.path}`);
      });
      c.once('exit', (code) => {
        clearTimeout(t);
        reject(new DatapathError('listen-failed', `grpc server in ${ns} exited (${code})`));
      });
    });
  }

  async closeAll(): Promise<void> {
    await stopChildren(this.procs.splice(0));
  }
}

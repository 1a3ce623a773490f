// A real @grpc/grpc-js client in a pod's namespace (grpc-peer.cjs `call`): one unary or
// bidirectional streaming call; the status the client saw (0 OK, 7 PERMISSION_DENIED, 14
// UNAVAILABLE when the connection was refused or dropped, 4 DEADLINE_EXCEEDED).

import { execFile } from 'node:child_process';
import { GRPC_PEER, type GRPCMethod } from './grpc-server.ts';

export interface GRPCResult {
  code: number;
  details: string;
  /** Response messages (`echo a`... for a bidi call). */
  messages: string[];
}

export function grpcCall(
  ns: string,
  ip: string,
  port: number,
  m: GRPCMethod,
  timeoutMs: number,
): Promise<GRPCResult> {
  const args = ['netns', 'exec', ns, process.execPath, GRPC_PEER, 'call', ip, String(port), m.path, m.kind];
  args.push(String(timeoutMs));
  return new Promise((resolve) => {
    // the client's own deadline ends the call; the kill is a backstop for a wedged process
    execFile('ip', args, { timeout: timeoutMs + 10_000 }, (err, stdout) => {
      try {
        const r = JSON.parse(String(stdout).trim().split('\n').pop() ?? '') as GRPCResult;
        resolve(r);
      } catch {
        resolve({
          code: -1,
          details: `no result from the client (${err?.message ?? 'empty output'})`,
          messages: [],
        });
      }
    });
  });
}

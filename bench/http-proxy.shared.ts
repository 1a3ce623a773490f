// What bench/http-proxy.bench.ts and its child processes share: the rules and the gRPC service.

import type * as grpc from '@grpc/grpc-js';
import type { PortRuleHTTP } from '../src/policy-api/types.ts';

const pos = { file: 'bench', line: 1, column: 1 };

/** N rules; only the last admits the bench's GET /public/…, so every request tries them all. */
export function benchRules(n: number): PortRuleHTTP[] {
  const out: PortRuleHTTP[] = [];
  for (let i = 0; i < n - 1; i++) out.push({ pos, method: 'GET', path: `/api/v${i}/.*` });
  out.push({ pos, method: 'GET', path: '/public/.*' });
  return out;
}

/** The rule that admits the bench's gRPC method. */
export const grpcRules: PortRuleHTTP[] = [{ pos, method: 'POST', path: '/bench\\.Svc/Echo' }];

const id = (b: Buffer): Buffer => b;
export const benchService = {
  Echo: {
    path: '/bench.Svc/Echo',
    requestStream: false,
    responseStream: false,
    requestSerialize: id,
    requestDeserialize: id,
    responseSerialize: id,
    responseDeserialize: id,
  },
} as unknown as grpc.ServiceDefinition;

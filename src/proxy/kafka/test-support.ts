// Loopback fixtures of the Kafka proxy tests: an upstream that records every frame it receives
// and answers each (after an optional delay) with a frame carrying the request's correlation id,
// a proxy in front of it with a fixed original destination, and a pipelining client.

import net from 'node:net';
import type { FlowEndpoint } from '../../flow/types.ts';
import type { PortRuleKafka } from '../../policy-api/types.ts';
import { FrameReader } from './frames.ts';
import type { KafkaContext, KafkaRuleSet } from './judge.ts';
import { encodeRequest, requestBodyFor } from './protocol.ts';
import { KafkaProxy, type KafkaProxyOptions } from './proxy.ts';

export const pos = { file: 'test', line: 1, column: 1 };
export const rules = (...rs: Array<Omit<PortRuleKafka, 'pos'>>): PortRuleKafka[] =>
  rs.map((r) => ({ pos, ...r }));

export class FakeUpstream {
  readonly frames: Buffer[] = [];
  /** Most requests received and not yet answered at any moment. */
  maxOutstanding = 0;
  private outstanding = 0;
  private readonly server: net.Server;
  private readonly sockets = new Set<net.Socket>();
  port = 0;

  constructor(private readonly delayMs = 0) {
    this.server = net.createServer((s) => {
      this.sockets.add(s);
      s.on('error', () => {});
      s.once('close', () => this.sockets.delete(s));
      const r = new FrameReader(1 << 30, 8);
      s.on('data', (c: Buffer) => {
        for (const f of r.push(c)) {
          this.frames.push(f);
          this.outstanding++;
          this.maxOutstanding = Math.max(this.maxOutstanding, this.outstanding);
          const answer = Buffer.alloc(10);
          answer.writeInt32BE(6, 0);
          answer.writeInt32BE(f.readInt32BE(8), 4); // the request's correlation id
          answer.write('ok', 8);
          const send = () => {
            this.outstanding--;
            if (!s.destroyed) s.write(answer);
          };
          // Produce with acks=0 gets no answer, as from Kafka
          if (f.readInt16BE(4) === 0 && produceAcks(f) === 0) this.outstanding--;
          else if (this.delayMs > 0) setTimeout(send, this.delayMs);
          else send();
        }
      });
    });
  }

  listen(): Promise<void> {
    return new Promise((r) =>
      this.server.listen(0, '127.0.0.1', () => {
        this.port = (this.server.address() as net.AddressInfo).port;
        r();
      }),
    );
  }

  close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    return new Promise((r) => this.server.close(() => r()));
  }
}

/** Acks of a Produce v3+ frame with a null transactional id (what requestBodyFor writes). */
function produceAcks(f: Buffer): number {
  const clientLen = f.readInt16BE(12);
  const at = 14 + Math.max(0, clientLen);
  const version = f.readInt16BE(6);
  return version >= 3 ? f.readInt16BE(at + 2) : f.readInt16BE(at);
}

export const CLIENT_EP: FlowEndpoint = {
  identity: 1001,
  labels: ['k8s:app=client'],
  namespace: 'ns',
  pod_name: 'client',
};
export const BROKER_EP: FlowEndpoint = {
  identity: 1002,
  labels: ['k8s:app=broker'],
  namespace: 'ns',
  pod_name: 'broker',
};

export interface Harness {
  proxy: KafkaProxy;
  upstream: FakeUpstream;
  flows: import('../../flow/types.ts').Flow[];
  refused: string[];
  /** Replace to change the rule sets (asked per request). */
  sets: { current: () => readonly KafkaRuleSet[] };
  close(): Promise<void>;
}

export async function harness(
  ruleSets: readonly KafkaRuleSet[] | (() => readonly KafkaRuleSet[]),
  opts: Partial<KafkaProxyOptions> & { delayMs?: number; noContext?: boolean } = {},
): Promise<Harness> {
  const upstream = new FakeUpstream(opts.delayMs ?? 0);
  await upstream.listen();
  const flows: Harness['flows'] = [];
  const refused: string[] = [];
  const sets = { current: typeof ruleSets === 'function' ? ruleSets : () => ruleSets };
  const proxy = new KafkaProxy({
    originalDst: () => ({ address: '127.0.0.1', port: upstream.port }),
    lookup: (c): KafkaContext | undefined =>
      opts.noContext
        ? undefined
        : {
            sourceIdentity: 1001,
            source: CLIENT_EP,
            destination: BROKER_EP,
            originalDst: c.originalDst,
            direction: 'EGRESS',
            ruleSets: () => sets.current(),
          },
    onFlow: (f) => flows.push(f),
    onRefused: (r) => refused.push(r),
    nodeName: 'node-1',
    ...opts,
  });
  await proxy.listen(0, '127.0.0.1');
  return {
    proxy,
    upstream,
    flows,
    refused,
    sets,
    close: async () => {
      await proxy.close();
      await upstream.close();
    },
  };
}

export interface Answer {
  frames: Buffer[];
  closed: boolean;
}

/** Writes the frames on one connection (all at once) and collects answers until `want` came or it closed. */
export function exchange(
  port: number,
  frames: readonly Buffer[],
  want: number,
  timeoutMs = 3000,
): Promise<Answer> {
  return new Promise((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port });
    const r = new FrameReader(1 << 30, 4);
    const got: Buffer[] = [];
    let done = false;
    const finish = (closed: boolean) => {
      if (done) return;
      done = true;
      clearTimeout(t);
      s.destroy();
      resolve({ frames: got, closed });
    };
    const t = setTimeout(() => finish(false), timeoutMs);
    s.on('connect', () => s.write(Buffer.concat(frames)));
    s.on('data', (c: Buffer) => {
      got.push(...r.push(c));
      if (got.length >= want) finish(false);
    });
    s.on('error', () => finish(true));
    s.on('close', () => finish(true));
  });
}

export function request(
  apiKey: number,
  apiVersion: number,
  correlationId: number,
  topics: string[],
  clientID = 'app',
): Buffer {
  return encodeRequest(
    { apiKey, apiVersion, correlationId, clientID },
    requestBodyFor(apiKey, apiVersion, topics),
  );
}

// Kafka clients of the live tests, run inside a pod's network namespace
// (`ip netns exec <ns> node --import tsx src/testbed/kafka-client.ts …`): one JSON line out.
//   raw HOST:PORT KEY VERSION CLIENTID [TOPIC…]  one request of that key/version naming the topics
//                                               (Seawall's encoder), answered with the error codes
//                                               of the response, or `answered: false` when the
//                                               connection closed without one
//   produce HOST:PORT TOPIC VALUE CLIENTID       a kafkajs producer (bootstrap, metadata, produce)
//   consume HOST:PORT TOPIC GROUP CLIENTID N     a kafkajs consumer group member reading N messages
//   --worker                                     JSON requests on stdin ({id, op: 'raw', …}), one
//                                               JSON answer per line: the live replay's client
// kafkajs errors are reported by name and type (e.g. KafkaJSProtocolError TOPIC_AUTHORIZATION_FAILED).

import { type ChildProcess, spawn } from 'node:child_process';
import net from 'node:net';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { FrameReader } from '../proxy/kafka/frames.ts';
import {
  decodeResponse,
  encodeRequest,
  errorCodes,
  parseRequest,
  refusalResponse,
  requestBodyFor,
} from '../proxy/kafka/protocol.ts';

const SELF = join(import.meta.dirname, 'kafka-client.ts');

export interface RawRequest {
  host: string;
  port: number;
  apiKey: number;
  apiVersion: number;
  clientID: string;
  topics: string[];
  timeoutMs?: number;
}

export interface RawAnswer {
  answered: boolean;
  /**
   * The answer is the proxy's refusal of this request, byte for byte: how a refused request
   * whose response has no error field to carry code 29 (Metadata for all topics) is told apart.
   */
  refused?: boolean;
  errorCodes?: number[];
  error?: string;
}

/** Sends one request on a new connection and reads its response. */
export function rawRequest(r: RawRequest): Promise<RawAnswer> {
  return new Promise((resolve) => {
    let frame: Buffer;
    let refusal: Buffer | undefined;
    try {
      frame = encodeRequest(
        { apiKey: r.apiKey, apiVersion: r.apiVersion, correlationId: 7, clientID: r.clientID },
        requestBodyFor(r.apiKey, r.apiVersion, r.topics),
      );
      refusal = refusalResponse(parseRequest(frame));
    } catch (e) {
      resolve({ answered: false, error: (e as Error).message });
      return;
    }
    const sock = net.connect({ host: r.host, port: r.port });
    const reader = new FrameReader(64 * 1024 * 1024, 4);
    let done = false;
    const finish = (a: RawAnswer) => {
      if (done) return;
      done = true;
      clearTimeout(t);
      sock.destroy();
      resolve(a);
    };
    const t = setTimeout(() => finish({ answered: false, error: 'timeout' }), r.timeoutMs ?? 3000);
    sock.on('connect', () => sock.write(frame));
    sock.on('error', (e) => finish({ answered: false, error: e.message }));
    sock.on('close', () => finish({ answered: false, error: 'connection closed' }));
    sock.on('data', (c: Buffer) => {
      try {
        const [f] = reader.push(c);
        if (f === undefined) return;
        if (f.readInt32BE(4) !== 7) return finish({ answered: false, error: 'wrong correlation id' });
        const codes = errorCodes(decodeResponse(f, r.apiKey, r.apiVersion));
        const refused = codes.includes(29) || (refusal !== undefined && f.equals(refusal));
        finish({ answered: true, refused, errorCodes: codes });
      } catch (e) {
        finish({ answered: false, error: (e as Error).message });
      }
    });
  });
}

interface KafkaJSError {
  name: string;
  type?: string;
  message: string;
}

interface KafkaJSResult {
  ok: boolean;
  messages?: string[];
  error?: KafkaJSError;
}

function errorOf(e: unknown): KafkaJSError {
  // kafkajs wraps the broker's error (retries exhausted) in KafkaJSNumberOfRetriesExceeded
  let x = e as { name?: string; type?: string; message?: string; originalError?: unknown; cause?: unknown };
  while (x.type === undefined && (x.originalError ?? x.cause) !== undefined) {
    x = (x.originalError ?? x.cause) as typeof x;
  }
  const out: { name: string; type?: string; message: string } = {
    name: x.name ?? 'Error',
    message: x.message ?? String(e),
  };
  if (x.type !== undefined) out.type = x.type;
  return out;
}

async function kafkajs(broker: string, clientId: string) {
  const { Kafka, logLevel } = await import('kafkajs');
  return new Kafka({
    clientId,
    brokers: [broker],
    logLevel: logLevel.NOTHING,
    retry: { retries: 0, initialRetryTime: 100 },
    connectionTimeout: 3000,
  });
}

export async function kafkajsProduce(
  broker: string,
  topic: string,
  value: string,
  clientId: string,
): Promise<KafkaJSResult> {
  const p = (await kafkajs(broker, clientId)).producer({ allowAutoTopicCreation: true });
  try {
    await p.connect();
    await p.send({ topic, messages: [{ value }] });
    return { ok: true };
  } catch (e) {
    return { ok: false, error: errorOf(e) };
  } finally {
    await p.disconnect().catch(() => {});
  }
}

export async function kafkajsConsume(
  broker: string,
  topic: string,
  groupId: string,
  clientId: string,
  n: number,
  timeoutMs = 15_000,
): Promise<KafkaJSResult> {
  const c = (await kafkajs(broker, clientId)).consumer({
    groupId,
    retry: { retries: 0 },
    heartbeatInterval: 500,
  });
  const messages: string[] = [];
  try {
    await c.connect();
    await c.subscribe({ topic, fromBeginning: true });
    const failed = new Promise<never>((_, reject) => {
      c.on(c.events.CRASH, (ev: { payload: { error: unknown } }) => reject(ev.payload.error));
    });
    const got = new Promise<void>((resolve) => {
      void c.run({
        eachMessage: async ({ message }) => {
          messages.push(message.value?.toString() ?? '');
          if (messages.length >= n) resolve();
        },
      });
    });
    const timeout = new Promise<void>((r) => setTimeout(r, timeoutMs));
    await Promise.race([got, failed, timeout]);
    return messages.length >= n
      ? { ok: true, messages }
      : { ok: false, messages, error: { name: 'Timeout', message: `${messages.length} of ${n} messages` } };
  } catch (e) {
    return { ok: false, messages, error: errorOf(e) };
  } finally {
    await c.disconnect().catch(() => {});
  }
}

function hostPort(s: string): { host: string; port: number } {
  const i = s.lastIndexOf(':');
  return { host: s.slice(0, i), port: Number(s.slice(i + 1)) };
}

async function main(argv: string[]): Promise<void> {
  const out = (v: unknown) => process.stdout.write(`${JSON.stringify(v)}\n`);
  const [op, ...a] = argv;
  if (op === '--worker') {
    const rl = createInterface({ input: process.stdin });
    out({ id: 0, ready: true });
    for await (const line of rl) {
      let m: { id: number } & RawRequest;
      try {
        m = JSON.parse(line) as typeof m;
      } catch {
        continue;
      }
      void rawRequest(m).then((r) => out({ id: m.id, ...r }));
    }
    return;
  }
  if (op === 'raw') {
    const { host, port } = hostPort(a[0]!);
    out(
      await rawRequest({
        host,
        port,
        apiKey: Number(a[1]),
        apiVersion: Number(a[2]),
        clientID: a[3] ?? '',
        topics: a.slice(4),
      }),
    );
  } else if (op === 'produce') out(await kafkajsProduce(a[0]!, a[1]!, a[2]!, a[3] ?? 'seawall'));
  else if (op === 'consume')
    out(await kafkajsConsume(a[0]!, a[1]!, a[2]!, a[3] ?? 'seawall', Number(a[4] ?? 1)));
  else throw new Error(`unknown operation ${op ?? '(none)'}`);
  process.exit(0);
}

if (import.meta.url === `file://${process.argv[1]}`) {
  main(process.argv.slice(2)).catch((e: Error) => {
    process.stdout.write(`${JSON.stringify({ ok: false, error: { name: 'Error', message: e.message } })}\n`);
    process.exit(1);
  });
}

/** A `--worker` client in a namespace: raw requests without a process start each. */
export class KafkaClientWorker {
  private readonly proc: ChildProcess;
  private nextId = 1;
  private readonly waiting = new Map<number, (a: RawAnswer) => void>();
  private readonly ready: Promise<void>;

  constructor(readonly ns: string) {
    this.proc = spawn('ip', ['netns', 'exec', ns, process.execPath, '--import', 'tsx', SELF, '--worker'], {
      cwd: join(import.meta.dirname, '..', '..'),
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    this.proc.stdin!.on('error', () => {});
    this.ready = new Promise((resolve, reject) => {
      this.proc.once('exit', (code) => {
        reject(new Error(`kafka client worker in ${ns} exited (${code})`));
        for (const w of this.waiting.values()) w({ answered: false, error: 'worker exited' });
        this.waiting.clear();
      });
      createInterface({ input: this.proc.stdout! }).on('line', (line) => {
        let m: { id: number; ready?: boolean } & RawAnswer;
        try {
          m = JSON.parse(line) as typeof m;
        } catch {
          return;
        }
        if (m.id === 0) return resolve();
        const w = this.waiting.get(m.id);
        this.waiting.delete(m.id);
        const { id: _, ...answer } = m;
        w?.(answer);
      });
    });
  }

  async request(r: RawRequest): Promise<RawAnswer> {
    await this.ready;
    const id = this.nextId++;
    return new Promise((resolve) => {
      this.waiting.set(id, resolve);
      this.proc.stdin!.write(`${JSON.stringify({ id, ...r })}\n`);
    });
  }

  close(): Promise<void> {
    return new Promise((r) => {
      if (this.proc.exitCode !== null || this.proc.signalCode !== null) return r();
      this.proc.once('exit', () => r());
      this.proc.stdin!.end();
      this.proc.kill('SIGTERM');
    });
  }
}

/** One worker per namespace, started on first use (as ProbePool). */
export class KafkaClientPool {
  private readonly workers = new Map<string, KafkaClientWorker>();

  get(ns: string): KafkaClientWorker {
    let w = this.workers.get(ns);
    if (w === undefined) {
      w = new KafkaClientWorker(ns);
      this.workers.set(ns, w);
    }
    return w;
  }

  async closeAll(): Promise<void> {
    const ws = [...this.workers.values()];
    this.workers.clear();
    await Promise.all(ws.map((w) => w.close().catch(() => {})));
  }
}

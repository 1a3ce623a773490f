// A small Kafka broker for the live tests: a stand-in (no Apache Kafka broker can be installed on
// these machines, it is in neither Debian nor npm), speaking enough of the wire protocol for the
// real clients (kcat/librdkafka, kafkajs) to produce and consume through the Kafka proxy:
// ApiVersions, Metadata, Produce, Fetch, ListOffsets, FindCoordinator, the group calls of a
// consumer (JoinGroup, SyncGroup, Heartbeat, LeaveGroup, OffsetCommit, OffsetFetch), and
// CreateTopics, DeleteTopics, DescribeGroups, ListGroups, InitProducerId. One node (id 0), one
// partition per topic, topics created on first mention, record batches stored as the producer
// sent them (only the base offset is rewritten; the CRC does not cover it), one member per group.
// It uses the proxy's message schemas (src/proxy/kafka/schema.ts), in every version it advertises.
//
// Run alone: node --import tsx src/testbed/kafka-broker.ts --address A --port P [--advertise H:P] [--quiet]
// (prints `ready <host>:<port>` on stdout when listening).

import { type ChildProcess, spawn } from 'node:child_process';
import net from 'node:net';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { FrameReader } from '../proxy/kafka/frames.ts';
import { encodeResponse, type KafkaRequestFrame, parseRequest } from '../proxy/kafka/protocol.ts';
import type { Struct, Value } from '../proxy/kafka/schema.ts';
import { stopChildren } from './children.ts';

/** The versions this broker advertises (it answers every version up to the highest), per key. */
export const BROKER_VERSIONS: ReadonlyArray<readonly [number, number, number]> = [
  [0, 3, 9], // Produce
  [1, 4, 12], // Fetch
  [2, 0, 7], // ListOffsets
  [3, 0, 12], // Metadata
  [8, 0, 8], // OffsetCommit
  [9, 0, 7], // OffsetFetch
  [10, 0, 4], // FindCoordinator
  [11, 0, 7], // JoinGroup
  [12, 0, 4], // Heartbeat
  [13, 0, 4], // LeaveGroup
  [14, 0, 5], // SyncGroup
  [15, 0, 5], // DescribeGroups
  [16, 0, 4], // ListGroups
  [18, 0, 3], // ApiVersions
  [19, 0, 7], // CreateTopics
  [20, 0, 5], // DeleteTopics
  [22, 0, 4], // InitProducerId
];
const REPO = join(import.meta.dirname, '..', '..');
const BROKER = join(import.meta.dirname, 'kafka-broker.ts');
const SUPPORTED = new Map(BROKER_VERSIONS.map(([k, lo, hi]) => [k, [lo, hi] as const]));
const UNSUPPORTED_VERSION = 35;
const UNKNOWN_TOPIC_OR_PARTITION = 3;
const NO_OPS = -2147483648;

interface Batch {
  base: bigint;
  last: bigint;
  data: Buffer;
}

interface Partition {
  batches: Batch[];
  next: bigint;
}

export interface BrokerRequest {
  apiKey: number;
  apiVersion: number;
  correlationId: number;
  clientID: string;
  topics: string[];
}

export interface BrokerStats {
  /** Requests answered, per API key. */
  requests: Map<number, number>;
  /** Record batches stored, per topic. */
  produced: Map<string, number>;
  connections: number;
}

const list = (v: Value | undefined): Value[] => (Array.isArray(v) ? v : []);
const each = (v: Value | undefined, fn: (s: Struct) => Struct): Struct[] =>
  list(v).map((e) => fn(e as Struct));

export class KafkaTestBroker {
  readonly stats: BrokerStats = { requests: new Map(), produced: new Map(), connections: 0 };
  private readonly server: net.Server;
  private readonly topics = new Map<string, { id: string; partition: Partition }>();
  private readonly offsets = new Map<string, bigint>();
  private readonly groups = new Map<
    string,
    { generation: number; member: string; protocol: string; assignment: Buffer }
  >();
  private readonly sockets = new Set<net.Socket>();
  private readonly waiters = new Set<() => void>();
  private advertised = { host: '127.0.0.1', port: 0 };
  private nextMember = 1;

  constructor(
    private readonly opts: {
      advertise?: { host: string; port: number };
      maxWaitMs?: number;
      /** Every request that reached the broker (tests check what got through the proxy). */
      onRequest?: (r: BrokerRequest) => void;
    } = {},
  ) {
    this.server = net.createServer({ noDelay: true }, (s) => this.onConnection(s));
  }

  listen(port = 0, host = '127.0.0.1'): Promise<{ host: string; port: number }> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, host, () => {
        const a = this.server.address() as net.AddressInfo;
        this.advertised = this.opts.advertise ?? { host: a.address, port: a.port };
        resolve({ host: a.address, port: a.port });
      });
    });
  }

  get address(): { host: string; port: number } {
    return this.advertised;
  }

  async close(): Promise<void> {
    const done = new Promise<void>((r) => this.server.close(() => r()));
    for (const s of this.sockets) s.destroy();
    for (const w of this.waiters) w();
    await done;
  }

  /** The values stored in a topic's batches, for tests (uncompressed batches only). */
  batches(topic: string): Buffer[] {
    return this.topics.get(topic)?.partition.batches.map((b) => b.data) ?? [];
  }

  private topic(name: string): { id: string; partition: Partition } {
    let t = this.topics.get(name);
    if (t === undefined) {
      const id = Buffer.alloc(16);
      id.write(name.slice(0, 16));
      t = { id: id.toString('hex'), partition: { batches: [], next: 0n } };
      this.topics.set(name, t);
    }
    return t;
  }

  private onConnection(sock: net.Socket): void {
    this.stats.connections++;
    this.sockets.add(sock);
    sock.once('close', () => this.sockets.delete(sock));
    sock.on('error', () => {});
    const reader = new FrameReader(100 * 1024 * 1024, 8);
    // one request at a time per connection: Kafka answers in order
    let chain = Promise.resolve();
    sock.on('data', (c: Buffer) => {
      let frames: Buffer[];
      try {
        frames = reader.push(c);
      } catch {
        sock.destroy();
        return;
      }
      for (const f of frames) {
        chain = chain.then(async () => {
          if (sock.destroyed) return;
          let out: Buffer | null | undefined;
          try {
            out = await this.handle(parseRequest(f));
          } catch {
            out = undefined;
          }
          if (out === null) return;
          if (out === undefined) sock.destroy();
          else sock.write(out);
        });
      }
    });
  }

  /** The response frame, null for none (acks=0), undefined to close the connection. */
  private async handle(req: KafkaRequestFrame): Promise<Buffer | null | undefined> {
    const { apiKey: k, apiVersion: v, correlationId: c } = req;
    this.stats.requests.set(k, (this.stats.requests.get(k) ?? 0) + 1);
    this.opts.onRequest?.({
      apiKey: k,
      apiVersion: v,
      correlationId: c,
      clientID: req.clientID,
      topics: req.topics,
    });
    const range = SUPPORTED.get(k);
    if (k === 18 && (range === undefined || v > range[1])) {
      // KIP-511: an ApiVersions this broker cannot read gets a v0 answer with the ranges
      return encodeResponse(18, 0, c, { ErrorCode: UNSUPPORTED_VERSION, ApiKeys: this.apiKeys() });
    }
    // versions below the advertised ones are answered too (the live replay sends a flow's own
    // version, v0 when it names none); records of Produce v0-v2 (message sets) are not stored
    if (range === undefined || v > range[1] || req.body === undefined) return undefined;
    const b = req.body;
    const body = await this.answer(k, v, b);
    if (body === null) return null;
    return encodeResponse(k, v, c, body);
  }

  private apiKeys(): Struct[] {
    return BROKER_VERSIONS.map(([ApiKey, MinVersion, MaxVersion]) => ({ ApiKey, MinVersion, MaxVersion }));
  }

  private broker(): Struct {
    return { NodeId: 0, Host: this.advertised.host, Port: this.advertised.port, Rack: null };
  }

  private async answer(k: number, v: number, b: Struct): Promise<Struct | null> {
    switch (k) {
      case 18:
        return { ErrorCode: 0, ApiKeys: this.apiKeys(), ThrottleTimeMs: 0 };
      case 3: {
        const asked = b.Topics === null || (v === 0 && list(b.Topics).length === 0) ? null : list(b.Topics);
        const names =
          asked === null ? [...this.topics.keys()] : asked.map((t) => String((t as Struct).Name ?? ''));
        return {
          ThrottleTimeMs: 0,
          Brokers: [this.broker()],
          ClusterId: 'seawall-test',
          ControllerId: 0,
          Topics: names.map((name) => ({
            ErrorCode: 0,
            Name: name,
            TopicId: this.topic(name).id,
            IsInternal: false,
            Partitions: [
              {
                ErrorCode: 0,
                PartitionIndex: 0,
                LeaderId: 0,
                LeaderEpoch: 0,
                ReplicaNodes: [0],
                IsrNodes: [0],
                OfflineReplicas: [],
              },
            ],
            TopicAuthorizedOperations: NO_OPS,
          })),
          ClusterAuthorizedOperations: NO_OPS,
          ErrorCode: 0,
        };
      }
      case 0: {
        const out = {
          Responses: each(b.TopicData, (t) => ({
            Name: t.Name ?? '',
            PartitionResponses: each(t.PartitionData, (p) => this.produce(String(t.Name), p)),
          })),
          ThrottleTimeMs: 0,
        };
        this.wake();
        return b.Acks === 0 ? null : out;
      }
      case 1:
        return this.fetch(b);
      case 2:
        return {
          ThrottleTimeMs: 0,
          Topics: each(b.Topics, (t) => ({
            Name: t.Name ?? '',
            Partitions: each(t.Partitions, (p) => {
              const part = this.topic(String(t.Name)).partition;
              const ok = p.PartitionIndex === 0;
              const off = p.Timestamp === -2n ? 0n : part.next;
              return {
                PartitionIndex: p.PartitionIndex ?? 0,
                ErrorCode: ok ? 0 : UNKNOWN_TOPIC_OR_PARTITION,
                OldStyleOffsets: [off],
                Timestamp: -1n,
                Offset: ok ? off : -1n,
                LeaderEpoch: 0,
              };
            }),
          })),
        };
      case 10:
        return {
          ThrottleTimeMs: 0,
          ErrorCode: 0,
          ErrorMessage: null,
          NodeId: 0,
          Host: this.advertised.host,
          Port: this.advertised.port,
          Coordinators: list(b.CoordinatorKeys).map((key) => ({
            Key: String(key),
            NodeId: 0,
            Host: this.advertised.host,
            Port: this.advertised.port,
            ErrorCode: 0,
            ErrorMessage: null,
          })),
        };
      case 11: {
        const group = String(b.GroupId);
        const member = b.MemberId !== '' ? String(b.MemberId) : `member-${this.nextMember++}`;
        const proto = list(b.Protocols)[0] as Struct | undefined;
        const prev = this.groups.get(group);
        const g = {
          generation: (prev?.generation ?? 0) + 1,
          member,
          protocol: String(proto?.Name ?? ''),
          assignment: Buffer.alloc(0),
        };
        this.groups.set(group, g);
        return {
          ThrottleTimeMs: 0,
          ErrorCode: 0,
          GenerationId: g.generation,
          ProtocolType: String(b.ProtocolType ?? 'consumer'),
          ProtocolName: g.protocol,
          Leader: member,
          SkipAssignment: false,
          MemberId: member,
          Members: [
            {
              MemberId: member,
              GroupInstanceId: null,
              Metadata: (proto?.Metadata as Buffer) ?? Buffer.alloc(0),
            },
          ],
        };
      }
      case 14: {
        const g = this.groups.get(String(b.GroupId));
        const mine = list(b.Assignments).find((a) => (a as Struct).MemberId === b.MemberId) as
          | Struct
          | undefined;
        if (g !== undefined && mine !== undefined) g.assignment = mine.Assignment as Buffer;
        return {
          ThrottleTimeMs: 0,
          ErrorCode: 0,
          ProtocolType: b.ProtocolType ?? null,
          ProtocolName: b.ProtocolName ?? null,
          Assignment: g?.assignment ?? Buffer.alloc(0),
        };
      }
      case 12:
        return { ThrottleTimeMs: 0, ErrorCode: 0 };
      case 13:
        this.groups.delete(String(b.GroupId));
        return {
          ThrottleTimeMs: 0,
          ErrorCode: 0,
          Members: each(b.Members, (m) => ({
            MemberId: m.MemberId ?? '',
            GroupInstanceId: m.GroupInstanceId ?? null,
            ErrorCode: 0,
          })),
        };
      case 8:
        return {
          ThrottleTimeMs: 0,
          Topics: each(b.Topics, (t) => ({
            Name: t.Name ?? '',
            Partitions: each(t.Partitions, (p) => {
              this.offsets.set(`${b.GroupId}|${t.Name}|${p.PartitionIndex}`, p.CommittedOffset as bigint);
              return { PartitionIndex: p.PartitionIndex ?? 0, ErrorCode: 0 };
            }),
          })),
        };
      case 9: {
        const asked =
          b.Topics === null
            ? [...this.topics.keys()].map((Name) => ({ Name, PartitionIndexes: [0] }) as Struct)
            : (list(b.Topics) as Struct[]);
        return {
          ThrottleTimeMs: 0,
          Topics: asked.map((t) => ({
            Name: t.Name ?? '',
            Partitions: list(t.PartitionIndexes).map((i) => ({
              PartitionIndex: Number(i),
              CommittedOffset: this.offsets.get(`${b.GroupId}|${t.Name}|${i}`) ?? -1n,
              CommittedLeaderEpoch: -1,
              Metadata: '',
              ErrorCode: 0,
            })),
          })),
          ErrorCode: 0,
        };
      }
      case 15:
        return {
          ThrottleTimeMs: 0,
          Groups: list(b.Groups).map((id) => {
            const g = this.groups.get(String(id));
            return {
              ErrorCode: 0,
              GroupId: String(id),
              GroupState: g === undefined ? 'Dead' : 'Stable',
              ProtocolType: g === undefined ? '' : 'consumer',
              ProtocolData: g?.protocol ?? '',
              Members: [],
              AuthorizedOperations: NO_OPS,
            };
          }),
        };
      case 16:
        return {
          ThrottleTimeMs: 0,
          ErrorCode: 0,
          Groups: [...this.groups.keys()].map((GroupId) => ({
            GroupId,
            ProtocolType: 'consumer',
            GroupState: 'Stable',
          })),
        };
      case 19:
        return {
          ThrottleTimeMs: 0,
          Topics: each(b.Topics, (t) => {
            const name = String(t.Name);
            const existed = this.topics.has(name);
            this.topic(name);
            return {
              Name: name,
              TopicId: this.topic(name).id,
              ErrorCode: existed ? 36 : 0, // TOPIC_ALREADY_EXISTS
              ErrorMessage: null,
              NumPartitions: 1,
              ReplicationFactor: 1,
              Configs: [],
            };
          }),
        };
      case 20:
        return {
          ThrottleTimeMs: 0,
          Responses: list(b.TopicNames).map((n) => ({
            Name: String(n),
            ErrorCode: this.topics.delete(String(n)) ? 0 : UNKNOWN_TOPIC_OR_PARTITION,
            ErrorMessage: null,
          })),
        };
      case 22:
        return { ThrottleTimeMs: 0, ErrorCode: 0, ProducerId: 1000n, ProducerEpoch: 0 };
      default:
        return {};
    }
  }

  private produce(topic: string, p: Struct): Struct {
    const part = this.topic(topic).partition;
    const records = p.Records as Buffer | null;
    const base = part.next;
    if (p.Index !== 0) {
      return {
        Index: p.Index ?? 0,
        ErrorCode: UNKNOWN_TOPIC_OR_PARTITION,
        BaseOffset: -1n,
        LogAppendTimeMs: -1n,
        LogStartOffset: -1n,
        RecordErrors: [],
        ErrorMessage: null,
      };
    }
    // record batches (magic 2): baseOffset int64, batchLength int32, …, lastOffsetDelta int32 at 23
    let at = 0;
    while (records !== null && at + 61 <= records.length) {
      const len = records.readInt32BE(at + 8);
      const end = at + 12 + len;
      if (len < 49 || end > records.length) break;
      const data = Buffer.from(records.subarray(at, end));
      data.writeBigInt64BE(part.next, 0);
      const last = part.next + BigInt(data.readInt32BE(23));
      part.batches.push({ base: part.next, last, data });
      part.next = last + 1n;
      this.stats.produced.set(topic, (this.stats.produced.get(topic) ?? 0) + 1);
      at = end;
    }
    return {
      Index: 0,
      ErrorCode: 0,
      BaseOffset: base,
      LogAppendTimeMs: -1n,
      LogStartOffset: 0n,
      RecordErrors: [],
      ErrorMessage: null,
    };
  }

  private wake(): void {
    for (const w of [...this.waiters]) w();
  }

  private async fetch(b: Struct): Promise<Struct> {
    const build = (): { body: Struct; bytes: number } => {
      let bytes = 0;
      const body: Struct = {
        ThrottleTimeMs: 0,
        ErrorCode: 0,
        SessionId: 0,
        Responses: each(b.Topics, (t) => ({
          Topic: t.Topic ?? '',
          Partitions: each(t.Partitions, (p) => {
            const part = this.topic(String(t.Topic)).partition;
            const from = p.FetchOffset as bigint;
            const max = Number(p.PartitionMaxBytes ?? 1 << 20);
            const out: Buffer[] = [];
            let size = 0;
            for (const batch of part.batches) {
              if (batch.last < from) continue;
              if (out.length > 0 && size + batch.data.length > max) break;
              out.push(batch.data);
              size += batch.data.length;
            }
            bytes += size;
            return {
              PartitionIndex: p.Partition ?? 0,
              ErrorCode: p.Partition === 0 ? 0 : UNKNOWN_TOPIC_OR_PARTITION,
              HighWatermark: part.next,
              LastStableOffset: part.next,
              LogStartOffset: 0n,
              AbortedTransactions: null,
              PreferredReadReplica: -1,
              Records: Buffer.concat(out),
            };
          }),
        })),
      };
      return { body, bytes };
    };
    let r = build();
    const wait = Math.min(Number(b.MaxWaitMs ?? 0), this.opts.maxWaitMs ?? 500);
    if (r.bytes === 0 && wait > 0) {
      // a long poll: answer when something is produced or the wait is over
      await new Promise<void>((resolve) => {
        const done = () => {
          clearTimeout(t);
          this.waiters.delete(done);
          resolve();
        };
        const t = setTimeout(done, wait);
        this.waiters.add(done);
      });
      r = build();
    }
    return r.body;
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      address: { type: 'string', default: '0.0.0.0' },
      port: { type: 'string', default: '9092' },
      advertise: { type: 'string' },
      // no per-request lines (benchmarks)
      quiet: { type: 'boolean', default: false },
    },
  });
  let advertise: { host: string; port: number } | undefined;
  if (values.advertise !== undefined) {
    const i = values.advertise.lastIndexOf(':');
    advertise = { host: values.advertise.slice(0, i), port: Number(values.advertise.slice(i + 1)) };
  }
  // one JSON line per request received: the tests' view of what reached the broker
  const broker = new KafkaTestBroker({
    ...(advertise === undefined ? {} : { advertise }),
    ...(values.quiet
      ? {}
      : { onRequest: (r: BrokerRequest) => process.stdout.write(`${JSON.stringify(r)}\n`) }),
  });
  const a = await broker.listen(Number(values.port), values.address);
  process.stdout.write(`ready ${a.host}:${a.port}\n`);
  const stop = () => void broker.close().then(() => process.exit(0));
  process.on('SIGTERM', stop);
  process.stdin.on('end', stop);
  process.stdin.resume();
}

if (import.meta.url === `file://${process.argv[1]}`) {
  main().catch((e: Error) => {
    process.stderr.write(`kafka broker: ${e.message}\n`);
    process.exit(1);
  });
}

/** Test brokers as child processes in pod namespaces (the live tests and the live replay). */
export class KafkaBrokers {
  private readonly procs: Array<{ ns: string; port: number; proc: ChildProcess; requests: BrokerRequest[] }> =
    [];

  /** Starts a broker in `ns` on 0.0.0.0:port advertising ip:port; resolves when it listens. */
  async start(ns: string, ip: string, port: number): Promise<void> {
    const proc = spawn(
      'ip',
      [
        'netns',
        'exec',
        ns,
        process.execPath,
        '--import',
        'tsx',
        BROKER,
        '--port',
        String(port),
        '--advertise',
        `${ip}:${port}`,
      ],
      { cwd: REPO, stdio: ['pipe', 'pipe', 'inherit'] },
    );
    const entry = { ns, port, proc, requests: [] as BrokerRequest[] };
    this.procs.push(entry);
    proc.stdin!.on('error', () => {});
    await new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`kafka broker in ${ns} did not start`)), 20_000);
      proc.once('exit', (code) => {
        clearTimeout(t);
        reject(new Error(`kafka broker in ${ns} exited (${code})`));
      });
      createInterface({ input: proc.stdout! }).on('line', (l) => {
        if (l.startsWith('ready ')) {
          clearTimeout(t);
          resolve();
          return;
        }
        try {
          entry.requests.push(JSON.parse(l) as BrokerRequest);
        } catch {
          // not a request line
        }
      });
    });
  }

  /** Requests that reached the broker in `ns` on `port` so far. */
  requests(ns: string, port: number): BrokerRequest[] {
    return this.procs.find((p) => p.ns === ns && p.port === port)?.requests ?? [];
  }

  has(ns: string, port: number): boolean {
    return this.procs.some((p) => p.ns === ns && p.port === port);
  }

  async closeAll(): Promise<void> {
    await stopChildren(this.procs.splice(0).map((p) => p.proc));
  }
}

// Kafka requests as the proxy judges them, and the responses it answers for the ones it refuses.
//
// A frame is an int32 size then the request: the header (RequestHeader.json: api key, version,
// correlation id, then from v1 the client id, a classic nullable string in every version, then
// from v2, i.e. in flexible versions, a tagged-field section) and the body. The body is read only
// for the keys whose topics are judged (and to build a refused request's answer); its topics are
// what a rule's `topic` is checked against, as Cilium's pkg/kafka reads them:
//  - Produce, Fetch, ListOffsets, OffsetCommit, OffsetFetch, CreateTopics, DeleteTopics,
//    DeleteRecords, OffsetForLeaderEpoch, CreatePartitions: the topics named in the body;
//  - Metadata: the topics asked for; none (v0's empty list, v1+'s null) is "all topics";
//  - a topic named only by its id (Fetch v13+, Metadata v10+, DeleteTopics v6+) or a topic-carrying
//    key/version this file does not read: a name no rule can name (`topic-id:…`, `(unparsed)`),
//    so only a rule without `topic` admits it (fail closed).
// A frame whose header or judged body does not parse (short, lying lengths, bytes after the last
// field) is a KafkaParseError: the proxy closes the connection.
//
// Refused requests get the response of their key and version with error code 29
// TOPIC_AUTHORIZATION_FAILED in every per-topic/per-partition error field (and the top-level one
// where the key has no other), as Cilium's CreateResponse does per key; keys without a response
// here are refused by closing the connection. Produce with acks=0 gets no response (Kafka sends
// none).

import { kafkaCarriesTopics, TOPIC_AUTHORIZATION_FAILED } from '../../l7/kafka.ts';
import { readBody, type Struct, schemaFor, type Value, writeBody } from './schema.ts';
import { KafkaParseError, Reader, Writer } from './wire.ts';

export { KafkaParseError, TOPIC_AUTHORIZATION_FAILED };

/** The name a topic named only by its id gets: no rule can name it (`:` is not a topic char). */
export const topicIdName = (id: string): string => `topic-id:${id}`;
/** The topic of a topic-carrying request whose body this proxy does not read. */
export const UNPARSED_TOPIC = '(unparsed)';

export interface RequestHeader {
  apiKey: number;
  apiVersion: number;
  correlationId: number;
  /** '' when absent (header v0) or null. */
  clientID: string;
}

export interface KafkaRequestFrame extends RequestHeader {
  /** Topics in request order, each once. */
  topics: string[];
  /** The body, when it was read (judged keys, or keys with a refusal response). */
  body?: Struct;
  /** False for Produce with acks=0: nothing answers it. */
  expectsResponse: boolean;
  /** Frame size including the 4-byte length. */
  size: number;
}

/** The header; `offset` is where the header's own tagged fields (flexible versions) start. */
export function readHeader(frame: Buffer): RequestHeader & { offset: number } {
  const r = new Reader(frame, 4);
  const apiKey = r.int16();
  const apiVersion = r.int16();
  const correlationId = r.int32();
  if (apiKey < 0) throw new KafkaParseError(`negative API key ${apiKey}`);
  if (apiVersion < 0) throw new KafkaParseError(`negative API version ${apiVersion}`);
  // ControlledShutdown v0 alone has header v0 (no client id)
  const clientID = apiKey === 7 && apiVersion === 0 ? '' : (r.string(false, true) ?? '');
  return { apiKey, apiVersion, correlationId, clientID, offset: r.pos };
}

const TOPIC_PATHS: Record<number, (b: Struct, v: number) => string[]> = {
  0: (b) => names(b.TopicData, ['Name', 'TopicId']),
  1: (b) => names(b.Topics, ['Topic', 'TopicId']),
  2: (b) => names(b.Topics, ['Name']),
  3: (b) => names(b.Topics, ['Name', 'TopicId']),
  8: (b) => names(b.Topics, ['Name']),
  9: (b, v) =>
    v >= 8 ? list(b.Groups).flatMap((g) => names((g as Struct).Topics, ['Name'])) : names(b.Topics, ['Name']),
  19: (b) => names(b.Topics, ['Name']),
  20: (b, v) => (v >= 6 ? names(b.Topics, ['Name', 'TopicId']) : list(b.TopicNames).map(String)),
  21: (b) => names(b.Topics, ['Name']),
  23: (b) => names(b.Topics, ['Topic']),
  37: (b) => names(b.Topics, ['Name']),
};

function list(v: Value | undefined): Value[] {
  return Array.isArray(v) ? v : [];
}

/** The topic of each element: its name, else (null name) its id. */
function names(v: Value | undefined, fields: readonly string[]): string[] {
  return list(v).map((e) => {
    const s = e as Struct;
    const name = s[fields[0]!];
    if (typeof name === 'string') return name;
    const id = fields[1] === undefined ? undefined : s[fields[1]];
    return typeof id === 'string' ? topicIdName(id) : UNPARSED_TOPIC;
  });
}

/** Reads a request frame (size prefix included) for judging. Throws KafkaParseError. */
export function parseRequest(frame: Buffer): KafkaRequestFrame {
  const h = readHeader(frame);
  const out: KafkaRequestFrame = {
    apiKey: h.apiKey,
    apiVersion: h.apiVersion,
    correlationId: h.correlationId,
    clientID: h.clientID,
    topics: [],
    expectsResponse: true,
    size: frame.length,
  };
  const topical = kafkaCarriesTopics(h.apiKey);
  const m = schemaFor(h.apiKey, h.apiVersion);
  if (m === undefined) {
    if (topical) out.topics = [UNPARSED_TOPIC];
    return out;
  }
  const flex = h.apiVersion >= m.flexibleFrom;
  let body: Struct;
  try {
    const r = new Reader(frame, h.offset);
    if (flex) r.taggedFields();
    body = readBody(frame, r.pos, m, h.apiVersion, 'request');
  } catch (e) {
    // a judged body must parse; a body read only for a refusal's answer need not
    if (topical || !(e instanceof KafkaParseError)) throw e;
    return out;
  }
  out.body = body;
  if (h.apiKey === 0 && body.Acks === 0) out.expectsResponse = false;
  const path = TOPIC_PATHS[h.apiKey];
  if (topical) out.topics = path === undefined ? [UNPARSED_TOPIC] : [...new Set(path(body, h.apiVersion))];
  return out;
}

// ------------------------------------------------------------------ refusals

const NO_OPS = -2147483648; // authorized operations not asked for (Kafka's INT32_MIN)
const E = TOPIC_AUTHORIZATION_FAILED;

type Builder = (b: Struct, v: number) => Struct;

const each = (v: Value | undefined, fn: (s: Struct) => Struct): Struct[] =>
  list(v).map((e) => fn(e as Struct));

const BUILDERS: Record<number, Builder> = {
  0: (b) => ({
    Responses: each(b.TopicData, (t) => ({
      Name: t.Name ?? null,
      TopicId: t.TopicId ?? null,
      PartitionResponses: each(t.PartitionData, (p) => ({
        Index: p.Index ?? 0,
        ErrorCode: E,
        BaseOffset: -1n,
        LogAppendTimeMs: -1n,
        LogStartOffset: -1n,
        RecordErrors: [],
        ErrorMessage: null,
      })),
    })),
    ThrottleTimeMs: 0,
  }),
  1: (b) => ({
    ThrottleTimeMs: 0,
    ErrorCode: 0,
    SessionId: 0,
    Responses: each(b.Topics, (t) => ({
      Topic: t.Topic ?? null,
      TopicId: t.TopicId ?? null,
      Partitions: each(t.Partitions, (p) => ({
        PartitionIndex: p.Partition ?? 0,
        ErrorCode: E,
        HighWatermark: -1n,
        LastStableOffset: -1n,
        LogStartOffset: -1n,
        AbortedTransactions: null,
        PreferredReadReplica: -1,
        Records: null,
      })),
    })),
  }),
  2: (b) => ({
    ThrottleTimeMs: 0,
    Topics: each(b.Topics, (t) => ({
      Name: t.Name ?? '',
      Partitions: each(t.Partitions, (p) => ({
        PartitionIndex: p.PartitionIndex ?? 0,
        ErrorCode: E,
        OldStyleOffsets: [],
        Timestamp: -1n,
        Offset: -1n,
        LeaderEpoch: -1,
      })),
    })),
  }),
  3: (b) => ({
    ThrottleTimeMs: 0,
    Brokers: [],
    ClusterId: null,
    ControllerId: -1,
    Topics: each(b.Topics, (t) => ({
      ErrorCode: E,
      Name: t.Name ?? null,
      TopicId: t.TopicId ?? null,
      IsInternal: false,
      Partitions: [],
      TopicAuthorizedOperations: NO_OPS,
    })),
    ClusterAuthorizedOperations: NO_OPS,
    ErrorCode: 0,
  }),
  8: (b) => ({
    ThrottleTimeMs: 0,
    Topics: each(b.Topics, (t) => ({
      Name: t.Name ?? '',
      Partitions: each(t.Partitions, (p) => ({ PartitionIndex: p.PartitionIndex ?? 0, ErrorCode: E })),
    })),
  }),
  9: (b, v) => {
    const topics = (ts: Value | undefined): Struct[] =>
      each(ts, (t) => ({
        Name: t.Name ?? '',
        Partitions: list(t.PartitionIndexes).map((i) => ({
          PartitionIndex: Number(i),
          CommittedOffset: -1n,
          CommittedLeaderEpoch: -1,
          Metadata: null,
          ErrorCode: E,
        })),
      }));
    // the group-level code when there is no partition to carry it (all topics asked)
    const top = (ts: Struct[]): number => (ts.some((t) => list(t.Partitions).length > 0) ? 0 : E);
    if (v >= 8) {
      return {
        ThrottleTimeMs: 0,
        Groups: each(b.Groups, (g) => {
          const ts = topics(g.Topics);
          return { GroupId: g.GroupId ?? '', Topics: ts, ErrorCode: top(ts) };
        }),
      };
    }
    const ts = topics(b.Topics);
    return { ThrottleTimeMs: 0, Topics: ts, ErrorCode: top(ts) };
  },
  10: (b) => ({
    ThrottleTimeMs: 0,
    ErrorCode: E,
    ErrorMessage: null,
    NodeId: -1,
    Host: '',
    Port: -1,
    Coordinators: list(b.CoordinatorKeys).map((k) => ({
      Key: String(k),
      NodeId: -1,
      Host: '',
      Port: -1,
      ErrorCode: E,
      ErrorMessage: null,
    })),
  }),
  11: (b, v) => ({
    ThrottleTimeMs: 0,
    ErrorCode: E,
    GenerationId: -1,
    ProtocolType: null,
    ProtocolName: v >= 7 ? null : '',
    Leader: '',
    SkipAssignment: false,
    MemberId: b.MemberId ?? '',
    Members: [],
  }),
  12: () => ({ ThrottleTimeMs: 0, ErrorCode: E }),
  // the group-level code only: kafkajs rejects once per member error besides the top-level one
  13: () => ({ ThrottleTimeMs: 0, ErrorCode: E, Members: [] }),
  14: () => ({
    ThrottleTimeMs: 0,
    ErrorCode: E,
    ProtocolType: null,
    ProtocolName: null,
    Assignment: Buffer.alloc(0),
  }),
  15: (b) => ({
    ThrottleTimeMs: 0,
    Groups: list(b.Groups).map((g) => ({
      ErrorCode: E,
      GroupId: String(g),
      GroupState: '',
      ProtocolType: '',
      ProtocolData: '',
      Members: [],
      AuthorizedOperations: NO_OPS,
    })),
  }),
  16: () => ({ ThrottleTimeMs: 0, ErrorCode: E, Groups: [] }),
  18: () => ({ ErrorCode: E, ApiKeys: [], ThrottleTimeMs: 0 }),
  19: (b) => ({
    ThrottleTimeMs: 0,
    Topics: each(b.Topics, (t) => ({
      Name: t.Name ?? '',
      TopicId: null,
      ErrorCode: E,
      ErrorMessage: null,
      NumPartitions: -1,
      ReplicationFactor: -1,
      Configs: null,
    })),
  }),
  20: (b, v) => ({
    ThrottleTimeMs: 0,
    Responses:
      v >= 6
        ? each(b.Topics, (t) => ({
            Name: t.Name ?? null,
            TopicId: t.TopicId ?? null,
            ErrorCode: E,
            ErrorMessage: null,
          }))
        : list(b.TopicNames).map((n) => ({ Name: String(n), ErrorCode: E, ErrorMessage: null })),
  }),
  21: (b) => ({
    ThrottleTimeMs: 0,
    Topics: each(b.Topics, (t) => ({
      Name: t.Name ?? '',
      Partitions: each(t.Partitions, (p) => ({
        PartitionIndex: p.PartitionIndex ?? 0,
        LowWatermark: -1n,
        ErrorCode: E,
      })),
    })),
  }),
  22: () => ({ ThrottleTimeMs: 0, ErrorCode: E, ProducerId: -1n, ProducerEpoch: -1 }),
  23: (b) => ({
    ThrottleTimeMs: 0,
    Topics: each(b.Topics, (t) => ({
      Topic: t.Topic ?? '',
      Partitions: each(t.Partitions, (p) => ({
        ErrorCode: E,
        Partition: p.Partition ?? 0,
        LeaderEpoch: -1,
        EndOffset: -1n,
      })),
    })),
  }),
  37: (b) => ({
    ThrottleTimeMs: 0,
    Results: each(b.Topics, (t) => ({ Name: t.Name ?? '', ErrorCode: E, ErrorMessage: null })),
  }),
};

/** A response frame (size prefix included) for key/version with this body. */
export function encodeResponse(
  apiKey: number,
  apiVersion: number,
  correlationId: number,
  body: Struct,
): Buffer {
  const m = schemaFor(apiKey, apiVersion);
  if (m === undefined) throw new KafkaParseError(`no response schema for key ${apiKey} v${apiVersion}`);
  const w = new Writer().int32(0).int32(correlationId);
  // ResponseHeader v1 (tagged fields) in flexible versions, except ApiVersions (always v0)
  if (apiVersion >= m.flexibleFrom && apiKey !== 18) w.taggedFields();
  writeBody(w, m, apiVersion, 'response', body);
  const out = w.finish();
  out.writeInt32BE(out.length - 4, 0);
  return out;
}

/**
 * The answer to a refused request: its key's response with error code 29; undefined when this
 * key/version has no response here (the connection is then closed) or none is expected (acks=0).
 */
export function refusalResponse(req: KafkaRequestFrame): Buffer | undefined {
  if (!req.expectsResponse) return undefined;
  const build = BUILDERS[req.apiKey];
  if (build === undefined || schemaFor(req.apiKey, req.apiVersion) === undefined) return undefined;
  return encodeResponse(req.apiKey, req.apiVersion, req.correlationId, build(req.body ?? {}, req.apiVersion));
}

/** Whether a refused request of this key/version can be answered (rather than closing). */
export function canRefuse(apiKey: number, apiVersion: number): boolean {
  return BUILDERS[apiKey] !== undefined && schemaFor(apiKey, apiVersion) !== undefined;
}

// ------------------------------------------------------------------ clients (tests, the test broker, live replay)

/** A request frame (size prefix included). */
export function encodeRequest(h: RequestHeader, body: Struct): Buffer {
  const m = schemaFor(h.apiKey, h.apiVersion);
  if (m === undefined) throw new KafkaParseError(`no request schema for key ${h.apiKey} v${h.apiVersion}`);
  const flex = h.apiVersion >= m.flexibleFrom;
  const w = new Writer().int32(0).int16(h.apiKey).int16(h.apiVersion).int32(h.correlationId);
  if (!(h.apiKey === 7 && h.apiVersion === 0)) w.string(h.clientID, false);
  if (flex) w.taggedFields();
  writeBody(w, m, h.apiVersion, 'request', body);
  const out = w.finish();
  out.writeInt32BE(out.length - 4, 0);
  return out;
}

/** A response frame's body for the request key/version it answers. */
export function decodeResponse(frame: Buffer, apiKey: number, apiVersion: number): Struct {
  const m = schemaFor(apiKey, apiVersion);
  if (m === undefined) throw new KafkaParseError(`no response schema for key ${apiKey} v${apiVersion}`);
  const r = new Reader(frame, 8);
  if (apiVersion >= m.flexibleFrom && apiKey !== 18) r.taggedFields();
  return readBody(frame, r.pos, m, apiVersion, 'response');
}

/** Every ErrorCode in a decoded response, depth first. */
export function errorCodes(v: Value | undefined): number[] {
  if (Array.isArray(v)) return v.flatMap((e) => errorCodes(e));
  if (v === null || typeof v !== 'object' || Buffer.isBuffer(v)) return [];
  const out: number[] = [];
  for (const [k, x] of Object.entries(v)) {
    if (k === 'ErrorCode' && typeof x === 'number') out.push(x);
    else out.push(...errorCodes(x));
  }
  return out;
}

/** The body of a request naming these topics (one partition 0 each), for clients and tests. */
export function requestBodyFor(
  apiKey: number,
  apiVersion: number,
  topics: readonly string[],
  groupId = 'seawall',
): Struct {
  const parts = [{ Partition: 0, PartitionIndex: 0, Index: 0 }];
  switch (apiKey) {
    case 0:
      return {
        TransactionalId: null,
        Acks: -1,
        TimeoutMs: 1000,
        TopicData: topics.map((Name) => ({ Name, PartitionData: [{ Index: 0, Records: null }] })),
      };
    case 1:
      return {
        ReplicaId: -1,
        MaxWaitMs: 0,
        MinBytes: 0,
        MaxBytes: 1 << 20,
        SessionEpoch: -1,
        Topics: topics.map((Topic) => ({
          Topic,
          Partitions: [
            {
              Partition: 0,
              FetchOffset: 0n,
              LogStartOffset: -1n,
              PartitionMaxBytes: 1 << 20,
              CurrentLeaderEpoch: -1,
            },
          ],
        })),
        ForgottenTopicsData: [],
        RackId: '',
      };
    case 2:
      return {
        ReplicaId: -1,
        Topics: topics.map((Name) => ({
          Name,
          Partitions: [{ PartitionIndex: 0, CurrentLeaderEpoch: -1, Timestamp: -1n, MaxNumOffsets: 1 }],
        })),
        TimeoutMs: 1000,
      };
    case 3:
      // v0: an empty list is "all topics"; v1+: null is
      return {
        Topics: topics.length === 0 && apiVersion >= 1 ? null : topics.map((Name) => ({ Name })),
        AllowAutoTopicCreation: false,
      };
    case 8:
      return {
        GroupId: groupId,
        GenerationIdOrMemberEpoch: -1,
        MemberId: '',
        GroupInstanceId: null,
        RetentionTimeMs: -1n,
        Topics: topics.map((Name) => ({
          Name,
          Partitions: [
            { PartitionIndex: 0, CommittedOffset: 0n, CommittedLeaderEpoch: -1, CommittedMetadata: null },
          ],
        })),
      };
    case 9: {
      const ts =
        topics.length === 0 && apiVersion >= 2
          ? null
          : topics.map((Name) => ({ Name, PartitionIndexes: [0] }));
      return {
        GroupId: groupId,
        Topics: ts,
        Groups: [{ GroupId: groupId, MemberId: null, MemberEpoch: -1, Topics: ts }],
      };
    }
    case 10:
      return { Key: groupId, KeyType: 0, CoordinatorKeys: [groupId] };
    case 11:
      return {
        GroupId: groupId,
        SessionTimeoutMs: 10_000,
        RebalanceTimeoutMs: 10_000,
        MemberId: '',
        GroupInstanceId: null,
        ProtocolType: 'consumer',
        Protocols: [{ Name: 'range', Metadata: Buffer.alloc(0) }],
        Reason: null,
      };
    case 12:
      return { GroupId: groupId, GenerationId: -1, MemberId: '', GroupInstanceId: null };
    case 13:
      return {
        GroupId: groupId,
        MemberId: '',
        Members: [{ MemberId: '', GroupInstanceId: null, Reason: null }],
      };
    case 14:
      return { GroupId: groupId, GenerationId: -1, MemberId: '', GroupInstanceId: null, Assignments: [] };
    case 15:
      return { Groups: [groupId] };
    case 18:
      return { ClientSoftwareName: 'seawall', ClientSoftwareVersion: '1' };
    case 19:
      return {
        Topics: topics.map((Name) => ({
          Name,
          NumPartitions: 1,
          ReplicationFactor: 1,
          Assignments: [],
          Configs: [],
        })),
        TimeoutMs: 1000,
      };
    case 20:
      return {
        Topics: topics.map((Name) => ({ Name, TopicId: '' })),
        TopicNames: [...topics],
        TimeoutMs: 1000,
      };
    case 21:
      return {
        Topics: topics.map((Name) => ({ Name, Partitions: [{ PartitionIndex: 0, Offset: 0n }] })),
        TimeoutMs: 1000,
      };
    case 23:
      return { ReplicaId: -1, Topics: topics.map((Topic) => ({ Topic, Partitions: parts })) };
    case 37:
      return { Topics: topics.map((Name) => ({ Name, Count: 2, Assignments: null })), TimeoutMs: 1000 };
    default:
      return {};
  }
}

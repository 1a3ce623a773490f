// The Kafka messages the proxy reads or writes, as schemas: the fields of Apache Kafka's
// clients/src/main/resources/common/message/*.json (name, type, the versions a field exists in,
// the versions it may be null in) for the API keys whose topics are judged and the keys whose
// error response the proxy (or the test broker) builds. One generic reader and writer walk them,
// in classic or flexible encoding (compact strings/arrays/bytes, a tagged-field section closing
// every struct). Tagged fields are skipped when read and never written: they are optional by
// definition, and nothing judged lives in one.

import { KafkaParseError, Reader, type Writer } from './wire.ts';

type Scalar = 'int8' | 'int16' | 'int32' | 'int64' | 'bool' | 'string' | 'bytes' | 'uuid';
type ArrayOf = 'int32[]' | 'int64[]' | 'string[]';
export type FieldType = Scalar | ArrayOf | readonly Field[];

export interface Field {
  n: string;
  t: FieldType;
  /** Versions the field exists in: [from, to]; `to` omitted = every later version. */
  v?: readonly [number, number?];
  /** Versions the field may be null in. */
  nul?: readonly [number, number?];
}

export interface MessageSchema {
  key: number;
  name: string;
  /** Highest version described here; later versions are not parsed. */
  maxVersion: number;
  /** First flexible version (Infinity: none). */
  flexibleFrom: number;
  request: readonly Field[];
  response: readonly Field[];
}

export type Value = number | bigint | boolean | string | Buffer | null | Value[] | Struct;
export interface Struct {
  [k: string]: Value;
}

const inRange = (r: readonly [number, number?] | undefined, v: number): boolean =>
  r === undefined || (v >= r[0] && (r[1] === undefined || v <= r[1]));

const f = (
  n: string,
  t: FieldType,
  v?: readonly [number, number?],
  nul?: readonly [number, number?],
): Field => {
  const out: Field = { n, t };
  if (v !== undefined) out.v = v;
  if (nul !== undefined) out.nul = nul;
  return out;
};
const ALL: readonly [number] = [0];

// ------------------------------------------------------------------ the messages

const PRODUCE: MessageSchema = {
  key: 0,
  name: 'Produce',
  maxVersion: 13,
  flexibleFrom: 9,
  request: [
    f('TransactionalId', 'string', [3], [3]),
    f('Acks', 'int16'),
    f('TimeoutMs', 'int32'),
    f('TopicData', [
      f('Name', 'string', [0, 12]),
      f('TopicId', 'uuid', [13]),
      f('PartitionData', [f('Index', 'int32'), f('Records', 'bytes', ALL, ALL)]),
    ]),
  ],
  response: [
    f('Responses', [
      f('Name', 'string', [0, 12]),
      f('TopicId', 'uuid', [13]),
      f('PartitionResponses', [
        f('Index', 'int32'),
        f('ErrorCode', 'int16'),
        f('BaseOffset', 'int64'),
        f('LogAppendTimeMs', 'int64', [2]),
        f('LogStartOffset', 'int64', [5]),
        f('RecordErrors', [f('BatchIndex', 'int32'), f('BatchIndexErrorMessage', 'string', ALL, ALL)], [8]),
        f('ErrorMessage', 'string', [8], [8]),
      ]),
    ]),
    f('ThrottleTimeMs', 'int32', [1]),
  ],
};

const FETCH: MessageSchema = {
  key: 1,
  name: 'Fetch',
  maxVersion: 17,
  flexibleFrom: 12,
  request: [
    f('ReplicaId', 'int32', [0, 14]),
    f('MaxWaitMs', 'int32'),
    f('MinBytes', 'int32'),
    f('MaxBytes', 'int32', [3]),
    f('IsolationLevel', 'int8', [4]),
    f('SessionId', 'int32', [7]),
    f('SessionEpoch', 'int32', [7]),
    f('Topics', [
      f('Topic', 'string', [0, 12]),
      f('TopicId', 'uuid', [13]),
      f('Partitions', [
        f('Partition', 'int32'),
        f('CurrentLeaderEpoch', 'int32', [9]),
        f('FetchOffset', 'int64'),
        f('LastFetchedEpoch', 'int32', [12]),
        f('LogStartOffset', 'int64', [5]),
        f('PartitionMaxBytes', 'int32'),
      ]),
    ]),
    f(
      'ForgottenTopicsData',
      [f('Topic', 'string', [7, 12]), f('TopicId', 'uuid', [13]), f('Partitions', 'int32[]')],
      [7],
    ),
    f('RackId', 'string', [11]),
  ],
  response: [
    f('ThrottleTimeMs', 'int32', [1]),
    f('ErrorCode', 'int16', [7]),
    f('SessionId', 'int32', [7]),
    f('Responses', [
      f('Topic', 'string', [0, 12]),
      f('TopicId', 'uuid', [13]),
      f('Partitions', [
        f('PartitionIndex', 'int32'),
        f('ErrorCode', 'int16'),
        f('HighWatermark', 'int64'),
        f('LastStableOffset', 'int64', [4]),
        f('LogStartOffset', 'int64', [5]),
        f('AbortedTransactions', [f('ProducerId', 'int64'), f('FirstOffset', 'int64')], [4], [4]),
        f('PreferredReadReplica', 'int32', [11]),
        f('Records', 'bytes', ALL, ALL),
      ]),
    ]),
  ],
};

const LIST_OFFSETS: MessageSchema = {
  key: 2,
  name: 'ListOffsets',
  maxVersion: 10,
  flexibleFrom: 6,
  request: [
    f('ReplicaId', 'int32'),
    f('IsolationLevel', 'int8', [2]),
    f('Topics', [
      f('Name', 'string'),
      f('Partitions', [
        f('PartitionIndex', 'int32'),
        f('CurrentLeaderEpoch', 'int32', [4]),
        f('Timestamp', 'int64'),
        f('MaxNumOffsets', 'int32', [0, 0]),
      ]),
    ]),
    f('TimeoutMs', 'int32', [10]),
  ],
  response: [
    f('ThrottleTimeMs', 'int32', [2]),
    f('Topics', [
      f('Name', 'string'),
      f('Partitions', [
        f('PartitionIndex', 'int32'),
        f('ErrorCode', 'int16'),
        f('OldStyleOffsets', 'int64[]', [0, 0]),
        f('Timestamp', 'int64', [1]),
        f('Offset', 'int64', [1]),
        f('LeaderEpoch', 'int32', [4]),
      ]),
    ]),
  ],
};

const METADATA: MessageSchema = {
  key: 3,
  name: 'Metadata',
  maxVersion: 13,
  flexibleFrom: 9,
  request: [
    f('Topics', [f('TopicId', 'uuid', [10]), f('Name', 'string', ALL, [10])], ALL, [1]),
    f('AllowAutoTopicCreation', 'bool', [4]),
    f('IncludeClusterAuthorizedOperations', 'bool', [8, 10]),
    f('IncludeTopicAuthorizedOperations', 'bool', [8]),
  ],
  response: [
    f('ThrottleTimeMs', 'int32', [3]),
    f('Brokers', [
      f('NodeId', 'int32'),
      f('Host', 'string'),
      f('Port', 'int32'),
      f('Rack', 'string', [1], [1]),
    ]),
    f('ClusterId', 'string', [2], [2]),
    f('ControllerId', 'int32', [1]),
    f('Topics', [
      f('ErrorCode', 'int16'),
      f('Name', 'string', ALL, [12]),
      f('TopicId', 'uuid', [10]),
      f('IsInternal', 'bool', [1]),
      f('Partitions', [
        f('ErrorCode', 'int16'),
        f('PartitionIndex', 'int32'),
        f('LeaderId', 'int32'),
        f('LeaderEpoch', 'int32', [7]),
        f('ReplicaNodes', 'int32[]'),
        f('IsrNodes', 'int32[]'),
        f('OfflineReplicas', 'int32[]', [5]),
      ]),
      f('TopicAuthorizedOperations', 'int32', [8]),
    ]),
    f('ClusterAuthorizedOperations', 'int32', [8, 10]),
    f('ErrorCode', 'int16', [13]),
  ],
};

const OFFSET_COMMIT: MessageSchema = {
  key: 8,
  name: 'OffsetCommit',
  maxVersion: 9,
  flexibleFrom: 8,
  request: [
    f('GroupId', 'string'),
    f('GenerationIdOrMemberEpoch', 'int32', [1]),
    f('MemberId', 'string', [1]),
    f('GroupInstanceId', 'string', [7], [7]),
    f('RetentionTimeMs', 'int64', [2, 4]),
    f('Topics', [
      f('Name', 'string'),
      f('Partitions', [
        f('PartitionIndex', 'int32'),
        f('CommittedOffset', 'int64'),
        f('CommittedLeaderEpoch', 'int32', [6]),
        f('CommitTimestamp', 'int64', [1, 1]),
        f('CommittedMetadata', 'string', ALL, ALL),
      ]),
    ]),
  ],
  response: [
    f('ThrottleTimeMs', 'int32', [3]),
    f('Topics', [
      f('Name', 'string'),
      f('Partitions', [f('PartitionIndex', 'int32'), f('ErrorCode', 'int16')]),
    ]),
  ],
};

const OFFSET_FETCH_PARTITION: readonly Field[] = [
  f('PartitionIndex', 'int32'),
  f('CommittedOffset', 'int64'),
  f('CommittedLeaderEpoch', 'int32', [5]),
  f('Metadata', 'string', ALL, ALL),
  f('ErrorCode', 'int16'),
];

const OFFSET_FETCH: MessageSchema = {
  key: 9,
  name: 'OffsetFetch',
  maxVersion: 9,
  flexibleFrom: 6,
  request: [
    f('GroupId', 'string', [0, 7]),
    f('Topics', [f('Name', 'string'), f('PartitionIndexes', 'int32[]')], [0, 7], [2, 7]),
    f(
      'Groups',
      [
        f('GroupId', 'string'),
        f('MemberId', 'string', [9], [9]),
        f('MemberEpoch', 'int32', [9]),
        f('Topics', [f('Name', 'string'), f('PartitionIndexes', 'int32[]')], ALL, ALL),
      ],
      [8],
    ),
    f('RequireStable', 'bool', [7]),
  ],
  response: [
    f('ThrottleTimeMs', 'int32', [3]),
    f('Topics', [f('Name', 'string'), f('Partitions', OFFSET_FETCH_PARTITION)], [0, 7]),
    f('ErrorCode', 'int16', [2, 7]),
    f(
      'Groups',
      [
        f('GroupId', 'string'),
        f('Topics', [f('Name', 'string'), f('Partitions', OFFSET_FETCH_PARTITION)]),
        f('ErrorCode', 'int16'),
      ],
      [8],
    ),
  ],
};

const FIND_COORDINATOR: MessageSchema = {
  key: 10,
  name: 'FindCoordinator',
  maxVersion: 6,
  flexibleFrom: 3,
  request: [f('Key', 'string', [0, 3]), f('KeyType', 'int8', [1]), f('CoordinatorKeys', 'string[]', [4])],
  response: [
    f('ThrottleTimeMs', 'int32', [1]),
    f('ErrorCode', 'int16', [0, 3]),
    f('ErrorMessage', 'string', [1, 3], [1, 3]),
    f('NodeId', 'int32', [0, 3]),
    f('Host', 'string', [0, 3]),
    f('Port', 'int32', [0, 3]),
    f(
      'Coordinators',
      [
        f('Key', 'string'),
        f('NodeId', 'int32'),
        f('Host', 'string'),
        f('Port', 'int32'),
        f('ErrorCode', 'int16'),
        f('ErrorMessage', 'string', ALL, ALL),
      ],
      [4],
    ),
  ],
};

const JOIN_GROUP: MessageSchema = {
  key: 11,
  name: 'JoinGroup',
  maxVersion: 9,
  flexibleFrom: 6,
  request: [
    f('GroupId', 'string'),
    f('SessionTimeoutMs', 'int32'),
    f('RebalanceTimeoutMs', 'int32', [1]),
    f('MemberId', 'string'),
    f('GroupInstanceId', 'string', [5], [5]),
    f('ProtocolType', 'string'),
    f('Protocols', [f('Name', 'string'), f('Metadata', 'bytes')]),
    f('Reason', 'string', [8], [8]),
  ],
  response: [
    f('ThrottleTimeMs', 'int32', [2]),
    f('ErrorCode', 'int16'),
    f('GenerationId', 'int32'),
    f('ProtocolType', 'string', [7], [7]),
    f('ProtocolName', 'string', ALL, [7]),
    f('Leader', 'string'),
    f('SkipAssignment', 'bool', [9]),
    f('MemberId', 'string'),
    f('Members', [f('MemberId', 'string'), f('GroupInstanceId', 'string', [5], [5]), f('Metadata', 'bytes')]),
  ],
};

const HEARTBEAT: MessageSchema = {
  key: 12,
  name: 'Heartbeat',
  maxVersion: 4,
  flexibleFrom: 4,
  request: [
    f('GroupId', 'string'),
    f('GenerationId', 'int32'),
    f('MemberId', 'string'),
    f('GroupInstanceId', 'string', [3], [3]),
  ],
  response: [f('ThrottleTimeMs', 'int32', [1]), f('ErrorCode', 'int16')],
};

const LEAVE_GROUP: MessageSchema = {
  key: 13,
  name: 'LeaveGroup',
  maxVersion: 5,
  flexibleFrom: 4,
  request: [
    f('GroupId', 'string'),
    f('MemberId', 'string', [0, 2]),
    f(
      'Members',
      [f('MemberId', 'string'), f('GroupInstanceId', 'string', ALL, ALL), f('Reason', 'string', [5], [5])],
      [3],
    ),
  ],
  response: [
    f('ThrottleTimeMs', 'int32', [1]),
    f('ErrorCode', 'int16'),
    f(
      'Members',
      [f('MemberId', 'string'), f('GroupInstanceId', 'string', ALL, ALL), f('ErrorCode', 'int16')],
      [3],
    ),
  ],
};

const SYNC_GROUP: MessageSchema = {
  key: 14,
  name: 'SyncGroup',
  maxVersion: 5,
  flexibleFrom: 4,
  request: [
    f('GroupId', 'string'),
    f('GenerationId', 'int32'),
    f('MemberId', 'string'),
    f('GroupInstanceId', 'string', [3], [3]),
    f('ProtocolType', 'string', [5], [5]),
    f('ProtocolName', 'string', [5], [5]),
    f('Assignments', [f('MemberId', 'string'), f('Assignment', 'bytes')]),
  ],
  response: [
    f('ThrottleTimeMs', 'int32', [1]),
    f('ErrorCode', 'int16'),
    f('ProtocolType', 'string', [5], [5]),
    f('ProtocolName', 'string', [5], [5]),
    f('Assignment', 'bytes'),
  ],
};

const DESCRIBE_GROUPS: MessageSchema = {
  key: 15,
  name: 'DescribeGroups',
  maxVersion: 5,
  flexibleFrom: 5,
  request: [f('Groups', 'string[]'), f('IncludeAuthorizedOperations', 'bool', [3])],
  response: [
    f('ThrottleTimeMs', 'int32', [1]),
    f('Groups', [
      f('ErrorCode', 'int16'),
      f('GroupId', 'string'),
      f('GroupState', 'string'),
      f('ProtocolType', 'string'),
      f('ProtocolData', 'string'),
      f('Members', [
        f('MemberId', 'string'),
        f('GroupInstanceId', 'string', [4], [4]),
        f('ClientId', 'string'),
        f('ClientHost', 'string'),
        f('MemberMetadata', 'bytes'),
        f('MemberAssignment', 'bytes'),
      ]),
      f('AuthorizedOperations', 'int32', [3]),
    ]),
  ],
};

const LIST_GROUPS: MessageSchema = {
  key: 16,
  name: 'ListGroups',
  maxVersion: 5,
  flexibleFrom: 3,
  request: [f('StatesFilter', 'string[]', [4]), f('TypesFilter', 'string[]', [5])],
  response: [
    f('ThrottleTimeMs', 'int32', [1]),
    f('ErrorCode', 'int16'),
    f('Groups', [
      f('GroupId', 'string'),
      f('ProtocolType', 'string'),
      f('GroupState', 'string', [4]),
      f('GroupType', 'string', [5]),
    ]),
  ],
};

const API_VERSIONS: MessageSchema = {
  key: 18,
  name: 'ApiVersions',
  maxVersion: 4,
  flexibleFrom: 3,
  request: [f('ClientSoftwareName', 'string', [3]), f('ClientSoftwareVersion', 'string', [3])],
  response: [
    f('ErrorCode', 'int16'),
    f('ApiKeys', [f('ApiKey', 'int16'), f('MinVersion', 'int16'), f('MaxVersion', 'int16')]),
    f('ThrottleTimeMs', 'int32', [1]),
  ],
};

const CREATE_TOPICS: MessageSchema = {
  key: 19,
  name: 'CreateTopics',
  maxVersion: 7,
  flexibleFrom: 5,
  request: [
    f('Topics', [
      f('Name', 'string'),
      f('NumPartitions', 'int32'),
      f('ReplicationFactor', 'int16'),
      f('Assignments', [f('PartitionIndex', 'int32'), f('BrokerIds', 'int32[]')]),
      f('Configs', [f('Name', 'string'), f('Value', 'string', ALL, ALL)]),
    ]),
    f('TimeoutMs', 'int32'),
    f('ValidateOnly', 'bool', [1]),
  ],
  response: [
    f('ThrottleTimeMs', 'int32', [2]),
    f('Topics', [
      f('Name', 'string'),
      f('TopicId', 'uuid', [7]),
      f('ErrorCode', 'int16'),
      f('ErrorMessage', 'string', [1], [1]),
      f('NumPartitions', 'int32', [5]),
      f('ReplicationFactor', 'int16', [5]),
      f(
        'Configs',
        [
          f('Name', 'string'),
          f('Value', 'string', ALL, ALL),
          f('ReadOnly', 'bool'),
          f('ConfigSource', 'int8'),
          f('IsSensitive', 'bool'),
        ],
        [5],
        [5],
      ),
    ]),
  ],
};

const DELETE_TOPICS: MessageSchema = {
  key: 20,
  name: 'DeleteTopics',
  maxVersion: 6,
  flexibleFrom: 4,
  request: [
    f('Topics', [f('Name', 'string', ALL, ALL), f('TopicId', 'uuid')], [6]),
    f('TopicNames', 'string[]', [0, 5]),
    f('TimeoutMs', 'int32'),
  ],
  response: [
    f('ThrottleTimeMs', 'int32', [1]),
    f('Responses', [
      f('Name', 'string', ALL, [6]),
      f('TopicId', 'uuid', [6]),
      f('ErrorCode', 'int16'),
      f('ErrorMessage', 'string', [5], [5]),
    ]),
  ],
};

const DELETE_RECORDS: MessageSchema = {
  key: 21,
  name: 'DeleteRecords',
  maxVersion: 2,
  flexibleFrom: 2,
  request: [
    f('Topics', [f('Name', 'string'), f('Partitions', [f('PartitionIndex', 'int32'), f('Offset', 'int64')])]),
    f('TimeoutMs', 'int32'),
  ],
  response: [
    f('ThrottleTimeMs', 'int32'),
    f('Topics', [
      f('Name', 'string'),
      f('Partitions', [f('PartitionIndex', 'int32'), f('LowWatermark', 'int64'), f('ErrorCode', 'int16')]),
    ]),
  ],
};

const INIT_PRODUCER_ID: MessageSchema = {
  key: 22,
  name: 'InitProducerId',
  maxVersion: 5,
  flexibleFrom: 2,
  request: [
    f('TransactionalId', 'string', ALL, ALL),
    f('TransactionTimeoutMs', 'int32'),
    f('ProducerId', 'int64', [3]),
    f('ProducerEpoch', 'int16', [3]),
  ],
  response: [
    f('ThrottleTimeMs', 'int32'),
    f('ErrorCode', 'int16'),
    f('ProducerId', 'int64'),
    f('ProducerEpoch', 'int16'),
  ],
};

const OFFSET_FOR_LEADER_EPOCH: MessageSchema = {
  key: 23,
  name: 'OffsetForLeaderEpoch',
  maxVersion: 4,
  flexibleFrom: 4,
  request: [
    f('ReplicaId', 'int32', [3]),
    f('Topics', [
      f('Topic', 'string'),
      f('Partitions', [
        f('Partition', 'int32'),
        f('CurrentLeaderEpoch', 'int32', [2]),
        f('LeaderEpoch', 'int32'),
      ]),
    ]),
  ],
  response: [
    f('ThrottleTimeMs', 'int32', [2]),
    f('Topics', [
      f('Topic', 'string'),
      f('Partitions', [
        f('ErrorCode', 'int16'),
        f('Partition', 'int32'),
        f('LeaderEpoch', 'int32', [1]),
        f('EndOffset', 'int64'),
      ]),
    ]),
  ],
};

const CREATE_PARTITIONS: MessageSchema = {
  key: 37,
  name: 'CreatePartitions',
  maxVersion: 3,
  flexibleFrom: 2,
  request: [
    f('Topics', [
      f('Name', 'string'),
      f('Count', 'int32'),
      f('Assignments', [f('BrokerIds', 'int32[]')], ALL, ALL),
    ]),
    f('TimeoutMs', 'int32'),
    f('ValidateOnly', 'bool'),
  ],
  response: [
    f('ThrottleTimeMs', 'int32'),
    f('Results', [f('Name', 'string'), f('ErrorCode', 'int16'), f('ErrorMessage', 'string', ALL, ALL)]),
  ],
};

export const SCHEMAS: ReadonlyMap<number, MessageSchema> = new Map(
  [
    PRODUCE,
    FETCH,
    LIST_OFFSETS,
    METADATA,
    OFFSET_COMMIT,
    OFFSET_FETCH,
    FIND_COORDINATOR,
    JOIN_GROUP,
    HEARTBEAT,
    LEAVE_GROUP,
    SYNC_GROUP,
    DESCRIBE_GROUPS,
    LIST_GROUPS,
    API_VERSIONS,
    CREATE_TOPICS,
    DELETE_TOPICS,
    DELETE_RECORDS,
    INIT_PRODUCER_ID,
    OFFSET_FOR_LEADER_EPOCH,
    CREATE_PARTITIONS,
  ].map((m) => [m.key, m]),
);

// ------------------------------------------------------------------ the generic walk

function fieldPresent(fd: Field, v: number): boolean {
  return inRange(fd.v, v);
}

function nullableAt(fd: Field, v: number): boolean {
  return fd.nul !== undefined && inRange(fd.nul, v);
}

function readField(r: Reader, fd: Field, v: number, flex: boolean): Value {
  const nul = nullableAt(fd, v);
  const t = fd.t;
  if (typeof t !== 'string') {
    const n = r.arrayLength(flex, nul);
    if (n < 0) return null;
    const out: Struct[] = [];
    for (let i = 0; i < n; i++) out.push(readStruct(r, t, v, flex));
    return out;
  }
  switch (t) {
    case 'int8':
      return r.int8();
    case 'int16':
      return r.int16();
    case 'int32':
      return r.int32();
    case 'int64':
      return r.int64();
    case 'bool':
      return r.bool();
    case 'uuid':
      return r.uuid();
    case 'string':
      return r.string(flex, nul);
    case 'bytes':
      return r.bytes(flex, nul);
    case 'int32[]': {
      const n = r.arrayLength(flex, nul, 4);
      if (n < 0) return null;
      const out: number[] = [];
      for (let i = 0; i < n; i++) out.push(r.int32());
      return out;
    }
    case 'int64[]': {
      const n = r.arrayLength(flex, nul, 8);
      if (n < 0) return null;
      const out: bigint[] = [];
      for (let i = 0; i < n; i++) out.push(r.int64());
      return out;
    }
    case 'string[]': {
      const n = r.arrayLength(flex, nul, flex ? 1 : 2);
      if (n < 0) return null;
      const out: string[] = [];
      for (let i = 0; i < n; i++) out.push(r.string(flex, false) as string);
      return out;
    }
  }
}

export function readStruct(r: Reader, fields: readonly Field[], v: number, flex: boolean): Struct {
  const s: Struct = {};
  for (const fd of fields) if (fieldPresent(fd, v)) s[fd.n] = readField(r, fd, v, flex);
  if (flex) r.taggedFields();
  return s;
}

function writeField(w: Writer, fd: Field, val: Value | undefined, v: number, flex: boolean): void {
  const nul = nullableAt(fd, v);
  const t = fd.t;
  if (typeof t !== 'string') {
    if (val === null && nul) {
      w.arrayLength(-1, flex);
      return;
    }
    const arr = Array.isArray(val) ? (val as Struct[]) : [];
    w.arrayLength(arr.length, flex);
    for (const e of arr) writeStruct(w, t, e, v, flex);
    return;
  }
  switch (t) {
    case 'int8':
      w.int8(Number(val ?? 0));
      return;
    case 'int16':
      w.int16(Number(val ?? 0));
      return;
    case 'int32':
      w.int32(Number(val ?? 0));
      return;
    case 'int64':
      w.int64(typeof val === 'bigint' ? val : BigInt(Number(val ?? 0)));
      return;
    case 'bool':
      w.bool(val === true);
      return;
    case 'uuid':
      w.uuid(typeof val === 'string' ? val : '');
      return;
    case 'string':
      w.string(typeof val === 'string' ? val : nul ? null : '', flex);
      return;
    case 'bytes':
      w.bytes(Buffer.isBuffer(val) ? val : nul ? null : Buffer.alloc(0), flex);
      return;
    case 'int32[]':
    case 'int64[]':
    case 'string[]': {
      if (val === null && nul) {
        w.arrayLength(-1, flex);
        return;
      }
      const arr = Array.isArray(val) ? val : [];
      w.arrayLength(arr.length, flex);
      for (const e of arr) {
        if (t === 'int32[]') w.int32(Number(e));
        else if (t === 'int64[]') w.int64(typeof e === 'bigint' ? e : BigInt(Number(e)));
        else w.string(String(e), flex);
      }
      return;
    }
  }
}

export function writeStruct(w: Writer, fields: readonly Field[], s: Struct, v: number, flex: boolean): void {
  for (const fd of fields) if (fieldPresent(fd, v)) writeField(w, fd, s[fd.n], v, flex);
  if (flex) w.taggedFields();
}

export function schemaFor(key: number, version: number): MessageSchema | undefined {
  const m = SCHEMAS.get(key);
  return m !== undefined && version >= 0 && version <= m.maxVersion ? m : undefined;
}

/** Reads a whole request or response body; bytes left over are an error (the frame lies). */
export function readBody(
  buf: Buffer,
  offset: number,
  m: MessageSchema,
  version: number,
  side: 'request' | 'response',
): Struct {
  const r = new Reader(buf, offset);
  const flex = version >= m.flexibleFrom;
  const s = readStruct(r, side === 'request' ? m.request : m.response, version, flex);
  if (r.remaining !== 0) {
    throw new KafkaParseError(`${m.name} v${version} ${side}: ${r.remaining} bytes after the last field`);
  }
  return s;
}

export function writeBody(
  w: Writer,
  m: MessageSchema,
  version: number,
  side: 'request' | 'response',
  s: Struct,
): void {
  writeStruct(w, side === 'request' ? m.request : m.response, s, version, version >= m.flexibleFrom);
}

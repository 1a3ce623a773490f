// The vocabulary of PortRuleKafka (Cilium's pkg/policy/api/kafka): the apiKey names a rule may
// use, indexed by Kafka API key number, and the roles. The validator and the l7 matcher share it.

/** API key names a policy may use, by key number (0–33). */
export const KAFKA_API_KEYS: readonly string[] = [
  'produce',
  'fetch',
  'offsets',
  'metadata',
  'leaderandisr',
  'stopreplica',
  'updatemetadata',
  'controlledshutdown',
  'offsetcommit',
  'offsetfetch',
  'findcoordinator',
  'joingroup',
  'heartbeat',
  'leavegroup',
  'syncgroup',
  'describegroups',
  'listgroups',
  'saslhandshake',
  'apiversions',
  'createtopics',
  'deletetopics',
  'deleterecords',
  'initproducerid',
  'offsetforleaderepoch',
  'addpartitionstotxn',
  'addoffsetstotxn',
  'endtxn',
  'writetxnmarkers',
  'txnoffsetcommit',
  'describeacls',
  'createacls',
  'deleteacls',
  'describeconfigs',
  'alterconfigs',
];

/** Valid `apiKey` names (lower-case), for validators. */
export const KAFKA_API_KEY_NAMES: ReadonlySet<string> = new Set(KAFKA_API_KEYS);

/** Valid `role` values (lower-case). */
export const KAFKA_ROLES: ReadonlySet<string> = new Set(['produce', 'consume']);

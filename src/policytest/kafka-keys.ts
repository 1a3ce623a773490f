// Kafka API key names as Cilium's Kafka rules spell them (keys 0–33), for `kafka.apiKey` in flows.

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

/** The numeric key of a name (case-insensitive), or undefined. */
export function kafkaApiKeyNumber(name: string): number | undefined {
  const i = KAFKA_API_KEYS.indexOf(name.toLowerCase());
  return i < 0 ? undefined : i;
}

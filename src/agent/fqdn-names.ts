// destination_names on the flow records of connections to FQDN destinations (issue 10).

import type { Flow } from '../flow/types.ts';
import type { DNSCache } from '../fqdn/cache.ts';
import type { PolicyEngineAPI } from '../policy/types.ts';

/**
 * Hubble's destination_names: the names the node's DNS cache has for a record's destination
 * address (alive answers, then a zombie's names for a connection that outlived its answer),
 * without the trailing dot. Records of connections to other destinations are left as they are.
 */
export function withDestinationNames(flow: Flow, engine: PolicyEngineAPI, nowMs: number = Date.now()): Flow {
  const ip = flow.IP?.destination;
  const cache = (engine as { dns?: DNSCache }).dns;
  if (ip === undefined || cache === undefined || flow.l7 !== undefined) return flow;
  let names: readonly string[] = cache.namesForIP(ip, nowMs);
  if (names.length === 0) names = cache.zombieNames(ip);
  if (names.length === 0) return flow;
  // a new record: the one given may be a template whose copies must not change with it
  return { ...flow, destination_names: names.map((n) => n.replace(/\.$/, '')) };
}

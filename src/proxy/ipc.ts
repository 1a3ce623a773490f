// The agent ↔ node-proxy protocol, the same for every parser (http, dns and kafka; a new one plugs into
// it): newline-delimited JSON on the proxy process's stdin (agent → proxy) and stdout (proxy →
// agent); stderr is the proxy's log. stdio rather than Node's IPC channel: it crosses
// `ip netns exec` and a uid change unchanged and is readable in a terminal.
//
// agent → proxy: `snapshot` (a whole, versioned policy mirror: replaced, never patched), at start
// and on every policy change; `fqdn-delta` (what an FQDN answer changed on top of the snapshot or
// delta before it, same stream: addresses whose ipcache entry changed, endpoints whose MapState
// changed, only those entries), acknowledged like a snapshot; a proxy that cannot apply one (no
// snapshot yet, an endpoint it lacks) answers `need-snapshot`, refusing everything until it comes.
// proxy → agent: `ready` (listening, privileges dropped), `ack` (this snapshot version is the
// one judging from now on: the agent counts a policy change as applied only then), `flow` (an
// L7 record for the node's flow pipeline), `refused` (a connection closed before judging),
// `flows-lost` (records a full record channel lost), the DNS proxy's compact records (`dns-shape`,
// `dns-flow`, expanded by the agent: dns/compact.ts) and the HTTP proxy's (`http-shape`, `http-flow`:
// http/compact.ts). Records may come on a descriptor of their own
// (process.ts, FLOW_FD_ENV), in the same lines.
// DNS only: proxy → agent `dns-answer` (names learnt, held until) agent → proxy `dns-ack`;
// proxy → agent `dns-timeout` (an answer released unacknowledged at the max delay).
//
// The mirror is what a proxy needs to judge alone and synchronously: the ipcache (address →
// the Flow endpoint with its identity; source identity never comes from a header) and, for
// every local endpoint with a redirect entry, its enforcement flags and MapState entries. A side
// (the source's egress, the destination's ingress) is looked up per request exactly as `decide`
// does: any deny → refuse; an allow → the L7 wildcard; only redirects → the union of their rules.

import type { Flow, FlowEndpoint } from '../flow/types.ts';
import type {
  DirectionPolicy,
  MapStateEntry,
  MapStateKey,
  MapStateVerdict,
  RuleRef,
  TrafficDirection,
} from '../policy/types.ts';
import type { DNSFlowMessage, DNSShapeMessage } from './dns/compact.ts';
import type { HTTPFlowMessage, HTTPShapeMessage } from './http/compact.ts';

export type ProxyParser = 'http' | 'dns' | 'kafka';

export interface SnapshotEndpoint {
  ip: string;
  /** `namespace/name`. */
  endpoint: string;
  namespace: string;
  ingress: DirectionPolicy;
  egress: DirectionPolicy;
  /** Every MapState entry of the endpoint (the proxy re-decides a side per request). */
  entries: MapStateEntry[];
}

export interface PolicySnapshot {
  version: number;
  /** Address → its Flow endpoint (identity, labels, namespace, pod) for every known address. */
  peers: Array<[string, FlowEndpoint]>;
  /** Local endpoints that have at least one redirect entry. */
  endpoints: SnapshotEndpoint[];
  /** The DNS cache's revocation count (DNSCache.revocations): the DNS proxy's skip cache resets on a change. */
  fqdnRevision?: number;
}

/**
 * What an FQDN sync changed in the mirror since the last message to this proxy (the agent tracks
 * what it sent each one): set semantics, so it is right on top of a mirror that already has it.
 */
export interface PolicyDelta {
  version: number;
  /** Addresses whose ipcache identity is new or changed. */
  peers: Array<[string, FlowEndpoint]>;
  /** Addresses no longer in the ipcache (world from now on). */
  removedPeers: string[];
  /** Local endpoints that enter the mirror (a first redirect entry), whole. */
  endpoints: SnapshotEndpoint[];
  /** Endpoints of the mirror whose MapState changed: only the entries that changed. */
  patches: EndpointPatch[];
  /** Local endpoint addresses that left the mirror (no redirect entry any more, or gone). */
  removedEndpoints: string[];
  fqdnRevision?: number;
}

/** An entry's identity in a patch: key, verdict and parser (entries differing in parser are two). */
export interface EntryRef {
  key: MapStateKey;
  verdict: MapStateVerdict;
  parser?: string;
}

export interface EndpointPatch {
  ip: string;
  ingress: DirectionPolicy;
  egress: DirectionPolicy;
  /** Entries gone (a changed entry is removed and added). */
  removed: EntryRef[];
  added: MapStateEntry[];
}

/** The text an entry is matched by in a patch. */
export function entryRefKey(e: EntryRef | MapStateEntry): string {
  const k = e.key;
  const parser = 'l7' in e ? e.l7?.parser : (e as EntryRef).parser;
  return `${k.direction}|${k.identity}|${k.proto}|${k.portLo}|${k.portHi}|${e.verdict}|${parser ?? ''}`;
}

/** An endpoint with a patch applied (a new object: the one before may still be in use). */
export function patchEndpoint(ep: SnapshotEndpoint, p: EndpointPatch): SnapshotEndpoint {
  const gone = new Set(p.removed.map(entryRefKey));
  const entries = ep.entries.filter((e) => !gone.has(entryRefKey(e)));
  entries.push(...p.added);
  return { ...ep, ingress: p.ingress, egress: p.egress, entries };
}

/**
 * A DNS answer that passed a DNS rule (the DNS proxy, issue 10): what toFQDNs learns. The proxy
 * holds the answer until the agent's `dns-ack` with the same id says the kernel allows the
 * addresses (or its --tofqdns-proxy-response-max-delay passes).
 */
export interface DNSAnswerMessage {
  type: 'dns-answer';
  id: number;
  /** The pod that asked: `namespace/name`. */
  endpoint: string;
  /** The queried name, lower-case and fully qualified (CNAME chains collapse onto it). */
  name: string;
  ips: string[];
  /** Lowest TTL of the chain, seconds. */
  ttl: number;
  /**
   * When the proxy had the answer (epochMs()), comparable between the node's processes. The agent
   * times answer → kernel allows from it.
   */
  at?: number;
}

/** Now as epoch ms with sub-ms digits: one clock for the node's processes (DNSAnswerMessage.at). */
export function epochMs(): number {
  return performance.timeOrigin + performance.now();
}

export type AgentMessage =
  | { type: 'snapshot'; snapshot: PolicySnapshot }
  | { type: 'fqdn-delta'; delta: PolicyDelta }
  | { type: 'stop' }
  /** The answer `id` was learnt and the kernel enforces it (ok), or learning it failed. */
  | {
      type: 'dns-ack';
      id: number;
      ok: boolean;
      error?: string;
      /**
       * Every address of the answer stays allowed until then (epoch ms) unless the cache revokes
       * it (fqdnRevision), and the cache's --tofqdns-min-ttl: until then the proxy need not send a
       * repeat of this answer whose expiry would not reach past it.
       */
      until?: number;
      minTtl?: number;
    };

export type ProxyMessage =
  | { type: 'ready'; parser: ProxyParser; address: string; port: number; uid: number }
  | { type: 'ack'; version: number }
  /** An fqdn-delta this proxy could not apply (no snapshot, or one it does not follow): send one. */
  | { type: 'need-snapshot'; version: number }
  | { type: 'flow'; flow: Flow }
  | { type: 'refused'; reason: string }
  /** Records the proxy's record channel had no room for (lost, not sent): Hubble's lost events. */
  | { type: 'flows-lost'; count: number }
  /** The DNS proxy's records, compact (dns/compact.ts): a shape once, then each record's fields. */
  | DNSShapeMessage
  | DNSFlowMessage
  /** The HTTP proxy's records, compact (http/compact.ts), the same way. */
  | HTTPShapeMessage
  | HTTPFlowMessage
  | DNSAnswerMessage
  /**
   * An answer released before the agent acknowledged it (--tofqdns-proxy-response-max-delay
   * passed): Cilium's proxy_datapath_update_timeout_total.
   */
  | { type: 'dns-timeout'; endpoint: string; name: string }
  | { type: 'error'; message: string };

/** The environment variable naming the descriptor a proxy writes its records on (set by the agent). */
export const FLOW_FD_ENV = 'SEAWALL_PROXY_FLOW_FD';

/** Splits a byte stream into JSON messages; a line that does not parse is reported, not thrown. */
export function lineDecoder<M>(onMessage: (m: M) => void, onBad: (line: string, e: Error) => void) {
  let buf = '';
  return (chunk: Buffer | string): void => {
    buf += chunk.toString();
    let nl = buf.indexOf('\n');
    while (nl >= 0) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      if (line.trim() !== '') {
        let m: M;
        try {
          m = JSON.parse(line) as M;
        } catch (e) {
          onBad(line, e as Error);
          nl = buf.indexOf('\n');
          continue;
        }
        onMessage(m);
      }
      nl = buf.indexOf('\n');
    }
  };
}

export function encode(m: AgentMessage | ProxyMessage): string {
  return `${JSON.stringify(m)}\n`;
}

/** What one side says about a request on (peer, proto, port). */
export type SideVerdict =
  | { kind: 'none' } // the side has no redirect here and allows at L4 (or is not enforced)
  | { kind: 'deny' }
  | { kind: 'l7'; rules: MapStateEntry[]; wildcard: boolean; policies: RuleRef[] };

/**
 * One side's verdict from the mirror, as decideDirection decides it: deny > allow > redirect;
 * an allow beside a redirect of this parser is the L7 wildcard; a default-deny side with no entry
 * denies. `undefined` endpoint: not local, so the other node judges it (none).
 */
export function sideVerdict(
  ep: SnapshotEndpoint | undefined,
  direction: TrafficDirection,
  peerIdentity: number,
  proto: number,
  port: number,
  parser: ProxyParser,
): SideVerdict {
  if (ep === undefined) return { kind: 'none' };
  const pol = direction === 'INGRESS' ? ep.ingress : ep.egress;
  if (!pol.enforced) return { kind: 'none' };
  const hits = ep.entries.filter(
    (e) =>
      e.key.direction === direction &&
      (e.key.identity === 0 || e.key.identity === peerIdentity) &&
      (e.key.proto === 0 || e.key.proto === proto) &&
      port >= e.key.portLo &&
      port <= e.key.portHi,
  );
  if (hits.some((e) => e.verdict === 'deny')) return { kind: 'deny' };
  const redirects = hits.filter((e) => e.verdict === 'redirect' && e.l7?.parser === parser);
  const allows = hits.filter((e) => e.verdict === 'allow');
  const policies = [...redirects, ...allows].flatMap((e) => e.derivedFrom);
  if (redirects.length > 0) return { kind: 'l7', rules: redirects, wildcard: allows.length > 0, policies };
  if (allows.length > 0) return { kind: 'none' };
  // a redirect of another parser only, or nothing: default deny (or the implicit allow)
  if (hits.some((e) => e.verdict === 'redirect')) return { kind: 'deny' };
  // an audited default deny (audit mode) lets it pass, as the kernel's chain does
  return pol.defaultDeny && pol.auditDefaultDeny !== true ? { kind: 'deny' } : { kind: 'none' };
}

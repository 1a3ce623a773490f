// Compiles the engine's per-endpoint MapState into the model of one nftables table (`inet seawall`)
// and renders it as an nft script: in full (first apply, adoption after a restart) or as the delta
// between two models (every later change). Pure: no I/O, golden-tested.
//
// Layout of the table (node namespace only):
//   map ipcache  ipv4_addr → mark        Cilium's ipcache: address → numeric identity
//   map ep_eg    ipv4_addr → verdict     source pod IP → `jump epN_eg` (egress policy of N)
//   map ep_in    ipv4_addr → verdict     destination pod IP → `jump epN_in` (ingress policy of N)
//   chain epN_in / epN_eg               per-endpoint: peer identity into meta mark, then
//                                        deny sets → redirect sets → allow sets → default
//                                        (audit sets only qualify the allowing rules' log)
//   sets epN_<dir>_<verdict>_<shape>[r] keyed by identity . proto . port: single ports in a hash
//                                        set, port ranges in the `r` interval set (RANGE_SUFFIX)
//   map ep_src   ifname → verdict        pod veth → `jump epN_src` (anti-spoofing, see below)
//   chain epN_src                        drops what the pod sends from an address not its own
//   chain prerouting (raw)               `iifname vmap @ep_src`, before conntrack
//   chains forward / input / output     replies and related on conntrack, then the egress and
//                                        ingress vmaps for every other packet
//
// Policy is checked on every packet of the original direction, as Cilium does: only replies
// (`ct direction reply`) and related packets (ICMP errors) pass on conntrack. An established
// connection is therefore judged again by the verdict sets on each packet and is cut as soon as
// a change (a port removed, a deny added) no longer allows it.
//
// Logging: drops are logged on every packet (the flow pipeline folds identical ones); allow and
// redirect verdicts only on `ct state new`, so records stay per connection. Each allowing match
// is two rules: `ct state new <match> log … return`, then `<match> return` for the rest.
//
// Cost per packet: a reply does a fixed amount of work whatever the policy size: one hash lookup
// of its veth in ep_src (+ one address compare) in prerouting, conntrack, and `ct direction
// reply accept` as the first rule of forward/input/output. An original-direction packet adds
// the two vmap lookups, the ipcache lookup and one hash (or interval) lookup per verdict set of
// its endpoints' chains until one matches: O(number of sets), not O(set size).
//
// Anti-spoofing: egress policy is chosen by source address, so a pod must not be able to send
// with another pod's address. Each pod veth is bound to its address in epN_src; a mismatch is
// dropped before conntrack (no ct entry is made) and logged with its own verdict, `spoof`, direction
// `eg` and the sending endpoint's id: flow records name the sender (Cilium: INVALID_SOURCE_IP),
// never the address it forged. IPv6 from a bound veth is dropped too (no IPv6 policy exists to
// judge it; not logged: every pod sends link-local IPv6 at start). Veths not in
// ep_src (test hosts standing for the outside world, pods not joined yet) are not bound.
//
// The identity of the peer travels in `meta mark` only while one endpoint chain runs (egress
// sets it to the destination's identity, ingress to the source's).
//
// L7 redirection (redirect entries, per parser: http, dns and kafka):
//   chain nat_pre (nat, prerouting dstnat)  the first packet of a TCP or UDP connection only (nat
//                                        chains see nothing else; DNS takes UDP too): `ip saddr vmap @ep_eg_l7`, then
//                                        `ip daddr vmap @ep_in_l7`, then DNAT to the node's proxy
//                                        port of the parser when a side redirects and none denies
//   chain epN_in_l7 / epN_eg_l7          the same sets as epN_in / epN_eg, in the same order, but
//                                        each verdict ORs bits into `ct mark` instead of passing:
//                                        CT_MARK_DENY, or the direction's REDIRECT_CT_MARK_* bit
//                                        plus the parser's bit (PARSER_CT_MARK), logged `redir`
// Both sides' L3/L4 verdicts are decided there from the kernel's own sets, so the proxy judges
// only L7. DNAT (not REDIRECT): pod veths have no address in the node namespace; the proxy
// listens on the node address, and SO_ORIGINAL_DST (TCP) or the conntrack entry (the DNS proxy,
// UDP and TCP) gives it the pod's destination back; replies are un-DNAT'd by conntrack, so the pod
// sees them from the server it asked. Nothing listening on a UDP proxy port: the query gets an ICMP
// port unreachable from the node and never reaches the server (fail closed).
// The filter chains then treat a DNAT'd connection with a redirect bit as local delivery to the
// proxy port (input), and a redirect entry that matches in the filter chains at all is a
// connection that was not DNAT'd (opened before the entry existed, UDP, a parser without a
// proxy port, or the two sides asking for different parsers): it is dropped, never accepted at
// L4. Nothing listening on the proxy port (proxy starting or crashed) means a RST: fail closed.
// The proxy's own upstream connections start in the node namespace (output hook, no nat chain:
// never redirected again) and pass the destination's ingress chain on `meta skuid PROXY_UID`
// (Cilium marks proxy traffic for the same purpose): the proxy already had both sides' L3/L4
// verdicts from nat_pre and judged L7. They leave from the client's own address (transparent
// sockets), so another node judges them by the client's identity; their replies are steered back
// to the proxy by PROXY_RETURN_MARK (chains proxy_return*, the node's fwmark rule). Other
// processes in the node namespace are plain reserved:host and get no pass. A redirected connection is judged at L3/L4 on its first packet;
// later packets are the proxy's to judge (it re-reads the rule sets per request).

import { formatPrefix, type KernelDir, type KernelVerdict, NFLOG_GROUP } from '../../flow/nflog.ts';
import { ID } from '../../identity/reserved.ts';
import type { EndpointPolicy, MapStateEntry } from '../../policy/types.ts';

export const TABLE = 'seawall';
export const FAMILY = 'inet';
export { NFLOG_GROUP };
/** Identity given to addresses the ipcache does not know (Cilium: world). */
export const WORLD_IDENTITY = ID.world;
export const HOST_IDENTITY = ID.host;
/** ct mark bits set (by nat_pre) on connections whose policy entry redirects to an L7 proxy. */
export const REDIRECT_CT_MARK_INGRESS = 0x1;
export const REDIRECT_CT_MARK_EGRESS = 0x2;
/** ct mark bit: one side's L3/L4 policy denies the connection (nat_pre then never redirects). */
export const CT_MARK_DENY = 0x4;
export type L7Parser = 'http' | 'dns' | 'kafka';
/** One bit per parser: two sides asking for different parsers give a value no DNAT rule matches. */
export const PARSER_CT_MARK: Record<L7Parser, number> = { http: 0x10, dns: 0x20, kafka: 0x40 };
const PARSER_MASK = 0x70;
const PARSERS: L7Parser[] = ['http', 'dns', 'kafka'];
/** The uid the node's proxies run as: their sockets' packets pass the ingress chains. */
export const PROXY_UID = 1337;
/**
 * The proxies' return path. Their upstream connections leave from the client's address (pod or
 * remote; src/proxy/upstream-socket.ts), which the node namespace routes to the pod, so replies are
 * steered back to the proxy's socket as Cilium does: a mark on packets to the proxy, `ip rule
 * fwmark 0x200/0xf00 lookup 2004 pref 9` and `local 0.0.0.0/0 dev lo` in table 2004 (Cilium's
 * linux_defaults: MagicMarkIsToProxy 0x0200 under MagicMarkHostMask 0x0F00, RouteTableToProxy
 * 2004, RulePriorityToProxyIngress 9). Cilium's BPF marks the replies from its own conntrack; here
 * the output chain puts the bit into the upstream connection's ct mark (`meta skuid PROXY_UID`) and
 * a prerouting chain copies it into meta mark on the replies. 0x200 shares no bit with the
 * redirect/deny/parser bits (0x77).
 */
export const PROXY_RETURN_MARK = 0x200;
export const PROXY_RETURN_MASK = 0xf00;
export const PROXY_ROUTE_TABLE = 2004;
export const PROXY_RULE_PREF = 9;
/** Default proxy ports in the node namespace, per parser (one port per parser and node). */
export const DEFAULT_PROXY_PORTS: Partial<Record<L7Parser, number>> = {
  http: 15001,
  dns: 15053,
  kafka: 15002,
};
/** Parsers whose proxy takes UDP as well as TCP (DNS: the pod's resolver asks over either). */
const UDP_PARSERS: ReadonlySet<L7Parser> = new Set(['dns']);
/**
 * Established connections to addresses whose DNS answer expired but which a live connection still
 * uses (Cilium's FQDN zombies): `pod ip . peer ip . proto . port`, kept by the agent (agent/fqdn.ts)
 * from conntrack, outside the compiled model (a full apply empties it; the agent refills it).
 * Only `ct state established` packets match: a new connection to the address is judged by policy.
 */
export const ZOMBIE_SET = 'fqdn_zombie';

/** Where nat_pre sends redirected connections: the node's own address and a port per parser. */
export interface ProxyTarget {
  address: string;
  ports: Partial<Record<L7Parser, number>>;
  uid: number;
}

export const DEFAULT_PROXY_TARGET: ProxyTarget = {
  address: '172.31.255.1',
  ports: DEFAULT_PROXY_PORTS,
  uid: PROXY_UID,
};

export type Dir = KernelDir;
/**
 * NFLOG prefix verdicts: fwd (allowed), deny (explicit deny rule), denied (default deny), redir,
 * spoof (anti-spoofing drop: a source address not the sending pod's).
 */
export type LogVerdict = KernelVerdict;

/** `sw/<verdict>/<dir>/<endpointId>/`: defined once in src/flow/nflog.ts, which parses it back. */
export const logPrefix = formatPrefix;

/** One endpoint as the datapath sees it. `id` is the agent's small endpoint number. */
export interface DatapathEndpoint {
  id: number;
  ip: string;
  policy: EndpointPolicy;
  /** The pod's veth in the node namespace: bound to `ip` (anti-spoofing). */
  iface?: string;
}

export interface CompileInput {
  endpoints: DatapathEndpoint[];
  /** Address → numeric identity, for every address the node knows. */
  ipcache: ReadonlyMap<string, number>;
  /** Where redirected connections go (default DEFAULT_PROXY_TARGET). */
  proxy?: ProxyTarget;
}

/**
 * Which lookup a set serves. `l3`: identity only (all protocols); `l4`: identity . proto . port;
 * `icmp`: identity . ICMP type; `anyL4`/`anyIcmp`: the same without identity (wildcard peer).
 * A wildcard L3 entry (any peer, any protocol) needs no set: it is an unconditional rule.
 */
export type SetShape = 'l3' | 'l4' | 'icmp' | 'anyL4' | 'anyIcmp';

const SHAPES: SetShape[] = ['l3', 'l4', 'icmp', 'anyL4', 'anyIcmp'];
const SHAPE_TYPE: Record<SetShape, string> = {
  l3: 'mark',
  l4: 'mark . inet_proto . inet_service',
  icmp: 'mark . icmp_type',
  anyL4: 'inet_proto . inet_service',
  anyIcmp: 'icmp_type',
};
const SHAPE_NAME: Record<SetShape, string> = {
  l3: 'l3',
  l4: 'l4',
  icmp: 'icmp',
  anyL4: 'any4',
  anyIcmp: 'anyicmp',
};
/**
 * Single ports (and ICMP types) go to a hash set, true ranges to a sibling interval set named
 * with an `r` suffix (`epN_in_allow_l4r`); a packet matches the verdict if either set has it.
 * Why: the kernel backs concatenated interval sets with pipapo, whose element delete costs time
 * in proportion to the set's size (about 17 ms per element at 50k elements, measured: 1,000
 * deletes took 17 s), and every interval set adds a fixed cost to each transaction touching it.
 * Hash sets add and delete in O(1). Policies are mostly single ports, so big sets stay hashes.
 */
const RANGE_SUFFIX = 'r';

export interface SetDef {
  name: string;
  type: string;
  interval: boolean;
  /** Canonical element strings, sorted; in an interval set disjoint per (identity, proto). */
  elements: string[];
}

export interface CompiledChain {
  name: string;
  rules: string[];
  /** The chain `<name>_l7` of nat_pre: the same sets, verdicts as ct mark bits. */
  l7rules: string[];
  sets: SetDef[];
}

export interface CompiledEndpoint {
  id: number;
  endpoint: string;
  ip: string;
  iface?: string;
  in: CompiledChain;
  eg: CompiledChain;
}

export interface CompiledTable {
  ipcache: Map<string, number>;
  proxy: ProxyTarget;
  endpoints: Map<number, CompiledEndpoint>;
  /** Entries the datapath cannot express (IPv6 ICMP, other protocols), for status and reports. */
  skipped: string[];
}

const L4_PROTOS = [6, 17, 132];
/**
 * A verdict as the sets split it: redirects per parser (each parser has its own proxy port);
 * `audit` sets (denies of audited policies) decide nothing: see auditMatches in compileDirection.
 */
type SetVerdict = 'deny' | 'allow' | `redirect:${L7Parser}` | 'audit';
const VERDICT_ORDER: SetVerdict[] = ['deny', ...PARSERS.map((p) => `redirect:${p}` as const), 'allow'];
/** Set-name part; http keeps the plain `redir`. */
const VERDICT_NAME: Record<SetVerdict, string> = {
  deny: 'deny',
  'redirect:http': 'redir',
  'redirect:dns': 'redirdns',
  'redirect:kafka': 'redirkafka',
  allow: 'allow',
  audit: 'audit',
};

/** undefined: a redirect entry without L7 rules (a removed entry in the change log). */
function setVerdict(e: MapStateEntry): SetVerdict | undefined {
  if (e.verdict !== 'redirect') return e.verdict;
  const p = e.l7?.parser;
  return p === undefined ? undefined : `redirect:${p}`;
}

interface Bucket {
  all: boolean;
  /** shape → (group key → ranges); group key is the element prefix (identity / identity . proto). */
  ranges: Map<SetShape, Map<string, Array<[number, number]>>>;
}

function emptyBucket(): Bucket {
  return { all: false, ranges: new Map() };
}

function addRange(b: Bucket, shape: SetShape, prefix: string, lo: number, hi: number): void {
  let m = b.ranges.get(shape);
  if (!m) {
    m = new Map();
    b.ranges.set(shape, m);
  }
  let r = m.get(prefix);
  if (!r) {
    r = [];
    m.set(prefix, r);
  }
  r.push([lo, hi]);
}

/** Union of inclusive ranges, adjacent ones joined: elements of an interval set must not overlap. */
export function mergeRanges(ranges: Array<[number, number]>): Array<[number, number]> {
  const s = [...ranges].sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  const out: Array<[number, number]> = [];
  for (const [lo, hi] of s) {
    const last = out[out.length - 1];
    if (last && lo <= last[1] + 1) last[1] = Math.max(last[1], hi);
    else out.push([lo, hi]);
  }
  return out;
}

function rangeText(lo: number, hi: number): string {
  return lo === hi ? `${lo}` : `${lo}-${hi}`;
}

/** set name → element → how many MapState entries produce it, kept only where more than one. */
type Dups = Map<string, Map<string, number>>;

function bump(dups: Dups, set: string, el: string, by: number): void {
  let m = dups.get(set);
  if (m === undefined) {
    m = new Map();
    dups.set(set, m);
  }
  const n = (m.get(el) ?? 1) + by;
  if (n <= 1) m.delete(el);
  else m.set(el, n);
}

function compileDirection(ep: DatapathEndpoint, dir: Dir, skipped: string[], dups: Dups): CompiledChain {
  const chain = `ep${ep.id}_${dir}`;
  const pol = ep.policy;
  const dp = dir === 'in' ? pol.ingress : pol.egress;
  if (!dp.enforced) return { name: chain, rules: [], l7rules: [], sets: [] };
  const direction = dir === 'in' ? 'INGRESS' : 'EGRESS';
  const buckets = new Map<SetVerdict, Bucket>();
  for (const e of pol.entries) {
    if (e.key.direction !== direction) continue;
    // a redirect entry always carries its parser; without one it is treated as http (a proxy
    // that judges it, never L4)
    const sv = setVerdict(e) ?? 'redirect:http';
    let b = buckets.get(sv);
    if (!b) {
      b = emptyBucket();
      buckets.set(sv, b);
    }
    const { identity: id, proto, portLo, portHi } = e.key;
    const full = portLo === 0 && portHi === 65535;
    const wild = id === 0;
    if (proto === 0 && full) {
      if (wild) b.all = true;
      else addRange(b, 'l3', '', id, id);
    } else if (proto === 0 || L4_PROTOS.includes(proto)) {
      for (const p of proto === 0 ? L4_PROTOS : [proto]) {
        if (wild) addRange(b, 'anyL4', `${p}`, portLo, portHi);
        else addRange(b, 'l4', `${id} . ${p}`, portLo, portHi);
      }
    } else if (proto === 1) {
      const lo = Math.min(portLo, 255);
      const hi = Math.min(portHi, 255);
      if (wild) addRange(b, 'anyIcmp', '', lo, hi);
      else addRange(b, 'icmp', `${id}`, lo, hi);
    } else {
      skipped.push(`${pol.endpoint} ${direction} ${e.verdict} identity ${id} proto ${proto}`);
    }
  }

  const peer = dir === 'in' ? 'saddr' : 'daddr';
  const rules = ['meta mark set ' + WORLD_IDENTITY, `meta mark set ip ${peer} map @ipcache`];
  const l7rules = [...rules];
  const sets: SetDef[] = [];
  const log = (v: LogVerdict): string => `log prefix "${logPrefix(v, dir, ep.id)}" group ${NFLOG_GROUP}`;
  // `match` ('' for none) → the rules of one verdict: a drop logs every packet; an allow logs the
  // first packet of a connection only (records per connection, not per packet) and then passes
  // every later packet of the original direction that still matches. A redirect reaching the
  // filter chain is a connection nat_pre did not send to a proxy: dropped, never passed at L4.
  let auditMatches: string[] = [];
  const verdictRules = (v: SetVerdict | 'allow', match: string): string[] => {
    const m = match === '' ? '' : `${match} `;
    if (v === 'deny') return [`${m}${log('deny')} drop`];
    if (v !== 'allow') return [`${m}${log('denied')} drop`];
    const audited = auditMatches.map(
      (a) => `ct state new ${m}${a === '' ? '' : `${a} `}${log('audit')} return`,
    );
    return [...audited, `ct state new ${m}${log('fwd')} return`, `${m}return`];
  };
  // the same verdict in nat_pre: bits in ct mark, the redirect logged (nat sees new connections only)
  const dirBit = dir === 'in' ? REDIRECT_CT_MARK_INGRESS : REDIRECT_CT_MARK_EGRESS;
  const l7VerdictRule = (v: SetVerdict | 'denied', match: string): string => {
    const m = match === '' ? '' : `${match} `;
    if (v === 'allow') return `${m}return`;
    if (v === 'deny' || v === 'denied') return `${m}ct mark set ct mark | ${hex(CT_MARK_DENY)} return`;
    const bits = dirBit | PARSER_CT_MARK[v.slice('redirect:'.length) as L7Parser];
    return `${m}ct mark set ct mark | ${hex(bits)} ${log('redir')} return`;
  };
  // a redirect that an audit set also covers: redirected all the same, logged `audit`, tried first
  const l7Rules = (v: SetVerdict, match: string): string[] => {
    const plain = l7VerdictRule(v, match);
    if (!v.startsWith('redirect:') || auditMatches.length === 0) return [plain];
    const m = match === '' ? '' : `${match} `;
    const bits = dirBit | PARSER_CT_MARK[v.slice('redirect:'.length) as L7Parser];
    const audited = auditMatches.map(
      (a) => `${m}${a === '' ? '' : `${a} `}ct mark set ct mark | ${hex(bits)} ${log('audit')} return`,
    );
    return [...audited, plain];
  };
  // The sets of one verdict's bucket, declared in `sets`; their match expressions in order ('' for
  // the unconditional wildcard).
  const matchesOf = (v: SetVerdict, b: Bucket): string[] => {
    if (b.all) return [''];
    const matches: string[] = [];
    for (const shape of SHAPES) {
      const groups = b.ranges.get(shape);
      if (!groups) continue;
      const name = `${chain}_${VERDICT_NAME[v]}_${SHAPE_NAME[shape]}`;
      const exact: string[] = [];
      const ranges: string[] = [];
      // numeric order (prefix tuple, then value) without comparing strings: groups are few,
      // their members many
      const prefixes = [...groups.keys()].sort(comparePrefixes);
      for (const prefix of prefixes) {
        const rs = groups.get(prefix)!;
        // single values in a hash set: dedup, never merge (80 and 81 stay two, so adding 81
        // later is one element add, and 257 and 258 stay two identities)
        const singles: number[] = [];
        const spans: Array<[number, number]> = [];
        for (const [lo, hi] of rs) {
          if (lo === hi) singles.push(lo);
          else spans.push([lo, hi]);
        }
        singles.sort((x, y) => x - y);
        let last = -1;
        for (const x of singles) {
          if (x === last) {
            // a second entry producing the same element: patches must not delete it with the first
            bump(dups, name, exact[exact.length - 1]!, 1);
            continue;
          }
          last = x;
          exact.push(prefix === '' ? `${x}` : `${prefix} . ${x}`);
        }
        // interval sets need disjoint elements; a single also inside a span is harmless (same verdict)
        for (const [lo, hi] of mergeRanges(spans)) {
          // in concatenations the kernel stores ranges: `80-80` deletes what `80` would not find
          ranges.push(prefix === '' ? rangeText(lo, hi) : `${prefix} . ${lo}-${hi}`);
        }
      }
      for (const [setName, elements, interval] of [
        [name, exact, false],
        [name + RANGE_SUFFIX, ranges, true],
      ] as const) {
        if (elements.length === 0) continue;
        sets.push({ name: setName, type: SHAPE_TYPE[shape], interval, elements });
        matches.push(matchFor(shape, setName));
      }
    }
    return matches;
  };
  // Audit (policy.seawall.dev/audit-mode, PolicyAuditMode): an audit set decides nothing; a new
  // connection that one of them covers and the rest of the chain lets pass is logged `audit`
  // instead of `fwd` (each allowing rule gets a copy per audit set, tried first). An enforcing
  // deny (earlier) or default deny still drops it. In nat_pre audit sets only change a redirect's
  // log (`audit` instead of `redir`): they never set or clear a bit.
  const auditBucket = buckets.get('audit');
  if (auditBucket !== undefined) auditMatches = matchesOf('audit', auditBucket);
  for (const v of VERDICT_ORDER) {
    const b = buckets.get(v);
    if (!b) continue;
    for (const m of matchesOf(v, b)) {
      rules.push(...verdictRules(v, m));
      l7rules.push(...l7Rules(v, m));
    }
  }
  if (dir === 'in') {
    // allow-localhost=always (Kubernetes mode): the local node may reach its pods under default deny.
    rules.push(...verdictRules('allow', `meta mark ${HOST_IDENTITY}`));
    l7rules.push(l7VerdictRule('allow', `meta mark ${HOST_IDENTITY}`));
  }
  if (dp.defaultDeny && dp.auditDefaultDeny === true) {
    // only audited policies bring the default deny: what it would drop passes, logged `audit`
    // (and never marks nat_pre's deny bit: the other side may still redirect)
    rules.push(`ct state new ${log('audit')} return`, 'return');
  } else if (dp.defaultDeny) {
    rules.push(`${log('denied')} drop`);
    l7rules.push(l7VerdictRule('denied', ''));
  } else {
    rules.push(...verdictRules('allow', ''));
  }
  return { name: chain, rules, l7rules, sets };
}

function hex(n: number): string {
  return `0x${n.toString(16).padStart(8, '0')}`;
}

function matchFor(shape: SetShape, set: string): string {
  switch (shape) {
    case 'l3':
      return `meta mark @${set}`;
    case 'l4':
      return `meta l4proto { tcp, udp, sctp } meta mark . meta l4proto . th dport @${set}`;
    case 'anyL4':
      return `meta l4proto { tcp, udp, sctp } meta l4proto . th dport @${set}`;
    case 'icmp':
      return `meta l4proto icmp meta mark . icmp type @${set}`;
    case 'anyIcmp':
      return `meta l4proto icmp icmp type @${set}`;
  }
}

/** Element prefixes (`256 . 6`, `17`, ``) in numeric order, so renders are deterministic. */
function comparePrefixes(a: string, b: string): number {
  const pa = a === '' ? [] : a.split(' . ').map(Number);
  const pb = b === '' ? [] : b.split(' . ').map(Number);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const d = (pa[i] ?? -1) - (pb[i] ?? -1);
    if (d !== 0) return d;
  }
  return 0;
}

/** One endpoint; `skipped` collects what the datapath cannot express. */
export function compileEndpoint(ep: DatapathEndpoint, skipped: string[] = []): CompiledEndpoint {
  const dups: Dups = new Map();
  const out: CompiledEndpoint = {
    id: ep.id,
    endpoint: ep.policy.endpoint,
    ip: ep.ip,
    in: compileDirection(ep, 'in', skipped, dups),
    eg: compileDirection(ep, 'eg', skipped, dups),
  };
  if (ep.iface !== undefined) out.iface = ep.iface;
  patchIndexes.set(out, dups);
  return out;
}

// ---------------------------------------------------------------- patching (incremental compile)
//
// A change of k MapState entries becomes k element adds/deletes in the endpoint's hash sets,
// without recompiling the endpoint's n entries. Side tables (WeakMaps) keep what patching needs
// out of the compiled form, so compiled forms stay plain data comparable with a fresh compile.
// Copy-on-write: the previous compiled form is never modified (the applier may still hold it as
// the kernel's state); a touched set gets a new sorted array, the others are shared.

/** The duplicate counts of a compiled endpoint; moved to the patched form (one patch per form). */
const patchIndexes = new WeakMap<CompiledEndpoint, Dups>();

/** The element changes a patched form was made with, for renderDelta (when `base` is installed). */
interface Patch {
  base: CompiledEndpoint;
  /** Per chain, per touched set in the chain's order: [set, deleted, added] (sorted). */
  sets: Array<[string, string[], string[]]>;
}
const patches = new WeakMap<CompiledEndpoint, Patch>();

/** Entry changes of one endpoint (the engine's drained log). */
export interface EntryChanges {
  removed: readonly MapStateEntry[];
  added: readonly MapStateEntry[];
}

/**
 * The hash-set element an entry produces in compileDirection, per expanded protocol; undefined
 * when patching cannot express it (wildcard L3 rule, a port range, a skipped protocol): then the
 * caller compiles in full.
 */
function singleElements(e: MapStateEntry, chain: string): Array<[string, string]> | undefined {
  const { identity: id, proto, portLo, portHi } = e.key;
  // a removed redirect entry carries no parser: which set it was in is unknown, compile in full
  const sv = setVerdict(e);
  if (sv === undefined) return undefined;
  const base = `${chain}_${VERDICT_NAME[sv]}_`;
  const wild = id === 0;
  if (proto === 0 && portLo === 0 && portHi === 65535) {
    return wild ? undefined : [[base + SHAPE_NAME.l3, `${id}`]];
  }
  if (proto === 0 || L4_PROTOS.includes(proto)) {
    if (portLo !== portHi) return undefined;
    const out: Array<[string, string]> = [];
    for (const p of proto === 0 ? L4_PROTOS : [proto]) {
      if (wild) out.push([base + SHAPE_NAME.anyL4, `${p} . ${portLo}`]);
      else out.push([base + SHAPE_NAME.l4, `${id} . ${p} . ${portLo}`]);
    }
    return out;
  }
  if (proto === 1) {
    const lo = Math.min(portLo, 255);
    if (lo !== Math.min(portHi, 255)) return undefined;
    return [wild ? [base + SHAPE_NAME.anyIcmp, `${lo}`] : [base + SHAPE_NAME.icmp, `${id} . ${lo}`]];
  }
  return undefined;
}

/**
 * Canonical order of hash-set elements: their numbers, left to right (as compileDirection sorts).
 * `b` is parsed in place (digits and ` . ` only): this runs ~17 times per changed element.
 */
function cmpElement(a: readonly number[], b: string): number {
  const n = b.length;
  let i = 0;
  let p = 0;
  for (;;) {
    let y = 0;
    for (; p < n; p++) {
      const c = b.charCodeAt(p);
      if (c < 48 || c > 57) break;
      y = y * 10 + (c - 48);
    }
    const d = a[i]! - y;
    if (d !== 0) return d;
    i++;
    if (p >= n) return a.length - i;
    p += 3;
  }
}

function cmpTuple(a: readonly number[], b: readonly number[]): number {
  for (let i = 0; i < a.length && i < b.length; i++) if (a[i] !== b[i]) return a[i]! - b[i]!;
  return a.length - b.length;
}

function tuple(el: string): number[] {
  const out: number[] = [];
  let y = 0;
  for (let p = 0; p < el.length; p++) {
    const c = el.charCodeAt(p);
    if (c >= 48 && c <= 57) y = y * 10 + (c - 48);
    else if (c === 46) {
      out.push(y); // the `.` of ` . `
      y = 0;
    }
  }
  out.push(y);
  return out;
}

/** First index whose element is not below `t`. */
function lowerBound(xs: readonly string[], t: readonly number[]): number {
  let lo = 0;
  let hi = xs.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (cmpElement(t, xs[mid]!) > 0) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

interface SetWork {
  def: SetDef;
  dups: Map<string, number> | undefined;
  add: Set<string>;
  del: Set<string>;
  /** Element → its lower bound in def.elements (searched once per element). */
  at: Map<string, number>;
}

/**
 * The compiled form after `ch`, made from `prev` in O(k log n) plus an array copy per touched
 * set; undefined when the change reshapes a chain (a set appears or empties, a wildcard rule,
 * port ranges, skipped protocols) or `prev` cannot be patched: the caller compiles in full.
 */
export function patchEndpoint(prev: CompiledEndpoint, ch: EntryChanges): CompiledEndpoint | undefined {
  const dups = patchIndexes.get(prev);
  if (dups === undefined) return undefined;
  // one patch per form: the counts move on with the result (or are rebuilt by a full compile)
  patchIndexes.delete(prev);
  const chains = { INGRESS: prev.in, EGRESS: prev.eg } as const;
  const work = new Map<string, SetWork>();
  const resolve = (list: readonly MapStateEntry[]): Array<Array<[SetWork, string]>> | undefined => {
    const out: Array<Array<[SetWork, string]>> = [];
    for (const e of list) {
      const chain = chains[e.key.direction];
      if (chain.rules.length === 0) continue; // direction not enforced: compile ignores its entries
      const els = singleElements(e, chain.name);
      if (els === undefined) return undefined;
      const one: Array<[SetWork, string]> = [];
      for (const [name, el] of els) {
        let w = work.get(name);
        if (w === undefined) {
          const def = chain.sets.find((s) => s.name === name);
          if (def === undefined) return undefined; // a new set: the chain's rules change
          w = { def, dups: dups.get(name), add: new Set(), del: new Set(), at: new Map() };
          work.set(name, w);
        }
        one.push([w, el]);
      }
      out.push(one);
    }
    return out;
  };
  const removed = resolve(ch.removed);
  const added = resolve(ch.added);
  if (removed === undefined || added === undefined) return undefined;
  const present = (w: SetWork, el: string): boolean => {
    if (w.add.has(el)) return true;
    if (w.del.has(el)) return false;
    const xs = w.def.elements;
    let i = w.at.get(el);
    if (i === undefined) {
      i = lowerBound(xs, tuple(el));
      w.at.set(el, i);
    }
    return i < xs.length && xs[i] === el;
  };
  // removals first: an element leaves only with the last entry producing it
  for (const one of removed) {
    for (const [w, el] of one) {
      const n = w.dups?.get(el);
      if (n !== undefined) {
        bump(dups, w.def.name, el, -1);
        w.dups = dups.get(w.def.name);
      } else if (w.add.has(el)) w.add.delete(el);
      else if (present(w, el)) w.del.add(el);
      else return undefined; // not there: the log and the form disagree, start over
    }
  }
  for (const one of added) {
    for (const [w, el] of one) {
      if (present(w, el)) {
        bump(dups, w.def.name, el, 1);
        w.dups = dups.get(w.def.name);
      } else if (w.del.has(el)) w.del.delete(el);
      else w.add.add(el);
    }
  }
  const replaced = new Map<string, SetDef>();
  const patch: Patch = { base: prev, sets: [] };
  for (const [name, w] of work) {
    if (w.add.size === 0 && w.del.size === 0) continue;
    const xs = w.def.elements;
    // every element in add/del went through present(): its position is known
    const delAt = [...w.del].map((el) => w.at.get(el)!).sort((a, b) => a - b);
    const adds = [...w.add].map((el) => ({ el, t: tuple(el), at: w.at.get(el)! }));
    adds.sort((a, b) => cmpTuple(a.t, b.t));
    const addAt = adds.map((a) => a.at);
    const len = xs.length - delAt.length + adds.length;
    if (len === 0) return undefined; // the set goes: the chain's rules change
    // the untouched runs between changes are copied as slices (memcpy speed)
    const parts: string[][] = [];
    let cur = 0;
    let di = 0;
    let ai = 0;
    while (di < delAt.length || ai < adds.length) {
      const d = di < delAt.length ? delAt[di]! : Number.POSITIVE_INFINITY;
      const a = ai < adds.length ? addAt[ai]! : Number.POSITIVE_INFINITY;
      if (a <= d) {
        // new elements go before xs[a] (and before its deletion when both are at a)
        if (a > cur) parts.push(xs.slice(cur, a));
        cur = a;
        const run: string[] = [];
        while (ai < adds.length && addAt[ai] === a) run.push(adds[ai++]!.el);
        parts.push(run);
      } else {
        if (d > cur) parts.push(xs.slice(cur, d));
        cur = d + 1;
        di++;
      }
    }
    if (cur < xs.length) parts.push(xs.slice(cur));
    const next = ([] as string[]).concat(...parts);
    replaced.set(name, { ...w.def, elements: next });
    patch.sets.push([name, delAt.map((i) => xs[i]!), adds.map((a) => a.el)]);
  }
  const chainOf = (c: CompiledChain): CompiledChain =>
    c.sets.some((s) => replaced.has(s.name))
      ? { ...c, sets: c.sets.map((s) => replaced.get(s.name) ?? s) }
      : c;
  const out: CompiledEndpoint = { ...prev, in: chainOf(prev.in), eg: chainOf(prev.eg) };
  // renderDelta's order: per chain, per set in the chain's order
  const order = new Map<string, number>();
  for (const c of [out.in, out.eg]) for (const s of c.sets) order.set(s.name, order.size);
  patch.sets.sort((a, b) => order.get(a[0])! - order.get(b[0])!);
  patchIndexes.set(out, dups);
  // only the latest step is kept: a chain of bases would hold every earlier form in memory
  patches.delete(prev);
  patches.set(out, patch);
  return out;
}

export function compile(input: CompileInput): CompiledTable {
  const skipped: string[] = [];
  const endpoints = new Map<number, CompiledEndpoint>();
  for (const ep of [...input.endpoints].sort((a, b) => a.id - b.id)) {
    endpoints.set(ep.id, compileEndpoint(ep, skipped));
  }
  return { ipcache: new Map(input.ipcache), proxy: input.proxy ?? DEFAULT_PROXY_TARGET, endpoints, skipped };
}

/**
 * A table from already compiled endpoints (the incremental path: unchanged endpoints keep their
 * objects, which renderDelta then skips by identity without looking inside).
 */
export function assemble(
  endpoints: Iterable<CompiledEndpoint>,
  ipcache: ReadonlyMap<string, number>,
  skipped: string[] = [],
  proxy: ProxyTarget = DEFAULT_PROXY_TARGET,
): CompiledTable {
  const m = new Map<number, CompiledEndpoint>();
  for (const ep of [...endpoints].sort((a, b) => a.id - b.id)) m.set(ep.id, ep);
  return { ipcache: new Map(ipcache), proxy, endpoints: m, skipped };
}

// ---------------------------------------------------------------- rendering

const T = `${FAMILY} ${TABLE}`;
/** Elements per `add element` line: keeps single netlink messages reasonable for 50k sets. */
const CHUNK = 2000;

function chunks<X>(xs: X[]): X[][] {
  const out: X[][] = [];
  for (let i = 0; i < xs.length; i += CHUNK) out.push(xs.slice(i, i + CHUNK));
  return out;
}

function elementLines(verb: 'add' | 'delete', set: string, elements: string[]): string[] {
  return chunks(elements).map((c) => `${verb} element ${T} ${set} { ${c.join(', ')} }`);
}

function setDecl(s: SetDef): string {
  const flags = s.interval ? ' flags interval;' : '';
  return `add set ${T} ${s.name} { type ${s.type};${flags} }`;
}

function chainLines(c: CompiledChain): string[] {
  return c.rules.map((r) => `add rule ${T} ${c.name} ${r}`);
}

function l7ChainLines(c: CompiledChain): string[] {
  return c.l7rules.map((r) => `add rule ${T} ${c.name}_l7 ${r}`);
}

function srcChain(ep: CompiledEndpoint): string {
  return `ep${ep.id}_src`;
}

/** Anti-spoofing: the veth's chain and its ep_src element (the chain must exist first). */
function bindAddLines(ep: CompiledEndpoint): string[] {
  if (ep.iface === undefined) return [];
  const c = srcChain(ep);
  return [
    `add chain ${T} ${c}`,
    // pods are IPv4 only and every policy lookup is by IPv4 address: IPv6 (link-local to the
    // node) would pass no policy at all
    `add rule ${T} ${c} meta nfproto ipv6 drop`,
    `add rule ${T} ${c} ip saddr != ${ep.ip} log prefix "${logPrefix('spoof', 'eg', ep.id)}" group ${NFLOG_GROUP} drop`,
    `add element ${T} ep_src { "${ep.iface}" : jump ${c} }`,
  ];
}

function bindDeleteLines(ep: CompiledEndpoint): string[] {
  if (ep.iface === undefined) return [];
  const c = srcChain(ep);
  return [`delete element ${T} ep_src { "${ep.iface}" }`, `flush chain ${T} ${c}`, `delete chain ${T} ${c}`];
}

function endpointAddLines(ep: CompiledEndpoint): string[] {
  const out: string[] = [];
  for (const c of [ep.in, ep.eg]) {
    for (const s of c.sets) {
      out.push(setDecl(s));
      out.push(...elementLines('add', s.name, s.elements));
    }
    out.push(`add chain ${T} ${c.name}`);
    out.push(...chainLines(c));
    out.push(`add chain ${T} ${c.name}_l7`);
    out.push(...l7ChainLines(c));
  }
  out.push(...mapAddLines(ep));
  out.push(...bindAddLines(ep));
  return out;
}

function mapAddLines(ep: CompiledEndpoint): string[] {
  return [
    `add element ${T} ep_in { ${ep.ip} : jump ${ep.in.name} }`,
    `add element ${T} ep_eg { ${ep.ip} : jump ${ep.eg.name} }`,
    `add element ${T} ep_in_l7 { ${ep.ip} : jump ${ep.in.name}_l7 }`,
    `add element ${T} ep_eg_l7 { ${ep.ip} : jump ${ep.eg.name}_l7 }`,
  ];
}

function mapDeleteLines(ip: string): string[] {
  return [
    `delete element ${T} ep_in { ${ip} }`,
    `delete element ${T} ep_eg { ${ip} }`,
    `delete element ${T} ep_in_l7 { ${ip} }`,
    `delete element ${T} ep_eg_l7 { ${ip} }`,
  ];
}

function endpointDeleteLines(ep: CompiledEndpoint): string[] {
  const out = [...bindDeleteLines(ep), ...mapDeleteLines(ep.ip)];
  for (const c of [ep.in, ep.eg]) {
    out.push(`flush chain ${T} ${c.name}`, `delete chain ${T} ${c.name}`);
    out.push(`flush chain ${T} ${c.name}_l7`, `delete chain ${T} ${c.name}_l7`);
    for (const s of c.sets) out.push(`delete set ${T} ${s.name}`);
  }
  return out;
}

function ipcacheElements(m: Map<string, number>): string[] {
  return [...m].map(([ip, id]) => `${ip} : ${id}`);
}

/**
 * The whole table as one transaction that replaces whatever table of ours the kernel holds:
 * `add table` + `delete table` + rebuild commit together, so there is never a moment without
 * enforcement (no allow-all window on restart or adoption).
 */
export function renderFull(t: CompiledTable): string {
  const out = [
    `add table ${T}`,
    `delete table ${T}`,
    `add table ${T}`,
    `add map ${T} ipcache { type ipv4_addr : mark; }`,
    `add map ${T} ep_in { type ipv4_addr : verdict; }`,
    `add map ${T} ep_eg { type ipv4_addr : verdict; }`,
    `add map ${T} ep_src { type ifname : verdict; }`,
    `add map ${T} ep_in_l7 { type ipv4_addr : verdict; }`,
    `add map ${T} ep_eg_l7 { type ipv4_addr : verdict; }`,
    `add set ${T} ${ZOMBIE_SET} { type ipv4_addr . ipv4_addr . inet_proto . inet_service; }`,
    ...elementLines('add', 'ipcache', ipcacheElements(t.ipcache)),
  ];
  const px = t.proxy;
  const redirected = `ct status dnat ct mark & ${hex(REDIRECT_CT_MARK_INGRESS | REDIRECT_CT_MARK_EGRESS)} != 0`;
  const proxyPorts = PARSERS.flatMap((p) => (px.ports[p] === undefined ? [] : [px.ports[p]]));
  const udpProxyPorts = PARSERS.flatMap((p) =>
    px.ports[p] === undefined || !UDP_PARSERS.has(p) ? [] : [px.ports[p]],
  );
  for (const ep of t.endpoints.values()) out.push(...endpointAddLines(ep));
  out.push(
    // before conntrack (raw): a forged packet is dropped before it can make a ct entry
    `add chain ${T} prerouting { type filter hook prerouting priority raw; policy accept; }`,
    `add rule ${T} prerouting iifname vmap @ep_src`,
    // L7 redirection: both sides' verdicts into ct mark, then DNAT to the parser's proxy port
    `add chain ${T} nat_pre { type nat hook prerouting priority dstnat; policy accept; }`,
    // TCP for every parser; UDP too (a DNS query): only a UDP parser's DNAT rule takes it, any
    // other UDP redirect reaches the filter chains undiverted and is dropped there
    `add rule ${T} nat_pre meta l4proto { tcp, udp } ip saddr vmap @ep_eg_l7`,
    `add rule ${T} nat_pre meta l4proto { tcp, udp } ip daddr vmap @ep_in_l7`,
    `add rule ${T} nat_pre meta mark set 0`,
    `add rule ${T} nat_pre ct mark & ${hex(CT_MARK_DENY)} != 0 return`,
    ...PARSERS.flatMap((p) =>
      px.ports[p] === undefined
        ? []
        : [
            `add rule ${T} nat_pre meta l4proto ${UDP_PARSERS.has(p) ? '{ tcp, udp }' : 'tcp'} ct mark & ${hex(REDIRECT_CT_MARK_INGRESS | REDIRECT_CT_MARK_EGRESS)} != 0 ct mark & ${hex(PARSER_MASK)} == ${hex(PARSER_CT_MARK[p])} dnat ip to ${px.address}:${px.ports[p]}`,
          ],
    ),
    // replies and related packets pass on conntrack; every original-direction packet (new or
    // established) is judged by policy, so a connection outlives no change that denies it
    `add chain ${T} forward { type filter hook forward priority filter; policy accept; }`,
    `add rule ${T} forward ct direction reply accept`,
    `add rule ${T} forward ct state related accept`,
    // FQDN zombies: a pod's established connection to an address whose DNS answer expired
    `add rule ${T} forward ct state established meta l4proto { tcp, udp } ip saddr . ip daddr . meta l4proto . th dport @${ZOMBIE_SET} accept`,
    `add rule ${T} forward ip saddr vmap @ep_eg`,
    `add rule ${T} forward ip daddr vmap @ep_in`,
    // pod → node (reserved:host): only the pod's egress policy applies
    `add chain ${T} input { type filter hook input priority filter; policy accept; }`,
    `add rule ${T} input ct direction reply accept`,
    `add rule ${T} input ct state related accept`,
    // a connection nat_pre redirected: local delivery to the proxy (which judges it)
    ...(proxyPorts.length === 0
      ? []
      : [
          `add rule ${T} input ${redirected} ip daddr ${px.address} tcp dport { ${proxyPorts.join(', ')} } accept`,
        ]),
    ...(udpProxyPorts.length === 0
      ? []
      : [
          `add rule ${T} input ${redirected} ip daddr ${px.address} udp dport { ${udpProxyPorts.join(', ')} } accept`,
        ]),
    // a proxy's upstream to the node itself, looped back: it leaves from the client's address, so
    // `ip saddr` would pick the client's egress chain, whose redirect entry drops it. Judged
    // already (as the output chain's pass). Only from lo: a pod's packet that matches the
    // upstream's tuple enters on its veth and is judged by its egress chain
    `add rule ${T} input iifname "lo" ct direction original ct mark & ${hex(PROXY_RETURN_MARK)} != 0 accept`,
    `add rule ${T} input ip saddr vmap @ep_eg`,
    // node → pod: only the pod's ingress policy applies
    `add chain ${T} output { type filter hook output priority filter; policy accept; }`,
    `add rule ${T} output ct direction reply accept`,
    `add rule ${T} output ct state related accept`,
    // the proxies' upstream connections: both sides' L3/L4 and L7 were judged already; marked
    // in ct mark so that their replies find the proxy's socket (PROXY_RETURN_MARK)
    `add rule ${T} output meta skuid ${px.uid} ct mark set ct mark | ${hex(PROXY_RETURN_MARK)} accept`,
    `add rule ${T} output ip daddr vmap @ep_in`,
    // replies to a proxy's upstream: meta mark before the routing decision, so the fwmark rule
    // delivers them locally (to the transparent socket) instead of routing them to the pod
    `add chain ${T} proxy_return { type filter hook prerouting priority mangle; policy accept; }`,
    `add rule ${T} proxy_return ct direction reply ct mark & ${hex(PROXY_RETURN_MARK)} != 0 meta mark set ${hex(PROXY_RETURN_MARK)}`,
    // the same for replies a server in the node namespace itself sends (a route chain re-routes)
    `add chain ${T} proxy_return_local { type route hook output priority mangle; policy accept; }`,
    `add rule ${T} proxy_return_local ct direction reply ct mark & ${hex(PROXY_RETURN_MARK)} != 0 meta mark set ${hex(PROXY_RETURN_MARK)}`,
  );
  return out.join('\n') + '\n';
}

function sameList(a: readonly string[], b: readonly string[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function sameRules(a: CompiledChain, b: CompiledChain): boolean {
  return sameList(a.rules, b.rules) && sameList(a.l7rules, b.l7rules);
}

/**
 * Elements to delete and to add. Both lists are in the same canonical order, so the common head
 * and tail are skipped by string equality alone; only the window between them is hashed. A change
 * of k elements in a set of 50k then costs about k, not 50k (when the change is contiguous).
 */
export function diffSorted(prev: string[], next: string[]): { del: string[]; add: string[] } {
  let head = 0;
  const max = Math.min(prev.length, next.length);
  while (head < max && prev[head] === next[head]) head++;
  let tp = prev.length;
  let tn = next.length;
  while (tp > head && tn > head && prev[tp - 1] === next[tn - 1]) {
    tp--;
    tn--;
  }
  if (tp === head) return { del: [], add: next.slice(head, tn) };
  if (tn === head) return { del: prev.slice(head, tp), add: [] };
  const pw = prev.slice(head, tp);
  const nw = next.slice(head, tn);
  const p = new Set(pw);
  const n = new Set(nw);
  return { del: pw.filter((x) => !n.has(x)), add: nw.filter((x) => !p.has(x)) };
}

function chainDelta(prev: CompiledChain, next: CompiledChain): string[] {
  const out: string[] = [];
  const prevSets = new Map(prev.sets.map((s) => [s.name, s]));
  const nextSets = new Map(next.sets.map((s) => [s.name, s]));
  const reshaped = !sameRules(prev, next);
  if (reshaped) out.push(`flush chain ${T} ${next.name}`, `flush chain ${T} ${next.name}_l7`);
  // Deletes before adds: merged intervals may change shape (80 → 80-90) and must never overlap.
  for (const [name, n] of nextSets) {
    const p = prevSets.get(name);
    if (p) out.push(...elementLines('delete', name, diffSorted(p.elements, n.elements).del));
  }
  for (const [name, n] of nextSets) {
    const p = prevSets.get(name);
    if (!p) {
      out.push(setDecl(n), ...elementLines('add', name, n.elements));
    } else {
      out.push(...elementLines('add', name, diffSorted(p.elements, n.elements).add));
    }
  }
  if (reshaped) {
    out.push(...chainLines(next), ...l7ChainLines(next));
    // after the flush no rule refers to them any more
    for (const name of prevSets.keys()) if (!nextSets.has(name)) out.push(`delete set ${T} ${name}`);
  }
  return out;
}

/** A patch as chainDelta would render it: per chain, its sets' deletes, then their adds. */
function patchLines(patch: Patch, n: CompiledEndpoint): string[] {
  const out: string[] = [];
  for (const c of [n.in, n.eg]) {
    const mine = patch.sets.filter(([name]) => c.sets.some((s) => s.name === name));
    for (const [name, del] of mine) out.push(...elementLines('delete', name, del));
    for (const [name, , add] of mine) out.push(...elementLines('add', name, add));
  }
  return out;
}

/**
 * The transaction that turns `prev` into `next`: element adds/deletes, and for an endpoint whose
 * rule shape changed a flush + refill of that endpoint's chain only. Empty string: nothing to do.
 */
export function renderDelta(prev: CompiledTable, next: CompiledTable): string {
  const out: string[] = [];
  const delIp: string[] = [];
  const addIp: string[] = [];
  for (const [ip, id] of prev.ipcache) {
    const n = next.ipcache.get(ip);
    if (n === undefined || n !== id) delIp.push(ip);
  }
  for (const [ip, id] of next.ipcache) {
    if (prev.ipcache.get(ip) !== id) addIp.push(`${ip} : ${id}`);
  }
  out.push(...elementLines('delete', 'ipcache', delIp));
  out.push(...elementLines('add', 'ipcache', addIp));
  for (const [id, p] of prev.endpoints) {
    if (!next.endpoints.has(id)) out.push(...endpointDeleteLines(p));
  }
  // Keys an endpoint gives up go before any endpoint takes them (two pods swapping addresses):
  // adding a map key that still holds another verdict fails the whole transaction.
  const changed: Array<[CompiledEndpoint, CompiledEndpoint]> = [];
  for (const [id, n] of next.endpoints) {
    const p = prev.endpoints.get(id);
    if (p === n || !p) continue; // reused by the incremental compile: unchanged, O(1)
    changed.push([p, n]);
    if (p.ip !== n.ip || p.iface !== n.iface) out.push(...bindDeleteLines(p));
    if (p.ip !== n.ip) out.push(...mapDeleteLines(p.ip));
  }
  for (const [id, n] of next.endpoints) {
    if (!prev.endpoints.has(id)) out.push(...endpointAddLines(n));
  }
  for (const [p, n] of changed) {
    const rebind = p.ip !== n.ip || p.iface !== n.iface;
    const patch = patches.get(n);
    if (patch !== undefined && patch.base === p && !rebind) out.push(...patchLines(patch, n));
    else out.push(...chainDelta(p.in, n.in), ...chainDelta(p.eg, n.eg));
    if (p.ip !== n.ip) out.push(...mapAddLines(n));
    if (rebind) out.push(...bindAddLines(n));
  }
  return out.length === 0 ? '' : out.join('\n') + '\n';
}

/** Counts for `seawall agent status` and benches. */
export function countEntries(t: CompiledTable): { endpoints: number; ipcache: number; elements: number } {
  let elements = 0;
  for (const ep of t.endpoints.values()) {
    for (const c of [ep.in, ep.eg]) for (const s of c.sets) elements += s.elements.length;
  }
  return { endpoints: t.endpoints.size, ipcache: t.ipcache.size, elements };
}

export function emptyTable(): CompiledTable {
  return { ipcache: new Map(), proxy: DEFAULT_PROXY_TARGET, endpoints: new Map(), skipped: [] };
}

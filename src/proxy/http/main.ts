// The node's HTTP proxy process: started by the agent inside the node network namespace
// (`ip netns exec <node> node --import tsx src/proxy/http/main.ts`), listening on the port that
// nat_pre DNATs redirected connections to, judging from the policy mirror the agent pushes over
// stdin (../ipc.ts), and sending its L7 records back on stdout, compact (records.ts).
//
// Privileges: it starts as root (only root enters the namespace), binds, then drops to the proxy
// uid/gid (PROXY_UID, 1337 as Istio's): the node's output chain passes that uid's upstream
// connections through the destination's ingress chain, and no other process gets the pass. It
// keeps CAP_NET_RAW alone, for IP_TRANSPARENT: upstreams leave from the client's address
// (../upstream-socket.ts).
//
// Until the first snapshot arrives every connection is refused (no mirror, no context): the
// listener is up early only so that the agent's readiness check sees it.
//
// Arguments: --address A --port P --uid U --node NAME [--secrets DIR]

import { parseArgs } from 'node:util';
import type { FlowEndpoint } from '../../flow/types.ts';
import type { PolicyDelta, PolicySnapshot } from '../ipc.ts';
import { SnapshotMirror } from '../mirror.ts';
import { onFlowsLost, runMain, send, sendFlowLine, serveAgent } from '../process.ts';
import { useTransparentUpstream } from '../upstream-socket.ts';
import type { ConnectionInfo, HTTPRuleSet, RedirectContext } from './context.ts';
import { loadSecretsDir } from './judge.ts';
import { HTTPProxy } from './proxy.ts';
import { HTTPRecordMessages } from './records.ts';

const worldEndpoint = (): FlowEndpoint => ({ identity: 2, labels: ['reserved:world'] });

/** The HTTP proxy's mirror: rule sets per (source, destination, port) of the current snapshot. */
export class PolicyMirror extends SnapshotMirror<HTTPRuleSet[]> {
  /**
   * Every address outside the ipcache (a client or server outside the cluster): one world
   * endpoint object per snapshot or delta, as for every other peer, so that records to or from
   * the world keep one shape (records.ts caches shapes per endpoint object), not one per connection.
   */
  private world: FlowEndpoint = worldEndpoint();

  override load(s: PolicySnapshot): void {
    super.load(s);
    this.world = worldEndpoint();
  }

  override applyDelta(d: PolicyDelta): boolean {
    this.world = worldEndpoint();
    return super.applyDelta(d);
  }

  override peer(ip: string): FlowEndpoint {
    return this.peers.get(ip) ?? this.world;
  }

  /**
   * Every rule set a request on this connection must pass, from the current mirror (asked again
   * per request). A side that now denies, or a connection neither side redirects any more, gets
   * a set without rules: it admits nothing (fail closed).
   */
  ruleSets(src: string, dst: string, port: number): HTTPRuleSet[] {
    return this.cached(`${src}|${dst}|${port}`, () => this.tcpRuleSets(src, dst, port, 'http', true));
  }

  /** The connection's context, or undefined (refused) when no side of it redirects. */
  lookup(c: ConnectionInfo): RedirectContext | undefined {
    if (!this.loaded) return undefined;
    const src = c.remote.address.replace(/^::ffff:/, '');
    const dst = c.originalDst.address;
    const port = c.originalDst.port;
    const first = this.ruleSets(src, dst, port);
    if (first.every((s) => s.rules.length === 0)) return undefined;
    // the side whose proxy judges: egress when the source's rules apply (judged first), else
    // ingress; a source that merely has redirects on other ports does not make it egress
    const direction = first.some((x) => x.direction === 'EGRESS') ? 'EGRESS' : 'INGRESS';
    return {
      sourceIdentity: this.identityOf(src),
      source: this.peer(src),
      destination: this.peer(dst),
      originalDst: c.originalDst,
      direction,
      ruleSets: () => this.ruleSets(src, dst, port),
    };
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      address: { type: 'string', default: '0.0.0.0' },
      port: { type: 'string', default: '15001' },
      uid: { type: 'string', default: '1337' },
      node: { type: 'string', default: '' },
      secrets: { type: 'string' },
    },
  });
  // upstreams leave from the client's address (Cilium's proxies are transparent); without the
  // addon every request is refused, never sent from the node's address
  const noTransparent = useTransparentUpstream();
  if (noTransparent !== undefined) send({ type: 'error', message: noTransparent });
  const mirror = new PolicyMirror();
  // read now, as root: after the uid drop below the directory may be unreadable
  const loaded = values.secrets === undefined ? undefined : loadSecretsDir(values.secrets);
  const secrets = loaded?.resolver;
  // records go compact (records.ts): a shape once, then what varies; on stdout, so a request's
  // records reach the agent before the ack that follows them
  const records = new HTTPRecordMessages();
  onFlowsLost(() => records.lost());
  const proxy = new HTTPProxy({
    lookup: (c) => mirror.lookup(c),
    onRecord: (r) => sendFlowLine(records.line(r)),
    onRefused: (reason) => send({ type: 'refused', reason }),
    nodeName: values.node ?? '',
    ...(secrets === undefined ? {} : { secrets }),
  });
  if (loaded !== undefined && loaded.skipped.length > 0) {
    send({
      type: 'error',
      message: `secrets: skipped (not NAMESPACE/NAME files): ${loaded.skipped.join(', ')}`,
    });
  }
  if (proxy.unavailableReason !== undefined) {
    // every redirected connection would be refused anyway; say so where the agent logs it
    send({ type: 'error', message: proxy.unavailableReason });
  }
  const addr = await proxy.listen(Number(values.port), values.address);
  serveAgent({
    parser: 'http',
    mirror,
    address: addr.address,
    port: addr.port,
    uid: Number(values.uid),
    close: () => proxy.close(),
    // a request's records reach the agent before the ack that follows them
    beforeAck: () => proxy.flushRecords(),
  });
}

if (import.meta.url === `file://${process.argv[1]}`) runMain('http', main);

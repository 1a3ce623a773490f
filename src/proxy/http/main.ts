// The node's HTTP proxy process: started by the agent inside the node network namespace
// (`ip netns exec <node> node --import tsx src/proxy/http/main.ts`), listening on the port that
// nat_pre DNATs redirected connections to, judging from the policy mirror the agent pushes over
// stdin (../ipc.ts), and sending its L7 records back on stdout.
//
// Privileges: it starts as root (only root enters the namespace), binds, then drops to the proxy
// uid/gid (PROXY_UID, 1337 as Istio's): the node's output chain passes that uid's upstream
// connections through the destination's ingress chain, and no other process gets the pass.
//
// Until the first snapshot arrives every connection is refused (no mirror, no context): the
// listener is up early only so that the agent's readiness check sees it.
//
// Arguments: --address A --port P --uid U --node NAME [--secrets DIR]

import { parseArgs } from 'node:util';
import type { PortRuleHTTP } from '../../policy-api/types.ts';
import { type AgentMessage, encode, lineDecoder, type ProxyMessage, sideVerdict } from '../ipc.ts';
import { SnapshotMirror } from '../mirror.ts';
import type { ConnectionInfo, HTTPRuleSet, RedirectContext } from './context.ts';
import { loadSecretsDir } from './judge.ts';
import { HTTPProxy } from './proxy.ts';

const TCP = 6;

/** The HTTP proxy's mirror: rule sets per (source, destination, port) of the current snapshot. */
export class PolicyMirror extends SnapshotMirror<HTTPRuleSet[]> {
  /**
   * Every rule set a request on this connection must pass, from the current mirror (asked again
   * per request). A side that now denies, or a connection neither side redirects any more, gets
   * a set without rules: it admits nothing (fail closed).
   */
  ruleSets(src: string, dst: string, port: number): HTTPRuleSet[] {
    return this.cached(`${src}|${dst}|${port}`, () => this.computeRuleSets(src, dst, port));
  }

  private computeRuleSets(src: string, dst: string, port: number): HTTPRuleSet[] {
    const srcId = this.identityOf(src);
    const dstId = this.identityOf(dst);
    const out: HTTPRuleSet[] = [];
    const sides = [
      ['EGRESS', this.endpoints.get(src), dstId],
      ['INGRESS', this.endpoints.get(dst), srcId],
    ] as const;
    for (const [direction, ep, peerId] of sides) {
      const v = sideVerdict(ep, direction, peerId, TCP, port, 'http');
      if (v.kind === 'none') continue;
      const namespace = ep?.namespace ?? 'default';
      if (v.kind === 'deny') return [{ direction, rules: [], namespace }];
      const rules: PortRuleHTTP[] = [];
      for (const e of v.rules) if (e.l7?.parser === 'http') rules.push(...e.l7.rules);
      // Cilium's L7 wildcard: a rule without L7 on the same port admits every request
      if (v.wildcard) rules.push({ pos: { file: '(l7 wildcard)', line: 0, column: 0 } });
      out.push({ direction, rules, policies: v.policies, namespace });
    }
    if (out.length === 0) return [{ direction: 'INGRESS', rules: [] }];
    return out;
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
  const send = (m: ProxyMessage) => process.stdout.write(encode(m));
  let flowLines: string[] = [];
  const flushFlowLines = () => {
    const lines = flowLines;
    flowLines = [];
    process.stdout.write(lines.join(''));
  };
  const mirror = new PolicyMirror();
  // read now, as root: after the uid drop below the directory may be unreadable
  const loaded = values.secrets === undefined ? undefined : loadSecretsDir(values.secrets);
  const secrets = loaded?.resolver;
  const proxy = new HTTPProxy({
    lookup: (c) => mirror.lookup(c),
    // the proxy hands records over in batches (one per event-loop turn): one write for a batch
    onFlow: (flow) => {
      flowLines.push(encode({ type: 'flow', flow }));
      if (flowLines.length === 1) queueMicrotask(flushFlowLines);
    },
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
  const uid = Number(values.uid);
  if (process.getuid?.() === 0 && uid !== 0) {
    process.setgroups?.([]);
    process.setgid?.(uid);
    process.setuid?.(uid);
  }
  process.stdin.on(
    'data',
    lineDecoder<AgentMessage>(
      (m) => {
        if (m.type === 'snapshot') {
          mirror.load(m.snapshot);
          send({ type: 'ack', version: m.snapshot.version });
        } else if (m.type === 'stop') {
          void proxy.close().then(() => process.exit(0));
        }
      },
      (line, e) => send({ type: 'error', message: `bad message (${e.message}): ${line.slice(0, 80)}` }),
    ),
  );
  // the agent went away: no more policy updates, so stop judging with a mirror that ages
  process.stdin.on('end', () => void proxy.close().then(() => process.exit(0)));
  process.on('SIGTERM', () => void proxy.close().then(() => process.exit(0)));
  send({
    type: 'ready',
    parser: 'http',
    address: addr.address,
    port: addr.port,
    uid: process.getuid?.() ?? -1,
  });
}

if (import.meta.url === `file://${process.argv[1]}`) {
  main().catch((e: Error) => {
    process.stderr.write(`http proxy: ${e.message}\n`);
    process.exit(1);
  });
}

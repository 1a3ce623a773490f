// The Kafka proxy's copy of the agent's policy mirror (../ipc.ts): replaced whole on each
// snapshot; per connection, the rule sets of both sides from sideVerdict, as `decide` builds them.

import type { PortRuleKafka } from '../../policy-api/types.ts';
import type { ConnectionInfo } from '../http/context.ts';
import { sideVerdict } from '../ipc.ts';
import { SnapshotMirror } from '../mirror.ts';
import type { KafkaContext, KafkaRuleSet } from './judge.ts';

const TCP = 6;
const WILDCARD: PortRuleKafka = { pos: { file: '(l7 wildcard)', line: 0, column: 0 } };

export class KafkaMirror extends SnapshotMirror<KafkaRuleSet[]> {
  /**
   * Every rule set a request on this connection must pass. A side that now denies, or a
   * connection neither side redirects any more, gets a set without rules: it admits nothing.
   */
  ruleSets(src: string, dst: string, port: number): KafkaRuleSet[] {
    return this.cached(`${src}|${dst}|${port}`, () => this.computeRuleSets(src, dst, port));
  }

  private computeRuleSets(src: string, dst: string, port: number): KafkaRuleSet[] {
    const out: KafkaRuleSet[] = [];
    const sides = [
      ['EGRESS', this.endpoints.get(src), this.identityOf(dst)],
      ['INGRESS', this.endpoints.get(dst), this.identityOf(src)],
    ] as const;
    for (const [direction, ep, peerId] of sides) {
      const v = sideVerdict(ep, direction, peerId, TCP, port, 'kafka');
      if (v.kind === 'none') continue;
      if (v.kind === 'deny') {
        out.length = 0;
        out.push({ direction, rules: [] });
        break;
      }
      const rules: PortRuleKafka[] = [];
      for (const e of v.rules) if (e.l7?.parser === 'kafka') rules.push(...e.l7.rules);
      // Cilium's L7 wildcard: a rule without L7 on the same port admits every request
      if (v.wildcard) rules.push(WILDCARD);
      out.push({ direction, rules, policies: v.policies });
    }
    if (out.length === 0) out.push({ direction: 'INGRESS', rules: [] });
    return out;
  }

  /** The connection's context, or undefined (refused) when no side of it redirects to Kafka. */
  lookup(c: ConnectionInfo): KafkaContext | undefined {
    if (!this.loaded) return undefined;
    const src = c.remote.address.replace(/^::ffff:/, '');
    const dst = c.originalDst.address;
    const port = c.originalDst.port;
    const first = this.ruleSets(src, dst, port);
    if (first.every((s) => s.rules.length === 0)) return undefined;
    return {
      sourceIdentity: this.identityOf(src),
      source: this.peer(src),
      destination: this.peer(dst),
      originalDst: c.originalDst,
      // the side whose rules apply (egress judged first), not whether the source has redirects
      direction: first.some((x) => x.direction === 'EGRESS') ? 'EGRESS' : 'INGRESS',
      // the mirror of the moment: a new snapshot applies to the next request
      ruleSets: () => this.ruleSets(src, dst, port),
    };
  }
}

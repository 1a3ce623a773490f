// The Kafka proxy's copy of the agent's policy mirror (../ipc.ts): replaced whole on each
// snapshot; per connection, the rule sets of both sides (SnapshotMirror.tcpRuleSets), as `decide` builds them.

import type { ConnectionInfo } from '../http/context.ts';
import { SnapshotMirror } from '../mirror.ts';
import type { KafkaContext, KafkaRuleSet } from './judge.ts';

export class KafkaMirror extends SnapshotMirror<KafkaRuleSet[]> {
  /**
   * Every rule set a request on this connection must pass. A side that now denies, or a
   * connection neither side redirects any more, gets a set without rules: it admits nothing.
   */
  ruleSets(src: string, dst: string, port: number): KafkaRuleSet[] {
    return this.cached(`${src}|${dst}|${port}`, () => this.tcpRuleSets(src, dst, port, 'kafka'));
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

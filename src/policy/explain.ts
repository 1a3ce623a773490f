// `policy show`: an endpoint's distilled policy as readable lines — per direction whether it is
// enforced and default-deny (audited or not), then its MapState entries grouped by peer identity
// (AUDIT: a deny of an audited policy, which only reports).

import { refText } from './endpoint.ts';
import { formatPortSpec } from './ports.ts';
import type { EndpointPolicy, MapStateEntry, PolicyEngineAPI, TrafficDirection } from './types.ts';

function peerText(id: number, engine: Pick<PolicyEngineAPI, 'labelsOf'>): string {
  if (id === 0) return 'any peer (identity 0)';
  const labels = engine.labelsOf(id).filter((l) => !l.startsWith('k8s:io.cilium.k8s.'));
  const cidr = labels.filter((l) => l.startsWith('cidr:'));
  // CIDR identities carry every covering prefix: the longest one names the address.
  const plen = (l: string) => Number(l.slice(l.lastIndexOf('/') + 1));
  const longest = cidr.reduce<string | undefined>(
    (a, l) => (a === undefined || plen(l) > plen(a) ? l : a),
    undefined,
  );
  const shown = longest !== undefined ? [...labels.filter((l) => !l.startsWith('cidr:')), longest] : labels;
  return `identity ${id} (${shown.join(' ')})`;
}

function l7Text(e: MapStateEntry): string {
  if (e.l7 === undefined) return '';
  const rules = e.l7.rules.map((r) => {
    const { pos: _pos, ...rest } = r as { pos: unknown } & Record<string, unknown>;
    return JSON.stringify(rest);
  });
  return ` → ${e.l7.parser} proxy: ${rules.join(' | ')}`;
}

export function explainEndpointPolicy(
  ep: EndpointPolicy,
  engine: Pick<PolicyEngineAPI, 'labelsOf'>,
): string[] {
  const out: string[] = [`endpoint ${ep.endpoint} identity ${ep.identity}`];
  if (ep.selectedBy.length === 0) out.push('  selected by no rule');
  else for (const r of ep.selectedBy) out.push(`  selected by ${refText(r)}`);
  for (const d of ['INGRESS', 'EGRESS'] as TrafficDirection[]) {
    const pol = d === 'INGRESS' ? ep.ingress : ep.egress;
    const word = d === 'INGRESS' ? 'ingress' : 'egress';
    const state = !pol.enforced
      ? 'not enforced (everything allowed)'
      : pol.defaultDeny
        ? pol.auditDefaultDeny === true
          ? 'enforced, default-deny audited (audit mode: what it would drop passes as AUDIT)'
          : 'enforced, default-deny'
        : 'enforced, default-allow below denies';
    out.push(`${word}: ${state}`);
    if (!pol.enforced) continue;
    const byPeer = new Map<number, MapStateEntry[]>();
    for (const e of ep.entries) {
      if (e.key.direction !== d) continue;
      const list = byPeer.get(e.key.identity);
      if (list === undefined) byPeer.set(e.key.identity, [e]);
      else list.push(e);
    }
    if (byPeer.size === 0) out.push('  (no entries)');
    for (const id of [...byPeer.keys()].sort((a, b) => a - b)) {
      out.push(`  ${peerText(id, engine)}`);
      for (const e of byPeer.get(id)!) {
        const port = formatPortSpec({ proto: e.key.proto, lo: e.key.portLo, hi: e.key.portHi });
        const from = e.derivedFrom.map(refText).join('; ');
        out.push(`    ${port.padEnd(14)} ${e.verdict.toUpperCase()}${l7Text(e)}  [from ${from}]`);
      }
    }
  }
  return out;
}

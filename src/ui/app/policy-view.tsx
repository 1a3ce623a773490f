// The policy view, as the Network Policy Editor draws it: ingress peers left, the endpoint in the
// middle, egress peers right, grouped in-namespace / in-cluster / outside; per rule entry its
// file:line and the flows it decided in the window; an entry that matched nothing is marked.

import { useEffect, useState } from 'preact/hooks';
import { endpointText, portText, verdictClass } from '../domain/fields.ts';
import {
  PEER_GROUPS,
  type PeerGroup,
  type PolicyView,
  type RuleCardView,
  type SidePolicy,
} from '../domain/policy-view.ts';
import { policyName, type UIFlow } from '../domain/types.ts';
import type { Info } from './main.tsx';

const GROUP_TITLE: Record<PeerGroup, string> = {
  'in-namespace': 'In namespace',
  'in-cluster': 'In cluster',
  outside: 'Outside the cluster',
};

function RuleCard({
  r,
  flows,
  onFlow,
  ingress,
}: {
  r: RuleCardView;
  flows: Map<number, UIFlow>;
  onFlow: (s: number) => void;
  ingress: boolean;
}) {
  const list = r.flows.map((s) => flows.get(s)).filter((u): u is UIFlow => u !== undefined);
  return (
    <div
      class={`rcard ${r.effect}${r.matchedNothing ? ' nothing' : ''}`}
      data-rule={r.key}
      data-testid="rule-card"
    >
      <div class="title">
        {policyName(r)}{' '}
        <span class="tag">
          {r.section}[{r.entryIndex}]
        </span>
        {r.effect === 'deny' && <span class="tag">deny</span>}
        {r.matchedNothing && <span class="tag nothing">matched no flow</span>}
      </div>
      <div class="where">
        {r.file}:{r.line}:{r.column}
      </div>
      <div class="peers">{r.groupPeers.join(' · ')}</div>
      <div class="ports">
        {r.ports.length > 0 ? r.ports.join(', ') : 'all ports'}
        {r.l7.length > 0 ? ` · ${r.l7.join(' · ')}` : ''}
      </div>
      {list.length > 0 && (
        <ul data-testid="rule-flows">
          {list.slice(0, 8).map((u) => (
            <li
              key={u.seq}
              data-seq={u.seq}
              onClick={() => onFlow(u.seq)}
              onKeyDown={(e) => e.key === 'Enter' && onFlow(u.seq)}
            >
              <span class={`verdict ${verdictClass(u.flow.verdict)}`}>{u.flow.verdict}</span>{' '}
              <span class="mono">
                {ingress
                  ? endpointText(u.flow.source, u.flow.IP?.source)
                  : endpointText(u.flow.destination, u.flow.IP?.destination)}{' '}
                {portText(u.flow)}
              </span>
            </li>
          ))}
          {list.length > 8 && <li>+{list.length - 8} more</li>}
        </ul>
      )}
    </div>
  );
}

function Side({
  title,
  side,
  flows,
  onFlow,
  ingress,
}: {
  title: string;
  side: SidePolicy;
  flows: Map<number, UIFlow>;
  onFlow: (s: number) => void;
  ingress: boolean;
}) {
  return (
    <div class="side" data-testid={ingress ? 'ingress' : 'egress'}>
      <h2>
        {title} ·{' '}
        {side.enforced ? (side.defaultDeny ? 'default deny' : 'default allow below denies') : 'not enforced'}
      </h2>
      {PEER_GROUPS.map((g) => (
        <div class="group" key={g} data-group={g}>
          <h4>{GROUP_TITLE[g]}</h4>
          {side.groups[g].length === 0 ? (
            <div class="none">no rule</div>
          ) : (
            side.groups[g].map((r) => (
              <RuleCard key={r.key} r={r} flows={flows} onFlow={onFlow} ingress={ingress} />
            ))
          )}
        </div>
      ))}
      {side.unmatched.length > 0 && (
        <div class="group">
          <h4>Flows no rule decided ({side.unmatched.length})</h4>
          <div class="none">{side.enforced ? 'dropped by default deny' : 'allowed: policy not enforced'}</div>
        </div>
      )}
    </div>
  );
}

export function PolicyViewPage(props: {
  info: Info | undefined;
  endpoint: string;
  onEndpoint: (e: string) => void;
  version: number;
  flows: UIFlow[];
  onFlow: (seq: number) => void;
}) {
  const [view, setView] = useState<PolicyView | undefined>();
  const [error, setError] = useState<string | undefined>();
  const endpoints = props.info?.endpoints ?? [];
  const endpoint = props.endpoint || endpoints[0] || '';
  useEffect(() => {
    if (!props.info?.policies || endpoint === '') return;
    fetch(`/api/policy?endpoint=${encodeURIComponent(endpoint)}`)
      .then(async (r) => {
        const body = (await r.json()) as PolicyView & { error?: string };
        if (!r.ok) {
          setError(body.error ?? r.statusText);
          setView(undefined);
        } else {
          setError(undefined);
          setView(body);
        }
      })
      .catch((e: Error) => setError(e.message));
  }, [endpoint, props.info, Math.floor(props.version / 20)]);
  if (props.info && !props.info.policies)
    return (
      <div class="notice">
        No policies loaded: start <code>seawall ui</code> with <code>--policies DIR</code> (and{' '}
        <code>-f</code> manifests) to see rules and file:line.
      </div>
    );
  const bySeq = new Map(props.flows.map((u) => [u.seq, u]));
  return (
    <div style={{ display: 'flex', flexDirection: 'column', flex: 1, minHeight: 0 }}>
      <div class="bar">
        <label>
          Endpoint
          <select
            data-testid="endpoint"
            value={endpoint}
            onChange={(e) => props.onEndpoint((e.target as HTMLSelectElement).value)}
          >
            {endpoints.map((n) => (
              <option key={n} value={n}>
                {n}
              </option>
            ))}
          </select>
        </label>
        {error && <span class="err">{error}</span>}
      </div>
      <div class="policy">
        {view && (
          <div class="npe" data-testid="policy-view">
            <Side title="Ingress" side={view.ingress} flows={bySeq} onFlow={props.onFlow} ingress />
            <div class="center">
              <div class="ep">{view.endpoint}</div>
              <div class="meta">identity {view.identity}</div>
              <div class="meta">
                {view.labels
                  .filter((l) => !l.includes('io.cilium.k8s') && !l.includes('io.kubernetes.pod.namespace'))
                  .join(' ')}
              </div>
              <div class="dir">← ingress from peers · egress to peers →</div>
            </div>
            <Side title="Egress" side={view.egress} flows={bySeq} onFlow={props.onFlow} ingress={false} />
          </div>
        )}
      </div>
    </div>
  );
}

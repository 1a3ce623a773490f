// The policy view, as the Network Policy Editor draws it: ingress peers left, the endpoint in the
// middle, egress peers right, grouped in-namespace / in-cluster / outside; per rule entry its
// file:line and the flows it decided in the window; an entry that matched nothing is marked. A
// line per rule card joins its peers to the endpoint (SVG over the columns, measured from the
// laid-out cards), labelled with its ports and coloured allowed / denied / matched nothing.

import type { RefObject } from 'preact';
import { useEffect, useLayoutEffect, useRef, useState } from 'preact/hooks';
import {
  type Box,
  CONNECTOR_STATUSES,
  type ConnectorStatus,
  connectorLabel,
  connectorPath,
  connectorStatus,
  type Point,
  spreadAnchors,
  undecidedConnector,
} from '../domain/connectors.ts';
import { endpointText, portText, verdictClass } from '../domain/fields.ts';
import {
  PEER_GROUPS,
  type PeerGroup,
  type PolicyView,
  type RuleCardView,
  type SidePolicy,
} from '../domain/policy-view.ts';
import { policyName, type UIFlow } from '../domain/types.ts';
import { ArrowHeads } from './arrowheads.tsx';
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
      data-connect={`${ingress ? 'ingress' : 'egress'}/${r.group}/${r.key}`}
      data-status={connectorStatus(r)}
      data-label={connectorLabel(r)}
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
      <FlowList list={list} onFlow={onFlow} ingress={ingress} />
    </div>
  );
}

function FlowList({
  list,
  onFlow,
  ingress,
}: {
  list: UIFlow[];
  onFlow: (s: number) => void;
  ingress: boolean;
}) {
  if (list.length === 0) return null;
  return (
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
  );
}

/** The flows no entry decided, with what happened to them (default deny, or no rule needed). */
function Undecided({
  side,
  flows,
  onFlow,
  ingress,
}: {
  side: SidePolicy;
  flows: Map<number, UIFlow>;
  onFlow: (s: number) => void;
  ingress: boolean;
}) {
  const list = side.unmatched.map((s) => flows.get(s)).filter((u): u is UIFlow => u !== undefined);
  const c = undecidedConnector(
    side,
    list.map((u) => u.flow.verdict),
  );
  return (
    <div
      class="group"
      data-group="undecided"
      data-connect={`${ingress ? 'ingress' : 'egress'}/undecided`}
      data-status={c.status}
      data-label={c.label}
    >
      <h4>Flows no rule decided ({side.unmatched.length})</h4>
      <div class="none">
        {c.status === 'denied'
          ? 'dropped by default deny'
          : c.status === 'mixed'
            ? 'some dropped by default deny, some allowed without a rule (host traffic is always allowed)'
            : side.enforced
              ? 'allowed without a rule (host traffic is always allowed; deny rules only)'
              : 'allowed: policy not enforced'}
      </div>
      <FlowList list={list} onFlow={onFlow} ingress={ingress} />
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
      {side.unmatched.length > 0 && <Undecided side={side} flows={flows} onFlow={onFlow} ingress={ingress} />}
    </div>
  );
}

interface Connector {
  id: string;
  status: ConnectorStatus;
  label: string;
  from: Point;
  to: Point;
  ingress: boolean;
}

function boxOf(el: Element, base: DOMRect): Box {
  const r = el.getBoundingClientRect();
  return { left: r.left - base.left, top: r.top - base.top, width: r.width, height: r.height };
}

/** Where each card's line starts and ends, from the laid-out page (re-measured on resize/scroll). */
function measure(root: HTMLElement): Connector[] {
  const base = root.getBoundingClientRect();
  const center = root.querySelector('.center');
  if (center === null) return [];
  const ep = boxOf(center, base);
  const out: Connector[] = [];
  for (const ingress of [true, false]) {
    const side = ingress ? 'ingress' : 'egress';
    const cards = [...root.querySelectorAll(`[data-testid="${side}"] [data-connect]`)].map((el) => {
      const b = boxOf(el, base);
      // The card's title line, so a long card's line does not leave from the middle of its flows.
      const y = b.top + Math.min(b.height / 2, 22);
      return {
        el,
        at: ingress ? { x: b.left + b.width, y } : { x: b.left, y },
      };
    });
    cards.sort((a, b) => a.at.y - b.at.y);
    // Lines meet the endpoint spread down its side, in the cards' order, so they do not cross.
    const anchors = spreadAnchors(ep, ingress ? 'left' : 'right', cards.length);
    cards.forEach((c, i) => {
      out.push({
        id: c.el.getAttribute('data-connect') ?? '',
        status: (c.el.getAttribute('data-status') ?? 'nothing') as ConnectorStatus,
        label: c.el.getAttribute('data-label') ?? '',
        from: ingress ? c.at : anchors[i]!,
        to: ingress ? anchors[i]! : c.at,
        ingress,
      });
    });
  }
  return out;
}

function Connectors({ root, view }: { root: RefObject<HTMLDivElement>; view: PolicyView }) {
  const [lines, setLines] = useState<Connector[]>([]);
  const [size, setSize] = useState({ w: 0, h: 0 });
  useLayoutEffect(() => {
    const el = root.current;
    if (!el) return;
    let frame = 0;
    const update = () => {
      frame = 0;
      setLines(measure(el));
      setSize({ w: el.scrollWidth, h: el.scrollHeight });
    };
    const later = () => {
      if (frame === 0) frame = requestAnimationFrame(update);
    };
    update();
    const ro = new ResizeObserver(later);
    ro.observe(el);
    // The endpoint box is sticky: scrolling moves it against the cards.
    const scroller = el.parentElement;
    scroller?.addEventListener('scroll', later);
    return () => {
      ro.disconnect();
      scroller?.removeEventListener('scroll', later);
      if (frame !== 0) cancelAnimationFrame(frame);
    };
  }, [view]);
  return (
    <svg class="connectors" width={size.w} height={size.h} data-testid="connectors" aria-hidden="true">
      <ArrowHeads idPrefix="conn-" statuses={CONNECTOR_STATUSES} paint={(s) => ({ class: `head ${s}` })} />
      {lines.map((c) => {
        // The label sits by the peer's end: near the endpoint the lines converge.
        const peer = c.ingress ? c.from : c.to;
        return (
          <g
            key={c.id}
            class={`connector ${c.status}`}
            data-connector={c.id}
            data-status={c.status}
            data-x1={c.from.x.toFixed(1)}
            data-y1={c.from.y.toFixed(1)}
            data-x2={c.to.x.toFixed(1)}
            data-y2={c.to.y.toFixed(1)}
          >
            <path d={connectorPath(c.from, c.to)} marker-end={`url(#conn-${c.status})`} />
            <text
              x={c.ingress ? peer.x + 8 : peer.x - 14}
              y={peer.y - 5}
              text-anchor={c.ingress ? 'start' : 'end'}
            >
              {c.label}
            </text>
          </g>
        );
      })}
    </svg>
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
  const npe = useRef<HTMLDivElement>(null);
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
          <div class="npe" data-testid="policy-view" ref={npe}>
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
            <Connectors root={npe} view={view} />
          </div>
        )}
      </div>
    </div>
  );
}

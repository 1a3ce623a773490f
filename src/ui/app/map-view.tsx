// The service map: a namespace picker and Hubble UI's toggles, cards laid out by dagre, arrows
// coloured by verdict and labelled by port/protocol. Click a workload card for its policy.

import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import {
  type EdgeRoute,
  LABEL_LINE,
  layoutKey,
  layoutMap,
  MAX_L7_LINES,
  type MapLayout,
  type Placed,
  pairKey,
} from '../domain/layout.ts';
import { type Arrow, buildServiceMap, busiestNamespace, type Card, namespacesOf } from '../domain/map.ts';
import { ArrowHeads } from './arrowheads.tsx';
import type { FlowState } from './main.tsx';

function CardBox({ c, p, onPolicy }: { c: Card; p: Placed; onPolicy: (ep: string) => void }) {
  // An entity card's addresses first (who the world was), then the L7 endpoints seen there.
  const all = [...c.addresses.map((t) => ({ t, addr: true })), ...c.l7.map((t) => ({ t, addr: false }))];
  const lines = all.slice(0, MAX_L7_LINES);
  const more = all.length - lines.length;
  const clickable = c.kind === 'workload' || c.kind === 'kube-dns';
  return (
    // biome-ignore lint/a11y/useSemanticElements: an SVG group cannot be a <button>
    <g
      class={`card kind-${c.kind}`}
      data-card-id={c.id}
      data-kind={c.kind}
      transform={`translate(${p.x},${p.y})`}
      style={clickable ? { cursor: 'pointer' } : undefined}
      role="button"
      tabIndex={clickable ? 0 : -1}
      onClick={() => clickable && c.namespace && onPolicy(`${c.namespace}/${c.name}`)}
      onKeyDown={(e) => e.key === 'Enter' && clickable && c.namespace && onPolicy(`${c.namespace}/${c.name}`)}
    >
      <title>{c.id}</title>
      <rect class="box" width={p.width} height={p.height} rx={10} />
      <text class="name" x={14} y={21}>
        {c.name.length > 26 ? `${c.name.slice(0, 25)}…` : c.name}
      </text>
      <text class="ns" x={14} y={37}>
        {c.namespace ? c.namespace : c.kind === 'world' ? 'outside the cluster' : 'reserved identity'}
      </text>
      <rect class="badge" x={p.width - 58} y={10} width={46} height={18} rx={9} />
      <text class="ns" x={p.width - 35} y={23} text-anchor="middle">
        {c.flows}
      </text>
      {lines.length > 0 && <line class="sep" x1={10} x2={p.width - 10} y1={46} y2={46} />}
      {lines.map(({ t, addr }, i) =>
        addr ? (
          <text class="l7 addr" key={`a${t}`} x={14} y={62 + i * 17} data-address={t}>
            {t.length > 30 ? `${t.slice(0, 29)}…` : t}
          </text>
        ) : (
          <text class="l7" key={t} x={14} y={62 + i * 17} data-l7={t}>
            {t.length > 30 ? `${t.slice(0, 29)}…` : t}
          </text>
        ),
      )}
      {more > 0 && (
        <text class="ns" x={14} y={62 + lines.length * 17}>
          +{more} more
        </text>
      )}
    </g>
  );
}

/** A smooth path through dagre's route points (quadratic segments through the midpoints). */
function smooth(pts: { x: number; y: number }[]): string {
  if (pts.length < 3) return `M ${pts.map((p) => `${p.x} ${p.y}`).join(' L ')}`;
  let d = `M ${pts[0]!.x} ${pts[0]!.y}`;
  for (let i = 1; i < pts.length - 1; i++) {
    const p = pts[i]!;
    const n = pts[i + 1]!;
    const mx = i === pts.length - 2 ? n.x : (p.x + n.x) / 2;
    const my = i === pts.length - 2 ? n.y : (p.y + n.y) / 2;
    d += ` Q ${p.x} ${p.y} ${mx} ${my}`;
  }
  return d;
}

function ArrowPath(props: {
  a: Arrow;
  from: Placed;
  to: Placed | undefined;
  route: EdgeRoute | undefined;
  lane: number;
  lanes: number;
}) {
  const { a, from, to, route, lane, lanes } = props;
  let d: string;
  let lx: number;
  let ly: number;
  if (a.from !== a.to && route === undefined && to !== undefined) {
    // Not routed by dagre (traffic from world, host…): a curve between the facing sides.
    const forward = to.x >= from.x + from.width;
    const x1 = forward ? from.x + from.width : from.x;
    const x2 = forward ? to.x : to.x + to.width;
    const y1 = from.y + Math.min(from.height / 2, 23) + lane * 6;
    const y2 = to.y + Math.min(to.height / 2, 23) + lane * 6;
    const c = Math.max(40, Math.abs(x2 - x1) / 2) * (forward ? 1 : -1);
    d = `M ${x1} ${y1} C ${x1 + c} ${y1}, ${x2 - c} ${y2}, ${x2} ${y2}`;
    // The label sits a quarter of the way along, near its source, clear of the routed labels.
    const t = 0.25;
    const u = 1 - t;
    lx = u * u * u * x1 + 3 * u * u * t * (x1 + c) + 3 * u * t * t * (x2 - c) + t * t * t * x2;
    ly = u * u * u * y1 + 3 * u * u * t * y1 + 3 * u * t * t * y2 + t * t * t * y2 - 5;
  } else if (a.from === a.to || route === undefined) {
    const x = from.x + from.width;
    const y = from.y + 14 + lane * 16;
    d = `M ${x} ${y} C ${x + 50} ${y - 30}, ${x + 50} ${y + 40}, ${x} ${y + 20}`;
    lx = x + 40;
    ly = y + 6;
  } else {
    const off = (lane - (lanes - 1) / 2) * 5;
    d = smooth(route.points.map((p) => ({ x: p.x, y: p.y + off })));
    lx = route.label.x;
    ly = route.label.y - (lanes * LABEL_LINE) / 2 + lane * LABEL_LINE + 11;
  }
  const total = a.counts.forwarded + a.counts.dropped + a.counts.audit + a.counts.other;
  return (
    <g class={`arrow ${a.status}`} data-arrow-id={a.id} data-status={a.status}>
      <title>
        {a.from} → {a.to} {a.port}: {a.counts.forwarded} forwarded, {a.counts.dropped} dropped,{' '}
        {a.counts.audit} audit
      </title>
      <path d={d} marker-end={`url(#head-${a.status})`} />
      <text x={lx} y={ly} text-anchor="middle">
        {a.port}
        {total > 1 ? ` ×${total}` : ''}
      </text>
    </g>
  );
}

const STATUSES = ['forwarded', 'dropped', 'audit', 'mixed', 'other'] as const;
const COLOURS: Record<(typeof STATUSES)[number], string> = {
  forwarded: 'var(--fwd)',
  dropped: 'var(--drop)',
  audit: 'var(--audit)',
  mixed: 'var(--mixed)',
  other: 'var(--other)',
};

/**
 * The flow state the map is drawn from: the stream's, at most once per max(500 ms, 3 × the last
 * build), so that a busy stream over a large map leaves the page most of its time (building the
 * map of 10,000 flows takes a few hundred ms). The first window is drawn at once.
 */
function useThrottledState(
  state: FlowState,
  lastBuild: { current: { at: number; cost: number } },
): FlowState {
  const [shown, setShown] = useState(state);
  useEffect(() => {
    if (shown.version === state.version) return;
    const { at, cost } = lastBuild.current;
    const due = at + Math.max(500, 3 * cost) - performance.now();
    const t = setTimeout(() => setShown(state), Math.max(0, due));
    return () => clearTimeout(t);
  }, [state.version, shown.version]);
  return shown;
}

export function MapView({ state: live, onPolicy }: { state: FlowState; onPolicy: (ep: string) => void }) {
  const lastBuild = useRef({ at: 0, cost: 0 });
  const state = useThrottledState(live, lastBuild);
  const flows = useMemo(() => state.flows.map((u) => u.flow), [state.version]);
  const namespaces = useMemo(() => namespacesOf(flows), [flows]);
  const [ns, setNs] = useState<string>('');
  const [hideHost, setHideHost] = useState(false);
  const [hideKubeDNS, setHideKubeDNS] = useState(false);
  const [hideRemoteNode, setHideRemoteNode] = useState(false);
  const namespace = ns !== '' ? ns : busiestNamespace(flows);
  const laid = useRef<{ key: string; layout: MapLayout } | undefined>(undefined);
  const { map, layout } = useMemo(() => {
    const t0 = performance.now();
    const map = buildServiceMap(flows, {
      ...(namespace !== undefined ? { namespace } : {}),
      hideHost,
      hideKubeDNS,
      hideRemoteNode,
    });
    // The steady cost (a relayout is rare): what paces the next rebuild.
    const cost = performance.now() - t0;
    // Same cards and arrows as last time: the same places (counts changed, not the graph).
    const key = layoutKey(map);
    if (laid.current?.key !== key) laid.current = { key, layout: layoutMap(map) };
    lastBuild.current = { at: performance.now(), cost };
    return { map, layout: laid.current.layout };
  }, [flows, namespace, hideHost, hideKubeDNS, hideRemoteNode]);
  const lanes = new Map<string, { next: number; total: number }>();
  for (const a of map.arrows) {
    const k = pairKey(a.from, a.to);
    const l = lanes.get(k) ?? { next: 0, total: 0 };
    l.total++;
    lanes.set(k, l);
  }
  const laneOf = (a: Arrow) => {
    const l = lanes.get(pairKey(a.from, a.to))!;
    return [l.next++, l.total] as const;
  };
  // Fit the map to the pane's width (down to 60 %); larger maps scroll.
  const pane = useRef<HTMLDivElement>(null);
  const [paneWidth, setPaneWidth] = useState(1200);
  useEffect(() => {
    const el = pane.current;
    if (!el) return;
    const ro = new ResizeObserver(() => setPaneWidth(el.clientWidth));
    ro.observe(el);
    return () => ro.disconnect();
  }, []);
  const w = Math.max(layout.width, 1);
  const h = Math.max(layout.height, 1);
  const scale = Math.min(1, Math.max(0.6, (paneWidth - 24) / w));
  return (
    <div style={{ display: 'flex', flexDirection: 'column', flex: 1, minHeight: 0 }}>
      <div class="bar">
        <label>
          Namespace
          <select
            data-testid="namespace"
            value={namespace ?? ''}
            onChange={(e) => setNs((e.target as HTMLSelectElement).value)}
          >
            {namespaces.map((n) => (
              <option key={n} value={n}>
                {n}
              </option>
            ))}
          </select>
        </label>
        <label>
          <input
            type="checkbox"
            data-testid="hide-host"
            checked={hideHost}
            onChange={() => setHideHost(!hideHost)}
          />
          hide host
        </label>
        <label>
          <input
            type="checkbox"
            data-testid="hide-kube-dns"
            checked={hideKubeDNS}
            onChange={() => setHideKubeDNS(!hideKubeDNS)}
          />
          hide kube-dns
        </label>
        <label>
          <input
            type="checkbox"
            data-testid="hide-remote-node"
            checked={hideRemoteNode}
            onChange={() => setHideRemoteNode(!hideRemoteNode)}
          />
          hide remote-node
        </label>
        <span class="legend">
          <span>
            <i style={{ background: 'var(--fwd)' }} />
            forwarded
          </span>
          <span>
            <i style={{ background: 'var(--drop)' }} />
            dropped
          </span>
          <span>
            <i style={{ background: 'var(--audit)' }} />
            audit
          </span>
          <span>
            <i style={{ background: 'var(--mixed)' }} />
            mixed
          </span>
        </span>
        <span class="count">
          {map.cards.length} cards · {map.arrows.length} arrows
        </span>
      </div>
      <div class="map" data-testid="map" ref={pane}>
        {map.cards.length === 0 ? (
          <div class="empty">No flows yet.</div>
        ) : (
          <svg width={w * scale} height={h * scale} viewBox={`0 0 ${w} ${h}`} data-scale={scale.toFixed(2)}>
            <title>Service map</title>
            <ArrowHeads idPrefix="head-" statuses={STATUSES} paint={(s) => ({ fill: COLOURS[s] })} />
            {map.arrows.map((a) => {
              const f = layout.cards.get(a.from);
              const [lane, total] = laneOf(a);
              return f ? (
                <ArrowPath
                  key={a.id}
                  a={a}
                  from={f}
                  to={layout.cards.get(a.to)}
                  route={layout.edges.get(pairKey(a.from, a.to))}
                  lane={lane}
                  lanes={total}
                />
              ) : null;
            })}
            {map.cards.map((c) => {
              const p = layout.cards.get(c.id);
              return p ? <CardBox key={c.id} c={c} p={p} onPolicy={onPolicy} /> : null;
            })}
          </svg>
        )}
      </div>
    </div>
  );
}

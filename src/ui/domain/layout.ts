// Places the map's cards with dagre (layered, left to right, as traffic reads: clients on the
// left, servers on the right). Pure: the same map always gets the same positions.

import { Graph, layout } from '@dagrejs/dagre';
import type { ServiceMap } from './map.ts';

export interface Placed {
  id: string;
  x: number;
  y: number;
  width: number;
  height: number;
}

export interface EdgeRoute {
  /** dagre's route from the source card to the destination card (around other cards). */
  points: { x: number; y: number }[];
  /** Centre of the label block (every port of the pair, stacked). */
  label: { x: number; y: number };
}

export interface MapLayout {
  cards: Map<string, Placed>;
  /** Per `from|to` pair of cards (self loops and traffic from reserved cards are not routed). */
  edges: Map<string, EdgeRoute>;
  width: number;
  height: number;
}

export const CARD_WIDTH = 210;
const HEADER = 46;
const L7_LINE = 17;
/** Cards list at most this many L7 endpoints; the rest is a "+N more" line. */
export const MAX_L7_LINES = 6;

export const LABEL_LINE = 15;

export function pairKey(from: string, to: string): string {
  return `${from}|${to}`;
}

export function cardHeight(l7: number): number {
  const lines = Math.min(l7, MAX_L7_LINES) + (l7 > MAX_L7_LINES ? 1 : 0);
  return HEADER + (lines > 0 ? 8 + lines * L7_LINE : 0);
}

/**
 * What the layout depends on: the cards (and their heights) and the ranked pairs with their port
 * labels. New flows on known arrows change counts only, and keep the key: the map is not laid out
 * again (dagre takes about a second for 200 cards).
 */
export function layoutKey(m: ServiceMap): string {
  const cards = m.cards.map((c) => `${c.id}:${cardHeight(c.l7.length + c.addresses.length)}`);
  const arrows = m.arrows.map((a) => `${a.from}|${a.to}|${a.port}`);
  return `${cards.join(',')}\n${arrows.join(',')}`;
}

export function layoutMap(m: ServiceMap): MapLayout {
  const g = new Graph({ multigraph: false });
  g.setGraph({ rankdir: 'LR', nodesep: 30, ranksep: 70, edgesep: 12, marginx: 24, marginy: 24 });
  g.setDefaultEdgeLabel(() => ({}));
  for (const c of m.cards)
    g.setNode(c.id, { width: CARD_WIDTH, height: cardHeight(c.l7.length + c.addresses.length) });
  const pairs = new Map<string, { from: string; to: string; ports: string[] }>();
  // Traffic from world, host and the other reserved cards does not rank the map: world is both
  // a client and a server of most clusters, and ranking by it folds the map into a loop.
  const entity = new Set(
    m.cards.filter((c) => c.kind !== 'workload' && c.kind !== 'kube-dns').map((c) => c.id),
  );
  for (const a of m.arrows) {
    if (a.from === a.to || entity.has(a.from)) continue;
    const k = pairKey(a.from, a.to);
    const p = pairs.get(k) ?? { from: a.from, to: a.to, ports: [] };
    p.ports.push(a.port);
    pairs.set(k, p);
  }
  // Labels get room of their own: dagre places them and routes the edge through them.
  for (const p of pairs.values()) {
    const longest = Math.max(...p.ports.map((x) => x.length));
    g.setEdge(p.from, p.to, { width: longest * 7 + 28, height: p.ports.length * LABEL_LINE, labelpos: 'c' });
  }
  layout(g);
  const edges = new Map<string, EdgeRoute>();
  for (const [k, p] of pairs) {
    const e = g.edge(p.from, p.to) as
      | { points?: { x: number; y: number }[]; x?: number; y?: number }
      | undefined;
    if (!e?.points) continue;
    const mid = e.points[Math.floor(e.points.length / 2)]!;
    edges.set(k, { points: e.points, label: { x: e.x ?? mid.x, y: e.y ?? mid.y } });
  }
  const cards = new Map<string, Placed>();
  for (const c of m.cards) {
    const n = g.node(c.id) as { x: number; y: number; width: number; height: number };
    cards.set(c.id, {
      id: c.id,
      x: n.x - n.width / 2,
      y: n.y - n.height / 2,
      width: n.width,
      height: n.height,
    });
  }
  const gl = g.graph() as { width?: number; height?: number };
  return { cards, edges, width: gl.width ?? 0, height: gl.height ?? 0 };
}

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

export interface MapLayout {
  cards: Map<string, Placed>;
  width: number;
  height: number;
}

export const CARD_WIDTH = 220;
const HEADER = 46;
const L7_LINE = 17;
/** Cards list at most this many L7 endpoints; the rest is a "+N more" line. */
export const MAX_L7_LINES = 6;

export function cardHeight(l7: number): number {
  const lines = Math.min(l7, MAX_L7_LINES) + (l7 > MAX_L7_LINES ? 1 : 0);
  return HEADER + (lines > 0 ? 8 + lines * L7_LINE : 0);
}

export function layoutMap(m: ServiceMap): MapLayout {
  const g = new Graph({ multigraph: false });
  g.setGraph({ rankdir: 'LR', nodesep: 28, ranksep: 140, marginx: 24, marginy: 24 });
  g.setDefaultEdgeLabel(() => ({}));
  for (const c of m.cards) g.setNode(c.id, { width: CARD_WIDTH, height: cardHeight(c.l7.length) });
  for (const a of m.arrows) if (a.from !== a.to) g.setEdge(a.from, a.to);
  layout(g);
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
  return { cards, width: gl.width ?? 0, height: gl.height ?? 0 };
}

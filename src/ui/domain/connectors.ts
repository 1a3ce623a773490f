// The policy view's connector lines, as the Network Policy Editor draws them: one line per rule
// card from its peer group to the endpoint (ingress, left) or from the endpoint to it (egress,
// right), labelled with the entry's ports and coloured by what the entry did in the window.
// Pure: the component measures the cards and hands the boxes here.

import { verdictClass } from './fields.ts';
import type { RuleCardView, SidePolicy } from './policy-view.ts';

/**
 * allowed: an allow entry decided flows · denied: a deny entry did · nothing: no flow here ·
 * mixed: the flows no entry decided were some dropped, some let through.
 */
export type ConnectorStatus = 'allowed' | 'denied' | 'nothing' | 'mixed';
export const CONNECTOR_STATUSES: readonly ConnectorStatus[] = ['allowed', 'denied', 'nothing', 'mixed'];

/**
 * Per card, not per entry: an entry whose peers span groups may match flows in one group only,
 * and the line of the idle group is then drawn as matching nothing.
 */
export function connectorStatus(r: Pick<RuleCardView, 'effect' | 'flows'>): ConnectorStatus {
  if (r.flows.length === 0) return 'nothing';
  return r.effect === 'allow' ? 'allowed' : 'denied';
}

/** `8080/TCP, 8443/TCP`, `all ports`, with `+ 2 L7 rules` when the entry has L7 rules. */
export function connectorLabel(r: Pick<RuleCardView, 'ports' | 'l7'>): string {
  const ports = r.ports.length > 0 ? r.ports.join(', ') : 'all ports';
  return r.l7.length > 0 ? `${ports} + ${r.l7.length} L7 rule${r.l7.length > 1 ? 's' : ''}` : ports;
}

/**
 * The line of the flows no entry decided, from what happened to them: dropped by default deny
 * (audit counts here: the policy denied, audit mode let it pass), or let through without a rule
 * (host traffic is always allowed, a deny-only or unenforced side allows). `verdicts`: those of
 * the flows still in the page; none left, the side's policy says.
 */
export function undecidedConnector(
  side: Pick<SidePolicy, 'enforced' | 'defaultDeny'>,
  verdicts: readonly string[],
): { status: ConnectorStatus; label: string } {
  let denied = 0;
  for (const v of verdicts) if (verdictClass(v) === 'dropped' || verdictClass(v) === 'audit') denied++;
  const passed = verdicts.length - denied;
  const denies = side.enforced && side.defaultDeny;
  if (denied > 0 && passed > 0)
    return { status: 'mixed', label: `default deny ×${denied}, allowed ×${passed}` };
  if (denied > 0 || (passed === 0 && denies)) return { status: 'denied', label: 'default deny' };
  return { status: 'allowed', label: denies ? 'allowed without a rule' : 'not enforced' };
}

export interface Box {
  left: number;
  top: number;
  width: number;
  height: number;
}

export interface Point {
  x: number;
  y: number;
}

/** `n` points spread down the side of a box (the lines meet the endpoint apart, not in one dot). */
export function spreadAnchors(box: Box, side: 'left' | 'right', n: number): Point[] {
  const x = side === 'left' ? box.left : box.left + box.width;
  const out: Point[] = [];
  for (let i = 0; i < n; i++) out.push({ x, y: box.top + ((i + 1) * box.height) / (n + 1) });
  return out;
}

/** A cubic curve leaving and entering horizontally (the editor's look). */
export function connectorPath(a: Point, b: Point): string {
  const c = Math.max(24, Math.abs(b.x - a.x) / 2) * (b.x >= a.x ? 1 : -1);
  const r = (v: number) => Math.round(v * 10) / 10;
  return `M ${r(a.x)} ${r(a.y)} C ${r(a.x + c)} ${r(a.y)}, ${r(b.x - c)} ${r(b.y)}, ${r(b.x)} ${r(b.y)}`;
}

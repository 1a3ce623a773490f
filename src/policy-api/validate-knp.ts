// Validation of a Kubernetes NetworkPolicy spec, with the API server's rules (peers, ipBlock,
// ports, endPort).

import type { NetworkPolicyPeer, NetworkPolicyPort, NetworkPolicySpec } from './types.ts';
import { parsePrefix } from './validate-net.ts';
import type { Reporter } from './validate-report.ts';
import { checkExcept, validateSelector } from './validate-rule.ts';

export function validateKNPSpec(spec: NetworkPolicySpec, r: Reporter): void {
  validateSelector(spec.podSelector, r, 'k8s');
  for (const rule of spec.ingress ?? []) {
    for (const p of rule.from ?? []) validatePeer(p, r);
    for (const p of rule.ports ?? []) validateKNPPort(p, r);
  }
  for (const rule of spec.egress ?? []) {
    for (const p of rule.to ?? []) validatePeer(p, r);
    for (const p of rule.ports ?? []) validateKNPPort(p, r);
  }
}

function validatePeer(p: NetworkPolicyPeer, r: Reporter): void {
  if (p.podSelector) validateSelector(p.podSelector, r, 'k8s');
  if (p.namespaceSelector) validateSelector(p.namespaceSelector, r, 'k8s');
  if (!p.podSelector && !p.namespaceSelector && !p.ipBlock) {
    r.error(
      'knp-empty-peer',
      'a NetworkPolicy peer must specify podSelector, namespaceSelector or ipBlock; to allow every source drop `from`/`to` (or write `- {}` as the whole rule)',
      p,
    );
  }
  if (p.ipBlock && (p.podSelector || p.namespaceSelector)) {
    r.error(
      'knp-ipblock-with-selector',
      'a NetworkPolicy peer may not combine ipBlock with podSelector/namespaceSelector; write them as separate peers',
      p,
      'ipBlock',
    );
  }
  const ib = p.ipBlock;
  if (!ib) return;
  const base = parsePrefix(ib.cidr);
  if (!base.ok) {
    r.error(
      'invalid-cidr',
      `ipBlock.cidr ${JSON.stringify(ib.cidr)} is not a valid CIDR: ${base.reason}; write e.g. 10.0.0.0/8`,
      ib,
      'cidr',
    );
  }
  const except = ib.except ?? [];
  for (let i = 0; i < except.length; i++) {
    const e = parsePrefix(except[i]!);
    if (!e.ok) {
      r.error(
        'invalid-cidr',
        `ipBlock.except ${JSON.stringify(except[i])} is not a valid CIDR: ${e.reason}`,
        except,
        i,
      );
    } else if (base.ok) {
      checkExcept(base.value, e.value, ib.cidr, except[i]!, r, except, i, true);
    }
  }
}

function validateKNPPort(p: NetworkPolicyPort, r: Reporter): void {
  let num: number | undefined;
  if (typeof p.port === 'number') {
    if (p.port < 1 || p.port > 65535) {
      r.error('invalid-port', `port ${p.port} is out of range; use 1-65535`, p, 'port');
    } else num = p.port;
  } else if (typeof p.port === 'string') {
    if (/^[0-9]+$/.test(p.port)) {
      r.error(
        'invalid-port',
        `port ${JSON.stringify(p.port)} is a string, so Kubernetes reads it as a port name (which needs a letter); write ${p.port} without quotes`,
        p,
        'port',
      );
    } else if (p.port.length > 15 || !/^[a-z0-9]+(-[a-z0-9]+)*$/.test(p.port) || !/[a-z]/.test(p.port)) {
      r.error(
        'invalid-port',
        `port name ${JSON.stringify(p.port)} is not a valid IANA service name (1-15 lower-case letters, digits and single hyphens, at least one letter)`,
        p,
        'port',
      );
    }
  }
  if (p.endPort !== undefined) {
    if (p.port === undefined) {
      r.error('invalid-end-port', 'endPort may not be specified when port is not specified', p, 'endPort');
    } else if (typeof p.port === 'string') {
      r.error('invalid-end-port', 'endPort may not be specified when port is a named port', p, 'endPort');
    } else if (num !== undefined && (p.endPort < num || p.endPort > 65535)) {
      r.error(
        'invalid-end-port',
        `endPort ${p.endPort} must be greater than or equal to port ${num} and at most 65535`,
        p,
        'endPort',
      );
    }
  }
}

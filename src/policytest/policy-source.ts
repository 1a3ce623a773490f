// Where `seawall diff` takes a policy set from: a file or directory, or `git:REF:PATH` (the
// policy files under PATH as commit REF has them, read with `git ls-tree` / `git show`; nothing
// is checked out). Issues point at `git:REF:FILE` so they say which version is wrong.

import { execFileSync } from 'node:child_process';
import type { Issue } from '../policy-api/issue.ts';
import { loadPolicies, loadPolicyText } from '../policy-api/load.ts';
import type { PolicyObject } from '../policy-api/types.ts';

export interface PolicySet {
  label: string;
  policies: PolicyObject[];
  issues: Issue[];
}

const EXT = /\.(ya?ml|json)$/i;
/** Git output above this is refused: a policy tree is small. */
const MAX_GIT_BYTES = 64 * 1024 * 1024;

export function parseGitSource(spec: string): { ref: string; path: string } | undefined {
  if (!spec.startsWith('git:')) return undefined;
  const rest = spec.slice(4);
  const i = rest.indexOf(':');
  if (i <= 0) return undefined;
  return { ref: rest.slice(0, i), path: rest.slice(i + 1) === '' ? '.' : rest.slice(i + 1) };
}

export async function loadPolicySet(spec: string, cwd: string = process.cwd()): Promise<PolicySet> {
  if (spec.startsWith('git:')) {
    const g = parseGitSource(spec);
    if (!g) return bad(spec, `"${spec}" is not git:REF:PATH (e.g. git:main:policies/)`);
    // A ref starting with "-" would be read as an option by git.
    if (g.ref.startsWith('-')) return bad(spec, `git ref "${g.ref}" may not start with "-"`);
    const git = (args: string[]): string =>
      execFileSync('git', ['-C', cwd, ...args], {
        encoding: 'utf8',
        maxBuffer: MAX_GIT_BYTES,
        stdio: ['ignore', 'pipe', 'pipe'],
      });
    let names: string[];
    try {
      names = git(['ls-tree', '-r', '--full-name', '--name-only', '-z', g.ref, '--', g.path])
        .split('\0')
        .filter((n) => n !== '' && EXT.test(n))
        .sort();
    } catch (e) {
      return bad(spec, `git cannot list ${g.path} at ${g.ref}: ${gitError(e)}`);
    }
    if (names.length === 0)
      return bad(spec, `no policy files (*.yaml, *.yml, *.json) under ${g.path} at ${g.ref}`);
    const set: PolicySet = { label: spec, policies: [], issues: [] };
    for (const n of names) {
      let text: string;
      try {
        text = git(['show', `${g.ref}:${n}`]);
      } catch (e) {
        return bad(spec, `git cannot read ${n} at ${g.ref}: ${gitError(e)}`);
      }
      const r = loadPolicyText(`git:${g.ref}:${n}`, text, { lint: false });
      set.policies.push(...r.policies);
      set.issues.push(...r.issues.filter((i) => i.severity === 'error'));
    }
    return set;
  }
  try {
    const r = await loadPolicies([spec], { lint: false });
    return { label: spec, policies: r.policies, issues: r.issues.filter((i) => i.severity === 'error') };
  } catch (e) {
    return bad(spec, (e as Error).message);
  }
}

function gitError(e: unknown): string {
  const err = (e as { stderr?: string }).stderr;
  return (typeof err === 'string' && err.trim() !== '' ? err.trim() : (e as Error).message).split('\n')[0]!;
}

function bad(spec: string, message: string): PolicySet {
  return {
    label: spec,
    policies: [],
    issues: [
      {
        code: 'policy-source',
        severity: 'error',
        path: '',
        pos: { file: spec, line: 1, column: 1 },
        message,
      },
    ],
  };
}

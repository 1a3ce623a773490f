// Loading: files, directories and stdin → typed policies + issues (decode, validate, lint).
// I/O failures throw LoadError (the CLI maps them to exit 2); everything about the content is an
// issue. A policy with an error is left out of `policies`: Cilium would not enforce it either.

import type { Dirent } from 'node:fs';
import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { SeawallError } from '../core/errors.ts';
import type { Cursor } from './cursor.ts';
import { decodeObject, objectHeader, objectLabel } from './decode.ts';
import { DecodeCtx } from './decode-util.ts';
import type { Issue } from './issue.ts';
import { lintPolicy } from './lint.ts';
import type { LoadResult, OtherObject, PolicyObject } from './types.ts';
import { validatePolicy } from './validate.ts';
import { decodeText, LIMITS, parseDocuments } from './yaml-source.ts';

export interface LoadOptions {
  /** Run lint (warnings) as well as validation. Default true. */
  lint?: boolean;
}

export type LoadErrorCode = 'not-found' | 'permission-denied' | 'read-error';

export class LoadError extends SeawallError<LoadErrorCode> {
  override name = 'LoadError';
  constructor(
    code: LoadErrorCode,
    readonly path: string,
    message: string,
  ) {
    super(code, message);
  }
}

export interface DecodedPolicies {
  policies: PolicyObject[];
  others: OtherObject[];
  /** Policies left out because they have errors (Cilium would not enforce them either). */
  rejected: number;
  /** The issues of this document (also appended to the cursor's issue list). */
  issues: Issue[];
}

/** `kind: List` inside `kind: List` inside ... is refused beyond this depth. */
const MAX_LIST_DEPTH = 4;

/**
 * Decodes, validates and (optionally) lints one object given by a cursor: a whole YAML document,
 * or a policy embedded in another document (PolicyTest `spec.policies[i]`), whose positions and
 * paths are those of the embedding file. `kind: List` items are decoded recursively.
 */
export function decodePolicyDocument(cursor: Cursor, opts: LoadOptions = {}): DecodedPolicies {
  const out: DecodedPolicies = { policies: [], others: [], rejected: 0, issues: [] };
  const start = cursor.issues.length;
  const ctx = new DecodeCtx(cursor.node);
  decodeItem(ctx.deref(cursor), ctx, out, opts.lint !== false, 0);
  out.issues = cursor.issues.slice(start);
  return out;
}

function decodeItem(c: Cursor, ctx: DecodeCtx, out: DecodedPolicies, lint: boolean, depth: number): void {
  const issues = c.issues;
  const start = issues.length;
  const d = decodeObject(c, ctx);
  if (d.type === 'list') {
    if (depth >= MAX_LIST_DEPTH) {
      c.error('too-deep', `lists nested more than ${MAX_LIST_DEPTH} deep`);
      return;
    }
    if (d.items === c) {
      c.error('missing-field', 'a List needs `items`');
      return;
    }
    if (d.items.isNull) return;
    if (!d.items.expectSeq()) return;
    for (const item of d.items.items()) decodeItem(ctx.deref(item), ctx, out, lint, depth + 1);
    return;
  }
  let label: string | undefined;
  if (d.type === 'policy') {
    label = objectLabel(d.policy.kind, c, ctx);
    validatePolicy(d.policy, issues, label);
    if (lint) lintPolicy(d.policy, issues, label);
  }
  let errors = false;
  if (issues.length > start) {
    label ??= objectLabel(objectHeader(c, ctx).kind, c, ctx);
    for (let i = start; i < issues.length; i++) {
      const issue = issues[i]!;
      if (issue.severity === 'error') errors = true;
      if (label !== undefined && issue.object === undefined) issue.object = label;
    }
  }
  if (d.type === 'policy') {
    if (errors) out.rejected++;
    else out.policies.push(d.policy);
  } else if (d.type === 'other') out.others.push(d.other);
}

/** Loads policies from one text (synchronous; used for PolicyTest files and tests). */
export function loadPolicyText(file: string, text: string, opts: LoadOptions = {}): LoadResult {
  const result: LoadResult = { policies: [], others: [], rejected: 0, issues: [], files: [file] };
  addText(result, file, text, opts);
  sortIssues(result.issues);
  return result;
}

/** Loads policies from raw bytes: refuses binary and non-UTF-8 input with an issue. */
export function loadPolicyBytes(file: string, bytes: Uint8Array, opts: LoadOptions = {}): LoadResult {
  const result: LoadResult = { policies: [], others: [], rejected: 0, issues: [], files: [file] };
  addBytes(result, file, bytes, opts);
  sortIssues(result.issues);
  return result;
}

function addBytes(result: LoadResult, file: string, bytes: Uint8Array, opts: LoadOptions): void {
  const { text, issue } = decodeText(file, bytes);
  if (issue) result.issues.push(issue);
  if (text !== undefined) addText(result, file, text, opts);
}

function addText(result: LoadResult, file: string, text: string, opts: LoadOptions): void {
  const { docs, issues } = parseDocuments(file, text);
  for (const doc of docs) {
    const d = decodePolicyDocument(doc.root, opts);
    for (const p of d.policies) result.policies.push(p);
    for (const o of d.others) result.others.push(o);
    result.rejected += d.rejected;
  }
  // parseDocuments' list also received every issue the documents' cursors reported.
  for (const i of issues) result.issues.push(i);
}

/**
 * Loads files, directories (recursively: *.yaml, *.yml, *.json, in sorted order) and `-` (stdin,
 * named `<stdin>`). Throws LoadError when a path cannot be read.
 */
export async function loadPolicies(
  paths: string[],
  opts: LoadOptions & { stdin?: NodeJS.ReadableStream } = {},
): Promise<LoadResult> {
  const result: LoadResult = { policies: [], others: [], rejected: 0, issues: [], files: [] };
  for (const p of paths) {
    if (p === '-') {
      const bytes = await readStream(opts.stdin ?? process.stdin);
      result.files.push('<stdin>');
      addBytes(result, '<stdin>', bytes, opts);
      continue;
    }
    for (const file of await expand(p)) {
      result.files.push(file);
      const st = await statOrThrow(file);
      if (st.size > LIMITS.maxBytes) {
        result.issues.push({
          code: 'file-too-large',
          severity: 'error',
          path: '',
          pos: { file, line: 1, column: 1 },
          message: `file is ${st.size} bytes; the limit is ${LIMITS.maxBytes}`,
        });
        continue;
      }
      let bytes: Uint8Array;
      try {
        bytes = await readFile(file);
      } catch (e) {
        throw toLoadError(e, file);
      }
      addBytes(result, file, bytes, opts);
    }
  }
  sortIssues(result.issues);
  return result;
}

const POLICY_FILE = /\.(ya?ml|json)$/i;

async function expand(path: string): Promise<string[]> {
  const st = await statOrThrow(path);
  if (!st.isDirectory()) return [path];
  const out: string[] = [];
  const seen = new Set<string>();
  const walk = async (dir: string): Promise<void> => {
    const ds = await statOrThrow(dir);
    const key = `${ds.dev}:${ds.ino}`;
    if (seen.has(key)) return; // a symlink loop
    seen.add(key);
    let ents: Dirent[];
    try {
      ents = await readdir(dir, { withFileTypes: true });
    } catch (e) {
      throw toLoadError(e, dir);
    }
    ents.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const ent of ents) {
      const name = ent.name;
      if (name.startsWith('.')) continue;
      const p = join(dir, name);
      // The entry's type comes with the listing: only symlinks (and unknown types) need a stat,
      // so thousands of files cost one listing, not one stat each.
      const plain = ent.isFile() || ent.isDirectory();
      const s = plain ? ent : await statOrThrow(p);
      if (s.isDirectory()) await walk(p);
      else if (s.isFile() && POLICY_FILE.test(name)) out.push(p);
    }
  };
  await walk(path);
  return out.sort();
}

async function statOrThrow(path: string) {
  try {
    return await stat(path);
  } catch (e) {
    throw toLoadError(e, path);
  }
}

function toLoadError(e: unknown, path: string): LoadError {
  const errno = (e as { code?: string }).code;
  if (errno === 'ENOENT' || errno === 'ENOTDIR')
    return new LoadError('not-found', path, `${path}: no such file or directory`);
  if (errno === 'EACCES' || errno === 'EPERM')
    return new LoadError('permission-denied', path, `${path}: permission denied`);
  return new LoadError('read-error', path, `${path}: ${(e as Error).message}`);
}

async function readStream(s: NodeJS.ReadableStream): Promise<Uint8Array> {
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of s) {
      const b = typeof chunk === 'string' ? Buffer.from(chunk) : Buffer.from(chunk as Uint8Array);
      size += b.length;
      chunks.push(b);
      // Past the limit decodeText reports the oversize; reading further would only cost memory.
      if (size > LIMITS.maxBytes) break;
    }
  } catch (e) {
    throw toLoadError(e, '<stdin>');
  }
  return Buffer.concat(chunks);
}

/** Sorts issues by file, line, column (stable for equal positions). */
export function sortIssues(issues: Issue[]): void {
  issues.sort((a, b) => {
    if (a.pos.file !== b.pos.file) return a.pos.file < b.pos.file ? -1 : 1;
    return a.pos.line - b.pos.line || a.pos.column - b.pos.column;
  });
}

// YAML/JSON text → documents with source positions. Refuses, with an issue and never a throw,
// what would hurt the loader: binary or non-UTF-8 bytes, oversized input, alias bombs, deep nesting.

import { isAlias, isMap, isSeq, LineCounter, type Node, parseAllDocuments } from 'yaml';
import { describeLimit, MAX_INPUT_BYTES } from '../core/files.ts';
import { Cursor } from './cursor.ts';
import type { Issue } from './issue.ts';
import { parseFastYAML } from './yaml-fast.ts';

export const LIMITS = {
  /** Bytes of one file. */
  maxBytes: MAX_INPUT_BYTES,
  /** Nesting depth of one document. */
  maxDepth: 64,
  /** Alias expansions per document (the yaml package's default is 100). */
  maxAliasCount: 100,
};

export interface SourceDocument {
  /** 0-based index of the document in its file. */
  index: number;
  root: Cursor;
  /** The document has an error of its own (an unknown tag): decode it for its other issues, but
   *  use none of its objects. */
  refused: boolean;
}

/** Decodes bytes as UTF-8, or returns an issue when they are binary or not UTF-8. */
export function decodeText(file: string, bytes: Uint8Array): { text?: string; issue?: Issue } {
  const at = { file, line: 1, column: 1 };
  if (bytes.length > LIMITS.maxBytes) {
    return {
      issue: {
        code: 'file-too-large',
        severity: 'error',
        path: '',
        pos: at,
        message: `file is ${bytes.length} bytes, more than the limit of ${describeLimit(LIMITS.maxBytes)} per file`,
      },
    };
  }
  const nul = bytes.indexOf(0);
  if (nul >= 0) {
    return {
      issue: {
        code: 'binary-file',
        severity: 'error',
        path: '',
        pos: positionOfByte(bytes, nul, file),
        message: 'file contains NUL bytes: not a YAML or JSON text file',
      },
    };
  }
  try {
    let text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
    if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
    return { text };
  } catch {
    const bad = firstInvalidUtf8(bytes);
    return {
      issue: {
        code: 'invalid-utf8',
        severity: 'error',
        path: '',
        pos: positionOfByte(bytes, bad, file),
        message: `file is not valid UTF-8 (byte 0x${(bytes[bad] ?? 0).toString(16)} at offset ${bad}); YAML and JSON must be UTF-8`,
      },
    };
  }
}

/** Parses every document of a YAML (or JSON) text. Syntax errors become issues. */
export function parseDocuments(file: string, text: string): { docs: SourceDocument[]; issues: Issue[] } {
  const issues: Issue[] = [];
  // The common case (one plain document) without the yaml package's cost; the same nodes.
  const fast = parseFastYAML(text);
  if (fast !== undefined) {
    const { line, col } = fast.lineCounter.linePos(fast.start);
    const src = { file, lineCounter: fast.lineCounter, fallback: { file, line, column: col } };
    return { docs: [{ index: 0, root: new Cursor(src, fast.contents, [], issues), refused: false }], issues };
  }
  const lineCounter = new LineCounter();
  let parsed: ReturnType<typeof parseAllDocuments>;
  try {
    parsed = parseAllDocuments(text, {
      lineCounter,
      uniqueKeys: true,
      prettyErrors: false,
      strict: true,
      version: '1.2',
    });
  } catch (e) {
    issues.push({
      code: 'yaml-syntax',
      severity: 'error',
      path: '',
      pos: { file, line: 1, column: 1 },
      message: `cannot parse: ${(e as Error).message}`,
    });
    return { docs: [], issues };
  }
  const list = Array.isArray(parsed) ? parsed : [];
  const docs: SourceDocument[] = [];
  list.forEach((doc, index) => {
    const start = doc.range?.[0] ?? 0;
    const { line, col } = lineCounter.linePos(start);
    const fallback = { file, line, column: col };
    let bad = false;
    for (const err of doc.errors) {
      bad = true;
      const off = err.pos?.[0] ?? start;
      const p = lineCounter.linePos(off);
      // The parser recurses per nesting level; a stack overflow there means absurd nesting.
      const tooDeep = /call stack/i.test(err.message);
      issues.push({
        code: err.code === 'DUPLICATE_KEY' ? 'duplicate-key' : tooDeep ? 'too-deep' : 'yaml-syntax',
        severity: 'error',
        path: '',
        pos: { file, line: p.line, column: p.col },
        message: tooDeep
          ? `document nests too deeply to parse (policies need fewer than ${LIMITS.maxDepth} levels)`
          : firstLine(err.message),
      });
    }
    // The yaml package takes a tag it does not know (`!foo`, `!!js/function`) as a plain string and
    // only warns; Kubernetes' decoder does not, so neither do we: the document is refused (and
    // still decoded, so its other issues are reported too).
    let refused = false;
    for (const w of doc.warnings) {
      if (w.code !== 'TAG_RESOLVE_FAILED') continue;
      refused = true;
      const p = lineCounter.linePos(w.pos?.[0] ?? start);
      const tag = unknownTag(w.message);
      issues.push({
        code: 'unknown-yaml-tag',
        severity: 'error',
        path: '',
        pos: { file, line: p.line, column: p.col },
        message: `unknown YAML tag ${tag}: Kubernetes does not decode it; remove the tag (the core schema's !!str, !!int, !!bool, !!float, !!null, !!map and !!seq are fine)`,
      });
    }
    if (bad) return;
    if (doc.contents == null) return; // an empty document (e.g. a trailing `---`)
    const src = { file, lineCounter, fallback };
    const depthIssue = checkDepthAndAliases(doc.contents as Node);
    if (depthIssue) {
      issues.push({
        code: depthIssue.code,
        severity: 'error',
        path: '',
        pos: fallback,
        message: depthIssue.message,
      });
      return;
    }
    docs.push({ index, root: new Cursor(src, doc.contents as Node, [], issues), refused });
  });
  return { docs, issues };
}

function checkDepthAndAliases(root: Node): { code: string; message: string } | undefined {
  let aliases = 0;
  // Iterative walk: a deep document must not overflow our own stack either.
  const stack: Array<[Node, number]> = [[root, 1]];
  while (stack.length > 0) {
    const [n, depth] = stack.pop()!;
    if (depth > LIMITS.maxDepth) {
      return { code: 'too-deep', message: `document nests deeper than ${LIMITS.maxDepth} levels` };
    }
    if (isAlias(n)) {
      if (++aliases > LIMITS.maxAliasCount) {
        return {
          code: 'too-many-aliases',
          message: `document uses more than ${LIMITS.maxAliasCount} YAML aliases (an alias bomb?); policies need none`,
        };
      }
    } else if (isMap(n)) {
      for (const p of n.items) {
        if (p.value) stack.push([p.value as Node, depth + 1]);
      }
    } else if (isSeq(n)) {
      for (const it of n.items) stack.push([it as Node, depth + 1]);
    }
  }
  return undefined;
}

/** `!!js/function` or `!foo` from the yaml package's "Unresolved tag: tag:yaml.org,2002:js/function". */
function unknownTag(message: string): string {
  const t = message.replace(/^Unresolved tag: /, '');
  const s = t.startsWith('tag:yaml.org,2002:') ? `!!${t.slice(18)}` : t;
  return JSON.stringify(s.length > 60 ? `${s.slice(0, 60)}…` : s).slice(1, -1);
}

function firstLine(s: string): string {
  const i = s.indexOf('\n');
  return i < 0 ? s : s.slice(0, i);
}

function positionOfByte(bytes: Uint8Array, offset: number, file: string) {
  let line = 1;
  let lineStart = 0;
  for (let i = 0; i < offset; i++) {
    if (bytes[i] === 0x0a) {
      line++;
      lineStart = i + 1;
    }
  }
  return { file, line, column: offset - lineStart + 1 };
}

function firstInvalidUtf8(bytes: Uint8Array): number {
  let i = 0;
  while (i < bytes.length) {
    const b = bytes[i]!;
    const n = b < 0x80 ? 1 : b >> 5 === 0x6 ? 2 : b >> 4 === 0xe ? 3 : b >> 3 === 0x1e ? 4 : 0;
    if (n === 0) return i;
    for (let k = 1; k < n; k++) {
      if (i + k >= bytes.length || bytes[i + k]! >> 6 !== 0x2) return i;
    }
    i += n;
  }
  return 0;
}

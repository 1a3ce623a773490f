// Human output: one block per issue (location, severity, code, message; the source line with a
// caret under the column), then a summary line. Colour only when the caller asks for it.

import { countBySeverity, type Issue } from '../policy-api/issue.ts';
import { plural, type ReportInput, sortIssues } from './common.ts';
import { terminalSafe as safe } from './terminal.ts';

export interface HumanOptions {
  /** Text of a file, to quote the offending line; undefined when unknown (stdin, binary). */
  getSource?: (file: string) => string | undefined;
  color?: boolean;
}

const SGR = { reset: '\x1b[0m', bold: '\x1b[1m', dim: '\x1b[2m', red: '\x1b[31m', yellow: '\x1b[33m' };
/** Source lines longer than this are cut, so one minified JSON line cannot flood the terminal. */
const MAX_LINE = 160;

export function formatHuman(input: ReportInput, opts: HumanOptions = {}): string {
  const paint = (code: string, s: string): string => (opts.color ? `${code}${s}${SGR.reset}` : s);
  const lines = new Map<string, string[] | undefined>();
  const sourceLine = (file: string, line: number): string | undefined => {
    if (!lines.has(file)) lines.set(file, opts.getSource?.(file)?.split(/\r?\n/));
    return lines.get(file)?.[line - 1];
  };

  const out: string[] = [];
  for (const i of sortIssues(input.issues)) {
    const sevColor = i.severity === 'error' ? SGR.red : SGR.yellow;
    const path = i.path === '' ? '' : paint(SGR.dim, ` (${safe(i.path)})`);
    out.push(
      `${paint(SGR.bold, `${safe(i.pos.file)}:${i.pos.line}:${i.pos.column}`)} ` +
        `${paint(SGR.bold + sevColor, i.severity)} ${paint(SGR.dim, i.code)} ${safe(i.message)}${path}`,
    );
    const src = sourceLine(i.pos.file, i.pos.line);
    if (src !== undefined) out.push(...quote(i, src, (s) => paint(sevColor, s)));
  }
  out.push(summary(input));
  return `${out.join('\n')}\n`;
}

/** `3 files, 12 policies (1 rejected) (2 other objects passed over): 2 errors, 1 warning` */
export function summary(input: ReportInput): string {
  const { errors, warnings } = countBySeverity(input.issues);
  const others = input.others > 0 ? ` (${plural(input.others, 'other object')} passed over)` : '';
  const rejected = (input.rejected ?? 0) > 0 ? ` (${input.rejected} rejected)` : '';
  return (
    `${plural(input.files.length, 'file')}, ${plural(input.policies, 'policy', 'policies')}${rejected}${others}: ` +
    `${plural(errors, 'error')}, ${plural(warnings, 'warning')}`
  );
}

function quote(i: Issue, raw: string, paintCaret: (s: string) => string): string[] {
  const gutter = String(i.pos.line);
  let text = raw;
  let col = Math.max(1, i.pos.column);
  // Keep the column in view when the line is cut.
  let cut = 0;
  if (text.length > MAX_LINE) {
    cut = Math.max(0, Math.min(col - 1 - MAX_LINE / 2, text.length - MAX_LINE));
    text = `${cut > 0 ? '…' : ''}${text.slice(cut, cut + MAX_LINE)}${cut + MAX_LINE < raw.length ? '…' : ''}`;
    col = col - cut + (cut > 0 ? 1 : 0);
  }
  const shown = safe(text);
  return [
    ` ${gutter} | ${shown}`,
    ` ${' '.repeat(gutter.length)} | ${caretPad(text, col)}${paintCaret('^')}`,
  ];
}

/** Blanks as wide as the text before `col` (UTF-16 units): tabs stay tabs, escapes keep their width. */
function caretPad(text: string, col: number): string {
  let pad = '';
  for (let k = 0; k < Math.min(col - 1, text.length); k++) {
    const c = text.charCodeAt(k);
    if (c >= 0xdc00 && c <= 0xdfff) continue; // second half of a pair: one place already
    pad += c === 9 ? '\t' : ' '.repeat(safe(text[k]!).length);
  }
  return pad;
}

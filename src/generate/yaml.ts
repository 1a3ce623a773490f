// A small YAML writer for generated policies: block style, strings plain when nothing could
// misread them, else double-quoted (JSON escapes are valid YAML), and `#` comments before list
// items. Written here rather than through the yaml package's Document API so that the comments
// sit exactly where they are meant to and the output is byte-stable for golden files.

export type YValue = string | number | boolean | YValue[] | YObject;
export interface YObject {
  [key: string]: YValue;
}

/** Comment lines shown before an object where it is a list item. */
const COMMENTS = new WeakMap<object, string[]>();

export function withComment<T extends YObject>(o: T, lines: readonly string[]): T {
  COMMENTS.set(o, [...lines]);
  return o;
}

const PLAIN_KEY = /^[A-Za-z_][A-Za-z0-9_./-]*$/;

function key(k: string): string {
  return PLAIN_KEY.test(k) ? k : JSON.stringify(k);
}

const PLAIN_VALUE = /^[A-Za-z][A-Za-z0-9_./-]*$/;
// Words YAML 1.1 readers take for booleans or null: always quoted.
const KEYWORDS = new Set(['true', 'false', 'yes', 'no', 'on', 'off', 'y', 'n', 'null']);

function scalar(v: string | number | boolean): string {
  if (typeof v !== 'string') return String(v);
  return PLAIN_VALUE.test(v) && !KEYWORDS.has(v.toLowerCase()) ? v : JSON.stringify(v);
}

function isEmpty(v: YValue): boolean {
  return Array.isArray(v) ? v.length === 0 : typeof v === 'object' && Object.keys(v).length === 0;
}

function objectLines(o: YObject, indent: number): string[] {
  const pad = ' '.repeat(indent);
  const out: string[] = [];
  for (const [k, v] of Object.entries(o)) {
    if (typeof v !== 'object') out.push(`${pad}${key(k)}: ${scalar(v)}`);
    else if (isEmpty(v)) out.push(`${pad}${key(k)}: ${Array.isArray(v) ? '[]' : '{}'}`);
    else if (Array.isArray(v)) out.push(`${pad}${key(k)}:`, ...listLines(v, indent + 2));
    else out.push(`${pad}${key(k)}:`, ...objectLines(v, indent + 2));
  }
  return out;
}

function listLines(list: YValue[], indent: number): string[] {
  const pad = ' '.repeat(indent);
  const out: string[] = [];
  for (const item of list) {
    if (typeof item === 'object' && !Array.isArray(item)) {
      for (const c of COMMENTS.get(item) ?? []) out.push(`${pad}# ${c}`);
    }
    if (typeof item !== 'object') out.push(`${pad}- ${scalar(item)}`);
    else if (isEmpty(item)) out.push(`${pad}- ${Array.isArray(item) ? '[]' : '{}'}`);
    else {
      const inner = Array.isArray(item) ? listLines(item, indent + 2) : objectLines(item, indent + 2);
      inner[0] = `${pad}- ${inner[0]!.slice(indent + 2)}`;
      out.push(...inner);
    }
  }
  return out;
}

/** One YAML document (no `---`), with header comment lines. */
export function toYAML(o: YObject, header: readonly string[] = []): string {
  return `${[...header.map((h) => `# ${h}`), ...objectLines(o, 0)].join('\n')}\n`;
}

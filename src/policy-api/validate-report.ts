// Reporting for validation and lint: turns (object, field) into the issue's JSON path and
// file:line:column by asking the side table filled by the decoders. Positions are only computed
// for objects that actually have an issue.

import type { Cursor } from './cursor.ts';
import { cursorOf } from './decode-util.ts';
import type { Issue, Severity, SourcePos } from './issue.ts';

export class Reporter {
  constructor(
    readonly issues: Issue[],
    /** Where to point when an object was not decoded from YAML (built in code). */
    readonly fallback: SourcePos,
    readonly object?: string,
  ) {}

  /** The cursor of `obj` or of one of its fields (a key) or items (an index). */
  locate(obj: object, field?: string | number): Cursor | undefined {
    const c = cursorOf(obj);
    if (c === undefined || field === undefined) return c;
    if (typeof field === 'number') return c.items()[field];
    return c.field(field);
  }

  report(
    severity: Severity,
    code: string,
    message: string,
    obj: object,
    field?: string | number,
    ofKey = false,
  ): void {
    const c = this.locate(obj, field) ?? cursorOf(obj);
    const issue: Issue = {
      code,
      severity,
      path: c ? c.pathString : '',
      pos: c ? c.pos(ofKey) : this.fallback,
      message,
    };
    if (this.object !== undefined) issue.object = this.object;
    this.issues.push(issue);
  }

  error(code: string, message: string, obj: object, field?: string | number): void {
    this.report('error', code, message, obj, field);
  }

  /** An error about a map key itself (a label key), pointing at the key rather than its value. */
  errorAtKey(code: string, message: string, obj: object, key: string): void {
    this.report('error', code, message, obj, key, true);
  }

  warn(code: string, message: string, obj: object, field?: string | number): void {
    this.report('warning', code, message, obj, field);
  }
}

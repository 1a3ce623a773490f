// One base for every runtime error Seawall throws (as undici's lib/core/errors.js): a stable
// machine-readable `code` that callers switch on, a `name` per class for stack traces, and
// `cause` when wrapping a lower error. Bad *input* is not an error but data (policy-api's Issue);
// these are for failures: a command that cannot run, a socket taken, a flag that makes no sense.

export interface SeawallErrorOptions {
  /** The lower error this one wraps. */
  cause?: unknown;
}

export class SeawallError<Code extends string = string> extends Error {
  override name = 'SeawallError';
  constructor(
    readonly code: Code,
    message: string,
    opts: SeawallErrorOptions = {},
  ) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
  }
}

/** True for a SeawallError, optionally of one code. */
export function isSeawallError(e: unknown, code?: string): e is SeawallError {
  return e instanceof SeawallError && (code === undefined || e.code === code);
}

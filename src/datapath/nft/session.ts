// A long-lived `nft -i` inside the node namespace: a delta transaction costs a write to its
// stdin instead of starting `ip netns exec … nft -f -` (several ms of process start each time).
// nft runs each input line as one batch, i.e. one atomic transaction, so a delta is sent as one
// line of `;`-separated commands. After it comes `describe meta mark`, whose fixed answer marks
// the end of the transaction's output; anything printed before it is nft's error message
// (stderr is merged into stdout so that the order is kept).

import { type ChildProcess, spawn } from 'node:child_process';
import { DatapathError } from '../exec.ts';

const MARKER_CMD = 'describe meta mark';
const MARKER = 'meta expression, datatype mark';
const EXITED = '\0exited';
/** Longer deltas go through `nft -f -`: one huge input line buys nothing. */
export const SESSION_MAX_BYTES = 256 * 1024;

export class NftSession {
  private proc: ChildProcess | undefined;
  private buf = '';
  private out: string[] = [];
  private waiter: ((err: string | undefined) => void) | undefined;
  private queue: Promise<void> = Promise.resolve();
  private dead = false;

  /** `onExit`: nft exited without close() (crashed or was killed): the owner may start another. */
  constructor(
    readonly netns: string,
    private readonly onExit?: () => void,
  ) {}

  get alive(): boolean {
    return !this.dead;
  }

  private start(): ChildProcess {
    if (this.proc) return this.proc;
    const p = spawn('ip', ['netns', 'exec', this.netns, 'sh', '-c', 'exec nft -i 2>&1'], {
      stdio: ['pipe', 'pipe', 'ignore'],
    });
    p.stdin!.on('error', () => {});
    p.stdout!.on('data', (d: Buffer) => this.onData(d.toString()));
    const fail = (): void => {
      if (this.proc !== p) return; // 'error' and 'exit' may both come; close() already let go
      const unexpected = !this.dead;
      this.dead = true;
      this.proc = undefined;
      const w = this.waiter;
      this.waiter = undefined;
      w?.(EXITED);
      if (unexpected) this.onExit?.();
    };
    p.on('exit', fail);
    p.on('error', fail);
    this.proc = p;
    this.hold(false);
    return p;
  }

  /** Keeps the event loop alive only while a transaction waits for its answer. */
  private hold(on: boolean): void {
    const p = this.proc;
    if (!p) return;
    for (const h of [p, p.stdout, p.stdin] as Array<{ ref?: () => void; unref?: () => void } | null>) {
      if (on) h?.ref?.();
      else h?.unref?.();
    }
  }

  private onData(s: string): void {
    this.buf += s;
    let i = this.buf.indexOf('\n');
    while (i >= 0) {
      const line = this.buf.slice(0, i);
      this.buf = this.buf.slice(i + 1);
      if (line.startsWith(MARKER)) {
        const err = this.out.join('\n').trim();
        this.out = [];
        const w = this.waiter;
        this.waiter = undefined;
        this.hold(false);
        w?.(err === '' ? undefined : err);
      } else {
        this.out.push(line);
      }
      i = this.buf.indexOf('\n');
    }
  }

  /** Runs the script's commands as one transaction; throws with nft's message when it fails. */
  transact(script: string): Promise<void> {
    const line = script
      .split('\n')
      .filter((l) => l.trim() !== '')
      .join('; ');
    const job = this.queue.then(
      () =>
        new Promise<void>((resolve, reject) => {
          if (this.dead) {
            reject(new DatapathError('nft-session-dead', 'nft -i is not running'));
            return;
          }
          const p = this.start();
          this.hold(true);
          this.waiter = (err) => {
            if (err === undefined) resolve();
            else if (err === EXITED) reject(new DatapathError('nft-session-dead', 'nft -i exited'));
            else
              reject(
                new DatapathError('nft-apply-failed', `nft transaction failed (nothing changed): ${err}`),
              );
          };
          p.stdin!.write(`${line}\n${MARKER_CMD}\n`);
        }),
    );
    this.queue = job.catch(() => {});
    return job;
  }

  /**
   * Stops nft; a transaction still waiting is rejected as `nft-session-dead` (its outcome is
   * unknown). With one in flight nft may be hung, so it gets SIGKILL rather than a polite SIGTERM.
   */
  close(): void {
    this.dead = true;
    this.hold(false); // a hung nft must not keep the agent's process alive
    const p = this.proc;
    this.proc = undefined;
    if (!p) return;
    const busy = this.waiter !== undefined;
    p.stdin?.end();
    p.kill(busy ? 'SIGKILL' : 'SIGTERM');
    if (busy) {
      // 'exit' comes only once the kernel lets go of nft; the caller must not wait for that
      const w = this.waiter;
      this.waiter = undefined;
      w?.(EXITED);
    }
  }
}

import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { Writable } from 'node:stream';
import { FUNCTION_MEMORY_MB, FUNCTION_TIMEOUT_SECONDS, type FunctionName } from '../lib/bundling.js';

const RUNNER = fileURLToPath(new URL('./lambda-runner.mjs', import.meta.url));
/** Lambda gives a function's initialisation (the bundle's import) 10 s on its own, outside the invocation's timeout. */
const INIT_LIMIT_MS = 10_000;

export interface FunctionPoolOptions {
  /** Seconds an invocation may run before its instance is killed; default: the stack's timeout for `name`. */
  timeoutSeconds?: number;
  /** The function's memory size: reported in the context and used to bound the instance's heap. */
  memoryMb?: number;
}

/** An invocation that ran past the function's timeout; its instance was killed, as Lambda does. */
export class FunctionTimeoutError extends Error {
  constructor(
    readonly functionName: string,
    readonly timeoutSeconds: number,
  ) {
    // Lambda's own wording, seconds with two decimals.
    super(`${functionName}: Task timed out after ${timeoutSeconds.toFixed(2)} seconds`);
    this.name = 'FunctionTimeoutError';
  }
}

interface Instance {
  child: ChildProcess;
  ready: Promise<void>;
  busy: boolean;
}

type Pending = { child: ChildProcess; resolve: (value: unknown) => void; reject: (err: Error) => void };
type RunnerMessage = { ready?: boolean; id?: number; ok?: boolean; result?: unknown; error?: { message: string } };

const hasExited = (child: ChildProcess) => child.exitCode !== null || child.signalCode !== null;

/**
 * Up to `size` instances of one function bundle, each its own Node process handling one invocation at a time,
 * configured only by its environment. An invocation that outlives the function's timeout fails and its instance
 * is killed (SIGKILL, as Lambda does); the next invocation gets a fresh one. Logs go to `logs`.
 */
export class FunctionPool {
  readonly timeoutSeconds: number;
  readonly memoryMb: number;
  private readonly instances: Instance[] = [];
  private readonly queue: Array<() => void> = [];
  private readonly pending = new Map<number, Pending>();
  private nextId = 0;
  private closed = false;
  private invoked = 0;

  constructor(
    private readonly name: string,
    private readonly bundle: string,
    private readonly env: NodeJS.ProcessEnv,
    private readonly size: number,
    private readonly logs: Writable,
    options: FunctionPoolOptions = {},
  ) {
    const timeoutSeconds = options.timeoutSeconds ?? FUNCTION_TIMEOUT_SECONDS[name as FunctionName];
    if (!(timeoutSeconds > 0)) throw new Error(`FunctionPool ${name}: no timeout (not one of the stack's functions; pass timeoutSeconds)`);
    this.timeoutSeconds = timeoutSeconds;
    // The stack's size for the function; 512 MB (PipelineFunction's default) for a bundle the stack does not know.
    this.memoryMb = options.memoryMb ?? FUNCTION_MEMORY_MB[name as FunctionName] ?? 512;
  }

  /** Invocations asked of this pool so far, whatever their outcome (for tests and diagnostics). */
  get invocations(): number {
    return this.invoked;
  }

  async invoke<T>(event: unknown): Promise<T> {
    this.invoked++;
    const instance = await this.acquire();
    let timer: NodeJS.Timeout | undefined;
    try {
      const id = this.nextId++;
      // The clock starts when the event is handed over: the bundle's import (init) is not part of the timeout.
      const timeoutMs = this.timeoutSeconds * 1000;
      const deadline = Date.now() + timeoutMs;
      return await new Promise<T>((resolve, reject) => {
        this.pending.set(id, { child: instance.child, resolve: resolve as (value: unknown) => void, reject });
        timer = setTimeout(() => {
          this.pending.delete(id);
          this.retire(instance);
          reject(new FunctionTimeoutError(this.name, this.timeoutSeconds));
        }, timeoutMs);
        instance.child.send({ id, event, deadline }, (err) => {
          if (!err || !this.pending.delete(id)) return;
          this.retire(instance);
          reject(new Error(`${this.name}: could not hand the event to its instance: ${err.message}`));
        });
      });
    } finally {
      clearTimeout(timer);
      instance.busy = false;
      this.queue.shift()?.();
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    await Promise.all(
      this.instances.splice(0).map(
        (instance) =>
          new Promise<void>((resolve) => {
            if (hasExited(instance.child)) return resolve();
            // 'close' comes after the last of its output, so nothing is written to `logs` after this resolves.
            instance.child.once('close', () => resolve());
            instance.child.kill('SIGTERM');
          }),
      ),
    );
  }

  /** Process ids of the instances alive now (for tests and diagnostics). */
  pids(): number[] {
    return this.instances.flatMap((i) => (i.child.pid === undefined || hasExited(i.child) ? [] : [i.child.pid]));
  }

  /** Takes an instance out of service at once (so no other invocation can pick it) and kills it. */
  private retire(instance: Instance): void {
    const index = this.instances.indexOf(instance);
    if (index >= 0) this.instances.splice(index, 1);
    if (!hasExited(instance.child)) instance.child.kill('SIGKILL');
  }

  private async acquire(): Promise<Instance> {
    for (;;) {
      if (this.closed) throw new Error(`${this.name}: the function pool is closed`);
      const free = this.instances.find((i) => !i.busy && !hasExited(i.child));
      if (free) {
        free.busy = true;
        await free.ready;
        return free;
      }
      if (this.instances.length < this.size) {
        const instance = this.spawn();
        instance.busy = true;
        try {
          await instance.ready;
        } catch (err) {
          instance.busy = false;
          this.queue.shift()?.();
          throw err;
        }
        return instance;
      }
      await new Promise<void>((resolve) => this.queue.push(resolve));
    }
  }

  private spawn(): Instance {
    const child = fork(RUNNER, [pathToFileURL(this.bundle).href, this.name, String(this.memoryMb)], {
      env: this.env,
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
      // A clean Node, as on Lambda: not this process's flags (a TypeScript loader, a test runner's), and a heap
      // bounded by the memory size so that a function that needs more fails here too.
      execArgv: [`--max-heap-size=${Math.floor(this.memoryMb * 0.9)}`],
    });
    const forward = (chunk: Buffer) => void this.logs.write(chunk);
    child.stdout?.on('data', forward);
    child.stderr?.on('data', forward);
    const instance: Instance = { child, ready: Promise.resolve(), busy: false };
    instance.ready = new Promise<void>((resolve, reject) => {
      const initTimer = setTimeout(() => {
        this.retire(instance);
        reject(new Error(`${this.name}: initialisation took longer than ${INIT_LIMIT_MS / 1000} s`));
      }, INIT_LIMIT_MS);
      const settle = () => clearTimeout(initTimer);
      child.once('error', (err) => (settle(), reject(err)));
      child.once('exit', (code, signal) => (settle(), reject(new Error(`${this.name} exited with ${code ?? signal} before it was ready (see its logs)`))));
      child.on('message', (message: RunnerMessage) => {
        if (message.ready) return settle(), resolve();
        const pending = this.pending.get(message.id!);
        if (!pending) return;
        this.pending.delete(message.id!);
        if (message.ok) pending.resolve(message.result);
        else pending.reject(new Error(`${this.name} failed: ${message.error?.message}`));
      });
    });
    instance.ready.catch(() => undefined);
    child.on('exit', (code, signal) => {
      const index = this.instances.indexOf(instance);
      if (index >= 0) this.instances.splice(index, 1);
      // An invocation still waiting on this instance gets an answer: it crashed, or the pool was closed under it.
      const why = this.closed ? 'the function pool was closed' : `the instance exited (${code ?? signal})`;
      for (const [id, pending] of this.pending) {
        if (pending.child !== child) continue;
        this.pending.delete(id);
        pending.reject(new Error(`${this.name}: ${why} during an invocation`));
      }
    });
    this.instances.push(instance);
    return instance;
  }
}

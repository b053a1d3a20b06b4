import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { Writable } from 'node:stream';

const RUNNER = fileURLToPath(new URL('./lambda-runner.mjs', import.meta.url));

interface Instance {
  child: ChildProcess;
  ready: Promise<void>;
  busy: boolean;
}

type Pending = { child: ChildProcess; resolve: (value: unknown) => void; reject: (err: Error) => void };

/**
 * Up to `size` instances of one function bundle, each its own Node process handling one invocation at a time,
 * configured only by its environment. Logs go to `logs`.
 */
export class FunctionPool {
  private readonly instances: Instance[] = [];
  private readonly queue: Array<() => void> = [];
  private readonly pending = new Map<number, Pending>();
  private nextId = 0;

  constructor(
    private readonly name: string,
    private readonly bundle: string,
    private readonly env: NodeJS.ProcessEnv,
    private readonly size: number,
    private readonly logs: Writable,
  ) {}

  async invoke<T>(event: unknown): Promise<T> {
    const instance = await this.acquire();
    try {
      const id = this.nextId++;
      return await new Promise<T>((resolve, reject) => {
        this.pending.set(id, { child: instance.child, resolve: resolve as (value: unknown) => void, reject });
        instance.child.send({ id, event });
      });
    } finally {
      instance.busy = false;
      this.queue.shift()?.();
    }
  }

  async close(): Promise<void> {
    await Promise.all(
      this.instances.map(
        (instance) =>
          new Promise<void>((resolve) => {
            if (instance.child.exitCode !== null) return resolve();
            instance.child.once('exit', () => resolve());
            instance.child.kill('SIGTERM');
          }),
      ),
    );
  }

  private async acquire(): Promise<Instance> {
    for (;;) {
      const free = this.instances.find((i) => !i.busy);
      if (free) {
        free.busy = true;
        await free.ready;
        return free;
      }
      if (this.instances.length < this.size) {
        const instance = this.spawn();
        instance.busy = true;
        await instance.ready;
        return instance;
      }
      await new Promise<void>((resolve) => this.queue.push(resolve));
    }
  }

  private spawn(): Instance {
    const child = fork(RUNNER, [pathToFileURL(this.bundle).href, this.name], { env: this.env, stdio: ['ignore', 'pipe', 'pipe', 'ipc'] });
    const forward = (chunk: Buffer) => void this.logs.write(chunk);
    child.stdout?.on('data', forward);
    child.stderr?.on('data', forward);
    const ready = new Promise<void>((resolve, reject) => {
      child.once('error', reject);
      child.once('exit', (code) => reject(new Error(`${this.name} exited with ${code} before it was ready (see its logs)`)));
      child.on('message', (message: { ready?: boolean; id?: number; ok?: boolean; result?: unknown; error?: { message: string } }) => {
        if (message.ready) return resolve();
        const pending = this.pending.get(message.id!);
        if (!pending) return;
        this.pending.delete(message.id!);
        if (message.ok) pending.resolve(message.result);
        else pending.reject(new Error(`${this.name} failed: ${message.error?.message}`));
      });
    });
    ready.catch(() => undefined);
    child.on('exit', (code, signal) => {
      const index = this.instances.findIndex((i) => i.child === child);
      if (index >= 0) this.instances.splice(index, 1);
      if (signal !== 'SIGTERM') {
        for (const [id, pending] of this.pending) {
          if (pending.child !== child) continue;
          pending.reject(new Error(`${this.name} instance exited (${code ?? signal}) during an invocation`));
          this.pending.delete(id);
        }
      }
    });
    const instance = { child, ready, busy: false };
    this.instances.push(instance);
    return instance;
  }
}

import { createServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Writable } from 'node:stream';
import type { PipelineConfig } from '../lambdas/core/shared/config.js';
import type { ReconcileReport } from '../lambdas/core/tasks/reconcile.js';

/** The reconciler's settings in the local pipeline; each defaults to the stack's configuration (cdk.json). */
export interface LocalReconcileOptions {
  /** How often the schedule invokes the reconciler (the stack's reconcileEveryMinutes, 15 min by default). */
  reconcileEveryMs?: number;
  /** Uploads still `submitting` after this long are looked up at Scale (the stack's reconcileAfterMinutes, 30). */
  reconcileAfterMinutes?: number;
  /** How far back it asks Scale for updated tasks (the stack's reconcileLookBackHours, 25). */
  reconcileLookBackHours?: number;
}

/** Where the reconcile function finds the table, bucket, Scale and the ingest queue, as the stack tells it. */
export interface ReconcileResources {
  TASKS_TABLE: string;
  RESULTS_BUCKET: string;
  SCALE_API_URL: string;
  SCALE_API_KEY_SECRET_ID: string;
  INGEST_QUEUE_URL: string;
}

/** The reconcile function's own variables: the stack's, with the local pipeline's settings where given. */
export function reconcileEnvironment(resources: ReconcileResources, config: PipelineConfig, options: LocalReconcileOptions): NodeJS.ProcessEnv {
  return {
    ...resources,
    ROUTING: JSON.stringify(config.routing),
    RECONCILE_AFTER_MINUTES: String(options.reconcileAfterMinutes ?? config.reconcileAfterMinutes),
    RECONCILE_LOOKBACK_HOURS: String(options.reconcileLookBackHours ?? config.reconcileLookBackHours),
    ERROR_RESUBMISSIONS: String(config.errorResubmissions),
  };
}

export interface ReconcilerWiring {
  /** Invokes the reconcile function once (its pool), answering its report. */
  invoke: () => Promise<ReconcileReport>;
  /** Moves the ingest queue's dead letters back (`POST <controlUrl>/redrive`), answering how many. */
  redrive: () => Promise<{ moved: number }>;
  everyMs: number;
  logs: Writable;
}

/**
 * The reconciler's triggers in the local pipeline: a schedule, as EventBridge Scheduler's rate schedule in the
 * stack, and on demand, `POST <controlUrl>/reconcile`, which invokes it and answers its report as JSON. The same
 * endpoint redrives the ingest dead letters (`POST <controlUrl>/redrive`), as SQS's redrive API does on a stack. A
 * scheduled run that finds the previous one still going is skipped rather than queued behind it, so a short
 * interval cannot pile up invocations.
 */
export async function startReconciler(wiring: ReconcilerWiring) {
  if (!(wiring.everyMs > 0)) throw new Error(`reconcile schedule: everyMs must be positive, not ${wiring.everyMs}`);
  let scheduledRun: Promise<unknown> | undefined;

  const timer = setInterval(() => {
    if (scheduledRun) return void wiring.logs.write('reconcile: the previous scheduled run is still going; this one is skipped\n');
    scheduledRun = wiring.invoke()
      .catch((err: Error) => void wiring.logs.write(`reconcile invocation failed: ${err.message}\n`))
      .finally(() => (scheduledRun = undefined));
  }, wiring.everyMs);

  const server = createServer((req, res) => {
    req.resume();
    const path = new URL(req.url ?? '/', 'http://control').pathname;
    const action = path === '/reconcile' ? wiring.invoke : path === '/redrive' ? wiring.redrive : undefined;
    if (!action) return send(res, 404, { error: `No such control route: ${req.method} ${path} (POST /reconcile, POST /redrive)` });
    if (req.method !== 'POST') return send(res, 405, { error: `POST ${path} is the only method` });
    action().then(
      (report) => send(res, 200, report),
      (err: Error) => send(res, 502, { error: err.message }),
    );
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));

  return {
    /** Origin of the control endpoint: `POST ${controlUrl}/reconcile`. */
    controlUrl: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    /** Runs the reconciler now (as the control endpoint does). */
    reconcile: () => wiring.invoke(),
    /** Stops the schedule and the endpoint; a run still going ends with the function pool's close. */
    async close() {
      clearInterval(timer);
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

function send(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(text)) }).end(text);
}

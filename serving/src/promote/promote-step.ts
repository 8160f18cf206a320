import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The built CLI next to this package (`/app/tasks/dist/cli.js` in the image, the repo's in dev). */
export const DEFAULT_CLI = fileURLToPath(new URL('../../../tasks/dist/cli.js', import.meta.url));

export interface PromoteStepRequest {
  /** The dataset whose contract the step reads; absent: the CLI's own default. */
  dataset?: string;
  /** The registered model, passed as DRIFTWOOD_MODEL_NAME so the step acts on the model this API serves. */
  modelName: string;
  version: string;
  alias: string;
  /** MLflow's tracking URI the API talks to. */
  trackingUri: string;
  /** The user the promotion is audited as. */
  user: string;
}

export interface PromoteStepOutcome {
  /** The CLI's exit code: 0 promoted, 99 gate not passed, 2 usage or configuration, else a fault. */
  code: number | null;
  /** The step's result JSON (`--output`), when it wrote one. */
  result: Record<string, unknown> | undefined;
  /** The last lines the step logged, for a failure's message. */
  stderr: string;
}

/** What `POST /v1/admin/promote` answers for an outcome of the step. Pure. */
export function promoteResponse(outcome: PromoteStepOutcome): {
  status: 200 | 400 | 404 | 409 | 502;
  body: Record<string, unknown>;
} {
  const said = lastLine(outcome.stderr);
  if (outcome.code === 0 && outcome.result) return { status: 200, body: outcome.result };
  const code = errorCode(outcome.stderr);
  const plain = said?.replace(/^driftwood [\w-]+: [A-Z_]+: /, '');
  // The version vanished between the route's check and the step's read.
  if (code === 'VERSION_NOT_FOUND')
    return { status: 404, body: { error: 'version_not_found', message: plain ?? 'no such version' } };
  // Another promotion or rollback moved the alias after this one was judged: evaluate again.
  if (code === 'CHAMPION_CHANGED')
    return { status: 409, body: { error: 'champion_changed', message: plain ?? 'the champion changed' } };
  // The version lacks what promotion reads (its evaluation evidence, its holdout): not a bad request,
  // a state to fix first (evaluate, or retrain).
  if (code === 'DATA_MISSING')
    return {
      status: 409,
      body: { error: 'not_ready', message: plain ?? 'the version cannot be judged yet' },
    };
  if (outcome.code === 99)
    return {
      status: 409,
      body: {
        error: 'gate_not_passed',
        message: String(outcome.result?.reason ?? said ?? 'the promotion gate did not pass'),
        result: outcome.result ?? null,
      },
    };
  if (outcome.code === 2)
    return {
      status: 400,
      body: { error: 'bad_request', message: said ?? 'the promote step refused its arguments' },
    };
  return {
    status: 502,
    body: {
      error: 'promotion_failed',
      message: `the promote step exited ${outcome.code ?? 'on a signal'}${said ? `: ${said}` : ''}`,
    },
  };
}

/** The error code the CLI reports on its last line (`driftwood promote: CODE: message`). */
function errorCode(stderr: string): string | undefined {
  const lines = stderr.trim().split('\n').filter(Boolean);
  return /^driftwood [\w-]+: ([A-Z_]+): /.exec(lines[lines.length - 1] ?? '')?.[1];
}

/** The last log line's message (the CLI logs JSON lines to stderr), or the last raw line. */
function lastLine(stderr: string): string | undefined {
  const lines = stderr.trim().split('\n').filter(Boolean);
  const last = lines[lines.length - 1];
  if (last === undefined) return undefined;
  try {
    const parsed = JSON.parse(last) as { msg?: unknown; err?: { message?: unknown } };
    return String(parsed.err?.message ?? parsed.msg ?? last);
  } catch {
    return last;
  }
}

/**
 * Runs `driftwood promote` — the same step the DAG and the CLI run, with its evaluation, gate,
 * smoke check and audit — in a child process, so a promotion's model loads and bootstrap never run
 * on the API's event loop, and reads the result it writes with `--output`.
 */
export async function runPromoteStep(
  req: PromoteStepRequest,
  opts: { cli?: string; env?: Record<string, string | undefined>; timeoutMs?: number } = {},
): Promise<PromoteStepOutcome> {
  const dir = await mkdtemp(path.join(tmpdir(), 'driftwood-promote-'));
  const output = path.join(dir, 'result.json');
  const args = [
    opts.cli ?? DEFAULT_CLI,
    'promote',
    ...(req.dataset ? ['--dataset', req.dataset] : []),
    '--version',
    req.version,
    '--alias',
    req.alias,
    '--output',
    output,
  ];
  try {
    const { code, stderr } = await new Promise<{ code: number | null; stderr: string }>((resolve, reject) => {
      const child = spawn(process.execPath, args, {
        env: {
          ...process.env,
          ...opts.env,
          MLFLOW_TRACKING_URI: req.trackingUri,
          DRIFTWOOD_MODEL_NAME: req.modelName,
          ...(req.dataset ? { DRIFTWOOD_DATASET: req.dataset } : {}),
          DRIFTWOOD_USER: req.user,
          LOG_LEVEL: 'info',
        },
        stdio: ['ignore', 'ignore', 'pipe'],
        timeout: opts.timeoutMs ?? 10 * 60_000,
      });
      let err = '';
      child.stderr?.on('data', (d: Buffer) => {
        // Keep the tail only: a failure's message is in the last lines.
        err = (err + d.toString()).slice(-16_384);
      });
      child.on('error', reject);
      child.on('close', (c) => resolve({ code: c, stderr: err }));
    });
    const text = await readFile(output, 'utf8').catch(() => undefined);
    let result: Record<string, unknown> | undefined;
    try {
      result = text ? (JSON.parse(text) as Record<string, unknown>) : undefined;
    } catch {
      result = undefined;
    }
    return { code, result, stderr };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

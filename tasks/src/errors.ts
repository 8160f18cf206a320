/**
 * Typed, coded errors. The CLI maps them to exit codes, which are the contract with Airflow:
 * 0 ok, 1 a fault worth retrying, 2 an error retrying will not fix (usage, configuration, data
 * missing, not found, schema: the DAGs fail such a task at once instead of retrying it),
 * 99 nothing to act on — a quality gate not passed, or NOTHING_NEW (no data in the lake at all) —
 * which the DAG maps to *skipped* (see BashOperator's skip_on_exit_code).
 * CHAMPION_CHANGED (exit 2): the alias moved since the candidate was judged; the same step retried
 * would judge against a stale champion, so it must be evaluated again first.
 */
export type ErrorCode =
  | 'CONFIG_INVALID'
  | 'USAGE'
  | 'MLFLOW_UNAVAILABLE'
  | 'MLFLOW_ERROR'
  | 'HTTP_ERROR'
  | 'DATA_MISSING'
  | 'SCHEMA_MISMATCH'
  | 'MODEL_INVALID'
  | 'GATE_NOT_PASSED'
  | 'VERSION_NOT_FOUND'
  | 'CHAMPION_CHANGED'
  | 'NOTHING_NEW'
  // forget reached all but some places (MLflow down, a running API's spill file): re-run it (exit 1).
  | 'ERASURE_INCOMPLETE';

export const EXIT_OK = 0;
export const EXIT_RETRYABLE = 1;
export const EXIT_USAGE = 2;
export const EXIT_GATE_NOT_PASSED = 99;

const NOT_RETRYABLE: ReadonlySet<ErrorCode> = new Set([
  'CONFIG_INVALID',
  'USAGE',
  // Data that is not there now is not there in five minutes either: the next scheduled run looks again.
  'DATA_MISSING',
  'SCHEMA_MISMATCH',
  'VERSION_NOT_FOUND',
  'CHAMPION_CHANGED',
]);

export class DriftwoodError extends Error {
  readonly code: ErrorCode;
  readonly details: Record<string, unknown>;

  constructor(
    code: ErrorCode,
    message: string,
    details: Record<string, unknown> = {},
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.name = 'DriftwoodError';
    this.code = code;
    this.details = details;
  }

  get exitCode(): number {
    // Both mean "nothing to act on": the DAG marks the task skipped, and so the steps after it.
    if (this.code === 'GATE_NOT_PASSED' || this.code === 'NOTHING_NEW') return EXIT_GATE_NOT_PASSED;
    // MLflow refusing a request (a 4xx: not found, invalid value) refuses it again on retry.
    const refused = this.code === 'MLFLOW_ERROR' && typeof this.details.status === 'number';
    return NOT_RETRYABLE.has(this.code) || refused ? EXIT_USAGE : EXIT_RETRYABLE;
  }
}

export function isDriftwoodError(err: unknown, code?: ErrorCode): err is DriftwoodError {
  return err instanceof DriftwoodError && (code === undefined || err.code === code);
}

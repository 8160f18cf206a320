/**
 * Typed, coded errors. The CLI maps them to exit codes, which are the contract with Airflow:
 * 0 ok, 1 a fault worth retrying, 2 a usage/config error (retrying will not help),
 * 99 a quality gate not passed (the DAG maps it to *skipped*, see BashOperator's skip_on_exit_code).
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
  | 'CHAMPION_CHANGED';

export const EXIT_OK = 0;
export const EXIT_RETRYABLE = 1;
export const EXIT_USAGE = 2;
export const EXIT_GATE_NOT_PASSED = 99;

const NOT_RETRYABLE: ReadonlySet<ErrorCode> = new Set([
  'CONFIG_INVALID',
  'USAGE',
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
    if (this.code === 'GATE_NOT_PASSED') return EXIT_GATE_NOT_PASSED;
    return NOT_RETRYABLE.has(this.code) ? EXIT_USAGE : EXIT_RETRYABLE;
  }
}

export function isDriftwoodError(err: unknown, code?: ErrorCode): err is DriftwoodError {
  return err instanceof DriftwoodError && (code === undefined || err.code === code);
}

import { isDriftwoodError } from '@driftwood/tasks';
import type { SourceStatus } from '../routes/dashboard-types.js';

/**
 * The dashboard's view of its other sources (Airflow's API, the drift sidecar): a source that is
 * not configured or does not answer is reported as such, never made up. The clients live with their
 * services (`airflow/`, `evidently/`); this is only the honest state the pages show.
 */

/** A reply we could not use; `unreachable` when nothing answered at all. */
export class SourceError extends Error {
  constructor(
    readonly state: 'unreachable' | 'error',
    message: string,
  ) {
    super(message);
  }
}

/** Reads a configured source (undefined: not configured) and folds its failures into an honest state. */
export async function probe<T>(
  setting: string,
  source: { url: string; read: () => Promise<T> } | undefined,
): Promise<SourceStatus<T>> {
  if (!source) return { state: 'not_configured', source: null, message: `set ${setting}`, data: null };
  try {
    return { state: 'ok', source: source.url, message: null, data: await source.read() };
  } catch (err) {
    if (err instanceof SourceError)
      return { state: err.state, source: source.url, message: err.message, data: null };
    throw err;
  }
}

/** A client's error as the state the dashboard shows: `unreachable` when nothing answered. */
export function asSourceError(err: unknown): unknown {
  if (!isDriftwoodError(err)) return err;
  return new SourceError(err.details.status === undefined ? 'unreachable' : 'error', err.message);
}

export const str = (v: unknown): string | null => (typeof v === 'string' && v !== '' ? v : null);
export const num = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null);
export const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

import { DriftwoodError } from './errors.js';

export const HOUR_MS = 3_600_000;
export const DAY_MS = 24 * HOUR_MS;

/** Parses an ISO time; the error names the option it came from. */
export function parseTime(value: string, option: string): number {
  const t = Date.parse(value);
  if (!Number.isFinite(t))
    throw new DriftwoodError(
      'USAGE',
      `${option}: expected an ISO time such as 2026-11-01T00:00Z, got '${value}'`,
    );
  return t;
}

/** Parses `<start>/<end>` (Airflow's data interval). */
export function parseInterval(value: string, option = '--interval'): { start: number; end: number } {
  const [a, b, ...rest] = value.split('/');
  if (a === undefined || b === undefined || rest.length > 0) {
    throw new DriftwoodError('USAGE', `${option}: expected <start>/<end> in ISO time, got '${value}'`);
  }
  const start = parseTime(a, option);
  const end = parseTime(b, option);
  if (end <= start) throw new DriftwoodError('USAGE', `${option}: end must be after start, got '${value}'`);
  return { start, end };
}

/** The lake partition of an hour: `dt=YYYY-MM-DD/hr=HH`. */
export function partitionOf(timeMs: number): string {
  const iso = new Date(timeMs).toISOString();
  return `dt=${iso.slice(0, 10)}/hr=${iso.slice(11, 13)}`;
}

/** The start of the hour of a `…/dt=YYYY-MM-DD/hr=HH/…` key, or undefined. */
export function hourOfKey(key: string): number | undefined {
  const m = /dt=(\d{4}-\d{2}-\d{2})\/hr=(\d{2})\//.exec(key);
  return m ? Date.parse(`${m[1]}T${m[2]}:00:00Z`) : undefined;
}

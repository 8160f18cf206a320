import { appendFileSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { ROOT } from './env.js';

/**
 * The reliability suite (tests/reliability) runs at two sizes: `ci` (the default, small enough for
 * every CI run) and `full` (`make test-reliability`, the sizes the acceptance table names). A check
 * reads its size with `atScale({ ci, full })` and records what it measured with `recordRow`, and
 * `scripts/reliability-table.mjs` prints the rows as a goal-vs-measured table.
 */
export type ReliabilityScale = 'ci' | 'full';

export function reliabilityScale(): ReliabilityScale {
  return process.env.DRIFTWOOD_RELIABILITY_SCALE === 'full' ? 'full' : 'ci';
}

export function atScale<T>(sizes: { ci: T; full: T }): T {
  return sizes[reliabilityScale()];
}

export interface ReliabilityRow {
  /** What was exercised, e.g. "kill -9 during ingest". */
  check: string;
  /** The goal in words, e.g. "0 rows lost or duplicated". */
  goal: string;
  /** What this run measured, in words with numbers, e.g. "0 lost, 0 duplicated over 20 kills". */
  measured: string;
  ok: boolean;
}

/** Where rows are appended (one JSON object per line); the table script reads the same file. */
export const RELIABILITY_ROWS =
  process.env.DRIFTWOOD_RELIABILITY_ROWS ?? path.join(ROOT, '.driftwood', 'test', 'reliability.jsonl');

export function recordRow(row: ReliabilityRow): void {
  mkdirSync(path.dirname(RELIABILITY_ROWS), { recursive: true });
  appendFileSync(RELIABILITY_ROWS, `${JSON.stringify({ ...row, scale: reliabilityScale() })}\n`);
}

import { DriftwoodError } from '../errors.js';

/**
 * Where a feature build aggregates: in the warehouse itself (one statement on SQLite or PostgreSQL),
 * or in an embedded DuckDB that the rows of the window are copied into first. DuckDB's build has no
 * extension to read a SQLite file or PostgreSQL (those are downloads at run time), so the copy goes
 * through Node.
 */
export type FeatureEngine = 'warehouse' | 'duckdb';

/** DRIFTWOOD_FEATURE_ENGINE: `warehouse` (the default; `sqlite` and `postgres` say the same) or `duckdb`. */
export function featureEngine(env: Record<string, string | undefined>): FeatureEngine {
  const value = env.DRIFTWOOD_FEATURE_ENGINE?.trim().toLowerCase();
  if (
    value === undefined ||
    value === '' ||
    value === 'warehouse' ||
    value === 'sqlite' ||
    value === 'postgres'
  )
    return 'warehouse';
  if (value === 'duckdb') return 'duckdb';
  throw new DriftwoodError(
    'CONFIG_INVALID',
    `DRIFTWOOD_FEATURE_ENGINE: expected 'warehouse' or 'duckdb', got '${env.DRIFTWOOD_FEATURE_ENGINE}'`,
  );
}

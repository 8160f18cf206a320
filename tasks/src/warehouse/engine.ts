import type { Warehouse } from './db.js';

/**
 * Where a feature build aggregates: in the warehouse itself (one statement on SQLite or PostgreSQL),
 * or in an embedded DuckDB that the window's events are fed into first. DuckDB's build has no
 * extension to read a SQLite file or PostgreSQL (those are downloads at run time), so the events
 * go through Node. Chosen by DRIFTWOOD_FEATURE_ENGINE (`readFeatureEngine` in config.ts).
 */
export type FeatureEngine = 'warehouse' | 'duckdb';

/** The engine the warehouse handle was opened with (`openWarehouse`'s option); the warehouse when none. */
export function engineOf(db: Warehouse): FeatureEngine {
  return db.userParams?.featureEngine === 'duckdb' ? 'duckdb' : 'warehouse';
}

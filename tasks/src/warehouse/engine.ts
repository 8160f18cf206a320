import type { FeatureEngine, Warehouse } from './db.js';

export type { FeatureEngine } from './db.js';

/** The engine the warehouse handle was opened with (`openWarehouse`'s option); the warehouse when none. */
export function engineOf(db: Warehouse): FeatureEngine {
  return db.userParams?.featureEngine === 'duckdb' ? 'duckdb' : 'warehouse';
}

import type { Contract } from '../contracts/types.js';
import { DriftwoodError } from '../errors.js';
import { DEFAULT_FORECAST_POLICY } from './gate.js';

/** The forecast settings of a sequence_forecast contract, with every default filled in. */
export interface ForecastConfig {
  table: string;
  timeColumn: string;
  target: string;
  /** Hours of history in one input window. */
  windowHours: number;
  /** How many hours ahead the target close lies (1 = the next hour). */
  horizonHours: number;
  /** k of the moving-average baseline (mean of the last k closes). */
  movingAverageHours: number;
  validationFraction: number;
  testFraction: number;
  /** The share by which a challenger's test RMSE must undercut persistence's (the gate's margin). */
  persistenceMargin: number;
}

export const FORECAST_DEFAULTS = {
  windowHours: 24,
  horizonHours: 1,
  movingAverageHours: 24,
  validationFraction: 0.15,
  testFraction: 0.15,
  persistenceMargin: DEFAULT_FORECAST_POLICY.minImprovement,
} as const;

export function forecastConfig(contract: Contract): ForecastConfig {
  const f = contract.forecast;
  if (contract.task !== 'sequence_forecast' || !f)
    throw new DriftwoodError(
      'CONFIG_INVALID',
      `contract ${contract.dataset}: a sequence_forecast contract with a 'forecast' section is needed (task is ${contract.task})`,
    );
  const windowHours = f.window_hours ?? FORECAST_DEFAULTS.windowHours;
  const movingAverageHours =
    f.moving_average_hours ?? Math.min(FORECAST_DEFAULTS.movingAverageHours, windowHours + 1);
  if (movingAverageHours > windowHours + 1)
    throw new DriftwoodError(
      'CONFIG_INVALID',
      `contract ${contract.dataset}: /forecast/moving_average_hours: at most window_hours + 1 (${windowHours + 1}) closes are in a window, got ${movingAverageHours}`,
    );
  return {
    table: f.table,
    timeColumn: f.time_column,
    target: f.target,
    windowHours,
    horizonHours: f.horizon_hours ?? FORECAST_DEFAULTS.horizonHours,
    movingAverageHours,
    validationFraction: f.split?.validation ?? FORECAST_DEFAULTS.validationFraction,
    testFraction: f.split?.test ?? FORECAST_DEFAULTS.testFraction,
    persistenceMargin: f.persistence_margin ?? FORECAST_DEFAULTS.persistenceMargin,
  };
}

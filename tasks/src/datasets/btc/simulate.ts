import { toCsv } from '../../csv.js';
import { Rng } from '../../random.js';
import { HOUR_MS, partitionOf } from '../../time.js';
import { CANDLE_COLUMNS, type Candle } from './candle.js';

export interface CandleSimulation {
  start: number;
  hours: number;
  seed: number;
  /**
   * Lag-1 autocorrelation of hourly returns (short-term momentum). 0 with `drift` 0 makes the close
   * a pure (volatility-clustered) random walk, for which the persistence forecast is optimal.
   */
  autocorrelation?: number;
  /** Size of the per-regime hourly drift of the log price. */
  drift?: number;
  /** Chance per hour that the feed stops for 1–6 hours (those hours land no file). */
  gapRate?: number;
  startPrice?: number;
}

export const CANDLE_HEADER = CANDLE_COLUMNS;

/** Calm and turbulent regimes: long-run hourly volatility of the log price. */
const BASE_VOL = 0.006;
const TURBULENT_VOL = 0.014;
/** GARCH(1,1): σ²ₜ = ω + α·ε²ₜ₋₁ + β·σ²ₜ₋₁ (persistence α+β = 0.97 is typical of hourly crypto returns). */
const ALPHA = 0.08;
const BETA = 0.89;
/** Mean regime length: about ten days. */
const REGIME_SWITCH = 1 / 240;
const SUBSTEPS = 6;

const round = (v: number, digits: number) => Math.round(v * 10 ** digits) / 10 ** digits;

export interface SimulatedCandles {
  candles: Candle[];
  /** Hours in [start, start + hours) for which the feed delivered nothing. */
  missing: number[];
}

/**
 * A deterministic, realistic hourly BTC-like series: GARCH volatility clustering, regimes that flip
 * the drift's sign and the volatility level, occasional fat-tailed jumps, high/low from an intra-hour
 * path, volume that rises with the size of the move, and outages (missing hours). Pure: the same
 * options give the same candles.
 */
export function simulateCandles(sim: CandleSimulation): SimulatedCandles {
  const rng = new Rng(sim.seed);
  const phi = sim.autocorrelation ?? 0.25;
  const drift = sim.drift ?? 0.0002;
  const gapRate = sim.gapRate ?? 0.004;
  let price = sim.startPrice ?? 40_000 + rng.next() * 30_000;
  let turbulent = false;
  let direction = rng.pick([1, -1, 0]);
  let longRun = BASE_VOL;
  let variance = longRun ** 2;
  let lastReturn = 0;
  let logVolume = Math.log(600);
  let gapLeft = 0;
  const candles: Candle[] = [];
  const missing: number[] = [];
  for (let h = 0; h < sim.hours; h++) {
    const openTime = sim.start + h * HOUR_MS;
    if (rng.next() < REGIME_SWITCH) {
      direction = rng.pick([1, -1, 0].filter((d) => d !== direction));
      turbulent = rng.next() < 0.35;
      longRun = turbulent ? TURBULENT_VOL : BASE_VOL;
    }
    const sigma = Math.sqrt(variance);
    const jump = rng.next() < 0.003 ? rng.normal(0, 4 * sigma) : 0;
    const shock = sigma * rng.normal() + jump;
    const mu = direction * drift;
    const ret = mu + phi * (lastReturn - mu) + shock;
    variance = longRun ** 2 * (1 - ALPHA - BETA) + ALPHA * shock ** 2 + BETA * variance;
    lastReturn = ret;

    const open = price;
    const close = price * Math.exp(ret);
    // An intra-hour path (a Brownian bridge from open to close) gives the high and the low.
    let high = Math.max(open, close);
    let low = Math.min(open, close);
    let walk = 0;
    const steps: number[] = [];
    for (let s = 0; s < SUBSTEPS; s++) {
      walk += rng.normal(0, sigma / Math.sqrt(SUBSTEPS));
      steps.push(walk);
    }
    steps.forEach((w, s) => {
      const p = open * Math.exp(w - (walk - ret) * ((s + 1) / SUBSTEPS));
      high = Math.max(high, p);
      low = Math.min(low, p);
    });
    logVolume = 0.7 * logVolume + 0.3 * Math.log(600) + 0.25 * rng.normal();
    const volume = Math.exp(logVolume) * (1 + (3 * Math.abs(ret)) / BASE_VOL) * (turbulent ? 1.6 : 1);
    price = close;

    if (gapLeft === 0 && rng.next() < gapRate) gapLeft = rng.int(1, 7);
    if (gapLeft > 0) {
      gapLeft--;
      missing.push(openTime);
      continue;
    }
    candles.push({
      openTime,
      open: round(open, 2),
      high: round(high, 2),
      low: round(low, 2),
      close: round(close, 2),
      volume: round(volume, 4),
    });
  }
  return { candles, missing };
}

/** The candles as hourly lake files: `raw/<dataset>/dt=YYYY-MM-DD/hr=HH/candles.csv`, one row each. */
export function candleFiles(candles: readonly Candle[], dataset: string): Map<string, string> {
  const files = new Map<string, string>();
  for (const c of candles)
    files.set(
      `raw/${dataset}/${partitionOf(c.openTime)}/candles.csv`,
      toCsv(CANDLE_HEADER, [[new Date(c.openTime).toISOString(), c.open, c.high, c.low, c.close, c.volume]]),
    );
  return files;
}

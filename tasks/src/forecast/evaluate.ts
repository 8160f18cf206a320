import { DriftwoodError, isDriftwoodError } from '../errors.js';
import type { Logger } from '../log.js';
import type { MlflowClient } from '../mlflow/client.js';
import type { ModelVersion } from '../mlflow/types.js';
import { challengerVersion, type PromoteDeps, promoteJudged } from '../promote/index.js';
import { HOUR_MS } from '../time.js';
import type { Candle } from './candles.js';
import {
  DEFAULT_FORECAST_POLICY,
  decideForecastPromotion,
  type ForecastGateCheck,
  type ForecastGatePolicy,
} from './gate.js';
import { type ForecastMetrics, forecastMetrics, persistenceForecast } from './metrics.js';
import { candlesNeeded, type ForecastModel, forecastNext, loadForecastVersion } from './predict.js';
import { modelPrices, TEST_CANDLES_ARTIFACT } from './train.js';
import { buildWindows, type Window } from './windows.js';

export interface ForecastPromoteOptions {
  modelName: string;
  /** The version to judge; by default the one behind `challenger`. */
  version?: string;
  alias: string;
  policy?: ForecastGatePolicy;
}

/** The same clients, clock and user as the churn promotion. */
export type ForecastPromoteDeps = PromoteDeps;

export interface ForecastPromoteResult {
  modelName: string;
  alias: string;
  version: string;
  previous: string | null;
  promoted: boolean;
  reason: string;
  checks: ForecastGateCheck[];
  evaluation: {
    hours: number;
    from: string;
    to: string;
    challenger: ForecastMetrics;
    persistence: ForecastMetrics;
    champion: (ForecastMetrics & { version: string }) | null;
    /** Why the champion could not be scored, when it could not. */
    championUnusable?: string;
  };
}

/** The test-period candles the version's training run recorded. */
export async function versionTestCandles(mlflow: MlflowClient, mv: ModelVersion): Promise<Candle[]> {
  if (!mv.run_id)
    throw new DriftwoodError('MODEL_INVALID', `version ${mv.version} has no run: its test period is unknown`);
  const run = await mlflow.getRun(mv.run_id);
  return JSON.parse(
    (await mlflow.downloadArtifact(run.info.artifact_uri, TEST_CANDLES_ARTIFACT)).toString('utf8'),
  );
}

/**
 * Judges a forecast model version with the gate: the challenger, the persistence forecast and the
 * current holder of the alias are scored on the same hours (the challenger's test period), then the
 * alias moves only when the gate passes. The decision goes onto the version as tags either way
 * (`driftwood.gate_reason`); a refusal is a GATE_NOT_PASSED error (exit code 99) carrying the result.
 */
export async function runForecastPromote(
  options: ForecastPromoteOptions,
  deps: ForecastPromoteDeps,
): Promise<ForecastPromoteResult> {
  const { mlflow } = deps;
  const mv = await challengerVersion(mlflow, options);
  const candles = await versionTestCandles(mlflow, mv);
  const holder = await mlflow.getVersionByAlias(options.modelName, options.alias);
  const previous = holder?.version ?? null;

  const challenger = await loadForecastVersion(mlflow, mv);
  let champion: ForecastModel | undefined;
  let championUnusable: string | undefined;
  try {
    if (holder && holder.version !== mv.version) {
      try {
        champion = await loadForecastVersion(mlflow, holder);
        if (champion.state.horizonHours !== challenger.state.horizonHours)
          championUnusable = `champion v${holder.version} forecasts ${champion.state.horizonHours} h ahead, the challenger ${challenger.state.horizonHours} h`;
      } catch (err) {
        if (!isDriftwoodError(err, 'MODEL_INVALID')) throw err;
        championUnusable = `champion v${holder.version} cannot be loaded: ${err.message}`;
      }
    }
    const own = buildWindows(candles, challenger.state).windows;
    const theirs = champion && !championUnusable ? buildWindows(candles, champion.state).windows : undefined;
    // The same hours for everyone: the targets both models can forecast from the recorded candles.
    const common = theirs ? new Set(theirs.map((w) => w.targetTime)) : undefined;
    const hours = common ? own.filter((w) => common.has(w.targetTime)) : own;
    if (hours.length === 0)
      throw new DriftwoodError('DATA_MISSING', `version ${mv.version}: no test hours to score on`);
    const score = (m: ForecastModel, windows: readonly Window[]) =>
      forecastMetrics(
        windows.map((w) => w.targetClose),
        modelPrices(m.model, m.state, windows),
        windows.map((w) => w.lastClose),
      );
    const challengerMetrics = score(challenger, hours);
    const persistence = forecastMetrics(
      hours.map((w) => w.targetClose),
      persistenceForecast(hours),
      hours.map((w) => w.lastClose),
    );
    const kept = new Set(hours.map((w) => w.targetTime));
    const championMetrics =
      champion && theirs && holder && !championUnusable
        ? {
            version: holder.version,
            ...score(
              champion,
              theirs.filter((w) => kept.has(w.targetTime)),
            ),
          }
        : null;
    const decision = decideForecastPromotion(
      {
        challenger: { version: mv.version, rmse: challengerMetrics.rmse },
        persistence: { rmse: persistence.rmse },
        // A champion that cannot be scored on these hours cannot be beaten on them either.
        champion:
          championUnusable && holder ? { version: holder.version, rmse: Number.NaN } : championMetrics,
        hours: hours.length,
      },
      options.policy ?? DEFAULT_FORECAST_POLICY,
    );
    const reason = championUnusable ? `${decision.reason} (${championUnusable})` : decision.reason;
    const result: ForecastPromoteResult = {
      modelName: options.modelName,
      alias: options.alias,
      version: mv.version,
      previous,
      promoted: decision.promote,
      reason,
      checks: decision.checks,
      evaluation: {
        hours: hours.length,
        from: new Date((hours[0] as Window).targetTime).toISOString(),
        to: new Date((hours.at(-1) as Window).targetTime).toISOString(),
        challenger: challengerMetrics,
        persistence,
        champion: championMetrics,
        ...(championUnusable ? { championUnusable } : {}),
      },
    };
    const at = new Date(deps.now()).toISOString();
    await mlflow.setModelVersionTag(options.modelName, mv.version, 'driftwood.gate_reason', clip(reason));
    await mlflow.setModelVersionTag(
      options.modelName,
      mv.version,
      `driftwood.gate.${options.alias}`,
      clip(`${decision.promote ? 'passed' : 'failed'} at ${at}: ${reason}`),
    );
    await mlflow.setModelVersionTag(
      options.modelName,
      mv.version,
      `driftwood.evaluation.${options.alias}`,
      clip(JSON.stringify({ at, ...result.evaluation })),
    );
    if (!decision.promote) {
      deps.log.warn(result, 'promote: forecast gate not passed, alias left where it was');
      throw new DriftwoodError(
        'GATE_NOT_PASSED',
        `version ${mv.version} not promoted to ${options.alias}: ${reason}`,
        { result },
      );
    }
    // As for the tabular models: staged under its own alias, then a compare-and-set under the alias
    // lock against the holder this gate judged, so concurrent promotions cannot both win.
    if (previous !== mv.version)
      result.previous = await promoteJudged(
        mlflow,
        options.modelName,
        { alias: options.alias, version: mv.version, by: deps.user ?? 'driftwood', reason },
        previous,
        deps.now,
        options.alias === 'champion'
          ? () => stageAndSmokeTest(mlflow, options.modelName, mv.version, candles, deps.log)
          : undefined,
      );
    deps.log.info(result, `promote: ${options.alias} is version ${mv.version}`);
    return result;
  } finally {
    challenger.dispose();
    champion?.dispose();
  }
}

/**
 * Staged first under the version's own alias (`staging-<version>`, so concurrent promotions never
 * read each other's), as for the churn models: the version is loaded through its alias the way
 * serving loads it and forecasts the hour after its last recorded candles; a load failure or a price
 * that is not a finite positive number stops the promotion before `champion` moves. Returns the alias.
 */
async function stageAndSmokeTest(
  mlflow: MlflowClient,
  name: string,
  version: string,
  candles: readonly Candle[],
  log: Logger,
): Promise<string> {
  const alias = `staging-${version}`;
  await mlflow.setAlias(name, alias, version);
  const mv = await mlflow.getVersionByAlias(name, alias);
  if (mv?.version !== version) {
    await mlflow.deleteAlias(name, alias).catch(() => undefined);
    throw new DriftwoodError(
      'MODEL_INVALID',
      `${alias} resolved to version ${mv?.version}, expected ${version}`,
    );
  }
  const staged = await loadForecastVersion(mlflow, mv);
  try {
    const next = forecastNext(staged, lastConsecutive(candles, candlesNeeded(staged.state)));
    if (!(Number.isFinite(next.price) && next.price > 0))
      throw new DriftwoodError(
        'MODEL_INVALID',
        `version ${version} on staging forecast ${next.price}, not a positive price`,
      );
    log.info({ version, alias, forecast: next }, 'promote: staging smoke check passed');
    return alias;
  } catch (err) {
    await mlflow.deleteAlias(name, alias).catch(() => undefined);
    throw err;
  } finally {
    staged.dispose();
  }
}

/** The newest `n` candles in consecutive hours (the recorded test candles may have gaps). */
export function lastConsecutive(candles: readonly Candle[], n: number): readonly Candle[] {
  let end = candles.length;
  for (let i = candles.length - 1; i > 0 && end - i < n; i--)
    if ((candles[i] as Candle).openTime !== (candles[i - 1] as Candle).openTime + HOUR_MS) end = i;
  return candles.slice(Math.max(0, end - n), end);
}

/** MLflow caps tag values at 8000 characters. */
const clip = (s: string): string => (s.length > 8000 ? `${s.slice(0, 7997)}...` : s);

#!/usr/bin/env node
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { commandUsage, didYouMean, unknownOptionOf } from './cli-help.js';
import {
  type Config,
  environmentWithDotenv,
  experimentFor,
  loadConfig,
  modelNameFor,
  overridesIgnored,
} from './config.js';
import type { DatasetSettings } from './contracts/settings.js';
import {
  DriftwoodError,
  EXIT_GATE_NOT_PASSED,
  EXIT_OK,
  EXIT_RETRYABLE,
  EXIT_USAGE,
  isDriftwoodError,
} from './errors.js';
import type { TaskKind } from './kinds/types.js';
import { createLogger, type Logger } from './log.js';
import { MODEL_FLAGS, POLICY_FLAGS } from './train/cli-options.js';
import type { Warehouse } from './warehouse/db.js';

const USAGE = `driftwood <command> [options]

Commands:
  simulate  --dataset <name> --start <ISO hour> --hours N --seed S [--customers N] [--anomalies 0.05]
            [--drift price:0.3,plan:0.5,activity:0.6 --drift-start <ISO hour>]
  extract   --dataset <name> --source <http(s) URL | lake key> --interval <start>/<end> [--zero-volume keep|drop]
  ingest    --dataset <name> [--interval <start>/<end> | --until <ISO time>] [--batch-rows N]
  snapshot  --dataset <name> --as-of <ISO time|latest> [--horizon-hours N] | --list | --show <id>
  features  --dataset <name> [--snapshot ID|latest | --snapshot-as-of <ISO time|latest> | --cutoff <ISO time>]
            features/<dataset>/<id>/ in the lake; --snapshot-as-of takes (or first makes) the snapshot as of a time
  train     --dataset <name> [--cutoff <ISO time> | --snapshot ID|latest | --snapshot-as-of <ISO time|latest>]
            [--model auto|logistic|mlp|gbdt] [--solver adam|exact] [--seed S] [--epochs N]
            [--learning-rate R] [--batch-size N] [--l2 X] [--hidden-units 32,16] [--patience N] [--no-class-weights] [--no-monotonic]
            gbdt: [--trees N] [--max-leaves N] [--max-depth N] [--min-leaf N] [--max-bins N] [--subsample F] [--colsample F]
            a sequence_forecast dataset trains the LSTM forecaster, and promote gates it against persistence
  tune      --dataset <name> [--strategy grid|random] [--max-trials N] [--space 'learningRate=0.01,0.05;kind=logistic,mlp']
            [--folds 5] [--budget-seconds N]   ranks trials by k-fold CV on the training part; the holdout measures the chosen one
  evaluate  [--dataset <name>] [--version N] [--alias champion]   scores challenger and champion on the same holdout;
            the evidence goes to evidence/<alias>.json on the challenger's run, which promote decides from
  promote   [--dataset <name>] [--version N] [--alias champion] [--min-auc 0.6] [--margin 0] [--max-regression 0.05]
            [--segment-tolerance 0.05] [--min-segment-size 30]
  rollback  [--dataset <name>] [--alias champion] [--version N] [--reason TEXT]
  history   [--dataset <name>] [--alias champion] [--at <ISO time>]   the audit trail; which version held the alias at a time
  experiment --name <experiment> | --dataset <name> --all-running   [--as-of <ISO time>]
            one look at a running A/B experiment (or every running one of the dataset) as of the time: outcomes from
            the prediction log and the labels, the sequential test and the decision, recorded on its MLflow run; once
            per time (a re-run adds no look); a promote decision of an experiment declared with on_decision: promote
            moves champion through the promotion gate (docs/experiments.md)
  score     --dataset <name> --as-of <ISO time> [--alias champion] [--stage all|inputs|publish]
            every active entity's score as of the time into the lake (scores/<dataset>/dt=…/hr=…/) and the
            warehouse (batch_scores); inputs/publish frame the Spark engine's job (docs/scoring.md)
  serve     starts the prediction API
  forget    --customer <id> [--dataset <name>]   erases a customer from the warehouse and the lake
  replay    --dataset <name> --from <snapshot id|latest|lake key> --api <URL> [--rate N] [--batch N] [--limit N]
            sends stored rows through the API (Basic auth from DRIFTWOOD_REPLAY_AUTH=user:password)

--dataset defaults to DRIFTWOOD_DATASET, else to the one tabular contract in the contracts folder
(for extract: the one sequence_forecast contract); a dataset's model name, experiment, label window
and split come from its contract.

Every command prints its result as JSON on stdout and writes it to <DRIFTWOOD_HOME>/results/<command>.json
(and to --output FILE). Logs go to stderr. Exit codes: 0 ok, 1 retryable fault, 2 not retryable
(usage, configuration, data missing, not found), 99 nothing to act on (a quality gate not passed,
or an empty lake): Airflow marks the task skipped.`;

type Values = Record<string, string | boolean | undefined>;

const int = (v: Values, name: string, fallback: number): number => {
  const raw = v[name];
  if (raw === undefined) return fallback;
  if (typeof raw !== 'string' || !/^\d+$/.test(raw))
    throw new DriftwoodError('USAGE', `--${name}: expected a whole number, got '${raw}'`);
  return Number(raw);
};
const str = (v: Values, name: string, fallback?: string): string => {
  const raw = v[name];
  if (typeof raw === 'string') return raw;
  if (fallback !== undefined) return fallback;
  throw new DriftwoodError('USAGE', `--${name} is required`);
};

interface Context {
  config: Config;
  log: Logger;
  values: Values;
}

/**
 * Opens the warehouse for one step and closes it whatever the step does. The tables of the step's
 * dataset are made from its contract first, so a step that reads before any ingest finds them empty.
 */
async function withWarehouse<T>(
  config: Config,
  values: Values,
  step: (db: Warehouse) => Promise<T>,
): Promise<T> {
  const { openWarehouse } = await import('./warehouse/db.js');
  // The DuckDB engine reads the events' Parquet files from the lake; ingest writes them there.
  const lake =
    config.featureEngine === 'duckdb'
      ? (await import('./lake/object-store.js')).openObjectStore(config.lakeUri, config.s3)
      : undefined;
  const db = await openWarehouse(config.warehouseUrl, {
    featureEngine: config.featureEngine,
    ...(lake ? { lake } : {}),
  });
  try {
    if (typeof values.dataset === 'string') {
      const { loadContract } = await import('./contracts/index.js');
      const { ensureContractTables } = await import('./ingest/schema.js');
      await ensureContractTables(db, await loadContract(values.dataset, config.contractsDir));
    }
    return await step(db);
  } finally {
    await db.destroy();
  }
}

/** The settings the contract of `--dataset` declares (model name, experiment, label window, split). */
async function settingsOf(config: Config, values: Values): Promise<DatasetSettings> {
  const { loadContract, datasetSettings } = await import('./contracts/index.js');
  return datasetSettings(await loadContract(str(values, 'dataset'), config.contractsDir));
}

/** The contract's label window; `--horizon-hours` overrides the horizon for one run. */
async function labelWindow(config: Config, values: Values) {
  const settings = await settingsOf(config, values);
  return {
    horizonHours: int(values, 'horizon-hours', settings.horizonHours),
    labelDelayHours: settings.labelDelayHours,
  };
}

async function splitFractions(config: Config, values: Values) {
  const { split } = await settingsOf(config, values);
  return { holdoutFraction: split.test, validationFraction: split.validation };
}

/**
 * The dataset a command means when `--dataset` is not given: DRIFTWOOD_DATASET, else the one contract
 * of the command's kind in the contracts folder (`extract` fetches sequences; the others default to
 * the tabular one). More than one, or none: the flag is required, and the error lists the choices.
 */
async function defaultDataset(config: Config, command: string): Promise<string> {
  if (config.dataset !== undefined) return config.dataset;
  const { loadAllContracts, DEFAULT_CONTRACTS_DIR } = await import('./contracts/index.js');
  const all = await loadAllContracts(config.contractsDir ?? DEFAULT_CONTRACTS_DIR);
  const wanted = all.filter((c) => (c.task === 'sequence_forecast') === (command === 'extract'));
  if (wanted.length === 1) return (wanted[0] as { dataset: string }).dataset;
  throw new DriftwoodError(
    'USAGE',
    `--dataset is required: DRIFTWOOD_DATASET is unset and the contracts folder has ${
      all.length === 0 ? 'no contract' : all.map((c) => c.dataset).join(', ')
    }`,
  );
}

const contractsDirOf = (config: Config) => (config.contractsDir ? { contractsDir: config.contractsDir } : {});

/** What train and tune record a run with: MLflow, the source identity and the dataset contract. */
async function trainingDeps(config: Config, log: Logger, db: Warehouse, dataset: string) {
  const { MlflowClient } = await import('./mlflow/client.js');
  const { gitCommit, currentUser, packageVersions } = await import('./source.js');
  const { readContractSource } = await import('./train/contract.js');
  return {
    db,
    mlflow: new MlflowClient(config.mlflow.trackingUri, config.http),
    log,
    now: Date.now,
    source: { commit: gitCommit(), user: currentUser(), packages: packageVersions() },
    contract: await readContractSource(dataset, config.contractsDir),
  };
}

/**
 * The snapshot `--snapshot <id|latest>` or `--snapshot-as-of <time|latest>` names (see
 * snapshot/ref.ts), with its rows read from the lake; undefined when neither flag is given.
 */
async function snapshotFrom(config: Config, log: Logger, db: Warehouse, values: Values) {
  const { readSnapshotRows } = await import('./snapshot/index.js');
  const { snapshotFromArgs } = await import('./snapshot/ref.js');
  const found = await snapshotFromArgs(
    config,
    log,
    db,
    values,
    str(values, 'dataset'),
    await labelWindow(config, values),
  );
  if (!found) return {};
  const { manifest, lake } = found;
  return { snapshot: { manifest, rows: await readSnapshotRows(lake, manifest), lakeUri: config.lakeUri } };
}

/** Trains a classifier on the features step's artifact of the snapshot, tracked in MLflow. */
async function trainTabular({ config, log, values }: Context) {
  const { runTrain } = await import('./train/index.js');
  const { modelParamsFromFlags } = await import('./train/cli-options.js');
  const { openObjectStore } = await import('./lake/object-store.js');
  const { parseTime } = await import('./time.js');
  return withWarehouse(config, values, async (db) =>
    runTrain(
      {
        dataset: str(values, 'dataset'),
        experiment: experimentFor(config, await settingsOf(config, values)),
        modelName: modelNameFor(config, await settingsOf(config, values)),
        ...(typeof values.cutoff === 'string' ? { cutoff: parseTime(values.cutoff, '--cutoff') } : {}),
        ...(await snapshotFrom(config, log, db, values)),
        ...(await labelWindow(config, values)),
        // The contract's model, each flag given overriding its parameter.
        params: { ...(await settingsOf(config, values)).model, ...modelParamsFromFlags(values) },
        ...(await splitFractions(config, values)),
        ...contractsDirOf(config),
      },
      // The features step's artifact, read from the lake (and written there first when missing).
      {
        ...(await trainingDeps(config, log, db, str(values, 'dataset'))),
        lake: openObjectStore(config.lakeUri, config.s3),
      },
    ),
  );
}

/** Moves the alias when the evidence passes the gate. */
async function promoteTabular({ config, log, values }: Context) {
  const { runPromote } = await import('./promote/index.js');
  const { policyFromFlags } = await import('./train/cli-options.js');
  const { MlflowClient } = await import('./mlflow/client.js');
  const { currentUser } = await import('./source.js');
  return runPromote(
    {
      modelName: modelNameFor(config, await settingsOf(config, values)),
      ...contractsDirOf(config),
      ...(typeof values.version === 'string' ? { version: values.version } : {}),
      alias: str(values, 'alias', 'champion'),
      policy: policyFromFlags(values),
    },
    {
      mlflow: new MlflowClient(config.mlflow.trackingUri, config.http),
      log,
      now: Date.now,
      user: currentUser(),
    },
  );
}

/** Scores challenger and champion on the same holdout and leaves the evidence on the challenger's run. */
async function evaluateTabular({ config, log, values }: Context) {
  const { runEvaluate } = await import('./evaluate/index.js');
  const { DEFAULT_BOOTSTRAP } = await import('./promote/index.js');
  const { MlflowClient } = await import('./mlflow/client.js');
  return runEvaluate(
    {
      modelName: modelNameFor(config, await settingsOf(config, values)),
      ...contractsDirOf(config),
      ...(typeof values.version === 'string' ? { version: values.version } : {}),
      championAlias: str(values, 'alias', 'champion'),
      bootstrap: DEFAULT_BOOTSTRAP,
    },
    { mlflow: new MlflowClient(config.mlflow.trackingUri, config.http), log, now: Date.now },
  );
}

/** A sequence forecast trains the LSTM, and its promote evaluates (a backtest against persistence) and gates. */
const trainForecast = async ({ config, log, values }: Context) =>
  (await import('./forecast/cli.js')).forecastTrainCommand(
    config,
    log,
    values,
    await contractOf(config, values),
  );
const promoteForecast = async ({ config, log, values }: Context) =>
  (await import('./forecast/cli.js')).forecastPromoteCommand(
    config,
    log,
    values,
    await contractOf(config, values),
  );
const evaluateForecast = async ({ values }: Context): Promise<never> => {
  throw new DriftwoodError(
    'USAGE',
    `dataset ${str(values, 'dataset')} is a sequence forecast: promote evaluates it (a backtest against persistence)`,
  );
};

async function contractOf(config: Config, values: Values) {
  const { loadContract } = await import('./contracts/index.js');
  return loadContract(str(values, 'dataset'), config.contractsDir);
}

/** Runs the command of the dataset's task kind: the one place a step tells a forecast from a table. */
async function byKind(
  ctx: Context,
  commands: Record<TaskKind['name'], (ctx: Context) => Promise<unknown>>,
): Promise<unknown> {
  const { kindOf } = await import('./kinds/index.js');
  return commands[kindOf(await contractOf(ctx.config, ctx.values)).name](ctx);
}

const COMMANDS: Record<
  string,
  { options: Record<string, { type: 'string' | 'boolean' }>; run: (ctx: Context) => Promise<unknown> }
> = {
  simulate: {
    options: {
      dataset: { type: 'string' },
      start: { type: 'string' },
      hours: { type: 'string' },
      seed: { type: 'string' },
      customers: { type: 'string' },
      'label-delay-hours': { type: 'string' },
      anomalies: { type: 'string' },
      drift: { type: 'string' },
      'drift-start': { type: 'string' },
    },
    run: async ({ config, log, values }) => {
      const { runSimulate } = await import('./simulate/index.js');
      const { openObjectStore } = await import('./lake/object-store.js');
      const { landingAirflow } = await import('./lake/landing.js');
      const { parseTime } = await import('./time.js');
      return runSimulate(
        {
          dataset: str(values, 'dataset'),
          start: parseTime(str(values, 'start'), '--start'),
          hours: int(values, 'hours', 24),
          seed: int(values, 'seed', 42),
          entities: int(values, 'customers', 1000),
          labelDelayHours: int(
            values,
            'label-delay-hours',
            (await settingsOf(config, values)).labelDelayHours,
          ),
          anomalies: typeof values.anomalies === 'string' ? Number(values.anomalies) : 0,
          ...(typeof values.drift === 'string'
            ? { drift: { spec: values.drift, from: parseTime(str(values, 'drift-start'), '--drift-start') } }
            : {}),
          ...contractsDirOf(config),
        },
        { lake: openObjectStore(config.lakeUri, config.s3), log, airflow: landingAirflow(config) },
      );
    },
  },
  extract: {
    options: {
      dataset: { type: 'string' },
      source: { type: 'string' },
      interval: { type: 'string' },
      'zero-volume': { type: 'string' },
    },
    run: async ({ config, log, values }) => {
      const { runExtract } = await import('./sources/index.js');
      const { openObjectStore } = await import('./lake/object-store.js');
      const { parseInterval } = await import('./time.js');
      const zeroVolume = str(values, 'zero-volume', 'keep');
      if (zeroVolume !== 'keep' && zeroVolume !== 'drop')
        throw new DriftwoodError('USAGE', `--zero-volume: expected keep or drop, got '${zeroVolume}'`);
      // The source's column names and time unit are the contract's (`source:`).
      const { loadContract } = await import('./contracts/index.js');
      const declared = (await loadContract(str(values, 'dataset'), config.contractsDir)).source;
      return runExtract(
        {
          dataset: str(values, 'dataset'),
          source: str(values, 'source'),
          interval: parseInterval(str(values, 'interval')),
          zeroVolume,
          mapping: {
            ...(declared?.columns ? { columns: declared.columns } : {}),
            ...(declared?.time_unit ? { timeUnit: declared.time_unit } : {}),
          },
          now: Date.now,
        },
        { lake: openObjectStore(config.lakeUri, config.s3), log, http: config.http },
      );
    },
  },
  ingest: {
    options: {
      dataset: { type: 'string' },
      interval: { type: 'string' },
      until: { type: 'string' },
      'batch-rows': { type: 'string' },
    },
    run: async ({ config, log, values }) => {
      const { runIngest, killAt } = await import('./ingest/index.js');
      const { openObjectStore } = await import('./lake/object-store.js');
      const { parseInterval, parseTime } = await import('./time.js');
      return withWarehouse(config, values, async (db) =>
        runIngest(
          {
            dataset: str(values, 'dataset'),
            ...(typeof values.interval === 'string' ? { interval: parseInterval(values.interval) } : {}),
            // --until T: every hour before T not loaded yet (catch-up), as the hourly DAG passes it.
            ...(typeof values.until === 'string'
              ? { interval: { start: 0, end: parseTime(values.until, '--until') } }
              : {}),
            piiKey: config.piiKey,
            now: Date.now,
            batchRows: int(values, 'batch-rows', 1000),
            tmpDir: path.join(config.home, 'tmp', 'ingest'),
            ...(config.contractsDir ? { contractsDir: config.contractsDir } : {}),
            ...(config.ingestAlertWebhook ? { alertWebhook: config.ingestAlertWebhook } : {}),
            // Fault injection for the crash tests: DRIFTWOOD_INGEST_KILL_AT=<point>[:<nth>] kills the process.
            ...killAt(process.env.DRIFTWOOD_INGEST_KILL_AT),
          },
          { lake: openObjectStore(config.lakeUri, config.s3), db, log, http: config.http },
        ),
      );
    },
  },
  snapshot: {
    options: {
      dataset: { type: 'string' },
      'as-of': { type: 'string' },
      'horizon-hours': { type: 'string' },
      list: { type: 'boolean' },
      show: { type: 'string' },
    },
    run: async ({ config, log, values }) => {
      const { runSnapshot, listSnapshots, readManifest } = await import('./snapshot/index.js');
      const { openObjectStore } = await import('./lake/object-store.js');
      const lake = openObjectStore(config.lakeUri, config.s3);
      const dataset = str(values, 'dataset');
      if (values.list === true) return { dataset, snapshots: await listSnapshots(lake, dataset) };
      if (typeof values.show === 'string') return readManifest(lake, dataset, values.show);
      const { parseTime } = await import('./time.js');
      const { gitCommit } = await import('./source.js');
      return withWarehouse(config, values, async (db) =>
        runSnapshot(
          {
            dataset,
            asOf: values['as-of'] === 'latest' ? 'latest' : parseTime(str(values, 'as-of'), '--as-of'),
            ...(await labelWindow(config, values)),
            ...contractsDirOf(config),
          },
          { db, lake, log, commit: gitCommit() ?? null, now: Date.now },
        ),
      );
    },
  },
  features: {
    options: {
      dataset: { type: 'string' },
      snapshot: { type: 'string' },
      'snapshot-as-of': { type: 'string' },
      cutoff: { type: 'string' },
      seed: { type: 'string' },
      'horizon-hours': { type: 'string' },
    },
    run: async ({ config, log, values }) => {
      const { runFeatures } = await import('./features/index.js');
      const { openObjectStore } = await import('./lake/object-store.js');
      const { parseTime } = await import('./time.js');
      return withWarehouse(config, values, async (db) =>
        runFeatures(
          {
            dataset: str(values, 'dataset'),
            ...(await snapshotFrom(config, log, db, values)),
            ...(typeof values.cutoff === 'string' ? { cutoff: parseTime(values.cutoff, '--cutoff') } : {}),
            ...(await labelWindow(config, values)),
            seed: int(values, 'seed', 7),
            ...(await splitFractions(config, values)),
            sampleRows: 20,
            ...contractsDirOf(config),
          },
          { db, lake: openObjectStore(config.lakeUri, config.s3), log },
        ),
      );
    },
  },
  train: {
    options: {
      dataset: { type: 'string' },
      cutoff: { type: 'string' },
      snapshot: { type: 'string' },
      'snapshot-as-of': { type: 'string' },
      ...MODEL_FLAGS,
      'horizon-hours': { type: 'string' },
    },
    run: (ctx) => byKind(ctx, { tabular_classification: trainTabular, sequence_forecast: trainForecast }),
  },
  promote: {
    options: {
      dataset: { type: 'string' },
      version: { type: 'string' },
      alias: { type: 'string' },
      ...POLICY_FLAGS,
    },
    run: (ctx) => byKind(ctx, { tabular_classification: promoteTabular, sequence_forecast: promoteForecast }),
  },
  evaluate: {
    options: { dataset: { type: 'string' }, version: { type: 'string' }, alias: { type: 'string' } },
    run: (ctx) =>
      byKind(ctx, { tabular_classification: evaluateTabular, sequence_forecast: evaluateForecast }),
  },
  rollback: {
    options: {
      dataset: { type: 'string' },
      alias: { type: 'string' },
      version: { type: 'string' },
      reason: { type: 'string' },
    },
    run: async ({ config, log, values }) => {
      const { runRollback } = await import('./promote/rollback.js');
      const { MlflowClient } = await import('./mlflow/client.js');
      const { currentUser } = await import('./source.js');
      return runRollback(
        {
          modelName: modelNameFor(config, await settingsOf(config, values)),
          alias: str(values, 'alias', 'champion'),
          ...(typeof values.version === 'string' ? { version: values.version } : {}),
          ...(typeof values.reason === 'string' ? { reason: values.reason } : {}),
        },
        {
          mlflow: new MlflowClient(config.mlflow.trackingUri, config.http),
          log,
          now: Date.now,
          user: currentUser(),
        },
      );
    },
  },
  history: {
    options: { dataset: { type: 'string' }, alias: { type: 'string' }, at: { type: 'string' } },
    run: async ({ config, values }) => {
      const { runHistory } = await import('./promote/rollback.js');
      const { MlflowClient } = await import('./mlflow/client.js');
      const { parseTime } = await import('./time.js');
      return runHistory(
        {
          modelName: modelNameFor(config, await settingsOf(config, values)),
          alias: str(values, 'alias', 'champion'),
          ...(typeof values.at === 'string' ? { at: parseTime(values.at, '--at') } : {}),
        },
        { mlflow: new MlflowClient(config.mlflow.trackingUri, config.http) },
      );
    },
  },
  tune: {
    options: {
      dataset: { type: 'string' },
      cutoff: { type: 'string' },
      ...MODEL_FLAGS,
      strategy: { type: 'string' },
      'max-trials': { type: 'string' },
      space: { type: 'string' },
      'search-seed': { type: 'string' },
      folds: { type: 'string' },
      'budget-seconds': { type: 'string' },
    },
    run: async ({ config, log, values }) => {
      const { runTune } = await import('./tune/index.js');
      const { modelParamsFromFlags, searchSpaceFromFlag } = await import('./train/cli-options.js');
      const { parseTime } = await import('./time.js');
      const strategy = str(values, 'strategy', 'grid');
      if (strategy !== 'grid' && strategy !== 'random')
        throw new DriftwoodError('USAGE', `--strategy: expected grid or random, got '${strategy}'`);
      return withWarehouse(config, values, async (db) =>
        runTune(
          {
            dataset: str(values, 'dataset'),
            experiment: experimentFor(config, await settingsOf(config, values)),
            modelName: modelNameFor(config, await settingsOf(config, values)),
            ...contractsDirOf(config),
            ...(typeof values.cutoff === 'string' ? { cutoff: parseTime(values.cutoff, '--cutoff') } : {}),
            ...(await labelWindow(config, values)),
            params: { ...(await settingsOf(config, values)).model, ...modelParamsFromFlags(values) },
            ...(await splitFractions(config, values)),
            space: searchSpaceFromFlag(
              str(values, 'space', 'kind=logistic,mlp;learningRate=0.01,0.05;l2=0,0.001'),
            ),
            strategy,
            maxTrials: int(values, 'max-trials', 8),
            searchSeed: int(values, 'search-seed', 1),
            folds: int(values, 'folds', 5),
            ...(values['budget-seconds'] !== undefined
              ? { budgetSeconds: int(values, 'budget-seconds', 0) }
              : {}),
          },
          await trainingDeps(config, log, db, str(values, 'dataset')),
        ),
      );
    },
  },
  experiment: {
    options: {
      name: { type: 'string' },
      dataset: { type: 'string' },
      'all-running': { type: 'boolean' },
      'as-of': { type: 'string' },
    },
    run: async ({ config, log, values }) => {
      const { runExperimentLooks } = await import('./experiments/index.js');
      const { loadContract } = await import('./contracts/index.js');
      const { MlflowClient } = await import('./mlflow/client.js');
      const { parseTime } = await import('./time.js');
      const all = values['all-running'] === true;
      if (all === (typeof values.name === 'string'))
        throw new DriftwoodError(
          'USAGE',
          'give --name <experiment> for one experiment, or --dataset <name> --all-running for every running one',
        );
      if (!config.piiKey)
        throw new DriftwoodError(
          'CONFIG_INVALID',
          'setting DRIFTWOOD_PII_KEY: the API tokenised customers with it; labels are joined by the same token',
        );
      const piiKey = config.piiKey;
      const asOf = typeof values['as-of'] === 'string' ? parseTime(values['as-of'], '--as-of') : Date.now();
      const result = await withWarehouse(config, values, (db) =>
        runExperimentLooks(
          {
            ...(all ? { dataset: str(values, 'dataset') } : { experiments: [str(values, 'name')] }),
            asOf,
            predictionsDir: path.join(config.home, 'predictions'),
            piiKey,
            action: contractsDirOf(config),
          },
          {
            mlflow: new MlflowClient(config.mlflow.trackingUri, config.http),
            warehouse: db,
            loadContract: (dataset) => loadContract(dataset, config.contractsDir),
            log,
            now: Date.now,
          },
        ),
      );
      return all ? result : result.looks[0];
    },
  },
  forget: {
    options: { customer: { type: 'string' }, dataset: { type: 'string' } },
    run: async ({ config, log, values }) => {
      const { runForget } = await import('./forget/index.js');
      const { openObjectStore } = await import('./lake/object-store.js');
      const { MlflowClient } = await import('./mlflow/client.js');
      const customerId = str(values, 'customer');
      const experiment = experimentFor(config, await settingsOf(config, values));
      const result = await withWarehouse(config, values, async (db) =>
        runForget(
          {
            customerId,
            dataset: str(values, 'dataset'),
            piiKey: config.piiKey,
            now: Date.now,
            predictionsDir: path.join(config.home, 'predictions'),
            resultsDir: path.join(config.home, 'results'),
            tmpDirs: [path.join(config.home, 'tmp', 'ingest')],
            experiments: [experiment],
            ...contractsDirOf(config),
          },
          {
            lake: openObjectStore(config.lakeUri, config.s3),
            db,
            log,
            mlflow: new MlflowClient(config.mlflow.trackingUri, config.http),
          },
        ),
      );
      // Everything reachable was erased; what was not is named, and a re-run (later, or after a fix) is safe.
      if (!result.complete)
        throw new DriftwoodError(
          result.retryable ? 'ERASURE_INCOMPLETE' : 'SCHEMA_MISMATCH',
          `erasure incomplete: ${result.unreached.length} place(s) not reached (${result.unreached[0]}${result.unreached.length > 1 ? ', …' : ''}); the rest is done, run forget again once fixed`,
          { result },
        );
      return result;
    },
  },
  score: {
    options: {
      dataset: { type: 'string' },
      'as-of': { type: 'string' },
      alias: { type: 'string' },
      stage: { type: 'string' },
    },
    run: async ({ config, log, values }) => {
      const { scoreCommand } = await import('./score/cli.js');
      const contract = await contractOf(config, values);
      return withWarehouse(config, values, (db) => scoreCommand(config, log, values, contract, db));
    },
  },
  replay: {
    options: {
      dataset: { type: 'string' },
      from: { type: 'string' },
      api: { type: 'string' },
      rate: { type: 'string' },
      batch: { type: 'string' },
      limit: { type: 'string' },
    },
    run: async ({ config, log, values }) => {
      const { runReplay } = await import('./replay/index.js');
      const { openObjectStore } = await import('./lake/object-store.js');
      // user:password of a `predict` user; a secret, so from the environment, never from argv.
      const auth = process.env.DRIFTWOOD_REPLAY_AUTH;
      const colon = auth?.indexOf(':') ?? -1;
      return runReplay(
        {
          dataset: str(values, 'dataset'),
          from: str(values, 'from'),
          api: str(values, 'api', `http://${config.api.host}:${config.api.port}`),
          rate: int(values, 'rate', 200),
          batchSize: int(values, 'batch', 50),
          ...(typeof values.limit === 'string' ? { limit: int(values, 'limit', 0) } : {}),
          ...(auth && colon > 0
            ? { auth: { user: auth.slice(0, colon), password: auth.slice(colon + 1) } }
            : {}),
        },
        { lake: openObjectStore(config.lakeUri, config.s3), log, http: config.http },
      );
    },
  },
  serve: {
    options: {},
    run: async ({ config, log }) => {
      // Resolved at run time: the serving package depends on this one, not the other way round.
      const serverModule = '@driftwood/serving/server';
      const { startServer } = (await import(serverModule)) as {
        startServer: (c: Config, l: Logger) => Promise<unknown>;
      };
      return startServer(config, log);
    },
  },
};

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command === undefined || command === '--help' || command === '-h' || command === 'help') {
    // `help <command>` is that command's help; `help` alone the whole usage.
    const topic = command === 'help' ? rest[0] : undefined;
    if (topic !== undefined) return printCommandHelp(topic);
    process.stdout.write(`${USAGE}\n`);
    return command === undefined ? EXIT_USAGE : EXIT_OK;
  }
  const spec = COMMANDS[command];
  if (!spec) {
    const near = didYouMean(command, Object.keys(COMMANDS));
    process.stderr.write(
      `driftwood: unknown command '${command}'${near ? ` (did you mean '${near}'?)` : ''}\n\n${USAGE}\n`,
    );
    return EXIT_USAGE;
  }
  if (rest.includes('--help') || rest.includes('-h')) return printCommandHelp(command);
  let log: Logger | undefined;
  let shipping = false;
  try {
    const parsed = parseArgs({
      args: rest,
      options: { ...spec.options, output: { type: 'string' } },
      strict: true,
      allowPositionals: false,
    });
    const config = loadConfig(environmentWithDotenv());
    shipping = config.loki !== undefined;
    const values = parsed.values as Values;
    if ('dataset' in spec.options && typeof values.dataset !== 'string')
      values.dataset = await defaultDataset(config, command);
    log = commandLogger(config, command, values.dataset);
    if ('dataset' in spec.options) {
      const ignored = overridesIgnored(config, values.dataset as string);
      if (ignored.length > 0)
        log.warn(
          { dataset: values.dataset, ignored, for: config.dataset },
          `${ignored.join(' and ')} are set for dataset ${config.dataset} (DRIFTWOOD_DATASET), not for ${values.dataset}: its contract's names hold`,
        );
    }
    const t0 = performance.now();
    const output = typeof parsed.values.output === 'string' ? parsed.values.output : undefined;
    try {
      const result = await spec.run({ config, log, values });
      if (command === 'serve') return EXIT_OK;
      await writeResult(config.home, command, result, output);
      log.info({ command, seconds: Math.round(performance.now() - t0) / 1000 }, `${command}: done`);
      return EXIT_OK;
    } catch (err) {
      // A step that decided not to act (a gate not passed) still leaves its result for the next one.
      // (and a step that did part of its work, such as an incomplete erasure, says what it did).
      if (isDriftwoodError(err) && err.details.result !== undefined)
        await writeResult(config.home, command, err.details.result, output);
      throw err;
    }
  } catch (err) {
    // A step's failure is a line worth finding in Loki too; on stderr it is the plain line below.
    // A gate not passed is a decision, not a fault.
    if (log !== undefined && shipping) {
      if (isDriftwoodError(err) && err.exitCode === EXIT_GATE_NOT_PASSED)
        log.warn({ code: err.code }, `${command}: ${err.message}`);
      else log.error({ err }, `${command}: failed`);
    }
    return report(err, command);
  }
}

/**
 * The command's logger: stderr, and Loki when DRIFTWOOD_LOKI_URL is set, labelled with the service
 * (`api` for serve, else the step) and the step's dataset. Under Airflow each line names the DAG run.
 */
function commandLogger(config: Config, command: string, dataset: unknown): Logger {
  const service = command === 'serve' ? 'api' : command;
  const labels = typeof dataset === 'string' && command !== 'serve' ? { service, dataset } : { service };
  const log = createLogger(
    config.logLevel,
    'driftwood',
    config.loki === undefined ? undefined : { loki: config.loki, labels },
  );
  return config.dagRunId === undefined ? log : log.child({ dagRunId: config.dagRunId });
}

/** Prints one command's usage lines; an unknown command is a usage error with a suggestion. */
function printCommandHelp(command: string): number {
  const help = commandUsage(USAGE, command);
  if (help === undefined || !(command in COMMANDS)) {
    const near = didYouMean(command, Object.keys(COMMANDS));
    process.stderr.write(
      `driftwood: unknown command '${command}'${near ? ` (did you mean '${near}'?)` : ''}\n`,
    );
    return EXIT_USAGE;
  }
  process.stdout.write(
    `${help}\n\n--output FILE also writes the result there; see 'driftwood --help' for exit codes.\n`,
  );
  return EXIT_OK;
}

/** The result as JSON on stdout, in <home>/results/<command>.json, and in --output when given. */
async function writeResult(home: string, command: string, result: unknown, output?: string): Promise<void> {
  const json = JSON.stringify(result);
  const resultsDir = path.join(home, 'results');
  await mkdir(resultsDir, { recursive: true });
  await writeFile(path.join(resultsDir, `${command}.json`), `${JSON.stringify(result, null, 2)}\n`);
  if (output) await writeFile(output, `${json}\n`);
  process.stdout.write(`${json}\n`);
}

/** One line, naming what to change; a stack trace only for faults we did not anticipate. */
function report(err: unknown, command: string): number {
  if (err instanceof DriftwoodError) {
    process.stderr.write(`driftwood ${command}: ${err.code}: ${err.message}\n`);
    return err.exitCode;
  }
  if (
    err instanceof TypeError &&
    'code' in err &&
    String((err as { code: unknown }).code).startsWith('ERR_PARSE_ARGS')
  ) {
    const option = unknownOptionOf(err.message);
    const near = option && didYouMean(option, Object.keys(COMMANDS[command]?.options ?? {}));
    const hint = near ? ` (did you mean '--${near}'?)` : '';
    process.stderr.write(
      `driftwood ${command}: USAGE: ${err.message}${hint}; see 'driftwood ${command} --help'\n`,
    );
    return EXIT_USAGE;
  }
  process.stderr.write(
    `driftwood ${command}: unexpected error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
  );
  return EXIT_RETRYABLE;
}

main(process.argv.slice(2)).then((code) => {
  // A server that failed to start may hold handles (a cluster worker's channel to its primary)
  // that would keep it alive: it exits now. Other commands exit once their work has drained.
  if (code !== EXIT_OK && process.argv[2] === 'serve') process.exit(code);
  if (code !== EXIT_OK || process.argv[2] !== 'serve') process.exitCode = code;
});

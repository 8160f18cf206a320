import {
  DriftwoodError,
  inputFields,
  loadModelVersion,
  type MlflowClient,
  type ModelVersion,
  type ServingModel,
} from '@driftwood/tasks';
import type { FastifyBaseLogger } from 'fastify';
import fp from 'fastify-plugin';
import { DEFAULT_ID_COLUMN } from '../predictions/row-text.js';
import type { InputFields } from '../schemas.js';
import type { ApiMetrics } from './metrics.js';
import { checkServingSample, type SampleCheck } from './serving-sample-check.js';

declare module 'fastify' {
  interface FastifyInstance {
    /** The default dataset's models (`/v1/predict`); one that never loads when there is no default. */
    models: ModelHolder;
    /** Every served tabular dataset's models, by dataset name. */
    datasetModels: DatasetModels;
  }
}

/** What `GET /v1/model` tells about a served version. */
export interface ModelInfo {
  /** The dataset the version answers for (its contract's name). */
  dataset: string;
  name: string;
  version: string;
  alias: string;
  run_id: string | null;
  model_id: string | null;
  data_digest: string | null;
  cutoff: string | null;
  loaded_at: string;
  metrics: Record<string, number>;
  inputs: InputFields;
}

export interface ServedModel {
  model: ServingModel;
  info: ModelInfo;
}

export type Slot = 'champion' | 'challenger';

export interface RefreshOutcome {
  dataset: string;
  slot: Slot;
  alias: string;
  action: SwapAction;
  version: string | undefined;
  error?: string;
}

/** Holds the served models; a swap replaces one reference, so a request sees one model start to end. */
export interface ModelHolder {
  readonly dataset: string;
  readonly modelName: string;
  /** The column naming a row of this dataset (`customer_id` unless its contract names another). */
  readonly idColumn: string;
  champion(): ServedModel | undefined;
  challenger(): ServedModel | undefined;
  /** The input fields the API was started with; every later version must take the same ones. */
  contract(): InputFields | undefined;
  lastError(): string | undefined;
  /** Why no champion answers, naming the dataset (the 503 message of its routes). */
  notLoaded(): string;
  /** Reads the aliases now and swaps in whatever changed (the poller calls this too). */
  refresh(): Promise<RefreshOutcome[]>;
  /** `refresh()`, and in a cluster the other API processes are told to refresh as well. */
  refreshEverywhere(): Promise<RefreshOutcome[]>;
}

/** The holders of every served tabular dataset. */
export interface DatasetModels {
  get(dataset: string): ModelHolder | undefined;
  all(): ModelHolder[];
  /** Reads every dataset's aliases now (the poller, `/v1/admin/reload` and the webhook call this). */
  refreshAll(): Promise<RefreshOutcome[]>;
  /** `refreshAll()`, and in a cluster the other API processes are told to refresh as well. */
  refreshEverywhere(): Promise<RefreshOutcome[]>;
}

export type ModelLoader = (mlflow: MlflowClient, mv: ModelVersion, alias: string) => Promise<ServingModel>;

export interface ModelRegistryOptions {
  mlflow: MlflowClient;
  /** The tabular datasets served and their registered models. */
  datasets: { dataset: string; modelName: string; idColumn?: string }[];
  /** The dataset of `/v1/predict`; absent: `noDefault` says why and the unprefixed routes answer 503. */
  defaultDataset?: string;
  noDefault?: string;
  alias: string;
  /** Loaded only when a canary or shadow mode is on. */
  challengerAlias?: string;
  /** How often the aliases are read; 0 turns polling off (then only `refresh()` swaps). */
  pollMs?: number;
  loader?: ModelLoader;
}

export type SwapAction = 'keep' | 'load' | 'skip_failed' | 'alias_gone';

/**
 * What to do with one alias: keep the version we serve, load a new one, or skip a version that
 * already failed to load (it is retried only when the alias moves again).
 */
export function planSwap(
  served: string | undefined,
  target: string | undefined,
  failed: string | undefined,
): SwapAction {
  if (target === undefined) return 'alias_gone';
  if (target === served) return 'keep';
  if (target === failed) return 'skip_failed';
  return 'load';
}

/** Why a candidate's inputs are not the served contract (undefined when they are the same fields). */
export function contractProblem(
  contract: InputFields | undefined,
  candidate: InputFields,
): string | undefined {
  if (!contract) return undefined;
  const diff = (kind: keyof InputFields) => {
    const want = new Set(contract[kind]);
    const got = new Set(candidate[kind]);
    const missing = [...want].filter((f) => !got.has(f));
    const extra = [...got].filter((f) => !want.has(f));
    return [
      ...missing.map((f) => `lacks ${kind} field ${f}`),
      ...extra.map((f) => `adds ${kind} field ${f}`),
    ];
  };
  const problems = [...diff('numeric'), ...diff('categorical')];
  return problems.length ? `its inputs differ from the served contract: ${problems.join(', ')}` : undefined;
}

const numeric = (v: string | undefined) =>
  v !== undefined && Number.isFinite(Number(v)) ? Number(v) : undefined;

export async function describeVersion(
  dataset: string,
  mlflow: MlflowClient,
  mv: ModelVersion,
  model: ServingModel,
): Promise<ModelInfo> {
  const tags = Object.fromEntries((mv.tags ?? []).map((t) => [t.key, t.value]));
  const metrics: Record<string, number> = {};
  const tagAuc = numeric(tags['driftwood.holdout_roc_auc']);
  if (tagAuc !== undefined) metrics.holdout_roc_auc = tagAuc;
  const threshold = numeric(tags['driftwood.threshold']);
  if (threshold !== undefined) metrics.threshold = threshold;
  if (mv.run_id) {
    // The run's holdout metrics are the fuller record; a run we cannot read leaves the tag values.
    const run = await mlflow.getRun(mv.run_id).catch(() => undefined);
    for (const m of run?.data.metrics ?? []) if (m.key.startsWith('holdout_')) metrics[m.key] = m.value;
  }
  return {
    dataset,
    name: mv.name,
    version: mv.version,
    alias: model.alias,
    run_id: mv.run_id ?? null,
    model_id: mv.model_id ?? (mv.source.startsWith('models:/m-') ? mv.source.slice('models:/'.length) : null),
    data_digest: tags['driftwood.data_digest'] ?? null,
    cutoff: tags['driftwood.cutoff'] ?? null,
    loaded_at: new Date(model.loadedAt).toISOString(),
    metrics,
    inputs: inputFields(model.transform),
  };
}

interface HolderContext {
  mlflow: MlflowClient;
  loader: ModelLoader;
  log: FastifyBaseLogger;
  metrics: ApiMetrics;
  /** Asks the other API processes of a cluster to refresh. */
  announce: () => void;
}

interface DatasetHolder extends ModelHolder {
  dispose(): Promise<void>;
}

/**
 * Serves the versions behind one dataset's champion (and challenger) aliases and follows them: each
 * refresh reads the aliases and, when one moved, loads the new version, checks it (model shape
 * against its transform, the same input fields as the served contract, a finite warm-up prediction,
 * then its own holdout sample re-scored to the recorded probabilities — see checkServingSample) and
 * only then swaps it in, whatever moved the alias. A version that fails keeps the old one serving;
 * the failure is logged, counted in `driftwood_model_loads_total{outcome="failure"}` (or
 * `outcome="refused"` when the sample check failed) and not retried until the alias moves.
 */
function createDatasetHolder(
  ctx: HolderContext,
  opts: { dataset: string; modelName: string; idColumn?: string; alias: string; challengerAlias?: string },
): DatasetHolder {
  const { dataset, modelName } = opts;
  const { log, metrics } = ctx;
  const slots: Record<Slot, { alias: string; served?: ServedModel; failed?: string; error?: string }> = {
    champion: { alias: opts.alias },
    challenger: { alias: opts.challengerAlias ?? '' },
  };
  const active: Slot[] = opts.challengerAlias ? ['champion', 'challenger'] : ['champion'];
  let contract: InputFields | undefined;
  let inFlight: Promise<RefreshOutcome[]> | undefined;

  const refreshSlot = async (slot: Slot): Promise<RefreshOutcome> => {
    const s = slots[slot];
    const outcome = { dataset, slot, alias: s.alias };
    let mv: ModelVersion | undefined;
    try {
      mv = await ctx.mlflow.getVersionByAlias(modelName, s.alias);
    } catch (err) {
      s.error = (err as Error).message;
      log.warn(
        { err: s.error, dataset, alias: s.alias },
        'model registry: cannot read the alias; keeping the served model',
      );
      return { ...outcome, action: 'keep', version: s.served?.info.version, error: s.error };
    }
    const action = planSwap(s.served?.info.version, mv?.version, s.failed);
    if (action === 'alias_gone') {
      s.error = `model '${modelName}' has no version with alias '${s.alias}'`;
      // A champion never disappears from under traffic; a challenger without an alias stops taking any.
      if (slot === 'challenger' && s.served) {
        const gone = s.served;
        s.served = undefined;
        metrics.servedVersion.remove({ dataset, alias: s.alias, version: gone.info.version });
        setImmediate(() => gone.model.dispose());
      }
    }
    if (action !== 'load' || !mv) return { ...outcome, action, version: mv?.version };
    let model: ServingModel | undefined;
    let checked: SampleCheck | undefined;
    let refused = false;
    try {
      model = await ctx.loader(ctx.mlflow, mv, s.alias);
      const fields = inputFields(model.transform);
      const problem = contractProblem(contract, fields);
      if (problem) throw new DriftwoodError('MODEL_INVALID', `version ${mv.version}: ${problem}`);
      try {
        checked = await checkServingSample(ctx.mlflow, mv, model);
      } catch (err) {
        refused = true;
        throw err;
      }
      if (checked === 'probe')
        log.warn(
          { dataset, model: mv.name, version: mv.version, alias: s.alias },
          'model registry: version has no holdout sample (trained before samples were recorded); checked with a probe of every category instead',
        );
      const next: ServedModel = { model, info: await describeVersion(dataset, ctx.mlflow, mv, model) };
      const previous = s.served;
      s.served = next;
      s.failed = undefined;
      s.error = undefined;
      contract ??= fields;
      metrics.modelLoads.inc({ dataset, alias: s.alias, version: mv.version, outcome: 'success' });
      if (previous) metrics.servedVersion.remove({ dataset, alias: s.alias, version: previous.info.version });
      metrics.servedVersion.set({ dataset, alias: s.alias, version: mv.version }, 1);
      // Requests score synchronously, so none is mid-way through the old model by the next tick.
      if (previous) setImmediate(() => previous.model.dispose());
      log.info(
        {
          dataset,
          model: mv.name,
          version: mv.version,
          alias: s.alias,
          previous: previous?.info.version,
          checked,
        },
        'model registry: version swapped in',
      );
      return { ...outcome, action, version: mv.version };
    } catch (err) {
      model?.dispose();
      s.failed = mv.version;
      s.error = (err as Error).message;
      metrics.modelLoads.inc({
        dataset,
        alias: s.alias,
        version: mv.version,
        outcome: refused ? 'refused' : 'failure',
      });
      log.error(
        {
          err: s.error,
          dataset,
          model: mv.name,
          version: mv.version,
          alias: s.alias,
          serving: s.served?.info.version,
        },
        refused
          ? 'model registry: new version cannot score its own holdout sample; refused, the served one stays'
          : 'model registry: new version refused; the served one stays',
      );
      return { ...outcome, action, version: mv.version, error: s.error };
    }
  };

  const holder: DatasetHolder = {
    dataset,
    modelName,
    idColumn: opts.idColumn ?? DEFAULT_ID_COLUMN,
    champion: () => slots.champion.served,
    challenger: () => slots.challenger.served,
    contract: () => contract,
    lastError: () => slots.champion.error,
    notLoaded: () =>
      `no champion for dataset ${dataset} yet${slots.champion.error ? ` (${slots.champion.error})` : ''}`,
    refresh: () => {
      // One refresh at a time: a poll that fires during a slow load joins it instead of loading twice.
      inFlight ??= (async () => {
        try {
          const out: RefreshOutcome[] = [];
          for (const slot of active) out.push(await refreshSlot(slot));
          return out;
        } finally {
          inFlight = undefined;
        }
      })();
      return inFlight;
    },
    refreshEverywhere: () => {
      ctx.announce();
      return holder.refresh();
    },
    dispose: async () => {
      await inFlight?.catch(() => undefined);
      slots.champion.served?.model.dispose();
      slots.challenger.served?.model.dispose();
    },
  };
  return holder;
}

/** The holder behind the unprefixed routes when no default dataset is chosen: it never loads. */
function noDefaultHolder(reason: string): ModelHolder {
  return {
    dataset: '',
    modelName: '',
    idColumn: DEFAULT_ID_COLUMN,
    champion: () => undefined,
    challenger: () => undefined,
    contract: () => undefined,
    lastError: () => reason,
    notLoaded: () => reason,
    refresh: async () => [],
    refreshEverywhere: async () => [],
  };
}

/**
 * One holder per served tabular dataset, each with its own champion, challenger, input contract
 * and last error; the poller, the webhook and `/v1/admin/reload` refresh them all. A dataset whose
 * champion does not load leaves the others serving.
 */
export const modelRegistryPlugin = fp<ModelRegistryOptions>(
  async (app, opts) => {
    const ctx: HolderContext = {
      mlflow: opts.mlflow,
      loader: opts.loader ?? loadModelVersion,
      log: app.log,
      metrics: app.metrics,
      announce: () => app.peers?.announceRefresh(),
    };
    const holders = new Map<string, DatasetHolder>();
    for (const d of opts.datasets)
      holders.set(
        d.dataset,
        createDatasetHolder(ctx, {
          dataset: d.dataset,
          modelName: d.modelName,
          idColumn: d.idColumn,
          alias: opts.alias,
          challengerAlias: opts.challengerAlias,
        }),
      );
    const refreshAll = async () => {
      const out: RefreshOutcome[] = [];
      for (const h of holders.values()) out.push(...(await h.refresh()));
      return out;
    };
    const registry: DatasetModels = {
      get: (dataset) => holders.get(dataset),
      all: () => [...holders.values()],
      refreshAll,
      refreshEverywhere: () => {
        ctx.announce();
        return refreshAll();
      },
    };
    const fallback = opts.defaultDataset === undefined ? undefined : holders.get(opts.defaultDataset);
    app.decorate('datasetModels', registry);
    app.decorate('models', fallback ?? noDefaultHolder(opts.noDefault ?? 'no default dataset is served'));
    app.peers?.onRefresh(() => {
      refreshAll().catch((err) => app.log.error({ err }, 'model registry: refresh failed'));
    });

    // Load before the routes are built, so their schemas come from the served models' transforms.
    await refreshAll();
    for (const h of holders.values())
      if (!h.champion())
        app.log.error(
          { err: h.lastError(), dataset: h.dataset, model: h.modelName, alias: opts.alias },
          'model registry: no champion loaded at start; its routes answer 503 until one loads',
        );

    let timer: NodeJS.Timeout | undefined;
    app.addHook('onReady', async () => {
      if (!opts.pollMs) return;
      timer = setInterval(() => {
        refreshAll().catch((err) => app.log.error({ err }, 'model registry: poll failed'));
      }, opts.pollMs);
      timer.unref();
    });
    app.addHook('onClose', async () => {
      if (timer) clearInterval(timer);
      for (const h of holders.values()) await h.dispose();
    });
  },
  { name: 'driftwood-model-registry', dependencies: ['driftwood-metrics'] },
);

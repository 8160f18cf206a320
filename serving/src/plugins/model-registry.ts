import {
  DriftwoodError,
  inputFields,
  loadModelVersion,
  type MlflowClient,
  type ModelVersion,
  type ServingModel,
} from '@driftwood/tasks';
import fp from 'fastify-plugin';
import type { InputFields } from '../schemas.js';

declare module 'fastify' {
  interface FastifyInstance {
    models: ModelHolder;
  }
}

/** What `GET /v1/model` tells about a served version. */
export interface ModelInfo {
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
  slot: Slot;
  alias: string;
  action: SwapAction;
  version: string | undefined;
  error?: string;
}

/** Holds the served models; a swap replaces one reference, so a request sees one model start to end. */
export interface ModelHolder {
  champion(): ServedModel | undefined;
  challenger(): ServedModel | undefined;
  /** The input fields the API was started with; every later version must take the same ones. */
  contract(): InputFields | undefined;
  lastError(): string | undefined;
  /** Reads the aliases now and swaps in whatever changed (the poller calls this too). */
  refresh(): Promise<RefreshOutcome[]>;
  /** `refresh()`, and in a cluster the other API processes are told to refresh as well. */
  refreshEverywhere(): Promise<RefreshOutcome[]>;
}

export type ModelLoader = (mlflow: MlflowClient, mv: ModelVersion, alias: string) => Promise<ServingModel>;

export interface ModelRegistryOptions {
  mlflow: MlflowClient;
  modelName: string;
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

async function describeVersion(
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

/**
 * Serves the versions behind the champion (and challenger) aliases and follows them: each poll reads
 * the aliases and, when one moved, loads the new version, checks it (model shape against its
 * transform, the same input fields as the served contract, a finite warm-up prediction) and only
 * then swaps it in. A version that fails keeps the old one serving; the failure is logged, counted
 * in `driftwood_model_loads_total{outcome="failure"}` and not retried until the alias moves again.
 */
export const modelRegistryPlugin = fp<ModelRegistryOptions>(
  async (app, opts) => {
    const loader = opts.loader ?? loadModelVersion;
    const slots: Record<Slot, { alias: string; served?: ServedModel; failed?: string; error?: string }> = {
      champion: { alias: opts.alias },
      challenger: { alias: opts.challengerAlias ?? '' },
    };
    const active: Slot[] = opts.challengerAlias ? ['champion', 'challenger'] : ['champion'];
    let contract: InputFields | undefined;
    let inFlight: Promise<RefreshOutcome[]> | undefined;

    const refreshSlot = async (slot: Slot): Promise<RefreshOutcome> => {
      const s = slots[slot];
      let mv: ModelVersion | undefined;
      try {
        mv = await opts.mlflow.getVersionByAlias(opts.modelName, s.alias);
      } catch (err) {
        s.error = (err as Error).message;
        app.log.warn(
          { err: s.error, alias: s.alias },
          'model registry: cannot read the alias; keeping the served model',
        );
        return { slot, alias: s.alias, action: 'keep', version: s.served?.info.version, error: s.error };
      }
      const action = planSwap(s.served?.info.version, mv?.version, s.failed);
      if (action === 'alias_gone') {
        s.error = `model '${opts.modelName}' has no version with alias '${s.alias}'`;
        // A champion never disappears from under traffic; a challenger without an alias stops taking any.
        if (slot === 'challenger' && s.served) {
          const gone = s.served;
          s.served = undefined;
          app.metrics.servedVersion.remove({ alias: s.alias, version: gone.info.version });
          setImmediate(() => gone.model.dispose());
        }
      }
      if (action !== 'load' || !mv) return { slot, alias: s.alias, action, version: mv?.version };
      let model: ServingModel | undefined;
      try {
        model = await loader(opts.mlflow, mv, s.alias);
        const fields = inputFields(model.transform);
        const problem = contractProblem(contract, fields);
        if (problem) throw new DriftwoodError('MODEL_INVALID', `version ${mv.version}: ${problem}`);
        const next: ServedModel = { model, info: await describeVersion(opts.mlflow, mv, model) };
        const previous = s.served;
        s.served = next;
        s.failed = undefined;
        s.error = undefined;
        contract ??= fields;
        app.metrics.modelLoads.inc({ alias: s.alias, version: mv.version, outcome: 'success' });
        if (previous) app.metrics.servedVersion.remove({ alias: s.alias, version: previous.info.version });
        app.metrics.servedVersion.set({ alias: s.alias, version: mv.version }, 1);
        // Requests score synchronously, so none is mid-way through the old model by the next tick.
        if (previous) setImmediate(() => previous.model.dispose());
        app.log.info(
          { model: mv.name, version: mv.version, alias: s.alias, previous: previous?.info.version },
          'model registry: version swapped in',
        );
        return { slot, alias: s.alias, action, version: mv.version };
      } catch (err) {
        model?.dispose();
        s.failed = mv.version;
        s.error = (err as Error).message;
        app.metrics.modelLoads.inc({ alias: s.alias, version: mv.version, outcome: 'failure' });
        app.log.error(
          {
            err: s.error,
            model: mv.name,
            version: mv.version,
            alias: s.alias,
            serving: s.served?.info.version,
          },
          'model registry: new version refused; the served one stays',
        );
        return { slot, alias: s.alias, action, version: mv.version, error: s.error };
      }
    };

    const holder: ModelHolder = {
      champion: () => slots.champion.served,
      challenger: () => slots.challenger.served,
      contract: () => contract,
      lastError: () => slots.champion.error,
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
        app.peers?.announceRefresh();
        return holder.refresh();
      },
    };
    app.decorate('models', holder);
    app.peers?.onRefresh(() => {
      holder.refresh().catch((err) => app.log.error({ err }, 'model registry: refresh failed'));
    });

    // Load before the routes are built, so their schemas come from the served model's transform.
    await holder.refresh();
    if (!slots.champion.served)
      app.log.error(
        { err: slots.champion.error, model: opts.modelName, alias: opts.alias },
        'model registry: no model loaded at start; not ready until one loads',
      );

    let timer: NodeJS.Timeout | undefined;
    app.addHook('onReady', async () => {
      if (!opts.pollMs) return;
      timer = setInterval(() => {
        holder.refresh().catch((err) => app.log.error({ err }, 'model registry: poll failed'));
      }, opts.pollMs);
      timer.unref();
    });
    app.addHook('onClose', async () => {
      if (timer) clearInterval(timer);
      await inFlight?.catch(() => undefined);
      slots.champion.served?.model.dispose();
      slots.challenger.served?.model.dispose();
    });
  },
  { name: 'driftwood-model-registry', dependencies: ['driftwood-metrics'] },
);

import {
  assignVariant,
  type ExperimentRecord,
  inputFields,
  listExperiments,
  loadModelVersion,
  type MlflowClient,
  type ModelVersion,
} from '@driftwood/tasks';
import type { FastifyBaseLogger } from 'fastify';
import {
  contractProblem,
  type DatasetModels,
  describeVersion,
  type ModelLoader,
  type ServedModel,
} from '../plugins/model-registry.js';
import { checkServingSample } from '../plugins/serving-sample-check.js';

/** A customer's place in a running experiment: the variant and the model that answers for it. */
export interface Assignment {
  experiment: string;
  variant: string;
  model: ServedModel;
}

interface LiveVariant {
  name: string;
  allocation: number;
  model: ServedModel;
  /** Predictions this process served for the variant since it started serving the experiment. */
  served: number;
}

export interface LiveExperiment {
  record: ExperimentRecord;
  variants: LiveVariant[];
}

/**
 * The running experiments this process serves, one per dataset at most, each with its variants'
 * models loaded (the versions pinned when it was declared). `sync` follows MLflow: an experiment
 * declared by another process starts here, one decided or stopped ends here.
 */
export class ExperimentRouter {
  private readonly live = new Map<string, LiveExperiment>();
  private syncing: Promise<void> | undefined;
  private closed = false;

  constructor(
    private readonly opts: {
      mlflow: MlflowClient;
      models: DatasetModels;
      log: FastifyBaseLogger;
      loader?: ModelLoader;
      mlflowExperiment?: string;
    },
  ) {}

  /** The variant of a customer of the dataset's running experiment; undefined without one or without an id. */
  assign(dataset: string, customerId: string | undefined): Assignment | undefined {
    if (customerId === undefined) return undefined;
    const e = this.live.get(dataset);
    if (!e) return undefined;
    const v = assignVariant(e.record.declaration.name, customerId, e.variants);
    return { experiment: e.record.declaration.name, variant: v.name, model: v.model };
  }

  /** Counts a prediction a variant answered (the dashboard's traffic). */
  count(dataset: string, variant: string): void {
    const v = this.live.get(dataset)?.variants.find((x) => x.name === variant);
    if (v) v.served++;
  }

  running(): LiveExperiment[] {
    return [...this.live.values()];
  }

  runningFor(dataset: string): LiveExperiment | undefined {
    return this.live.get(dataset);
  }

  /**
   * Loads one variant's version and checks it takes the dataset's served input fields; throws with
   * the reason (the route turns it into a 400 naming the variant).
   */
  async loadVariant(dataset: string, mv: ModelVersion, alias: string): Promise<ServedModel> {
    const holder = this.opts.models.get(dataset);
    if (!holder) throw new Error(`dataset ${dataset} is not served by this API`);
    const model = await (this.opts.loader ?? loadModelVersion)(this.opts.mlflow, mv, alias);
    const problem = contractProblem(holder.contract(), inputFields(model.transform));
    try {
      if (problem) throw new Error(`version ${mv.version}: ${problem}`);
      // The same check a champion passes before it answers: its own holdout sample, re-scored.
      await checkServingSample(this.opts.mlflow, mv, model);
    } catch (err) {
      model.dispose();
      throw err;
    }
    return { model, info: await describeVersion(dataset, this.opts.mlflow, mv, model) };
  }

  /** Starts serving an experiment whose variants are loaded (by the declaring route or `sync`). */
  activate(record: ExperimentRecord, models: Map<string, ServedModel>): void {
    if (this.closed) {
      for (const m of models.values()) m.model.dispose();
      return;
    }
    const variants = record.variants.map((v) => ({
      name: v.name,
      allocation: v.allocation,
      model: models.get(v.name) as ServedModel,
      served: 0,
    }));
    const previous = this.live.get(record.declaration.dataset);
    this.live.set(record.declaration.dataset, { record, variants });
    if (previous && previous.record.run_id !== record.run_id) this.dispose(previous);
    this.opts.log.info(
      { experiment: record.declaration.name, dataset: record.declaration.dataset, variants: record.variants },
      'experiments: assigning customers',
    );
  }

  deactivate(name: string): void {
    for (const [dataset, e] of this.live)
      if (e.record.declaration.name === name) {
        this.live.delete(dataset);
        this.dispose(e);
        this.opts.log.info({ experiment: name, dataset }, 'experiments: stopped assigning customers');
      }
  }

  /** Reads the running experiments from MLflow and starts or ends them here to match. */
  sync(): Promise<void> {
    this.syncing ??= this.syncOnce().finally(() => {
      this.syncing = undefined;
    });
    return this.syncing;
  }

  private async syncOnce(): Promise<void> {
    const running = await listExperiments(this.opts.mlflow, {
      status: 'running',
      ...(this.opts.mlflowExperiment ? { mlflowExperiment: this.opts.mlflowExperiment } : {}),
    });
    const names = new Set(running.map((r) => r.declaration.name));
    for (const e of this.running())
      if (!names.has(e.record.declaration.name)) this.deactivate(e.record.declaration.name);
    for (const record of running) {
      const dataset = record.declaration.dataset;
      if (!this.opts.models.get(dataset) || this.live.get(dataset)?.record.run_id === record.run_id) continue;
      try {
        const models = new Map<string, ServedModel>();
        for (const v of record.variants) {
          const mv = await this.opts.mlflow.getModelVersion(record.model_name, v.version);
          models.set(v.name, await this.loadVariant(dataset, mv, v.model));
        }
        this.activate(record, models);
      } catch (err) {
        this.opts.log.error(
          { err: (err as Error).message, experiment: record.declaration.name },
          'experiments: a variant does not load here; its customers get the champion',
        );
      }
    }
  }

  private dispose(e: LiveExperiment): void {
    // Requests score synchronously: none is mid-way through these models by the next tick.
    setImmediate(() => {
      for (const v of e.variants) v.model.model.dispose();
    });
  }

  close(): void {
    this.closed = true;
    for (const e of this.live.values()) for (const v of e.variants) v.model.model.dispose();
    this.live.clear();
  }
}

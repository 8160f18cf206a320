import { loadModelByAlias, type MlflowClient, type ServingModel } from '@driftwood/tasks';
import fp from 'fastify-plugin';

declare module 'fastify' {
  interface FastifyInstance {
    models: ModelHolder;
  }
}

/** Holds the serving model; a swap replaces one reference, so a request sees one model start to end. */
export interface ModelHolder {
  current(): ServingModel | undefined;
  reload(): Promise<ServingModel>;
  lastError(): string | undefined;
}

export interface ModelRegistryOptions {
  mlflow: MlflowClient;
  modelName: string;
  alias: string;
}

export const modelRegistryPlugin = fp<ModelRegistryOptions>(
  async (app, opts) => {
    let model: ServingModel | undefined;
    let error: string | undefined;
    const holder: ModelHolder = {
      current: () => model,
      lastError: () => error,
      reload: async () => {
        // Load and check the new model fully before it replaces the old one.
        const next = await loadModelByAlias(opts.mlflow, opts.modelName, opts.alias);
        const previous = model;
        model = next;
        error = undefined;
        previous?.dispose();
        app.log.info({ model: next.name, version: next.version, alias: opts.alias }, 'model loaded');
        return next;
      },
    };
    app.decorate('models', holder);
    app.addHook('onReady', async () => {
      try {
        await holder.reload();
      } catch (err) {
        error = err instanceof Error ? err.message : String(err);
        app.log.error({ err: error, model: opts.modelName, alias: opts.alias }, 'no model loaded at start');
      }
    });
    app.addHook('onClose', async () => model?.dispose());
  },
  { name: 'driftwood-model-registry' },
);

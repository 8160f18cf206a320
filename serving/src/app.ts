import type { MlflowClient } from '@driftwood/tasks';
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import { errorHandler } from './errors.js';
import { modelRegistryPlugin } from './plugins/model-registry.js';
import { healthRoutes } from './routes/health.js';
import { predictRoutes } from './routes/predict.js';

export interface AppOptions {
  mlflow: MlflowClient;
  modelName: string;
  alias: string;
  /** A pino logger (the CLI's); without it the app logs nothing, as tests want. */
  logger?: FastifyBaseLogger;
  /** Body limit in bytes (64 KB by default). */
  bodyLimit?: number;
}

/**
 * Builds the prediction API. `server.ts` only listens; tests call this and `app.inject()`.
 * The model is loaded from the MLflow registry alias before `ready()` resolves, but a failed load
 * does not stop the app: `/health/ready` stays 503 and predictions answer 503 until a model loads.
 */
export async function buildApp(options: AppOptions): Promise<FastifyInstance> {
  const app: FastifyInstance = Fastify({
    ...(options.logger ? { loggerInstance: options.logger } : { logger: false }),
    bodyLimit: options.bodyLimit ?? 64 * 1024,
    ajv: { customOptions: { allErrors: false, coerceTypes: false, removeAdditional: false } },
  });
  app.setErrorHandler(errorHandler);
  await app.register(modelRegistryPlugin, {
    mlflow: options.mlflow,
    modelName: options.modelName,
    alias: options.alias,
  });
  await app.register(healthRoutes);
  await app.register(predictRoutes, { prefix: '/v1' });
  return app;
}

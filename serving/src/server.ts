import type { Config, Logger } from '@driftwood/tasks';
import { MlflowClient } from '@driftwood/tasks';
import { buildApp } from './app.js';

/** Starts the API and closes it with grace on SIGTERM/SIGINT (stop accepting, finish in-flight). */
export async function startServer(
  config: Config,
  log: Logger,
): Promise<{ url: string; close: () => Promise<void> }> {
  const app = await buildApp({
    mlflow: new MlflowClient(config.mlflow.trackingUri, config.http),
    modelName: config.mlflow.modelName,
    alias: 'champion',
    logger: log,
  });
  const url = await app.listen({ host: config.api.host, port: config.api.port });
  log.info({ url, docs: `${url}/health/ready` }, 'serve: listening');
  const close = async () => {
    await app.close();
  };
  const onSignal = (signal: string) => {
    log.info({ signal }, 'serve: shutting down');
    const timer = setTimeout(() => process.exit(1), 10_000);
    timer.unref();
    close().then(() => process.exit(0));
  };
  process.once('SIGTERM', () => onSignal('SIGTERM'));
  process.once('SIGINT', () => onSignal('SIGINT'));
  return { url, close };
}

import { existsSync } from 'node:fs';
import path from 'node:path';
import fastifyStatic from '@fastify/static';
import type { FastifyPluginAsync } from 'fastify';

export interface DashboardOptions {
  /** The built dashboard (`dashboard/dist`, made by `make build`). */
  root?: string;
}

export const DEFAULT_DASHBOARD_ROOT = path.resolve(import.meta.dirname, '../../../dashboard/dist');

/**
 * Serves the dashboard's static build under `/ui`. The page itself is public (it holds no data);
 * every figure it shows comes from the API with the user's own credentials. Hashed assets are
 * immutable for a year; `index.html` is revalidated so a new build is picked up at once.
 */
export const dashboardPlugin: FastifyPluginAsync<DashboardOptions> = async (app, opts) => {
  const root = opts.root ?? DEFAULT_DASHBOARD_ROOT;
  if (!existsSync(path.join(root, 'index.html'))) {
    app.log.warn({ root }, 'dashboard: no build found (run `make build`); /ui is not served');
    return;
  }
  await app.register(fastifyStatic, {
    root,
    prefix: '/ui/',
    index: ['index.html'],
    wildcard: true,
    cacheControl: false,
    setHeaders: (res, file) => {
      const hashed = file.includes(`${path.sep}assets${path.sep}`);
      res.header('cache-control', hashed ? 'public, max-age=31536000, immutable' : 'no-cache');
    },
  });
  app.get('/ui', (_req, reply) => reply.redirect('/ui/', 302));
};

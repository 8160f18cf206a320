import type { HttpOptions } from '@driftwood/tasks';
import type { FastifyPluginAsync } from 'fastify';
import { readAirflowRuns } from '../airflow/runs.js';
import type { AirflowOptions } from '../airflow/trigger.js';
import { probe, SourceError } from '../dashboard/source-status.js';
import { readDrift, readDriftHtml } from '../evidently/sidecar.js';
import { errorResponses } from '../schemas.js';

export interface DashboardDataOptions {
  /** Airflow's API (the same settings as `POST /v1/train`); without it pipelines show as not configured. */
  airflow?: AirflowOptions;
  /** The Evidently sidecar's HTTP root; without it drift shows as not configured. */
  evidentlyUrl?: string;
  /** Outbound HTTP settings; a page must not hang on a dead source, so reads are capped below. */
  http?: HttpOptions;
  /** Where the browser finds the other UIs (unset: not configured). */
  links?: { mlflow?: string; airflow?: string; grafana?: string };
}

/** One try and at most 5 s: the page shows "unreachable" rather than waiting through retries. */
const READ_TIMEOUT_MS = 5_000;

const stateSchema = {
  type: 'object',
  properties: {
    state: { type: 'string', enum: ['ok', 'not_configured', 'unreachable', 'error'] },
    source: { type: ['string', 'null'] },
    message: { type: ['string', 'null'] },
    data: {},
  },
  required: ['state', 'source', 'message', 'data'],
} as const;

/**
 * What the dashboard shows from outside this API: `GET /v1/dashboard/links` (predict) the other UIs;
 * `GET /v1/dashboard/pipelines` (admin) the last Airflow DAG runs; `GET /v1/dashboard/drift` (admin)
 * the sidecar's latest drift report (per feature) and its retraining decisions;
 * `GET /v1/dashboard/drift/report` (admin) that report's full HTML, proxied so it stays behind auth.
 * Each source answers with its state: ok, not_configured, unreachable or error — never invented data.
 */
export const dashboardDataRoutes: FastifyPluginAsync<DashboardDataOptions> = async (app, opts) => {
  const http: HttpOptions = {
    timeoutMs: Math.min(opts.http?.timeoutMs ?? READ_TIMEOUT_MS, READ_TIMEOUT_MS),
    retries: 0,
    backoffMs: opts.http?.backoffMs ?? 100,
  };
  const airflow = opts.airflow ? { ...opts.airflow, http } : undefined;
  const links = opts.links ?? {};

  app.get(
    '/dashboard/links',
    {
      config: { role: 'predict' },
      schema: {
        summary: 'Links to the MLflow, Airflow and Grafana UIs (null when not configured)',
        tags: ['dashboard'],
        security: [{ basicAuth: [] }],
        response: { ...errorResponses(401, 403, 429) },
      },
    },
    async () => ({
      mlflow: links.mlflow ?? null,
      airflow: links.airflow ?? null,
      grafana: links.grafana ?? null,
    }),
  );

  app.get(
    '/dashboard/pipelines',
    {
      config: { role: 'admin' },
      schema: {
        summary: "The last DAG runs and their state, from Airflow's REST API",
        tags: ['dashboard'],
        security: [{ basicAuth: [] }],
        querystring: {
          type: 'object',
          properties: { limit: { type: 'string', pattern: '^[0-9]{1,2}$' } },
          additionalProperties: false,
        },
        response: { 200: stateSchema, ...errorResponses(400, 401, 403, 429) },
      },
    },
    async (req, reply) => {
      const limit = Number((req.query as { limit?: string }).limit ?? 10);
      if (limit < 1 || limit > 50)
        return reply.status(400).send({ error: 'bad_request', message: 'querystring.limit must be 1 to 50' });
      return probe(
        'DRIFTWOOD_AIRFLOW_URL',
        airflow && { url: airflow.baseUrl, read: () => readAirflowRuns(airflow, limit) },
      );
    },
  );

  const sidecar = opts.evidentlyUrl;
  app.get(
    '/dashboard/drift',
    {
      config: { role: 'admin' },
      schema: {
        summary: "The drift sidecar's latest report (drift per feature) and its retraining decisions",
        tags: ['dashboard'],
        security: [{ basicAuth: [] }],
        response: { 200: stateSchema, ...errorResponses(401, 403, 429) },
      },
    },
    async () =>
      probe(
        'DRIFTWOOD_EVIDENTLY_URL',
        sidecar ? { url: sidecar, read: () => readDrift(sidecar, http, 20) } : undefined,
      ),
  );

  app.get(
    '/dashboard/drift/report',
    {
      config: { role: 'admin' },
      schema: {
        summary: "The drift sidecar's latest Evidently report as HTML",
        tags: ['dashboard'],
        security: [{ basicAuth: [] }],
        response: { ...errorResponses(401, 403, 404, 429, 502) },
      },
    },
    async (_req, reply) => {
      // No sidecar means there is no report to give: a 404 the caller can act on, not a server fault.
      if (!sidecar)
        return reply
          .status(404)
          .send({ error: 'not_configured', message: 'no drift sidecar: set DRIFTWOOD_EVIDENTLY_URL' });
      let html: Buffer | null;
      try {
        html = await readDriftHtml(sidecar, http);
      } catch (err) {
        if (err instanceof SourceError)
          return reply.status(502).send({ error: err.state, message: err.message });
        throw err;
      }
      if (!html)
        return reply.status(404).send({ error: 'not_found', message: 'the sidecar has no report yet' });
      // Evidently's report renders with inline scripts. A sandbox without allow-same-origin runs them
      // in an opaque origin: they cannot read this API's storage, cookies or responses.
      return reply
        .type('text/html; charset=utf-8')
        .header('cache-control', 'private, no-store')
        .header(
          'content-security-policy',
          "sandbox allow-scripts allow-popups; default-src 'none'; script-src 'unsafe-inline' 'unsafe-eval'; style-src 'unsafe-inline'; img-src data:; font-src data:",
        )
        .send(html);
    },
  );
};

import {
  type Backtest,
  backtestForecast,
  type Candle,
  candlesNeeded,
  forecastFromRows,
  forecastNext,
  isDriftwoodError,
  type MlflowClient,
  versionTestCandles,
} from '@driftwood/tasks';
import type { FastifyPluginAsync } from 'fastify';
import type { ForecastHolder } from '../forecast/holder.js';
import { errorResponses, modelRefSchema } from '../schemas.js';
import { sendNotLoaded } from './model-guard.js';

export interface ForecastRoutesOptions {
  holder: ForecastHolder;
  mlflow: MlflowClient;
  /** The newest `n` candles held in the warehouse, oldest first; absent when no warehouse is set. */
  latestCandles?: (n: number) => Promise<Candle[]>;
  /** Candles a request may carry at most. */
  maxCandles?: number;
  /** Also serve `GET …/model` (under `/v1/datasets/<name>`, beside the tabular datasets' own). */
  modelRoute?: boolean;
}

const candleSchema = {
  type: 'object',
  properties: {
    open_time: { type: ['string', 'number'], description: 'start of the hour: ISO time or epoch ms' },
    open: { type: 'number' },
    high: { type: 'number' },
    low: { type: 'number' },
    close: { type: 'number' },
    volume: { type: 'number' },
  },
  required: ['open_time', 'open', 'high', 'low', 'close', 'volume'],
  additionalProperties: false,
} as const;

/** The request's newest candle as logged features (scalars only), or undefined without candles. */
function lastCandle(candles: unknown[] | undefined): Record<string, number | string | null> | undefined {
  const last = candles?.[candles.length - 1];
  if (typeof last !== 'object' || last === null) return undefined;
  return Object.fromEntries(
    Object.entries(last).map(([k, v]) => [k, typeof v === 'number' || typeof v === 'string' ? v : null]),
  );
}

/**
 * `POST /v1/forecast`: the close `horizon` hours after the last candle, from the candles in the
 * request or, without them, the newest candles in the warehouse. The champion of the forecast model
 * answers; candles are checked (hourly, consecutive, positive prices) with errors naming the row.
 */
export const forecastRoutes: FastifyPluginAsync<ForecastRoutesOptions> = async (app, opts) => {
  app.post(
    '/forecast',
    {
      config: { role: 'predict' },
      schema: {
        summary: 'The next-hour (or horizon) close forecast from the latest hourly candles',
        tags: ['forecast'],
        security: [{ basicAuth: [] }],
        body: {
          type: 'object',
          properties: {
            candles: { type: 'array', maxItems: opts.maxCandles ?? 2000, items: candleSchema },
          },
          additionalProperties: false,
        },
        response: {
          200: {
            type: 'object',
            properties: {
              forecast: {
                type: 'object',
                properties: {
                  last_open_time: { type: 'string' },
                  forecast_open_time: { type: 'string' },
                  horizon_hours: { type: 'integer' },
                  last_close: { type: 'number' },
                  price: { type: 'number' },
                  log_return: { type: 'number' },
                },
              },
              candles_from: { type: 'string', enum: ['request', 'warehouse'] },
              model: modelRefSchema,
            },
          },
          ...errorResponses(400, 401, 403, 413, 415, 429, 500, 503),
        },
      },
    },
    async (req, reply) => {
      const held = await opts.holder.current();
      if (!held) return sendNotLoaded(reply, opts.holder.notLoaded());
      const body = (req.body ?? {}) as { candles?: unknown[] };
      let forecast: ReturnType<typeof forecastNext>;
      let from: 'request' | 'warehouse';
      try {
        if (body.candles !== undefined) {
          forecast = forecastFromRows(held.model, body.candles);
          from = 'request';
        } else {
          if (!opts.latestCandles)
            return reply.status(400).send({
              error: 'bad_request',
              message: 'body.candles is required: no warehouse is configured to read the latest candles from',
            });
          const need = candlesNeeded(held.model.state);
          const candles = await opts.latestCandles(need);
          if (candles.length < need)
            return reply.status(503).send({
              error: 'data_missing',
              message: `the warehouse holds ${candles.length} candles, the model needs ${need}: ingest first or send body.candles`,
            });
          try {
            forecast = forecastNext(held.model, candles);
          } catch (err) {
            // Not the caller's fault: the stored series has a gap where the window needs an hour.
            if (isDriftwoodError(err, 'SCHEMA_MISMATCH'))
              return reply.status(503).send({
                error: 'data_missing',
                message: `the newest warehouse candles cannot make a window (${err.message}); send body.candles`,
              });
            throw err;
          }
          from = 'warehouse';
        }
      } catch (err) {
        if (isDriftwoodError(err, 'SCHEMA_MISMATCH'))
          return reply.status(400).send({ error: 'bad_request', message: `body.${err.message}` });
        throw err;
      }
      const model = { name: held.name, version: held.version, alias: held.alias };
      app.recordForecast(opts.holder.dataset, {
        ts: Date.now(),
        requestId: req.id,
        model,
        features: lastCandle(body.candles) ?? { open_time: forecast.lastOpenTime, close: forecast.lastClose },
        forecast: {
          forecast_open_time: forecast.forecastOpenTime,
          horizon_hours: forecast.horizonHours,
          price: forecast.price,
          log_return: forecast.logReturn,
        },
      });
      return {
        forecast: {
          last_open_time: forecast.lastOpenTime,
          forecast_open_time: forecast.forecastOpenTime,
          horizon_hours: forecast.horizonHours,
          last_close: forecast.lastClose,
          price: forecast.price,
          log_return: forecast.logReturn,
        },
        candles_from: from,
        model,
      };
    },
  );

  if (opts.modelRoute)
    app.get(
      '/model',
      {
        config: { role: 'predict' },
        schema: {
          summary: "The forecast dataset's served champion: version, alias, when it was loaded",
          tags: ['forecast'],
          security: [{ basicAuth: [] }],
          response: {
            200: {
              type: 'object',
              properties: {
                dataset: { type: 'string' },
                name: { type: 'string' },
                version: { type: 'string' },
                alias: { type: 'string' },
                loaded_at: { type: 'string' },
              },
            },
            ...errorResponses(401, 403, 429, 503),
          },
        },
      },
      async (_req, reply) => {
        const held = await opts.holder.current();
        if (!held) return sendNotLoaded(reply, opts.holder.notLoaded());
        const { name, version, alias, loadedAt } = held;
        return {
          dataset: opts.holder.dataset,
          name,
          version,
          alias,
          loaded_at: new Date(loadedAt).toISOString(),
        };
      },
    );

  // A version's backtest never changes: computed once per version.
  const backtests = new Map<string, Backtest>();
  app.get(
    '/forecast/backtest',
    {
      config: { role: 'predict' },
      schema: {
        summary: "The champion's forecasts over its test period, against actuals and the baselines",
        tags: ['forecast'],
        security: [{ basicAuth: [] }],
        response: { ...errorResponses(401, 403, 429, 500, 503) },
      },
    },
    async (_req, reply) => {
      const held = await opts.holder.current();
      if (!held) return sendNotLoaded(reply, opts.holder.notLoaded());
      let result = backtests.get(held.version);
      if (!result) {
        const mv = await opts.mlflow.getModelVersion(held.name, held.version);
        let candles: Candle[];
        try {
          candles = await versionTestCandles(opts.mlflow, mv);
        } catch (err) {
          // A version without its run's test candles has nothing to replay: say so, not a 500.
          if (!isDriftwoodError(err, 'MODEL_INVALID')) throw err;
          return reply.status(503).send({ error: 'data_missing', message: err.message });
        }
        result = backtestForecast(held.model, candles);
        backtests.set(held.version, result);
      }
      return { model: { name: held.name, version: held.version, alias: held.alias }, ...result };
    },
  );
};

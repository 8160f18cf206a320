import {
  CategoryScale,
  Chart,
  Legend,
  LinearScale,
  LineController,
  LineElement,
  PointElement,
  Tooltip,
} from 'chart.js';
import { ApiError, type ModelRef, request } from '../api.js';
import { empty, errorBox, fmt, h, section, table } from '../dom.js';
import type { Page } from './page.js';

Chart.register(LineController, LineElement, PointElement, CategoryScale, LinearScale, Legend, Tooltip);

interface Backtest {
  model: ModelRef;
  horizonHours: number;
  points: { time: string; actual: number; forecast: number; persistence: number; movingAverage: number }[];
  rmse: { model: number; persistence: number; movingAverage: number } | null;
}

interface NextForecast {
  forecast: {
    last_open_time: string;
    forecast_open_time: string;
    last_close: number;
    price: number;
    log_return: number;
  };
  candles_from: string;
  model: ModelRef;
}

/** Shown instead of a chart when the API has no forecast model or no candles: why, never fake data. */
function unavailable(err: unknown): HTMLElement {
  if (err instanceof ApiError && (err.status === 503 || err.status === 404))
    return empty(
      err.status === 404
        ? 'This API serves no forecast model (DRIFTWOOD_FORECAST_MODEL=off).'
        : `Not available yet: ${err.message}. Train and promote one with 'driftwood train --dataset <name>' and 'driftwood promote --dataset <name>' for a sequence_forecast dataset.`,
    );
  return errorBox(err);
}

/**
 * The BTC series over the champion's test period: its forecasts against the actual closes and the
 * persistence and moving-average baselines, their RMSE, and the next hour's forecast from the newest
 * candles in the warehouse.
 */
export const renderForecast: Page = async (main) => {
  const [backtest, next] = await Promise.allSettled([
    request<Backtest>('/v1/forecast/backtest'),
    request<NextForecast>('/v1/forecast', { method: 'POST', body: {} }),
  ]);

  if (next.status === 'fulfilled') {
    const f = next.value.forecast;
    main.append(
      section(
        'Next hour',
        h(
          'p',
          { class: 'lead', 'data-testid': 'next-forecast' },
          `Close of the hour from ${f.forecast_open_time.slice(0, 16).replace('T', ' ')} UTC: `,
          h('strong', {}, f.price.toFixed(2)),
          ` (last close ${f.last_close.toFixed(2)}, ${(100 * (Math.exp(f.log_return) - 1)).toFixed(3)}%) — model ${next.value.model.name} v${next.value.model.version}, candles from the ${next.value.candles_from}.`,
        ),
      ),
    );
  } else main.append(section('Next hour', unavailable(next.reason)));

  if (backtest.status === 'rejected') {
    main.append(section('Forecast against actuals', unavailable(backtest.reason)));
    return;
  }
  const b = backtest.value;
  if (b.points.length === 0 || !b.rmse) {
    main.append(section('Forecast against actuals', empty('The test period holds no complete window.')));
    return;
  }
  const canvas = h('canvas', {
    id: 'chart-forecast',
    role: 'img',
    'aria-label': 'Actual close, the model forecast and the persistence baseline over the test period',
  });
  const beats = b.rmse.model < b.rmse.persistence;
  main.append(
    section(
      `Forecast against actuals: ${b.model.name} v${b.model.version}, ${b.points.length} test hours`,
      canvas,
    ),
    section(
      'Test-period error (RMSE, price units)',
      table(
        ['forecast', 'RMSE', 'vs persistence'],
        [
          ['LSTM (champion)', fmt(b.rmse.model, 2), `${fmt((100 * b.rmse.model) / b.rmse.persistence, 1)}%`],
          ['persistence (next hour = this hour)', fmt(b.rmse.persistence, 2), '100%'],
          [
            'moving average',
            fmt(b.rmse.movingAverage, 2),
            `${fmt((100 * b.rmse.movingAverage) / b.rmse.persistence, 1)}%`,
          ],
        ],
      ),
      h(
        'p',
        { 'data-testid': 'gate-verdict' },
        beats
          ? 'The champion beats the persistence forecast on this period, as the promotion gate requires.'
          : 'On this replay the champion does not beat persistence.',
      ),
    ),
  );
  new Chart(canvas, {
    type: 'line',
    data: {
      labels: b.points.map((p) => p.time.slice(5, 16).replace('T', ' ')),
      datasets: [
        { label: 'actual', data: b.points.map((p) => p.actual), borderColor: '#222', pointRadius: 0 },
        {
          label: 'LSTM forecast',
          data: b.points.map((p) => p.forecast),
          borderColor: '#e45756',
          pointRadius: 0,
        },
        {
          label: 'persistence',
          data: b.points.map((p) => p.persistence),
          borderColor: '#4c78a8',
          borderDash: [4, 3],
          pointRadius: 0,
        },
      ],
    },
    options: { animation: false, responsive: true, interaction: { mode: 'index', intersect: false } },
  });
};

import {
  BarController,
  BarElement,
  CategoryScale,
  Chart,
  Legend,
  LinearScale,
  LineController,
  LineElement,
  PointElement,
  Tooltip,
} from 'chart.js';
import { ApiError, request } from '../api.js';
import { empty, h, section } from '../dom.js';
import type { Page } from '../main.js';
import { parsePrometheus } from '../metrics.js';

Chart.register(
  BarController,
  BarElement,
  LineController,
  LineElement,
  PointElement,
  CategoryScale,
  LinearScale,
  Legend,
  Tooltip,
);

interface Summary {
  hours: { hour: string; count: number; churned: number; meanProbability: number | null }[];
  histogram: number[];
  total: number;
}

/** Prediction volume per served version and label, and requests per route, from the API's `/metrics`. */
export const renderMonitoring: Page = async (main, session) => {
  if (!session.roles.includes('admin')) {
    main.append(section('Monitoring', empty('The monitoring figures need the admin role.')));
    return;
  }
  const [samples, summary] = await Promise.all([
    request<string>('/metrics').then(parsePrometheus),
    request<Summary>('/v1/monitoring/predictions?hours=24').catch((err) => {
      if (err instanceof ApiError && err.status === 404) return null;
      throw err;
    }),
  ]);
  if (!summary)
    main.append(section('Prediction log (last 24 h)', empty('This API writes no prediction log.')));
  else if (summary.total === 0)
    main.append(section('Prediction log (last 24 h)', empty('No served prediction in the last 24 hours.')));
  else {
    const volume = h('canvas', {
      id: 'chart-volume',
      role: 'img',
      'aria-label': 'Served predictions per hour and mean churn probability',
    });
    const scores = h('canvas', {
      id: 'chart-scores',
      role: 'img',
      'aria-label': 'Distribution of churn probabilities',
    });
    main.append(
      section(`Prediction log (last 24 h): ${summary.total} served predictions`, volume),
      section('Score distribution (last 24 h)', scores),
    );
    new Chart(volume, {
      type: 'bar',
      data: {
        labels: summary.hours.map((x) => x.hour.slice(11, 16)),
        datasets: [
          {
            type: 'bar',
            label: 'predictions',
            data: summary.hours.map((x) => x.count),
            backgroundColor: '#4c78a8',
            yAxisID: 'y',
          },
          {
            type: 'line',
            label: 'mean probability',
            data: summary.hours.map((x) => x.meanProbability),
            borderColor: '#e45756',
            yAxisID: 'p',
          },
        ],
      },
      options: {
        animation: false,
        responsive: true,
        scales: { y: { beginAtZero: true }, p: { position: 'right', min: 0, max: 1 } },
      },
    });
    new Chart(scores, {
      type: 'bar',
      data: {
        labels: summary.histogram.map((_, i) => `${(i / 10).toFixed(1)}–${((i + 1) / 10).toFixed(1)}`),
        datasets: [{ label: 'predictions', data: summary.histogram, backgroundColor: '#72b7b2' }],
      },
      options: { animation: false, responsive: true, scales: { y: { beginAtZero: true } } },
    });
  }
  const preds = samples.filter((s) => s.name === 'driftwood_predictions_total' && s.value > 0);
  const versions = [...new Set(preds.map((s) => `v${s.labels.model_version} (${s.labels.served})`))];
  const count = (v: string, label: string) =>
    preds
      .filter((s) => `v${s.labels.model_version} (${s.labels.served})` === v && s.labels.label === label)
      .reduce((a, s) => a + s.value, 0);

  const canvas = h('canvas', {
    id: 'chart-predictions',
    role: 'img',
    'aria-label': 'Predictions per model version and label',
  });
  main.append(
    section(
      'Predictions by version and label',
      preds.length ? canvas : empty('No prediction since the API started.'),
    ),
  );
  if (preds.length)
    new Chart(canvas, {
      type: 'bar',
      data: {
        labels: versions,
        datasets: [
          { label: 'stay (0)', data: versions.map((v) => count(v, '0')), backgroundColor: '#4c78a8' },
          { label: 'churn (1)', data: versions.map((v) => count(v, '1')), backgroundColor: '#e45756' },
        ],
      },
      options: {
        animation: false,
        responsive: true,
        scales: { x: { stacked: true }, y: { stacked: true, beginAtZero: true } },
      },
    });

  const reqs = samples.filter((s) => s.name === 'driftwood_http_requests_total');
  const routes = [...new Set(reqs.map((s) => s.labels.route ?? '?'))].sort();
  const byClass = (route: string, ok: boolean) =>
    reqs
      .filter((s) => s.labels.route === route && Number(s.labels.status_code) < 400 === ok)
      .reduce((a, s) => a + s.value, 0);
  const c2 = h('canvas', {
    id: 'chart-requests',
    role: 'img',
    'aria-label': 'Requests per route, success and error',
  });
  main.append(section('Requests per route', c2));
  new Chart(c2, {
    type: 'bar',
    data: {
      labels: routes,
      datasets: [
        { label: '< 400', data: routes.map((r) => byClass(r, true)), backgroundColor: '#54a24b' },
        { label: '≥ 400', data: routes.map((r) => byClass(r, false)), backgroundColor: '#f58518' },
      ],
    },
    options: {
      animation: false,
      indexAxis: 'y',
      responsive: true,
      scales: { x: { stacked: true }, y: { stacked: true } },
    },
  });

  main.append(
    section(
      'Drift and retraining',
      h(
        'p',
        {},
        'Per-feature drift and retraining decisions come from the Evidently sidecar (',
        h('code', {}, '/reports/latest'),
        ', ',
        h('code', {}, '/decisions'),
        '; see docs/monitoring.md). This API does not proxy the sidecar yet, so they are not shown here.',
      ),
    ),
  );
};

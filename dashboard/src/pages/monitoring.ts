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
import { ApiError, type DriftState, drift, type PipelineRun, pipelines, request } from '../api.js';
import { age, badge, empty, fmt, h, runTone, section, sourceState, table } from '../dom.js';
import { parsePrometheus } from '../metrics.js';
import { experimentsPanel } from './experiments-panel.js';
import type { Page } from './page.js';

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
      'aria-label': 'Served predictions per hour and mean predicted probability',
    });
    const scores = h('canvas', {
      id: 'chart-scores',
      role: 'img',
      'aria-label': 'Distribution of predicted probabilities',
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
          { label: 'negative (0)', data: versions.map((v) => count(v, '0')), backgroundColor: '#4c78a8' },
          { label: 'positive (1)', data: versions.map((v) => count(v, '1')), backgroundColor: '#e45756' },
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

  const [d, runs, experiments] = await Promise.all([drift(), pipelines(), experimentsPanel()]);
  main.append(experiments, ...driftSections(d, runs.data ?? []));
};

/**
 * Drift per feature from the sidecar's latest report (and a link to its full HTML, proxied by the
 * API), then every retraining decision with its delivery and, when Airflow answers, its run's state.
 */
function driftSections(d: Awaited<ReturnType<typeof drift>>, runs: PipelineRun[]): HTMLElement[] {
  if (d.state !== 'ok' || !d.data)
    return [
      section('Drift per feature', h('div', { id: 'drift-features' }, sourceState('Drift sidecar', d))),
    ];
  const { report, decisions } = d.data as DriftState;
  const features = report
    ? h(
        'div',
        { id: 'drift-features', 'data-state': 'ok' },
        h(
          'p',
          {},
          `Report ${report.reportId}: window ${report.windowStart ?? '?'} → ${report.windowEnd ?? '?'}, ${report.rows ?? '?'} predictions; `,
          badge(
            report.datasetDrift ? 'dataset drift' : 'no dataset drift',
            report.datasetDrift ? 'bad' : 'ok',
          ),
          ' ',
          h(
            'a',
            {
              href: '/v1/dashboard/drift/report',
              target: '_blank',
              rel: 'noopener',
              id: 'drift-report-link',
            },
            'full Evidently report',
          ),
        ),
        table(
          ['Feature', 'Method', 'Score', 'Threshold', 'Drifted'],
          [...report.features, ...(report.prediction ? [report.prediction] : [])].map((f) => [
            f.column,
            f.method,
            score(f.score),
            fmt(f.threshold ?? undefined, 3),
            badge(f.drifted ? 'drifted' : 'stable', f.drifted ? 'bad' : 'ok'),
          ]),
          `${report.driftedColumns ?? '?'} of ${report.features.length} features drifted (share ${fmt(report.driftShare ?? undefined, 2)})`,
        ),
      )
    : h(
        'div',
        { id: 'drift-features', 'data-state': 'ok' },
        empty('The drift sidecar has not written a report yet.'),
      );
  const byRunId = new Map(runs.map((r) => [r.runId, r]));
  const log = decisions.length
    ? table(
        ['Decided', 'Window end', 'Rows', 'Drift', 'Action', 'Reason', 'Delivered', 'Airflow run'],
        decisions.map((x) => {
          const run = x.airflowRunId ? byRunId.get(x.airflowRunId) : undefined;
          return [
            x.decidedAt ? `${age(x.decidedAt)} ago` : '—',
            x.windowEnd ?? '—',
            x.rows ?? '—',
            x.datasetDrift ? 'yes' : 'no',
            badge(x.action, x.action === 'trigger' ? 'busy' : 'idle'),
            x.reason ?? '',
            x.action !== 'trigger'
              ? '—'
              : x.delivered
                ? `yes (HTTP ${x.delivery?.status ?? '?'})`
                : `no: ${x.delivery?.detail ?? 'not sent'}`,
            x.airflowRunId
              ? h(
                  'span',
                  {},
                  h('code', {}, x.airflowRunId),
                  ' ',
                  run ? badge(run.state, runTone(run.state)) : '',
                )
              : '—',
          ];
        }),
      )
    : empty('No retraining decision yet.');
  log.id = 'drift-decisions';
  return [section('Drift per feature', features), section('Retraining decisions', log)];
}

/** p-values of a strong drift are tiny: show their magnitude rather than 0.0000. */
function score(x: number | null): string {
  if (x === null || !Number.isFinite(x)) return '—';
  return x !== 0 && Math.abs(x) < 1e-3 ? x.toExponential(2) : x.toFixed(4);
}

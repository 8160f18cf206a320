import { drift, type Models, pipelines, request } from '../api.js';
import { age, badge, empty, fmt, h, runTone, section, sourceState, table } from '../dom.js';
import { logSearchUrl } from '../log-links.js';
import { parsePrometheus, sum } from '../metrics.js';
import type { Page } from './page.js';

interface ModelInfo {
  name: string;
  version: string;
  alias: string;
  challenger: { version: string; alias: string } | null;
  routing: { mode: string; canary_percent: number };
}

interface Links {
  mlflow: string | null;
  airflow: string | null;
  grafana: string | null;
}

const LINKS = [
  ['mlflow', 'MLflow', 'experiments, runs, the registry', 'DRIFTWOOD_MLFLOW_UI_URL'],
  ['airflow', 'Airflow', 'DAG runs and task logs', 'DRIFTWOOD_AIRFLOW_UI_URL'],
  ['grafana', 'Grafana', 'API and drift dashboards', 'DRIFTWOOD_GRAFANA_URL'],
] as const;

export const renderOverview: Page = async (main, session) => {
  const [info, models, links] = await Promise.all([
    request<ModelInfo>('/v1/model'),
    request<Models>('/v1/models'),
    request<Links>('/v1/dashboard/links'),
  ]);
  const byVersion = new Map(models.versions.map((v) => [v.version, v]));
  const slots = [
    ['champion', info.version],
    ...(info.challenger ? [['challenger', info.challenger.version] as const] : []),
  ] as const;
  const cards = table(
    ['Role', 'Version', 'ROC AUC (holdout)', 'Log loss (holdout)', 'Registered', 'Logs'],
    slots.map(([role, version]) => {
      const v = byVersion.get(version);
      return [
        role,
        version,
        fmt(v?.metrics.holdout_roc_auc),
        fmt(v?.metrics.holdout_log_loss),
        age(v?.created),
        logLink(logSearchUrl(links.grafana, { modelVersion: version }), `API logs of version ${version}`),
      ];
    }),
    `${info.name} — routing ${info.routing.mode}${info.routing.mode === 'canary' ? ` ${info.routing.canary_percent} %` : ''}`,
  );
  main.append(section('Models in service', cards));

  if (session.roles.includes('admin')) {
    const samples = parsePrometheus(await request<string>('/metrics'));
    const total = sum(samples, 'driftwood_http_requests_total');
    const errors = sum(samples, 'driftwood_http_requests_total', (l) => Number(l.status_code) >= 500);
    const predictions = sum(samples, 'driftwood_predictions_total');
    main.append(
      section(
        'API traffic (since this process started)',
        table(
          ['Requests', 'Predictions', '5xx errors', 'Error rate'],
          [[total, predictions, errors, total ? `${((errors / total) * 100).toFixed(2)} %` : '—']],
        ),
      ),
    );
  } else main.append(section('API traffic', empty('Traffic figures need the admin role.')));

  if (session.roles.includes('admin')) {
    const [runs, drifted] = await Promise.all([pipelines(), drift()]);
    main.append(pipelineSection(runs, links.grafana), driftSection(drifted));
  } else
    main.append(
      section('Pipelines and drift', empty('Pipeline runs and the drift status need the admin role.')),
    );

  const list = h(
    'ul',
    { id: 'overview-links' },
    ...LINKS.map(([key, name, what, setting]) => {
      const href = links[key];
      return href
        ? h('li', {}, h('a', { href, rel: 'noopener', target: '_blank' }, name), ` — ${what}`)
        : h('li', { 'data-state': 'not_configured' }, `${name}: not configured (set ${setting})`);
    }),
    h('li', {}, h('a', { href: '/docs', rel: 'noopener' }, 'API reference'), ' — OpenAPI (this server)'),
  );
  main.append(section('Elsewhere', list));
};

/** A log search link, or a dash when Grafana is not configured (the Elsewhere list says how to set it). */
function logLink(href: string | null, title: string): HTMLElement | string {
  return href ? h('a', { href, rel: 'noopener', target: '_blank', title }, 'logs') : '—';
}

/** A DAG's dataset: the contract's name before the DAG's kind (`churn_pipeline`, `churn_retrain`). */
const datasetOfDag = (dagId: string): string => dagId.replace(/_[a-z]+$/, '');

function pipelineSection(runs: Awaited<ReturnType<typeof pipelines>>, grafana: string | null): HTMLElement {
  if (runs.state !== 'ok' || !runs.data)
    return section(
      'Pipeline runs (Airflow)',
      h('div', { id: 'overview-pipelines' }, sourceState('Airflow', runs)),
    );
  const body = runs.data.length
    ? table(
        ['DAG', 'Run', 'State', 'Type', 'Due', 'Ended', 'Logs'],
        runs.data.map((r) => [
          r.dagId,
          h('code', {}, r.runId),
          badge(r.state, runTone(r.state)),
          r.runType ?? '—',
          `${age(r.runAfter ?? r.queuedAt)} ago`,
          r.endedAt ? `${age(r.endedAt)} ago` : '—',
          logLink(
            logSearchUrl(grafana, { dataset: datasetOfDag(r.dagId), dagRunId: r.runId }),
            `step logs of ${r.runId}`,
          ),
        ]),
        `Latest runs across all DAGs, newest first (${runs.source})`,
      )
    : empty('Airflow answers, but no DAG has run yet.');
  return section('Pipeline runs (Airflow)', h('div', { id: 'overview-pipelines', 'data-state': 'ok' }, body));
}

function driftSection(d: Awaited<ReturnType<typeof drift>>): HTMLElement {
  if (d.state !== 'ok' || !d.data)
    return section('Drift', h('div', { id: 'overview-drift' }, sourceState('Drift sidecar', d)));
  const r = d.data.report;
  const last = d.data.decisions[0];
  const body = r
    ? h(
        'div',
        {},
        h(
          'p',
          { class: 'big' },
          badge(r.datasetDrift ? 'drift' : 'no drift', r.datasetDrift ? 'bad' : 'ok'),
          ` ${r.driftedColumns ?? '?'} of ${r.features.length} features drifted (share ${fmt(r.driftShare ?? undefined, 2)})`,
        ),
        h(
          'p',
          { class: 'muted' },
          `Window ${r.windowStart ?? '?'} → ${r.windowEnd ?? '?'}, ${r.rows ?? '?'} predictions of version ${r.model.version ?? '?'}; report ${r.reportId}.`,
        ),
        last
          ? h(
              'p',
              {},
              'Last retraining decision: ',
              h('strong', {}, last.action),
              last.reason ? ` — ${last.reason}` : '',
            )
          : null,
        h('p', {}, h('a', { href: '#/monitoring' }, 'Drift per feature and every decision')),
      )
    : empty('The drift sidecar answers, but has not written a report yet.');
  return section('Drift', h('div', { id: 'overview-drift', 'data-state': 'ok' }, body));
}

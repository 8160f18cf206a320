import { type Models, request } from '../api.js';
import { age, empty, fmt, h, section, table } from '../dom.js';
import type { Page } from '../main.js';
import { parsePrometheus, sum } from '../metrics.js';

interface ModelInfo {
  name: string;
  version: string;
  alias: string;
  challenger: { version: string; alias: string } | null;
  routing: { mode: string; canary_percent: number };
}

const LINKS = [
  ['MLflow', 'http://localhost:5000', 'experiments, runs, the registry'],
  ['Airflow', 'http://localhost:8080', 'DAG runs and task logs'],
  ['Grafana', 'http://localhost:3000', 'API and drift dashboards'],
  ['API reference', '/docs', 'OpenAPI (this server)'],
] as const;

export const renderOverview: Page = async (main, session) => {
  const [info, models] = await Promise.all([request<ModelInfo>('/v1/model'), request<Models>('/v1/models')]);
  const byVersion = new Map(models.versions.map((v) => [v.version, v]));
  const slots = [
    ['champion', info.version],
    ...(info.challenger ? [['challenger', info.challenger.version] as const] : []),
  ] as const;
  const cards = table(
    ['Role', 'Version', 'ROC AUC (holdout)', 'Log loss (holdout)', 'Registered'],
    slots.map(([role, version]) => {
      const v = byVersion.get(version);
      return [
        role,
        version,
        fmt(v?.metrics.holdout_roc_auc),
        fmt(v?.metrics.holdout_log_loss),
        age(v?.created),
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

  main.append(
    section(
      'Pipelines and drift',
      empty(
        'Airflow runs and the drift status live in Airflow and Grafana (links below); this API does not proxy them yet.',
      ),
    ),
    section(
      'Elsewhere',
      h(
        'ul',
        {},
        ...LINKS.map(([name, href, what]) =>
          h('li', {}, h('a', { href, rel: 'noopener' }, name), ` — ${what}`),
        ),
      ),
    ),
  );
};

import { h, section, table } from '../dom.js';
import type { Page } from './page.js';

const FLOW: [string, string][] = [
  ['Sources', 'CSV / JSON / parquet drops and APIs, checked against contracts/ (ingest)'],
  ['Lake', 'S3 (MinIO) raw + curated parquet, PII tokenised before storage'],
  ['Warehouse', 'PostgreSQL: features, the prediction log'],
  ['Airflow', 'DAGs run the TypeScript tasks: ingest → features → train → promote'],
  ['MLflow', 'runs, metrics, the model registry with champion / challenger aliases'],
  ['API', 'Fastify serves the champion (canary / shadow challenger), auth, /metrics — and this dashboard'],
  ['Evidently', 'drift reports on the prediction log; decides retraining'],
  ['Prometheus · Alertmanager · Grafana', 'metrics, alerts, dashboards'],
];

export const renderArchitecture: Page = async (main) => {
  const boxes = FLOW.map(([name], i) =>
    h(
      'li',
      { class: 'box' },
      h('strong', {}, name),
      i < FLOW.length - 1 ? h('span', { class: 'arrow', 'aria-hidden': 'true' }, '→') : null,
    ),
  );
  main.append(
    section(
      'Data flow',
      h('ol', { class: 'flow', 'aria-label': 'Data flow, in order' }, ...boxes),
      h(
        'p',
        { class: 'muted' },
        'Monitoring closes the loop: drift or a falling metric triggers the training DAG, and a new version only replaces the champion after passing the promotion gate.',
      ),
    ),
    section(
      'Components',
      table(
        ['Component', 'What it does'],
        FLOW.map(([a, b]) => [a, b]),
      ),
    ),
  );
};

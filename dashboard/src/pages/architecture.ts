import { h, section, table } from '../dom.js';
import type { Page } from './page.js';

/** What each step does, whichever stack runs it. */
const FLOW: [string, string][] = [
  ['Sources', 'CSV / JSON / parquet drops and APIs, checked against contracts/ (ingest)'],
  ['Lake', 'raw + curated parquet by partition (dt=…/hr=…), PII tokenised before storage'],
  ['Warehouse', 'features and the prediction log, in SQL'],
  ['Airflow', 'DAGs run the TypeScript tasks: ingest → features → train → evaluate → promote'],
  ['MLflow', 'runs, metrics, artifacts, the model registry with champion / challenger aliases'],
  ['API', 'Fastify serves the champion (canary / shadow challenger), auth, /metrics — and this dashboard'],
  [
    'Evidently',
    'the drift sidecar: compares served predictions with the training snapshot; asks for a retrain',
  ],
  ['Prometheus · Alertmanager · Grafana', 'metrics, alerts, dashboards'],
];

/**
 * Where each part lives in the two ways Driftwood runs: processes on this machine (`make up`,
 * `make demo`) and containers (`make stack`, docker-compose.yml). Kept in step with scripts/up.sh,
 * scripts/mlflow.sh, scripts/airflow.sh and docker-compose.yml.
 */
const STACKS: [string, string, string][] = [
  [
    'Lake',
    'a folder: $DRIFTWOOD_HOME/lake (file://)',
    'a folder on the shared driftwood-data volume (file:///var/lib/driftwood/lake)',
  ],
  ['Warehouse', 'SQLite: $DRIFTWOOD_HOME/warehouse.db', 'PostgreSQL (driftwood database)'],
  [
    'MLflow',
    'one process; SQLite backend (mlflow.db), artifacts in a folder',
    'PostgreSQL backend, artifacts in MinIO (the S3 emulator)',
  ],
  [
    'Airflow',
    'API server, scheduler (LocalExecutor), DAG processor, triggerer; SQLite metadata',
    'API server, scheduler, DAG processor, Celery worker with Redis; PostgreSQL metadata (profile full)',
  ],
  [
    'API and dashboard',
    'one Node process (driftwood serve), /ui/',
    'the api-blue container; in profile full also api-green, behind nginx',
  ],
  ['Drift sidecar', 'one Python process (monitoring.evidently)', 'the evidently container (profile full)'],
  ['Prometheus · Alertmanager · Grafana', 'not started', 'containers (profile full)'],
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
  const stacks = table(
    ['Part', 'Local stack: make up / make demo', 'Container stack: make stack'],
    STACKS.map(([a, b, c]) => [a, b, c]),
  );
  stacks.id = 'architecture-stacks';
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
    section(
      'What runs where',
      h(
        'p',
        { class: 'muted' },
        'The same steps run in both stacks; what stores their data differs. The local stack needs no container engine and keeps everything under $DRIFTWOOD_HOME (.driftwood by default).',
      ),
      stacks,
    ),
  );
};

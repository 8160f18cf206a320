import { createServer, type Server } from 'node:http';
import { DriftwoodError, loadConfig } from '@driftwood/tasks';
import Fastify from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mapDagRuns } from '../../serving/src/airflow/runs.js';
import { SourceError } from '../../serving/src/dashboard/source-status.js';
import { mapDecisions, mapDriftSummary } from '../../serving/src/evidently/sidecar.js';
import { dashboardDataRoutes } from '../../serving/src/routes/dashboard.js';

/**
 * The dashboard's readers of Airflow and the drift sidecar: the mapping of recorded replies (Airflow
 * 3.3's `GET /api/v2/dags/~/dagRuns?order_by=-run_after`, and the Evidently sidecar's
 * `/reports/latest.json` and `/decisions`, both taken from running servers), the settings, and the
 * states the routes report when a source is not configured, does not answer, or answers nonsense.
 */

// Airflow 3.3, SimpleAuthManager: three manual runs set to success / failed and one left queued.
const AIRFLOW_RUNS = {
  dag_runs: [
    {
      dag_run_id: 'rec-3',
      dag_id: 'churn_pipeline',
      logical_date: null,
      queued_at: '2026-12-01T21:14:21.398937Z',
      start_date: null,
      end_date: '2026-12-01T21:14:21.451553Z',
      duration: null,
      data_interval_start: null,
      data_interval_end: null,
      run_after: '2026-12-01T21:14:21.390731Z',
      last_scheduling_decision: null,
      run_type: 'manual',
      state: 'success',
      triggered_by: 'rest_api',
      triggering_user_name: 'driftwood',
      conf: {},
      note: null,
      dag_versions: [
        {
          id: '01a23374-da5e-7218-b495-58dc4b9426ea',
          version_number: 1,
          dag_id: 'churn_pipeline',
          bundle_name: 'dags-folder',
          created_at: '2026-12-01T21:13:45.821330Z',
        },
      ],
      bundle_version: null,
      dag_display_name: 'churn_pipeline',
      partition_key: null,
      partition_date: null,
    },
    {
      dag_run_id: 'rec-2',
      dag_id: 'churn_pipeline',
      logical_date: null,
      queued_at: '2026-12-01T21:14:16.734395Z',
      start_date: null,
      end_date: '2026-12-01T21:14:16.882010Z',
      duration: null,
      data_interval_start: null,
      data_interval_end: null,
      run_after: '2026-12-01T21:14:16.706551Z',
      last_scheduling_decision: null,
      run_type: 'manual',
      state: 'failed',
      triggered_by: 'rest_api',
      triggering_user_name: 'driftwood',
      conf: {},
      note: null,
      dag_versions: [
        {
          id: '01a23374-da5e-7218-b495-58dc4b9426ea',
          version_number: 1,
          dag_id: 'churn_pipeline',
          bundle_name: 'dags-folder',
          created_at: '2026-12-01T21:13:45.821330Z',
        },
      ],
      bundle_version: null,
      dag_display_name: 'churn_pipeline',
      partition_key: null,
      partition_date: null,
    },
    {
      dag_run_id: 'rec-1',
      dag_id: 'churn_retrain',
      logical_date: null,
      queued_at: '2026-12-01T21:14:16.592094Z',
      start_date: null,
      end_date: null,
      duration: null,
      data_interval_start: null,
      data_interval_end: null,
      run_after: '2026-12-01T21:14:16.451081Z',
      last_scheduling_decision: null,
      run_type: 'manual',
      state: 'queued',
      triggered_by: 'rest_api',
      triggering_user_name: 'driftwood',
      conf: {},
      note: null,
      dag_versions: [
        {
          id: '01a23374-da5d-77d9-b0a2-e871803b3234',
          version_number: 1,
          dag_id: 'churn_retrain',
          bundle_name: 'dags-folder',
          created_at: '2026-12-01T21:13:45.821318Z',
        },
      ],
      bundle_version: null,
      dag_display_name: 'churn_retrain',
      partition_key: null,
      partition_date: null,
    },
  ],
  total_entries: 3,
  total_entries_limit: null,
  next_cursor: null,
  previous_cursor: null,
};

// The sidecar after one drifted window (webhook kind none) and one empty window; features trimmed to six.
const SUMMARY = {
  report_id: 'churn-20261102T010000Z',
  dataset: 'churn',
  window_start: '2026-11-02T00:00:00+00:00',
  window_end: '2026-11-02T01:00:00+00:00',
  rows: 200,
  skipped_lines: 0,
  model: {
    name: 'churn',
    version: '3',
  },
  reference: {
    uri: '/data/reference.csv',
    hash: 'c1a2446e22a1c328',
    rows: 300,
    sampled: false,
  },
  dataset_drift: true,
  drift_share: 0.6666666666666666,
  drifted_columns: 4,
  features: [
    {
      column: 'tenure_days',
      method: 'K-S p_value',
      threshold: 0.05,
      score: 7.040791015430388e-88,
      drifted: true,
    },
    {
      column: 'monthly_charges',
      method: 'K-S p_value',
      threshold: 0.05,
      score: 9.436694968239421e-86,
      drifted: true,
    },
    {
      column: 'sessions_7d',
      method: 'K-S p_value',
      threshold: 0.05,
      score: 7.442726949436155e-83,
      drifted: true,
    },
    {
      column: 'payment_failures_30d',
      method: 'K-S p_value',
      threshold: 0.05,
      score: 0.9149913972436401,
      drifted: false,
    },
    {
      column: 'plan',
      method: 'chi-square p_value',
      threshold: 0.05,
      score: 4.706849289202591e-107,
      drifted: true,
    },
    {
      column: 'region',
      method: 'chi-square p_value',
      threshold: 0.05,
      score: 0.41653148958277264,
      drifted: false,
    },
  ],
  prediction: {
    column: 'probability',
    method: 'K-S p_value',
    threshold: 0.05,
    score: 2.031502554415638e-33,
    drifted: true,
  },
  prediction_drift_skipped: null,
  sampling: {
    current_sampled: false,
    reference_sampled: false,
    current_rows: '200',
    current_compared: '200',
    reference_rows: '300',
    reference_compared: '300',
    max_rows: '0',
    report_mode: 'preset',
  },
  report_dir: '/data/lake/monitoring/reports/churn/churn-20261102T010000Z',
};

const DECISIONS = [
  {
    report_id: 'churn-20261102T010000Z',
    dataset: 'churn',
    window_start: '2026-11-02T00:00:00+00:00',
    window_end: '2026-11-02T01:00:00+00:00',
    rows: 200,
    skipped_lines: 0,
    model: {
      name: 'churn',
      version: '3',
    },
    reference: {
      uri: '/data/reference.csv',
      hash: 'c1a2446e22a1c328',
      rows: 300,
      sampled: false,
    },
    dataset_drift: true,
    drift_share: 0.7272727272727273,
    drifted_columns: 8,
    prediction: {
      column: 'probability',
      method: 'K-S p_value',
      threshold: 0.05,
      score: 2.031502554415638e-33,
      drifted: true,
    },
    prediction_drift_skipped: null,
    sampling: {
      current_sampled: false,
      reference_sampled: false,
      current_rows: '200',
      current_compared: '200',
      reference_rows: '300',
      reference_compared: '300',
      max_rows: '0',
      report_mode: 'preset',
    },
    decision: {
      action: 'trigger',
      reason: '1 of the last 1 windows drifted (need 1 of 1)',
      drift_declared: true,
      drifted_windows: 1,
      windows_considered: 1,
      report_id: 'churn-20261102T010000Z',
    },
    action: 'trigger',
    decided_at: '2026-12-01T21:17:52.746478+00:00',
    delivered: false,
    delivery: {
      ok: false,
      status: 0,
      detail: 'webhook.kind is none: nothing sent',
    },
    duration_seconds: 3.062,
    timings_seconds: {
      read_log: 0.003,
      reference: 0.016,
      evidently_run: 2.827,
      save_html: 0.215,
      save_json: 0.001,
      decide_and_deliver: 0.001,
    },
  },
  {
    report_id: 'churn-20261102T020000Z',
    dataset: 'churn',
    window_start: '2026-11-02T01:00:00+00:00',
    window_end: '2026-11-02T02:00:00+00:00',
    rows: 0,
    skipped_lines: 0,
    model: {
      name: 'unknown',
      version: 'unknown',
    },
    reference: {
      uri: '/data/reference.csv',
      hash: 'c1a2446e22a1c328',
      rows: 300,
      sampled: false,
    },
    dataset_drift: false,
    decision: {
      action: 'insufficient_rows',
      reason: 'window has 0 rows, fewer than decision.min_rows=50; it does not count',
      drift_declared: false,
      drifted_windows: 0,
      windows_considered: 0,
      report_id: 'churn-20261102T020000Z',
    },
    action: 'insufficient_rows',
    decided_at: '2026-12-01T21:17:57.706670+00:00',
    delivered: false,
    duration_seconds: 0.002,
    timings_seconds: {
      read_log: 0.001,
      reference: 0.0,
      decide_and_deliver: 0.0,
    },
  },
];

/** Ports of this suite's range: one nothing listens on, one answering with something other than JSON. */
const CLOSED_PORT = 7797;
const NONSENSE_PORT = 7798;

describe('mapping recorded replies', () => {
  it("maps Airflow 3's dag runs newest first with their state, type and times", () => {
    const runs = mapDagRuns(AIRFLOW_RUNS);
    expect(runs.map((r) => [r.dagId, r.runId, r.state])).toEqual([
      ['churn_pipeline', 'rec-3', 'success'],
      ['churn_pipeline', 'rec-2', 'failed'],
      ['churn_retrain', 'rec-1', 'queued'],
    ]);
    expect(runs[0]).toMatchObject({
      runType: 'manual',
      triggeredBy: 'rest_api',
      startedAt: null,
      endedAt: '2026-12-01T21:14:21.451553Z',
      runAfter: '2026-12-01T21:14:21.390731Z',
    });
    expect(runs[2]?.endedAt).toBeNull();
  });

  it.each([
    [{ detail: 'Invalid JWT token' }, 'without a dag_runs list'],
    [[], 'without a dag_runs list'],
    [
      { dag_runs: [{ dag_id: 'churn_pipeline', state: 'success' }] },
      'dag_runs[0]: dag_id and dag_run_id expected',
    ],
  ])('refuses an Airflow reply it cannot read (%j), saying what is missing', (reply, message) => {
    expect(() => mapDagRuns(reply)).toThrow(SourceError);
    expect(() => mapDagRuns(reply)).toThrow(message);
  });

  it('maps the latest drift report: every feature with its method, score, threshold and flag', () => {
    const r = mapDriftSummary(SUMMARY);
    expect(r).toMatchObject({
      reportId: 'churn-20261102T010000Z',
      windowEnd: '2026-11-02T01:00:00+00:00',
      rows: 200,
      datasetDrift: true,
      driftedColumns: 4,
      model: { name: 'churn', version: '3' },
    });
    expect(r.features.map((f) => [f.column, f.drifted])).toEqual([
      ['tenure_days', true],
      ['monthly_charges', true],
      ['sessions_7d', true],
      ['payment_failures_30d', false],
      ['plan', true],
      ['region', false],
    ]);
    expect(r.features.filter((f) => f.drifted)).toHaveLength(r.driftedColumns ?? -1);
    expect(r.features[3]).toEqual({
      column: 'payment_failures_30d',
      method: 'K-S p_value',
      threshold: 0.05,
      score: 0.9149913972436401,
      drifted: false,
    });
    expect(r.prediction).toMatchObject({ column: 'probability', drifted: true });
    expect(() => mapDriftSummary({ error: 'NO_REPORT' })).toThrow('without a report_id');
    expect(() => mapDriftSummary({ ...SUMMARY, features: [{ score: 1 }] })).toThrow('features[0]');
  });

  it('maps the decision log newest first, with the delivery and the Airflow run a trigger asks for', () => {
    const d = mapDecisions(DECISIONS);
    expect(d.map((x) => x.action)).toEqual(['insufficient_rows', 'trigger']);
    expect(d[0]).toMatchObject({ rows: 0, delivered: false, delivery: null, airflowRunId: null });
    expect(d[1]).toMatchObject({
      reportId: 'churn-20261102T010000Z',
      datasetDrift: true,
      reason: '1 of the last 1 windows drifted (need 1 of 1)',
      delivered: false,
      delivery: { ok: false, status: 0, detail: 'webhook.kind is none: nothing sent' },
      airflowRunId: 'drift__churn-20261102T010000Z',
    });
    expect(() => mapDecisions({ decisions: [] })).toThrow('without a decision list');
  });
});

describe('dashboard settings', () => {
  it('reads the sidecar and the UI links, with MLflow and Airflow links defaulting to their API URLs', () => {
    const c = loadConfig(
      {
        DRIFTWOOD_EVIDENTLY_URL: 'http://evidently:8000/',
        MLFLOW_TRACKING_URI: 'http://mlflow:5000',
        DRIFTWOOD_AIRFLOW_URL: 'http://airflow:8080',
        DRIFTWOOD_AIRFLOW_PASSWORD: 'pw',
        DRIFTWOOD_GRAFANA_URL: 'https://grafana.example.org',
      },
      '/tmp',
    );
    expect(c.serving.dashboard).toEqual({
      evidentlyUrl: 'http://evidently:8000',
      links: {
        mlflow: 'http://mlflow:5000',
        airflow: 'http://airflow:8080',
        grafana: 'https://grafana.example.org',
      },
    });
    const bare = loadConfig({ DRIFTWOOD_MLFLOW_UI_URL: 'https://mlflow.example.org' }, '/tmp').serving
      .dashboard;
    expect(bare).toEqual({
      evidentlyUrl: undefined,
      links: { mlflow: 'https://mlflow.example.org', airflow: undefined, grafana: undefined },
    });
  });

  it('names the setting of a bad URL', () => {
    expect(() => loadConfig({ DRIFTWOOD_EVIDENTLY_URL: 'evidently:8000' }, '/tmp')).toThrow(DriftwoodError);
    expect(() => loadConfig({ DRIFTWOOD_GRAFANA_URL: 'ftp://grafana' }, '/tmp')).toThrow(
      /setting DRIFTWOOD_GRAFANA_URL: expected a URL starting with http:\/\/ or https:\/\//,
    );
  });
});

describe('the dashboard data routes report each source honestly', () => {
  let nonsense: Server;

  beforeAll(async () => {
    nonsense = createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/html' });
      res.end('<html>a login page</html>');
    });
    await new Promise<void>((resolve) => nonsense.listen(NONSENSE_PORT, '127.0.0.1', resolve));
  });

  afterAll(async () => {
    await new Promise((resolve) => nonsense?.close(resolve));
  });

  async function appWith(options: Parameters<typeof dashboardDataRoutes>[1]) {
    const app = Fastify();
    await app.register(dashboardDataRoutes, { prefix: '/v1', ...options });
    return app;
  }

  it('not configured: says which setting to set, and no link is invented', async () => {
    const app = await appWith({});
    expect((await app.inject('/v1/dashboard/pipelines')).json()).toEqual({
      state: 'not_configured',
      source: null,
      message: 'set DRIFTWOOD_AIRFLOW_URL',
      data: null,
    });
    expect((await app.inject('/v1/dashboard/drift')).json()).toMatchObject({
      state: 'not_configured',
      message: 'set DRIFTWOOD_EVIDENTLY_URL',
      data: null,
    });
    expect((await app.inject('/v1/dashboard/links')).json()).toEqual({
      mlflow: null,
      airflow: null,
      grafana: null,
    });
    const report = await app.inject('/v1/dashboard/drift/report');
    expect(report.statusCode).toBe(404);
    expect(report.json().message).toContain('DRIFTWOOD_EVIDENTLY_URL');
    await app.close();
  });

  it('unreachable: nothing listens at the configured address', async () => {
    const closed = `http://127.0.0.1:${CLOSED_PORT}`;
    const app = await appWith({
      evidentlyUrl: closed,
      airflow: {
        baseUrl: closed,
        username: 'driftwood',
        password: 'pw',
        dagId: 'churn_retrain',
        http: { timeoutMs: 2000, retries: 3, backoffMs: 50 },
      },
    });
    for (const url of ['/v1/dashboard/pipelines', '/v1/dashboard/drift']) {
      const body = (await app.inject(url)).json();
      expect(body).toMatchObject({ state: 'unreachable', source: closed, data: null });
      expect(body.message).toContain(`cannot reach ${closed}`);
    }
    const report = await app.inject('/v1/dashboard/drift/report');
    expect(report.statusCode).toBe(502);
    expect(report.json().error).toBe('unreachable');
    await app.close();
  });

  it('error: a reply that is not what the source sends is not shown as data', async () => {
    const app = await appWith({ evidentlyUrl: `http://127.0.0.1:${NONSENSE_PORT}` });
    expect((await app.inject('/v1/dashboard/drift')).json()).toMatchObject({
      state: 'error',
      message: 'the drift sidecar replied with something other than JSON',
      data: null,
    });
    const limit = await app.inject('/v1/dashboard/pipelines?limit=99');
    expect(limit.statusCode).toBe(400);
    expect(limit.json().message).toContain('limit');
    await app.close();
  });
});

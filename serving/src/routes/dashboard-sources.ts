import { type HttpOptions, httpRequest, isDriftwoodError } from '@driftwood/tasks';
import type { AirflowOptions } from '../airflow/trigger.js';
import type {
  DriftReport,
  DriftState,
  FeatureDrift,
  PipelineRun,
  RetrainDecision,
  SourceStatus,
} from './dashboard-types.js';

/**
 * The dashboard's other sources — Airflow's REST API and the Evidently sidecar — read on request,
 * and their replies mapped to the few fields the pages show. The mappers are pure (unit-tested
 * with recorded replies); the readers only fetch. Nothing is cached and nothing is made up: a
 * source that is not configured or does not answer is reported as such.
 */

/** A reply we could not use; `unreachable` when nothing answered at all. */
export class SourceError extends Error {
  constructor(
    readonly state: 'unreachable' | 'error',
    message: string,
  ) {
    super(message);
  }
}

/** Reads a configured source (undefined: not configured) and folds its failures into an honest state. */
export async function probe<T>(
  setting: string,
  source: { url: string; read: () => Promise<T> } | undefined,
): Promise<SourceStatus<T>> {
  if (!source) return { state: 'not_configured', source: null, message: `set ${setting}`, data: null };
  try {
    return { state: 'ok', source: source.url, message: null, data: await source.read() };
  } catch (err) {
    if (err instanceof SourceError)
      return { state: err.state, source: source.url, message: err.message, data: null };
    throw err;
  }
}

const str = (v: unknown): string | null => (typeof v === 'string' && v !== '' ? v : null);
const num = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null);
const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

/** Airflow 3's `GET /api/v2/dags/{dag_id}/dagRuns` reply → runs, in the reply's order. Pure. */
export function mapDagRuns(reply: unknown): PipelineRun[] {
  if (!isObject(reply) || !Array.isArray(reply.dag_runs))
    throw new SourceError('error', 'Airflow replied without a dag_runs list (is this an Airflow 3 API?)');
  return reply.dag_runs.filter(isObject).map((r, i) => {
    const dagId = str(r.dag_id);
    const runId = str(r.dag_run_id);
    if (!dagId || !runId)
      throw new SourceError('error', `Airflow dag_runs[${i}]: dag_id and dag_run_id expected`);
    return {
      dagId,
      runId,
      state: str(r.state) ?? 'unknown',
      runType: str(r.run_type),
      triggeredBy: str(r.triggered_by),
      queuedAt: str(r.queued_at),
      startedAt: str(r.start_date),
      endedAt: str(r.end_date),
      runAfter: str(r.run_after),
    };
  });
}

function mapFeature(f: unknown, where: string): FeatureDrift {
  if (!isObject(f) || !str(f.column)) throw new SourceError('error', `${where}: a column name expected`);
  return {
    column: String(f.column),
    method: str(f.method) ?? 'unknown',
    threshold: num(f.threshold),
    score: num(f.score),
    drifted: f.drifted === true,
  };
}

/** The sidecar's `GET /reports/latest.json` (the report's summary.json) → the latest report. Pure. */
export function mapDriftSummary(reply: unknown): DriftReport {
  if (!isObject(reply) || !str(reply.report_id))
    throw new SourceError('error', 'the drift sidecar replied without a report_id');
  const model = isObject(reply.model) ? reply.model : {};
  const decision = isObject(reply.decision) ? reply.decision : {};
  const features = Array.isArray(reply.features) ? reply.features : [];
  return {
    reportId: String(reply.report_id),
    dataset: str(reply.dataset),
    windowStart: str(reply.window_start),
    windowEnd: str(reply.window_end),
    rows: num(reply.rows),
    model: { name: str(model.name), version: str(model.version) },
    datasetDrift: reply.dataset_drift === true,
    driftShare: num(reply.drift_share),
    driftedColumns: num(reply.drifted_columns),
    features: features.map((f, i) => mapFeature(f, `features[${i}]`)),
    prediction: isObject(reply.prediction) ? mapFeature(reply.prediction, 'prediction') : null,
    action: str(reply.action),
    reason: str(decision.reason),
  };
}

/** The sidecar's `GET /decisions` (oldest first) → decisions, newest first. Pure. */
export function mapDecisions(reply: unknown): RetrainDecision[] {
  if (!Array.isArray(reply))
    throw new SourceError('error', 'the drift sidecar replied without a decision list');
  return reply
    .filter(isObject)
    .map((d) => {
      const decision = isObject(d.decision) ? d.decision : {};
      const delivery = isObject(d.delivery) ? d.delivery : null;
      const reportId = str(d.report_id);
      const action = str(d.action) ?? 'unknown';
      return {
        decidedAt: str(d.decided_at),
        reportId,
        windowEnd: str(d.window_end),
        rows: num(d.rows),
        datasetDrift: d.dataset_drift === true,
        action,
        reason: str(decision.reason),
        delivered: d.delivered === true,
        delivery: delivery
          ? { ok: delivery.ok === true, status: num(delivery.status), detail: str(delivery.detail) }
          : null,
        // Same rule as monitoring/evidently/webhook.py trigger_airflow.
        airflowRunId:
          action === 'trigger' && reportId ? `drift__${reportId.replace(/[^A-Za-z0-9\-_.]/g, '_')}` : null,
      };
    })
    .reverse();
}

async function fetchFrom(
  what: string,
  req: Parameters<typeof httpRequest>[0],
  http: HttpOptions,
): Promise<{ status: number; body: Buffer }> {
  try {
    return await httpRequest(req, http);
  } catch (err) {
    if (isDriftwoodError(err)) throw new SourceError('unreachable', `${what}: ${err.message}`);
    throw err;
  }
}

function parseJson(what: string, body: Buffer): unknown {
  try {
    return JSON.parse(body.toString('utf8'));
  } catch {
    throw new SourceError('error', `${what} replied with something other than JSON`);
  }
}

function detailOf(body: Buffer): string {
  const text = body.toString('utf8');
  try {
    const j = JSON.parse(text) as { detail?: unknown; message?: unknown };
    return String(j.detail ?? j.message ?? '').slice(0, 200);
  } catch {
    return text.slice(0, 200);
  }
}

/** The last `limit` runs of every DAG (`~` is Airflow's "all DAGs"), newest first. */
export async function readAirflowRuns(opts: AirflowOptions, limit: number): Promise<PipelineRun[]> {
  const base = opts.baseUrl.replace(/\/+$/, '');
  const token = await fetchFrom(
    'Airflow',
    {
      method: 'POST',
      url: `${base}/auth/token`,
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ username: opts.username, password: opts.password }),
    },
    opts.http,
  );
  if (token.status !== 200 && token.status !== 201)
    throw new SourceError(
      'error',
      `Airflow refused the login (HTTP ${token.status}): check DRIFTWOOD_AIRFLOW_USER and DRIFTWOOD_AIRFLOW_PASSWORD`,
    );
  const jwt = (parseJson('Airflow', token.body) as { access_token?: unknown }).access_token;
  if (typeof jwt !== 'string')
    throw new SourceError('error', 'Airflow /auth/token replied without access_token');
  const runs = await fetchFrom(
    'Airflow',
    {
      method: 'GET',
      url: `${base}/api/v2/dags/~/dagRuns?order_by=-run_after&limit=${limit}`,
      headers: { authorization: `Bearer ${jwt}`, accept: 'application/json' },
    },
    opts.http,
  );
  if (runs.status !== 200)
    throw new SourceError('error', `Airflow answered HTTP ${runs.status}: ${detailOf(runs.body)}`);
  return mapDagRuns(parseJson('Airflow', runs.body));
}

export async function readDrift(baseUrl: string, http: HttpOptions, decisions: number): Promise<DriftState> {
  const base = baseUrl.replace(/\/+$/, '');
  const [latest, log] = await Promise.all([
    fetchFrom('the drift sidecar', { method: 'GET', url: `${base}/reports/latest.json` }, http),
    fetchFrom('the drift sidecar', { method: 'GET', url: `${base}/decisions?limit=${decisions}` }, http),
  ]);
  if (latest.status !== 200 && latest.status !== 404)
    throw new SourceError(
      'error',
      `the drift sidecar answered HTTP ${latest.status}: ${detailOf(latest.body)}`,
    );
  if (log.status !== 200)
    throw new SourceError('error', `the drift sidecar answered HTTP ${log.status}: ${detailOf(log.body)}`);
  return {
    report: latest.status === 404 ? null : mapDriftSummary(parseJson('the drift sidecar', latest.body)),
    decisions: mapDecisions(parseJson('the drift sidecar', log.body)),
  };
}

/** The latest report's HTML, or null when the sidecar has none yet. */
export async function readDriftHtml(baseUrl: string, http: HttpOptions): Promise<Buffer | null> {
  const res = await fetchFrom(
    'the drift sidecar',
    { method: 'GET', url: `${baseUrl.replace(/\/+$/, '')}/reports/latest` },
    http,
  );
  if (res.status === 404) return null;
  if (res.status !== 200)
    throw new SourceError('error', `the drift sidecar answered HTTP ${res.status}: ${detailOf(res.body)}`);
  return res.body;
}

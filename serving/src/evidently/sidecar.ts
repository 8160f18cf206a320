import { type HttpOptions, httpRequest, isDriftwoodError } from '@driftwood/tasks';
import { replyDetail } from '../airflow/client.js';
import { isObject, num, SourceError, str } from '../dashboard/source-status.js';
import type { DriftReport, DriftState, FeatureDrift, RetrainDecision } from '../routes/dashboard-types.js';

/**
 * The API's client of the Evidently drift sidecar (`monitoring/evidently/server.py`): the latest
 * report, its HTML and the retrain decisions, mapped to the few fields the dashboard shows. The
 * mappers are pure (unit-tested with recorded replies); the readers only fetch.
 */

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

export async function readDrift(baseUrl: string, http: HttpOptions, decisions: number): Promise<DriftState> {
  const base = baseUrl.replace(/\/+$/, '');
  const [latest, log] = await Promise.all([
    fetchFrom('the drift sidecar', { method: 'GET', url: `${base}/reports/latest.json` }, http),
    fetchFrom('the drift sidecar', { method: 'GET', url: `${base}/decisions?limit=${decisions}` }, http),
  ]);
  if (latest.status !== 200 && latest.status !== 404)
    throw new SourceError(
      'error',
      `the drift sidecar answered HTTP ${latest.status}: ${replyDetail(latest.body)}`,
    );
  if (log.status !== 200)
    throw new SourceError('error', `the drift sidecar answered HTTP ${log.status}: ${replyDetail(log.body)}`);
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
    throw new SourceError('error', `the drift sidecar answered HTTP ${res.status}: ${replyDetail(res.body)}`);
  return res.body;
}

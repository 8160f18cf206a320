import { asSourceError, isObject, SourceError, str } from '../dashboard/source-status.js';
import type { PipelineRun } from '../routes/dashboard-types.js';
import { AirflowClient } from './client.js';
import type { AirflowOptions } from './trigger.js';

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

/** The last `limit` runs of every DAG, newest first, for the dashboard's Pipelines page. */
export async function readAirflowRuns(opts: AirflowOptions, limit: number): Promise<PipelineRun[]> {
  let reply: unknown;
  try {
    reply = await new AirflowClient(opts).listDagRuns(limit);
  } catch (err) {
    throw asSourceError(err);
  }
  return mapDagRuns(reply);
}

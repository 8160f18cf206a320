import { AirflowClient, type AirflowConnection, type TriggeredRun } from './client.js';

export type { TriggeredRun } from './client.js';

/** Airflow's API server, the API's account on it, and the retraining DAG `POST /v1/train` starts. */
export interface AirflowOptions extends AirflowConnection {
  dagId: string;
}

/**
 * Starts a run of the retraining DAG through Airflow 3's REST API (`AirflowClient`: a token from
 * `POST /auth/token`, then `POST /api/v2/dags/{dag_id}/dagRuns`). The run id is ours, so a retried
 * request cannot start a second run.
 */
export function triggerDagRun(
  opts: AirflowOptions,
  runId: string,
  conf: Record<string, unknown>,
): Promise<TriggeredRun> {
  return new AirflowClient(opts).triggerDagRun(opts.dagId, runId, conf);
}

import { DriftwoodError, type HttpOptions, httpRequest } from '@driftwood/tasks';

export interface AirflowOptions {
  /** The Airflow API server, e.g. http://airflow:8080 */
  baseUrl: string;
  username: string;
  password: string;
  dagId: string;
  http: HttpOptions;
}

export interface TriggeredRun {
  dag_id: string;
  dag_run_id: string;
  state: string;
}

/**
 * Starts a run of the retraining DAG through Airflow 3's REST API: a token from `POST /auth/token`,
 * then `POST /api/v2/dags/{dag_id}/dagRuns` with `logical_date: null` (Airflow 3 requires the key)
 * and the caller's `conf`. The run id is ours, so a retried request cannot start a second run.
 */
export async function triggerDagRun(
  opts: AirflowOptions,
  runId: string,
  conf: Record<string, unknown>,
): Promise<TriggeredRun> {
  const base = opts.baseUrl.replace(/\/+$/, '');
  const unreachableHint = 'check DRIFTWOOD_AIRFLOW_URL and that the Airflow API server runs';
  const tokenRes = await httpRequest(
    {
      method: 'POST',
      url: `${base}/auth/token`,
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ username: opts.username, password: opts.password }),
      unreachableHint,
    },
    opts.http,
  );
  if (tokenRes.status !== 200 && tokenRes.status !== 201)
    throw new DriftwoodError(
      'HTTP_ERROR',
      `Airflow refused the login (HTTP ${tokenRes.status}): check DRIFTWOOD_AIRFLOW_USER and DRIFTWOOD_AIRFLOW_PASSWORD`,
      { status: tokenRes.status },
    );
  const token = (JSON.parse(tokenRes.body.toString('utf8')) as { access_token: string }).access_token;
  const runRes = await httpRequest(
    {
      method: 'POST',
      url: `${base}/api/v2/dags/${encodeURIComponent(opts.dagId)}/dagRuns`,
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
      body: JSON.stringify({ dag_run_id: runId, logical_date: null, conf }),
      idempotent: false,
      unreachableHint,
    },
    opts.http,
  );
  if (runRes.status !== 200) {
    let detail = '';
    try {
      detail = String((JSON.parse(runRes.body.toString('utf8')) as { detail?: unknown }).detail ?? '');
    } catch {
      // Not JSON: the status alone says enough.
    }
    throw new DriftwoodError(
      'HTTP_ERROR',
      `Airflow refused to start DAG ${opts.dagId} (HTTP ${runRes.status})${detail ? `: ${detail.slice(0, 200)}` : ''}`,
      { status: runRes.status },
    );
  }
  const run = JSON.parse(runRes.body.toString('utf8')) as {
    dag_id: string;
    dag_run_id: string;
    state: string;
  };
  return { dag_id: run.dag_id, dag_run_id: run.dag_run_id, state: run.state };
}

import { DriftwoodError } from '../errors.js';
import { type HttpOptions, httpRequest } from '../http.js';

/** Airflow's API server and an account on it (the API's, or the lake lander's). */
export interface AirflowConnection {
  /** The Airflow API server, e.g. http://airflow:8080 */
  baseUrl: string;
  username: string;
  password: string;
  http: HttpOptions;
}

/** An asset event Airflow recorded (`POST /api/v2/assets/events`). */
export interface PostedAssetEvent {
  id: number;
  assetId: number;
  uri: string;
  timestamp: string;
}

export interface TriggeredRun {
  dag_id: string;
  dag_run_id: string;
  state: string;
}

const UNREACHABLE_HINT = 'check DRIFTWOOD_AIRFLOW_URL and that the Airflow API server runs';

/** The `detail` (or `message`) of an error reply, cut short; the raw text when it is not JSON. */
export function replyDetail(body: Buffer): string {
  const text = body.toString('utf8');
  try {
    const j = JSON.parse(text) as { detail?: unknown; message?: unknown };
    return String(j.detail ?? j.message ?? '').slice(0, 200);
  } catch {
    return text.slice(0, 200);
  }
}

function parse<T>(body: Buffer, what: string): T {
  try {
    return JSON.parse(body.toString('utf8')) as T;
  } catch {
    throw new DriftwoodError('HTTP_ERROR', `Airflow ${what} replied with something other than JSON`, {
      status: 200,
    });
  }
}

/**
 * The API's one client of Airflow 3's REST API (the train trigger and the dashboard's pipelines
 * both use it): it logs in with `POST /auth/token`, keeps the token, and logs in again once when a
 * call answers 401 (the token expired). Transport goes through the project's retrying `httpRequest`.
 * Errors are `DriftwoodError('HTTP_ERROR')`: with `details.status` when Airflow answered, without
 * it when nothing answered (`cannot reach …`).
 */
export class AirflowClient {
  private token: string | undefined;
  readonly baseUrl: string;

  constructor(private readonly conn: AirflowConnection) {
    this.baseUrl = conn.baseUrl.replace(/\/+$/, '');
  }

  private async login(): Promise<string> {
    const res = await httpRequest(
      {
        method: 'POST',
        url: `${this.baseUrl}/auth/token`,
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ username: this.conn.username, password: this.conn.password }),
        unreachableHint: UNREACHABLE_HINT,
      },
      this.conn.http,
    );
    if (res.status !== 200 && res.status !== 201)
      throw new DriftwoodError(
        'HTTP_ERROR',
        `Airflow refused the login (HTTP ${res.status}): check DRIFTWOOD_AIRFLOW_USER and DRIFTWOOD_AIRFLOW_PASSWORD`,
        { status: res.status },
      );
    const token = parse<{ access_token?: unknown }>(res.body, '/auth/token').access_token;
    if (typeof token !== 'string')
      throw new DriftwoodError('HTTP_ERROR', 'Airflow /auth/token replied without access_token', {
        status: res.status,
      });
    this.token = token;
    return token;
  }

  /** One authenticated call; a 401 renews the token and retries once. */
  async call(
    method: 'GET' | 'POST' | 'PATCH',
    path: string,
    body?: unknown,
    opts: { idempotent?: boolean } = {},
  ): Promise<{ status: number; body: Buffer }> {
    for (let attempt = 0; ; attempt++) {
      const token = this.token ?? (await this.login());
      const res = await httpRequest(
        {
          method,
          url: `${this.baseUrl}${path}`,
          headers: {
            accept: 'application/json',
            authorization: `Bearer ${token}`,
            ...(body === undefined ? {} : { 'content-type': 'application/json' }),
          },
          ...(body === undefined ? {} : { body: JSON.stringify(body) }),
          ...(opts.idempotent === undefined ? {} : { idempotent: opts.idempotent }),
          unreachableHint: UNREACHABLE_HINT,
        },
        this.conn.http,
      );
      if (res.status !== 401 || attempt > 0) return res;
      this.token = undefined;
    }
  }

  /**
   * Starts a run of `dagId` with `logical_date: null` (Airflow 3 requires the key) and `conf`. The
   * run id is the caller's, so a retried request cannot start a second run.
   */
  async triggerDagRun(dagId: string, runId: string, conf: Record<string, unknown>): Promise<TriggeredRun> {
    const res = await this.call(
      'POST',
      `/api/v2/dags/${encodeURIComponent(dagId)}/dagRuns`,
      { dag_run_id: runId, logical_date: null, conf },
      { idempotent: false },
    );
    if (res.status !== 200) {
      const detail = replyDetail(res.body);
      throw new DriftwoodError(
        'HTTP_ERROR',
        `Airflow refused to start DAG ${dagId} (HTTP ${res.status})${detail ? `: ${detail}` : ''}`,
        { status: res.status },
      );
    }
    const run = parse<TriggeredRun>(res.body, 'dagRuns');
    return { dag_id: run.dag_id, dag_run_id: run.dag_run_id, state: run.state };
  }

  /** The id of the asset with exactly this URI; undefined when no DAG file declares it. */
  async assetId(uri: string): Promise<number | undefined> {
    const res = await this.call('GET', `/api/v2/assets?uri_pattern=${encodeURIComponent(uri)}&limit=100`);
    if (res.status !== 200)
      throw new DriftwoodError(
        'HTTP_ERROR',
        `Airflow refused to list assets (HTTP ${res.status}): ${replyDetail(res.body)}`,
        { status: res.status },
      );
    // uri_pattern matches substrings: driftwood://churn/raw would also find driftwood://churn/raw2.
    const assets = parse<{ assets?: { id: number; uri: string }[] }>(res.body, 'assets').assets ?? [];
    return assets.find((a) => a.uri === uri)?.id;
  }

  /**
   * Records an event of the asset `uri` with `extra`; the DAGs scheduled on that asset start. Sent
   * once, never repeated: each event may start a run.
   */
  async postAssetEvent(uri: string, extra: Record<string, unknown>): Promise<PostedAssetEvent> {
    const assetId = await this.assetId(uri);
    if (assetId === undefined)
      throw new DriftwoodError(
        'HTTP_ERROR',
        `Airflow knows no asset ${uri}: no DAG is scheduled on it (is the dataset's contract in the contracts folder Airflow reads?)`,
        { status: 404 },
      );
    const res = await this.call(
      'POST',
      '/api/v2/assets/events',
      { asset_id: assetId, extra },
      { idempotent: false },
    );
    if (res.status !== 200)
      throw new DriftwoodError(
        'HTTP_ERROR',
        `Airflow refused the event of ${uri} (HTTP ${res.status}): ${replyDetail(res.body)}`,
        { status: res.status },
      );
    const event = parse<{ id: number; timestamp: string }>(res.body, 'assets/events');
    return { id: event.id, assetId, uri, timestamp: event.timestamp };
  }

  /** The last `limit` runs of every DAG (`~` is Airflow's "all DAGs"), newest first, as Airflow replies. */
  async listDagRuns(limit: number): Promise<unknown> {
    const res = await this.call('GET', `/api/v2/dags/~/dagRuns?order_by=-run_after&limit=${limit}`);
    if (res.status !== 200)
      throw new DriftwoodError(
        'HTTP_ERROR',
        `Airflow answered HTTP ${res.status}: ${replyDetail(res.body)}`,
        {
          status: res.status,
        },
      );
    return parse<unknown>(res.body, 'dagRuns');
  }
}

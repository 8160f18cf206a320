import { setTimeout as sleep } from 'node:timers/promises';
import { DriftwoodError, isDriftwoodError } from '../errors.js';
import { type HttpOptions, type HttpResponse, httpRequest } from '../http.js';
import type * as T from './types.js';

export type { T as MlflowTypes };

/** MLflow's log-batch limits (mlflow/utils/validation.py): items per request of each kind. */
export const LOG_BATCH_LIMITS = { metrics: 1000, params: 100, tags: 100, total: 1000 } as const;

/**
 * A typed client for MLflow's REST API (tracking, logged models, artifact proxy, registry).
 * Every call goes through the shared HTTP client; MLflow's `{error_code, message}` replies
 * become DriftwoodErrors carrying that code.
 */
/** The experiment kind MLflow 3's UI reads to open an experiment's runs (not its GenAI traces). */
const EXPERIMENT_KIND = { key: 'mlflow.experimentKind', value: 'custom_model_development' };

export class MlflowClient {
  readonly baseUrl: string;
  private readonly http: HttpOptions;

  constructor(trackingUri: string, http: HttpOptions) {
    this.baseUrl = trackingUri.replace(/\/+$/, '');
    this.http = http;
  }

  // ---- plumbing ----------------------------------------------------------------------------

  private async call<R>(
    method: 'GET' | 'POST' | 'PATCH' | 'DELETE',
    path: string,
    body?: Record<string, unknown>,
    query?: Record<string, string | number | undefined>,
  ): Promise<R> {
    const url = new URL(`${this.baseUrl}/api/2.0/mlflow/${path}`);
    for (const [k, v] of Object.entries(query ?? {})) if (v !== undefined) url.searchParams.set(k, String(v));
    const res = await httpRequest(
      {
        method,
        url: url.toString(),
        headers: body ? { 'content-type': 'application/json' } : {},
        ...(body ? { body: JSON.stringify(body) } : {}),
        // Creating runs/versions is not idempotent; everything else here is safe to repeat.
        idempotent: method === 'GET' || method === 'DELETE' || !/create$|^runs\/log-batch$/.test(path),
        unreachableCode: 'MLFLOW_UNAVAILABLE',
        unreachableHint: 'is the MLflow server running? Set MLFLOW_TRACKING_URI to its URL',
      },
      this.http,
    );
    return parseReply<R>(res, `${method} ${path}`);
  }

  private artifactUrl(artifactUri: string, relPath = ''): string {
    // mlflow-artifacts:/<exp>/<run>/artifacts → <server>/api/2.0/mlflow-artifacts/artifacts/<exp>/<run>/artifacts
    const prefix = 'mlflow-artifacts:';
    if (!artifactUri.startsWith(prefix)) {
      throw new DriftwoodError(
        'MLFLOW_ERROR',
        `artifact URI ${artifactUri} is not served by the MLflow artifact proxy; start the server with --serve-artifacts (the default) and no --default-artifact-root`,
      );
    }
    const rest = artifactUri.slice(prefix.length).replace(/^\/+/, '');
    const joined = [rest, relPath].filter((p) => p !== '').join('/');
    return `${this.baseUrl}/api/2.0/mlflow-artifacts/artifacts/${joined.split('/').map(encodeURIComponent).join('/')}`;
  }

  // ---- experiments and runs ----------------------------------------------------------------

  async getExperimentByName(name: string): Promise<T.Experiment | undefined> {
    try {
      const r = await this.call<{ experiment: T.Experiment }>('GET', 'experiments/get-by-name', undefined, {
        experiment_name: name,
      });
      return r.experiment;
    } catch (err) {
      if (err instanceof DriftwoodError && err.details.mlflowCode === 'RESOURCE_DOES_NOT_EXIST')
        return undefined;
      throw err;
    }
  }

  /**
   * Returns the experiment's id, creating it if needed (safe under concurrent callers). Its kind is
   * declared model training (`mlflow.experimentKind`; an experiment made before without the tag gets
   * it). MLflow 3.17's UI still picks its GenAI or runs view from the link (`workflowType`) or the
   * browser's last choice, so the links Driftwood prints ask for the runs view themselves.
   */
  async ensureExperiment(name: string): Promise<string> {
    const found = await this.getExperimentByName(name);
    if (found) {
      if (!found.tags?.some((t) => t.key === EXPERIMENT_KIND.key))
        await this.call('POST', 'experiments/set-experiment-tag', {
          experiment_id: found.experiment_id,
          ...EXPERIMENT_KIND,
        });
      return found.experiment_id;
    }
    try {
      const r = await this.call<{ experiment_id: string }>('POST', 'experiments/create', {
        name,
        tags: [EXPERIMENT_KIND],
      });
      return r.experiment_id;
    } catch (err) {
      if (err instanceof DriftwoodError && err.details.mlflowCode === 'RESOURCE_ALREADY_EXISTS') {
        const again = await this.getExperimentByName(name);
        if (again) return again.experiment_id;
      }
      throw err;
    }
  }

  async createRun(input: {
    experimentId: string;
    runName: string;
    tags: Record<string, string>;
    startTime?: number;
  }) {
    const r = await this.call<{ run: T.Run }>('POST', 'runs/create', {
      experiment_id: input.experimentId,
      run_name: input.runName,
      start_time: input.startTime ?? Date.now(),
      tags: toKeyValues(input.tags),
    });
    return r.run;
  }

  async getRun(runId: string): Promise<T.Run> {
    const r = await this.call<{ run: T.Run }>('GET', 'runs/get', undefined, { run_id: runId });
    return r.run;
  }

  async finishRun(
    runId: string,
    status: 'FINISHED' | 'FAILED' | 'KILLED',
    endTime = Date.now(),
  ): Promise<void> {
    await this.call('POST', 'runs/update', { run_id: runId, status, end_time: endTime });
  }

  /**
   * Logs params, metrics and tags in as many log-batch requests as MLflow's limits need.
   * Metrics append, so a blind retry would duplicate points: after a failed request this asks the
   * server which of the chunk's points it already stored and resends only the others (params and
   * tags are safe to resend: same value, no change).
   */
  async logBatch(
    runId: string,
    batch: {
      params?: Record<string, string | number | boolean>;
      metrics?: T.Metric[];
      tags?: Record<string, string>;
    },
  ) {
    const params = toKeyValues(
      Object.fromEntries(Object.entries(batch.params ?? {}).map(([k, v]) => [k, String(v)])),
    );
    const tags = toKeyValues(batch.tags ?? {});
    const metrics = [...(batch.metrics ?? [])];
    for (const chunk of chunkBatch(params, metrics, tags)) {
      let pending = chunk;
      for (let attempt = 0; ; attempt++) {
        try {
          await this.call('POST', 'runs/log-batch', { run_id: runId, ...pending });
          break;
        } catch (err) {
          if (!isDriftwoodError(err, 'MLFLOW_UNAVAILABLE') || attempt >= this.http.retries) throw err;
          await sleep(this.http.backoffMs * 2 ** attempt);
          const stored = await this.storedPoints(runId, pending.metrics);
          pending = { ...pending, metrics: missingPoints(pending.metrics, stored) };
        }
      }
    }
  }

  /** Every stored point of the metric keys that `points` use, as `key|step|timestamp|value` strings. */
  private async storedPoints(runId: string, points: T.Metric[]): Promise<Set<string>> {
    const stored = new Set<string>();
    for (const key of new Set(points.map((p) => p.key))) {
      for (const m of await this.getMetricHistory(runId, key)) stored.add(pointKey(m));
    }
    return stored;
  }

  /** The full history of one metric of a run (all steps), following pagination. */
  async getMetricHistory(runId: string, key: string): Promise<T.Metric[]> {
    const out: T.Metric[] = [];
    let pageToken: string | undefined;
    do {
      const r = await this.call<{ metrics?: T.Metric[]; next_page_token?: string }>(
        'GET',
        'metrics/get-history',
        undefined,
        { run_id: runId, metric_key: key, max_results: 25_000, page_token: pageToken },
      );
      out.push(
        ...(r.metrics ?? []).map((m) => ({
          ...m,
          step: Number(m.step ?? 0),
          timestamp: Number(m.timestamp),
        })),
      );
      pageToken = r.next_page_token || undefined;
    } while (pageToken);
    return out;
  }

  /** Runs of the given experiments that match an MLflow filter (e.g. ``tags.`k` = 'v'``), newest first. */
  async searchRuns(experimentIds: string[], filter: string, maxResults = 100): Promise<T.Run[]> {
    const r = await this.call<{ runs?: T.Run[] }>('POST', 'runs/search', {
      experiment_ids: experimentIds,
      filter,
      max_results: maxResults,
      order_by: ['attributes.start_time DESC'],
    });
    return r.runs ?? [];
  }

  async setTag(runId: string, key: string, value: string): Promise<void> {
    await this.call('POST', 'runs/set-tag', { run_id: runId, key, value });
  }

  async logInputs(runId: string, datasets: T.DatasetInput[]): Promise<void> {
    await this.call('POST', 'runs/log-inputs', { run_id: runId, datasets });
  }

  // ---- artifacts (through the server's artifact proxy) ------------------------------------

  async uploadArtifact(artifactUri: string, relPath: string, content: Buffer | string): Promise<void> {
    const res = await httpRequest(
      {
        method: 'PUT',
        url: this.artifactUrl(artifactUri, relPath),
        body: content,
        unreachableCode: 'MLFLOW_UNAVAILABLE',
      },
      this.http,
    );
    await parseReply(res, `upload ${relPath}`);
  }

  async downloadArtifact(artifactUri: string, relPath: string): Promise<Buffer> {
    const res = await httpRequest(
      { method: 'GET', url: this.artifactUrl(artifactUri, relPath), unreachableCode: 'MLFLOW_UNAVAILABLE' },
      this.http,
    );
    if (res.status !== 200) await parseReply(res, `download ${relPath}`);
    return res.body;
  }

  async listArtifacts(artifactUri: string, relPath = ''): Promise<T.ArtifactFile[]> {
    const rest = artifactUri.replace(/^mlflow-artifacts:\/*/, '');
    const url = new URL(`${this.baseUrl}/api/2.0/mlflow-artifacts/artifacts`);
    url.searchParams.set('path', [rest, relPath].filter((p) => p !== '').join('/'));
    const res = await httpRequest(
      { method: 'GET', url: url.toString(), unreachableCode: 'MLFLOW_UNAVAILABLE' },
      this.http,
    );
    const r = await parseReply<{ files?: T.ArtifactFile[] }>(res, 'list artifacts');
    return r.files ?? [];
  }

  // ---- logged models (MLflow 3) -------------------------------------------------------------

  async createLoggedModel(input: {
    experimentId: string;
    name: string;
    sourceRunId: string;
    modelType: string;
    tags?: Record<string, string>;
    params?: Record<string, string>;
  }) {
    const r = await this.call<{ model: T.LoggedModel }>('POST', 'logged-models', {
      experiment_id: input.experimentId,
      name: input.name,
      model_type: input.modelType,
      source_run_id: input.sourceRunId,
      tags: toKeyValues(input.tags ?? {}),
      params: toKeyValues(input.params ?? {}),
    });
    return r.model;
  }

  async finalizeLoggedModel(modelId: string, status: 'LOGGED_MODEL_READY' | 'LOGGED_MODEL_UPLOAD_FAILED') {
    const r = await this.call<{ model: T.LoggedModel }>(
      'PATCH',
      `logged-models/${encodeURIComponent(modelId)}`,
      {
        model_id: modelId,
        status,
      },
    );
    return r.model;
  }

  async getLoggedModel(modelId: string): Promise<T.LoggedModel> {
    const r = await this.call<{ model: T.LoggedModel }>(
      'GET',
      `logged-models/${encodeURIComponent(modelId)}`,
    );
    return r.model;
  }

  async logModelOutput(runId: string, modelId: string, step = 0): Promise<void> {
    await this.call('POST', 'runs/outputs', { run_id: runId, models: [{ model_id: modelId, step }] });
  }

  // ---- registry ------------------------------------------------------------------------------

  async ensureRegisteredModel(name: string, description?: string): Promise<void> {
    try {
      await this.call('POST', 'registered-models/create', { name, ...(description ? { description } : {}) });
    } catch (err) {
      if (!(err instanceof DriftwoodError && err.details.mlflowCode === 'RESOURCE_ALREADY_EXISTS')) throw err;
    }
  }

  /** Creates a registered model; a name that exists fails with RESOURCE_ALREADY_EXISTS (atomic in MLflow's store). */
  async createRegisteredModel(name: string, description?: string): Promise<void> {
    await this.call('POST', 'registered-models/create', { name, ...(description ? { description } : {}) });
  }

  async deleteRegisteredModel(name: string): Promise<void> {
    await this.call('DELETE', 'registered-models/delete', { name });
  }

  async createModelVersion(input: {
    name: string;
    source: string;
    runId?: string;
    modelId?: string;
    tags?: Record<string, string>;
    description?: string;
  }) {
    const r = await this.call<{ model_version: T.ModelVersion }>('POST', 'model-versions/create', {
      name: input.name,
      source: input.source,
      ...(input.runId ? { run_id: input.runId } : {}),
      ...(input.modelId ? { model_id: input.modelId } : {}),
      ...(input.description ? { description: input.description } : {}),
      tags: toKeyValues(input.tags ?? {}),
    });
    return r.model_version;
  }

  async getModelVersion(name: string, version: string): Promise<T.ModelVersion> {
    const r = await this.call<{ model_version: T.ModelVersion }>('GET', 'model-versions/get', undefined, {
      name,
      version,
    });
    return r.model_version;
  }

  /** Polls until the version is READY; a FAILED_REGISTRATION or a timeout is an error. */
  async waitForVersionReady(name: string, version: string, timeoutMs = 60_000): Promise<T.ModelVersion> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const mv = await this.getModelVersion(name, version);
      if (mv.status === 'READY') return mv;
      if (mv.status === 'FAILED_REGISTRATION') {
        throw new DriftwoodError(
          'MLFLOW_ERROR',
          `model ${name} version ${version} failed registration: ${mv.status_message ?? ''}`,
        );
      }
      if (Date.now() > deadline)
        throw new DriftwoodError(
          'MLFLOW_ERROR',
          `model ${name} version ${version} not READY after ${timeoutMs} ms`,
        );
      await new Promise((r) => setTimeout(r, 250));
    }
  }

  async setModelVersionTag(name: string, version: string, key: string, value: string): Promise<void> {
    await this.call('POST', 'model-versions/set-tag', { name, version, key, value });
  }

  async getRegisteredModel(name: string): Promise<T.RegisteredModel> {
    const r = await this.call<{ registered_model: T.RegisteredModel }>(
      'GET',
      'registered-models/get',
      undefined,
      {
        name,
      },
    );
    return r.registered_model;
  }

  async setRegisteredModelTag(name: string, key: string, value: string): Promise<void> {
    await this.call('POST', 'registered-models/set-tag', { name, key, value });
  }

  async deleteModelVersionTag(name: string, version: string, key: string): Promise<void> {
    await this.call('DELETE', 'model-versions/delete-tag', { name, version, key });
  }

  async setAlias(name: string, alias: string, version: string): Promise<void> {
    await this.call('POST', 'registered-models/alias', { name, alias, version });
  }

  async deleteAlias(name: string, alias: string): Promise<void> {
    await this.call('DELETE', 'registered-models/alias', { name, alias });
  }

  /** The version behind an alias, or undefined when the alias (or the model) does not exist. */
  async getVersionByAlias(name: string, alias: string): Promise<T.ModelVersion | undefined> {
    try {
      const r = await this.call<{ model_version: T.ModelVersion }>(
        'GET',
        'registered-models/alias',
        undefined,
        { name, alias },
      );
      return r.model_version;
    } catch (err) {
      if (
        err instanceof DriftwoodError &&
        ['RESOURCE_DOES_NOT_EXIST', 'INVALID_PARAMETER_VALUE'].includes(String(err.details.mlflowCode))
      ) {
        return undefined;
      }
      throw err;
    }
  }

  async searchModelVersions(name: string, maxResults = 100): Promise<T.ModelVersion[]> {
    const out: T.ModelVersion[] = [];
    let pageToken: string | undefined;
    do {
      const r = await this.call<{ model_versions?: T.ModelVersion[]; next_page_token?: string }>(
        'GET',
        'model-versions/search',
        undefined,
        {
          filter: `name='${name.replace(/'/g, "\\'")}'`,
          max_results: maxResults,
          page_token: pageToken,
        },
      );
      out.push(...(r.model_versions ?? []));
      pageToken = r.next_page_token;
    } while (pageToken);
    return out;
  }

  /** Where a model version's files live: the logged model's artifact URI, or the version's own source. */
  async resolveVersionArtifacts(mv: T.ModelVersion): Promise<string> {
    if (mv.model_id) return (await this.getLoggedModel(mv.model_id)).info.artifact_uri;
    const source = mv.storage_location ?? mv.source;
    if (source.startsWith('models:/m-'))
      return (await this.getLoggedModel(source.slice('models:/'.length))).info.artifact_uri;
    return source;
  }
}

async function parseReply<R>(res: HttpResponse, what: string): Promise<R> {
  const text = res.body.toString('utf8');
  if (res.status >= 200 && res.status < 300) return (text === '' ? {} : JSON.parse(text)) as R;
  let mlflowCode = `HTTP_${res.status}`;
  let message = text.slice(0, 300);
  try {
    const parsed = JSON.parse(text) as { error_code?: string; message?: string };
    if (parsed.error_code) mlflowCode = parsed.error_code;
    if (parsed.message) message = parsed.message;
  } catch {
    // Not JSON (a proxy's HTML page, say): keep the start of the text.
  }
  const code = res.status >= 500 || res.status === 429 ? 'MLFLOW_UNAVAILABLE' : 'MLFLOW_ERROR';
  throw new DriftwoodError(code, `MLflow ${what} failed: ${mlflowCode}: ${message}`, {
    mlflowCode,
    status: res.status,
  });
}

/** A metric point's identity: the same key, step, timestamp and value is the same point. */
export function pointKey(m: T.Metric): string {
  return `${m.key}|${m.step}|${m.timestamp}|${m.value}`;
}

/** The points not yet stored (pure: what a retried log-batch still has to send). */
export function missingPoints(points: T.Metric[], stored: ReadonlySet<string>): T.Metric[] {
  return points.filter((p) => !stored.has(pointKey(p)));
}

export function toKeyValues(record: Record<string, string>): T.KeyValue[] {
  return Object.entries(record).map(([key, value]) => ({ key, value }));
}

/** Splits params/metrics/tags into log-batch payloads that respect every per-request limit. */
export function chunkBatch(params: T.KeyValue[], metrics: T.Metric[], tags: T.KeyValue[]) {
  const chunks: { params: T.KeyValue[]; metrics: T.Metric[]; tags: T.KeyValue[] }[] = [];
  let p = 0;
  let m = 0;
  let t = 0;
  while (p < params.length || m < metrics.length || t < tags.length) {
    const cp = params.slice(p, p + LOG_BATCH_LIMITS.params);
    const ct = tags.slice(t, t + LOG_BATCH_LIMITS.tags);
    const room = LOG_BATCH_LIMITS.total - cp.length - ct.length;
    const cm = metrics.slice(m, m + Math.min(room, LOG_BATCH_LIMITS.metrics));
    p += cp.length;
    t += ct.length;
    m += cm.length;
    chunks.push({ params: cp, metrics: cm, tags: ct });
  }
  return chunks;
}

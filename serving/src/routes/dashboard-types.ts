/**
 * The shapes the dashboard's data routes answer with, shared by the API (which builds them) and the
 * dashboard (which draws them, importing these as types only). No imports: the dashboard's bundle
 * and type check take this file as it is.
 */

export type SourceState = 'ok' | 'not_configured' | 'unreachable' | 'error';

export interface SourceStatus<T> {
  state: SourceState;
  /** Where the figures come from (the configured base URL), null when not configured. */
  source: string | null;
  message: string | null;
  data: T | null;
}

export interface PipelineRun {
  dagId: string;
  runId: string;
  state: string;
  runType: string | null;
  triggeredBy: string | null;
  queuedAt: string | null;
  startedAt: string | null;
  endedAt: string | null;
  /** When the run was due (Airflow 3 sorts and schedules by it; logical_date may be null). */
  runAfter: string | null;
}

export interface FeatureDrift {
  column: string;
  method: string;
  threshold: number | null;
  score: number | null;
  drifted: boolean;
}

export interface DriftReport {
  reportId: string;
  dataset: string | null;
  windowStart: string | null;
  windowEnd: string | null;
  rows: number | null;
  model: { name: string | null; version: string | null };
  datasetDrift: boolean;
  driftShare: number | null;
  driftedColumns: number | null;
  features: FeatureDrift[];
  prediction: FeatureDrift | null;
  action: string | null;
  reason: string | null;
}

export interface RetrainDecision {
  decidedAt: string | null;
  reportId: string | null;
  windowEnd: string | null;
  rows: number | null;
  datasetDrift: boolean;
  /** trigger, no_drift, insufficient_rows or cooldown (monitoring/evidently/decision.py). */
  action: string;
  reason: string | null;
  delivered: boolean;
  delivery: { ok: boolean; status: number | null; detail: string | null } | null;
  /** The Airflow run a trigger asks for (the sidecar derives it from the report id). */
  airflowRunId: string | null;
}

export interface DriftState {
  /** null: the sidecar answers but has not written a report yet. */
  report: DriftReport | null;
  decisions: RetrainDecision[];
}

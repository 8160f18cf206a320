import { DriftwoodError } from '../errors.js';
import type { MlflowClient } from '../mlflow/client.js';
import type { Metric, Run } from '../mlflow/types.js';
import type { ExperimentAnalysis } from './analyse.js';
import type { ExperimentRecord, ExperimentStatus } from './declaration.js';

/**
 * Each A/B experiment is one MLflow run in the `driftwood-ab` MLflow experiment, tagged with its
 * name: the declaration (with the versions its variants resolved to) is a tag, so every API process
 * finds the running experiments there, and each analysis adds a step of metrics and the decision.
 */
export const AB_MLFLOW_EXPERIMENT = 'driftwood-ab';
export const TAG = {
  experiment: 'driftwood.ab.experiment',
  dataset: 'driftwood.ab.dataset',
  status: 'driftwood.ab.status',
  declaration: 'driftwood.ab.declaration',
  decision: 'driftwood.ab.decision',
  winner: 'driftwood.ab.winner',
  analysis: 'driftwood.ab.analysis',
  /** What became of a `promote` decision: `recorded`, `pending`, `promoted` or `refused` (action.ts). */
  action: 'driftwood.ab.action',
  actionDetail: 'driftwood.ab.action_detail',
} as const;

export interface StoredExperiment extends ExperimentRecord {
  /** The latest analysis (absent before the first one). */
  analysis?: ExperimentAnalysis;
  /** What became of a `promote` decision (absent before one). */
  action?: string;
  /** That outcome in a sentence: the version, and what the promotion gate said. */
  action_detail?: string;
}

const tagsOf = (run: Run) => Object.fromEntries((run.data.tags ?? []).map((t) => [t.key, t.value]));

function fromRun(run: Run): StoredExperiment | undefined {
  const tags = tagsOf(run);
  const text = tags[TAG.declaration];
  if (!text) return undefined;
  const record = JSON.parse(text) as ExperimentRecord;
  const analysisText = tags[TAG.analysis];
  const analysis = analysisText ? (JSON.parse(analysisText) as ExperimentAnalysis) : undefined;
  return {
    ...record,
    // Declared before `on_decision` existed: a decision is recorded, nothing more.
    declaration: { ...record.declaration, on_decision: record.declaration.on_decision ?? 'record' },
    run_id: run.info.run_id,
    status: (tags[TAG.status] as ExperimentStatus | undefined) ?? record.status,
    ...(analysis ? { analysis } : {}),
    ...(tags[TAG.action] ? { action: tags[TAG.action] } : {}),
    ...(tags[TAG.actionDetail] ? { action_detail: tags[TAG.actionDetail] } : {}),
  };
}

const quote = (v: string) => `'${v.replace(/'/g, "\\'")}'`;

async function abExperimentId(
  mlflow: MlflowClient,
  name: string,
  create: boolean,
): Promise<string | undefined> {
  if (create) return mlflow.ensureExperiment(name);
  return (await mlflow.getExperimentByName(name))?.experiment_id;
}

export async function findExperiment(
  mlflow: MlflowClient,
  name: string,
  mlflowExperiment = AB_MLFLOW_EXPERIMENT,
): Promise<{ stored: StoredExperiment; run: Run } | undefined> {
  const id = await abExperimentId(mlflow, mlflowExperiment, false);
  if (!id) return undefined;
  const [run] = await mlflow.searchRuns([id], `tags.\`${TAG.experiment}\` = ${quote(name)}`, 1);
  const stored = run && fromRun(run);
  return stored && run ? { stored, run } : undefined;
}

/**
 * Experiments, newest first: the running ones (`status`), or the latest of any status; `dataset`
 * keeps one dataset's, `action` those whose promote decision is in that state.
 */
export async function listExperiments(
  mlflow: MlflowClient,
  opts: {
    status?: ExperimentStatus;
    dataset?: string;
    action?: string;
    max?: number;
    mlflowExperiment?: string;
  } = {},
): Promise<StoredExperiment[]> {
  const id = await abExperimentId(mlflow, opts.mlflowExperiment ?? AB_MLFLOW_EXPERIMENT, false);
  if (!id) return [];
  const clauses = [
    ...(opts.status ? [`tags.\`${TAG.status}\` = ${quote(opts.status)}`] : []),
    ...(opts.dataset ? [`tags.\`${TAG.dataset}\` = ${quote(opts.dataset)}`] : []),
    ...(opts.action ? [`tags.\`${TAG.action}\` = ${quote(opts.action)}`] : []),
  ];
  const filter = clauses.length ? clauses.join(' and ') : `tags.\`${TAG.experiment}\` != ''`;
  const runs = await mlflow.searchRuns([id], filter, opts.max ?? 50);
  return runs.flatMap((r) => fromRun(r) ?? []);
}

/** Records a started experiment; its name must be new (a name is never reused: logs keep it). */
export async function startExperimentRun(
  mlflow: MlflowClient,
  record: Omit<ExperimentRecord, 'run_id' | 'status'>,
  mlflowExperiment = AB_MLFLOW_EXPERIMENT,
): Promise<ExperimentRecord> {
  const d = record.declaration;
  if (await findExperiment(mlflow, d.name, mlflowExperiment))
    throw new DriftwoodError('USAGE', `experiment name: '${d.name}' is taken; choose another name`);
  const experimentId = await abExperimentId(mlflow, mlflowExperiment, true);
  const started = Date.parse(record.started_at);
  const run = await mlflow.createRun({
    experimentId: experimentId as string,
    runName: d.name,
    startTime: started,
    tags: {
      [TAG.experiment]: d.name,
      [TAG.dataset]: d.dataset,
      [TAG.status]: 'running',
      'mlflow.note.content': `A/B experiment ${d.name} on ${d.dataset}: ${record.variants
        .map((v) => `${v.name} = ${record.model_name} v${v.version} (${Math.round(v.allocation * 100)}%)`)
        .join(', ')}; primary metric ${d.primary_metric}, α = ${d.alpha}.`,
    },
  });
  const full: ExperimentRecord = { ...record, run_id: run.info.run_id, status: 'running' };
  await mlflow.logBatch(run.info.run_id, {
    params: {
      primary_metric: d.primary_metric,
      alpha: d.alpha,
      minimum_sample: d.minimum_sample,
      mixture_sd: d.mixture_sd,
      control: d.control,
      unit: d.unit,
      ...(d.stop_rule.max_samples_per_variant
        ? { stop_max_samples_per_variant: d.stop_rule.max_samples_per_variant }
        : {}),
      ...(d.stop_rule.max_days ? { stop_max_days: d.stop_rule.max_days } : {}),
      ...Object.fromEntries(
        record.variants.map((v) => [`variant.${v.name}`, `v${v.version} (${v.model}) ${v.allocation}`]),
      ),
    },
    tags: { [TAG.declaration]: JSON.stringify(full) },
  });
  return full;
}

/** Ends an experiment by hand: the API stops assigning its customers on its next read. */
export async function stopExperimentRun(mlflow: MlflowClient, runId: string): Promise<void> {
  await mlflow.setTag(runId, TAG.status, 'stopped');
  await mlflow.finishRun(runId, 'KILLED');
}

/** The analysis as one step of metrics, its decision as tags; a final one ends the run. */
export async function recordAnalysis(
  mlflow: MlflowClient,
  runId: string,
  a: ExperimentAnalysis,
  /** More tags written in the same batch as the decision (the promote action's `pending`). */
  extraTags: Record<string, string> = {},
): Promise<void> {
  const timestamp = Date.parse(a.analysed_at);
  const metrics: Metric[] = [];
  const put = (key: string, value: number) => {
    if (Number.isFinite(value)) metrics.push({ key, value, timestamp, step: a.look });
  };
  put('look', a.look);
  for (const v of a.variants) {
    put(`${v.variant}.customers`, v.customers);
    put(`${v.variant}.positives`, v.positives);
    for (const m of ['roc_auc', 'calibration_error', 'brier', 'log_loss', 'cost'] as const) {
      put(`${v.variant}.${m}`, v[m].value);
      put(`${v.variant}.${m}_low`, v[m].low);
      put(`${v.variant}.${m}_high`, v[m].high);
    }
  }
  for (const c of a.comparisons) {
    put(`${c.variant}.difference`, c.difference);
    put(`${c.variant}.p_value`, c.pValue);
    put(`${c.variant}.cs_low`, c.low);
    put(`${c.variant}.cs_high`, c.high);
  }
  await mlflow.logBatch(runId, {
    metrics,
    tags: {
      [TAG.decision]: a.decision,
      [TAG.winner]: a.winner ?? '',
      [TAG.analysis]: JSON.stringify(a),
      ...(a.final ? { [TAG.status]: a.decision === 'inconclusive' ? 'stopped' : 'decided' } : {}),
      ...extraTags,
    },
  });
  if (a.final) await mlflow.finishRun(runId, 'FINISHED', timestamp);
}

/** Each treatment's always-valid p-value so far, and the number of the next look. */
export function carriedOver(run: Run): { previousPValues: Record<string, number>; look: number } {
  const previousPValues: Record<string, number> = {};
  let look = 0;
  for (const m of run.data.metrics ?? []) {
    if (m.key === 'look') look = Math.max(look, m.value);
    else if (m.key.endsWith('.p_value')) previousPValues[m.key.slice(0, -'.p_value'.length)] = m.value;
  }
  return { previousPValues, look: look + 1 };
}

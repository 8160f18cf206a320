import { loadContract } from '../contracts/index.js';
import { DriftwoodError, isDriftwoodError } from '../errors.js';
import {
  type Evidence,
  evidenceMismatch,
  evidenceTagKey,
  parseEvidence,
  parseEvidenceRef,
} from '../evaluate/evidence.js';
import { type EvaluateOptions, runEvaluate, tagOf } from '../evaluate/index.js';
import type { Logger } from '../log.js';
import type { MlflowClient } from '../mlflow/client.js';
import type { ModelVersion, Run } from '../mlflow/types.js';
import { decidePromotion, type GateCheck, type GateEvidence, type PromotionPolicy } from './decide.js';
import { type AliasEvent, auditArtifactPath, auditTagKey, auditTagText, parseAuditTags } from './history.js';
import { withAliasLock } from './lock.js';

export interface PromoteOptions {
  modelName: string;
  /** The version to promote; by default the one behind the `challenger` alias. */
  version?: string;
  alias: string;
  policy: PromotionPolicy;
  bootstrap?: EvaluateOptions['bootstrap'];
  contractsDir?: string;
}

export interface PromoteDeps {
  mlflow: MlflowClient;
  log: Logger;
  now: () => number;
  /** Who moves the alias, for the audit trail. */
  user?: string;
}

export interface PromoteResult {
  modelName: string;
  alias: string;
  version: string;
  previous: string | null;
  promoted: boolean;
  reason: string;
  checks: GateCheck[];
  evaluation: {
    holdoutRows: number;
    candidateRocAuc: number;
    championRocAuc: number | null;
    diff: number | null;
    interval: [number, number] | null;
  };
}

export const DEFAULT_BOOTSTRAP = { samples: 1000, seed: 17, level: 0.95 };

/** The gate's view of the evaluate step's evidence. Pure. */
export function toEvidence(
  e: Pick<Evidence, 'candidate' | 'champion' | 'comparison' | 'behaviour'>,
  sameTraining?: boolean,
): GateEvidence {
  return {
    ...(sameTraining === undefined ? {} : { sameTraining }),
    candidate: {
      version: e.candidate.version,
      rocAuc: e.candidate.metrics.roc_auc,
      segments: e.candidate.segments,
    },
    champion: e.champion && {
      version: e.champion.version,
      rocAuc: e.champion.metrics.roc_auc,
      segments: e.champion.segments,
    },
    comparison: e.comparison,
    behaviour: e.behaviour,
  };
}

/**
 * Decides from the evaluate step's evidence (`driftwood.evidence.<alias>` on the version; evaluate
 * runs first, through its own code, when there is none) and only when the gate passes moves the
 * alias — staged under its own `staging-<version>` when the target is `champion`, then a
 * compare-and-set under the alias lock: the alias must still hold the version the evidence judged
 * against, else CHAMPION_CHANGED (exit 2, re-evaluate). Nothing is scored and no model is loaded
 * here: evidence for another version, another holder of the alias or another contract is refused.
 * The decision and its numbers go onto the candidate as version tags either way; every move is
 * appended to the registered model's audit trail.
 */
export async function runPromote(options: PromoteOptions, deps: PromoteDeps): Promise<PromoteResult> {
  const { mlflow } = deps;
  const candidateMv = await candidateVersion(mlflow, options);
  const evidence = await evidenceFor(candidateMv, options, deps);
  const decision = decidePromotion(
    toEvidence(evidence, await trainedAlike(mlflow, evidence)),
    options.policy,
  );
  if (options.alias === 'champion' && decision.promote && !evidence.smoke.passed) {
    decision.promote = false;
    decision.checks.push({ name: 'smoke', passed: false, detail: evidence.smoke.detail });
    decision.reason = `smoke: ${evidence.smoke.detail}`;
  }
  const version = candidateMv.version;
  // The version the evidence judged against (it held the alias when promote started); the move is a
  // compare-and-set against it.
  const judged = evidence.inputs.champion.version;
  const result: PromoteResult = {
    modelName: options.modelName,
    alias: options.alias,
    version,
    previous: judged,
    promoted: decision.promote,
    reason: decision.reason,
    checks: decision.checks,
    evaluation: {
      holdoutRows: evidence.holdout.rows,
      candidateRocAuc: evidence.candidate.metrics.roc_auc,
      championRocAuc: evidence.champion?.metrics.roc_auc ?? null,
      diff: evidence.comparison?.diff ?? null,
      interval: evidence.comparison ? [evidence.comparison.low, evidence.comparison.high] : null,
    },
  };
  const at = new Date(deps.now()).toISOString();
  await mlflow.setModelVersionTag(
    options.modelName,
    version,
    `driftwood.gate.${options.alias}`,
    clip(`${decision.promote ? 'passed' : 'failed'} at ${at}: ${decision.reason}`),
  );
  await mlflow.setModelVersionTag(
    options.modelName,
    version,
    `driftwood.evaluation.${options.alias}`,
    clip(evaluationText(result)),
  );
  if (!decision.promote) {
    deps.log.warn(result, 'promote: gate not passed, alias left where it was');
    throw new DriftwoodError(
      'GATE_NOT_PASSED',
      `version ${version} not promoted to ${options.alias}: ${decision.reason}`,
      {
        result,
      },
    );
  }
  if (judged !== version)
    result.previous = await promoteJudged(
      mlflow,
      options.modelName,
      {
        alias: options.alias,
        version,
        by: deps.user ?? 'driftwood',
        reason: decision.reason,
        summary: promotionSummary(result),
      },
      judged,
      deps.now,
      options.alias === 'champion' ? () => stage(mlflow, options.modelName, version, deps.log) : undefined,
    );
  deps.log.info(result, `promote: ${options.alias} is version ${version}`);
  return result;
}

/** The version to judge: `--version`, else the one behind `challenger` (for every task kind). */
export async function challengerVersion(
  mlflow: MlflowClient,
  options: { modelName: string; version?: string },
): Promise<ModelVersion> {
  const mv = options.version
    ? await mlflow.getModelVersion(options.modelName, options.version).catch((err: unknown) => {
        if (isDriftwoodError(err) && err.details.mlflowCode === 'RESOURCE_DOES_NOT_EXIST')
          throw new DriftwoodError(
            'VERSION_NOT_FOUND',
            `model ${options.modelName} has no version ${options.version}`,
            { version: options.version },
          );
        throw err;
      })
    : await mlflow.getVersionByAlias(options.modelName, 'challenger');
  if (!mv)
    throw new DriftwoodError(
      'DATA_MISSING',
      `model '${options.modelName}' has no 'challenger' version: run 'driftwood train' first or pass --version`,
    );
  return mv;
}

/** The audit tag's line for a promotion: both ROC AUCs and their difference. Pure. */
export function promotionSummary(r: Pick<PromoteResult, 'evaluation' | 'previous'>): string {
  const { candidateRocAuc: a, championRocAuc: c, diff } = r.evaluation;
  if (c === null || diff === null) return `ROC AUC ${a.toFixed(4)}, no champion to compare with`;
  return `ROC AUC ${a.toFixed(4)} vs ${c.toFixed(4)} (${diff >= 0 ? '+' : ''}${diff.toFixed(4)})`;
}

/**
 * The version tag of a decision's numbers, as a line a person reads on the version's page (the
 * whole evidence is the JSON on the run): `ROC AUC 0.8982 vs 0.8631 (+0.0351), interval
 * [-0.0042, 0.0894], 187 holdout rows; failed: beats_champion`. Pure.
 */
export function evaluationText(r: Pick<PromoteResult, 'evaluation' | 'previous' | 'checks'>): string {
  const { interval, holdoutRows } = r.evaluation;
  const failed = r.checks.filter((c) => !c.passed).map((c) => c.name);
  return [
    promotionSummary(r),
    ...(interval ? [`interval [${interval[0].toFixed(4)}, ${interval[1].toFixed(4)}]`] : []),
    `${holdoutRows} holdout rows; ${failed.length ? `failed: ${failed.join(', ')}` : `all ${r.checks.length} checks passed`}`,
  ].join(', ');
}

/** Run parameters and tags that say what a training run read and how it trained. */
const TRAINING_TAGS = ['driftwood.data_digest', 'driftwood.model_kind', 'driftwood.snapshot_id'];

/**
 * Whether two training runs read the same data (digest) with the same parameters: the second can
 * only reproduce the first. Undefined when either run is unknown or says nothing of its data. Pure.
 */
export function sameTraining(a: Run | undefined, b: Run | undefined): boolean | undefined {
  if (!a || !b) return undefined;
  const tag = (r: Run, k: string) => r.data.tags?.find((t) => t.key === k)?.value;
  if (tag(a, 'driftwood.data_digest') === undefined || tag(b, 'driftwood.data_digest') === undefined)
    return undefined;
  if (TRAINING_TAGS.some((k) => tag(a, k) !== tag(b, k))) return false;
  const params = (r: Run) =>
    JSON.stringify(
      (r.data.params ?? [])
        .map((p) => [p.key, p.value])
        .sort(([x], [y]) => String(x).localeCompare(String(y))),
    );
  return params(a) === params(b);
}

/** sameTraining for the candidate and the champion the evidence names, read from their runs. */
async function trainedAlike(mlflow: MlflowClient, e: Evidence): Promise<boolean | undefined> {
  const championRun = e.inputs.champion.runId;
  if (!e.champion || !championRun) return undefined;
  const read = (id: string) => mlflow.getRun(id).catch(() => undefined);
  const [a, b] = await Promise.all([read(e.inputs.candidate.runId), read(championRun)]);
  return sameTraining(a, b);
}

async function candidateVersion(mlflow: MlflowClient, options: PromoteOptions): Promise<ModelVersion> {
  const mv = await challengerVersion(mlflow, options);
  if (!mv.run_id)
    throw new DriftwoodError('DATA_MISSING', `version ${mv.version} has no source run to read evidence from`);
  return mv;
}

/**
 * The evaluate step's evidence for this version against the alias, checked against the registry
 * and the contract as they are now. When the version has none, evaluate runs first.
 */
async function evidenceFor(mv: ModelVersion, options: PromoteOptions, deps: PromoteDeps): Promise<Evidence> {
  const { mlflow } = deps;
  let ref = tagOf(mv, evidenceTagKey(options.alias));
  if (ref === undefined) {
    deps.log.info({ version: mv.version }, 'promote: no evidence for the version yet; running evaluate');
    ref = (
      await runEvaluate(
        {
          modelName: options.modelName,
          version: mv.version,
          championAlias: options.alias,
          bootstrap: options.bootstrap ?? DEFAULT_BOOTSTRAP,
          ...(options.contractsDir ? { contractsDir: options.contractsDir } : {}),
        },
        deps,
      )
    ).evidence;
  }
  const where = `${ref} (version ${mv.version})`;
  const { runId, path } = parseEvidenceRef(ref);
  const run = await mlflow.getRun(runId);
  let evidence: Evidence;
  try {
    evidence = parseEvidence(
      JSON.parse((await mlflow.downloadArtifact(run.info.artifact_uri, path)).toString('utf8')),
      where,
    );
  } catch (err) {
    if (err instanceof DriftwoodError) throw err;
    throw new DriftwoodError(
      'DATA_MISSING',
      `evidence ${where}: cannot be read (${(err as Error).message}); run 'driftwood evaluate' again`,
      {},
      { cause: err },
    );
  }
  const contract = await loadContract(evidence.inputs.dataset, options.contractsDir);
  const holder = await mlflow.getVersionByAlias(options.modelName, options.alias);
  const now = holder?.version ?? null;
  if (
    evidence.inputs.candidate.version === mv.version &&
    evidence.inputs.champion.alias === options.alias &&
    evidence.inputs.champion.version !== now
  )
    throw championChanged(options.alias, evidence.inputs.champion.version, now);
  const mismatch = evidenceMismatch(evidence, {
    version: mv.version,
    runId: mv.run_id as string,
    alias: options.alias,
    championVersion: now,
    contract: { version: contract.version, digest: contract.digest },
  });
  if (mismatch) throw new DriftwoodError('SCHEMA_MISMATCH', `evidence ${where} refused: ${mismatch}`);
  return evidence;
}

/**
 * Stages the version under its own alias (`staging-<version>`, removed once champion moved), so
 * concurrent promotions never read each other's staging; the alias must resolve to the version
 * before champion moves. Whether the version loads and answers the way serving will load it is in
 * the evidence (evaluate's smoke check). Returns the alias.
 */
async function stage(mlflow: MlflowClient, name: string, version: string, log: Logger): Promise<string> {
  const alias = `staging-${version}`;
  await mlflow.setAlias(name, alias, version);
  const staged = await mlflow.getVersionByAlias(name, alias);
  if (staged?.version !== version)
    throw new DriftwoodError(
      'MODEL_INVALID',
      `${alias} resolved to version ${staged?.version ?? '(none)'}, expected ${version}`,
    );
  log.info({ version, alias }, 'promote: staged');
  return alias;
}

const championChanged = (alias: string, from: string | null, to: string | null) =>
  new DriftwoodError(
    'CHAMPION_CHANGED',
    `${alias} changed from ${from ?? 'none'} to ${to ?? 'none'} since evaluation; re-evaluate`,
    { alias, from, to },
  );

/**
 * The last step of every promotion (tabular and forecast): stages the version when `stage` is given
 * (it returns its own staging alias), then moves the alias by compare-and-set under the alias lock
 * against the holder the gate judged, and removes the staging alias whatever happened. Returns the
 * version the alias held just before the move.
 */
export async function promoteJudged(
  mlflow: MlflowClient,
  name: string,
  move: { alias: string; version: string; by: string; reason: string; summary?: string },
  judged: string | null,
  now: () => number,
  stage?: () => Promise<string>,
): Promise<string | null> {
  const staging = stage ? await stage() : undefined;
  try {
    return await withAliasLock(mlflow, name, () =>
      compareAndMoveAlias(mlflow, name, { ...move, action: 'promote' }, judged, now),
    );
  } finally {
    if (staging) await mlflow.deleteAlias(name, staging).catch(() => undefined);
  }
}

/**
 * Moves `alias` to the version only if it still holds `expected` (read right before the move), and
 * reads it again right after. MLflow cannot do this atomically, so callers hold `withAliasLock`,
 * which serialises every driftwood move; a writer outside driftwood can still slip in between, and
 * the re-read catches it: both moves go into the audit trail (the other as `external`) and the
 * caller gets CHAMPION_CHANGED. Returns the version the alias held just before the move.
 */
export async function compareAndMoveAlias(
  mlflow: MlflowClient,
  name: string,
  move: Omit<AliasEvent, 'at' | 'previous'> & { summary?: string },
  expected: string | null,
  now: () => number,
): Promise<string | null> {
  const before = (await mlflow.getVersionByAlias(name, move.alias))?.version ?? null;
  if (before !== expected) throw championChanged(move.alias, expected, before);
  const at = new Date(now()).toISOString();
  await mlflow.setAlias(name, move.alias, move.version);
  const after = (await mlflow.getVersionByAlias(name, move.alias))?.version ?? null;
  await recordMove(mlflow, { ...move, at, previous: before }, name);
  if (after !== move.version) {
    await recordMove(
      mlflow,
      {
        at: new Date(Math.max(now(), Date.parse(at) + 1)).toISOString(),
        alias: move.alias,
        version: after ?? 'none',
        previous: move.version,
        action: 'external',
        by: 'unknown',
        reason: `moved outside driftwood while version ${move.version} was being moved in`,
      },
      name,
    );
    throw new DriftwoodError(
      'CHAMPION_CHANGED',
      `${move.alias} changed from ${move.version} to ${after ?? 'none'} right after the move (another writer); re-evaluate`,
      { alias: move.alias, from: move.version, to: after },
    );
  }
  return before;
}

/**
 * Applies one alias move blindly and records it. Tests and the forecast step use it; promotions and
 * rollbacks go through `compareAndMoveAlias` under the lock.
 */
export async function moveAlias(mlflow: MlflowClient, e: AliasEvent, name: string): Promise<void> {
  await mlflow.setAlias(name, e.alias, e.version);
  await recordMove(mlflow, e, name);
}

/**
 * Records a move: one registered-model tag with a short line (`auditTagText`), the whole event as
 * JSON on the moved version's run (`audit/….json`), and version tags (who, when, why, previous).
 */
async function recordMove(
  mlflow: MlflowClient,
  move: AliasEvent & { summary?: string },
  name: string,
): Promise<void> {
  const { summary, ...e } = move;
  await mlflow.setRegisteredModelTag(name, auditTagKey(e), auditTagText(e, summary ?? e.reason));
  await keepAuditRecord(mlflow, name, e);
  if (e.version === 'none') return;
  await mlflow.setModelVersionTag(name, e.version, `driftwood.${e.alias}_since`, e.at);
  await mlflow.setModelVersionTag(name, e.version, `driftwood.${e.alias}_by`, e.by);
  await mlflow.setModelVersionTag(
    name,
    e.version,
    `driftwood.${e.alias}_reason`,
    clip(`${e.action}: ${e.reason}`),
  );
  await mlflow.setModelVersionTag(name, e.version, `driftwood.previous_${e.alias}`, e.previous ?? 'none');
  if (e.previous) await mlflow.setModelVersionTag(name, e.previous, `driftwood.${e.alias}_until`, e.at);
}

/** The run an event's JSON is kept on: the moved version's, else (a move to none) the previous one's. */
async function auditRun(mlflow: MlflowClient, name: string, e: AliasEvent): Promise<Run | undefined> {
  const version = e.version !== 'none' ? e.version : e.previous;
  if (!version) return undefined;
  const mv = await mlflow.getModelVersion(name, version).catch(() => undefined);
  return mv?.run_id ? mlflow.getRun(mv.run_id).catch(() => undefined) : undefined;
}

/**
 * The whole event as JSON on a run. The tag is the trail; this keeps the full reason next to it. A
 * version without a run (registered from elsewhere) has the tag alone.
 */
async function keepAuditRecord(mlflow: MlflowClient, name: string, e: AliasEvent): Promise<void> {
  const run = await auditRun(mlflow, name, e);
  if (!run) return;
  await mlflow.uploadArtifact(
    run.info.artifact_uri,
    auditArtifactPath(e),
    `${JSON.stringify({ format: 'driftwood.audit/v1', modelName: name, ...e }, null, 2)}\n`,
  );
}

/**
 * The audit trail, oldest first, from the registered model's tags. `full`: each event's reason as
 * recorded in its JSON on the run (the tag holds a short line), where that JSON can be read.
 */
export async function readAuditTrail(
  mlflow: MlflowClient,
  name: string,
  options: { full?: boolean } = {},
): Promise<AliasEvent[]> {
  const events = parseAuditTags((await mlflow.getRegisteredModel(name)).tags ?? []);
  if (!options.full) return events;
  return Promise.all(
    events.map(async (e) => {
      const run = await auditRun(mlflow, name, e);
      if (!run) return e;
      try {
        const kept = JSON.parse(
          (await mlflow.downloadArtifact(run.info.artifact_uri, auditArtifactPath(e))).toString('utf8'),
        ) as Partial<AliasEvent>;
        return typeof kept.reason === 'string' ? { ...e, reason: kept.reason } : e;
      } catch {
        // Older trails kept the whole event in the tag; a record that cannot be read leaves the line.
        return e;
      }
    }),
  );
}

/** MLflow caps tag values at 8000 characters (mlflow/utils/validation.py). */
const clip = (s: string): string => (s.length > 8000 ? `${s.slice(0, 7997)}...` : s);

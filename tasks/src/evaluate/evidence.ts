import { DriftwoodError } from '../errors.js';
import type { BehaviourCheck } from './behaviour.js';
import type { PairedDifference } from './bootstrap.js';
import type { Evaluation, ModelScore } from './types.js';

export const EVIDENCE_FORMAT = 'driftwood.evidence/v1';

/** The version tag that points at the evidence a version was judged on against an alias. */
export const evidenceTagKey = (alias: string) => `driftwood.evidence.${alias}`;

/** Where on the candidate's run the evidence against an alias is stored. */
export const evidencePath = (alias: string) => `evidence/${alias}.json`;

/** What the evidence was computed from: enough to refuse it when any of it has changed. */
export interface EvidenceInputs {
  dataset: string;
  candidate: { version: string; runId: string };
  /** The version that held the alias when the candidate was judged (null: none). */
  champion: { alias: string; version: string | null; runId: string | null };
  snapshotId: string | null;
  featuresId: string | null;
  /** sha256 of the candidate run's evaluation/holdout.json, the rows both models were scored on. */
  holdoutSha256: string;
  contract: { version: number; digest: string };
}

/**
 * The evaluate step's output, stored as JSON on the candidate's run: every figure the promotion
 * gate decides from, and the ids of what they were computed from. Promote reads it; it scores nothing.
 */
export interface Evidence {
  format: typeof EVIDENCE_FORMAT;
  createdAt: string;
  modelName: string;
  inputs: EvidenceInputs;
  holdout: Evaluation['holdout'];
  candidate: ModelScore;
  champion: ModelScore | null;
  comparison: PairedDifference | null;
  championUnusable: Evaluation['championUnusable'];
  bootstrap: { samples: number; seed: number; level: number };
  behaviour: BehaviourCheck[];
  /** The candidate, loaded as serving loads it, answered a probability for a probe row. */
  smoke: { passed: boolean; probability: number | null; detail: string };
}

/** `runs:/<run id>/<path>`: the tag's value, naming the artifact. */
export function evidenceRef(runId: string, alias: string): string {
  return `runs:/${runId}/${evidencePath(alias)}`;
}

export function parseEvidenceRef(ref: string): { runId: string; path: string } {
  const m = /^runs:\/([\w-]+)\/(.+)$/.exec(ref);
  if (!m)
    throw new DriftwoodError(
      'SCHEMA_MISMATCH',
      `evidence reference '${ref}': expected runs:/<run id>/<path>`,
    );
  return { runId: m[1] as string, path: m[2] as string };
}

export function parseEvidence(json: unknown, where: string): Evidence {
  const e = json as Partial<Evidence> | null;
  if (!e || e.format !== EVIDENCE_FORMAT || !e.inputs || !e.candidate || !e.smoke)
    throw new DriftwoodError(
      'SCHEMA_MISMATCH',
      `evidence ${where}: expected format ${EVIDENCE_FORMAT}; run 'driftwood evaluate' again`,
    );
  return e as Evidence;
}

/** What promote expects the evidence to be about, from the registry and the contract now. */
export interface EvidenceExpectation {
  version: string;
  runId: string;
  alias: string;
  championVersion: string | null;
  contract: { version: number; digest: string };
}

/**
 * Pure: why this evidence cannot be used for this decision, or undefined when it can. Evidence is
 * about one candidate, judged against the version that then held the alias, under one contract.
 */
export function evidenceMismatch(e: Evidence, want: EvidenceExpectation): string | undefined {
  const { inputs } = e;
  if (inputs.candidate.version !== want.version || inputs.candidate.runId !== want.runId)
    return `it is for version ${inputs.candidate.version} (run ${inputs.candidate.runId}), not version ${want.version} (run ${want.runId})`;
  if (inputs.champion.alias !== want.alias)
    return `it judged the candidate against '${inputs.champion.alias}', not '${want.alias}'`;
  if (inputs.champion.version !== want.championVersion)
    return `it judged the candidate against ${want.alias} version ${inputs.champion.version ?? '(none)'}, but ${want.alias} is now version ${want.championVersion ?? '(none)'}: run 'driftwood evaluate' again`;
  if (inputs.contract.version !== want.contract.version || inputs.contract.digest !== want.contract.digest)
    return `it was computed under contract version ${inputs.contract.version} (${inputs.contract.digest.slice(0, 12)}…), the contract is now version ${want.contract.version} (${want.contract.digest.slice(0, 12)}…)`;
  return undefined;
}

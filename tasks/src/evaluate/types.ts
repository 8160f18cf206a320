import type { BinaryMetrics } from '../models/metrics.js';
import type { BehaviourCheck } from './behaviour.js';
import type { PairedDifference } from './bootstrap.js';
import type { SegmentMetrics } from './segments.js';

export interface ModelScore {
  version: string;
  threshold: number;
  metrics: BinaryMetrics;
  segments: SegmentMetrics[];
}

/** Everything the promotion gate decides from, scored on one holdout: the candidate's. */
export interface Evaluation {
  modelName: string;
  holdout: { runId: string; cutoff: string; rows: number; positives: number };
  candidate: ModelScore;
  champion: ModelScore | null;
  /** candidate − champion ROC AUC with its bootstrap interval; null without a champion. */
  comparison: PairedDifference | null;
  /**
   * A champion this code can no longer load (for example a transform format from before an
   * upgrade): it cannot be compared, so the gate judges the candidate on its own, and says so.
   */
  championUnusable: { version: string; reason: string } | null;
  behaviour: BehaviourCheck[];
  /** The evidence written on the candidate's run: `runs:/<run id>/evidence/<alias>.json`. */
  evidence: string;
}

import { DriftwoodError } from '../../errors.js';

/**
 * What changes in the simulated world from a start hour on, to exercise the drift monitor with
 * traffic that drifts the way production does:
 * - `price`: a price rise; every customer's monthly charge is multiplied by 1 + strength (existing
 *   customers are re-sent in that hour's customers file, as a billing system would);
 * - `plan`: a share `strength` of basic customers move up to premium (re-sent the same way);
 * - `activity`: sessions and purchases fall by `strength`, support tickets rise by 2 × strength.
 */
export const DRIFT_KINDS = ['price', 'plan', 'activity'] as const;
export type DriftKind = (typeof DRIFT_KINDS)[number];

export interface DriftSpec {
  /** Strength per kind, each in (0, 1]. */
  kinds: Partial<Record<DriftKind, number>>;
  /** The first simulated hour (ms since epoch, on an hour) the drift applies to. */
  start: number;
}

/** Parses `--drift price:0.3,activity:0.6`; the error names the part that is wrong. */
export function parseDrift(text: string, start: number): DriftSpec {
  const kinds: Partial<Record<DriftKind, number>> = {};
  for (const part of text.split(',')) {
    const [kind, strength, ...rest] = part.trim().split(':');
    if (!(DRIFT_KINDS as readonly string[]).includes(kind ?? '') || strength === undefined || rest.length > 0)
      throw new DriftwoodError(
        'USAGE',
        `--drift: '${part}' is not <kind>:<strength> with kind ${DRIFT_KINDS.join(', ')}`,
      );
    const value = Number(strength);
    if (!(value > 0 && value <= 1))
      throw new DriftwoodError(
        'USAGE',
        `--drift: strength of '${kind}' must be in (0, 1], got '${strength}'`,
      );
    if (kinds[kind as DriftKind] !== undefined)
      throw new DriftwoodError('USAGE', `--drift: '${kind}' is given twice`);
    kinds[kind as DriftKind] = value;
  }
  return { kinds, start };
}

/** Multipliers of the hourly rates while the drift is on (1 everywhere before it starts). */
export function activityFactors(drift: DriftSpec | undefined, hourStart: number) {
  const s = drift && hourStart >= drift.start ? (drift.kinds.activity ?? 0) : 0;
  return { sessions: 1 - s, purchases: 1 - s, tickets: 1 + 2 * s };
}

/** The monthly-charge multiplier of the `price` drift at an hour. */
export function priceFactor(drift: DriftSpec | undefined, hourStart: number): number {
  return drift && hourStart >= drift.start ? 1 + (drift.kinds.price ?? 0) : 1;
}

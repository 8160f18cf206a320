import { datasetSettings } from '../contracts/index.js';
import { type TabularProfile, tabularProfile } from '../features/profile.js';
import type { SnapshotColumn } from '../snapshot/types.js';
import type { TaskKind } from './types.js';

/** The time column a `time` split orders by; a double holds epoch milliseconds exactly. */
const TIME_COLUMN: SnapshotColumn = { name: '__time', type: 'double', role: 'time' };

function schemaOf(profile: TabularProfile, withTime: boolean): SnapshotColumn[] {
  return [
    { name: profile.idName, type: 'string' },
    { name: 'label', type: 'integer' },
    ...profile.numeric.map((name) => ({ name, type: 'double' as const })),
    ...profile.categorical.map((name) => ({ name, type: 'string' as const })),
    ...(withTime ? [TIME_COLUMN] : []),
  ];
}

/** Binary classification on a table of rows: id, label and inputs per row, built by the dataset's profile. */
export const tabularKind: TaskKind = {
  name: 'tabular_classification',
  snapshotTable: async (contract, window, db) => {
    const profile = tabularProfile(contract);
    // Only a `time` split needs the rows' time; other snapshots keep the columns (and ids) they had.
    const withTime = datasetSettings(contract).split.strategy === 'time';
    const schema = schemaOf(profile, withTime);
    const cutoff = profile.cutoffAsOf(window.asOf, window.horizonHours, window.labelDelayHours);
    const built = await profile.build(db, cutoff, window.horizonHours);
    const sorted = [...built].sort((a, b) =>
      a.customerId < b.customerId ? -1 : a.customerId > b.customerId ? 1 : 0,
    );
    const features = schema
      .slice(2)
      .filter((c) => c.role !== 'time')
      .map((c) => c.name);
    return {
      schema,
      rows: sorted.map((r) => [
        r.customerId,
        r.label,
        ...features.map((f) => r.features[f] ?? null),
        ...(withTime ? [r.time ?? null] : []),
      ]),
      cutoff,
      horizonHours: window.horizonHours,
      positives: sorted.filter((r) => r.label === 1).length,
      required: 2,
    };
  },
  latestAsOf: (contract, db, window) =>
    tabularProfile(contract).latestAsOf(db, window.horizonHours, window.labelDelayHours),
};

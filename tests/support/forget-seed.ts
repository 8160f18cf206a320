import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parseCsv } from '../../tasks/src/csv.js';
import { parquetReadObjects } from '../../tasks/src/parquet.js';
import { tokenise } from '../../tasks/src/pii.js';
import { mlflowClient, ROOT, runCli, tempHome, uniqueName } from './env.js';

/**
 * A customer seeded in every place Driftwood may hold personal data (issue 20, problem 7), for the
 * erasure tests: the lake's raw files (one malformed), quarantined rows with the id inside
 * `values`, a reason file, partial copies of a raw file left by killed writers, a snapshot and its
 * features, a training run's artifacts in the live MLflow server (and a run logged with the old
 * training config that held the whole snapshot), the API's prediction log and the warehouse.
 */

export const PII_KEY = 'forget-everywhere-key-0123456789abcdef';
/** A process id no system hands out (above Linux's pid_max), so its files are a dead writer's. */
const DEAD_PID = 99_999_999;

export function filesUnder(dir: string): { file: string; bytes: Buffer }[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => {
      const file = path.join(e.parentPath, e.name);
      return { file, bytes: readFileSync(file) };
    });
}

/**
 * Every file's searchable content: its bytes, and for Parquet (whose strings sit in compressed
 * pages) also its decoded rows.
 */
export async function contentsUnder(dir: string): Promise<{ file: string; bytes: Buffer }[]> {
  const out: { file: string; bytes: Buffer }[] = [];
  for (const f of filesUnder(dir)) {
    if (!f.file.endsWith('.parquet')) {
      out.push(f);
      continue;
    }
    const file = f.bytes.buffer.slice(
      f.bytes.byteOffset,
      f.bytes.byteOffset + f.bytes.byteLength,
    ) as ArrayBuffer;
    const rows = await parquetReadObjects({ file });
    out.push({
      file: f.file,
      bytes: Buffer.concat([
        f.bytes,
        Buffer.from(JSON.stringify(rows, (_k, v) => (typeof v === 'bigint' ? String(v) : v))),
      ]),
    });
  }
  return out;
}

/** A digest of every file under a folder (path and bytes), but for the folders named. */
export function treeDigest(dir: string, except: string[]): string {
  const h = createHash('sha256');
  for (const f of filesUnder(dir).sort((a, b) => (a.file < b.file ? -1 : 1))) {
    const rel = path.relative(dir, f.file);
    if (except.some((e) => rel.startsWith(e))) continue;
    h.update(rel).update(f.bytes);
  }
  return h.digest('hex');
}

/** Whether text holds one of the values. */
export function tracesIn(bytes: Buffer, values: readonly string[]): string[] {
  const text = bytes.toString('latin1');
  return values.filter((v) => text.includes(v));
}

export interface SeededCustomer {
  home: string;
  lakeDir: string;
  env: Record<string, string>;
  victim: string;
  email: string;
  someoneElse: string;
  /** The id, the email, the email's token and the prediction log's token. */
  traces: string[];
  snapshotId: string;
  experimentDir: string;
  artifactsDir: string;
  /** Per place, which of the traces it held once seeded (positive controls for the search). */
  seeded: Record<string, string[]>;
}

export async function seedCustomerEverywhere(
  mlflowUri: string,
  size: { customers: number; seed: number },
): Promise<SeededCustomer> {
  const home = tempHome('driftwood-forget-all-');
  const lakeDir = path.join(home, 'lake');
  const mlflow = mlflowClient(mlflowUri);
  const experiment = uniqueName('exp-forget-all');
  const env = {
    DRIFTWOOD_HOME: home,
    DRIFTWOOD_PII_KEY: PII_KEY,
    MLFLOW_TRACKING_URI: mlflowUri,
    DRIFTWOOD_EXPERIMENT: experiment,
    DRIFTWOOD_MODEL_NAME: uniqueName('churn-forget-all'),
  };
  // The test server keeps artifacts under .driftwood/test/mlflow-<port>/artifacts (tests/support/global-setup.ts).
  const artifactsDir = path.join(
    ROOT,
    '.driftwood',
    'test',
    `mlflow-${new URL(mlflowUri).port}`,
    'artifacts',
  );
  const steps = [
    [
      'simulate',
      '--start',
      '2026-11-01T00:00Z',
      '--hours',
      '96',
      '--seed',
      String(size.seed),
      '--customers',
      String(size.customers),
    ],
    ['ingest', '--until', '2026-11-05T00:00Z'],
    ['snapshot', '--as-of', 'latest'],
    ['train', '--snapshot', 'latest', '--epochs', '2'],
  ];
  let snapshotId = '';
  for (const args of steps) {
    const r = await runCli(args, env);
    if (r.code !== 0) throw new Error(`driftwood ${args[0]} exited ${r.code}: ${r.stderr}`);
    if (args[0] === 'snapshot') snapshotId = JSON.parse(r.stdout).id;
  }
  const exp = await mlflow.getExperimentByName(experiment);
  const experimentDir = path.join(artifactsDir, exp?.experiment_id ?? 'missing');

  // The victim: a customer of the run's holdout (so the MLflow artifacts hold them), with a label.
  const holdout = filesUnder(experimentDir).find((f) =>
    f.file.endsWith(path.join('evaluation', 'holdout.json')),
  );
  if (!holdout) throw new Error('the training run logged no evaluation/holdout.json');
  const ids = (JSON.parse(holdout.bytes.toString('utf8')).rows as { customer_id: string }[]).map(
    (r) => r.customer_id,
  );
  const customers = filesUnder(path.join(lakeDir, 'raw'))
    .filter((f) => f.file.endsWith('customers.csv'))
    .flatMap((f) => parseCsv(f.bytes.toString('utf8')).rows);
  const row = customers.find((c) => ids.includes(c.customer_id ?? '') && (c.email ?? '').includes('@'));
  if (!row) throw new Error('no holdout customer with an email in the raw files');
  const victim = row.customer_id as string;
  const email = row.email as string;
  const customerToken = tokenise(victim, PII_KEY);
  const emailToken = tokenise(email, PII_KEY);
  const traces = [victim, email, emailToken, customerToken];
  const someoneElse = customers.find((c) => c.customer_id !== victim)?.customer_id as string;

  // Quarantine: rejected rows with the id inside `values` (and one with only the email's token, as
  // a malformed row's fields), a reason file naming the id, beside another customer's rows.
  const q = path.join(lakeDir, 'quarantine', 'churn', 'dt=2026-11-02', 'hr=03');
  mkdirSync(q, { recursive: true });
  const rejected = (id: string, token: string) =>
    `${JSON.stringify({ row: 4, problems: [{ row: 4, column: 'plan', value: 'gold', rule: 'allowed', action: 'dropped_row' }], values: { customer_id: id, email: token, plan: 'gold' } })}\n`;
  writeFileSync(
    path.join(q, 'customers.csv.rejected.jsonl'),
    rejected(victim, emailToken) +
      rejected(someoneElse, tokenise('x@example.org', PII_KEY)) +
      `${JSON.stringify({ row: 9, problems: [{ row: 9, column: null, value: null, rule: 'malformed_row', action: 'dropped_row' }], fields: ['2026-11-01T00:00:00Z', emailToken] })}\n`,
  );
  writeFileSync(
    path.join(q, 'customers.csv.reason.json'),
    `${JSON.stringify(
      {
        source: 'raw/churn/dt=2026-11-02/hr=03/customers.csv',
        problems: [
          { row: 4, column: 'customer_id', value: victim, rule: 'range', action: 'dropped_row' },
          { row: 5, column: 'plan', value: 'gold', rule: 'allowed', action: 'dropped_row' },
        ],
      },
      null,
      2,
    )}\n`,
  );
  // Partial copies of a raw file left by killed writers: the old place (hidden, inside the lake)
  // and the temporary folder beside the lake.
  const rawCustomers = filesUnder(path.join(lakeDir, 'raw')).find(
    (f) => f.file.endsWith('customers.csv') && f.bytes.includes(victim),
  );
  if (!rawCustomers) throw new Error('no raw customers file holds the victim');
  writeFileSync(path.join(q, `.customers.csv.${DEAD_PID}.tmp`), rawCustomers.bytes);
  mkdirSync(path.join(home, 'tmp', 'lake'), { recursive: true });
  writeFileSync(path.join(home, 'tmp', 'lake', `customers.csv.${DEAD_PID}.0badc0de.tmp`), rawCustomers.bytes);
  // A malformed raw CSV (a row with too few fields naming the customer, one naming nobody), and a
  // quarantined copy whose quote never closes.
  const events = filesUnder(path.join(lakeDir, 'raw')).find((f) => f.file.endsWith('events.csv'));
  if (!events) throw new Error('no raw events file');
  writeFileSync(events.file, `${events.bytes.toString('utf8')}999001,${victim},login\n999002,short\n`);
  writeFileSync(
    path.join(q, 'events.csv'),
    `event_id,customer_id,event_type,ts,value\n1,${someoneElse},login,2026-11-02T03:00:00Z,1\n2,"${victim},login\n3,${victim},login,2026-11-02T03:00:00Z,1\n`,
  );
  // The API's prediction log names customers by token.
  const log = path.join(home, 'predictions', 'churn', 'dt=2026-11-04', 'hr=10', 'predictions.jsonl');
  mkdirSync(path.dirname(log), { recursive: true });
  const line = (token: string, p: number) =>
    `${JSON.stringify({ ts: '2026-11-04T10:00:00.000Z', customer_token: token, features: { plan: 'basic' }, probability: p })}\n`;
  writeFileSync(
    log,
    line(customerToken, 0.1) + line(tokenise(someoneElse, PII_KEY), 0.2) + line(customerToken, 0.3),
  );
  // A spill file an API process killed before draining it left (the next API start writes it to the log).
  const spill = path.join(home, 'predictions', '.spill', `${DEAD_PID}-0.spill`);
  mkdirSync(path.dirname(spill), { recursive: true });
  writeFileSync(spill, line(customerToken, 0.4) + line(tokenise(someoneElse, PII_KEY), 0.5));
  // A run logged before the training config named its snapshot by id: the whole snapshot, rows included.
  const legacy = await mlflow.createRun({
    experimentId: exp?.experiment_id as string,
    runName: 'legacy-config',
    startTime: Date.now(),
    tags: {},
  });
  await mlflow.uploadArtifact(
    legacy.info.artifact_uri,
    'config/train.json',
    `${JSON.stringify(
      {
        dataset: 'churn',
        snapshot: {
          manifest: { id: snapshotId, dataKey: `snapshots/churn/${snapshotId}/data.parquet` },
          lakeUri: `file://${lakeDir}`,
          rows: [
            { customerId: victim, label: 1, features: {} },
            { customerId: someoneElse, label: 0, features: {} },
          ],
        },
      },
      null,
      2,
    )}\n`,
  );

  const held = (files: { bytes: Buffer }[]) =>
    [...new Set(files.flatMap((f) => tracesIn(f.bytes, traces)))].sort();
  const seeded: Record<string, string[]> = {};
  for (const place of ['raw', 'quarantine', 'snapshots', 'features'])
    seeded[place] = held(await contentsUnder(path.join(lakeDir, place)));
  seeded.predictions = held(filesUnder(path.join(home, 'predictions')));
  seeded.partialFiles = held(filesUnder(path.join(home, 'tmp')));
  seeded.warehouse = held(filesUnder(home).filter((f) => f.file.includes('warehouse.db')));
  seeded.mlflowArtifacts = held(filesUnder(experimentDir));
  return {
    home,
    lakeDir,
    env,
    victim,
    email,
    someoneElse,
    traces,
    snapshotId,
    experimentDir,
    artifactsDir,
    seeded,
  };
}

/**
 * Every trace of the customer left: the id, email and tokens in any file under the home (Parquet
 * decoded, the SQLite warehouse read as raw bytes) or the experiment's MLflow artifacts; the tokens
 * (this key's own) anywhere in MLflow's artifact store.
 */
export async function tracesLeft(s: SeededCustomer): Promise<{ file: string; found: string[] }[]> {
  const tokens = s.traces.slice(2);
  return [
    ...[...(await contentsUnder(s.home)), ...filesUnder(s.experimentDir)].map((f) => ({
      file: f.file,
      found: tracesIn(f.bytes, s.traces),
    })),
    ...filesUnder(s.artifactsDir).map((f) => ({ file: f.file, found: tracesIn(f.bytes, tokens) })),
  ].filter((f) => f.found.length > 0);
}

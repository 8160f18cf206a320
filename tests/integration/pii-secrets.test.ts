import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { MlflowClient } from '@driftwood/tasks';
import { beforeAll, describe, expect, inject, it } from 'vitest';
import { parseCsv, toCsv } from '../../tasks/src/csv.js';
import { type CliRun, mlflowClient, runCli, tempHome, uniqueName } from '../support/env.js';

/** Every file under a folder, as raw bytes read as latin1 (so binary files are searched too). */
function filesUnder(dir: string): { file: string; text: string }[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => {
      const file = path.join(e.parentPath, e.name);
      return { file, text: readFileSync(file).toString('latin1') };
    });
}

/** Every artifact under an MLflow artifact root, downloaded through the tracking server's proxy. */
async function artifactsUnder(
  mlflow: MlflowClient,
  root: string,
  rel = '',
): Promise<{ file: string; text: string }[]> {
  const out: { file: string; text: string }[] = [];
  for (const f of await mlflow.listArtifacts(root, rel)) {
    const child = [rel, f.path.split('/').pop()].filter((p) => p).join('/');
    if (f.is_dir) out.push(...(await artifactsUnder(mlflow, root, child)));
    else out.push({ file: child, text: (await mlflow.downloadArtifact(root, child)).toString('latin1') });
  }
  return out;
}

const PROBES = [
  { id: 'Z900001', email: 'Ada.Probe+churn@driftwood-pii.invalid', phone: '+44 7700 900123' },
  { id: 'Z900002', email: 'grace.probe@driftwood-pii.invalid', phone: '+1-202-555-0143' },
  { id: 'Z900003', email: 'alan.probe@driftwood-pii.invalid', phone: '(0)20 7946 0018' },
];

describe('PII and secrets stay out of the warehouse, results, logs and MLflow (simulate → ingest → train)', () => {
  const home = tempHome('driftwood-pii-');
  const lakeDir = path.join(home, 'lake');
  // The key is delivered as the platform does it: a file, named by DRIFTWOOD_PII_KEY_FILE.
  const secret = `pii-key-${randomBytes(18).toString('hex')}`;
  const secretFile = path.join(tempHome('driftwood-secret-'), 'pii.key');
  let env: Record<string, string>;
  const runs: Record<string, CliRun> = {};
  let lakeEmails: string[] = [];
  let mlflow: MlflowClient;

  beforeAll(async () => {
    writeFileSync(secretFile, `${secret}\n`, { mode: 0o600 });
    mlflow = mlflowClient(inject('mlflowUri'));
    env = {
      DRIFTWOOD_HOME: home,
      DRIFTWOOD_PII_KEY_FILE: secretFile,
      MLFLOW_TRACKING_URI: inject('mlflowUri'),
      DRIFTWOOD_EXPERIMENT: uniqueName('exp-pii'),
      DRIFTWOOD_MODEL_NAME: uniqueName('churn-pii'),
      // The most talkative level: whatever any step logs is searched.
      LOG_LEVEL: 'trace',
    };
    runs.simulate = await runCli(
      ['simulate', '--start', '2026-11-01T00:00Z', '--hours', '144', '--seed', '3', '--customers', '400'],
      env,
    );
    expect(runs.simulate.code, runs.simulate.stderr).toBe(0);

    // Seed known emails and phone numbers: a delivered customers file gains a `phone` column the
    // contract does not know and three customers whose contact details are recognisable.
    const customersFile = filesUnder(path.join(lakeDir, 'raw')).find((f) => f.file.endsWith('customers.csv'));
    if (!customersFile) throw new Error('the simulator wrote no customers file');
    const parsed = parseCsv(readFileSync(customersFile.file, 'utf8'));
    const header = [...parsed.header, 'phone'];
    const template = parsed.rows[0] ?? {};
    const rows = [
      ...parsed.rows.map((r) => [...parsed.header.map((h) => r[h] ?? ''), '']),
      ...PROBES.map((p) =>
        header.map((h) =>
          h === 'customer_id'
            ? p.id
            : h === 'email'
              ? p.email
              : h === 'phone'
                ? p.phone
                : (template[h] ?? ''),
        ),
      ),
    ];
    writeFileSync(customersFile.file, toCsv(header, rows));

    lakeEmails = filesUnder(path.join(lakeDir, 'raw'))
      .filter((f) => f.file.endsWith('customers.csv'))
      .flatMap((f) => parseCsv(f.text).rows.map((r) => r.email ?? ''))
      .filter((e) => e.includes('@'));

    runs.ingest = await runCli(['ingest', '--until', '2026-11-07T00:00Z'], env);
    expect(runs.ingest.code, runs.ingest.stderr).toBe(0);
    runs.train = await runCli(['train', '--epochs', '3'], env);
    expect(runs.train.code, runs.train.stderr).toBe(0);
  });

  /** Which of the seeded values occur in a text; [] when none. */
  const leaks = (text: string): string[] => {
    const lower = text.toLowerCase();
    return [
      ...lakeEmails.filter((e) => lower.includes(e.toLowerCase())),
      ...PROBES.map((p) => p.phone).filter((p) => text.includes(p)),
      ...(text.includes(secret) ? ['the PII key'] : []),
    ];
  };

  it('the seeded values really went through the pipeline', async () => {
    expect(lakeEmails.length).toBeGreaterThan(PROBES.length);
    expect(lakeEmails).toEqual(expect.arrayContaining(PROBES.map((p) => p.email)));
    expect(JSON.parse(runs.ingest?.stdout ?? '{}').rowsLoaded).toBeGreaterThan(0);
    // The probes were loaded (tokenised): their ids are in the warehouse, their contact details are not.
    const db = readFileSync(path.join(home, 'warehouse.db')).toString('latin1');
    for (const p of PROBES) expect(db).toContain(p.id);
    // Positive controls: the detector finds the seeded values where they legitimately are.
    const raw = filesUnder(path.join(lakeDir, 'raw'))
      .map((f) => f.text)
      .join('\n');
    expect(leaks(raw)).toEqual(expect.arrayContaining([PROBES[0]?.email, PROBES[1]?.phone]));
    expect(leaks(readFileSync(secretFile, 'utf8'))).toEqual(['the PII key']);
    // A log at trace level was written, so the log check below searches real output.
    expect((runs.ingest?.stderr ?? '').length + (runs.train?.stderr ?? '').length).toBeGreaterThan(0);
  });

  it('no email, phone number or key in the warehouse file (and its WAL) or any step result', () => {
    const files = filesUnder(home).filter(
      (f) =>
        !f.file.startsWith(path.join(lakeDir, 'raw')) && !f.file.startsWith(path.join(lakeDir, 'quarantine')),
    );
    expect(files.map((f) => path.basename(f.file))).toEqual(
      expect.arrayContaining(['warehouse.db', 'simulate.json', 'ingest.json', 'train.json']),
    );
    for (const f of files) expect(leaks(f.text), f.file).toEqual([]);
  });

  it('the key is nowhere in the lake, raw zone included (it only tokenises)', () => {
    for (const f of filesUnder(lakeDir)) expect(f.text.includes(secret), f.file).toBe(false);
  });

  it('no email, phone number or key on stdout or in the logs (stderr, trace level) of any step', () => {
    for (const [step, r] of Object.entries(runs)) {
      expect(leaks(r.stdout), `${step} stdout`).toEqual([]);
      expect(leaks(r.stderr), `${step} stderr`).toEqual([]);
    }
  });

  it("no email, phone number or key in the MLflow run: params, tags, artifacts and the logged model's files", async () => {
    const trained = JSON.parse(runs.train?.stdout ?? '{}') as { runId: string; modelId: string };
    const run = await mlflow.getRun(trained.runId);
    expect(leaks(JSON.stringify(run))).toEqual([]);
    const runArtifacts = await artifactsUnder(mlflow, run.info.artifact_uri);
    const model = await mlflow.getLoggedModel(trained.modelId);
    const modelArtifacts = await artifactsUnder(mlflow, model.info.artifact_uri);
    expect(leaks(JSON.stringify(model))).toEqual([]);
    // The run did log artifacts (holdout, transform, model files): the search covered real content.
    expect(runArtifacts.map((a) => a.file)).toEqual(expect.arrayContaining(['transform.json']));
    expect(modelArtifacts.map((a) => a.file)).toEqual(expect.arrayContaining(['MLmodel']));
    for (const a of [...runArtifacts, ...modelArtifacts]) expect(leaks(a.text), a.file).toEqual([]);
  });
});

import { type ChildProcess, spawn } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { hashPassword } from '../../serving/src/auth/credentials.js';
import { Rng } from '../../tasks/src/random.js';
import { ROOT, runCli, tempHome } from '../support/env.js';
import { eventually } from '../support/serving-model.js';

const PORT = 7051;
const BASE = `http://127.0.0.1:${PORT}`;
// A dataset no code has heard of: its name is new on every run, its columns are made up here.
const DATASET = `parcels_${Date.now().toString(36)}`;
const HOURS = ['00', '01', '02'];
const ROWS_PER_HOUR = 500;

const contract = `
dataset: ${DATASET}
version: 1
description: Parcels shipped by a courier; the target is a late delivery.
task: binary_classification
builder: columns
alert_threshold: 0.5
tables:
  - name: ${DATASET}_shipments
    files: [shipments.csv]
    key: parcel_ref
    columns:
      - { name: parcel_ref, type: string, role: id, nullable: false, on_anomaly: drop_row }
      - { name: recipient_email, type: string, role: pii, store_as: recipient_token, nullable: true, on_anomaly: coerce }
      - { name: shipped_at, type: timestamp, role: timestamp, nullable: false, on_anomaly: drop_row }
      - { name: weight_kg, type: number, role: feature, nullable: true, range: { min: 0, max: 500 }, on_anomaly: { default: null } }
      - { name: distance_km, type: number, role: feature, nullable: true, on_anomaly: coerce }
      - { name: stops, type: integer, role: feature, nullable: true, on_anomaly: coerce }
      - { name: carrier, type: string, role: feature, nullable: false, allowed: [swiftco, parcelpro, roadrunner], on_anomaly: drop_row }
      - { name: service, type: string, role: feature, nullable: true, on_anomaly: coerce }
      - { name: late, type: string, role: target, nullable: false, allowed: ['yes', 'no'], positive: 'yes', on_anomaly: drop_row }
`;

/** Lateness grows with distance and stops and depends on the carrier; weight is noise. */
function shipmentsCsv(rng: Rng, hour: string, offset: number): { csv: string; stray: number } {
  const carriers = ['swiftco', 'parcelpro', 'roadrunner'];
  const effect: Record<string, number> = { swiftco: -0.8, parcelpro: 0, roadrunner: 0.9 };
  const services = ['express', 'standard', 'economy', ''];
  const lines = ['parcel_ref,recipient_email,shipped_at,weight_kg,distance_km,stops,carrier,service,late'];
  let stray = 0;
  for (let i = 0; i < ROWS_PER_HOUR; i++) {
    const n = offset + i;
    const distance = 5 + rng.next() * 600;
    const stops = rng.int(0, 9);
    const carrier = carriers[rng.int(0, 3)] as string;
    const z = -2.2 + 0.005 * distance + 0.3 * stops + (effect[carrier] as number) + rng.normal(0, 0.4);
    const late = rng.next() < 1 / (1 + Math.exp(-z)) ? 'yes' : 'no';
    // Blanks and stray text in numeric columns, as real exports have them.
    let weight = (0.2 + rng.next() * 30).toFixed(2);
    if (i % 37 === 0) {
      weight = 'n/a';
      stray++;
    } else if (i % 41 === 0) weight = '';
    const stopsText = i % 53 === 0 ? ' ' : String(stops);
    const minute = String(i % 60).padStart(2, '0');
    lines.push(
      [
        `P${String(n).padStart(6, '0')}`,
        `person${n}@example.org`,
        `2026-11-01T${hour}:${minute}:00Z`,
        weight,
        distance.toFixed(1),
        stopsText,
        carrier,
        services[rng.int(0, 4)],
        late,
      ].join(','),
    );
  }
  return { csv: `${lines.join('\n')}\n`, stray };
}

/**
 * A dataset the code has never seen goes through the whole loop with a contract only: ingest →
 * snapshot → features → train → evaluate → promote with the built CLI against the real MLflow
 * server, then `driftwood serve` answers for it with request validation taken from its fields.
 */
describe('any dataset by contract: an unseen flat table end to end', () => {
  const home = tempHome('driftwood-anyds-');
  const contractsDir = path.join(home, 'contracts');
  let env: Record<string, string>;
  let server: ChildProcess | undefined;
  let serverLog = '';
  let strayCells = 0;

  const cli = async (args: string[]) => {
    const r = await runCli(args, env, home);
    if (r.code !== 0) throw new Error(`driftwood ${args.join(' ')} exited ${r.code}: ${r.stderr}`);
    return JSON.parse(r.stdout) as Record<string, unknown>;
  };

  beforeAll(() => {
    mkdirSync(contractsDir, { recursive: true });
    writeFileSync(path.join(contractsDir, `${DATASET}.yaml`), contract);
    const rng = new Rng(2026);
    HOURS.forEach((hr, k) => {
      const dir = path.join(home, 'lake', 'raw', DATASET, 'dt=2026-11-01', `hr=${hr}`);
      mkdirSync(dir, { recursive: true });
      const { csv, stray } = shipmentsCsv(rng, hr, k * ROWS_PER_HOUR);
      strayCells += stray;
      writeFileSync(path.join(dir, 'shipments.csv'), csv);
    });
    env = {
      DRIFTWOOD_HOME: home,
      DRIFTWOOD_CONTRACTS_DIR: contractsDir,
      MLFLOW_TRACKING_URI: inject('mlflowUri'),
      DRIFTWOOD_PII_KEY: 'anyds-key-0123456789abcdef',
    };
  });

  afterAll(() => {
    if (server && server.exitCode === null) server.kill('SIGKILL');
  });

  let snapshotId = '';

  it('ingests the table: blanks and stray text in numbers become nulls, no row lost', async () => {
    const r = await cli(['ingest', '--dataset', DATASET, '--until', '2026-11-01T03:00Z']);
    expect(r.loaded).toBe(3);
    expect(r.rowsRead).toBe(HOURS.length * ROWS_PER_HOUR);
    expect(r.rowsLoaded).toBe(HOURS.length * ROWS_PER_HOUR);
    expect(r.rowsCorrected as number).toBeGreaterThanOrEqual(strayCells);
    const again = await cli(['ingest', '--dataset', DATASET, '--until', '2026-11-01T03:00Z']);
    expect(again.loaded).toBe(0);
  });

  it('snapshots the rows by content, with the contract’s own columns and no PII', async () => {
    const r = await cli(['snapshot', '--dataset', DATASET, '--as-of', '2026-11-01T03:00Z']);
    snapshotId = r.id as string;
    const m = r.manifest as { rows: number; schema: { name: string }[]; builder: string };
    expect(m.builder).toBe('columns');
    expect(m.rows).toBe(HOURS.length * ROWS_PER_HOUR);
    expect(m.schema.map((c) => c.name)).toEqual([
      'parcel_ref',
      'label',
      'weight_kg',
      'distance_km',
      'stops',
      'carrier',
      'service',
    ]);
    // Only the first two hours as of 02:00: the snapshot is point in time.
    const earlier = await cli(['snapshot', '--dataset', DATASET, '--as-of', '2026-11-01T02:00Z']);
    expect((earlier.manifest as { rows: number }).rows).toBe(2 * ROWS_PER_HOUR);
    const same = await cli(['snapshot', '--dataset', DATASET, '--as-of', '2026-11-01T03:00Z']);
    expect(same.id).toBe(snapshotId);
  });

  it('writes the transformed features of the snapshot', async () => {
    const r = await cli(['features', '--dataset', DATASET, '--snapshot', snapshotId]);
    expect(r.id).toBe(snapshotId);
    expect(r.rows).toBe(HOURS.length * ROWS_PER_HOUR);
    expect(r.files).toContain(`features/${DATASET}/${snapshotId}/features.parquet`);
  });

  it('trains, evaluates and promotes a model registered under the dataset’s name', async () => {
    // A .env made for the churn dataset, as copying .env.example and uncommenting it gives: its
    // model name and experiment are churn's, and they must not rename this dataset's.
    const dotenv = path.join(home, '.env');
    writeFileSync(
      dotenv,
      'DRIFTWOOD_DATASET=churn\nDRIFTWOOD_MODEL_NAME=churn\nDRIFTWOOD_EXPERIMENT=driftwood-churn\n',
    );
    const run = await runCli(
      ['train', '--dataset', DATASET, '--snapshot', snapshotId, '--seed', '3'],
      env,
      home,
    );
    rmSync(dotenv);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stderr).toContain(
      `DRIFTWOOD_MODEL_NAME and DRIFTWOOD_EXPERIMENT are set for dataset churn (DRIFTWOOD_DATASET), not for ${DATASET}`,
    );
    const trained = JSON.parse(run.stdout) as Record<string, unknown>;
    expect(trained.modelName).toBe(DATASET);
    // Nothing of another dataset in its run, its experiment or its snapshot's manifest.
    const mlflow = inject('mlflowUri');
    const runInfo = (await (
      await fetch(`${mlflow}/api/2.0/mlflow/runs/get?run_id=${trained.runId}`)
    ).json()) as {
      run: { data: unknown };
    };
    const experiment = (await (
      await fetch(`${mlflow}/api/2.0/mlflow/experiments/get?experiment_id=${trained.experimentId}`)
    ).json()) as { experiment: { name: string } };
    expect(experiment.experiment.name).toBe(`driftwood-${DATASET}`);
    const manifest = await cli(['snapshot', '--dataset', DATASET, '--show', snapshotId]);
    expect(manifest.horizonHours).toBe(0);
    for (const [what, text] of [
      ['run', JSON.stringify(runInfo.run.data)],
      ['manifest', JSON.stringify(manifest)],
    ])
      expect(text, what).not.toMatch(/churn/i);
    expect((trained.metrics as { roc_auc: number }).roc_auc).toBeGreaterThan(0.7);
    const evaluation = await cli(['evaluate', '--dataset', DATASET]);
    const behaviour = evaluation.behaviour as { name: string; passed: boolean }[];
    expect(behaviour.map((b) => [b.name, b.passed])).toEqual([['invariant_to_id_and_pii', true]]);
    const segments = (evaluation.candidate as { segments: { segment: string }[] }).segments;
    expect(segments.map((s) => s.segment)).toEqual([
      'carrier=parcelpro',
      'carrier=roadrunner',
      'carrier=swiftco',
    ]);
    const promoted = await cli(['promote', '--dataset', DATASET]);
    expect(promoted.promoted).toBe(true);
    expect(promoted.version).toBe(trained.modelVersion);
  });

  it('serves it: predictions from the dataset’s fields, 400 naming a bad one', async () => {
    env = {
      ...env,
      DRIFTWOOD_MODEL_NAME: DATASET,
      DRIFTWOOD_API_PORT: String(PORT),
      DRIFTWOOD_API_CREDENTIALS: `shipper:predict:${await hashPassword('shipper-password-1', { N: 1024, r: 8, p: 1 })}`,
    };
    server = spawn('node', [path.join(ROOT, 'tasks', 'dist', 'cli.js'), 'serve'], {
      cwd: home,
      env: { ...process.env, LOG_LEVEL: 'warn', ...env },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    server.stderr?.on('data', (d) => {
      serverLog += d;
    });
    await eventually(async () => {
      const res = await fetch(`${BASE}/health/ready`).catch(() => undefined);
      return res?.status === 200 ? true : undefined;
    }, 60_000).catch((err) => {
      throw new Error(`the API did not become ready: ${err}\n${serverLog}`);
    });
    const auth = { authorization: `Basic ${Buffer.from('shipper:shipper-password-1').toString('base64')}` };
    const post = (body: unknown) =>
      fetch(`${BASE}/v1/predict`, {
        method: 'POST',
        headers: { ...auth, 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
    const far = await post({ distance_km: 590, stops: 8, carrier: 'roadrunner', service: 'economy' });
    const near = await post({
      distance_km: 10,
      stops: 0,
      carrier: 'swiftco',
      service: 'express',
      weight_kg: 2,
    });
    expect(far.status).toBe(200);
    const farBody = (await far.json()) as { probability: number; model: { name: string } };
    const nearBody = (await near.json()) as { probability: number };
    expect(farBody.model.name).toBe(DATASET);
    expect(farBody.probability).toBeGreaterThan(nearBody.probability);

    const bad = await post({ distance_km: 'far', carrier: 'swiftco', service: 'express' });
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { message: string }).message).toContain('distance_km');
    const unauthenticated = await fetch(`${BASE}/v1/predict`, { method: 'POST', body: '{}' });
    expect(unauthenticated.status).toBe(401);

    const model = (await (await fetch(`${BASE}/v1/model`, { headers: auth })).json()) as {
      name: string;
      inputs: { numeric: string[]; categorical: string[] };
    };
    expect(model.name).toBe(DATASET);
    expect(model.inputs.categorical).toEqual(['carrier', 'service']);
  });
});

import type { MlflowClient } from '../mlflow/client.js';
import { planTextRewrite, type Subject, scrubJson, textFormat } from './plan.js';
import { emptyPlace, type PlaceReport } from './report.js';

/**
 * Run artifacts that may hold rows of customers: a run's holdout (`evaluation/holdout.json`, ids
 * and features), evaluation evidence, and the training config of runs logged before it recorded
 * the snapshot by id (`config/train.json` then held the whole snapshot, rows and ids). Every text
 * artifact (JSON, JSON Lines, CSV) of every run and logged model of the experiments is read through
 * the tracking server's artifact proxy; one naming the customer is uploaded again without them.
 */
export async function forgetMlflowArtifacts(
  mlflow: MlflowClient,
  experiments: readonly string[],
  subject: Subject,
): Promise<PlaceReport & { reachable: boolean }> {
  const report = { ...emptyPlace(), reachable: true };
  for (const name of experiments) {
    let experimentId: string;
    try {
      const found = await mlflow.getExperimentByName(name);
      if (!found) continue;
      experimentId = found.experiment_id;
    } catch (err) {
      report.reachable = false;
      report.problems.push({
        file: `experiment ${name}`,
        problem: `MLflow not reachable, its artifacts were not checked: ${(err as Error).message}`,
        failed: true,
        retry: true,
      });
      continue;
    }
    const root = `mlflow-artifacts:/${experimentId}`;
    const walk = async (dir: string): Promise<void> => {
      let entries: Awaited<ReturnType<MlflowClient['listArtifacts']>>;
      try {
        entries = await mlflow.listArtifacts(root, dir);
      } catch (err) {
        report.problems.push({
          file: `${root}/${dir}`,
          problem: `not listed: ${(err as Error).message}`,
          failed: true,
        });
        return;
      }
      for (const e of entries) {
        const rel = [dir, e.path.split('/').at(-1) ?? e.path].filter((p) => p !== '').join('/');
        if (e.is_dir) {
          await walk(rel);
          continue;
        }
        const format = textFormat(rel);
        if (format === undefined || format === 'parquet') continue;
        report.filesScanned++;
        try {
          const text = (await mlflow.downloadArtifact(root, rel)).toString('utf8');
          if (!subject.mayBeIn(text)) continue;
          const legacy = legacyTrainConfig(rel, text, subject);
          const plan = legacy ?? planTextRewrite(rel, text, subject);
          if (!plan?.changed) continue;
          await mlflow.uploadArtifact(root, rel, plan.text);
          report.filesRewritten++;
          report.rowsRemoved += plan.removed;
          report.files.push(`${root}/${rel}`);
        } catch (err) {
          report.problems.push({
            file: `${root}/${rel}`,
            problem: `not rewritten: ${(err as Error).message}`,
            failed: true,
          });
        }
      }
    };
    await walk('');
  }
  return report;
}

/**
 * `config/train.json` of a run logged before the config named its snapshot by id: it held the
 * snapshot's manifest and rows. It becomes what newer runs record — the snapshot's id, data key and
 * lake — so no customer's rows stay in it, not only the erased one's.
 */
function legacyTrainConfig(
  rel: string,
  text: string,
  subject: Subject,
): { changed: true; text: string; removed: number } | undefined {
  if (!rel.endsWith('config/train.json')) return undefined;
  let config: Record<string, unknown>;
  try {
    config = JSON.parse(text) as Record<string, unknown>;
  } catch {
    return undefined;
  }
  const snapshot = config.snapshot as
    | { rows?: unknown[]; manifest?: { id?: string; dataKey?: string }; lakeUri?: string }
    | undefined;
  if (!snapshot || !Array.isArray(snapshot.rows)) return undefined;
  const removed = Math.max(1, snapshot.rows.filter((r) => subject.within(r)).length);
  const { value } = scrubJson(
    {
      ...config,
      snapshot: { id: snapshot.manifest?.id, dataKey: snapshot.manifest?.dataKey, lakeUri: snapshot.lakeUri },
    },
    subject,
  );
  return { changed: true, text: `${JSON.stringify(value, null, 2)}\n`, removed };
}

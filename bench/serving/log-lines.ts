import { createReadStream, existsSync, readdirSync } from 'node:fs';
import path from 'node:path';

/**
 * Lines in every `predictions.jsonl` under a prediction log folder, counted by newline bytes: the
 * bench compares it with the predictions its load generator saw answered.
 */
export async function countLogLines(dir: string): Promise<number> {
  if (!existsSync(dir)) return 0;
  let n = 0;
  const files = readdirSync(dir, { recursive: true, encoding: 'utf8' }).filter((f) =>
    f.endsWith('predictions.jsonl'),
  );
  for (const f of files)
    for await (const chunk of createReadStream(path.join(dir, f)) as AsyncIterable<Buffer>) {
      let at = chunk.indexOf(10);
      while (at !== -1) {
        n++;
        at = chunk.indexOf(10, at + 1);
      }
    }
  return n;
}

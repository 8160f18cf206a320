import { createInterface } from 'node:readline';
import type { Readable } from 'node:stream';
import { type RawRow, ReaderError, type RowSource } from './types.js';

/**
 * Opens a JSON Lines stream, one object per line, read line by line. The first object's keys are the
 * file's columns. A line that is not a JSON object is a row error naming its line, not a file error,
 * so one torn line does not cost the rest of the file.
 */
export async function readJsonLines(stream: Readable): Promise<RowSource> {
  const lines = createInterface({ input: stream, crlfDelay: Number.POSITIVE_INFINITY })[
    Symbol.asyncIterator
  ]();
  let lineNo = 0;
  const parse = (text: string): RawRow => {
    try {
      const v: unknown = JSON.parse(text);
      if (v === null || typeof v !== 'object' || Array.isArray(v))
        return { row: lineNo, error: 'expected a JSON object' };
      return { row: lineNo, values: v as Record<string, unknown> };
    } catch (err) {
      return { row: lineNo, error: `not JSON (${(err as Error).message})` };
    }
  };
  let first: RawRow | undefined;
  for (;;) {
    const next = await lines.next();
    if (next.done) break;
    lineNo++;
    if (next.value.trim() === '') continue;
    first = parse(next.value);
    break;
  }
  if (!first) throw new ReaderError('empty file: no JSON object', null);
  if (!first.values) throw new ReaderError(first.error ?? 'unreadable', first.row);
  const head = first;
  async function* rows(): AsyncGenerator<RawRow> {
    yield head;
    for (;;) {
      const next = await lines.next();
      if (next.done) return;
      lineNo++;
      if (next.value.trim() === '') continue;
      yield parse(next.value);
    }
  }
  return { columns: Object.keys(head.values ?? {}), textual: false, rows: rows() };
}

import type { Readable } from 'node:stream';
import { type RawRow, ReaderError, type RowSource, type TextBatch } from './types.js';

/**
 * Splits a stream of CSV text (RFC 4180: quotes, doubled quotes, CRLF) into records, chunk by chunk,
 * so memory holds one chunk and one record whatever the file size. Yields the records of each chunk
 * together (one await per chunk, not per record), each with the line it starts on. A line with no
 * quote is split natively (`String#split`); quoted records go through the character-level state
 * machine, whose state carries across chunks. A quote left open at the end of the file is an error
 * naming the line it opened on.
 */
export async function* csvRecordBatches(input: AsyncIterable<string | Buffer>): AsyncGenerator<TextBatch> {
  let field = '';
  let record: string[] = [];
  let inQuotes = false;
  let quoteClosed = false;
  let line = 1;
  let recordLine = 1;
  let pendingCr = false;
  for await (const chunk of input) {
    const text = typeof chunk === 'string' ? chunk : chunk.toString('utf8');
    const lines: number[] = [];
    const records: string[][] = [];
    let start = 0;
    const n = text.length;
    let i = 0;
    // Next quote / CR at or after i (n when none): found once per occurrence, so no line rescans the chunk.
    let nextQuote = -1;
    let nextCr = -1;
    while (i < n) {
      if (i === start && !inQuotes && !quoteClosed && !pendingCr && field === '' && record.length === 0) {
        const nl = text.indexOf('\n', i);
        if (nl >= 0) {
          const end = nl > i && text.charCodeAt(nl - 1) === 13 ? nl - 1 : nl;
          if (nextQuote < i) {
            nextQuote = text.indexOf('"', i);
            if (nextQuote < 0) nextQuote = n;
          }
          if (nextCr < i) {
            nextCr = text.indexOf('\r', i);
            if (nextCr < 0) nextCr = n;
          }
          if (nextQuote > nl && nextCr >= end) {
            lines.push(recordLine);
            records.push(text.slice(i, end).split(','));
            line++;
            recordLine = line;
            i = nl + 1;
            start = i;
            continue;
          }
        }
      }
      const c = text.charCodeAt(i);
      if (pendingCr) {
        pendingCr = false;
        if (c === 10) {
          i++;
          start = i;
          continue;
        }
      }
      if (inQuotes) {
        if (c === 34) {
          field += text.slice(start, i);
          if (i + 1 < n) {
            if (text.charCodeAt(i + 1) === 34) {
              field += '"';
              i += 2;
              start = i;
              continue;
            }
            inQuotes = false;
            i++;
            start = i;
            continue;
          }
          // The quote is the last char of the chunk: decide with the next chunk.
          inQuotes = false;
          quoteClosed = true;
          i++;
          start = i;
          continue;
        }
        if (c === 10) line++;
        i++;
        continue;
      }
      if (quoteClosed) {
        quoteClosed = false;
        if (c === 34 && i === 0) {
          // A doubled quote split across chunks.
          field += '"';
          inQuotes = true;
          i++;
          start = i;
          continue;
        }
      }
      if (c === 34) {
        field += text.slice(start, i);
        inQuotes = true;
        i++;
        start = i;
      } else if (c === 44) {
        record.push(field + text.slice(start, i));
        field = '';
        i++;
        start = i;
      } else if (c === 10 || c === 13) {
        record.push(field + text.slice(start, i));
        field = '';
        lines.push(recordLine);
        records.push(record);
        record = [];
        line++;
        recordLine = line;
        if (c === 13) {
          if (i + 1 < n) {
            if (text.charCodeAt(i + 1) === 10) i++;
          } else pendingCr = true;
        }
        i++;
        start = i;
      } else i++;
    }
    field += text.slice(start, n);
    if (records.length > 0) yield { lines, records };
  }
  if (inQuotes) throw new ReaderError('unterminated quoted field', recordLine);
  if (field !== '' || record.length > 0) {
    record.push(field);
    yield { lines: [recordLine], records: [record] };
  }
}

/** The records one by one, as [line the record starts on, fields]. */
export async function* csvRecords(input: AsyncIterable<string | Buffer>): AsyncGenerator<[number, string[]]> {
  for await (const b of csvRecordBatches(input))
    for (let k = 0; k < b.records.length; k++) yield [b.lines[k] as number, b.records[k] as string[]];
}

const isBlank = (fields: readonly string[]): boolean => fields.length === 1 && fields[0] === '';

/**
 * Opens a CSV stream: the first record is the header; blank lines are skipped. The rows can be read
 * one by one (`rows`) or, without a record object per row, chunk by chunk (`textBatches`); a file
 * is read through one of the two.
 */
export async function readCsv(stream: Readable): Promise<RowSource> {
  stream.setEncoding('utf8');
  const batches = csvRecordBatches(stream);
  let first: TextBatch | undefined;
  for (;;) {
    const next = await batches.next();
    if (next.done) throw new ReaderError('empty file: no header line', null);
    if (next.value.records.length > 0) {
      first = next.value;
      break;
    }
  }
  const header = (first.records[0] as string[]).map((h) => h.trim());
  if (header.length === 0 || header.every((h) => h === '')) throw new ReaderError('empty header line', 1);
  const head: TextBatch = { lines: first.lines.slice(1), records: first.records.slice(1) };

  async function* textBatches(): AsyncGenerator<TextBatch> {
    try {
      for (let b: TextBatch | undefined = head; b; ) {
        const lines: number[] = [];
        const records: string[][] = [];
        for (let k = 0; k < b.records.length; k++) {
          const fields = b.records[k] as string[];
          if (isBlank(fields)) continue;
          lines.push(b.lines[k] as number);
          records.push(fields);
        }
        if (records.length > 0) yield { lines, records };
        const next = await batches.next();
        b = next.done ? undefined : next.value;
      }
    } finally {
      // A reader that stops early (a rejected file) closes the stream: no open file or connection.
      await batches.return(undefined);
    }
  }
  async function* rows(): AsyncGenerator<RawRow> {
    for await (const b of textBatches())
      for (let k = 0; k < b.records.length; k++)
        yield csvRow(header, b.lines[k] as number, b.records[k] as string[]);
  }
  return { columns: header, textual: true, rows: rows(), textBatches: textBatches() };
}

/** One CSV record as a row keyed by the header, or the error of a record with the wrong field count. */
export function csvRow(header: readonly string[], row: number, fields: readonly string[]): RawRow {
  if (fields.length !== header.length)
    return { row, error: `expected ${header.length} fields, got ${fields.length}` };
  const values: Record<string, unknown> = {};
  for (let j = 0; j < header.length; j++) values[header[j] as string] = fields[j];
  return { row, values };
}

/**
 * A request row's features as JSON text, cut from the body the client sent rather than serialised
 * again from the parsed row: number text is copied, not parsed and re-printed, which is most of the
 * cost of a log line. Only for bodies the body parser has accepted (valid JSON) and that hold no
 * backslash: then every string is delimited by the next quote, which lets native `indexOf` skip
 * strings and find keys. Anything else (an escape, a line break, a nested value) is refused with
 * undefined, and the caller serialises the parsed row instead.
 */

/** The features' JSON text without the id column's member (`customer_id`), and that member's value. */
export interface RowText {
  features: string;
  /** The last id member's string value (as JSON.parse keeps the last), null if not a string. */
  customerId: string | null | undefined;
}

/** The id column of a row unless the dataset names another (`training.id_column`). */
export const DEFAULT_ID_COLUMN = 'customer_id';
const QUOTE = 0x22;
const COMMA = 0x2c;
const COLON = 0x3a;
const OPEN_OBJECT = 0x7b;
const CLOSE_OBJECT = 0x7d;
const OPEN_ARRAY = 0x5b;
const CLOSE_ARRAY = 0x5d;

const isSpace = (c: number) => c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09;
/** Whether a body can be cut by the functions here: no escapes, and one line. */
export const cuttable = (body: string) =>
  !body.includes('\\') && !body.includes('\n') && !body.includes('\r');

/** The text between two members with its separating commas and spaces trimmed from both ends. */
function inner(text: string, from: number, to: number): string {
  while (from < to && (isSpace(text.charCodeAt(from)) || text.charCodeAt(from) === COMMA)) from++;
  while (to > from && (isSpace(text.charCodeAt(to - 1)) || text.charCodeAt(to - 1) === COMMA)) to--;
  return text.slice(from, to);
}

/**
 * One row of a `cuttable` body, from its `{` to its `}` (a slice of the body, so that searches stop
 * at its end). Undefined for a row with a nested object or array: a request row is flat, and the
 * general path handles the rest.
 */
export function rowText(text: string, idColumn: string = DEFAULT_ID_COLUMN): RowText | undefined {
  const KEY = JSON.stringify(idColumn);
  const end = text.length;
  if (text.indexOf('{', 1) !== -1 || text.includes('[')) return undefined;
  let at = text.indexOf(KEY);
  if (at === -1) return { features: text, customerId: undefined };
  const kept: string[] = [];
  let customerId: string | null | undefined;
  let cursor = 1;
  while (at !== -1) {
    let before = at - 1;
    while (isSpace(text.charCodeAt(before))) before--;
    let colon = at + KEY.length;
    while (isSpace(text.charCodeAt(colon))) colon++;
    const b = text.charCodeAt(before);
    // Without escapes a quote always opens or closes a string, so `"customer_id"` after `{` or `,`
    // and before `:` is a key of this (flat) row, never part of a value.
    if ((b === OPEN_OBJECT || b === COMMA) && text.charCodeAt(colon) === COLON) {
      let value = colon + 1;
      while (isSpace(text.charCodeAt(value))) value++;
      let valueEnd: number;
      if (text.charCodeAt(value) === QUOTE) {
        valueEnd = text.indexOf('"', value + 1) + 1;
        customerId = text.slice(value + 1, valueEnd - 1);
      } else {
        valueEnd = value;
        while (valueEnd < end) {
          const c = text.charCodeAt(valueEnd);
          if (c === COMMA || c === CLOSE_OBJECT || isSpace(c)) break;
          valueEnd++;
        }
        customerId = null;
      }
      kept.push(inner(text, cursor, at));
      cursor = valueEnd;
      at = text.indexOf(KEY, valueEnd);
    } else at = text.indexOf(KEY, at + KEY.length);
  }
  kept.push(inner(text, cursor, end - 1));
  let features = '';
  for (const k of kept) if (k !== '') features += features === '' ? k : `,${k}`;
  return { features: `{${features}}`, customerId };
}

/** The single row of a `cuttable` body, from its `{` to its `}`. */
export function bodyRow(text: string): string | undefined {
  const start = text.indexOf('{');
  const end = text.lastIndexOf('}') + 1;
  if (start === -1 || end <= start) return undefined;
  return start === 0 && end === text.length ? text : text.slice(start, end);
}

/**
 * The rows of a `cuttable` batch body `{"rows": [{…}, …]}`: start and end of each, in order (the
 * last `rows` member's, as JSON.parse keeps the last). Strings are skipped with `indexOf`, so the
 * loop visits only the characters between them.
 */
export function batchRows(text: string): number[] | undefined {
  let depth = 0;
  let expectKey = false;
  let key = '';
  let rows: number[] | undefined;
  let rowsDepth = -1;
  let rowStart = -1;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === QUOTE) {
      const close = text.indexOf('"', i + 1);
      if (close === -1) return undefined;
      if (depth === 1 && expectKey) key = text.slice(i + 1, close);
      i = close;
    } else if (c === OPEN_OBJECT) {
      depth++;
      if (depth === 1) expectKey = true;
      else if (depth === rowsDepth + 1) rowStart = i;
    } else if (c === CLOSE_OBJECT) {
      if (depth === rowsDepth + 1 && rowStart >= 0) {
        rows?.push(rowStart, i + 1);
        rowStart = -1;
      }
      depth--;
    } else if (c === OPEN_ARRAY) {
      depth++;
      if (depth === 2 && key === 'rows') {
        rows = [];
        rowsDepth = 2;
      }
    } else if (c === CLOSE_ARRAY) {
      if (depth === rowsDepth) rowsDepth = -1;
      depth--;
    } else if (depth === 1 && c === COLON) expectKey = false;
    else if (depth === 1 && c === COMMA) expectKey = true;
  }
  return rows;
}

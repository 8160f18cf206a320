/**
 * Help for one command and "did you mean" for typos, both read from the CLI's usage text so that
 * there is one description of every command and flag.
 */

/** The usage lines of `command`: its line in the command list and the indented lines under it. */
export function commandUsage(usage: string, command: string): string | undefined {
  const lines = usage.split('\n');
  const start = lines.findIndex((l) => new RegExp(`^ {2}${command}(\\s|$)`).test(l));
  if (start < 0) return undefined;
  let end = start + 1;
  while (end < lines.length && /^ {4,}\S/.test(lines[end] as string)) end++;
  return [`driftwood ${command} [options]`, '', ...lines.slice(start, end)].join('\n');
}

/** Edit distance (insertions, deletions, substitutions, swaps of neighbours) between two short strings. */
function distance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) =>
    Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)),
  );
  const at = (i: number, j: number) => (d[i] as number[])[j] as number;
  for (let i = 1; i <= a.length; i++)
    for (let j = 1; j <= b.length; j++) {
      let v = Math.min(
        at(i - 1, j) + 1,
        at(i, j - 1) + 1,
        at(i - 1, j - 1) + (a[i - 1] === b[j - 1] ? 0 : 1),
      );
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1])
        v = Math.min(v, at(i - 2, j - 2) + 1);
      (d[i] as number[])[j] = v;
    }
  return at(a.length, b.length);
}

/** The closest candidate when it is close enough to be a typo (or `input` is its prefix). */
export function didYouMean(input: string, candidates: readonly string[]): string | undefined {
  const wanted = input.toLowerCase();
  let best: { name: string; d: number } | undefined;
  for (const name of candidates) {
    const d = name.startsWith(wanted) && wanted.length >= 2 ? 0 : distance(wanted, name.toLowerCase());
    if (best === undefined || d < best.d) best = { name, d };
  }
  const limit = Math.max(1, Math.floor(wanted.length / 3));
  return best !== undefined && best.d <= limit ? best.name : undefined;
}

/** The option a parseArgs "unknown option" error names (`--lable` in "Unknown option '--lable'"). */
export function unknownOptionOf(message: string): string | undefined {
  return /Unknown option '--([^'=]+)'/.exec(message)?.[1];
}

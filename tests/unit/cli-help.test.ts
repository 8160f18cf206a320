import { describe, expect, it } from 'vitest';
import { didYouMean } from '../../tasks/src/cli-help.js';
import { runCli } from '../support/env.js';

describe('the CLI explains itself', () => {
  it('prints one command’s flags for `<command> --help` and `help <command>`', async () => {
    for (const args of [
      ['train', '--help'],
      ['help', 'train'],
      ['train', '-h'],
    ]) {
      const run = await runCli(args, {});
      expect(run.code, args.join(' ')).toBe(0);
      expect(run.stdout).toMatch(/^driftwood train \[options\]/);
      expect(run.stdout).toContain('--learning-rate');
      // Only train's lines, not the whole command list.
      expect(run.stdout).not.toContain('simulate');
    }
  });

  it('suggests the command or flag a typo meant, and exits 2', async () => {
    const command = await runCli(['trian'], {});
    expect(command.code).toBe(2);
    expect(command.stderr).toContain("unknown command 'trian' (did you mean 'train'?)");
    const flag = await runCli(['train', '--seeed', '3'], {});
    expect(flag.code).toBe(2);
    expect(flag.stderr).toContain("(did you mean '--seed'?)");
    expect(flag.stderr).toContain("see 'driftwood train --help'");
    const help = await runCli(['help', 'promte'], {});
    expect(help.code).toBe(2);
    expect(help.stderr).toContain("did you mean 'promote'?");
  });

  it('suggests only near names', () => {
    expect(didYouMean('snapshto', ['snapshot', 'simulate'])).toBe('snapshot');
    expect(didYouMean('ev', ['evaluate', 'extract'])).toBe('evaluate');
    expect(didYouMean('deploy', ['train', 'promote', 'serve'])).toBeUndefined();
  });
});

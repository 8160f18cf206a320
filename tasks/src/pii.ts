import { createHmac } from 'node:crypto';
import { DriftwoodError } from './errors.js';

/**
 * Tokenises a PII value with a keyed HMAC: the same value gives the same token (joins still work),
 * but the value cannot be recovered without the key, which never leaves the platform's secrets.
 */
export function tokenise(value: string, key: string | undefined): string {
  if (!key) {
    throw new DriftwoodError(
      'CONFIG_INVALID',
      'setting DRIFTWOOD_PII_KEY (or DRIFTWOOD_PII_KEY_FILE): expected a secret of 16+ characters to tokenise PII, got nothing',
    );
  }
  return createHmac('sha256', key).update(value.trim().toLowerCase()).digest('hex').slice(0, 32);
}

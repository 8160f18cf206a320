import { hashPassword } from '../auth/credentials.js';

/**
 * Prints an scrypt hash for a password read from stdin, for a `user:role:hash` credentials line:
 *   printf '%s' "$PASSWORD" | node serving/dist/bin/hash-password.js
 */
const chunks: Buffer[] = [];
for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
const password = Buffer.concat(chunks)
  .toString('utf8')
  .replace(/\r?\n$/, '');
if (password.length < 12) {
  process.stderr.write('hash-password: give a password of at least 12 characters on stdin\n');
  process.exitCode = 2;
} else {
  process.stdout.write(`${await hashPassword(password)}\n`);
}

/**
 * The ceiling: a Fastify route that parses the same JSON body and returns a constant prediction,
 * with no auth, validation, model or logging. Run as its own process by run.ts.
 *
 *   node constant-server.js <port> [workers]
 *
 * With workers > 1 this process is a node:cluster primary: it forks that many workers, which share
 * the port, prints `ready` once all of them listen, and on SIGTERM stops them and exits. Scheduling
 * is Node's default, as in `driftwood serve` with DRIFTWOOD_API_WORKERS > 1 (on Linux the primary
 * accepts connections and hands them out round robin). The workers stay in the primary's process
 * group, so run.ts's CPU sampling and its kill of the group cover them.
 */
import cluster from 'node:cluster';
import Fastify from 'fastify';

const port = Number(process.argv[2] ?? 7252);
const workers = Number(process.argv[3] ?? 1);

if (cluster.isPrimary && workers > 1) {
  let listening = 0;
  let alive = workers;
  let stopping = false;
  cluster.on('listening', () => {
    if (++listening === workers) process.stdout.write('ready\n');
  });
  cluster.on('exit', (worker, code, signal) => {
    // A lost worker would leave a smaller cluster measured under the same name: fail instead.
    if (!stopping) {
      process.stderr.write(`worker ${worker.process.pid} exited (${signal ?? code})\n`);
      process.exit(1);
    }
    if (--alive === 0) process.exit(0);
  });
  process.on('SIGTERM', () => {
    stopping = true;
    for (const w of Object.values(cluster.workers ?? {})) w?.process.kill('SIGTERM');
  });
  for (let i = 0; i < workers; i++) cluster.fork();
} else {
  const app = Fastify({ logger: false });
  app.post('/v1/predict', async () => ({
    probability: 0.5,
    label: 1,
    model: { name: 'constant', version: '0', alias: 'none' },
  }));
  app.get('/health', async () => ({ status: 'ok' }));
  await app.listen({ host: '127.0.0.1', port });
  if (cluster.isPrimary) process.stdout.write('ready\n');
  process.on('SIGTERM', () => void app.close().then(() => process.exit(0)));
}

/**
 * The ceiling: a Fastify route that parses the same JSON body and returns a constant prediction,
 * with no auth, validation, model or logging. Run as its own process by run.ts.
 */
import Fastify from 'fastify';

const app = Fastify({ logger: false });
app.post('/v1/predict', async () => ({
  probability: 0.5,
  label: 1,
  model: { name: 'constant', version: '0', alias: 'none' },
}));
app.get('/health', async () => ({ status: 'ok' }));
const port = Number(process.argv[2] ?? 7252);
await app.listen({ host: '127.0.0.1', port });
process.stdout.write('ready\n');
process.on('SIGTERM', () => void app.close().then(() => process.exit(0)));

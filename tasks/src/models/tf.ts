import * as tf from '@tensorflow/tfjs';
import type { Logger } from '../log.js';

export { tf };

let ready: Promise<string> | undefined;

/**
 * Picks the fastest TF.js backend that is installed: the native `tfjs-node` (an optional dependency,
 * since its install downloads libtensorflow) or else WebAssembly. Logs which one runs.
 */
export function initTf(log?: Logger): Promise<string> {
  ready ??= (async () => {
    if (process.env.DRIFTWOOD_TF_BACKEND !== 'wasm') {
      try {
        await import('@tensorflow/tfjs-node');
        if (await tf.setBackend('tensorflow')) {
          log?.info({ backend: 'tensorflow' }, 'tfjs: using the native backend');
          return 'tensorflow';
        }
      } catch {
        // Not installed here (its install step needs to download libtensorflow): fall back to wasm.
      }
    }
    await import('@tensorflow/tfjs-backend-wasm');
    await tf.setBackend('wasm');
    await tf.ready();
    log?.info(
      { backend: 'wasm' },
      'tfjs: using the WebAssembly backend (@tensorflow/tfjs-node is not installed)',
    );
    return 'wasm';
  })();
  return ready;
}

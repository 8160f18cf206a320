import { empty, section } from '../dom.js';
import type { Page } from '../main.js';

export const renderForecast: Page = async (main) => {
  main.append(
    section(
      'BTC forecast',
      empty(
        'No forecast model exists yet: the BTC use case is not built, so there is no series, forecast or persistence baseline to show. This page fills in once a forecast model is registered.',
      ),
    ),
  );
};

/**
 * The one way the front end talks to the server extension: Jupyter's own
 * `ServerConnection`, which adds the token and the XSRF header.
 */

import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';

export const NAMESPACE = 'ollama-nb';

export async function requestAPI(
  path: string,
  init: { method?: string; body?: string } = {}
): Promise<unknown> {
  const settings = ServerConnection.makeSettings();
  const url = URLExt.join(settings.baseUrl, NAMESPACE, path);
  let response: Response;
  try {
    response = await ServerConnection.makeRequest(url, init, settings);
  } catch (error) {
    throw new Error(`The Jupyter server did not answer (${String(error)}).`);
  }
  const text = await response.text();
  let data: unknown = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    throw new Error(`The Jupyter server answered ${response.status} with something that is not JSON.`);
  }
  if (!response.ok) {
    const message =
      data && typeof data === 'object' && 'error' in data && typeof data.error === 'string'
        ? data.error
        : `HTTP ${response.status}`;
    throw new Error(message);
  }
  return data;
}

/**
 * Remote mode (GROWTHBOOK_API_HOST and GROWTHBOOK_CLIENT_KEY set): the payload comes from a
 * GrowthBook server's SDK endpoint, `GET ${host}/api/features/${clientKey}`, fetched at start and
 * every `intervalMs`. An unreachable server, a non-200 answer or a malformed payload leaves the last
 * good payload in force (logged); the next period tries again.
 */
import { validatePayload, type FeaturePayload } from './payload';
import type { FlagService } from './service';

export interface RemoteOptions {
  /** GrowthBook API host, e.g. `https://cdn.growthbook.io` (no trailing slash needed). */
  apiHost: string;
  /** SDK connection client key, e.g. `sdk-abc123`. */
  clientKey: string;
  /** Refresh period in ms. Default 30,000. */
  intervalMs?: number;
  /** Per-request timeout in ms. Default 5,000. */
  timeoutMs?: number;
  warn?: (msg: string, fields?: Record<string, unknown>) => void;
  info?: (msg: string, fields?: Record<string, unknown>) => void;
}

/** The SDK endpoint of a host and client key. */
export function featuresUrl(apiHost: string, clientKey: string): string {
  return `${apiHost.replace(/\/+$/, '')}/api/features/${encodeURIComponent(clientKey)}`;
}

/** One fetch of the remote payload, validated. Throws (unreachable, HTTP status, PayloadError). */
export async function fetchRemotePayload(
  apiHost: string,
  clientKey: string,
  timeoutMs = 5000,
): Promise<{ payload: FeaturePayload; warnings: string[] }> {
  const url = featuresUrl(apiHost, clientKey);
  const res = await fetch(url, {
    signal: AbortSignal.timeout(timeoutMs),
    headers: { accept: 'application/json' },
  });
  const text = await res.text();
  if (!res.ok)
    throw new Error(`GrowthBook answered HTTP ${res.status} for ${featuresUrl(apiHost, '<client key>')}`);
  return validatePayload(text, `GrowthBook ${apiHost}`);
}

/** Keeps a FlagService on the remote payload. */
export class RemotePoller {
  private timer: NodeJS.Timeout | null = null;
  private polling: Promise<boolean> | null = null;
  private accepted = 0;
  private lastText: string | null = null;
  /** Consecutive failed refreshes (0 when the last one succeeded). */
  failures = 0;

  constructor(
    private readonly service: FlagService,
    private readonly opts: RemoteOptions,
  ) {
    this.accepted = service.payload.origin === 'remote' ? service.payload.version : 0;
  }

  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => void this.refresh(), this.opts.intervalMs ?? 30_000);
    this.timer.unref();
  }

  /** One refresh; true when a payload (new or unchanged) was fetched and valid. Never throws. */
  refresh(): Promise<boolean> {
    this.polling ??= this.doRefresh().finally(() => (this.polling = null));
    return this.polling;
  }

  async close(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.polling;
  }

  private async doRefresh(): Promise<boolean> {
    try {
      const { payload, warnings } = await fetchRemotePayload(
        this.opts.apiHost,
        this.opts.clientKey,
        this.opts.timeoutMs,
      );
      this.failures = 0;
      const text = JSON.stringify(payload);
      if (text === this.lastText && this.service.payload.origin === 'remote') return true;
      this.service.apply(payload, { origin: 'remote', version: ++this.accepted });
      this.lastText = text;
      this.opts.info?.('remote features payload applied', { version: this.accepted });
      for (const w of warnings) this.opts.warn?.(w);
      return true;
    } catch (err) {
      this.failures++;
      this.opts.warn?.('remote features refresh failed; the last good payload stays in force', {
        error: (err as Error).message,
        failures: this.failures,
        inForce: this.service.payload,
      });
      return false;
    }
  }
}

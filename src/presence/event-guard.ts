import { EVENT_BURST, EVENTS_PER_SECOND, MAX_EVENT_BYTES } from './presence.constants';

/** A token bucket: `capacity` events at once, refilled continuously at `perSecond`. */
export class TokenBucket {
  private tokens: number;
  private updatedAt: number;

  constructor(
    private readonly capacity: number = EVENT_BURST,
    private readonly perSecond: number = EVENTS_PER_SECOND,
    private readonly now: () => number = Date.now,
  ) {
    this.tokens = capacity;
    this.updatedAt = now();
  }

  take(): boolean {
    const now = this.now();
    this.tokens = Math.min(this.capacity, this.tokens + ((now - this.updatedAt) / 1000) * this.perSecond);
    this.updatedAt = now;
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }
}

export type EventCheck = { ok: true } | { ok: false; error: string };

/**
 * Whether a client event (its name and arguments, the ack callback already removed) may reach a handler: one
 * of the `known` events (those some gateway handles) and at most MAX_EVENT_BYTES. Its payload's shape is its
 * handler's `@MessageBody({ schema })`. Size is measured as JSON, which is what the socket.io parser received
 * for non-binary packets.
 */
export function checkClientEvent(event: unknown, args: readonly unknown[], known: ReadonlySet<string>): EventCheck {
  if (typeof event !== 'string' || !known.has(event)) return { ok: false, error: 'unknown event' };
  let size: number;
  try {
    size = Buffer.byteLength(JSON.stringify(args) ?? '');
  } catch {
    return { ok: false, error: 'payload is not serializable' };
  }
  if (size > MAX_EVENT_BYTES) return { ok: false, error: `payload too large (${size} bytes, at most ${MAX_EVENT_BYTES})` };
  return { ok: true };
}

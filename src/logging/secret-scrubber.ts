export const REDACTED = '[Redacted]';

/**
 * Shorter values cannot be scrubbed (replacing a word like "true" everywhere would corrupt the JSON lines), so
 * they are refused: loadConfig refuses such secrets at boot, and a short one reaching here is a bug, not a skip.
 */
export const MIN_SCRUBBED_SECRET_LENGTH = 8;

/**
 * A last line of defence over every serialized log line: replaces the literal values of known secrets
 * (as written, URL-encoded as in REDIS_URL, and JSON-escaped as in a JSON line) wherever they appear,
 * for instance inside a driver's error message. Undefined when there is nothing to scrub.
 */
export function secretScrubber(secrets: ReadonlyArray<string | undefined>): ((line: string) => string) | undefined {
  const forms = new Set<string>();
  for (const secret of secrets) {
    if (!secret) continue;
    if (secret.length < MIN_SCRUBBED_SECRET_LENGTH) {
      throw new Error(`a secret of ${secret.length} characters cannot be scrubbed from logs (at least ${MIN_SCRUBBED_SECRET_LENGTH}); loadConfig should have refused it`);
    }
    forms.add(secret);
    forms.add(encodeURIComponent(secret));
    forms.add(JSON.stringify(secret).slice(1, -1));
  }
  if (forms.size === 0) return undefined;
  // Longest first, so a form that contains another is replaced whole.
  const ordered = [...forms].sort((a, b) => b.length - a.length);
  return (line) => ordered.reduce((scrubbed, form) => (scrubbed.includes(form) ? scrubbed.replaceAll(form, REDACTED) : scrubbed), line);
}

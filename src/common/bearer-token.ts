import { createHash, timingSafeEqual } from 'node:crypto';

/**
 * Whether an Authorization header is `Bearer <one of tokens>`. Compared as digests, so the comparison takes the
 * same time whatever was sent. Unset tokens are skipped; with none set, nothing matches.
 */
export function bearerTokenMatcher(tokens: ReadonlyArray<string | undefined>): (authorization: string | undefined) => boolean {
  const expected = tokens.filter((token): token is string => token !== undefined).map((token) => digest(`Bearer ${token}`));
  return (authorization) => {
    const sent = digest(authorization ?? '');
    // Every candidate is compared, so the time does not tell which one matched.
    return expected.reduce((matched, candidate) => timingSafeEqual(sent, candidate) || matched, false);
  };
}

function digest(value: string): Buffer {
  return createHash('sha256').update(value).digest();
}

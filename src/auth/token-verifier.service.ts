import { Injectable, UnauthorizedException } from '@nestjs/common';
import { JwtService } from '@nestjs/jwt';
import { AppConfig } from '../config';
import type { Principal } from './principal';

interface Claims {
  sub?: unknown;
  tenant?: unknown;
  exp?: unknown;
  iat?: unknown;
}

/** Longest `sub` and `tenant`: they become room names, cache keys and log fields. */
export const MAX_CLAIM_LENGTH = 128;
/**
 * How far the issuer's clock may be from ours: an `exp` or `nbf` this much past, or an `iat` this much ahead,
 * still passes. Small, because it extends every token's life.
 */
export const CLOCK_SKEW_SECONDS = 30;

/**
 * A lone UTF-16 surrogate (with the `u` flag a paired one is a single code point, not Cs), which makes
 * encodeURIComponent throw and cannot be written as UTF-8; or a C0 control or DEL, which rewrite log lines.
 */
// eslint-disable-next-line no-control-regex
const MALFORMED = /[\p{Cs}\u0000-\u001f\u007f]/u;

/** The one verifier of access tokens, shared by the HTTP guard and the Socket.io handshake. */
@Injectable()
export class TokenVerifier {
  private readonly maxAgeSeconds: number;

  constructor(
    private readonly jwt: JwtService,
    config: AppConfig,
  ) {
    this.maxAgeSeconds = config.jwt.maxAgeSeconds;
  }

  /** Verifies `Authorization: Bearer <JWT>`; throws UnauthorizedException saying what is wrong. */
  verifyAuthorizationHeader(header: string | undefined): Principal {
    if (!header) throw new UnauthorizedException('Missing Authorization header: send "Authorization: Bearer <token>"');
    const match = /^Bearer\s+(\S+)$/i.exec(header.trim());
    if (!match) throw new UnauthorizedException('Authorization header must be "Bearer <token>"');
    return this.verify(match[1]);
  }

  /**
   * A signature proves who issued the token, not that its claims are sane: an identity provider that truncates a
   * name can sign a lone surrogate, and a misconfigured one a token that never expires. Every claim we use is checked.
   */
  verify(token: string | undefined): Principal {
    if (!token) throw new UnauthorizedException('Missing access token');
    let claims: Claims;
    try {
      claims = this.jwt.verify<Claims & object>(token, { algorithms: ['HS256'], clockTolerance: CLOCK_SKEW_SECONDS });
    } catch (error) {
      const expired = error instanceof Error && error.name === 'TokenExpiredError';
      throw new UnauthorizedException(expired ? 'Access token expired' : 'Invalid access token');
    }
    this.checkLifetime(claims);
    const userId = claimValue(claims.sub);
    const tenantId = claimValue(claims.tenant);
    if (userId === undefined || tenantId === undefined) {
      throw new UnauthorizedException(
        `Access token must carry "sub" (user) and "tenant" (pharmacy) claims: strings of 1 to ${MAX_CLAIM_LENGTH} characters, well-formed Unicode without control characters`,
      );
    }
    return { userId, tenantId };
  }

  private checkLifetime({ exp, iat }: Claims): void {
    const now = Date.now() / 1000;
    // jsonwebtoken has already refused an `exp` in the past; it accepts a missing one, and any in the future.
    if (typeof exp !== 'number' || !Number.isFinite(exp)) throw new UnauthorizedException('Access token must carry an "exp" (expiry) claim');
    if (exp > now + this.maxAgeSeconds + CLOCK_SKEW_SECONDS) {
      throw new UnauthorizedException(`Access token lives too long: "exp" may be at most ${this.maxAgeSeconds} s (JWT_MAX_AGE_SECONDS) from now`);
    }
    if (iat === undefined) return;
    if (typeof iat !== 'number' || !Number.isFinite(iat)) throw new UnauthorizedException('Access token has an invalid "iat" claim');
    if (iat > now + CLOCK_SKEW_SECONDS) throw new UnauthorizedException('Access token is issued in the future ("iat")');
    if (exp - iat > this.maxAgeSeconds) {
      throw new UnauthorizedException(`Access token lives too long: "exp" - "iat" may be at most ${this.maxAgeSeconds} s (JWT_MAX_AGE_SECONDS)`);
    }
  }
}

function claimValue(value: unknown): string | undefined {
  if (typeof value !== 'string' || value.length === 0 || value.length > MAX_CLAIM_LENGTH) return undefined;
  if (MALFORMED.test(value)) return undefined;
  return value;
}

import { Injectable, UnauthorizedException } from '@nestjs/common';
import { JwtService } from '@nestjs/jwt';
import type { Principal } from './principal';

interface Claims {
  sub?: unknown;
  tenant?: unknown;
}

/** The one verifier of access tokens, shared by the HTTP guard and the Socket.io handshake. */
@Injectable()
export class TokenVerifier {
  constructor(private readonly jwt: JwtService) {}

  /** Verifies `Authorization: Bearer <JWT>`; throws UnauthorizedException saying what is wrong. */
  verifyAuthorizationHeader(header: string | undefined): Principal {
    if (!header) throw new UnauthorizedException('Missing Authorization header: send "Authorization: Bearer <token>"');
    const match = /^Bearer\s+(\S+)$/i.exec(header.trim());
    if (!match) throw new UnauthorizedException('Authorization header must be "Bearer <token>"');
    return this.verify(match[1]);
  }

  verify(token: string | undefined): Principal {
    if (!token) throw new UnauthorizedException('Missing access token');
    let claims: Claims;
    try {
      claims = this.jwt.verify<Claims & object>(token, { algorithms: ['HS256'] });
    } catch (error) {
      const expired = error instanceof Error && error.name === 'TokenExpiredError';
      throw new UnauthorizedException(expired ? 'Access token expired' : 'Invalid access token');
    }
    if (typeof claims.sub !== 'string' || claims.sub === '' || typeof claims.tenant !== 'string' || claims.tenant === '') {
      throw new UnauthorizedException('Access token must carry non-empty "sub" (user) and "tenant" (pharmacy) claims');
    }
    return { userId: claims.sub, tenantId: claims.tenant };
  }
}

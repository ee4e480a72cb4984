import { CanActivate, createParamDecorator, ExecutionContext, Injectable } from '@nestjs/common';
import type { Request } from 'express';
import type { Principal } from './principal';
import { TokenVerifier } from './token-verifier.service';

type AuthenticatedRequest = Request & { principal?: Principal };

/** HTTP guard: 401 with a JSON error unless the request carries a valid bearer token. */
@Injectable()
export class JwtAuthGuard implements CanActivate {
  constructor(private readonly verifier: TokenVerifier) {}

  canActivate(context: ExecutionContext): boolean {
    const request = context.switchToHttp().getRequest<AuthenticatedRequest>();
    request.principal = this.verifier.verifyAuthorizationHeader(request.headers.authorization);
    return true;
  }
}

/** The principal JwtAuthGuard put on the request. */
export const CurrentPrincipal = createParamDecorator((_data: unknown, context: ExecutionContext): Principal => {
  const principal = context.switchToHttp().getRequest<AuthenticatedRequest>().principal;
  if (!principal) throw new Error('CurrentPrincipal used on a route without JwtAuthGuard');
  return principal;
});

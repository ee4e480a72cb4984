import { Controller, Get, UseGuards } from '@nestjs/common';
import { CurrentPrincipal, JwtAuthGuard } from './jwt-auth.guard';
import type { Principal } from './principal';

@Controller('auth')
@UseGuards(JwtAuthGuard)
export class AuthController {
  /** Who the token says you are: the quickest check of a token from `npm run token`. */
  @Get('me')
  me(@CurrentPrincipal() principal: Principal): Principal {
    return principal;
  }
}

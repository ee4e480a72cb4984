import { Controller, Get } from '@nestjs/common';
import { ApiOkResponse, ApiOperation } from '@nestjs/swagger';
import { z } from 'zod';
import { Authenticated } from './authenticated.decorator';
import { CurrentPrincipal } from './jwt-auth.guard';
import type { Principal } from './principal';

const principalSchema = z
  .object({ userId: z.string().describe('The token\'s `sub`.'), tenantId: z.string().describe('The token\'s `tenant`: the pharmacy.') })
  .meta({ id: 'Principal' });

@Controller('auth')
@Authenticated()
export class AuthController {
  /** Who the token says you are: the quickest check of a token from `npm run token`. */
  @Get('me')
  @ApiOperation({ summary: 'Who the bearer token says you are' })
  @ApiOkResponse({ standardSchema: principalSchema })
  me(@CurrentPrincipal() principal: Principal): Principal {
    return principal;
  }
}

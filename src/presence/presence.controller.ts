import { Controller, Get, ServiceUnavailableException } from '@nestjs/common';
import { Authenticated, CurrentPrincipal } from '../auth';
import type { Principal } from '../auth';
import type { PresenceSnapshot } from './presence.constants';
import { PresenceService } from './presence.service';

@Controller('presence')
@Authenticated()
export class PresenceController {
  constructor(private readonly presence: PresenceService) {}

  /** Who is online in the caller's tenant. */
  @Get()
  async list(@CurrentPrincipal() principal: Principal): Promise<PresenceSnapshot> {
    try {
      return { users: await this.presence.snapshot(principal.tenantId) };
    } catch {
      throw new ServiceUnavailableException('Presence is unavailable while Redis is unreachable');
    }
  }
}

import { Global, Module } from '@nestjs/common';
import { RedisModule } from '../redis';
import { PresenceSockets } from './presence-sockets';
import { RealtimeService } from './realtime.service';

/**
 * RealtimeService for every process (web, worker, all): imported once, in AppModule. PresenceModule (web and all)
 * serves the namespace and hands it over through PresenceSockets.
 */
@Global()
@Module({
  imports: [RedisModule],
  providers: [PresenceSockets, RealtimeService],
  exports: [PresenceSockets, RealtimeService],
})
export class RealtimeModule {}

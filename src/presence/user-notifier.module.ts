import { Module } from '@nestjs/common';
import { RedisModule } from '../redis';
import { UserNotifier } from './user-notifier.service';

/** UserNotifier alone, for processes that serve no sockets (a worker telling a user their report is done). */
@Module({
  imports: [RedisModule],
  providers: [UserNotifier],
  exports: [UserNotifier],
})
export class UserNotifierModule {}

import { Module } from '@nestjs/common';
import { AuthModule } from '../auth';
import { JobResultsModule } from '../job-results';
import { UserNotifierModule } from '../presence';
import { ReordersController } from './reorders.controller';
import { ReordersService } from './reorders.service';

/** The second feature: reorder suggestions, built only from the infrastructure's public exports. */
@Module({
  imports: [AuthModule, JobResultsModule, UserNotifierModule],
  controllers: [ReordersController],
  providers: [ReordersService],
})
export class ReordersModule {}

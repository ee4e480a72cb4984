import { Module } from '@nestjs/common';
import { AuthModule } from '../auth';
import { JobResultsModule } from '../job-results';
import { ReordersController } from './reorders.controller';
import { ReordersService } from './reorders.service';

/** The second feature: reorder suggestions, built only from the infrastructure's public exports. */
@Module({
  imports: [AuthModule, JobResultsModule],
  controllers: [ReordersController],
  providers: [ReordersService],
})
export class ReordersModule {}

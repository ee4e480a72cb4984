import { Module } from '@nestjs/common';
import { AuthModule } from '../auth';
import { JobResultsModule } from '../job-results';
import { ReportsController } from './reports.controller';
import { ReportsService } from './reports.service';

/**
 * The reference feature: POST/GET /reports, and the report job (ReportsService.compute). Uses only the
 * infrastructure's public exports: @JobHandler, JobResults (queue + cache), the JWT guard, RealtimeService.
 */
@Module({
  imports: [AuthModule, JobResultsModule],
  controllers: [ReportsController],
  providers: [ReportsService],
})
export class ReportsModule {}

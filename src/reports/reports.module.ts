import { DynamicModule, Module } from '@nestjs/common';
import { AuthModule } from '../auth';
import type { AppConfig } from '../config';
import { QueueModule } from '../queue';
import { ReportsController } from './reports.controller';
import { ReportsService } from './reports.service';

/** The reference feature: a job computes a report. Worker-only processes get the job handler and no routes. */
@Module({})
export class ReportsModule {
  static forConfig(config: AppConfig): DynamicModule {
    const servesHttp = config.appRole !== 'worker';
    return {
      module: ReportsModule,
      imports: [QueueModule.forConfig(config), ...(servesHttp ? [AuthModule] : [])],
      controllers: servesHttp ? [ReportsController] : [],
      providers: [ReportsService],
    };
  }
}

import { Module } from '@nestjs/common';
import { JobResults } from './job-results.service';

/** JobResults for features whose job results clients read later; QueueModule and CacheModule are global. */
@Module({
  providers: [JobResults],
  exports: [JobResults],
})
export class JobResultsModule {}

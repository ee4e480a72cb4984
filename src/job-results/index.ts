export { JobResultsModule } from './job-results.module';
export { ANSWER_WITHIN_MS, JobResults } from './job-results.service';
export type { CompletedView, JobAnswer, JobView, ResultSlot } from './job-results.service';
export { respondWithJob } from './respond-with-job';
export { jobViewSchemas, X_CACHE_HEADER } from './job-view.schema';

export { DEFAULT_DEADLINES, runDoctor, secretsIn } from './doctor';
export type { DoctorDeadlines } from './doctor';
export { exitCode, formatReport } from './doctor-report';
export type { CheckResult, CheckStatus } from './doctor-report';

export { createLogging } from './app-logging';
export type { AppLogging } from './app-logging';
export { REQUEST_ID_HEADER } from './request-id';

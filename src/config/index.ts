export { AppConfig, CONFIG_VARIABLES, ConfigError, loadConfig } from './app-config';
export type { AppRole, CacheConfig, HealthConfig, HttpConfig, JwtConfig, LogLevel, MetricsConfig, NodeEnv, QueueConfig, RedisConfig } from './app-config';
export { ConfigModule } from './config.module';
export { loadDotEnv } from './dot-env';
export { parseRedisUrl, detectProvider } from './redis-url';
export type { RedisEndpoint, RedisProvider, RedisUrlVariable } from './redis-url';

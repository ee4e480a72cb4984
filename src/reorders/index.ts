export { ReordersModule } from './reorders.module';

export { AuthModule } from './auth.module';
export { TokenVerifier } from './token-verifier.service';
export { JwtAuthGuard, CurrentPrincipal } from './jwt-auth.guard';
export { Authenticated } from './authenticated.decorator';
export type { Principal } from './principal';

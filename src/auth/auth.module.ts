import { createSecretKey } from 'node:crypto';
import { Module } from '@nestjs/common';
import { JwtModule } from '@nestjs/jwt';
import { AppConfig } from '../config';
import { AuthController } from './auth.controller';
import { JwtAuthGuard } from './jwt-auth.guard';
import { TokenVerifier } from './token-verifier.service';

@Module({
  imports: [
    JwtModule.registerAsync({
      inject: [AppConfig],
      useFactory: (config: AppConfig) => {
        // A ready KeyObject: given a string, jsonwebtoken first tries (and fails) to parse it as a public key
        // on every verify, which was half the CPU of a cached GET.
        const key = createSecretKey(Buffer.from(config.jwt.secret));
        return { secretOrKeyProvider: () => key, verifyOptions: { algorithms: ['HS256'] } };
      },
    }),
  ],
  controllers: [AuthController],
  providers: [TokenVerifier, JwtAuthGuard],
  exports: [TokenVerifier, JwtAuthGuard],
})
export class AuthModule {}

/**
 * The fuzz e2e's attacker, as its own process: `start` and `stop` lines on stdin; `stop` answers with one line,
 * `stopped <JSON answers>`. BASE_URLS (comma-separated), ATTACKERS and PAUSE_MS from the environment.
 */
import { createInterface } from 'node:readline';
import { startAttack } from './hostile-traffic';

const baseUrls = (process.env.BASE_URLS ?? '').split(',');
const attackers = Number(process.env.ATTACKERS ?? 2);
const pauseMs = Number(process.env.PAUSE_MS ?? 20);
let attack: ReturnType<typeof startAttack> | undefined;

const commands = createInterface({ input: process.stdin });
commands.on('line', (command) => {
  if (command === 'start' && !attack) {
    attack = startAttack(baseUrls, attackers, pauseMs);
    process.stdout.write('started\n');
  } else if (command === 'stop' && attack) {
    const running = attack;
    attack = undefined;
    void running.stop().then((answers) => process.stdout.write(`stopped ${JSON.stringify(answers)}\n`));
  }
});
commands.on('close', () => process.exit(0));
process.stdout.write('ready\n');

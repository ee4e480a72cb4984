// The chaos suite (npm run test:chaos): several app processes, faults under load. Kept out of `npm test`
// (its testRegex does not match) and run on its own, in band, by .ci/run after `npm test`.
const base = require('./jest.config.cjs');

module.exports = {
  ...base,
  roots: ['<rootDir>/test'],
  testRegex: '\\.chaos-spec\\.ts$',
  testTimeout: 120_000,
};

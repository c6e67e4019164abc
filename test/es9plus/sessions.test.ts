/**
 * The RSP session's table (SESSION_STEPS), entry by entry. How the server applies it (a step out of
 * turn is 8.10.1/3.9, the install result ends the session) is tested in errors.test.ts,
 * tampering.test.ts and download.test.ts.
 */
import t from 'tap';
import { SESSION_STEPS, canSessionStep, type SessionState, type SessionStep } from '../../src/es9plus/sessions.js';

// 'ended' is a row too (kept until it expires): no step runs in it.
const STATES: SessionState[] = ['initiated', 'authenticated', 'bound', 'ended'];

t.test('the table', async (t) => {
  const expected: Record<SessionStep, SessionState[]> = {
    authenticateClient: ['initiated'],
    getBoundProfilePackage: ['authenticated'],
    resendBoundProfilePackage: ['bound'],
    installResult: ['bound'],
    cancelSession: ['initiated', 'authenticated', 'bound'],
  };
  for (const step of Object.keys(SESSION_STEPS) as SessionStep[]) {
    for (const state of STATES) t.equal(canSessionStep({ state }, step), expected[step].includes(state), `${step} in ${state}`);
  }
  t.same(Object.fromEntries(Object.entries(SESSION_STEPS).map(([k, v]) => [k, v.to])), {
    authenticateClient: 'authenticated', getBoundProfilePackage: 'bound', resendBoundProfilePackage: 'bound', installResult: 'ended', cancelSession: 'ended',
  });
});


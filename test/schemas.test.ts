/**
 * The text rule every validated request part gets (src/schemas.ts): NUL and lone surrogates are
 * found in strings and property names at any depth, with the JSON pointer of the first one; paired
 * surrogates (an emoji) and everything else pass.
 */
import t from 'tap';
import { badTextAt, isBadText } from '../src/schemas.js';

t.test('isBadText', async (t) => {
  t.equal(isBadText('A'.repeat(5000)), false, 'a long base64-like string');
  t.equal(isBadText('Grüße 📶'), false, 'non-ASCII and a surrogate pair');
  t.equal(isBadText('a\u0000b'), true, 'NUL');
  t.equal(isBadText('a\uD83Db'), true, 'a lone high surrogate');
  t.equal(isBadText('\uDC00'), true, 'a lone low surrogate');
  t.equal(isBadText('📶\uD83D'), true, 'a pair, then a lone half');
});

t.test('badTextAt: the pointer of the first bad text, or undefined', async (t) => {
  t.equal(badTextAt({ header: { functionRequesterIdentifier: 'x' }, list: [1, 'ok', { a: '📶' }] }), undefined);
  t.equal(badTextAt({ header: { functionCallIdentifier: 'a\u0000' } }), '/header/functionCallIdentifier');
  t.equal(badTextAt({ list: ['ok', ['x', 'y\uD800']] }), '/list/1/1');
  t.equal(badTextAt({ 'a/b~c': { ['k\u0000']: 1 } }), '/a~1b~0c/k\\u0000', 'a bad property name, escaped in the pointer');
  t.equal(badTextAt('\uDFFF'), '', 'the value itself');
  const deep: unknown[] = [];
  let cur = deep;
  for (let i = 0; i < 100_000; i++) cur.push((cur = []));
  t.equal(badTextAt(deep), undefined, 'arrays nested 100,000 deep: no stack overflow');
  const nullProto = Object.assign(Object.create(null), { q: 'x\u0000' });
  t.equal(badTextAt(nullProto), '/q', 'an object without a prototype (a parsed querystring)');
});

/**
 * The TS.43 XML document's attribute values (src/entitlement/ts43.ts; docs/entitlement.md,
 * "Android's parser"): quoted with the quote they do not hold, `&` and `<` escaped, characters XML
 * does not allow replaced; our reader gives the text back, and so does a reader that first turns
 * every `&` into `&amp;` as Android's does.
 */
import t from 'tap';
import { failure, parseAnswer, renderXml, versCharacteristic } from '../../src/entitlement/ts43.js';

const textOf = (xml: string) => parseAnswer(xml, false).get('APPLICATION')!.GeneralErrorText;
/** What Android's Ts43XmlDoc does to a body before parsing it. */
const androidView = (xml: string) => xml.replace(/&/g, '&amp;').replace(/&amp;amp;/g, '&amp;');

t.test('attribute values', async (t) => {
  const doc = (text: string) => renderXml([versCharacteristic(), failure(102, text)]);
  const dq = 'operation must match pattern "^[A-Za-z]+$" & more > less';
  t.match(doc(dq), `value='operation must match pattern "^[A-Za-z]+$" &amp; more > less'`, 'double quotes inside: single-quoted, no reference');
  t.equal(textOf(doc(dq)), dq);
  t.equal(textOf(androidView(doc(dq))), dq, "Android's reader gets the same text");
  const sq = "it's fine";
  t.match(doc(sq), `value="it's fine"`);
  t.equal(textOf(androidView(doc(sq))), sq);
  const both = `a "b" 'c' <d>`;
  t.match(doc(both), 'value="a &quot;b&quot; \'c\' &lt;d>"', 'both quotes: &quot;, and < escaped');
  t.equal(textOf(doc(both)), both, 'our reader gets it back');
  t.equal(textOf(doc('bell\u0007 here')), 'bell\uFFFD here', 'a control character XML 1.0 does not allow');
});

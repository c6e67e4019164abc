/** SMDS_ADDRESS (docs/smds.md): host[:port], checked like SMDP_ADDRESS; unset, the SM-DS has the SM-DP+'s address. */
import t from 'tap';
import { ConfigError, defaultConfig, serveConfig, smdsAddressOf } from '../../src/config.js';

t.test('SMDS_ADDRESS', async (t) => {
  t.equal(defaultConfig({}).smdsAddress, undefined);
  t.equal(smdsAddressOf(defaultConfig({})), 'localhost:8443', 'the SM-DP+ address');
  t.equal(smdsAddressOf(serveConfig({ address: 'smdp.example.com' }, {})), 'smdp.example.com', 'follows --address');
  t.equal(smdsAddressOf(defaultConfig({ SMDS_ADDRESS: 'smds.example.com:9443' })), 'smds.example.com:9443');
  t.throws(() => defaultConfig({ SMDS_ADDRESS: 'smds example' }), ConfigError);
  t.throws(() => defaultConfig({ SMDS_ADDRESS: 'smds.example.com:99999' }), /SMDS_ADDRESS/);
});

import t from 'tap';
import { parseOptions, shellLine, UsageError } from '../../src/bench/options.js';

t.test('defaults', async (t) => {
  const o = parseOptions([])!;
  t.equal(o.tls, true);
  t.equal(o.workers, 2);
  t.equal(o.devices, 8);
  t.equal(o.downloads, 2000);
  t.equal(o.warmup, 2000, 'a warm-up long enough for a fresh server to reach its steady CPU per download');
  t.equal(o.freshConnections, false);
  t.equal(o.curve, 'P-256');
  t.equal(o.cryptoIterations, 2000);
  t.equal(parseOptions(['--help']), undefined);
});

t.test('options are read', async (t) => {
  const o = parseOptions(['--plain-http', '--fresh-connections', '--downloads', '1500', '--warmup', '0', '--server-args=--workers 2', '--crypto-iterations', '0', '--database-url', 'postgres://u:p@127.0.0.1/db'])!;
  t.equal(o.tls, false);
  t.equal(o.freshConnections, true);
  t.equal(o.downloads, 1500);
  t.equal(o.warmup, 0);
  t.same(o.serverArgs, ['--workers', '2']);
  t.equal(o.cryptoIterations, 0);
  t.equal(o.databaseUrl, 'postgres://u:p@127.0.0.1/db');
  const u = parseOptions(['--url', 'https://127.0.0.1:8443/', '--server-pid', '1234'])!;
  t.equal(u.url, 'https://127.0.0.1:8443');
  t.equal(u.tls, true);
  t.equal(u.serverPid, 1234);
  t.equal(parseOptions(['--duration', '5'])!.downloads, undefined);
});

t.test('bad options are refused with a message naming them', async (t) => {
  const cases: Array<[string[], RegExp]> = [
    [['--bogus'], /--bogus/],
    [['extra'], /extra/],
    [['--url'], /--url/],
    [['--tls', '--plain-http'], /--tls and --plain-http/],
    [['--workers', '0'], /--workers must be an integer >= 1: 0/],
    [['--devices', '2.5'], /--devices must be an integer/],
    [['--downloads', 'many'], /--downloads must be an integer >= 1: many/],
    [['--warmup=-1'], /--warmup must be an integer >= 0: -1/],
    [['--warmup', '-1'], /--warmup/],
    [['--crypto-iterations', ''], /--crypto-iterations must be an integer/],
    [['--duration', '0'], /--duration must be a number of seconds > 0/],
    [['--curve', 'P-384'], /--curve must be one of P-256, brainpoolP256r1: P-384/],
    [['--url', 'ftp://x'], /--url must be http:\/\/ or https:\/\//],
    [['--url', 'not a url'], /--url is not a URL/],
    [['--url', 'http://127.0.0.1:1', '--tls'], /--tls applies to the server the bench starts/],
    [['--url', 'http://127.0.0.1:1', '--server-args=--workers 2'], /--server-args applies to the server the bench starts/],
    [['--url', 'http://127.0.0.1:1', '--server-cpu-prof', 'p'], /--server-cpu-prof applies/],
    [['--server-pid', '12'], /--server-pid goes with --url/],
    [['--url', 'http://127.0.0.1:1', '--server-pid', 'x'], /--server-pid must be an integer/],
    [['--database-url', 'mysql://x/y'], /--database-url must be postgres/],
    [['--database-url', 'postgres://x/y', '--pglite'], /--pglite and --database-url exclude each other/],
    [['--certs', 'a', '--euicc-dir', 'b'], /--certs and --euicc-dir exclude each other/],
  ];
  for (const [argv, msg] of cases) {
    t.throws(() => parseOptions(argv), UsageError, argv.join(' '));
    t.throws(() => parseOptions(argv), { message: msg }, argv.join(' '));
  }
});

t.test('shellLine quotes what a shell would split', async (t) => {
  t.equal(shellLine(['--downloads', '1500', '--server-args=--workers 2', "it's"]), `--downloads 1500 '--server-args=--workers 2' 'it'\\''s'`);
});

#!/usr/bin/env node
/**
 * `npm run bench`: N simulated devices (virtual eUICC + LPA, in worker threads) run complete
 * downloads — initiateAuthentication, authenticateClient, getBoundProfilePackage and the PIR's
 * handleNotification — against a running SM-DP+ (--url), or against one it starts itself, and print
 * downloads/s, p50/p99 per ES9+ function, CPU per download of the bench (client), the server (a
 * cluster's primary and children summed) and the PostgreSQL backends of the server's database, the
 * crypto-only cost of one download (crypto-cost.ts) and the ratio of the server's CPU to it.
 *
 * The URL it connects to is separate from the SM-DP+ address it presents, and the eUICC
 * credentials and trusted CI come from a folder, so the same client can measure another SM-DP+.
 * Loops are bounded (a number of downloads or a duration) and traffic goes only to the URL given,
 * or to loopback for the server it starts.
 */
import { readFileSync } from 'node:fs';
import { addressHost } from '../config.js';
import { HttpClient } from '../http/client.js';
import { parseActivationCode } from '../rsp/activation-code.js';
import { serverProcesses, serverSample, startChildServer, type ChildServer } from './child-server.js';
import { ciPems, deviceCards } from './devices.js';
import { Dispenser, firstCodes, readCodeFile } from './dispenser.js';
import { parseOptions, USAGE, UsageError, type Options } from './options.js';
import { createBenchDatabase, databaseOf, PgBackendMonitor } from './pg-monitor.js';
import { loadAverages, machineBusy } from './proc.js';
import { measureCryptoOnly, printSummary, serverProfile, summarize } from './report.js';
import { WorkerPool } from './workers.js';
import type { WorkerConfig } from './worker.js';

// The parts: options.ts (the command line), child-server.ts (the server the bench starts and the
// processes it counts), devices.ts (the eUICCs), dispenser.ts (activation codes), workers.ts (the
// worker threads and a phase's results), report.ts (the summary and its text).

async function main(argv: string[]): Promise<number> {
  let o: Options | undefined;
  try {
    o = parseOptions(argv);
  } catch (err) {
    console.error(`${(err as Error).message}\n\n${USAGE}`);
    return 2;
  }
  if (!o) {
    console.log(USAGE);
    return 0;
  }
  const opts = o;
  const log = (s: string) => process.stderr.write(`${s}\n`);

  let child: ChildServer | undefined;
  let benchDb: Awaited<ReturnType<typeof createBenchDatabase>> | undefined;
  let monitor: PgBackendMonitor | undefined;
  const pool = new WorkerPool();
  let interrupted = false;
  let onInterrupt = () => {};
  const sigint = () => {
    if (interrupted) {
      // (a server still starting is killed by its exit hook)
      void (child ? child.stop() : Promise.resolve()).finally(() => process.exit(130));
      return;
    }
    interrupted = true;
    log('interrupted: stopping the loops (Ctrl-C again to abort)');
    onInterrupt();
  };
  process.on('SIGINT', sigint);
  process.on('SIGTERM', sigint);

  try {
    // The database: for the server the bench starts, a fresh one in the given PostgreSQL (only its
    // backends are counted, nobody else's data is touched), or PGlite.
    let serverDbUrl: string | undefined;
    let dbNote = '';
    if (!opts.url) {
      const given = opts.pglite ? undefined : (opts.databaseUrl ?? process.env.DATABASE_URL);
      if (given && !opts.reuseDatabase) {
        try {
          benchDb = await createBenchDatabase(given);
        } catch (err) {
          throw new UsageError(`cannot create a database for the run in ${databaseOf(given)}'s server: ${(err as Error).message} (--reuse-database uses it as is)`);
        }
        serverDbUrl = benchDb.url;
        dbNote = 'created for this run, dropped at the end';
      } else if (given) {
        serverDbUrl = given;
        dbNote = 'as given (--reuse-database); anything else using it is counted too';
      }
      child = await startChildServer(opts, serverDbUrl, log);
    } else if (opts.databaseUrl) {
      serverDbUrl = opts.databaseUrl;
      dbNote = 'the server\'s, from --database-url';
    }
    const url = opts.url ?? child!.url;
    const pkiDir = opts.euiccDir ?? opts.certs ?? child?.certsDir ?? 'certs';
    const ca = opts.ca ? [readFileSync(opts.ca, 'utf8')] : ciPems(pkiDir);

    // What the server says about itself (ours answers smdpAddress, database, pid and rss).
    // (Always a servername for https: HttpClient passes checkServerIdentity: undefined without one, which tls.connect rejects.)
    const probe = new HttpClient({ baseUrl: url, ca, verifyTls: false, servername: addressHost(opts.smdpAddress ?? child?.smdpAddress ?? 'localhost'), timeoutMs: 10_000 });
    const health = async (): Promise<{ smdpAddress?: string; database?: string; rss?: number; pid?: unknown } | undefined> => {
      try {
        const r = await probe.get<{ smdpAddress?: string; database?: string; rss?: number; pid?: unknown }>('/health');
        return r.status === 200 && r.json && typeof r.json === 'object' ? r.json : undefined;
      } catch {
        return undefined;
      }
    };
    const h0 = await health();
    const serverProcs = serverProcesses(opts, child, h0?.pid);
    if (!serverProcs) log(`the server's pid is unknown (not local, or not readable): its CPU is n/a; give --server-pid`);
    const dbKind = h0?.database ?? (serverDbUrl ? 'postgres' : child ? 'pglite' : 'n/a');
    if (serverDbUrl && dbKind === 'postgres') monitor = await PgBackendMonitor.connect(serverDbUrl, databaseOf(serverDbUrl));

    // Activation codes: a file, or orders created through our admin API.
    const fileCodes = opts.codes ? readCodeFile(opts.codes) : undefined;
    const smdpAddress = opts.smdpAddress ?? child?.smdpAddress ?? h0?.smdpAddress ?? (fileCodes ? parseActivationCode(fileCodes[0]!).smdpAddress : undefined);
    if (!smdpAddress) throw new UsageError('cannot tell the SM-DP+ address: give --smdp-address');
    const servername = opts.tls ? addressHost(smdpAddress) : undefined;
    const http = { ca, ...(servername ? { servername } : {}), verifyTls: !opts.insecure };
    const admin = new HttpClient({ baseUrl: url, ...http, timeoutMs: 300_000 });

    const nDevices = opts.workers * opts.devices;
    const t0 = performance.now();
    const { cards, how } = await deviceCards(opts, pkiDir, nDevices);
    log(`${how} (${nDevices} devices, ${((performance.now() - t0) / 1000).toFixed(1)} s)`);
    const distinctEuiccs = opts.euiccDir ? 1 : nDevices;
    const { codes, how: ordersHow } = await firstCodes(opts, admin, fileCodes, nDevices, log);
    const dispenser = new Dispenser({
      admin,
      codes,
      canRefill: !fileCodes && opts.downloads === undefined,
      send: (i, m) => pool.send(i, m),
      stopped: () => interrupted,
      log,
    });
    onInterrupt = () => dispenser.dispense();

    const configs: WorkerConfig[] = [];
    for (let i = 0; i < opts.workers; i++) {
      configs.push({
        index: i,
        url,
        ...http,
        ...(smdpAddress ? { smdpAddress } : {}),
        cards: cards.slice(i * opts.devices, (i + 1) * opts.devices),
        freshConnections: opts.freshConnections,
      });
    }
    await pool.start(configs, dispenser);
    const results = pool.results;

    if (opts.warmup > 0 && !interrupted) {
      log(`warm-up: ${opts.warmup} downloads`);
      await pool.runPhase(dispenser, opts.warmup, undefined);
      if (results.errorCount) log(`warm-up: ${results.errorCount} failed (${Object.entries(results.errorsByCode).map(([k, n]) => `${n} × ${k}, e.g. ${results.errorExamples[k]}`).join('; ')})`);
    }

    log(`timed run: ${opts.downloads !== undefined ? `${opts.downloads} downloads` : `${opts.duration} s`} with ${opts.workers} × ${opts.devices} devices${opts.freshConnections ? ', fresh connections' : ''}`);
    const loadStart = loadAverages();
    await monitor?.start();
    const srv0 = serverSample(serverProcs);
    const busy0 = machineBusy();
    const cpu0 = process.cpuUsage();
    const profileFromUs = Number(process.hrtime.bigint() / 1000n);
    let peakRss = srv0?.rss ?? 0;
    const progressEvery = 5000;
    let lastProgress = performance.now();
    const sampler = setInterval(() => {
      if (serverProcs) peakRss = Math.max(peakRss, serverSample(serverProcs)?.rss ?? 0);
      else void health().then((h) => typeof h?.rss === 'number' && (peakRss = Math.max(peakRss, h.rss)));
      if (performance.now() - lastProgress >= progressEvery) {
        lastProgress = performance.now();
        log(`  … ${results.okCount} complete, ${results.errorCount} failed`);
      }
    }, 1000);
    const wall = await pool.runPhase(dispenser, opts.downloads, opts.duration);
    clearInterval(sampler);
    const profileToUs = Number(process.hrtime.bigint() / 1000n);
    const cpu = process.cpuUsage(cpu0);
    const busy1 = machineBusy();
    const srv1 = serverSample(serverProcs);
    const pgCpu = monitor ? await monitor.stop() : undefined;
    const loadEnd = loadAverages();
    const clientCpu = (cpu.user + cpu.system) / 1e6;
    const h1 = await health();

    const summary = summarize({
      argv, opts, url, child, smdpAddress,
      database: { kind: dbKind, name: serverDbUrl ? databaseOf(serverDbUrl) : null, note: dbNote },
      euiccs: how, orders: ordersHow, results, wall, clientCpu, serverProcs, srv0, srv1, pgCpu, busy0, busy1, peakRss, h1, loadStart, loadEnd,
    });
    if (pgCpu?.unreadable) log(`warning: ${pgCpu.unreadable} PostgreSQL backends had no readable /proc entry (PostgreSQL on another machine?): their CPU is missing`);

    if (opts.cryptoIterations > 0 && !interrupted) await measureCryptoOnly(summary, { opts, results, child, smdpAddress, distinctEuiccs }, log);
    // The server's profile: written when it exits.
    if (child && opts.serverCpuProf) await serverProfile(summary, opts.serverCpuProf, child, profileFromUs, profileToUs, log);

    if (opts.json) console.log(JSON.stringify(summary, null, 2));
    else printSummary(summary);
    probe.close();
    admin.close();
    return results.errorCount > 0 || results.okCount === 0 ? 1 : 0;
  } catch (err) {
    if (err instanceof UsageError) {
      console.error(err.message);
      return 2;
    }
    console.error(`bench failed: ${(err as Error).stack ?? err}`);
    return 1;
  } finally {
    await pool.close();
    await monitor?.close();
    await child?.stop();
    if (benchDb) await benchDb.drop().catch((err) => log(`could not drop the bench database ${benchDb!.database}: ${(err as Error).message}`));
    process.off('SIGINT', sigint);
    process.off('SIGTERM', sigint);
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err) => {
    console.error(err);
    process.exitCode = 1;
  },
);

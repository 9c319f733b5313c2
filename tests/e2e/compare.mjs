// Server cost per operation, Aurora against the reference PDS (@atproto/pds), side by side in one
// run: the official @atproto/api client makes the same requests of both (keep-alive, and the
// Accept-Encoding its fetch sends), and each server's CPU time is read from /proc before and
// after each phase, so the figures are the servers' own work, not the client's (whose own CPU
// per operation is printed beside them: on two cores it bounds the wall-clock figures).
//
// Usage: node compare.mjs <aurora-locus binary> <started reference runner dir>
//   The runner (../shared/reference-pds, copied, set up and started with start.sh) serves PLC on
//   localhost:$REFERENCE_PLC_PORT (2582) and the PDS on $REFERENCE_PDS_PORT (2583); Aurora is
//   started here on the same PLC with its embedded defaults (SQLite, blobs on disk).
//   COMPARE_SCALE (default 1) multiplies how many times each operation runs.
// Prints one line per operation and server, then the table of ratios. Not a test: it fails only
// when a request fails.
import { AtpAgent } from '@atproto/api'
import { readFileSync, readdirSync } from 'node:fs'
import { join } from 'node:path'
import { startAurora, referenceRunner } from './harness.mjs'

const { runner, plcUrl, referenceUrl } = referenceRunner('node compare.mjs <aurora-locus binary> <started reference runner dir>')
const scale = Number(process.env.COMPARE_SCALE ?? 1)
const times = (n) => Math.max(1, Math.round(n * scale))

/**
 * Every thread's CPU time so far (user and system), in nanoseconds, by thread: the kernel's
 * `schedstat` counts nanoseconds, where `/proc/PID/stat` counts 10 ms ticks, a fifth of a
 * phase of a few hundred requests of some hundred microseconds each.
 */
function threadNanos(pid) {
  const threads = new Map()
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      threads.set(tid, Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0]))
    } catch {
      // The thread ended between the listing and the read.
    }
  }
  return threads
}

/**
 * The CPU time `pid` spent since `before` (from threadNanos), in microseconds. A thread that ended
 * in between takes its time with it; both servers keep their threads for longer than a phase.
 */
function cpuMicrosSince(pid, before) {
  let nanos = 0
  for (const [tid, now] of threadNanos(pid)) nanos += now - (before.get(tid) ?? 0)
  return nanos / 1000
}

/** A /proc/PID/status figure in KiB (VmRSS, VmHWM). */
function statusKib(pid, field) {
  const line = readFileSync(`/proc/${pid}/status`, 'utf8')
    .split('\n')
    .find((l) => l.startsWith(`${field}:`))
  return Number(line.split(/\s+/)[1])
}

/**
 * Runs `op(i)` `n` times, `concurrency` at a time, after a tenth as many unmeasured (so both
 * servers' caches, and the reference's compiler, are warm); the server's CPU and the wall time.
 */
async function measure(server, n, concurrency, op, warmUp = true) {
  for (let i = 0; warmUp && i < Math.ceil(n / 10); i++) await op(i)
  const cpu = threadNanos(server.pid)
  const client = process.cpuUsage()
  const start = process.hrtime.bigint()
  let next = 0
  const worker = async () => {
    while (next < n) await op(next++)
  }
  await Promise.all(Array.from({ length: concurrency }, worker))
  const wall = Number(process.hrtime.bigint() - start) / 1e6
  const used = process.cpuUsage(client)
  return { cpuPerOp: cpuMicrosSince(server.pid, cpu) / n, clientPerOp: (used.user + used.system) / n, wallMs: wall, n }
}

async function signUp(url, name) {
  const agent = new AtpAgent({ service: url })
  await agent.createAccount({ handle: `${name}.test`, email: `${name}@example.com`, password: `${name}-password-1` })
  return agent
}

const post = (i) => ({ $type: 'app.bsky.feed.post', text: `post number ${i}`, createdAt: new Date().toISOString() })

/** Every phase against one server; returns its figures by operation. */
async function run(server) {
  const agent = await signUp(server.url, `cmp${Date.now().toString(36)}`)
  const repo = agent.session.did
  const figures = {}
  const note = (name, figure, extra = '') => {
    figures[name] = figure
    const time = (us) => (us >= 1000 ? `${(us / 1000).toFixed(2)} ms` : `${us.toFixed(0)} µs`)
    console.log(`${server.name.padEnd(9)} ${name.padEnd(30)} n=${String(figure.n).padEnd(5)} CPU ${time(figure.cpuPerOp)}/op (client ${time(figure.clientPerOp)}), ${(figure.n / (figure.wallMs / 1000)).toFixed(0)}/s${extra}`)
  }
  const rkeys = []
  const create = async (i) => {
    const { data } = await agent.com.atproto.repo.createRecord({ repo, collection: 'app.bsky.feed.post', record: post(i) })
    rkeys.push(data.uri.split('/').pop())
  }
  note('createRecord, sequential', await measure(server, times(200), 1, create))
  note('createRecord, 8 concurrent', await measure(server, times(400), 8, create))
  const get = (i) => agent.com.atproto.repo.getRecord({ repo, collection: 'app.bsky.feed.post', rkey: rkeys[i % rkeys.length] })
  note('getRecord, sequential', await measure(server, times(1000), 1, get))
  note('getRecord, 8 concurrent', await measure(server, times(2000), 8, get))
  const list = () => agent.com.atproto.repo.listRecords({ repo, collection: 'app.bsky.feed.post', limit: 100 })
  note('listRecords page of 100', await measure(server, times(200), 1, list))
  let batch = 0
  const applyWrites = async () => {
    const writes = Array.from({ length: 200 }, (_, i) => ({
      $type: 'com.atproto.repo.applyWrites#create',
      collection: 'app.bsky.feed.post',
      value: post(batch * 200 + i),
    }))
    batch++
    await agent.com.atproto.repo.applyWrites({ repo, writes })
  }
  const batches = Math.max(7, times(7))
  const applied = await measure(server, batches, 1, applyWrites, false)
  note('applyWrites, 200 per batch', applied, ` (${((batches * 200) / (applied.wallMs / 1000)).toFixed(0)} records/s)`)
  let bytes = 0
  const getRepo = async () => {
    const { data } = await agent.com.atproto.sync.getRepo({ did: repo })
    bytes = data.length
  }
  const exported = await measure(server, times(20), 1, getRepo)
  const records = rkeys.length + batches * 200
  note(`getRepo (${records} records)`, exported, ` (${((bytes * exported.n) / 1e6 / (exported.wallMs / 1000)).toFixed(0)} MB/s of ${(bytes / 1e3).toFixed(0)} KB, ${(exported.wallMs / exported.n).toFixed(1)} ms each)`)
  const blob = new Uint8Array(1 << 20)
  const upload = async (i) => {
    // Distinct bytes each time, as a client's uploads are.
    for (let j = 0; j < blob.length; j += 4096) blob[j] = (i * 31 + j) & 0xff
    await agent.com.atproto.repo.uploadBlob(blob, { encoding: 'application/octet-stream' })
  }
  const uploaded = await measure(server, times(50), 1, upload, false)
  note('uploadBlob 1 MiB, sequential', uploaded, ` (${(uploaded.n / (uploaded.wallMs / 1000)).toFixed(0)} MiB/s)`)
  figures.peakRssKib = statusKib(server.pid, 'VmHWM')
  console.log(`${server.name.padEnd(9)} peak RSS ${(figures.peakRssKib / 1024).toFixed(0)} MiB`)
  return figures
}

const aurora = await startAurora(plcUrl)
try {
  const servers = [
    { name: 'reference', url: referenceUrl, pid: Number(readFileSync(join(runner, 'data/run/pds.pid'), 'utf8').trim()) },
    { name: 'aurora', url: aurora.url, pid: aurora.pid },
  ]
  const results = {}
  for (const server of servers) results[server.name] = await run(server)
  console.log('\n| operation | reference CPU/op | Aurora CPU/op | ratio |\n|---|---|---|---|')
  const ms = (us) => (us >= 1000 ? `${(us / 1000).toFixed(2)} ms` : `${us.toFixed(0)} µs`)
  for (const [name, ref] of Object.entries(results.reference)) {
    if (name === 'peakRssKib') continue
    const ours = results.aurora[name]
    console.log(`| ${name} | ${ms(ref.cpuPerOp)} | ${ms(ours.cpuPerOp)} | ${(ref.cpuPerOp / ours.cpuPerOp).toFixed(1)}× |`)
  }
  const [refRss, ourRss] = [results.reference.peakRssKib, results.aurora.peakRssKib]
  console.log(`| peak RSS | ${(refRss / 1024).toFixed(0)} MiB | ${(ourRss / 1024).toFixed(0)} MiB | 1/${(refRss / ourRss).toFixed(1)} |`)
} finally {
  await aurora.stop()
}

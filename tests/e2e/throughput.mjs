// Wall-clock throughput of uploads and repository exports through the official client, with the
// CPU the server and the client each spent per operation: on a two-core machine the client's own
// CPU bounds what any server can show (see docs/performance.md).
//
// Usage: node throughput.mjs <aurora-locus binary> uploads|getRepo
//   Starts the official PLC directory and Aurora (SQLite, blobs on disk) on loopback, signs up,
//   then runs three rounds: ROUNDS_OF (default 80) uploads of 1 MiB of distinct bytes, or, after
//   writing RECORDS (default 10,000) records with applyWrites, ROUNDS_OF (default 100) exports.
//   The first round warms the client up. Not a test: it fails only when a request fails.
import { AtpAgent } from '@atproto/api'
import { readFileSync } from 'node:fs'
import { execFileSync } from 'node:child_process'
import { startAurora, startPlc } from './harness.mjs'

const mode = process.argv[3]
if (mode !== 'uploads' && mode !== 'getRepo') {
  console.error('usage: node throughput.mjs <aurora-locus binary> uploads|getRepo')
  process.exit(2)
}
const ticksPerSecond = Number(execFileSync('getconf', ['CLK_TCK']).toString().trim())
/** The process's CPU time so far (user and system), in microseconds. */
function serverMicros(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  return ((Number(fields[11]) + Number(fields[12])) * 1e6) / ticksPerSecond
}

const plc = await startPlc()
const aurora = await startAurora(plc.url)
try {
  const agent = new AtpAgent({ service: aurora.url })
  const name = `tp${Date.now().toString(36)}`
  await agent.createAccount({ handle: `${name}.test`, email: `${name}@example.com`, password: `${name}-password-1` })
  const repo = agent.session.did
  const blob = new Uint8Array(1 << 20)
  let op
  if (mode === 'uploads') {
    op = async (round, i) => {
      // Distinct bytes each time, as a client's uploads are.
      for (let j = 0; j < blob.length; j += 4096) blob[j] = (round * 7919 + i * 31 + j) & 0xff
      await agent.com.atproto.repo.uploadBlob(blob, { encoding: 'application/octet-stream' })
      return blob.length
    }
  } else {
    const records = Number(process.env.RECORDS ?? 10000)
    for (let batch = 0; batch * 200 < records; batch++) {
      const writes = Array.from({ length: Math.min(200, records - batch * 200) }, (_, i) => ({
        $type: 'com.atproto.repo.applyWrites#create',
        collection: 'app.bsky.feed.post',
        value: { $type: 'app.bsky.feed.post', text: `post number ${batch * 200 + i}`, createdAt: new Date().toISOString() },
      }))
      await agent.com.atproto.repo.applyWrites({ repo, writes })
    }
    op = async () => (await agent.com.atproto.sync.getRepo({ did: repo })).data.length
  }
  // Uploads stay under the account's quota of unused uploads (256 MiB) over the three rounds.
  const n = Number(process.env.ROUNDS_OF ?? (mode === 'uploads' ? 80 : 100))
  for (let round = 0; round < 3; round++) {
    let bytes = 0
    const server = serverMicros(aurora.pid)
    const client = process.cpuUsage()
    const start = process.hrtime.bigint()
    for (let i = 0; i < n; i++) bytes += await op(round, i)
    const seconds = Number(process.hrtime.bigint() - start) / 1e9
    const used = process.cpuUsage(client)
    const ms = (us) => (us / n / 1000).toFixed(2)
    // Uploads in MiB/s, as blob sizes are given; exports in MB/s, as CAR sizes are.
    const [unit, name] = mode === 'uploads' ? [2 ** 20, 'MiB'] : [1e6, 'MB']
    console.log(
      `round ${round}: ${mode} ${(bytes / n / unit).toFixed(2)} ${name} each, ${(bytes / unit / seconds).toFixed(0)} ${name}/s,` +
        ` ${((seconds * 1000) / n).toFixed(2)} ms each; CPU per operation: server ${ms(serverMicros(aurora.pid) - server)} ms,` +
        ` client ${ms(used.user + used.system)} ms`,
    )
  }
} finally {
  await aurora.stop()
  await plc.close()
}

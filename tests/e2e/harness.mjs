// Shared by the end-to-end scripts: start the official PLC directory and the Aurora binary on
// loopback, read mailed codes, and count results.
import { spawn } from 'node:child_process'
import { createHmac, randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync, existsSync, readdirSync, readFileSync } from 'node:fs'
import http from 'node:http'
import net from 'node:net'
import { tmpdir } from 'node:os'
import { join, dirname } from 'node:path'
import { fileURLToPath } from 'node:url'
import { createRequire } from 'node:module'
import { IdResolver } from '@atproto/identity'
import { verifyJwt } from '@atproto/xrpc-server'

const require = createRequire(import.meta.url)
const plc = require('@did-plc/server')
const here = dirname(fileURLToPath(import.meta.url))
export const binary = process.argv[2] ?? join(here, '../../target/release/aurora-locus')
if (!existsSync(binary)) {
  console.error(`aurora-locus binary not found at ${binary}: build it first (cargo build --release)`)
  process.exit(2)
}

export const freePort = () =>
  new Promise((resolve, reject) => {
    const server = net.createServer()
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address()
      server.close(() => resolve(port))
    })
    server.on('error', reject)
  })

export async function startPlc() {
  const port = await freePort()
  const server = plc.PlcServer.create({ db: plc.Database.mock(), port })
  const listener = http.createServer(server.app)
  await new Promise((resolve) => listener.listen(port, '127.0.0.1', resolve))
  return { url: `http://localhost:${port}`, close: () => new Promise((r) => listener.close(r)) }
}

/** The started reference runner named by the script's second argument (exits with `usage`
 * without one), and the PLC and PDS it serves on REFERENCE_PLC_PORT and REFERENCE_PDS_PORT. */
export function referenceRunner(usage) {
  const runner = process.argv[3]
  if (!runner) {
    console.error(`usage: ${usage}`)
    process.exit(2)
  }
  return {
    runner,
    plcUrl: `http://localhost:${process.env.REFERENCE_PLC_PORT ?? 2582}`,
    referenceUrl: `http://localhost:${process.env.REFERENCE_PDS_PORT ?? 2583}`,
  }
}

export async function startAurora(plcUrl, extraEnv = {}) {
  const port = await freePort()
  const dataDir = mkdtempSync(join(tmpdir(), 'aurora-e2e-'))
  const jwtSecret = randomBytes(32).toString('hex')
  const env = {
    PATH: process.env.PATH,
    PDS_HOSTNAME: 'localhost',
    PDS_PORT: String(port),
    PDS_DATA_DIRECTORY: dataDir,
    PDS_DID_PLC_URL: plcUrl,
    PDS_JWT_SECRET: jwtSecret,
    PDS_ADMIN_PASSWORD: 'e2e-admin-password',
    PDS_PLC_ROTATION_KEY_K256_PRIVATE_KEY_HEX: randomBytes(32).toString('hex'),
    PDS_DEV_MODE: 'true',
    // As the reference runner has them: off (the suites make many requests from one address).
    PDS_RATE_LIMITS_ENABLED: 'false',
    PDS_INVITE_REQUIRED: 'false',
    AURORA_LOG_FORMAT: 'json',
    AURORA_LOG: 'warn,aurora_locus=info',
    ...extraEnv,
  }
  const child = spawn(binary, [], { env, stdio: ['ignore', 'pipe', 'inherit'] })
  await new Promise((resolve, reject) => {
    let buffer = ''
    const timer = setTimeout(() => reject(new Error('aurora-locus did not start within 30 s')), 30_000)
    child.stdout.on('data', (chunk) => {
      buffer += chunk
      if (buffer.includes('listening')) {
        clearTimeout(timer)
        resolve()
      }
    })
    child.on('exit', (code) => reject(new Error(`aurora-locus exited early with ${code}`)))
  })
  child.stdout.resume()
  const stop = () =>
    new Promise((resolve) => {
      child.once('exit', resolve)
      child.kill('SIGTERM')
    }).then(() => rmSync(dataDir, { recursive: true, force: true }))
  return { url: `http://localhost:${port}`, jwtSecret, dataDir, stop, pid: child.pid }
}

/** An access token that expired an hour ago, signed like the server's own. */
export function expiredAccessToken(secret, did) {
  const b64 = (obj) => Buffer.from(JSON.stringify(obj)).toString('base64url')
  const now = Math.floor(Date.now() / 1000)
  const input = `${b64({ typ: 'at+jwt', alg: 'HS256' })}.${b64({
    scope: 'com.atproto.access',
    aud: 'did:web:localhost',
    sub: did,
    iat: now - 7200,
    exp: now - 3600,
  })}`
  return `${input}.${createHmac('sha256', secret).update(input).digest('base64url')}`
}

/** The code in the newest mail the server wrote to its outbox (no SMTP is configured here). */
export function lastMailedCode(dataDir) {
  const outbox = join(dataDir, 'outbox')
  const newest = readdirSync(outbox).sort().at(-1)
  const match = readFileSync(join(outbox, newest), 'utf8').match(/\b[A-Z2-7]{5}-[A-Z2-7]{5}\b/)
  if (!match) throw new Error(`no code in ${newest}`)
  return match[0]
}

export const results = []
export async function test(name, fn) {
  try {
    await fn()
    results.push({ name, ok: true })
    console.log(`ok   ${name}`)
  } catch (err) {
    results.push({ name, ok: false })
    console.log(`FAIL ${name}\n     ${err?.stack ?? err}`)
  }
}

export function assert(cond, message) {
  if (!cond) throw new Error(message)
}

export async function expectXrpcError(promise, status, name) {
  try {
    await promise
  } catch (err) {
    assert(err.status === status, `expected status ${status}, got ${err.status} (${err.error}: ${err.message})`)
    if (name) assert(err.error === name, `expected error ${name}, got ${err.error}`)
    return err
  }
  throw new Error(`expected an error ${status} ${name ?? ''}, but the call succeeded`)
}


/** Prints the tally and exits non-zero on any failure (or when nothing ran). */
export function finish() {
  const passed = results.filter((r) => r.ok).length
  const failed = results.length - passed
  console.log(`${passed} passed, ${failed} failed`)
  process.exit(failed === 0 && passed > 0 ? 0 : 1)
}

/**
 * A stand-in AppView: every call must carry a service token that @atproto/xrpc-server's own
 * verifier accepts (signature against the caller's DID document, audience, method).
 */
export async function startAppView(plcUrl) {
  const port = await freePort()
  const did = `did:web:localhost%3A${port}`
  const idResolver = new IdResolver({ plcUrl, fetch: globalThis.fetch })
  const seen = []
  const server = http.createServer(async (req, res) => {
    const url = new URL(req.url, 'http://localhost')
    const lxm = url.pathname.replace('/xrpc/', '')
    const reply = (status, body) => {
      res.writeHead(status, { 'content-type': 'application/json', 'atproto-repo-rev': '3laaaaaaaaaa2' })
      res.end(JSON.stringify(body))
    }
    try {
      const token = (req.headers.authorization ?? '').replace(/^Bearer /, '')
      const payload = await verifyJwt(token, did, lxm, (iss, force) => idResolver.did.resolveAtprotoKey(iss, force))
      seen.push({ lxm, iss: payload.iss })
      if (lxm === 'app.bsky.actor.getProfile') {
        reply(200, { did: payload.iss, handle: 'alice.test', displayName: 'Alice (from the AppView)', followersCount: 3 })
      } else if (lxm === 'app.bsky.feed.getTimeline') {
        reply(200, { feed: [], cursor: 'next-page' })
      } else {
        reply(501, { error: 'MethodNotImplemented', message: lxm })
      }
    } catch (err) {
      reply(401, { error: 'BadJwt', message: String(err?.message ?? err) })
    }
  })
  await new Promise((resolve) => server.listen(port, '127.0.0.1', resolve))
  return { url: `http://localhost:${port}`, did, seen, close: () => new Promise((r) => server.close(r)) }
}

// End-to-end OAuth: the official @atproto/oauth-client-node signs a person in on Aurora's own
// pages, driven through a real headless Chromium (Debian's chromium, by playwright-core), then
// uses the account through the DPoP session with the official @atproto/api Agent, proxied
// app.bsky reads included; refresh, sign-out and the refusals an app can meet.
// Usage: node oauth.mjs [path/to/aurora-locus]   CHROMIUM=/usr/bin/chromium by default.
// Screenshots of each page go to SCREENSHOT_DIR (default ../../target/oauth-screenshots).
import http from 'node:http'
import https from 'node:https'
import dgram from 'node:dgram'
import { execFileSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, dirname } from 'node:path'
import { fileURLToPath } from 'node:url'
import { NodeOAuthClient } from '@atproto/oauth-client-node'
import { JoseKey } from '@atproto/jwk-jose'
import { Agent } from '@atproto/api'
import { chromium } from 'playwright-core'
import { startPlc, startAurora, startAppView, freePort, test, assert, finish } from './harness.mjs'

const here = dirname(fileURLToPath(import.meta.url))
const screenshots = process.env.SCREENSHOT_DIR ?? join(here, '../../target/oauth-screenshots')
mkdirSync(screenshots, { recursive: true })

/** A stand-in for the app's redirect endpoint: remembers each callback's query. */
async function startCallback() {
  const port = await freePort()
  const waiting = []
  const server = http.createServer((req, res) => {
    const params = new URL(req.url, 'http://127.0.0.1').searchParams
    res.writeHead(200, { 'content-type': 'text/plain' })
    res.end('signed in; you can close this window')
    const next = waiting.shift()
    if (next) next(params)
  })
  await new Promise((resolve) => server.listen(port, '127.0.0.1', resolve))
  return {
    uri: `http://127.0.0.1:${port}/callback`,
    next: () => new Promise((resolve) => waiting.push(resolve)),
    close: () => new Promise((r) => server.close(r)),
  }
}

/** The confidential app's host name: public-looking (clients refuse loopback https hosts). */
const APP_HOST = 'client.aurora-e2e.dev'

/**
 * A DNS server that answers the app's host name with 127.0.0.1 (and nothing else), for Aurora
 * (AURORA_DNS_RESOLVER) to find the app's metadata.
 */
async function startDns() {
  const socket = dgram.createSocket('udp4')
  socket.on('message', (query, peer) => {
    let offset = 12
    const labels = []
    while (query[offset] !== 0) {
      labels.push(query.subarray(offset + 1, offset + 1 + query[offset]).toString())
      offset += query[offset] + 1
    }
    const question = query.subarray(12, offset + 5)
    const type = query.readUInt16BE(offset + 1)
    const known = labels.join('.').toLowerCase() === APP_HOST
    const answer = known && type === 1
    const header = Buffer.alloc(12)
    query.copy(header, 0, 0, 2)
    header.writeUInt16BE(0x8180 | (known ? 0 : 3), 2) // a response; NXDOMAIN for other names
    header.writeUInt16BE(1, 4)
    header.writeUInt16BE(answer ? 1 : 0, 6)
    const record = answer
      ? Buffer.concat([Buffer.from([0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4]), Buffer.from([127, 0, 0, 1])])
      : Buffer.alloc(0)
    socket.send(Buffer.concat([header, question, record]), peer.port, peer.address)
  })
  await new Promise((resolve) => socket.bind(0, '127.0.0.1', resolve))
  return { addr: `127.0.0.1:${socket.address().port}`, close: () => new Promise((r) => socket.close(r)) }
}

/**
 * A certificate authority and a certificate for the app's host it signed (openssl), so a
 * confidential client can serve its metadata over https; Aurora is told to trust the CA.
 */
function appCertificate() {
  const dir = mkdtempSync(join(tmpdir(), 'aurora-e2e-tls-'))
  const run = (...args) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' })
  run('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '2',
    '-subj', '/CN=Aurora e2e CA', '-keyout', 'ca.key', '-out', 'ca.pem')
  run('req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-subj', `/CN=${APP_HOST}`,
    '-keyout', 'leaf.key', '-out', 'leaf.csr')
  writeFileSync(join(dir, 'ext.cnf'), `subjectAltName=DNS:${APP_HOST}\nbasicConstraints=CA:FALSE\n`)
  run('x509', '-req', '-in', 'leaf.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-days', '2',
    '-extfile', 'ext.cnf', '-out', 'leaf.pem')
  return {
    caFile: join(dir, 'ca.pem'),
    key: readFileSync(join(dir, 'leaf.key')),
    cert: readFileSync(join(dir, 'leaf.pem')),
  }
}

/**
 * A confidential web app: serves its client metadata (with its public key) over https and
 * receives the browser back at its https callback.
 */
async function startConfidentialApp(tls) {
  const port = await freePort()
  const origin = `https://${APP_HOST}:${port}`
  const waiting = []
  let metadata
  const server = https.createServer({ key: tls.key, cert: tls.cert }, (req, res) => {
    const url = new URL(req.url, origin)
    if (url.pathname === '/client-metadata.json') {
      res.writeHead(200, { 'content-type': 'application/json' })
      res.end(JSON.stringify(metadata))
      return
    }
    res.writeHead(200, { 'content-type': 'text/plain' })
    res.end('signed in')
    const next = waiting.shift()
    if (next) next(url.searchParams)
  })
  await new Promise((resolve) => server.listen(port, '127.0.0.1', resolve))
  return {
    origin,
    clientId: `${origin}/client-metadata.json`,
    redirectUri: `${origin}/callback`,
    publish: (document) => void (metadata = document),
    next: () => new Promise((resolve) => waiting.push(resolve)),
    close: () => new Promise((r) => server.close(r)),
  }
}

function memoryStore() {
  const map = new Map()
  return { get: async (k) => map.get(k), set: async (k, v) => void map.set(k, v), del: async (k) => void map.delete(k) }
}

function loopbackClient(aurora, plc, callback, scope) {
  const clientId = `http://localhost?${new URLSearchParams({ redirect_uri: callback.uri, scope })}`
  return new NodeOAuthClient({
    clientMetadata: {
      client_id: clientId,
      redirect_uris: [callback.uri],
      scope,
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      application_type: 'native',
      token_endpoint_auth_method: 'none',
      dpop_bound_access_tokens: true,
    },
    stateStore: memoryStore(),
    sessionStore: memoryStore(),
    handleResolver: aurora.url,
    plcDirectoryUrl: plc.url,
    allowHttp: true,
    requestLock: async (_name, fn) => fn(),
  })
}

/** Opens the authorization URL in the browser, signs in and consents as a person would. */
async function signInThroughBrowser(browser, url, callback, { handle, password, shots, expect }) {
  const page = await browser.newPage()
  if (process.env.DEBUG_OAUTH) {
    page.on('request', (r) => r.method() === 'POST' && console.log('POST', r.url(), JSON.stringify(r.headers())))
    page.on('response', (r) => console.log('RESP', r.status(), r.url(), JSON.stringify(r.headers()['set-cookie'] ?? '')))
  }
  const arrived = callback.next()
  await page.goto(url.toString())
  await page.getByLabel('Handle or email').fill(handle)
  await page.getByLabel('Password').fill(password)
  if (shots) await page.screenshot({ path: join(screenshots, `${shots}-sign-in.png`), fullPage: true })
  await page.getByRole('button', { name: 'Sign in' }).click()
  try {
    await page.getByRole('button', { name: 'Authorize' }).waitFor({ timeout: 10_000 })
  } catch (err) {
    await page.screenshot({ path: join(screenshots, `${shots ?? 'page'}-unexpected.png`), fullPage: true })
    throw new Error(`no consent page after signing in; the page says: ${(await page.textContent('main').catch(() => '')) ?? ''}`)
  }
  if (shots) await page.screenshot({ path: join(screenshots, `${shots}-consent.png`), fullPage: true })
  for (const text of expect ?? []) {
    const found = await page.getByText(text).count()
    assert(found > 0, `the consent page shows ${JSON.stringify(text)}`)
  }
  await page.getByRole('button', { name: 'Authorize' }).click()
  const params = await arrived
  await page.close()
  return params
}

const plc = await startPlc()
const appView = await startAppView(plc.url)
const tls = appCertificate()
const dns = await startDns()
const aurora = await startAurora(plc.url, {
  PDS_BSKY_APP_VIEW_URL: appView.url,
  PDS_BSKY_APP_VIEW_DID: appView.did,
  AURORA_EXTRA_CA_CERTS: tls.caFile,
  AURORA_DNS_RESOLVER: dns.addr,
})
const callback = await startCallback()
const confidential = await startConfidentialApp(tls)
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
  // The confidential app's callback is https with the test CA, which only Aurora is told of.
  args: ['--no-sandbox', '--disable-gpu', '--ignore-certificate-errors', `--host-resolver-rules=MAP ${APP_HOST} 127.0.0.1`],
})
try {
  const handle = 'olivia.test'
  const password = 'olivia-password-1'
  const created = await fetch(`${aurora.url}/xrpc/com.atproto.server.createAccount`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ handle, password, email: 'olivia@example.com' }),
  }).then((r) => r.json())
  const did = created.did

  const scope = 'atproto transition:generic'
  const client = loopbackClient(aurora, plc, callback, scope)
  let session
  let agent

  await test('the official client signs in on Aurora\'s pages in a real browser', async () => {
    const url = await client.authorize(handle, { scope })
    assert(url.origin === new URL(aurora.url).origin, `authorize URL on Aurora: ${url}`)
    const params = await signInThroughBrowser(browser, url, callback, { handle, password, shots: 'loopback' })
    assert(params.get('iss') === aurora.url, `iss ${params.get('iss')}`)
    ;({ session } = await client.callback(params))
    assert(session.did === did, `session for ${session.did}`)
    agent = new Agent(session)
  })

  await test('the Agent writes and reads records through the DPoP session', async () => {
    const { data } = await agent.com.atproto.repo.createRecord({
      repo: did,
      collection: 'app.bsky.feed.post',
      record: { $type: 'app.bsky.feed.post', text: 'hello over OAuth', createdAt: new Date().toISOString() },
    })
    const rkey = data.uri.split('/').pop()
    const { data: got } = await agent.com.atproto.repo.getRecord({ repo: did, collection: 'app.bsky.feed.post', rkey })
    assert(got.value.text === 'hello over OAuth', JSON.stringify(got))
    const { data: me } = await agent.com.atproto.server.getSession()
    assert(me.did === did && me.email === undefined, JSON.stringify(me))
  })

  await test('proxied app.bsky reads work with the OAuth session', async () => {
    const { data } = await agent.app.bsky.actor.getProfile({ actor: did })
    assert(data.displayName === 'Alice (from the AppView)', JSON.stringify(data))
    assert(appView.seen.some((s) => s.lxm === 'app.bsky.actor.getProfile' && s.iss === did), 'the AppView saw the service token')
  })

  await test('the session refreshes and keeps working', async () => {
    const before = await session.getTokenInfo(false)
    const after = await session.getTokenInfo(true)
    assert(after.expiresAt >= before.expiresAt, 'a new token')
    const { data } = await agent.com.atproto.server.getSession()
    assert(data.did === did, JSON.stringify(data))
  })

  await test('a granular-scope app writes only what it was granted', async () => {
    const narrow = 'atproto repo:app.bsky.feed.post?action=create'
    const app = loopbackClient(aurora, plc, callback, narrow)
    const url = await app.authorize(handle, { scope: narrow })
    const params = await signInThroughBrowser(browser, url, callback, { handle, password, shots: 'granular' })
    const { session: narrowSession } = await app.callback(params)
    const narrowAgent = new Agent(narrowSession)
    await narrowAgent.com.atproto.repo.createRecord({
      repo: did,
      collection: 'app.bsky.feed.post',
      record: { $type: 'app.bsky.feed.post', text: 'allowed', createdAt: new Date().toISOString() },
    })
    let refused
    try {
      await narrowAgent.com.atproto.repo.createRecord({
        repo: did,
        collection: 'app.bsky.graph.follow',
        record: { $type: 'app.bsky.graph.follow', subject: did, createdAt: new Date().toISOString() },
      })
    } catch (err) {
      refused = err
    }
    assert(refused?.status === 403 && refused?.error === 'ScopeMissingError', `refused: ${refused?.status} ${refused?.error}`)
  })

  await test('an unregistered redirect URI is refused at PAR', async () => {
    const res = await fetch(`${aurora.url}/oauth/par`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({
        client_id: `http://localhost?${new URLSearchParams({ redirect_uri: callback.uri, scope: 'atproto' })}`,
        response_type: 'code',
        redirect_uri: 'http://127.0.0.1:1/elsewhere',
        scope: 'atproto',
        code_challenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM',
        code_challenge_method: 'S256',
      }),
    })
    const body = await res.json()
    assert(res.status === 400 && body.error === 'invalid_request', `${res.status} ${JSON.stringify(body)}`)
  })

  await test('a confidential client (private_key_jwt) signs in with its metadata served over https', async () => {
    const key = await JoseKey.generate(['ES256'], 'e2e-key-1')
    const clientScope = 'atproto transition:generic'
    const app = new NodeOAuthClient({
      clientMetadata: {
        client_id: confidential.clientId,
        client_name: 'Aurora E2E Confidential App',
        client_uri: confidential.origin,
        redirect_uris: [confidential.redirectUri],
        scope: clientScope,
        grant_types: ['authorization_code', 'refresh_token'],
        response_types: ['code'],
        application_type: 'web',
        token_endpoint_auth_method: 'private_key_jwt',
        token_endpoint_auth_signing_alg: 'ES256',
        dpop_bound_access_tokens: true,
      },
      keyset: [key],
      stateStore: memoryStore(),
      sessionStore: memoryStore(),
      handleResolver: aurora.url,
      plcDirectoryUrl: plc.url,
      allowHttp: true,
      requestLock: async (_name, fn) => fn(),
    })
    confidential.publish(app.clientMetadata)
    const url = await app.authorize(handle, { scope: clientScope })
    const params = await signInThroughBrowser(browser, url, confidential, {
      handle,
      password,
      shots: 'confidential',
      expect: ['Aurora E2E Confidential App', 'This app proved who it is with its own key.'],
    })
    const { session: appSession } = await app.callback(params)
    const appAgent = new Agent(appSession)
    const { data } = await appAgent.com.atproto.server.getSession()
    assert(data.did === did, JSON.stringify(data))
    await appSession.getTokenInfo(true)
    const { data: again } = await appAgent.com.atproto.repo.describeRepo({ repo: did })
    assert(again.did === did, JSON.stringify(again))
    await appSession.signOut()
  })

  await test('the account page lists the connected apps and revokes one', async () => {
    const page = await browser.newPage()
    await page.goto(`${aurora.url}/account`)
    await page.getByLabel('Handle or email').fill(handle)
    await page.getByLabel('Password').fill(password)
    await page.screenshot({ path: join(screenshots, 'account-sign-in.png'), fullPage: true })
    await page.getByRole('button', { name: 'Sign in' }).click()
    await page.getByRole('heading', { name: 'Connected apps' }).waitFor()
    await page.screenshot({ path: join(screenshots, 'account.png'), fullPage: true })
    const revoke = page.getByRole('button', { name: /^Revoke access for / })
    const before = await revoke.count()
    assert(before >= 1, `connected apps listed: ${before}`)
    await revoke.first().click()
    await page.getByText("The app's access was revoked.").waitFor()
    assert((await revoke.count()) === before - 1, 'one app fewer')
    await page.close()
  })

  await test('signing out revokes the session', async () => {
    await session.signOut()
    let failed
    try {
      await agent.com.atproto.server.getSession()
    } catch (err) {
      failed = err
    }
    assert(failed, 'a revoked session no longer works')
  })
} finally {
  await browser.close()
  await callback.close()
  await confidential.close()
  await dns.close()
  await aurora.stop()
  await appView.close()
  await plc.close()
}
finish()

// End-to-end OAuth: the official @atproto/oauth-client-node signs a person in on Aurora's own
// pages, driven through a real headless Chromium (Debian's chromium, by playwright-core), then
// uses the account through the DPoP session with the official @atproto/api Agent, proxied
// app.bsky reads included; refresh, sign-out and the refusals an app can meet.
// Usage: node oauth.mjs [path/to/aurora-locus]   CHROMIUM=/usr/bin/chromium by default.
// Screenshots of each page go to SCREENSHOT_DIR (default ../../target/oauth-screenshots).
import http from 'node:http'
import { mkdirSync } from 'node:fs'
import { join, dirname } from 'node:path'
import { fileURLToPath } from 'node:url'
import { NodeOAuthClient } from '@atproto/oauth-client-node'
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
async function signInThroughBrowser(browser, url, callback, { handle, password, shots }) {
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
  await page.getByRole('button', { name: 'Authorize' }).click()
  const params = await arrived
  await page.close()
  return params
}

const plc = await startPlc()
const appView = await startAppView(plc.url)
const aurora = await startAurora(plc.url, { PDS_BSKY_APP_VIEW_URL: appView.url, PDS_BSKY_APP_VIEW_DID: appView.did })
const callback = await startCallback()
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu'],
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
  await aurora.stop()
  await appView.close()
  await plc.close()
}
finish()

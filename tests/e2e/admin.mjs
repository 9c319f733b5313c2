// End-to-end administration against the release binary: the admin CLI (`aurora-locus admin …`,
// tables and --json, its errors), then the /admin dashboard in a real headless Chromium — sign
// in, find an account, take it down and see the official @atproto/api client refused, reverse
// it and see it work again — with screenshots at laptop and phone widths.
// Usage: node admin.mjs [path/to/aurora-locus]   CHROMIUM=/usr/bin/chromium by default.
// Screenshots go to SCREENSHOT_DIR (default ../../target/admin-screenshots).
import http from 'node:http'
import { execFile } from 'node:child_process'
import { mkdirSync } from 'node:fs'
import { join, dirname } from 'node:path'
import { fileURLToPath } from 'node:url'
import { AtpAgent } from '@atproto/api'
import { chromium } from 'playwright-core'
import { binary, startPlc, startAurora, freePort, test, assert, expectXrpcError, finish } from './harness.mjs'

const here = dirname(fileURLToPath(import.meta.url))
const screenshots = process.env.SCREENSHOT_DIR ?? join(here, '../../target/admin-screenshots')
mkdirSync(screenshots, { recursive: true })

const ADMIN_PASSWORD = 'e2e-admin-password'
const MODERATOR_PASSWORD = 'e2e-moderator-password'

/** Runs `aurora-locus admin <args>`; resolves with { code, stdout, stderr }. */
function cli(aurora, args, env = {}) {
  return new Promise((resolve) => {
    execFile(
      binary,
      ['admin', '--url', aurora.url, ...args],
      { env: { PATH: process.env.PATH, PDS_ADMIN_PASSWORD: ADMIN_PASSWORD, ...env } },
      (error, stdout, stderr) => resolve({ code: error ? error.code ?? 1 : 0, stdout, stderr }),
    )
  })
}

async function cliJson(aurora, args) {
  const run = await cli(aurora, ['--json', ...args])
  assert(run.code === 0, `admin ${args.join(' ')} failed: ${run.stderr}`)
  return JSON.parse(run.stdout)
}

const post = (text) => ({ $type: 'app.bsky.feed.post', text, createdAt: new Date().toISOString() })

const plc = await startPlc()
const aurora = await startAurora(plc.url, { AURORA_MODERATOR_PASSWORD: MODERATOR_PASSWORD })
try {
  const agent = new AtpAgent({ service: aurora.url })
  await agent.createAccount({ handle: 'quinn.test', email: 'quinn@example.com', password: 'quinn-password-1' })
  const did = agent.session.did

  await test('admin account list shows accounts as a table and as JSON', async () => {
    const table = await cli(aurora, ['account', 'list'])
    assert(table.code === 0, table.stderr)
    assert(/^HANDLE\s+EMAIL\s+DID\s+STATUS\s+CREATED/.test(table.stdout), table.stdout)
    assert(table.stdout.includes('quinn.test') && table.stdout.includes(did), table.stdout)
    const { accounts } = await cliJson(aurora, ['account', 'list'])
    const quinn = accounts.find((a) => a.info.did === did)
    assert(quinn?.info.email === 'quinn@example.com' && quinn.status === 'active', JSON.stringify(accounts))
    const byEmail = await cliJson(aurora, ['account', 'list', '--query', 'QUINN@'])
    assert(byEmail.accounts.length === 1, JSON.stringify(byEmail))
    const takenDown = await cliJson(aurora, ['account', 'list', '--taken-down'])
    assert(takenDown.accounts.length === 0, JSON.stringify(takenDown))
  })

  let created
  await test('admin account create makes an account the official client signs in to', async () => {
    created = await cliJson(aurora, ['account', 'create', 'robin@example.com', 'robin.test'])
    assert(created.did.startsWith('did:plc:') && created.password.length >= 16, JSON.stringify(created))
    const robin = new AtpAgent({ service: aurora.url })
    await robin.login({ identifier: 'robin.test', password: created.password })
    assert(robin.session.did === created.did, 'signed in')
  })

  await test('admin account takedown stops the account; untakedown restores it', async () => {
    const run = await cli(aurora, ['account', 'takedown', 'robin.test', '--ref', 'TICKET-1'])
    assert(run.code === 0 && run.stdout.includes(`took down ${created.did}`), run.stdout + run.stderr)
    const info = await cliJson(aurora, ['account', 'info', created.did])
    assert(info.status.takedown.applied === true && info.status.takedown.ref === 'TICKET-1', JSON.stringify(info))
    await expectXrpcError(new AtpAgent({ service: aurora.url }).login({ identifier: 'robin.test', password: created.password }).then(
      (r) => new AtpAgent({ service: aurora.url }).com.atproto.repo.createRecord(
        { repo: created.did, collection: 'app.bsky.feed.post', record: post('x') },
        { headers: { authorization: `Bearer ${r.data.accessJwt}` } },
      ),
    ), 401, 'AccountTakedown')
    const table = await cli(aurora, ['account', 'info', 'robin.test'])
    assert(/status\s+taken down \(TICKET-1\)/.test(table.stdout), table.stdout)
    const back = await cli(aurora, ['account', 'untakedown', created.did])
    assert(back.code === 0, back.stderr)
    const robin = new AtpAgent({ service: aurora.url })
    await robin.login({ identifier: 'robin.test', password: created.password })
    await robin.com.atproto.repo.createRecord({ repo: created.did, collection: 'app.bsky.feed.post', record: post('back') })
  })

  await test('admin account reset-password, update-handle and update-email take effect', async () => {
    const reset = await cliJson(aurora, ['account', 'reset-password', created.did])
    await expectXrpcError(new AtpAgent({ service: aurora.url }).login({ identifier: 'robin.test', password: created.password }), 401)
    const renamed = await cli(aurora, ['account', 'update-handle', created.did, 'robin2.test'])
    assert(renamed.code === 0, renamed.stderr)
    const robin = new AtpAgent({ service: aurora.url })
    await robin.login({ identifier: 'robin2.test', password: reset.password })
    const email = await cli(aurora, ['account', 'update-email', 'robin2.test', 'robin@new.example'])
    assert(email.code === 0, email.stderr)
    const info = await cliJson(aurora, ['account', 'info', 'robin2.test'])
    assert(info.account.email === 'robin@new.example' && info.account.handle === 'robin2.test', JSON.stringify(info))
  })

  await test('admin invite create, list and disable', async () => {
    const made = await cli(aurora, ['invite', 'create', '--count', '2', '--uses', '3'])
    const codes = made.stdout.trim().split('\n')
    assert(made.code === 0 && codes.length === 2, made.stdout + made.stderr)
    const listed = await cliJson(aurora, ['invite', 'list'])
    assert(codes.every((c) => listed.codes.some((l) => l.code === c && l.available === 3)), JSON.stringify(listed))
    const off = await cli(aurora, ['invite', 'disable', codes[0]])
    assert(off.code === 0, off.stderr)
    const table = await cli(aurora, ['invite', 'list'])
    const line = table.stdout.split('\n').find((l) => l.startsWith(codes[0]))
    assert(line && /\bdisabled\b/.test(line), table.stdout)
  })

  await test('admin request-crawl asks each relay to crawl this host', async () => {
    const seen = []
    const port = await freePort()
    const relay = http.createServer((req, res) => {
      let body = ''
      req.on('data', (c) => (body += c))
      req.on('end', () => {
        seen.push({ url: req.url, body: JSON.parse(body || '{}') })
        res.writeHead(200, { 'content-type': 'application/json' }).end('{}')
      })
    })
    await new Promise((r) => relay.listen(port, '127.0.0.1', r))
    const run = await cli(aurora, ['request-crawl', `http://127.0.0.1:${port}`, '--hostname', 'pds.example.com'])
    relay.close()
    assert(run.code === 0 && run.stdout.includes('ok'), run.stdout + run.stderr)
    assert(seen[0]?.url === '/xrpc/com.atproto.sync.requestCrawl' && seen[0].body.hostname === 'pds.example.com', JSON.stringify(seen))
  })

  await test('admin audit-log lists what was done, newest first', async () => {
    const { entries } = await cliJson(aurora, ['audit-log'])
    const actions = entries.map((e) => e.action)
    for (const action of ['createInviteCode', 'takedown', 'reverse-takedown', 'updateAccountPassword', 'updateAccountHandle', 'updateAccountEmail', 'createInviteCodes', 'disableInviteCodes']) {
      assert(actions.includes(action), `${action} in ${actions}`)
    }
    assert(entries[0].action === 'disableInviteCodes', entries[0].action)
    const about = await cliJson(aurora, ['audit-log', '--subject', created.did])
    assert(about.entries.length >= 5 && about.entries.every((e) => e.subject === created.did), JSON.stringify(about))
  })

  await test('admin refuses clearly: wrong password, server down, deletion unconfirmed', async () => {
    const wrong = await cli(aurora, ['account', 'list'], { PDS_ADMIN_PASSWORD: 'not-it' })
    assert(wrong.code !== 0 && wrong.stderr.includes('refused the admin password'), wrong.stderr)
    const down = await new Promise((resolve) =>
      execFile(binary, ['admin', '--url', 'http://127.0.0.1:9', 'account', 'list'], { env: { PATH: process.env.PATH, PDS_ADMIN_PASSWORD: 'x' } },
        (error, stdout, stderr) => resolve({ code: error?.code ?? 0, stderr })),
    )
    assert(down.code !== 0 && down.stderr.includes('cannot reach http://127.0.0.1:9'), down.stderr)
    const unconfirmed = await cli(aurora, ['account', 'delete', created.did])
    assert(unconfirmed.code !== 0 && unconfirmed.stderr.includes('--yes'), unconfirmed.stderr)
    const deleted = await cli(aurora, ['account', 'delete', created.did, '--yes'])
    assert(deleted.code === 0, deleted.stderr)
    const gone = await cli(aurora, ['account', 'info', created.did])
    assert(gone.code !== 0 && gone.stderr.includes('NotFound'), gone.stderr)
  })

  await test("pdsadmin's own requests work unchanged (account list, create, takedown, untakedown, reset-password, delete)", async () => {
    // The requests bluesky-social/pds's pdsadmin/account.sh makes, byte for byte but for its
    // https:// host (its curl calls: basic auth as admin, JSON bodies, --fail).
    const auth = { authorization: `Basic ${Buffer.from(`admin:${ADMIN_PASSWORD}`).toString('base64')}` }
    const call = async (path, body, withAuth = true) => {
      const r = await fetch(`${aurora.url}/xrpc/${path}`, {
        method: body ? 'POST' : 'GET',
        headers: { ...(withAuth ? auth : {}), ...(body ? { 'Content-Type': 'application/json' } : {}) },
        body,
      })
      const text = await r.text()
      assert(r.ok, `${path}: ${r.status} ${text}`)
      return text ? JSON.parse(text) : null
    }
    const { repos } = await call('com.atproto.sync.listRepos?limit=100', undefined, false)
    for (const { did: each } of repos) {
      const info = await call(`com.atproto.admin.getAccountInfo?did=${each}`)
      assert(info.handle && info.did === each, JSON.stringify(info))
    }
    const { code } = await call('com.atproto.server.createInviteCode', '{"useCount": 1}')
    const password = 'pdsadmin-made-password'
    const made = await call('com.atproto.server.createAccount',
      `{"email":"sam@example.com", "handle":"sam.test", "password":"${password}", "inviteCode":"${code}"}`, false)
    assert(made.did.startsWith('did:'), JSON.stringify(made))
    const takedown = `
    {
      "subject": {
        "$type": "com.atproto.admin.defs#repoRef",
        "did": "${made.did}"
      },
      "takedown": {
        "applied": true,
        "ref": "${Math.floor(Date.now() / 1000)}"
      }
    }`
    await call('com.atproto.admin.updateSubjectStatus', takedown)
    await expectXrpcError(new AtpAgent({ service: aurora.url }).com.atproto.sync.getLatestCommit({ did: made.did }), 400, 'RepoTakendown')
    await call('com.atproto.admin.updateSubjectStatus', `
  {
    "subject": {
      "$type": "com.atproto.admin.defs#repoRef",
      "did": "${made.did}"
    },
    "takedown": {
      "applied": false
    }
  }`)
    await call('com.atproto.admin.updateAccountPassword', `{ "did": "${made.did}", "password": "pdsadmin-reset-password" }`)
    await new AtpAgent({ service: aurora.url }).login({ identifier: 'sam.test', password: 'pdsadmin-reset-password' })
    await call('com.atproto.admin.deleteAccount', `{"did": "${made.did}"}`)
    await expectXrpcError(new AtpAgent({ service: aurora.url }).login({ identifier: 'sam.test', password: 'pdsadmin-reset-password' }), 401)
  })

  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu'],
  })
  try {
    for (const [width, height, name] of [[1280, 860, 'laptop'], [390, 844, 'phone']]) {
      await test(`the dashboard takes an account down and back in a real browser (${name})`, async () => {
        const context = await browser.newContext({ viewport: { width, height } })
        const page = await context.newPage()
        await page.goto(`${aurora.url}/admin`)
        await page.screenshot({ path: join(screenshots, `${name}-sign-in.png`), fullPage: true })
        await page.fill('#password', 'wrong-password')
        await page.click('button[type=submit]')
        assert((await page.textContent('[role=alert]')).includes('not right'), 'a wrong password is refused')
        await page.fill('#password', ADMIN_PASSWORD)
        await page.click('button[type=submit]')
        await page.waitForSelector('text=Signed in.')
        await page.screenshot({ path: join(screenshots, `${name}-overview.png`), fullPage: true })

        await page.click('nav >> text=Accounts')
        await page.fill('#q', 'quinn')
        await page.click('form.search button')
        await page.click('a:has-text("quinn.test")')
        await page.waitForSelector('h1:has-text("quinn.test")')
        await page.fill('#ref', `DASH-${name}`)
        await page.check('form[action$="/takedown"] input[name=confirm]')
        await page.click('form[action$="/takedown"] button')
        await page.waitForSelector('text=The account is taken down')
        assert((await page.textContent('h1 .status')).trim() === 'takendown', 'the status shows')
        await page.screenshot({ path: join(screenshots, `${name}-account-taken-down.png`), fullPage: true })

        // The official client is refused while the takedown stands.
        await expectXrpcError(
          agent.com.atproto.repo.createRecord({ repo: did, collection: 'app.bsky.feed.post', record: post('during') }),
          401,
          'AccountTakedown',
        )
        await expectXrpcError(new AtpAgent({ service: aurora.url }).com.atproto.sync.getLatestCommit({ did }), 400, 'RepoTakendown')

        await page.check('form[action$="/untakedown"] input[name=confirm]')
        await page.click('form[action$="/untakedown"] button')
        await page.waitForSelector('text=The takedown was reversed')
        await page.screenshot({ path: join(screenshots, `${name}-account-restored.png`), fullPage: true })
        // Its refresh token was revoked with the takedown; signing in again works.
        await agent.login({ identifier: 'quinn.test', password: 'quinn-password-1' })
        await agent.com.atproto.repo.createRecord({ repo: did, collection: 'app.bsky.feed.post', record: post('after') })

        await page.click('nav >> text=Audit log')
        const audit = await page.textContent('table')
        assert(audit.includes('takedown') && audit.includes('reverse-takedown') && audit.includes(`DASH-${name}`), audit)
        await page.screenshot({ path: join(screenshots, `${name}-audit.png`), fullPage: true })
        await context.close()
      })
    }

    await test('a moderator signs in to the dashboard but sees no administrator actions', async () => {
      const context = await browser.newContext()
      const page = await context.newPage()
      await page.goto(`${aurora.url}/admin`)
      await page.selectOption('#user', 'moderator')
      await page.fill('#password', MODERATOR_PASSWORD)
      await page.click('button[type=submit]')
      await page.waitForSelector('text=Signed in.')
      await page.goto(`${aurora.url}/admin/accounts/${did}`)
      assert((await page.locator('form[action$="/takedown"]').count()) === 1, 'moderators take down')
      assert((await page.locator('form[action$="/delete"]').count()) === 0, 'but do not delete')
      // Even a hand-made form is refused, by the method's own rule.
      const csrf = await page.inputValue('form[action$="/takedown"] input[name=csrf]')
      const answer = await context.request.post(`${aurora.url}/admin/accounts/${did}/password`, {
        form: { csrf, confirm: 'yes' },
      })
      const text = await answer.text()
      assert(answer.status() === 400 && text.includes('Only the administrator'), `${answer.status()} ${text.slice(0, 300)}`)
      await context.close()
    })
  } finally {
    await browser.close()
  }
} finally {
  await aurora.stop()
  await plc.close()
}
finish()

// Passkeys in Debian's headless Chromium with a CDP virtual authenticator (API.md 11).
//
// Env: API_URL (http://localhost:<port>, the served API), RP_ORIGIN (where page.html is
// served on the relying party's origin, one of FRESHCOM_WEBAUTHN_ORIGINS), WRONG_ORIGIN (the
// page on another port of the same host: the RP id fits, the origin is not allowed; CORS allows
// both), ACCOUNT_ID, EMAIL and PASSWORD (a registered customer of the account), RESULT_FILE
// (where the JSON of what the tests saw goes, for the Python side). CHROMIUM overrides
// /usr/bin/chromium.
// The tests share one browser and run in order, as one customer would.
import assert from 'node:assert/strict'
import { writeFileSync } from 'node:fs'
import { after, before, beforeEach, test } from 'node:test'

import { chromium } from 'playwright-core'

const { API_URL, RP_ORIGIN, WRONG_ORIGIN, ACCOUNT_ID, EMAIL, PASSWORD, RESULT_FILE } = process.env
if (!API_URL || !RP_ORIGIN || !WRONG_ORIGIN || !ACCOUNT_ID || !EMAIL || !PASSWORD || !RESULT_FILE) {
  throw new Error('Set API_URL, RP_ORIGIN, WRONG_ORIGIN, ACCOUNT_ID, EMAIL, PASSWORD and RESULT_FILE')
}
const PAGE_URL = pageUrl(RP_ORIGIN)
const WRONG_PAGE_URL = pageUrl(WRONG_ORIGIN)
// Never a downloaded browser: the system's, with no sandbox (CI runs as root in a container).
const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium'
const CHROMIUM_ARGS = ['--no-sandbox', '--disable-dev-shm-usage', '--disable-gpu']
// A platform authenticator that holds discoverable credentials and verifies its user.
const AUTHENTICATOR = {
  protocol: 'ctap2',
  transport: 'internal',
  hasResidentKey: true,
  hasUserVerification: true,
  isUserVerified: true
}
const TIMEOUT = { timeout: 20_000 }
const PASSKEY_NAME = 'Test laptop'
const FLAGS = { userPresent: 0x01, userVerified: 0x04, backupEligible: 0x08, backedUp: 0x10 }

const session = {}
const result = {}
const consoleErrors = []
let browser

before(async () => {
  browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS })
  session.page = await openPage(PAGE_URL)
})

beforeEach(() => {
  consoleErrors.length = 0  // a failure shows the browser's errors of its own test only
})

after(async () => {
  await browser?.close()
  writeFileSync(RESULT_FILE, JSON.stringify(result))
})

test('Chromium reads WebAuthn options from JSON on the relying party\'s page', TIMEOUT, async () => {
  const support = await session.page.evaluate(() => ({
    secure: window.isSecureContext,
    creation: typeof PublicKeyCredential?.parseCreationOptionsFromJSON,
    request: typeof PublicKeyCredential?.parseRequestOptionsFromJSON
  }))

  assert.deepEqual(support, { secure: true, creation: 'function', request: 'function' }, `Chromium ${browser.version()}`)
})

test('the customer signs in with the password grant', TIMEOUT, async () => {
  const signedIn = await session.page.evaluate(
    ([email, password, accountId]) => signIn(email, password, accountId), [EMAIL, PASSWORD, ACCOUNT_ID]
  )

  expectStatus(signedIn, 200)
  session.accessToken = signedIn.body.access_token
  session.refreshToken = signedIn.body.refresh_token
})

test('the customer registers a passkey with the options the API gives', TIMEOUT, async () => {
  const registered = await session.page.evaluate(
    ([token, name]) => registerPasskey(token, name), [session.accessToken, PASSKEY_NAME]
  )

  const [started, finished] = registered.exchanges
  expectStatus(started, 201)
  assert.equal(started.body.data.type, 'PasskeyRegistration')
  assert.equal(registered.options.rp.id, 'localhost', 'creation options rp.id')
  assert.equal(registered.options.authenticatorSelection?.userVerification, 'required', 'creation options')
  expectStatus(finished, 200)
  assert.equal(finished.body.data.type, 'Passkey', JSON.stringify(finished.body))
  assert.equal(finished.body.data.attributes.name, PASSKEY_NAME)
  const [stored] = await credentials(session.page)
  assert.equal(stored.isResidentCredential, true, 'a discoverable credential')
  assert.equal(stored.rpId, 'localhost')
  assert.equal(toBase64Url(stored.credentialId), registered.credential.id)
  result.passkeyId = finished.body.data.id
  result.passkey = finished.body.data.attributes
  result.credentialId = registered.credential.id
})

test('signing out revokes the session: its access token stops working', TIMEOUT, async () => {
  const signedOut = await session.page.evaluate(token => signOut(token), session.refreshToken)

  expectStatus(signedOut, 200)
  const stale = await session.page.evaluate(token => readCustomer(token), session.accessToken)
  expectStatus(stale, 401)
  delete session.accessToken
  delete session.refreshToken
})

test('the customer signs in with the passkey grant and reads /v1/customer', TIMEOUT, async () => {
  const signedIn = await session.page.evaluate(accountId => signInWithPasskey(accountId), ACCOUNT_ID)

  const [challenge, token] = signedIn.exchanges
  expectStatus(challenge, 201)
  assert.equal(challenge.body.data.type, 'PasskeyChallenge')
  assert.equal(signedIn.options.rpId, 'localhost', 'request options rpId')
  assert.equal(signedIn.options.userVerification, 'required', 'request options')
  assert.deepEqual(signedIn.options.allowCredentials ?? [], [], 'a discoverable login names no credential')
  assert.equal(signedIn.assertion.id, result.credentialId)
  expectStatus(token, 200)
  assert.equal(token.body.token_type, 'bearer')
  assert.equal(token.body.scope, `aid:${ACCOUNT_ID}`)
  assert.match(token.body.refresh_token, /^urt-live-/)
  const customer = await session.page.evaluate(accessToken => readCustomer(accessToken), token.body.access_token)
  expectStatus(customer, 200)
  assert.equal(customer.body.data.attributes.email, EMAIL)
  result.customerId = customer.body.data.id
  result.email = customer.body.data.attributes.email
  result.assertion = authenticatorData(signedIn.assertion.response.authenticatorData)
})

test('a passkey login from another origin is refused with invalid_grant', TIMEOUT, async () => {
  // The same page target, so the same authenticator and credential: only the origin differs.
  await session.page.goto(WRONG_PAGE_URL)

  const signedIn = await session.page.evaluate(accountId => signInWithPasskey(accountId), ACCOUNT_ID)

  const [challenge, token] = signedIn.exchanges
  expectStatus(challenge, 201)
  assert.equal(signedIn.assertion.id, result.credentialId)
  assert.equal(clientData(signedIn.assertion).origin, WRONG_ORIGIN)
  expectStatus(token, 400)
  assert.equal(token.body.error, 'invalid_grant', JSON.stringify(token.body))
})

test('a passkey registration from another origin is refused', TIMEOUT, async () => {
  // A new authenticator: the customer's credential there would exclude a second one.
  const page = await openPage(WRONG_PAGE_URL)
  const signedIn = await page.evaluate(
    ([email, password, accountId]) => signIn(email, password, accountId), [EMAIL, PASSWORD, ACCOUNT_ID]
  )
  expectStatus(signedIn, 200)

  const registered = await page.evaluate(
    ([token, name]) => registerPasskey(token, name), [signedIn.body.access_token, 'Wrong origin']
  )

  const [started, finished] = registered.exchanges
  expectStatus(started, 201)
  assert.equal(clientData(registered.credential).origin, WRONG_ORIGIN)
  assert.ok(finished.status >= 400 && finished.status < 500, describe(finished))
  result.wrongOriginRegistration = { status: finished.status, body: finished.body }
})

function pageUrl (origin) {
  return `${origin}/page.html?${new URLSearchParams({ api: API_URL })}`
}

async function openPage (url) {
  const page = await browser.newPage()
  page.on('console', message => { if (message.type() === 'error') consoleErrors.push(message.text()) })
  const cdp = await page.context().newCDPSession(page)
  await cdp.send('WebAuthn.enable')
  const { authenticatorId } = await cdp.send('WebAuthn.addVirtualAuthenticator', { options: AUTHENTICATOR })
  page.authenticator = { cdp, authenticatorId }
  const response = await page.goto(url)
  assert.equal(response.status(), 200, `GET ${url}`)
  return page
}

async function credentials (page) {
  const { cdp, authenticatorId } = page.authenticator
  return (await cdp.send('WebAuthn.getCredentials', { authenticatorId })).credentials
}

function expectStatus (exchange, status) {
  assert.equal(exchange.status, status, describe(exchange))
}

function describe ({ request, status, body }) {
  const console = status === 0 ? `; the browser's console: ${JSON.stringify(consoleErrors)}` : ''
  return `${request} answered ${status}: ${JSON.stringify(body)}${console}`
}

function clientData (credential) {
  return JSON.parse(Buffer.from(credential.response.clientDataJSON, 'base64url').toString())
}

// What the authenticator signed: its flags and counter (WebAuthn 6.1).
function authenticatorData (encoded) {
  const data = Buffer.from(encoded, 'base64url')
  const flags = Object.fromEntries(Object.entries(FLAGS).map(([name, bit]) => [name, Boolean(data[32] & bit)]))
  return { ...flags, signCount: data.readUInt32BE(33) }
}

function toBase64Url (base64) {
  return Buffer.from(base64, 'base64').toString('base64url')
}

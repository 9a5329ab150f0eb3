// A tfa_email customer logs in through Freshcom's SDK request building (API.md 11), one
// createToken a run: the code arrives by email between the first run and the second.
//
// Env: BASE_URL, ACCOUNT_ID, USERNAME, PASSWORD, and OTP (the emailed code) when there is one.
// Calls createToken({grant_type: 'password', username, password, scope: 'aid:<ACCOUNT_ID>', otp})
// as the SDK does (2742fa6: an otp goes in the X-Freshcom-OTP header and stays in the form).
// The SDK hands its caller only the token endpoint's JSON, so the status and the
// x-freshcom-otp response header are read off the wire, around the SDK's axios adapter. On a
// token, it reads the current user with it (retrieveCurrentUser).
// Prints one JSON line on stdout; any other failure throws, so node exits non-zero.
import { createSdk } from './sdk.mjs'

const { BASE_URL, ACCOUNT_ID, USERNAME, PASSWORD, OTP } = process.env
if (!BASE_URL || !ACCOUNT_ID || !USERNAME || !PASSWORD) {
  throw new Error('Set BASE_URL, ACCOUNT_ID, USERNAME and PASSWORD (and OTP for the second step)')
}

const sdk = createSdk({ apiRootUrl: `${BASE_URL}/v1` })
const wire = recordWire(sdk)

const payload = { grant_type: 'password', username: USERNAME, password: PASSWORD, scope: `aid:${ACCOUNT_ID}` }
if (OTP) {
  payload.otp = OTP
}

let token, refusal
try {
  token = await sdk.createToken(payload)
} catch (reason) {
  if (!reason || typeof reason.error !== 'string') {
    throw reason // not the token endpoint's {error, error_description}
  }
  refusal = reason
}

const [exchange] = wire.take()
const result = {
  sent: {
    path: exchange.path,
    contentType: exchange.headers['Content-Type'],
    otpHeader: exchange.headers['X-Freshcom-OTP'] ?? null,
    form: Object.fromEntries(new URLSearchParams(exchange.body))
  },
  status: exchange.status,
  otpHeader: exchange.responseHeaders['x-freshcom-otp'] ?? null
}

if (refusal) {
  result.refusal = refusal
} else {
  result.token = {
    tokenType: token.token_type,
    expiresIn: token.expires_in,
    scope: token.scope,
    accessToken: token.access_token,
    refreshTokenPrefix: String(token.refresh_token).split('-').slice(0, 2).join('-')
  }
  sdk.setAccessToken(token.access_token)
  const { data: user } = await sdk.retrieveCurrentUser()
  const [read] = wire.take()
  result.user = {
    status: read.status,
    authorization: read.headers.Authorization,
    type: user.type,
    id: user.id,
    username: user.username,
    authMethod: user.authMethod,
    emailVerified: user.emailVerified
  }
}

console.log(JSON.stringify(result))

// Every exchange as it went through the SDK's axios adapter: the request's headers and body,
// the answer's status and (lowercase) headers. Off the wire: the SDK has no such hook.
function recordWire (sdk) {
  const exchanges = []
  const send = sdk.http.defaults.adapter
  sdk.http.defaults.adapter = config => {
    const exchange = { headers: { ...config.headers }, body: config.data }
    exchanges.push(exchange)
    const settle = response => {
      exchange.path = new URL(response.request.path, BASE_URL).pathname
      exchange.status = response.status
      exchange.responseHeaders = response.headers
    }
    return send(config).then(
      response => { settle(response); return response },
      error => { if (error.response) settle(error.response); throw error }
    )
  }
  return { take: () => exchanges.splice(0) }
}

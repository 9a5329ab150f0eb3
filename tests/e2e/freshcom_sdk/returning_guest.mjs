// A returning guest registers through Freshcom's SDK request building (API.md 9), one step a run.
//
// Env: BASE_URL, PRT (the account's publishable key), ACCOUNT_ID, EMAIL, PASSWORD and STEP:
// - register: the storefront's createCustomer with the guest's email; prints the deserialized
//   answer and the HTTP status it came with (the SDK itself only hands back the document);
// - confirm (and TOKEN, from the emailed link): POST /registration_confirmations on the SDK's
//   own axios instance, as a storefront's confirm-registration page would (the 2018 SDK has
//   no such call), then the password grant and the customer with its orders. A rejected
//   confirmation prints its status and error pointers instead.
// Prints one JSON line on stdout; any other failure throws, so node exits non-zero.
import SimpleJAS from 'simple-jas'

import { createSdk } from './sdk.mjs'

const { BASE_URL, PRT, ACCOUNT_ID, EMAIL, PASSWORD, STEP, TOKEN } = process.env
if (!BASE_URL || !PRT || !ACCOUNT_ID || !EMAIL || !PASSWORD || !STEP) {
  throw new Error('Set BASE_URL, PRT, ACCOUNT_ID, EMAIL, PASSWORD and STEP')
}

const sdk = createSdk({ apiRootUrl: `${BASE_URL}/v1` })
const statuses = recordStatuses(sdk)
const steps = { register, confirm }
if (!steps[STEP]) {
  throw new Error(`STEP must be one of ${Object.keys(steps).join(', ')}, not ${STEP}`)
}

await signInAsGuest()
console.log(JSON.stringify(await steps[STEP]()))

async function register () {
  const { data, meta } = await sdk.createCustomer({ status: 'registered', email: EMAIL, password: PASSWORD, firstName: 'Roy' })
  return { status: statuses.at(-1), type: data.type, id: data.id, email: data.email, confirmation: data.status, meta }
}

async function confirm () {
  if (!TOKEN) {
    throw new Error('Set TOKEN for STEP=confirm')
  }
  const body = SimpleJAS.serialize({ type: 'RegistrationConfirmation', token: TOKEN })
  let confirmed
  try {
    confirmed = SimpleJAS.deserialize((await sdk.http.post('/registration_confirmations', body)).data).data
  } catch (error) {
    if (!error.response) {
      throw error
    }
    const errors = error.response.data.errors || []
    return { status: error.response.status, pointers: errors.map(e => e.source && e.source.pointer), codes: errors.map(e => e.code) }
  }
  const confirmStatus = statuses.at(-1)
  const token = await sdk.createToken({ grant_type: 'password', username: EMAIL, password: PASSWORD, scope: `aid:${ACCOUNT_ID}` })
  sdk.setAccessToken(token.access_token)
  const { data: customer } = await sdk.retrieveCurrentCustomer({ include: 'orders' })
  return {
    status: confirmStatus,
    confirmed: { type: confirmed.type, id: confirmed.id, status: confirmed.status, emailVerified: confirmed.emailVerified },
    customer: {
      id: customer.id,
      status: customer.status,
      emailVerified: customer.emailVerified,
      orderIds: customer.orders.map(order => order.id)
    }
  }
}

async function signInAsGuest () {
  const token = await sdk.createToken({ grant_type: 'refresh_token', refresh_token: PRT })
  sdk.setAccessToken(token.access_token)
}

// The HTTP status of every answer, in order: an interceptor after the SDK's, off the wire.
function recordStatuses (sdk) {
  const seen = []
  sdk.http.interceptors.response.use(
    response => { seen.push(response.status); return response },
    error => { if (error.response) seen.push(error.response.status); throw error }
  )
  return seen
}

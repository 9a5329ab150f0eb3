// The request building of Freshcom's JavaScript SDK, for the calls a storefront makes.
//
// Source: freshcom/freshcom_dashboard src/freshcom-sdk.js @ 2742fa6 (2018-08, the last
// version before client_id), with the same packages: axios, qs, simple-jas 0.4.14. The wire
// is the SDK's; two changes make it testable and are not on the wire:
// - createSdk() builds a fresh instance, where the SDK module is one shared object;
// - the refresh-on-401 interceptor also stores the new refresh token and calls
//   accessTokenRefreshed, as the SDK's last version (2438150, 2018-12) does without its
//   client_id. The 2742fa6 interceptor keeps the old refresh token, which a rotating client
//   refuses on the next refresh.
import axios from 'axios'
import qs from 'qs'
import SimpleJAS from 'simple-jas'

export function createSdk ({ apiRootUrl, locale = 'en' }) {
  const http = axios.create({
    baseURL: apiRootUrl,
    headers: { 'Content-Type': 'application/vnd.api+json' },
    params: { locale },
    paramsSerializer: params => qs.stringify(params, { arrayFormat: 'brackets' })
  })

  const sdk = {
    http,
    refreshToken: undefined,
    accessTokenRefreshed: undefined,

    setLocale (newLocale) {
      http.defaults.params.locale = newLocale
    },

    setRefreshToken (refreshToken) {
      sdk.refreshToken = refreshToken
    },

    setAccessToken (accessToken) {
      // The SDK replaces the default headers with a copy rather than editing them in
      // place, which in axios 0.18 would reach every instance (axios#385).
      const headers = JSON.parse(JSON.stringify(http.defaults.headers))
      headers.common.Authorization = `Bearer ${accessToken}`
      http.defaults.headers = headers
    },

    // Resolves the token endpoint's JSON; rejects with its {error, error_description}.
    createToken (payload) {
      const headers = { 'Content-Type': 'application/x-www-form-urlencoded' }
      if (payload.otp) {
        headers['X-Freshcom-OTP'] = payload.otp
      }
      return http.post('/token', qs.stringify(payload), { headers })
        .then(response => response.data)
        .catch(error => {
          throw (error.response && error.response.data) || error
        })
    },

    createCustomer (fields, params = {}) {
      return http.post('/customers', SimpleJAS.serialize(fields), { params })
        .then(deserialize, rejectWithResponse)
    },

    // GET /user: the caller's user (2742fa6's retrieveCurrentUser).
    retrieveCurrentUser (params = {}) {
      return http.get('/user', { params }).then(deserialize, rejectWithResponse)
    },

    retrieveCurrentCustomer (params = {}) {
      return http.get('/customer', { params }).then(deserialize, rejectWithResponse)
    },

    updateCustomer (id, fields = {}, params = {}) {
      return http.patch(`/customers/${id}`, SimpleJAS.serialize(fields), { params })
        .then(deserialize, rejectWithResponse)
    }
  }

  http.interceptors.response.use(undefined, error => {
    const config = error.config
    const status = error.response && error.response.status
    if (status !== 401 || !sdk.refreshToken || !config || config.retried) {
      throw error
    }
    config.retried = true
    return sdk.createToken({ refresh_token: sdk.refreshToken, grant_type: 'refresh_token' }).then(token => {
      sdk.setAccessToken(token.access_token)
      sdk.setRefreshToken(token.refresh_token)
      if (sdk.accessTokenRefreshed) {
        sdk.accessTokenRefreshed(token)
      }
      config.headers.Authorization = `Bearer ${token.access_token}`
      return http(config)
    })
  })

  return sdk
}

function deserialize (response) {
  return SimpleJAS.deserialize(response.data)
}

// A 422 rejects with the axios response plus its errors grouped by field; any other HTTP
// error with the bare response; anything else (a failed refresh included) as it came.
function rejectWithResponse (error) {
  const response = error && error.response
  if (response && response.status === 422) {
    response.errors = SimpleJAS.deserializeErrors(response.data.errors)
  }
  throw response || error
}

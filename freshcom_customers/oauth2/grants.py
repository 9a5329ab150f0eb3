"""The password, passkey, refresh_token and client_credentials grants, Freshcom style: account
scopes, PRTs and URTs."""

import uuid
from typing import Literal

from authlib.oauth2.rfc6749 import (
    InvalidClientError,
    InvalidGrantError,
    InvalidRequestError,
    UnauthorizedClientError,
)
from authlib.oauth2.rfc6749.grants import (
    BaseGrant,
    ClientCredentialsGrant,
    RefreshTokenGrant,
    ResourceOwnerPasswordCredentialsGrant,
    TokenEndpointMixin,
)
from authlib.oauth2.rfc6749.util import extract_basic_authorization

from freshcom_customers.errors import InvalidCredentials, NotFound
from freshcom_customers.http import throttling
from freshcom_customers.oauth2.errors import (
    LockedOutError,
    OtpRequiredError,
    TooManyRequestsError,
)
from freshcom_customers.oauth2.scopes import GENERIC_FAILURE, account_scope, requested_account
from freshcom_customers.oauth2.server import AUTH_METHODS, CONFIDENTIAL_AUTH_METHODS
from freshcom_customers.observability import metrics, security_events
from freshcom_customers.services import (
    access_tokens,
    accounts,
    customers,
    logins,
    refresh_tokens,
    second_factors,
    sessions,
    users,
)

PASSKEY_GRANT = "urn:freshcom:params:oauth:grant-type:passkey"
OTP_HEADER = "X-Freshcom-OTP"


class FreshcomGrant:
    """What the grants share: client resolution, the login's session and the token response."""

    TOKEN_ENDPOINT_AUTH_METHODS = AUTH_METHODS

    @property
    def client_grant(self) -> str:
        """The grant type a client's allowlist must name for this grant."""
        return self.GRANT_TYPE

    def named_client(self):
        """The client the request authenticated as, or None when it named none."""
        client = self.authenticate_token_endpoint_client()
        if client is not None and not client.check_grant_type(self.client_grant):
            raise UnauthorizedClientError(f"The client may not use grant_type={self.GRANT_TYPE}.")
        return client

    def client_for(self, named, account, loaded=None):
        """The named client, or the account's default one; it must serve the account.

        loaded: a client read already (a refresh token's), taken when it is that default one.
        """
        if named is not None:
            client = named
        elif loaded is not None and loaded.is_default and loaded.account_id == account.live_id:
            client = loaded
        else:
            client = accounts.default_client(account)
        if client is None or not client.serves(account) or not client.check_grant_type(self.client_grant):
            raise InvalidGrantError(GENERIC_FAILURE)
        return client

    def log_in(self, logged_in: logins.LoggedIn, named) -> None:
        self.request.client = self.client_for(named, logged_in.account)
        self.request.user = logged_in.user
        self.request.account = logged_in.account
        self.request.role = logged_in.role
        self.request.second_factor = logged_in.second_factor

    def session_token_response(self, grant: str):
        """Start the logged-in user's session and answer with its tokens."""
        user, account = self.request.user, self.request.account
        issued, customer = sessions.log_in(
            user, account, self.request.client, self.device(), second_factor=self.request.second_factor
        )
        # A user has at most one customer: the one in this account is the token's.
        customer_id = customer.id if customer is not None and customer.account_id == account.id else None
        response = self.token(account, issued.value, user, issued.family_id, self.request.role, customer_id)
        metrics.token_issued(grant)
        return 200, response, self.TOKEN_RESPONSE_HEADER

    def customer_token_response(self, read, issued: refresh_tokens.Issued, grant: str):
        """The tokens of a customer read at once (a rotation's, a login's), without its rows:
        read names its account_id, user_id, token_generation, customer_id and client_id."""
        access_token, lifetime = access_tokens.issue_to(
            read.account_id,
            "customer",
            user_id=read.user_id,
            generation=read.token_generation,
            customer_id=read.customer_id,
            client_id=read.client_id,
            family_id=issued.family_id,
        )
        metrics.token_issued(grant)
        response = token_response(read.account_id, access_token, lifetime, issued.value)
        return 200, response, self.TOKEN_RESPONSE_HEADER

    def device(self) -> sessions.Device:
        """Where a session starting with this request is: its user agent and network."""
        return sessions.device(self.request.headers.get("User-Agent"), throttling.client_ip())

    def required(self, name: str) -> str:
        value = self.request.form.get(name)
        if not value:
            raise InvalidRequestError(f"Missing '{name}' in request.")
        return value

    def token(self, account, refresh_token: str, user, family_id=None, role=None, customer_id=None) -> dict:
        """A user's token response; the access token names the client and the refresh token
        family (a guest's is guest_token_response).

        role and customer_id (a customer's), when the grant knows them already, spare looking
        them up again.
        """
        if role is None:
            role = users.role_in(user, account)
        if role != "customer":
            customer_id = None
        elif customer_id is None:
            try:
                customer_id = customers.customer_of_user(account, user).id
            except NotFound:
                raise InvalidGrantError(GENERIC_FAILURE) from None
        access_token, lifetime = access_tokens.issue(
            account,
            role,
            user=user,
            customer_id=customer_id,
            client_id=self.request.client.id,
            family_id=family_id,
        )
        return token_response(account.id, access_token, lifetime, refresh_token)


class PasswordGrant(FreshcomGrant, ResourceOwnerPasswordCredentialsGrant):
    """With aid: scope, a managed user of that account; without, a standard user."""

    def validate_token_request(self):
        named = self.named_client()
        username, password = self.required("username"), self.required("password")
        # Freshcom's SDK sends the code in the header; a body otp is the same code (API.md 11).
        otp = self.request.headers.get(OTP_HEADER) or self.request.form.get("otp")
        reference = requested_account(self.request.payload.scope)
        login = logins.Login(throttling.current(), throttling.client_ip())
        try:
            # Without a client named, a customer's login may start its session at once.
            logged_in = login.with_password(reference, username, password, otp, at_once=named is None)
        except (second_factors.SecondFactorRequired, second_factors.WrongSecondFactor) as e:
            # The view commits either way: a code sent is stored, and its email leaves then.
            raise OtpRequiredError(e.method) from None
        except InvalidCredentials:
            raise InvalidGrantError(GENERIC_FAILURE) from None
        except throttling.Throttled as e:
            raise TooManyRequestsError(e.retry_after) from None
        except logins.LockedOut as e:
            raise LockedOutError(e.retry_after) from None
        self.request.at_once = None
        if isinstance(logged_in, logins.CustomerLoggedIn):
            self.request.at_once = logged_in
        else:
            self.log_in(logged_in, named)

    def create_token_response(self):
        if self.request.at_once is None:
            return self.session_token_response("password")
        login = self.request.at_once
        issued = sessions.start_at_once(
            login.account_id, login.mode, login.user_id, login.customer_id, login.client_id, self.device()
        )
        return self.customer_token_response(login, issued, "password")


class PasskeyGrant(FreshcomGrant, TokenEndpointMixin, BaseGrant):
    """A passkey's assertion for an account's challenge (API.md 11): the password grant's tokens.

    A client that may log users in with a password may with a passkey: no allowlist entry of its own.
    """

    GRANT_TYPE = PASSKEY_GRANT

    @property
    def client_grant(self) -> str:
        return "password"

    def validate_token_request(self):
        named = self.named_client()
        assertion = self.required("assertion")
        reference = requested_account(self.request.payload.scope)
        login = logins.Login(throttling.current(), throttling.client_ip())
        try:
            logged_in = login.with_passkey(reference, assertion)
        except InvalidCredentials:
            raise InvalidGrantError(GENERIC_FAILURE) from None
        except throttling.Throttled as e:
            raise TooManyRequestsError(e.retry_after) from None
        self.log_in(logged_in, named)

    def create_token_response(self):
        return self.session_token_response("passkey")


class RefreshGrant(FreshcomGrant, RefreshTokenGrant):
    """A PRT gives a guest token; a URT a user token, of the test twin if the scope says so."""

    def validate_token_request(self):
        value = self.request.form.get("refresh_token")
        self.request.at_once = self.refresh_at_once(value) if value else None
        if self.request.at_once is None:
            named = self.named_client()
            self.validate_token(named, self.required("refresh_token"))

    def refresh_at_once(self, value: str) -> refresh_tokens.Refreshed | refresh_tokens.Guest | None:
        """The common refreshes in one statement where the database can; None for the general
        way, which authenticates the client the request names.

        Without a client named, a storefront's: a customer's rotation
        (refresh_tokens.rotate_at_once) and a guest's token from the publishable key
        (refresh_tokens.guest_at_once). With a public client named by its client_id alone, a
        customer's refresh from a client that does not rotate (refresh_tokens.keep_at_once),
        which checks in the statement what authenticating that client checks.
        """
        client_id = self.public_client_id()
        if client_id is False:
            return None  # a secret or Basic credentials: the general way authenticates them
        reference = requested_account(self.request.payload.scope)
        account_id = accounts.referenced_id(reference) if reference is not None else None
        if reference is not None and account_id is None:
            return None  # a handle: the general way reads the account
        if client_id is not None:
            return refresh_tokens.keep_at_once(value, account_id, client_id, sessions.TOUCH_INTERVAL)
        if value.startswith("prt-"):
            return refresh_tokens.guest_at_once(value, account_id)
        return refresh_tokens.rotate_at_once(value, account_id, sessions.TOUCH_INTERVAL)

    def public_client_id(self) -> uuid.UUID | Literal[False] | None:
        """The client the request names by its client_id without a secret (RFC 6749 2.3's
        "none"), None when it names none, False for the general way: a secret, Basic
        credentials alone or malformed, or a client_id that is no client's id.

        As Authlib's "none" comes first, a client_id in the body without a secret names the
        client whatever the Authorization header says (the statement checks it is public).
        """
        if self.request.form.get("client_secret"):
            return False
        try:
            basic_id, _ = extract_basic_authorization(self.request.headers)
        except ValueError:  # the general way refuses it (AuthorizationServer.authenticate_client)
            return False
        client_id = self.request.payload.client_id
        if not client_id:
            return False if basic_id else None
        try:
            return uuid.UUID(client_id)
        except ValueError:
            return False

    def validate_token(self, named, value: str) -> None:
        try:
            presented = refresh_tokens.present(value)
        except InvalidCredentials:
            raise InvalidGrantError(GENERIC_FAILURE) from None
        token = presented.token
        account = self.target_account(token)
        client = self.client_for(named, account, token.client)
        if not token.is_publishable and (token.client_id != client.id or not token.user.is_active):
            raise InvalidGrantError(GENERIC_FAILURE)
        self.request.client = client
        self.request.refresh_token = token
        self.request.presented = presented
        self.request.account = account
        self.request.user = token.user

    def target_account(self, token):
        """The token's account, or its test twin when a live URT asks for the twin's scope."""
        reference = requested_account(self.request.payload.scope)
        if reference is None:
            return token.account
        account = accounts.find_by_reference(reference)
        if account is not None and account.id == token.account_id:
            return account
        is_twin = account is not None and account.live_account_id == token.account_id
        if is_twin and not token.is_publishable:
            return account
        raise InvalidGrantError(GENERIC_FAILURE)

    def create_token_response(self):
        at_once = self.request.at_once
        if isinstance(at_once, refresh_tokens.Refreshed):
            return self.customer_token_response(at_once, at_once.issued, "refresh_token_urt")
        if isinstance(at_once, refresh_tokens.Guest):
            return self.guest_token_response(at_once.account_id, at_once.client_id, at_once.publishable_key)
        token, account = self.request.refresh_token, self.request.account
        if token.is_publishable:
            return self.guest_token_response(account.id, self.request.client.id, token.prefixed_id)
        presented, customer_id = self.request.presented, None
        if account.id != token.account_id:
            issued = sessions.branch(token, account, self.device())
        else:
            try:
                issued = refresh_tokens.use(
                    token, account, self.request.form["refresh_token"], sessions.TOUCH_INTERVAL
                )
            except InvalidCredentials:
                raise InvalidGrantError(GENERIC_FAILURE) from None
            customer_id = presented.customer_id  # read with the token, in its account
        sessions.touch(token.family_id, presented.session_used_at)
        response = self.token(account, issued.value, token.user, issued.family_id, customer_id=customer_id)
        metrics.token_issued("refresh_token_urt")
        return 200, response, self.TOKEN_RESPONSE_HEADER

    def guest_token_response(self, account_id, client_id, publishable_key: str):
        """A guest's access token for the account, issued to the client; the key is sent back."""
        access_token, lifetime = access_tokens.issue_to(account_id, "guest", client_id=client_id)
        metrics.token_issued("refresh_token_prt")
        response = token_response(account_id, access_token, lifetime, publishable_key)
        return 200, response, self.TOKEN_RESPONSE_HEADER


class MachineGrant(ClientCredentialsGrant):
    """client_credentials (API.md 12): a confidential client with a staff role gets an access
    token with that role for its account, or the test twin its scope names; no refresh token.

    A public client, a wrong secret or none: 401 invalid_client (Authlib's, with a Basic
    challenge); a client without the grant or without a role: unauthorized_client.
    """

    TOKEN_ENDPOINT_AUTH_METHODS = CONFIDENTIAL_AUTH_METHODS

    def validate_token_request(self):
        client = self.authenticate_token_endpoint_client()
        if client is None:  # no client named: the token endpoint's default client is no machine
            raise InvalidClientError(status_code=401, description="Authenticate the client.")
        if not client.check_grant_type(self.GRANT_TYPE) or client.role is None:
            raise UnauthorizedClientError(f"The client may not use grant_type={self.GRANT_TYPE}.")
        self.request.client = client
        self.request.account = self.account_for(client)

    def account_for(self, client):
        """The client's account, or the account the scope names when it is that account's test twin."""
        reference = requested_account(self.request.payload.scope)
        if reference is None:
            return client.account
        account = accounts.find_by_reference(reference)
        if account is None or not client.serves(account):
            raise InvalidGrantError(GENERIC_FAILURE)
        return account

    def create_token_response(self):
        client, account = self.request.client, self.request.account
        access_token, lifetime = access_tokens.issue_for_client(account, client)
        security_events.record(
            "client_token_issued",
            client_id=str(client.id),
            client_name=client.name,
            account_id=str(account.id),
            role=client.role,
        )
        metrics.token_issued(self.GRANT_TYPE)
        return 200, token_response(account.id, access_token, lifetime), self.TOKEN_RESPONSE_HEADER


def token_response(account_id, access_token: str, lifetime: int, refresh_token: str | None = None) -> dict:
    """RFC 6749 5.1's answer, with the account's scope; no refresh token for a machine."""
    response = {"access_token": access_token, "token_type": "bearer", "expires_in": lifetime}
    if refresh_token is not None:
        response["refresh_token"] = refresh_token
    response["scope"] = account_scope(account_id)
    return response

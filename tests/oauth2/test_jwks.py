"""Signing keys: a kid in every token, and key rotation that keeps the old key's tokens valid.

The suite signs with an RSA key (RS256), as deployments from before issue 18 do; an Ed25519
key (EdDSA), the default of new ones, is tested here, and the rotation from one to the other.
"""

import base64
import json

import pytest
from joserfc import jwt
from joserfc.jwk import ECKey, OKPKey, RSAKey

from freshcom_customers.app import create_app
from freshcom_customers.config import ConfigError
from freshcom_customers.services import access_tokens


@pytest.fixture(scope="module")
def new_key_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("rotated") / "jwt-new.pem"
    path.write_bytes(RSAKey.generate_key(2048, private=True).as_pem(private=True))
    return path


@pytest.fixture(scope="module")
def ed25519_key_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("ed25519") / "jwt-ed25519.pem"
    path.write_bytes(OKPKey.generate_key("Ed25519", private=True).as_pem(private=True))
    return path


@pytest.fixture
def ed25519_app(app_config, jwt_key_file, ed25519_key_file):
    """The service after a rotation from the suite's RSA key to an Ed25519 key."""
    return create_app(
        {
            **app_config,
            "JWT_PRIVATE_KEY_FILE": str(ed25519_key_file),
            "JWT_PREVIOUS_KEY_FILES": str(jwt_key_file),
        }
    )


@pytest.fixture
def rotated_app(app_config, jwt_key_file, new_key_file):
    """The service after a key rotation: a new key signs, the suite's key only verifies."""
    return create_app(
        {
            **app_config,
            "JWT_PRIVATE_KEY_FILE": str(new_key_file),
            "JWT_PREVIOUS_KEY_FILES": f" {jwt_key_file} ,",
        }
    )


def header_of(token: str) -> dict:
    first = token.split(".")[0]
    return json.loads(base64.urlsafe_b64decode(first + "=" * (-len(first) % 4)))


def me(client, token: str):
    return client.get("/v1/user", headers={"Authorization": f"Bearer {token}"})


def test_every_token_names_its_key(app, auth, account):
    signer = app.extensions["freshcom_signer"]
    for token in (auth.owner(account), auth.guest(account)):
        header = header_of(token)
        assert header == {"alg": "RS256", "kid": signer.kid, "typ": "at+jwt"}
    assert signer.kid == signer.key.thumbprint()


def test_the_jwks_publishes_the_signing_key(app, client):
    keys = client.get("/.well-known/jwks.json").get_json()["keys"]
    assert [key["kid"] for key in keys] == [app.extensions["freshcom_signer"].kid]
    assert keys[0]["use"] == "sig" and keys[0]["alg"] == "RS256"
    assert "d" not in keys[0]  # never the private half


def test_after_a_rotation_old_tokens_still_work_and_new_ones_use_the_new_key(
    app, auth, account, rotated_app, new_key_file
):
    old_token = auth.owner(account)
    old_kid = app.extensions["freshcom_signer"].kid
    new_kid = RSAKey.import_key(new_key_file.read_bytes()).thumbprint()

    with rotated_app.test_client() as rotated:
        assert me(rotated, old_token).status_code == 200
        keys = rotated.get("/.well-known/jwks.json").get_json()["keys"]
        assert [key["kid"] for key in keys] == [new_kid, old_kid]
        assert all("d" not in key for key in keys)

        new_token = _logged_in_owner(rotated, account)
        assert header_of(new_token)["kid"] == new_kid
        assert me(rotated, new_token).status_code == 200
    # The service before the rotation never trusted the new key.
    assert me(app.test_client(), new_token).status_code == 401


def test_once_the_old_key_is_dropped_its_tokens_are_401(app, app_config, auth, account, new_key_file):
    old_token = auth.owner(account)
    assert me(app.test_client(), old_token).status_code == 200  # verified, and remembered, there
    dropped = create_app({**app_config, "JWT_PRIVATE_KEY_FILE": str(new_key_file)})
    response = me(dropped.test_client(), old_token)
    assert response.status_code == 401
    assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]


def test_a_previous_key_may_be_given_as_a_public_key(app_config, jwt_key_file, new_key_file, auth, account):
    public_pem = RSAKey.import_key(jwt_key_file.read_bytes()).as_pem(private=False)
    public_file = new_key_file.with_name("jwt-old-public.pem")
    public_file.write_bytes(public_pem)
    rotated = create_app(
        {**app_config, "JWT_PRIVATE_KEY_FILE": str(new_key_file), "JWT_PREVIOUS_KEY_FILES": str(public_file)}
    )
    assert me(rotated.test_client(), auth.owner(account)).status_code == 200


def test_an_unreadable_previous_key_stops_the_start(app_config, tmp_path):
    with pytest.raises(ConfigError, match="FRESHCOM_JWT_PREVIOUS_KEY_FILES"):
        create_app({**app_config, "JWT_PREVIOUS_KEY_FILES": str(tmp_path / "missing.pem")})


@pytest.mark.parametrize("header", ["unknown kid", "no kid"])
def test_a_token_without_a_published_kid_is_401(app, client, account, header):
    signer = app.extensions["freshcom_signer"]
    good = access_tokens.decode(_owner_token(app, account))
    if header == "unknown kid":
        # Signed by a key we never published, under a kid we do not know.
        other = RSAKey.generate_key(2048)
        token = jwt.encode({"alg": "RS256", "kid": other.thumbprint()}, good, other)
    else:
        # Even our own key's signature is refused when the token does not name it.
        token = jwt.encode({"alg": "RS256"}, good, signer.key)
    response = me(client, token)
    assert response.status_code == 401
    assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]


def test_a_token_naming_our_kid_but_signed_by_another_key_is_401(app, client, account):
    signer = app.extensions["freshcom_signer"]
    claims = access_tokens.decode(_owner_token(app, account))
    forged = jwt.encode({"alg": "RS256", "kid": signer.kid}, claims, RSAKey.generate_key(2048))
    assert me(client, forged).status_code == 401


def test_an_ed25519_key_signs_eddsa_and_is_published_as_such(ed25519_app, account):
    signer = ed25519_app.extensions["freshcom_signer"]
    with ed25519_app.app_context():
        token = _owner_token(ed25519_app, account)
    assert header_of(token) == {"alg": "EdDSA", "kid": signer.kid, "typ": "at+jwt"}
    with ed25519_app.test_client() as client:
        assert me(client, token).status_code == 200
        published = client.get("/.well-known/jwks.json").get_json()["keys"][0]
    assert published == {**signer.key.as_dict(private=False), "kid": signer.kid, "alg": "EdDSA", "use": "sig"}
    assert "d" not in published


def test_a_rotation_from_rsa_to_ed25519_keeps_the_rsa_tokens_valid(app, auth, account, ed25519_app):
    old_token = auth.owner(account)
    old_kid = app.extensions["freshcom_signer"].kid
    with ed25519_app.test_client() as rotated:
        assert me(rotated, old_token).status_code == 200
        keys = rotated.get("/.well-known/jwks.json").get_json()["keys"]
        assert [(key["kty"], key["alg"]) for key in keys] == [("OKP", "EdDSA"), ("RSA", "RS256")]
        assert keys[1]["kid"] == old_kid
        new_token = _logged_in_owner(rotated, account)
        assert header_of(new_token)["alg"] == "EdDSA"
        assert me(rotated, new_token).status_code == 200
    # The service before the rotation never trusted the Ed25519 key.
    assert me(app.test_client(), new_token).status_code == 401


@pytest.mark.parametrize("kid_of", ["RSA", "OKP"])
def test_a_kid_verifies_with_its_keys_algorithm_only(ed25519_app, account, kid_of):
    """No algorithm confusion: a token naming a key of one kind under the other kind's alg is refused."""
    signer = ed25519_app.extensions["freshcom_signer"]
    with ed25519_app.app_context():
        claims = access_tokens.decode(_owner_token(ed25519_app, account))
    kid = next(key.kid for key in signer.public_keys.keys if key.key_type == kid_of)
    if kid_of == "RSA":
        token = jwt.encode({"alg": "EdDSA", "kid": kid}, claims, signer.key, registry=access_tokens.REGISTRY)
    else:
        token = jwt.encode({"alg": "RS256", "kid": kid}, claims, RSAKey.generate_key(2048))
    assert me(ed25519_app.test_client(), token).status_code == 401


@pytest.mark.parametrize(
    "key",
    [OKPKey.generate_key("X25519", private=True), ECKey.generate_key("P-256", private=True)],
    ids=["X25519", "P-256"],
)
def test_a_key_of_another_kind_stops_the_start(app_config, tmp_path, key):
    path = tmp_path / "jwt.pem"
    path.write_bytes(key.as_pem(private=True))
    with pytest.raises(ConfigError, match=r"FRESHCOM_JWT_PRIVATE_KEY_FILE: .* holds no Ed25519 or RSA key"):
        create_app({**app_config, "JWT_PRIVATE_KEY_FILE": str(path)})


def _owner_token(app, account) -> str:
    return access_tokens.issue(account.live, "owner", user=account.owner)[0]


def _logged_in_owner(client, account) -> str:
    """The account owner's access token from a password login on client's app."""
    body = {"grant_type": "password", "username": account.owner.username, "password": account.owner_password}
    return client.post("/v1/token", data=body).get_json()["access_token"]

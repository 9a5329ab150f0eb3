"""The command line of API.md §8: accounts create, clients create, demo seed."""

import json
import os
import subprocess
import sys
import uuid

import flask_migrate
import pytest
from sqlalchemy import select

from freshcom_customers.app import MIGRATIONS
from freshcom_customers.cli import PASSWORD_UNCHANGED
from freshcom_customers.models import Account, Client, RefreshToken, User
from freshcom_customers.oauth2.scopes import GENERIC_FAILURE
from tests.conftest import create_client


def test_accounts_create_prints_the_contract_json(runner, session):
    result = runner.invoke(
        args=[
            "accounts",
            "create",
            "Acme",
            "--owner-email",
            "Boss@Acme.test",
            "--owner-password",
            "boss-password-1",
            "--handle",
            "acme",
        ]
    )
    assert result.exit_code == 0, result.output
    output = json.loads(result.output)
    assert output["account"]["handle"] == "acme"
    assert output["account"]["mode"] == "live"
    assert output["account"]["publishableKey"].startswith("prt-live-")
    assert output["testAccount"]["mode"] == "test"
    assert output["testAccount"]["publishableKey"].startswith("prt-test-")
    assert output["owner"]["username"] == "boss@acme.test"
    live = session.get(Account, uuid.UUID(output["account"]["id"]))
    assert str(live.test_account.id) == output["testAccount"]["id"]
    assert session.scalar(select(Client).where(Client.account_id == live.id, Client.is_default)) is not None


def test_accounts_create_prompts_for_the_password(runner, session, auth):
    result = runner.invoke(
        args=["accounts", "create", "Acme", "--owner-email", "boss@acme.test"],
        input="boss-password-1\nboss-password-1\n",
    )
    assert result.exit_code == 0, result.output
    assert auth.token(grant_type="password", username="boss@acme.test", password="boss-password-1")


def test_accounts_create_refuses_a_taken_handle_cleanly(runner, account):
    result = runner.invoke(
        args=[
            "accounts",
            "create",
            "Other",
            "--owner-email",
            "x@other.test",
            "--owner-password",
            "other-password-1",
            "--handle",
            "acme",
        ]
    )
    assert result.exit_code == 1
    assert "Handle has already been taken" in result.output
    assert "Traceback" not in result.output


def test_accounts_create_refuses_a_short_password(runner, session):
    result = runner.invoke(
        args=[
            "accounts",
            "create",
            "Shortpass Store",
            "--owner-email",
            "x@acme.test",
            "--owner-password",
            "short",
        ]
    )
    assert result.exit_code == 1
    assert "8 to 128" in result.output
    assert session.scalar(select(Account).where(Account.name == "Shortpass Store")) is None


def test_clients_create_public_and_confidential(runner, account, session):
    public = json.loads(
        runner.invoke(
            args=["clients", "create", "--account", str(account.live.id), "--name", "Storefront"]
        ).output
    )
    assert set(public) == {"clientId"}
    confidential = json.loads(
        runner.invoke(
            args=[
                "clients",
                "create",
                "--account",
                str(account.live.id),
                "--name",
                "Back office",
                "--confidential",
                "--no-rotation",
            ]
        ).output
    )
    assert set(confidential) == {"clientId", "clientSecret"}
    stored = session.get(Client, uuid.UUID(confidential["clientId"]))
    assert stored.secret_hash != confidential["clientSecret"]
    assert stored.check_client_secret(confidential["clientSecret"])
    assert stored.rotate_refresh_tokens is False


def test_clients_create_for_an_unknown_account(runner, session):
    result = runner.invoke(args=["clients", "create", "--account", "not-an-id", "--name", "X"])
    assert result.exit_code == 1
    assert result.output == "Error: no account with id or handle 'not-an-id'\n"


def test_demo_seed_is_repeatable_and_keeps_the_owners_password(runner, session, auth):
    first = runner.invoke(args=["demo", "seed"])
    second = runner.invoke(args=["demo", "seed"])
    assert first.stderr == "" and second.stderr == PASSWORD_UNCHANGED + "\n"
    first, second = json.loads(first.stdout), json.loads(second.stdout)
    assert "password" not in second["owner"]
    assert {**first, "owner": {**first["owner"], "password": None}} == {
        **second,
        "owner": {**second["owner"], "password": None},
    }
    assert len(session.scalars(select(Account).where(Account.handle == "demo")).all()) == 1
    token = auth.token(
        grant_type="password", username=first["owner"]["username"], password=first["owner"]["password"]
    )
    assert token["scope"] == f"aid:{first['account']['id']}"
    guest = auth.token(grant_type="refresh_token", refresh_token=second["account"]["publishableKey"])
    assert guest["refresh_token"] == second["account"]["publishableKey"]


def test_demo_seed_resets_the_owners_password_when_asked(runner, session, auth):
    first = json.loads(runner.invoke(args=["demo", "seed"]).stdout)
    reset = runner.invoke(args=["demo", "seed", "--reset-password"])
    assert reset.stderr == ""
    second = json.loads(reset.stdout)
    assert second["account"] == first["account"]
    assert second["owner"]["password"] != first["owner"]["password"]
    username = second["owner"]["username"]
    assert auth.token(grant_type="password", username=username, password=second["owner"]["password"])
    auth.token(expect=400, grant_type="password", username=username, password=first["owner"]["password"])


def test_nothing_secret_is_stored_in_plain_text(runner, session, auth):
    seeded = json.loads(runner.invoke(args=["demo", "seed"]).output)
    token = auth.token(
        grant_type="password", username=seeded["owner"]["username"], password=seeded["owner"]["password"]
    )
    owner = session.scalar(select(User).where(User.username == seeded["owner"]["username"]))
    assert owner.password_hash.startswith("$argon2id$")
    hashes = session.scalars(select(RefreshToken.token_hash).where(RefreshToken.user_id == owner.id)).all()
    assert token["refresh_token"] not in hashes
    assert len(hashes) == 1 and len(hashes[0]) == 64


def test_rotation_can_be_switched_off_on_the_default_client(runner, account, auth, register):
    """Freshcom's 2018 SDK names no client and never stores a rotated refresh token."""
    result = runner.invoke(args=["clients", "update", "--account", str(account.live.id), "--no-rotation"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["rotation"] is False
    register()
    first = auth.login(account, "roy@example.com", "roy-password-1")["refresh_token"]
    for _ in range(3):
        again = auth.token(grant_type="refresh_token", refresh_token=first)
        assert again["refresh_token"] == first
    result = runner.invoke(args=["clients", "update", "--account", str(account.live.id), "--rotation"])
    assert json.loads(result.output)["rotation"] is True
    assert auth.token(grant_type="refresh_token", refresh_token=first)["refresh_token"] != first


def test_clients_update_names_a_client_of_the_account(runner, account, other_account):
    theirs = json.loads(
        runner.invoke(
            args=["clients", "create", "--account", str(other_account.live.id), "--name", "X"]
        ).output
    )["clientId"]
    for client_id in (theirs, "not-an-id"):
        result = runner.invoke(
            args=[
                "clients",
                "update",
                "--account",
                str(account.live.id),
                "--client",
                client_id,
                "--no-rotation",
            ]
        )
        assert result.exit_code == 1
        assert "Traceback" not in result.output


def test_the_password_grant_can_be_switched_off_on_the_default_client(runner, account, auth, register):
    """RFC 9700 2.4: a client gets the password grant only while its allowlist names it."""
    register()
    login = {
        "grant_type": "password",
        "username": "roy@example.com",
        "password": "roy-password-1",
        "scope": f"aid:{account.live.id}",
    }
    urt = auth.token(**login)["refresh_token"]
    result = runner.invoke(
        args=["clients", "update", "--account", str(account.live.id), "--no-password-grant"]
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["passwordGrant"] is False
    assert auth.token(expect=400, **login) == {"error": "invalid_grant", "error_description": GENERIC_FAILURE}
    # The refresh grant stays: sessions go on, and the publishable key still gives guest tokens.
    assert auth.token(grant_type="refresh_token", refresh_token=urt)["access_token"]
    assert auth.token(grant_type="refresh_token", refresh_token=account.prt)["access_token"]

    result = runner.invoke(args=["clients", "update", "--account", str(account.live.id), "--password-grant"])
    assert json.loads(result.output)["passwordGrant"] is True
    assert auth.token(**login)["access_token"]


def test_a_client_created_without_the_password_grant_is_unauthorized_for_it(runner, account, auth, register):
    register()
    kiosk = create_client(runner, account, "Kiosk", "--no-password-grant")
    assert set(kiosk) == {"clientId"}
    response = auth.client.post(
        "/v1/token",
        data={
            "grant_type": "password",
            "username": "roy@example.com",
            "password": "roy-password-1",
            "scope": f"aid:{account.live.id}",
            "client_id": kiosk["clientId"],
        },
    )
    assert response.status_code == 400
    assert response.get_json()["error"] == "unauthorized_client"
    assert response.headers["Cache-Control"] == "no-store"
    # The account's other clients keep it.
    assert auth.login(account, "roy@example.com", "roy-password-1")["access_token"]


UPGRADE_LINE = "Error: the database schema is not up to date; run: flask --app wsgi db upgrade"
ANY_ID = "00000000-0000-0000-0000-000000000000"
COMMANDS = [
    ["accounts", "create", "Acme", "--owner-email", "boss@acme.test", "--owner-password", "boss-password-1"],
    ["clients", "create", "--account", ANY_ID, "--name", "Storefront"],
    ["clients", "update", "--account", ANY_ID, "--no-rotation"],
    ["accounts", "list"],
    ["accounts", "show", ANY_ID],
    ["accounts", "rotate-publishable-key", "--account", ANY_ID],
    [
        "users",
        "create-staff",
        "--account",
        ANY_ID,
        "--email",
        "a@x.test",
        "--role",
        "manager",
        "--password",
        "p" * 12,
    ],
    ["demo", "seed"],
    ["customers", "import", "{file}", "--account", ANY_ID],
    ["customers", "export", "--account", ANY_ID],
]


@pytest.mark.parametrize("revision", [None, "0005"], ids=["no tables", "at 0005"])
@pytest.mark.parametrize("command", COMMANDS, ids=lambda command: " ".join(command[:2]))
def test_commands_on_a_database_behind_the_migrations_say_to_upgrade(app_on, tmp_path, revision, command):
    unmigrated = app_on(f"sqlite:///{tmp_path / 'unmigrated.sqlite'}")
    customers = tmp_path / "customers.csv"
    customers.write_text("email\nroy@example.com\n")
    with unmigrated.app_context():
        if revision:
            flask_migrate.upgrade(revision=revision)
        result = unmigrated.test_cli_runner().invoke(args=[arg.format(file=customers) for arg in command])
    assert result.exit_code == 1
    assert result.output.strip() == UPGRADE_LINE
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_the_db_commands_and_help_still_work_on_an_unmigrated_database(app_on, tmp_path):
    unmigrated = app_on(f"sqlite:///{tmp_path / 'unmigrated.sqlite'}")
    runner = unmigrated.test_cli_runner()
    with unmigrated.app_context():
        assert runner.invoke(args=["accounts", "create", "--help"]).exit_code == 0
        assert runner.invoke(args=["db", "upgrade"]).exit_code == 0
        result = runner.invoke(args=["demo", "seed"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["account"]["handle"] == "demo"


def test_the_flask_command_prints_one_line_and_no_traceback(app_config, tmp_path):
    """As an operator meets it: flask --app wsgi accounts create on a new database."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FRESHCOM_") and k != "DATABASE_URL"}
    env.update(
        FRESHCOM_SQLALCHEMY_DATABASE_URI=f"sqlite:///{tmp_path / 'new.sqlite'}",
        FRESHCOM_SECRET_KEY=app_config["SECRET_KEY"],
        FRESHCOM_JWT_PRIVATE_KEY_FILE=app_config["JWT_PRIVATE_KEY_FILE"],
    )
    result = subprocess.run(
        [sys.executable, "-m", "flask", "--app", "wsgi", *COMMANDS[0]],
        cwd=MIGRATIONS.parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert result.stderr.strip() == UPGRADE_LINE
    assert result.stdout == ""

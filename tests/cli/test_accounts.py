"""flask accounts list, show and rotate-publishable-key."""

import json
from datetime import UTC, datetime, timedelta

import pytest

from freshcom_customers.services import users
from tests.conftest import create_client


def invoke(runner, *args: str, expect: int = 0):
    result = runner.invoke(args=list(args))
    assert result.exit_code == expect, result.output
    return result


def test_accounts_list_prints_one_live_account_a_line(runner, account, other_account):
    lines = invoke(runner, "accounts", "list").stdout.splitlines()
    assert [json.loads(line) for line in lines] == [
        {
            "id": str(a.live.id),
            "handle": a.live.handle,
            "name": a.live.name,
            "mode": "live",
            "testAccountId": str(a.test.id),
        }
        for a in (account, other_account)
    ]


def test_accounts_list_prints_nothing_without_accounts(runner, session):
    assert invoke(runner, "accounts", "list").stdout == ""


@pytest.mark.parametrize(
    "reference", ["{live}", "{test}", "acme", "ACME", "aid-live-{live}", "aid-test-{test}"]
)
def test_accounts_show_finds_the_account_by_either_id_or_handle(runner, account, reference):
    reference = reference.format(live=account.live.id, test=account.test.id)
    shown = json.loads(invoke(runner, "accounts", "show", reference).stdout)
    assert shown["account"]["id"] == str(account.live.id)
    assert shown["testAccount"]["id"] == str(account.test.id)


def test_accounts_show_prints_keys_clients_and_counts_without_secrets(runner, account, session):
    backend = create_client(runner, account, "Back office", "--confidential", "--no-rotation")
    users.create_managed_user(account.live, username="ann", password="ann-password-1", role="manager")
    session.commit()

    result = invoke(runner, "accounts", "show", "acme")

    assert backend["clientSecret"] not in result.output
    shown = json.loads(result.stdout)
    assert shown["account"] == {
        "id": str(account.live.id),
        "handle": "acme",
        "name": "Acme",
        "mode": "live",
        "publishableKey": account.prt,
        "retiringKeys": [],
    }
    assert shown["testAccount"] == {
        "id": str(account.test.id),
        "mode": "test",
        "publishableKey": account.test_prt,
        "retiringKeys": [],
    }
    default, extra = shown["clients"]
    assert default["default"] is True and default["confidential"] is False
    assert extra == {
        "clientId": backend["clientId"],
        "name": "Back office",
        "default": False,
        "confidential": True,
        "rotation": False,
        "passwordGrant": True,
    }
    assert (shown["owners"], shown["members"], shown["staff"]) == (1, 1, 1)


def test_rotate_publishable_key_keeps_the_old_key_for_the_grace_period(runner, auth, account):
    old = account.prt
    before = datetime.now(UTC)

    rotated = json.loads(invoke(runner, "accounts", "rotate-publishable-key", "--account", "acme").stdout)

    assert rotated["account"] == {"id": str(account.live.id), "mode": "live"}
    assert rotated["publishableKey"] == account.prt != old
    assert rotated["previousKey"]["publishableKey"] == old
    expires_at = datetime.fromisoformat(rotated["previousKey"]["expiresAt"])
    assert (
        before + timedelta(hours=24) - timedelta(seconds=1)
        <= expires_at
        <= before + timedelta(hours=24, seconds=5)
    )
    for key in (old, rotated["publishableKey"]):
        assert auth.token(grant_type="refresh_token", refresh_token=key)["access_token"]
    shown = json.loads(invoke(runner, "accounts", "show", "acme").stdout)["account"]
    assert shown["publishableKey"] == rotated["publishableKey"]
    assert shown["retiringKeys"] == [rotated["previousKey"]]


def test_rotate_publishable_key_with_no_grace_stops_the_old_key_now(runner, auth, account):
    old = account.prt
    invoke(runner, "accounts", "rotate-publishable-key", "--account", str(account.test.id), "--grace", "0")
    assert auth.token(grant_type="refresh_token", refresh_token=old)["access_token"]  # the live key: kept
    test_old = json.loads(invoke(runner, "accounts", "show", "acme").stdout)["testAccount"]
    assert test_old["retiringKeys"] == []


@pytest.mark.parametrize("grace", ["1 week", "-1h", "h"])
def test_rotate_publishable_key_refuses_a_grace_that_is_no_duration(runner, account, grace):
    result = invoke(
        runner, "accounts", "rotate-publishable-key", "--account", "acme", "--grace", grace, expect=2
    )
    assert "is not a duration" in result.output
    assert account.prt == account.prt  # unchanged: nothing was written


@pytest.mark.parametrize(
    "command",
    [
        ["accounts", "show", "{ref}"],
        ["accounts", "rotate-publishable-key", "--account", "{ref}"],
        ["clients", "create", "--account", "{ref}", "--name", "X"],
        ["clients", "update", "--account", "{ref}", "--no-rotation"],
        [
            "users",
            "create-staff",
            "--account",
            "{ref}",
            "--email",
            "a@x.test",
            "--role",
            "manager",
            "--password",
            "p" * 12,
        ],
    ],
    ids=lambda command: " ".join(command[:2]),
)
@pytest.mark.parametrize("reference", ["nope", "00000000-0000-0000-0000-000000000000", "aid-live-zzz"])
def test_every_command_names_an_unknown_account_in_one_line(runner, session, command, reference):
    result = invoke(runner, *[arg.format(ref=reference) for arg in command], expect=1)
    assert result.output == f"Error: no account with id or handle {reference!r}\n"


@pytest.mark.parametrize("client_id", ["not-an-id", "00000000-0000-0000-0000-000000000000"])
def test_clients_update_names_an_unknown_client(runner, account, client_id):
    result = invoke(
        runner, "clients", "update", "--account", "acme", "--client", client_id, "--no-rotation", expect=1
    )
    assert result.output == f"Error: no client with id {client_id!r} serves account '{account.live.id}'\n"

"""flask clients create --role, list and rotate-secret (API.md 12): machine credentials."""

import json
import logging
import uuid
from datetime import datetime, timedelta

import pytest

from freshcom_customers.models import Client
from freshcom_customers.models.base import utcnow
from tests.conftest import create_client


def clients(runner, *args: str):
    return runner.invoke(args=["clients", *args])


def printed(result):
    """The JSON a command printed on stdout (its security events go to stderr)."""
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def stored(session, client_id: str) -> Client:
    return session.get(Client, uuid.UUID(client_id), populate_existing=True)


def rotate(runner, account, client_id: str, grace: str):
    return clients(
        runner, "rotate-secret", "--account", str(account.live.id), "--client", client_id, "--grace", grace
    )


@pytest.fixture
def machine(runner, account) -> dict:
    return create_client(runner, account, "Back office", "--confidential", "--role", "manager")


# create --role


def test_create_with_a_role_prints_id_secret_and_role(session, account, machine):
    assert set(machine) == {"clientId", "clientSecret", "role"}
    assert machine["role"] == "manager"
    row = stored(session, machine["clientId"])
    assert (row.role, row.grant_types, row.account_id) == ("manager", "client_credentials", account.live.id)
    assert row.secret_hash != machine["clientSecret"]
    assert row.check_client_secret(machine["clientSecret"])
    assert row.token_generation == 0


def test_create_with_a_role_needs_confidential(runner, session, account):
    before = session.query(Client).count()
    result = clients(runner, "create", "--account", str(account.live.id), "--name", "Bot", "--role", "owner")
    assert result.exit_code == 1, result.output
    assert "confidential" in result.output
    assert "Traceback" not in result.output
    assert session.query(Client).count() == before


@pytest.mark.parametrize("role", ["customer", "guest", "anonymous", "root"])
def test_create_refuses_a_role_that_is_not_a_staff_role(runner, session, account, role):
    before = session.query(Client).count()
    result = clients(
        runner, "create", "--account", str(account.live.id), "--name", "Bot", "--confidential", "--role", role
    )
    assert result.exit_code == 2, result.output
    assert "--role" in result.output
    assert session.query(Client).count() == before


def test_create_without_a_role_is_as_before(session, runner, account):
    created = create_client(runner, account, "Backend", "--confidential")
    assert set(created) == {"clientId", "clientSecret"}
    row = stored(session, created["clientId"])
    assert row.role is None
    assert "client_credentials" not in row.grant_types.split()


# list


def test_list_prints_every_client_of_the_account_default_first_without_secrets(
    runner, session, account, other_account, machine
):
    public = create_client(runner, account, "Storefront")
    create_client(runner, other_account, "Elsewhere", "--confidential", "--role", "owner")
    result = clients(runner, "list", "--account", str(account.live.id))
    listed = printed(result)
    assert [c["name"] for c in listed][1:] == ["Back office", "Storefront"]
    default, bot, shop = listed
    assert default["isDefault"] is True and default["confidential"] is False and default["role"] is None
    assert bot == {
        "clientId": machine["clientId"],
        "name": "Back office",
        "isDefault": False,
        "confidential": True,
        "role": "manager",
        "grantTypes": ["client_credentials"],
        "rotation": True,
        "insertedAt": bot["insertedAt"],
    }
    assert datetime.fromisoformat(bot["insertedAt"].replace("Z", "+00:00")) <= utcnow()
    assert shop["clientId"] == public["clientId"] and shop["role"] is None
    assert machine["clientSecret"] not in result.output
    assert stored(session, machine["clientId"]).secret_hash not in result.output


@pytest.mark.parametrize("reference", ["handle", "test id"])
def test_list_names_the_account_by_handle_or_its_test_twin(runner, account, machine, reference):
    named = "acme" if reference == "handle" else str(account.test.id)
    listed = printed(clients(runner, "list", "--account", named))
    assert machine["clientId"] in [c["clientId"] for c in listed]


def test_list_shows_a_client_created_with_the_test_twins_id(runner, account):
    """clients create accepts the test twin's id (the client then belongs to the twin); the
    list, which names the twin's clients by the live account, must show it too."""
    made = create_client_for(runner, str(account.test.id))
    for reference in (str(account.test.id), str(account.live.id)):
        listed = printed(clients(runner, "list", "--account", reference))
        assert made["clientId"] in [c["clientId"] for c in listed], reference


def create_client_for(runner, reference: str) -> dict:
    return printed(
        clients(
            runner,
            "create",
            "--account",
            reference,
            "--name",
            "Twin job",
            "--confidential",
            "--role",
            "owner",
        )
    )


def test_list_of_an_unknown_account_is_a_one_line_error(runner, session):
    result = clients(runner, "list", "--account", "nobody")
    assert result.exit_code == 1
    assert result.output == "Error: no account with id or handle 'nobody'\n"


# rotate-secret


def test_rotate_secret_prints_the_new_secret_and_when_the_old_one_stops(runner, session, account, machine):
    before = utcnow()
    output = printed(rotate(runner, account, machine["clientId"], "3600"))
    assert set(output) == {"clientId", "clientSecret", "previousSecretExpiresAt"}
    assert output["clientId"] == machine["clientId"]
    assert output["clientSecret"] != machine["clientSecret"]
    stops = datetime.fromisoformat(output["previousSecretExpiresAt"].replace("Z", "+00:00"))
    assert output["previousSecretExpiresAt"].endswith("Z")
    assert before + timedelta(seconds=3599) <= stops <= utcnow() + timedelta(seconds=3601)
    row = stored(session, machine["clientId"])
    assert row.check_client_secret(output["clientSecret"])
    assert row.check_client_secret(machine["clientSecret"])  # until the grace ends
    assert output["clientSecret"] not in (row.secret_hash, row.previous_secret_hash)


def test_rotate_secret_with_no_grace_stops_the_old_secret_now(runner, session, account, machine):
    output = printed(rotate(runner, account, machine["clientId"], "0"))
    assert output["previousSecretExpiresAt"] is None
    row = stored(session, machine["clientId"])
    assert row.check_client_secret(output["clientSecret"])
    assert not row.check_client_secret(machine["clientSecret"])
    assert row.previous_secret_hash is None


def test_rotate_secret_works_on_a_confidential_client_without_a_role(runner, session, account):
    backend = create_client(runner, account, "Backend", "--confidential")
    output = printed(rotate(runner, account, backend["clientId"], "60"))
    assert stored(session, backend["clientId"]).check_client_secret(output["clientSecret"])


def test_rotate_secret_of_a_public_client_is_refused(runner, session, account):
    public = create_client(runner, account, "Storefront")
    result = rotate(runner, account, public["clientId"], "60")
    assert result.exit_code == 1, result.output
    assert "public" in result.output.lower()
    assert "Traceback" not in result.output
    assert stored(session, public["clientId"]).secret_hash is None


def test_rotate_secret_of_another_accounts_client_is_refused(runner, session, account, other_account):
    foreign = create_client(runner, other_account, "Elsewhere", "--confidential", "--role", "owner")
    result = rotate(runner, account, foreign["clientId"], "60")
    assert result.exit_code == 1
    assert result.output.startswith(f"Error: no client with id {foreign['clientId']!r}")
    assert stored(session, foreign["clientId"]).check_client_secret(foreign["clientSecret"])


@pytest.mark.parametrize("grace", ["-1", "soon", "1.5"])
def test_rotate_secret_refuses_a_grace_that_is_not_whole_seconds(runner, session, account, machine, grace):
    result = rotate(runner, account, machine["clientId"], grace)
    assert result.exit_code == 2, result.output
    assert "--grace" in result.output
    assert stored(session, machine["clientId"]).check_client_secret(machine["clientSecret"])


def test_rotate_secret_refuses_a_grace_past_any_date_cleanly(runner, session, account, machine):
    # 10**12 seconds is 31,700 years: no date holds its end (Python's stop at 9999).
    result = rotate(runner, account, machine["clientId"], str(10**12))
    assert result.exit_code in (1, 2), result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert "--grace" in result.output
    assert stored(session, machine["clientId"]).check_client_secret(machine["clientSecret"])


def test_rotate_secret_needs_a_grace(runner, account, machine):
    result = clients(
        runner, "rotate-secret", "--account", str(account.live.id), "--client", machine["clientId"]
    )
    assert result.exit_code == 2
    assert "--grace" in result.output


def test_a_rotation_is_a_security_event_without_the_secrets(runner, account, machine, caplog):
    with caplog.at_level(logging.INFO, logger="freshcom_customers.security"):
        output = printed(rotate(runner, account, machine["clientId"], "120"))
    (event,) = [r for r in caplog.records if getattr(r, "security_event", None) == "client_secret_rotated"]
    assert event.fields["client_id"] == machine["clientId"]
    assert event.fields["grace"] == 120
    for secret in (output["clientSecret"], machine["clientSecret"]):
        assert secret not in repr(event.__dict__)

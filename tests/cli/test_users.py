"""flask users create-staff: a managed staff user of an account."""

import json

import pytest

from freshcom_customers.services import access_tokens

STAFF = ["users", "create-staff", "--account", "acme", "--email", "Ann@Acme.test", "--role", "manager"]


def test_create_staff_prints_the_user_who_then_logs_in_with_the_role(runner, auth, account):
    result = runner.invoke(args=[*STAFF, "--password", "ann-password-1", "--name", "Ann Lee"])
    assert result.exit_code == 0, result.output
    created = json.loads(result.output)
    assert created == {
        "id": created["id"],
        "accountId": str(account.live.id),
        "username": "ann@acme.test",
        "email": "ann@acme.test",
        "role": "manager",
    }
    token = auth.login(account, "ann@acme.test", "ann-password-1")["access_token"]
    principal = access_tokens.authenticate(token)
    assert (str(principal.user.id), principal.role, principal.user.name) == (
        created["id"],
        "manager",
        "Ann Lee",
    )


def test_create_staff_prompts_for_the_password_twice(runner, auth, account):
    result = runner.invoke(args=[*STAFF, "--username", "ann"], input="ann-password-1\nann-password-1\n")
    assert result.exit_code == 0, result.output
    assert "ann-password-1" not in result.output
    assert auth.login(account, "ann", "ann-password-1")["access_token"]


@pytest.mark.parametrize("role", ["owner", "customer", "boss"])
def test_create_staff_offers_the_staff_roles_but_owner(runner, account, role):
    args = [*STAFF[:-1], role, "--password", "ann-password-1"]
    result = runner.invoke(args=args)
    assert result.exit_code == 2
    offered = result.output.split("is not one of ")[1]
    assert "'manager'" in offered and "'administrator'" in offered and "'owner'" not in offered


def test_create_staff_refuses_a_weak_password_in_one_line(runner, account):
    result = runner.invoke(args=[*STAFF, "--password", "short"])
    assert result.exit_code == 1
    assert result.output.startswith("Error: password: ") and "Traceback" not in result.output


def test_create_staff_refuses_a_taken_email_in_one_line(runner, account):
    assert runner.invoke(args=[*STAFF, "--password", "ann-password-1"]).exit_code == 0
    result = runner.invoke(args=[*STAFF, "--password", "ann-password-1", "--username", "ann2"])
    assert result.exit_code == 1
    assert result.output == "Error: email: Email has already been taken.\n"

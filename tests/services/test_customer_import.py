"""Customer import and export as services: plain rows in, customers written whole and never twice.

The files, their columns and the reading of their rows are tested in tests/cli/test_customer_files.py.
"""

import uuid
from datetime import datetime

import pytest
from argon2 import PasswordHasher, Type
from sqlalchemy import func, select

from freshcom_customers.errors import FieldError
from freshcom_customers.models import Customer, User
from freshcom_customers.services import customer_export, customer_import, customers, passwords
from freshcom_customers.services.customer_import import Row

# Argon2 hashes made elsewhere, with other parameters than ours.
ARGON2I = PasswordHasher(memory_cost=512, time_cost=2, parallelism=1, type=Type.I).hash("legacy-pass-1")
ARGON2ID = PasswordHasher(memory_cost=2048, time_cost=1, parallelism=2).hash("legacy-pass-2")
MD5_CRYPT = "$1$saltsalt$qjXMvbEw8oaL.CzflDugX/"  # a format no platform of API.md §9 stores
BAD_EMAIL = FieldError("email", "format", "Not a valid email address.")


def run(account, *rows, **options) -> dict:
    """Import rows (Rows, or dicts of checked values on lines 1, 2, …); return the counts and failures.

    A failure reads "field: title; …" (snake_case), or the row's problem.
    """
    rows = [row if isinstance(row, Row) else Row(line, row) for line, row in enumerate(rows, 1)]
    summary = {"created": 0, "skipped": 0, "failures": {}}
    for batch in customer_import.import_customers(account.live, rows, **options):
        summary["created"] += batch.created
        summary["skipped"] += batch.skipped
        summary["failures"].update({f.line: _reason(f) for f in batch.failures})
    return summary


def _reason(failure: customer_import.Failure) -> str:
    return failure.problem or "; ".join(f"{e.field}: {e.title}" for e in failure.errors)


def customer(session, account, email) -> Customer | None:
    return session.scalar(
        select(Customer).where(Customer.account_id == account.live.id, Customer.email == email)
    )


def count(session, model, account) -> int:
    return session.scalar(select(func.count()).select_from(model).where(model.account_id == account.live.id))


@pytest.mark.parametrize(
    ("values", "reason"),
    [
        ({"name": "No Keys"}, "email: An imported customer needs an email or a code."),
        (
            {"email": "a@x.test", "status": "registered", "password": "short"},
            "password: Password must be 8 to 128 characters long.",
        ),
        (
            {"email": "a@x.test", "status": "registered", "password": "password1"},
            "password: This password is one of the most common ones; choose another.",
        ),
        (
            {"code": "C1", "status": "registered", "password": "long enough 1"},
            "email: Email is required to register.",
        ),
        (
            {"email": "a@x.test", "password": "long enough 1"},
            "password: A guest has no login; set status to registered or suspended.",
        ),
        (
            {"email": "a@x.test", "username": "ann", "password_hash": ARGON2ID},
            "username: A guest has no login; set status to registered or suspended.; "
            "password_hash: A guest has no login; set status to registered or suspended.",
        ),
        (
            {
                "email": "a@x.test",
                "status": "registered",
                "password": "long enough 1",
                "password_hash": ARGON2ID,
            },
            "password_hash: Give a password or its hash, not both.",
        ),
        (
            {"email": "a@x.test", "status": "registered", "password_hash": MD5_CRYPT},
            "password_hash: Not a password hash in a format this service accepts.",
        ),
        (
            {"email": "a@x.test", "status": "registered", "password_hash": "$2b$15$" + "a" * 53},
            "password_hash: Costs more than this service allows: bcrypt cost 15; at most 14.",
        ),
    ],
)
def test_a_row_breaking_an_import_rule_is_reported_and_written_not_at_all(session, account, values, reason):
    summary = run(account, {"email": "first@x.test"}, values)
    assert summary["failures"] == {2: reason}
    assert summary["created"] == 1
    assert count(session, Customer, account) == 1
    assert count(session, User, account) == 0


def test_a_registered_row_without_a_password_waits_for_an_invitation(session, account, mailbox):
    """Its user has no password, so no login works, and the import sends no email: staff invite
    such customers when they choose (flask customers invite)."""
    assert run(account, {"email": "ivy@x.test", "status": "registered"})["created"] == 1
    session.commit()
    assert customer(session, account, "ivy@x.test").user.password_hash is None
    assert mailbox.settled() == []


def test_a_row_read_with_errors_fails_with_them_and_is_not_written(session, account):
    errors = (BAD_EMAIL, FieldError("custom_data", "invalid", "Not a valid mapping type."))
    summary = run(account, Row(7, {"email": "nope", "custom_data": [1]}, errors))
    assert summary == {
        "created": 0,
        "skipped": 0,
        "failures": {7: "email: Not a valid email address.; custom_data: Not a valid mapping type."},
    }
    assert count(session, Customer, account) == 0


def test_a_row_that_is_not_a_record_fails_with_its_problem_and_claims_nothing(session, account):
    rows = [
        Row(1, {"email": "ann@x.test"}, problem="A line must be a JSON object."),
        Row(2, {"email": "ann@x.test"}),
    ]
    assert run(account, *rows) == {
        "created": 1,
        "skipped": 0,
        "failures": {1: "A line must be a JSON object."},
    }


def test_a_repeated_email_or_code_in_the_file_fails_on_every_run(session, account):
    rows = [
        {"email": "ann@x.test", "code": "A"},
        {"email": "ANN@x.test"},
        {"email": "bob@x.test", "code": "A"},
    ]
    expected = {2: "email: Also on line 1 of the file.", 3: "code: Also on line 1 of the file."}
    assert run(account, *rows) == {"created": 1, "skipped": 0, "failures": expected}
    assert run(account, *rows) == {"created": 0, "skipped": 1, "failures": expected}


def test_a_row_read_with_errors_still_claims_its_email_and_code(session, account):
    """So that a repeat fails on every run, even when the first occurrence failed."""
    status = FieldError("status", "inclusion", "Must be one of: guest, registered, suspended.")
    rows = [
        Row(1, {"email": "ann@x.test", "code": "A", "status": "vip"}, (status,)),
        Row(2, {"email": "Ann@x.test"}),
    ]
    assert run(account, *rows)["failures"] == {
        1: "status: Must be one of: guest, registered, suspended.",
        2: "email: Also on line 1 of the file.",
    }


def test_an_existing_email_or_code_is_skipped_not_updated(session, account):
    customers.create_customer(account.live, {"email": "ann@x.test", "name": "Ann", "code": "B"})
    rows = [{"email": "Ann@X.test", "name": "Someone Else"}, {"email": "new@x.test", "code": "B"}]
    assert run(account, *rows) == {"created": 0, "skipped": 2, "failures": {}}
    assert customer(session, account, "ann@x.test").name == "Ann"
    assert count(session, Customer, account) == 1


def test_look_alike_emails_are_one_email(session, account):
    customers.create_customer(account.live, {"email": "stra\u00dfe@x.test", "name": "Ann"})
    rows = [
        {"email": "STRASSE@x.test", "name": "Someone Else"},
        {"email": "\ufb01nn@x.test"},
        {"email": "FINN@x.test"},
        {"email": "\uff4a\uff4f@x.test", "status": "registered", "password": "jo-password-1"},
    ]
    expected = {3: "email: Also on line 2 of the file."}
    assert run(account, *rows) == {"created": 2, "skipped": 1, "failures": expected}
    assert run(account, *rows) == {"created": 0, "skipped": 3, "failures": expected}
    assert customer(session, account, "stra\u00dfe@x.test").name == "Ann"
    assert customer(session, account, "finn@x.test") is not None
    jo = customer(session, account, "jo@x.test")
    assert (jo.email_key, jo.user.username, jo.user.email_key) == ("jo@x.test", "jo@x.test", "jo@x.test")


def test_other_accounts_customers_do_not_count_as_existing(session, account, other_account):
    customers.create_customer(other_account.live, {"email": "ann@x.test"})
    assert run(account, {"email": "ann@x.test"})["created"] == 1


def test_registered_and_suspended_rows_get_their_users(session, account):
    rows = [
        {"email": "ann@x.test", "status": "registered", "password": "ann-password-1", "first_name": "Ann"},
        {"email": "bob@x.test", "status": "suspended", "password_hash": ARGON2ID, "username": "Bobby"},
    ]
    assert run(account, *rows)["created"] == 2
    ann, bob = customer(session, account, "ann@x.test"), customer(session, account, "bob@x.test")
    assert (ann.user.username, ann.user.status, ann.user.name, ann.user.role) == (
        "ann@x.test",
        "active",
        "Ann",
        "customer",
    )
    assert passwords.verify("ann-password-1", ann.user.password_hash)[0]
    assert (bob.user.username, bob.user.status, bob.user.password_hash) == ("bobby", "suspended", ARGON2ID)


@pytest.mark.parametrize(
    ("password_hash", "password"),
    [
        (ARGON2I, "legacy-pass-1"),
        (ARGON2ID, "legacy-pass-2"),
        (PasswordHasher(memory_cost=256, time_cost=3, type=Type.D).hash("legacy-pass-3"), "legacy-pass-3"),
    ],
)
def test_an_imported_argon2_hash_verifies_and_is_rehashed_at_login(session, account, password_hash, password):
    run(account, {"email": "ann@x.test", "status": "registered", "password_hash": password_hash})
    user = customer(session, account, "ann@x.test").user
    ok, new_hash = passwords.verify(password, user.password_hash)
    assert ok
    assert new_hash.startswith("$argon2id$v=19$m=1024,t=1,p=1$")  # our parameters from now on


def test_plain_passwords_are_hashed_on_several_threads(session, account, app):
    rows = [
        {"email": f"c{i}@x.test", "status": "registered", "password": f"password-no-{i}"} for i in range(6)
    ]
    assert run(account, *rows, workers=3)["created"] == 6
    for i in range(6):
        user = customer(session, account, f"c{i}@x.test").user
        assert user.password_hash.startswith("$argon2id$v=19$m=1024,t=1,p=1$")
        assert passwords.verify(f"password-no-{i}", user.password_hash)[0]
    assert app.extensions["freshcom_passwords"].identify(user.password_hash) == "argon2"


def test_hashing_leaves_the_callers_values_as_given(session, account):
    values = {"email": "ann@x.test", "status": "registered", "password": "ann-password-1"}
    run(account, values)
    assert values == {"email": "ann@x.test", "status": "registered", "password": "ann-password-1"}


def test_rows_go_in_batches_each_with_its_last_line(session, account):
    rows = [Row(line, {"code": f"C{line}"}) for line in (2, 3, 5, 8, 9)]
    batches = list(customer_import.import_customers(account.live, rows, batch_size=2, workers=1))
    assert [(b.last_line, b.created) for b in batches] == [(3, 2), (8, 2), (9, 1)]


def test_a_row_the_database_refuses_is_written_alone_and_reported_like_the_api(session, account, register):
    register(email="roy@example.com", username="roy-login")
    rows = [{"email": f"c{i}@x.test", "status": "registered", "password": "long enough 1"} for i in range(7)]
    rows[3] = {
        "email": "other@x.test",
        "status": "registered",
        "password": "long enough 1",
        "username": "ROY-login",
    }
    rows[5] = {"email": "roy-login@x.test", "status": "registered", "password_hash": ARGON2ID}
    summary = run(account, *rows)
    assert summary["failures"] == {4: "username: Username has already been taken."}
    assert summary["created"] == 6
    assert customer(session, account, "other@x.test") is None
    assert session.scalar(select(User).where(User.email == "other@x.test")) is None


def test_a_taken_default_username_is_reported_on_email(session, account, register):
    register(email="roy@example.com", username="ann@x.test")
    rows = [
        {"email": "ann@x.test", "status": "registered", "password": "long enough 1"},
        {"email": "b@x.test"},
    ]
    summary = run(account, *rows)
    assert summary["failures"] == {1: "email: Email has already been taken."}
    assert summary["created"] == 1


def test_the_app_gets_its_password_context_back(session, account, app):
    context = app.extensions["freshcom_passwords"]
    run(
        account,
        Row(1, {"email": "a@x.test", "status": "registered", "password_hash": ARGON2ID}),
        Row(2, {"email": "nope"}, (BAD_EMAIL,)),
    )
    assert app.extensions["freshcom_passwords"] is context


# Export


def test_export_yields_each_customers_fields_as_plain_values(session, account, other_account):
    run(
        account,
        {"email": "a@x.test"},
        {"email": "b@x.test", "status": "registered", "password_hash": ARGON2ID},
    )
    customers.create_customer(other_account.live, {"email": "not-ours@x.test"})
    first, second = customer_export.export_customers(account.live)
    assert tuple(first) == customer_export.FIELDS
    assert (first["email"], first["custom_data"], first["username"]) == ("a@x.test", {}, None)
    assert (second["username"], second["status"], second["email_verified"]) == (
        "b@x.test",
        "registered",
        False,
    )
    assert isinstance(first["id"], uuid.UUID) and isinstance(first["inserted_at"], datetime)
    hashes = [
        c["password_hash"] for c in customer_export.export_customers(account.live, password_hashes=True)
    ]
    assert hashes == [None, ARGON2ID]

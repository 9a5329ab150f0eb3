"""Customer import and export: rows checked like the API, written whole, never twice."""

import io
import json

import pytest
from argon2 import PasswordHasher, Type
from marshmallow import fields
from sqlalchemy import func, select

from freshcom_customers.api.customers import CustomerSchema
from freshcom_customers.models import Customer, User
from freshcom_customers.services import customer_export, customer_import, customers, passwords

# Argon2 hashes made elsewhere, with other parameters than ours.
ARGON2I = PasswordHasher(memory_cost=512, time_cost=2, parallelism=1, type=Type.I).hash("legacy-pass-1")
ARGON2ID = PasswordHasher(memory_cost=2048, time_cost=1, parallelism=2).hash("legacy-pass-2")
BCRYPT = "$2b$12$R9h/cIPz0gi.URNNX3kh2OPST9/PgBkqquzi.Ss7KIUgO2t0jWMUW"


def run(account, text: str, file_format: str = "jsonl", **options) -> dict:
    """Import text into account; return the counts and the failures as {line: reason}."""
    rows = customer_import.read_rows(io.StringIO(text), file_format)
    summary = {"created": 0, "skipped": 0, "failures": {}}
    for batch in customer_import.import_customers(account.live, rows, **options):
        summary["created"] += batch.created
        summary["skipped"] += batch.skipped
        summary["failures"].update({f.line: f.reason for f in batch.failures})
    return summary


def jsonl(*records) -> str:
    return "".join(json.dumps(r) + "\n" for r in records)


def customer(session, account, email) -> Customer | None:
    return session.scalar(
        select(Customer).where(Customer.account_id == account.live.id, Customer.email == email)
    )


def count(session, model, account) -> int:
    return session.scalar(select(func.count()).select_from(model).where(model.account_id == account.live.id))


def test_columns_are_read_in_camel_or_snake_case(session, account):
    text = 'email,firstName,last_name,phoneNumber,customData\nann@x.test,Ann,Lee,555,"{""vip"": true}"\n'
    assert run(account, text, "csv") == {"created": 1, "skipped": 0, "failures": {}}
    ann = customer(session, account, "ann@x.test")
    assert (ann.name, ann.phone_number, ann.custom_data, ann.status) == (
        "Ann Lee",
        "555",
        {"vip": True},
        "guest",
    )


def test_empty_cells_and_nulls_are_absent(session, account):
    run(account, "email,code,label\nann@x.test,,\n", "csv")
    run(account, jsonl({"email": "bob@x.test", "code": None, "status": None}))
    assert customer(session, account, "ann@x.test").code is None
    assert customer(session, account, "bob@x.test").status == "guest"


def test_read_only_fields_of_an_export_are_ignored(session, account):
    record = {"id": "not-an-id", "email": "ann@x.test", "emailVerified": True, "insertedAt": "2020-01-01"}
    assert run(account, jsonl(record))["created"] == 1
    assert customer(session, account, "ann@x.test").email_verified is False


def test_csv_lines_count_the_line_breaks_inside_quoted_cells(session, account):
    text = 'email,description\na@x.test,"two\nlines"\nnot-an-email,x\n'
    assert run(account, text, "csv")["failures"] == {4: "email: Not a valid email address."}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("email,shoeSize\n", "Unknown columns: shoe_size"),
        ("email,Email\n", "Repeated columns: email"),
    ],
)
def test_a_bad_csv_header_stops_the_import(session, account, text, message):
    with pytest.raises(customer_import.ImportFileError, match=message):
        run(account, text, "csv")


@pytest.mark.parametrize(
    ("record", "reason"),
    [
        ({"email": "nope"}, "email: Not a valid email address."),
        ({"email": "a@x.test", "status": "vip"}, "status: Must be one of: guest, registered, suspended."),
        ({"email": "a@x.test", "code": "C" * 65}, "code: Longer than maximum length 64."),
        ({"email": "a@x.test", "customData": [1]}, "customData: Not a valid mapping type."),
        ({"email": "a@x.test", "shoeSize": 44}, "shoeSize: Unknown field."),
        ({"name": "No Keys"}, "email: An imported customer needs an email or a code."),
        (
            {"email": "a@x.test", "status": "registered", "password": "short"},
            "password: Password must be 8 to 128 characters long.",
        ),
        (
            {"email": "a@x.test", "status": "registered", "password": "password1"},
            "password: This password is one of the most common ones; choose another.",
        ),
        ({"email": "a@x.test", "status": "registered"}, "password: Password is required to register."),
        (
            {"code": "C1", "status": "registered", "password": "long enough 1"},
            "email: Email is required to register.",
        ),
        (
            {"email": "a@x.test", "password": "long enough 1"},
            "password: A guest has no login; set status to registered or suspended.",
        ),
        (
            {
                "email": "a@x.test",
                "status": "registered",
                "password": "long enough 1",
                "passwordHash": ARGON2ID,
            },
            "passwordHash: Give a password or its hash, not both.",
        ),
        (
            {"email": "a@x.test", "status": "registered", "passwordHash": BCRYPT},
            "passwordHash: Not an argon2 hash; bcrypt and other schemes are not accepted.",
        ),
        (
            {"email": "a@x.test", "status": "registered", "passwordHash": "$argon2id$v=19$m=1024$nonsense"},
            "passwordHash: Not an argon2 hash; bcrypt and other schemes are not accepted.",
        ),
    ],
)
def test_a_bad_row_is_reported_and_written_not_at_all(session, account, record, reason):
    summary = run(account, jsonl({"email": "first@x.test"}, record))
    assert summary["failures"] == {2: reason}
    assert summary["created"] == 1
    assert count(session, Customer, account) == 1
    assert count(session, User, account) == 0


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ('{"email": "a@x.test",\n', "Not valid JSON: Expecting property name enclosed in double quotes"),
        ("[1, 2]\n", "A line must be a JSON object."),
    ],
)
def test_an_unreadable_json_line_is_reported(session, account, text, reason):
    summary = run(account, jsonl({"email": "first@x.test"}) + text + jsonl({"email": "third@x.test"}))
    assert summary["failures"][2].startswith(reason)
    assert summary["created"] == 2


def test_csv_reports_bad_custom_data_and_a_short_row(session, account):
    text = 'email,customData\na@x.test,{oops\nb@x.test,"[1]"\nc\nd@x.test,\n'
    summary = run(account, text, "csv")
    assert summary["failures"] == {
        2: "customData: Not valid JSON: Expecting property name enclosed in double quotes at character 2.",
        3: "customData: Not a valid mapping type.",
        4: "1 values for 2 columns.",
    }
    assert summary["created"] == 1


def test_a_repeated_email_or_code_in_the_file_fails_on_every_run(session, account):
    text = jsonl(
        {"email": "ann@x.test", "code": "A"},
        {"email": "ANN@x.test"},
        {"email": "bob@x.test", "code": "A"},
    )
    expected = {2: "email: Also on line 1 of the file.", 3: "code: Also on line 1 of the file."}
    assert run(account, text) == {"created": 1, "skipped": 0, "failures": expected}
    assert run(account, text) == {"created": 0, "skipped": 1, "failures": expected}


def test_an_existing_email_or_code_is_skipped_not_updated(session, account):
    customers.create_customer(account.live, {"email": "ann@x.test", "name": "Ann", "code": "B"})
    text = jsonl({"email": "Ann@X.test", "name": "Someone Else"}, {"email": "new@x.test", "code": "B"})
    assert run(account, text) == {"created": 0, "skipped": 2, "failures": {}}
    assert customer(session, account, "ann@x.test").name == "Ann"
    assert count(session, Customer, account) == 1


def test_look_alike_emails_are_one_email(session, account):
    customers.create_customer(account.live, {"email": "stra\u00dfe@x.test", "name": "Ann"})
    text = jsonl(
        {"email": "STRASSE@x.test", "name": "Someone Else"},
        {"email": "\ufb01nn@x.test"},
        {"email": "FINN@x.test"},
        {"email": "\uff4a\uff4f@x.test", "status": "registered", "password": "jo-password-1"},
    )
    expected = {3: "email: Also on line 2 of the file."}
    assert run(account, text) == {"created": 2, "skipped": 1, "failures": expected}
    assert run(account, text) == {"created": 0, "skipped": 3, "failures": expected}
    assert customer(session, account, "stra\u00dfe@x.test").name == "Ann"
    assert customer(session, account, "finn@x.test") is not None
    jo = customer(session, account, "jo@x.test")
    assert (jo.email_key, jo.user.username, jo.user.email_key) == ("jo@x.test", "jo@x.test", "jo@x.test")


def test_other_accounts_customers_do_not_count_as_existing(session, account, other_account):
    customers.create_customer(other_account.live, {"email": "ann@x.test"})
    assert run(account, jsonl({"email": "ann@x.test"}))["created"] == 1


def test_registered_and_suspended_rows_get_their_users(session, account):
    text = jsonl(
        {"email": "ann@x.test", "status": "registered", "password": "ann-password-1", "firstName": "Ann"},
        {"email": "bob@x.test", "status": "suspended", "passwordHash": ARGON2ID, "username": "Bobby"},
    )
    assert run(account, text)["created"] == 2
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
    run(account, jsonl({"email": "ann@x.test", "status": "registered", "passwordHash": password_hash}))
    user = customer(session, account, "ann@x.test").user
    ok, new_hash = passwords.verify(password, user.password_hash)
    assert ok
    assert new_hash.startswith("$argon2id$v=19$m=1024,t=1,p=1$")  # our parameters from now on


def test_plain_passwords_are_hashed_on_several_threads(session, account, app):
    records = [
        {"email": f"c{i}@x.test", "status": "registered", "password": f"password-no-{i}"} for i in range(6)
    ]
    assert run(account, jsonl(*records), workers=3)["created"] == 6
    for i in range(6):
        user = customer(session, account, f"c{i}@x.test").user
        assert user.password_hash.startswith("$argon2id$v=19$m=1024,t=1,p=1$")
        assert passwords.verify(f"password-no-{i}", user.password_hash)[0]
    assert app.extensions["freshcom_passwords"].identify(user.password_hash) == "argon2"


def test_a_row_the_database_refuses_is_written_alone_and_reported_like_the_api(session, account, register):
    register(email="roy@example.com", username="roy-login")
    records = [
        {"email": f"c{i}@x.test", "status": "registered", "password": "long enough 1"} for i in range(7)
    ]
    records[3] = {
        "email": "other@x.test",
        "status": "registered",
        "password": "long enough 1",
        "username": "ROY-login",
    }
    records[5] = {"email": "roy-login@x.test", "status": "registered", "passwordHash": ARGON2ID}
    summary = run(account, jsonl(*records))
    assert summary["failures"] == {4: "username: Username has already been taken."}
    assert summary["created"] == 6
    assert customer(session, account, "other@x.test") is None
    assert session.scalar(select(User).where(User.email == "other@x.test")) is None


def test_a_taken_default_username_is_reported_on_email(session, account, register):
    register(email="roy@example.com", username="ann@x.test")
    records = [
        {"email": "ann@x.test", "status": "registered", "password": "long enough 1"},
        {"email": "b@x.test"},
    ]
    summary = run(account, jsonl(*records))
    assert summary["failures"] == {1: "email: Email has already been taken."}
    assert summary["created"] == 1


def test_the_app_gets_its_password_context_back(session, account, app):
    context = app.extensions["freshcom_passwords"]
    run(
        account,
        jsonl({"email": "a@x.test", "status": "registered", "passwordHash": ARGON2ID}, {"email": "nope"}),
    )
    assert app.extensions["freshcom_passwords"] is context


def test_the_row_schema_checks_what_the_api_checks():
    api = {name: f for name, f in CustomerSchema().fields.items() if not f.dump_only}
    rows = customer_import.RowSchema().fields
    assert set(rows) == {*api, "password_hash"}
    for name, api_field in api.items():
        assert type(rows[name]) is type(api_field), name
        assert rows[name].allow_none == api_field.allow_none, name
        assert [repr(v) for v in rows[name].validators] == [repr(v) for v in api_field.validators], name
    assert isinstance(rows["password_hash"], fields.String)


# Export


def test_export_streams_every_customer_oldest_first_without_hashes(session, account, other_account):
    run(
        account,
        jsonl({"email": "a@x.test"}, {"email": "b@x.test", "status": "registered", "passwordHash": ARGON2ID}),
    )
    customers.create_customer(other_account.live, {"email": "not-ours@x.test"})
    records = list(customer_export.export_customers(account.live))
    assert [r["email"] for r in records] == ["a@x.test", "b@x.test"]
    assert records[1]["username"] == "b@x.test"
    assert all("passwordHash" not in r for r in records)
    assert records[0]["insertedAt"].endswith("Z")
    hashes = [r["passwordHash"] for r in customer_export.export_customers(account.live, password_hashes=True)]
    assert hashes == [None, ARGON2ID]


@pytest.mark.parametrize("file_format", ["jsonl", "csv"])
def test_an_export_imports_into_another_account_as_the_same_customers(
    session, account, other_account, file_format
):
    run(
        account,
        jsonl(
            {
                "email": "a@x.test",
                "firstName": "Ann",
                "customData": {"tier": 2, "tags": ["a"]},
                "label": "vip",
            },
            {"code": "C-2", "description": 'line one\nline two, "quoted"', "phoneNumber": "+1 555"},
            {"email": "c@x.test", "status": "registered", "passwordHash": ARGON2ID, "username": "cee"},
            {"email": "d@x.test", "status": "suspended", "password": "long enough 1", "caption": "é ✓"},
        ),
    )
    stream = io.StringIO()
    records = customer_export.export_customers(account.live, password_hashes=True)
    if file_format == "csv":
        customer_export.write_csv(records, stream, customer_export.columns(password_hashes=True))
    else:
        customer_export.write_jsonl(records, stream)
    assert run(other_account, stream.getvalue(), file_format) == {"created": 4, "skipped": 0, "failures": {}}
    assert _comparable(other_account) == _comparable(account)


def _comparable(account) -> list[dict]:
    volatile = ("id", "insertedAt", "updatedAt")
    records = customer_export.export_customers(account.live, password_hashes=True)
    return [{k: v for k, v in r.items() if k not in volatile} for r in records]

"""The import's and export's files: CSV and JSON Lines, either casing, line numbers, rows checked.

These run the files through the import service as the command does; the service's own rules
are tested with plain rows in tests/services/test_customer_import.py.
"""

import csv
import io
import json

import pytest
from argon2 import PasswordHasher
from marshmallow import fields
from sqlalchemy import func, select

from freshcom_customers.api.customers import CustomerSchema
from freshcom_customers.cli import customer_files
from freshcom_customers.models import Address, Customer, User
from freshcom_customers.services import customer_export, customer_import, customers, passwords
from tests.services.test_passwords import PASSWORD as FOREIGN_PASSWORD
from tests.services.test_passwords import django_argon2, django_pbkdf2_sha256, scrypt_kdf

ARGON2ID = PasswordHasher(memory_cost=2048, time_cost=1, parallelism=2).hash("legacy-pass-2")
MD5_CRYPT = "$1$saltsalt$qjXMvbEw8oaL.CzflDugX/"


def run(account, text: str, file_format: str = "jsonl", **options) -> dict:
    """Import text into account; return the counts and the failures as {line: reason}."""
    rows = customer_files.read_rows(io.StringIO(text), file_format)
    summary = {"created": 0, "skipped": 0, "failures": {}}
    for batch in customer_import.import_customers(account.live, rows, **options):
        summary["created"] += batch.created
        summary["skipped"] += batch.skipped
        summary["failures"].update({f.line: customer_files.reason(f) for f in batch.failures})
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
    with pytest.raises(customer_files.ImportFileError, match=message):
        run(account, text, "csv")


def test_an_unknown_column_is_reported_with_the_known_ones(session, account):
    with pytest.raises(customer_files.ImportFileError) as raised:
        run(account, "email,shoeSize\n", "csv")
    assert str(raised.value) == (
        "Unknown columns: shoe_size. Known: status, code, name, firstName, lastName, email, phoneNumber, "
        "label, caption, description, customData, username, password, passwordHash, "
        + ", ".join(
            f"{kind}{field}"
            for kind in ("shipping", "billing")
            for field in (
                "Name",
                "Company",
                "LineOne",
                "LineTwo",
                "City",
                "Province",
                "PostalCode",
                "CountryCode",
                "PhoneNumber",
            )
        )
        + "."
    )


@pytest.mark.parametrize(
    ("record", "reason"),
    [
        ({"email": "nope"}, "email: Not a valid email address."),
        ({"email": "a@x.test", "status": "vip"}, "status: Must be one of: guest, registered, suspended."),
        ({"email": "a@x.test", "code": "C" * 65}, "code: Longer than maximum length 64."),
        ({"email": "a@x.test", "customData": [1]}, "customData: Not a valid mapping type."),
        ({"email": "a@x.test", "shoeSize": 44}, "shoeSize: Unknown field."),
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
            {"email": "a@x.test", "status": "registered", "passwordHash": MD5_CRYPT},
            "passwordHash: Not a password hash in a format this service accepts.",
        ),
        (
            {"email": "a@x.test", "status": "registered", "passwordHash": "$argon2id$v=19$m=1024$nonsense"},
            "passwordHash: Not a password hash in a format this service accepts.",
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


def test_an_invalid_email_still_counts_as_taken_in_the_file(session, account):
    text = jsonl({"email": "nope", "status": "vip"}, {"email": "NOPE"})
    assert run(account, text)["failures"] == {
        1: "status: Must be one of: guest, registered, suspended.; email: Not a valid email address.",
        2: "email: Also on line 1 of the file.; email: Not a valid email address.",
    }


def test_a_rows_errors_come_in_the_columns_declared_order_on_every_run(session, account):
    """A report of a re-run is the report of the first run, whatever order a row gives its fields."""
    text = jsonl({"customData": [1], "username": "a", "email": "nope", "shoeSize": 1, "code": "C" * 65})
    assert run(account, text)["failures"] == {
        1: "code: Longer than maximum length 64.; email: Not a valid email address.; "
        "customData: Not a valid mapping type.; username: Length must be between 3 and 254.; "
        "shoeSize: Unknown field."
    }


def test_the_row_schema_checks_what_the_api_checks():
    # currentPassword proves the caller for its own new email: a request's, never a customer's.
    api = {
        name: f
        for name, f in CustomerSchema().fields.items()
        if not f.dump_only and name != "current_password"
    }
    rows = customer_files.RowSchema().fields
    assert set(rows) == {*api, "password_hash", "addresses"}
    for name, api_field in api.items():
        assert type(rows[name]) is type(api_field), name
        assert rows[name].allow_none == api_field.allow_none, name
        assert [repr(v) for v in rows[name].validators] == [repr(v) for v in api_field.validators], name
    assert isinstance(rows["password_hash"], fields.String)


# Addresses

HOME = {"name": "Ann Lee", "lineOne": "1 Main St", "city": "Vancouver", "countryCode": "ca"}


def book(session, account) -> list[tuple]:
    """The account's addresses as (customer email, city, country, default shipping, default billing)."""
    query = (
        select(
            Customer.email,
            Address.city,
            Address.country_code,
            Address.is_default_shipping,
            Address.is_default_billing,
        )
        .join(Customer, Customer.id == Address.customer_id)
        .where(Address.account_id == account.live.id)
        .order_by(Customer.email, Address.city)
    )
    return [tuple(row) for row in session.execute(query)]


def test_json_lines_carry_addresses_as_a_nested_array(session, account):
    record = {
        "email": "ann@x.test",
        "addresses": [
            {**HOME, "isDefaultShipping": True, "id": "ignored", "insertedAt": "2024-01-01T00:00:00Z"},
            {"city": "Paris", "country_code": "FR", "is_default_billing": True, "customData": {"door": 2}},
        ],
    }
    assert run(account, jsonl(record, {"email": "bob@x.test", "addresses": []})) == {
        "created": 2,
        "skipped": 0,
        "failures": {},
    }
    assert book(session, account) == [
        ("ann@x.test", "Paris", "FR", False, True),
        ("ann@x.test", "Vancouver", "CA", True, False),
    ]


@pytest.mark.parametrize(
    ("addresses", "reason"),
    [
        (
            [{**HOME, "countryCode": "EU"}],
            "addresses: Address 1: Country code must be an ISO 3166-1 alpha-2 code.",
        ),
        (
            [HOME, {"city": "Paris", "isDefaultBilling": True}],
            "addresses: Address 2 (default billing): Country code is required.",
        ),
        (
            [{**HOME, "postalCode": "9" * 33}],
            "addresses: Address 1: Postal code must be at most 32 characters.",
        ),
        ([{**HOME, "shoeSize": 44}], "addresses: Address 1: unknown field shoeSize."),
        (
            [{**HOME, "isDefaultShipping": True}, {**HOME, "isDefaultShipping": True}],
            "addresses: Only one address can be the default shipping address.",
        ),
        ([HOME] * 51, "addresses: A customer has at most 50 addresses."),
        ({"city": "Paris"}, "addresses: Not a valid list."),
        ([["Paris"]], "addresses: Invalid value."),
    ],
)
def test_a_row_with_a_bad_address_is_written_not_at_all(session, account, addresses, reason):
    summary = run(
        account,
        jsonl({"email": "first@x.test", "addresses": [HOME]}, {"email": "a@x.test", "addresses": addresses}),
    )
    assert summary["failures"] == {2: reason}
    assert summary["created"] == 1
    assert [row[0] for row in book(session, account)] == ["first@x.test"]


def test_a_row_the_database_refuses_leaves_no_address(session, account, register):
    register(email="roy@example.com", username="roy-login")
    rows = [
        {"email": "ann@x.test", "addresses": [HOME]},
        {"email": "bob@x.test", "status": "registered", "username": "roy-login", "addresses": [HOME]},
        {"email": "cy@x.test", "addresses": [HOME]},
    ]
    summary = run(account, jsonl(*rows))
    assert summary["failures"] == {2: "username: Username has already been taken."}
    assert [row[0] for row in book(session, account)] == ["ann@x.test", "cy@x.test"]


CSV_HEADER = (
    "email,shippingName,shippingLineOne,shippingCity,shippingCountryCode,billingCity,billingCountryCode\n"
)


def test_csv_carries_the_default_addresses_in_columns(session, account):
    text = CSV_HEADER + (
        "ann@x.test,Ann,1 Main St,Vancouver,ca,Paris,FR\n"
        "bob@x.test,,,Oslo,NO,Oslo,NO\n"  # the same address: one, default for both
        "cy@x.test,,,,,Rome,IT\n"
        "dee@x.test,,,,,,\n"
    )
    assert run(account, text, "csv") == {"created": 4, "skipped": 0, "failures": {}}
    assert book(session, account) == [
        ("ann@x.test", "Paris", "FR", False, True),
        ("ann@x.test", "Vancouver", "CA", True, False),
        ("bob@x.test", "Oslo", "NO", True, True),
        ("cy@x.test", "Rome", "IT", False, True),
    ]


def test_csv_reports_a_bad_default_address_by_its_kind(session, account):
    text = CSV_HEADER + "ann@x.test,Ann,1 Main St,Vancouver,Canada,,\nbob@x.test,,,,,Paris,\n"
    assert run(account, text, "csv")["failures"] == {
        2: "addresses: Address 1 (default shipping): Country code must be an ISO 3166-1 alpha-2 code.",
        3: "addresses: Address 1 (default billing): Country code is required.",
    }
    assert count(session, Customer, account) == 0


def test_csv_has_no_addresses_column(session, account):
    with pytest.raises(customer_files.ImportFileError, match="Unknown columns: addresses"):
        run(account, "email,addresses\n", "csv")


def test_export_writes_addresses_nested_in_json_lines_and_the_defaults_in_csv(session, account):
    home = {**HOME, "isDefaultShipping": True, "customData": {"door": 2}}
    other = {"city": "Paris", "countryCode": "FR"}
    billing = {"company": "Lee Ltd", "countryCode": "GB", "isDefaultBilling": True}
    run(account, jsonl({"email": "ann@x.test", "addresses": [home, other, billing]}, {"email": "bob@x.test"}))

    stream = io.StringIO()
    customer_files.write_customers(customer_export.export_customers(account.live), stream, "jsonl")
    ann, bob = map(json.loads, stream.getvalue().splitlines())
    assert "addresses" not in bob
    assert [a["countryCode"] for a in ann["addresses"]] == ["CA", "FR", "GB"]  # oldest first
    first = ann["addresses"][0]
    assert set(first) == {
        "id",
        "name",
        "lineOne",
        "city",
        "countryCode",
        "isDefaultShipping",
        "isDefaultBilling",
        "customData",
        "insertedAt",
        "updatedAt",
    }  # nulls left out, as for the customer
    assert (first["isDefaultShipping"], first["customData"]) == (True, {"door": 2})
    assert first["insertedAt"].endswith("Z")

    stream = io.StringIO()
    customer_files.write_customers(customer_export.export_customers(account.live), stream, "csv")
    ann, bob = csv.DictReader(io.StringIO(stream.getvalue()))
    assert (ann["shippingName"], ann["shippingCity"], ann["shippingCountryCode"]) == (
        "Ann Lee",
        "Vancouver",
        "CA",
    )
    assert (ann["billingCompany"], ann["billingCity"], ann["billingCountryCode"]) == ("Lee Ltd", "", "GB")
    assert all(value == "" for key, value in bob.items() if key.startswith(("shipping", "billing")))
    assert "addresses" not in ann


# Export


def test_export_streams_every_customer_oldest_first_without_hashes(session, account, other_account):
    run(
        account,
        jsonl({"email": "a@x.test"}, {"email": "b@x.test", "status": "registered", "passwordHash": ARGON2ID}),
    )
    customers.create_customer(other_account.live, {"email": "not-ours@x.test"})
    records = list(customer_files.records(customer_export.export_customers(account.live)))
    assert [r["email"] for r in records] == ["a@x.test", "b@x.test"]
    assert records[1]["username"] == "b@x.test"
    assert all("passwordHash" not in r for r in records)
    assert records[0]["insertedAt"].endswith("Z")
    exported = customer_export.export_customers(account.live, password_hashes=True)
    hashes = [r["passwordHash"] for r in customer_files.records(exported)]
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
    exported = customer_export.export_customers(account.live, password_hashes=True)
    assert customer_files.write_customers(exported, stream, file_format, password_hashes=True) == 4
    assert run(other_account, stream.getvalue(), file_format) == {"created": 4, "skipped": 0, "failures": {}}
    assert _comparable(other_account) == _comparable(account)


def _comparable(account) -> list[dict]:
    volatile = ("id", "insertedAt", "updatedAt")
    records = customer_files.records(customer_export.export_customers(account.live, password_hashes=True))
    return [{k: v for k, v in r.items() if k not in volatile} for r in records]


# Column maps: exports of other platforms' customer tables, by the queries docs/decisions.md gives.


def mapped(account, text: str, file_format: str, platform: str) -> dict:
    rows = customer_files.read_rows(io.StringIO(text), file_format, customer_files.COLUMN_MAPS[platform])
    summary = {"created": 0, "skipped": 0, "failures": {}}
    for batch in customer_import.import_customers(account.live, rows):
        summary["created"] += batch.created
        summary["failures"].update({f.line: customer_files.reason(f) for f in batch.failures})
    return summary


def test_a_medusa_export_maps_onto_our_columns(session, account, app):
    """psql's CSV: t/f booleans, metadata as JSON text, Medusa's scrypt-kdf hash in "password"."""
    medusa_hash = scrypt_kdf(FOREIGN_PASSWORD)
    text = (
        "id,email,first_name,last_name,phone,has_account,metadata,created_at,password\n"
        'cus_01,ann@x.test,Ann,Lee,+1 555 0100,t,"{""tier"": ""gold""}",'
        f"2024-05-01 10:00:00+00,{medusa_hash}\n"
        "cus_02,guest@x.test,Gus,,,f,,2024-05-02 10:00:00+00,\n"
        "cus_03,odd@x.test,Odd,,,maybe,,2024-05-03 10:00:00+00,\n"
    )
    summary = mapped(account, text, "csv", "medusa")
    assert summary == {"created": 2, "skipped": 0, "failures": {4: "hasAccount: Must be true or false."}}
    ann = customer(session, account, "ann@x.test")
    assert (ann.status, ann.name, ann.phone_number, ann.custom_data) == (
        "registered",
        "Ann Lee",
        "+1 555 0100",
        {"tier": "gold"},
    )
    assert ann.user.password_hash == medusa_hash
    with app.app_context():
        assert passwords.verify(FOREIGN_PASSWORD, ann.user.password_hash)[0]
    guest = customer(session, account, "guest@x.test")
    assert (guest.status, guest.user) == ("guest", None)


def test_a_saleor_export_maps_onto_our_columns(session, account, app):
    """row_to_json's JSON Lines: booleans, metadata as an object, Django's hashes in "password"."""
    records = [
        {
            "id": 7,
            "email": "ann@x.test",
            "first_name": "Ann",
            "last_name": "Lee",
            "password": django_pbkdf2_sha256(FOREIGN_PASSWORD),
            "is_active": True,
            "note": "Prefers courier delivery",
            "metadata": {"source": "saleor"},
            "private_metadata": {},
            "date_joined": "2023-01-01T00:00:00+00:00",
        },
        {"email": "bob@x.test", "password": django_argon2(FOREIGN_PASSWORD), "is_active": False},
    ]
    assert mapped(account, jsonl(*records), "jsonl", "saleor") == {"created": 2, "skipped": 0, "failures": {}}
    ann, bob = customer(session, account, "ann@x.test"), customer(session, account, "bob@x.test")
    assert (ann.status, ann.name, ann.description, ann.custom_data) == (
        "registered",
        "Ann Lee",
        "Prefers courier delivery",
        {"source": "saleor"},
    )
    assert (bob.status, bob.user.status) == ("suspended", "suspended")
    with app.app_context():
        assert passwords.verify(FOREIGN_PASSWORD, ann.user.password_hash)[0]
        assert passwords.verify(FOREIGN_PASSWORD, bob.user.password_hash)[0]


def test_saleors_unusable_password_is_no_password_hash():
    """Django marks a customer who never set a password with "!" and random text: no hash to import."""
    text = jsonl({"email": "cy@x.test", "password": "!Kv3N0aDb7uX9s2QeR4tY8wZ1pLmH6jGc5fA0oIbU"})
    (row,) = customer_files.read_rows(io.StringIO(text), "jsonl", customer_files.COLUMN_MAPS["saleor"])
    assert row.values == {"email": "cy@x.test", "status": "registered"}


def test_a_mapped_csv_without_an_email_column_is_refused():
    text = "id,first_name\ncus_01,Ann\n"
    with pytest.raises(customer_files.ImportFileError, match="No email column"):
        list(customer_files.read_rows(io.StringIO(text), "csv", customer_files.COLUMN_MAPS["medusa"]))

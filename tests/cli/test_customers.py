"""flask customers import, export and invite, run as an operator runs them."""

import csv
import io
import json
import re

import pytest
from sqlalchemy import func, select
from sqlalchemy import text as text_sql

from freshcom_customers.extensions import mail
from freshcom_customers.models import Customer, User
from freshcom_customers.services import passwords
from tests.mailbox import free_port
from tests.services.test_passwords import FOREIGN_HASHES
from tests.services.test_passwords import PASSWORD as FOREIGN_PASSWORD

ROWS = 10_000
PASSWORD = "imported-password-1"


def import_file(runner, account, path, *options):
    return runner.invoke(args=["customers", "import", str(path), "--account", str(account.live.id), *options])


def export(runner, account, *options):
    result = runner.invoke(args=["customers", "export", "--account", str(account.live.id), *options])
    assert result.exit_code == 0, result.output
    return result.stdout


def failures(result) -> dict[int, str]:
    lines = result.stderr.splitlines()
    assert all(re.match(r"line \d+: ", line) for line in lines), lines
    return {int(line.split(":")[0].removeprefix("line ")): line.split(": ", 1)[1] for line in lines}


def count(session, model, account) -> int:
    return session.scalar(select(func.count()).select_from(model).where(model.account_id == account.live.id))


def big_file(password_hash: str, file_format: str) -> tuple[str, dict[int, str]]:
    """ROWS customers, a tenth registered, and deliberate bad rows; return the text and the bad lines."""
    records = []
    for i in range(ROWS):
        record = {
            "email": f"customer{i}@example.com",
            "code": f"C{i:06}",
            "firstName": "Customer",
            "lastName": str(i),
        }
        if i % 10 == 0:
            record.update(status="registered", passwordHash=password_hash)
        records.append(record)
    records[3].update(status="registered", password="plain-password-3")
    offset = 2 if file_format == "csv" else 1  # the first record's line
    bad = {
        100: ({"email": "not an email"}, "email: Not a valid email address."),
        2000: ({"email": "CUSTOMER1@example.com"}, f"email: Also on line {1 + offset} of the file."),
        3000: (
            {"status": "registered", "password": "short"},
            "password: Password must be 8 to 128 characters long.",
        ),
        4000: ({"status": "vip"}, "status: Must be one of: guest, registered, suspended."),
    }
    for index, (change, _) in bad.items():
        records[index].update(change)
        records[index].pop("passwordHash", None)
    expected = {index + offset: reason for index, (_, reason) in bad.items()}
    if file_format == "csv":
        lines = _csv_lines(records)
        lines[5000 + 1] = 'customer5000@example.com,C005000,Customer,5000,,,"{not json",'
        expected[5000 + offset] = (
            "customData: Not valid JSON: Expecting property name enclosed in double quotes at character 2."
        )
    else:
        lines = [json.dumps(r) for r in records]
        lines[5000] = '{"email": "customer5000@example.com", "code": '
        expected[5000 + offset] = "Not valid JSON: Expecting value at character 47."
    return "\n".join(lines) + "\n", expected


def _csv_lines(records) -> list[str]:
    columns = ["email", "code", "firstName", "lastName", "status", "password", "customData", "passwordHash"]
    stream = io.StringIO()
    writer = csv.DictWriter(stream, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(records)
    return stream.getvalue().splitlines()


@pytest.mark.parametrize("file_format", ["jsonl", "csv"])
def test_a_big_file_imports_its_good_rows_reports_its_bad_ones_and_imports_once(
    runner, session, account, tmp_path, auth, file_format, database_uri
):
    text, expected = big_file(passwords.hash_password(PASSWORD), file_format)
    path = tmp_path / f"customers.{file_format}"
    path.write_text(text)
    good = ROWS - len(expected)

    first = import_file(runner, account, path)
    assert first.exit_code == 1
    summary = json.loads(first.stdout)
    # PostgreSQL: the tables it wrote are vacuumed and analysed for the lists' searches.
    vacuumed = summary.pop("vacuumSeconds", None)
    assert summary == {"created": good, "skipped": 0, "failed": len(expected)}
    if database_uri.startswith("postgresql"):
        assert vacuumed >= 0
        session.execute(text_sql("SELECT pg_stat_clear_snapshot()"))
        stats = "SELECT last_vacuum, last_analyze FROM pg_stat_user_tables WHERE relname = :table"
        assert all(session.execute(text_sql(stats), {"table": "customer_search_terms"}).one())
    else:
        assert vacuumed is None
    reported = failures(first)
    assert reported.keys() == expected.keys()
    assert {line: reported[line][: len(reason)] for line, reason in expected.items()} == expected
    assert count(session, Customer, account) == good
    assert (
        count(session, User, account) == ROWS // 10 + 1 - 5
    )  # every tenth row and row 3; the bad rows are tenth rows

    second = import_file(runner, account, path)
    assert second.exit_code == 1
    assert json.loads(second.stdout) == {"created": 0, "skipped": good, "failed": len(expected)}
    assert failures(second) == reported
    assert count(session, Customer, account) == good
    assert auth.login(account, "customer10@example.com", PASSWORD)["access_token"]
    assert auth.login(account, "customer3@example.com", "plain-password-3")["access_token"]


def test_a_clean_file_exits_0(runner, account, tmp_path):
    path = tmp_path / "customers.csv"
    path.write_text("email,first_name\nann@x.test,Ann\n")
    result = import_file(runner, account, path)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {"created": 1, "skipped": 0, "failed": 0}
    assert result.stderr == ""


def test_imported_hashes_and_passwords_log_in(runner, account, tmp_path, auth):
    path = tmp_path / "logins.jsonl"
    records = [
        {"email": "ann@x.test", "status": "registered", "passwordHash": passwords.hash_password(PASSWORD)},
        {"email": "bob@x.test", "status": "registered", "password": "bob-password-1", "username": "bobby"},
        {"email": "cy@x.test", "status": "suspended", "password": "cy-password-12"},
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    assert import_file(runner, account, path, "--workers", "2").exit_code == 0
    assert auth.login(account, "ann@x.test", PASSWORD)["token_type"].lower() == "bearer"
    assert auth.login(account, "bobby", "bob-password-1")["access_token"]
    suspended = {"username": "cy@x.test", "password": "cy-password-12", "scope": f"aid:{account.live.id}"}
    assert auth.token(expect=400, grant_type="password", **suspended)["error"] == "invalid_grant"


def test_hashes_from_other_platforms_log_in_and_are_rehashed_to_argon2id(
    runner, session, account, tmp_path, auth
):
    """One row for each format of API.md §9, and rows no login could use, refused by line."""
    path = tmp_path / "platforms.jsonl"
    emails = [f"user{i}@x.test" for i in range(len(FOREIGN_HASHES))]
    records = [
        {"email": email, "status": "registered", "passwordHash": make(FOREIGN_PASSWORD)}
        for email, make in zip(emails, FOREIGN_HASHES.values(), strict=True)
    ]
    records += [
        {"email": "md5@x.test", "status": "registered", "passwordHash": "$1$saltsalt$qjXMvbEw8oaL.CzflDugX/"},
        {
            "email": "costly@x.test",
            "status": "registered",
            "passwordHash": "$pbkdf2-sha256$1000000000$c2FsdA$" + "A" * 43,
        },
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    result = import_file(runner, account, path)
    assert result.exit_code == 1
    assert json.loads(result.stdout) == {"created": len(emails), "skipped": 0, "failed": 2}
    assert failures(result) == {
        len(emails) + 1: "passwordHash: Not a password hash in a format this service accepts.",
        len(emails) + 2: "passwordHash: Costs more than this service allows: "
        "PBKDF2 with 1000000000 iterations; at most 3000000.",
    }
    assert count(session, User, account) == len(emails)
    for email in emails:
        assert auth.login(account, email, FOREIGN_PASSWORD)["access_token"]
        rehashed = _stored_hash(session, email)
        assert rehashed.startswith("$argon2id$v=19$m=1024,t=1,p=1$"), email
        assert auth.login(account, email, FOREIGN_PASSWORD)["access_token"]
        assert _stored_hash(session, email) == rehashed  # not redone at every login


def test_a_wrong_password_leaves_a_foreign_hash_as_imported(runner, session, account, tmp_path, auth):
    imported = FOREIGN_HASHES["bcrypt $2y$"](FOREIGN_PASSWORD)
    path = tmp_path / "one.csv"
    path.write_text(f"email,status,passwordHash\nann@x.test,registered,{imported}\n")
    assert import_file(runner, account, path).exit_code == 0
    wrong = {"username": "ann@x.test", "password": "not the password", "scope": f"aid:{account.live.id}"}
    assert auth.token(expect=400, grant_type="password", **wrong)["error"] == "invalid_grant"
    assert _stored_hash(session, "ann@x.test") == imported


def test_columns_medusa_reads_a_medusa_export_and_its_logins_work(runner, session, account, tmp_path, auth):
    path = tmp_path / "medusa.csv"
    medusa_hash = FOREIGN_HASHES["scrypt-kdf (Medusa)"](FOREIGN_PASSWORD)
    path.write_text(
        f"id,email,has_account,created_at,password\ncus_01,ann@x.test,t,2024-05-01,{medusa_hash}\n"
    )
    assert import_file(runner, account, path).exit_code == 2  # our columns only: id is unknown
    result = import_file(runner, account, path, "--columns", "medusa")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {"created": 1, "skipped": 0, "failed": 0}
    assert auth.login(account, "ann@x.test", FOREIGN_PASSWORD)["access_token"]
    assert _stored_hash(session, "ann@x.test").startswith("$argon2id$")


def _stored_hash(session, username: str) -> str:
    session.expire_all()
    return session.scalar(select(User.password_hash).where(User.username == username))


def test_stdin_needs_a_format(runner, account):
    args = ["customers", "import", "-", "--account", str(account.live.id)]
    assert runner.invoke(args=args, input="{}").exit_code == 2
    result = runner.invoke(args=[*args, "--format", "jsonl"], input='{"email": "ann@x.test"}\n')
    assert json.loads(result.stdout)["created"] == 1


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("customers.txt", "email\n", "--format csv or --format jsonl"),
        ("customers.csv", "email,shoe size\n", "Unknown columns: shoe size"),
        ("customers.csv", b"email\n\xff\xfe@x.test\n", "not UTF-8"),
    ],
)
def test_an_unusable_file_is_a_usage_error(runner, account, tmp_path, name, text, message):
    path = tmp_path / name
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    result = import_file(runner, account, path)
    assert result.exit_code == 2
    assert message in result.stderr
    assert "Traceback" not in result.output


def test_an_unknown_account_is_a_usage_error(runner, session, tmp_path):
    path = tmp_path / "customers.csv"
    path.write_text("email\nann@x.test\n")
    for args in (["import", str(path)], ["export"]):
        result = runner.invoke(args=["customers", *args, "--account", "00000000-0000-0000-0000-000000000000"])
        assert result.exit_code == 2
        unknown = "'00000000-0000-0000-0000-000000000000'"
        assert result.stderr.endswith(
            f"Error: Invalid value for --account: no account with id or handle {unknown}\n"
        )


def test_export_leaves_password_hashes_out_unless_asked(runner, account, tmp_path):
    path = tmp_path / "customers.jsonl"
    path.write_text(json.dumps({"email": "ann@x.test", "status": "registered", "password": PASSWORD}) + "\n")
    import_file(runner, account, path)
    (record,) = [json.loads(line) for line in export(runner, account).splitlines()]
    assert record["username"] == "ann@x.test"
    assert "passwordHash" not in record
    (record,) = [
        json.loads(line) for line in export(runner, account, "--include-password-hashes").splitlines()
    ]
    assert passwords.verify(PASSWORD, record["passwordHash"])[0]


@pytest.mark.parametrize("file_format", ["jsonl", "csv"])
def test_an_export_imported_into_another_account_gives_the_same_customers(
    runner, account, other_account, tmp_path, auth, file_format
):
    source = tmp_path / "source.jsonl"
    home = {"name": "Ann Lee", "lineOne": "1 Main St", "city": "Vancouver", "countryCode": "CA"}
    records = [
        {
            "email": "ann@x.test",
            "firstName": "Ann",
            "lastName": "Lee",
            "customData": {"tier": [1, "gold"]},
            # Default shipping and billing in one: a CSV's two column groups are the same.
            "addresses": [{**home, "isDefaultShipping": True, "isDefaultBilling": True}],
        },
        {
            "code": "G-2",
            "phoneNumber": "+1 604 555 0100",
            "description": 'multi\nline, "quoted"',
            "label": "vip",
            # A CSV carries the default ones only, each in its own columns.
            "addresses": [
                {**home, "name": "G 2", "postalCode": "V6B 1A1", "isDefaultShipping": True},
                {
                    "company": 'Gé, "Ltd"',
                    "lineTwo": "Unit 2\nRear",
                    "countryCode": "FR",
                    "isDefaultBilling": True,
                },
            ]
            + ([] if file_format == "csv" else [{"countryCode": "JP", "customData": {"floor": 3}}]),
        },
        {"email": "bob@x.test", "status": "registered", "password": "bob-password-1", "username": "bobby"},
        {"email": "cy@x.test", "status": "suspended", "password": "cy-password-12", "caption": "ünïcode ✓"},
    ]
    source.write_text("".join(json.dumps(r) + "\n" for r in records))
    assert import_file(runner, account, source).exit_code == 0
    exported = tmp_path / f"export.{file_format}"
    options = ["--format", file_format, "--output", str(exported), "--include-password-hashes"]
    result = runner.invoke(args=["customers", "export", "--account", str(account.live.id), *options])
    assert result.stderr == "4 customers exported\n"

    result = import_file(runner, other_account, exported)
    assert json.loads(result.stdout) == {"created": 4, "skipped": 0, "failed": 0}, result.stderr
    copied = _comparable(export(runner, other_account))
    assert copied == _comparable(export(runner, account))
    carried = [1, 3, 0, 0] if file_format == "jsonl" else [1, 2, 0, 0]  # a CSV: the defaults only
    assert [len(record.get("addresses", [])) for record in copied] == carried
    assert auth.login(other_account, "bobby", "bob-password-1")["access_token"]


def _comparable(jsonl: str) -> list[dict]:
    return [_stable(json.loads(line)) for line in jsonl.splitlines()]


def _stable(record: dict) -> dict:
    """The record without what a copy cannot keep (ids, times), its addresses in a stable order."""
    volatile = ("id", "insertedAt", "updatedAt")
    stable = {k: v for k, v in record.items() if k not in volatile}
    if "addresses" in stable:
        stable["addresses"] = sorted(
            map(_stable, stable["addresses"]), key=lambda a: json.dumps(a, sort_keys=True)
        )
    return stable


# Invite


def invite(runner, account, *arguments):
    return runner.invoke(args=["customers", "invite", "--account", str(account.live.id), *arguments])


@pytest.fixture
def imported_without_passwords(runner, account, tmp_path):
    """Three registered customers without a password, one with, and a guest, as an import leaves them."""
    rows = [{"email": f"ivy{i}@example.com", "status": "registered"} for i in range(3)]
    rows += [
        {"email": "has@example.com", "status": "registered", "password": PASSWORD},
        {"email": "g@example.com"},
    ]
    path = tmp_path / "customers.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    assert import_file(runner, account, path).exit_code == 0
    return path


def test_invite_all_without_password_sends_each_one_invitation(
    runner, session, account, imported_without_passwords, mailbox
):
    result = invite(runner, account, "--all-without-password")

    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {"invited": 3, "failed": 0, "emails_failed": 0}
    messages = mailbox.settled()  # the command waited for them to be sent
    assert sorted(m["To"] for m in messages) == [f"ivy{i}@example.com" for i in range(3)]
    assert all("/set-password?token=" in mailbox.link(m) for m in messages)


def test_invite_named_customers_reports_each_one_it_could_not_invite(
    runner, session, account, imported_without_passwords, mailbox
):
    ivy = session.scalar(select(Customer).where(Customer.email == "ivy0@example.com"))
    has = session.scalar(select(Customer).where(Customer.email == "has@example.com"))
    unknown = "00000000-0000-0000-0000-000000000000"

    result = invite(runner, account, str(ivy.id), str(has.id), unknown)

    assert result.exit_code == 1
    assert json.loads(result.stdout) == {"invited": 1, "failed": 2, "emails_failed": 0}
    assert result.stderr.splitlines() == [
        f"{has.id}: This customer has a password already; a password reset is what it needs.",
        f"{unknown}: no customer of this account has this id",
    ]
    assert [m["To"] for m in mailbox.settled()] == ["ivy0@example.com"]


def test_invite_counts_the_emails_the_mail_server_did_not_take(
    app, runner, account, imported_without_passwords, mailbox
):
    app.config["MAIL_PORT"] = free_port()  # nothing listens there: the mail server is down
    mail.init_app(app)  # (the mailbox fixture puts the real one back)

    result = invite(runner, account, "--all-without-password")

    assert result.exit_code == 1
    assert json.loads(result.stdout) == {"invited": 3, "failed": 0, "emails_failed": 3}


@pytest.mark.parametrize(
    "arguments", [(), ("--all-without-password", "00000000-0000-0000-0000-000000000000")]
)
def test_invite_needs_ids_or_all_without_password_but_not_both(runner, account, arguments):
    result = invite(runner, account, *arguments)
    assert result.exit_code == 2
    assert "--all-without-password" in result.stderr

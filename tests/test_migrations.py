"""Migrations that move data, run on a database of their own built up to the revision before."""

import logging
import uuid
from datetime import UTC, datetime, timedelta

import flask_migrate
import psycopg
import pytest
from sqlalchemy import func, select, text
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.exc import IntegrityError

from freshcom_customers.app import create_app
from freshcom_customers.extensions import db
from freshcom_customers.models import (
    Account,
    AccountMembership,
    Client,
    Customer,
    CustomerCount,
    CustomerSearchTerm,
    LoginSession,
    OneTimeToken,
    Passkey,
    RecoveryCode,
    RefreshToken,
    User,
)
from freshcom_customers.models.customer_search import term_rows
from tests.conftest import TEST_DATABASE_URI

OLDER = datetime(2026, 1, 1, tzinfo=UTC)
NEWER = OLDER + timedelta(days=1)


@pytest.fixture
def scratch_app(app_config, tmp_path):
    """An app on an empty database of its own: SQLite, or a PostgreSQL one beside the suite's."""
    uri = f"sqlite:///{tmp_path / 'migrations.sqlite'}"
    if (TEST_DATABASE_URI or "").startswith("postgresql"):
        uri = TEST_DATABASE_URI + "_migrations"
        _postgresql_admin(uri, "DROP DATABASE IF EXISTS {name}", "CREATE DATABASE {name}")
    app = create_app({**app_config, "SQLALCHEMY_DATABASE_URI": uri})
    yield app
    with app.app_context():
        db.engine.dispose()
    if uri.startswith("postgresql"):
        _postgresql_admin(uri, "DROP DATABASE {name}")


def _postgresql_admin(uri, *statements):
    base, name = uri.replace("postgresql+psycopg://", "postgresql://").rsplit("/", 1)
    with psycopg.connect(f"{base}/postgres", autocommit=True) as connection:
        for statement in statements:
            connection.execute(statement.format(name=f'"{name}"'))


def _columns_at_0011(model):
    """The model's columns that revision 0011 made (0012 added second_factor_at)."""
    return [column for column in model.__table__.columns if column.name != "second_factor_at"]


def _insert(connection, model, **values):
    """Insert one row as plain SQL would (no model validators); return its id."""
    values.setdefault("id", uuid.uuid4())
    connection.execute(model.__table__.insert().values(**values))
    return values["id"]


def _seed_0006(connection) -> dict:
    """Rows as revision 0006 kept them: values lower-cased only, and so some look-alikes side by side."""
    a = _insert(connection, Account, name="A", mode="live")
    b = _insert(connection, Account, name="B", mode="live")
    ids = {"a": a, "b": b}

    def user(key, account_id, username, email, inserted_at=OLDER):
        ids[key] = _insert(
            connection, User, account_id=account_id, username=username, email=email, password_hash="x",
            inserted_at=inserted_at, updated_at=inserted_at,
        )  # fmt: skip

    def customer(key, account_id, email, **values):
        ids[key] = _insert(connection, Customer, account_id=account_id, email=email, **values)

    user("plain", a, "strasse@x.test", "strasse@x.test", NEWER)  # already canonical: keeps it
    user("sharp", a, "stra\u00dfe@x.test", "stra\u00dfe@x.test", OLDER)
    user("ligature", a, "\ufb01nn@x.test", "\ufb01nn@x.test", OLDER)  # neither canonical: the oldest keeps it
    user("wide", a, "\uff46\uff49\uff4e\uff4e@x.test", "\uff46\uff49\uff4e\uff4e@x.test", NEWER)
    user("kelvin", a, "\u212a@x.test", "\u212a@x.test")
    user("ann", a, "ann", None)
    user("other_account", b, "stra\u00dfe@x.test", "stra\u00dfe@x.test")
    user("standard", None, "OWNER@x.test", "OWNER@x.test")
    _insert(connection, AccountMembership, account_id=a, user_id=ids["standard"], role="owner")
    customer("c_plain", a, "strasse@x.test", user_id=ids["plain"], status="registered", inserted_at=NEWER)
    customer("c_sharp", a, "stra\u00dfe@x.test", inserted_at=OLDER)
    customer("c_wide", a, "\uff4a\uff4f@x.test", name="Jo")
    customer("c_none", a, None, code="C-1")
    connection.execute(
        CustomerSearchTerm.__table__.insert(),
        [
            {"customer_id": ids["c_wide"], "account_id": a, "term": term, "shared_prefix": shared}
            for term, shared in term_rows([None, "Jo", "\uff4a\uff4f@x.test", None])
        ],
    )
    return ids


def _collision(records, column, value, account_id, keeper, *others) -> bool:
    ids = [str(keeper), *map(str, others)]
    return any(
        f"{column} {value!r}" in message and f"account {account_id}" in message
        and all(i in message for i in ids) and f"{keeper} keeps it" in message
        for message in records
    )  # fmt: skip


def test_0007_folds_usernames_and_emails_and_reports_collisions_without_failing(scratch_app, caplog):
    with scratch_app.app_context():
        flask_migrate.upgrade(revision="0006")
        with db.engine.begin() as connection:
            ids = _seed_0006(connection)
        caplog.set_level(logging.INFO, logger="alembic")

        flask_migrate.upgrade(revision="0007")  # the revision under test, whatever the head

        with db.engine.connect() as connection:
            assert connection.scalar(text("SELECT version_num FROM alembic_version")) == "0007"
            users = {
                row.id: tuple(row[1:])
                for row in connection.execute(select(User.id, User.username, User.email, User.email_key))
            }
            customers = {row.id: row for row in connection.execute(select(Customer))}
            search_terms = connection.execute(
                select(CustomerSearchTerm.term, CustomerSearchTerm.shared_prefix)
                .where(CustomerSearchTerm.customer_id == ids["c_wide"]).order_by(CustomerSearchTerm.term)
            ).all()  # fmt: skip
            memberships = connection.scalar(select(func.count()).select_from(AccountMembership))
    warnings = [
        r.getMessage()
        for r in caplog.records
        if r.levelno == logging.WARNING and r.name.startswith("alembic")
    ]

    # Collisions: one row gets the canonical value, the others keep theirs; all reported.
    sharp, fi, wide = "stra\u00dfe@x.test", "\ufb01nn@x.test", "\uff46\uff49\uff4e\uff4e@x.test"
    assert users[ids["plain"]] == ("strasse@x.test", "strasse@x.test", "strasse@x.test")
    assert users[ids["sharp"]] == (sharp, sharp, sharp)
    assert users[ids["ligature"]] == ("finn@x.test", fi, "finn@x.test")
    assert users[ids["wide"]] == (wide, wide, wide)
    assert (customers[ids["c_plain"]].email, customers[ids["c_plain"]].email_key) == ("strasse@x.test",) * 2
    assert (customers[ids["c_sharp"]].email, customers[ids["c_sharp"]].email_key) == (sharp, sharp)
    a = ids["a"]
    assert _collision(warnings, "users.username", "strasse@x.test", a, ids["plain"], ids["sharp"])
    assert _collision(warnings, "users.email", "strasse@x.test", a, ids["plain"], ids["sharp"])
    assert _collision(warnings, "users.username", "finn@x.test", a, ids["ligature"], ids["wide"])
    assert _collision(warnings, "users.email", "finn@x.test", a, ids["ligature"], ids["wide"])
    assert _collision(warnings, "customers.email", "strasse@x.test", a, ids["c_plain"], ids["c_sharp"])
    assert "0007: 5 look-alike collisions to resolve (listed above)" in warnings
    assert len(warnings) == 6

    # Everything else is normalised: usernames canonical, emails as typed (NFKC, lower case) with their key.
    assert users[ids["kelvin"]] == ("k@x.test", "k@x.test", "k@x.test")
    assert users[ids["ann"]] == ("ann", None, None)
    assert users[ids["other_account"]] == ("strasse@x.test", sharp, "strasse@x.test")
    assert users[ids["standard"]] == ("owner@x.test", "owner@x.test", "owner@x.test")
    assert (customers[ids["c_wide"]].email, customers[ids["c_wide"]].email_key) == ("jo@x.test", "jo@x.test")
    assert (customers[ids["c_none"]].email, customers[ids["c_none"]].email_key) == (None, None)
    assert [tuple(t) for t in search_terms] == term_rows([None, "Jo", "jo@x.test", None])
    # Recreating tables on SQLite kept the rows that refer to them.
    assert customers[ids["c_plain"]].user_id == ids["plain"]
    assert memberships == 1


def test_0007_keeps_the_counts_moves_uniqueness_to_the_key_and_downgrades(scratch_app):
    with scratch_app.app_context():
        flask_migrate.upgrade(revision="0006")
        with db.engine.begin() as connection:
            ids = _seed_0006(connection)
        flask_migrate.upgrade()

        with db.engine.begin() as connection:
            _insert(connection, Customer, account_id=ids["a"], email="new@x.test", email_key="new@x.test")
            guests = select(CustomerCount.count).where(
                CustomerCount.account_id == ids["a"], CustomerCount.status == "guest"
            )
            assert connection.scalar(guests) == 4  # the triggers count on
        with pytest.raises(IntegrityError), db.engine.begin() as connection:
            _insert(
                connection, Customer, account_id=ids["a"], email="n\u00e9w@x.test", email_key="new@x.test"
            )

        flask_migrate.downgrade(revision="0006")
        flask_migrate.upgrade(revision="0007")
        with db.engine.connect() as connection:
            assert connection.scalar(text("SELECT version_num FROM alembic_version")) == "0007"


def test_0008_lets_a_rotated_out_publishable_key_stand_beside_the_current_one(scratch_app):
    with scratch_app.app_context():
        flask_migrate.upgrade(revision="0007")
        with db.engine.begin() as connection:
            account_id = _insert(
                connection, Account, name="Acme", mode="live", inserted_at=OLDER, updated_at=OLDER
            )
            key = _insert(connection, RefreshToken, account_id=account_id, inserted_at=OLDER)
        flask_migrate.upgrade(revision="0008")

        with db.engine.begin() as connection:
            connection.execute(
                RefreshToken.__table__.update().where(RefreshToken.id == key).values(expires_at=NEWER)
            )
            _insert(connection, RefreshToken, account_id=account_id, inserted_at=NEWER)
        with pytest.raises(IntegrityError), db.engine.begin() as connection:
            _insert(
                connection, RefreshToken, account_id=account_id, inserted_at=NEWER
            )  # a second current key

        flask_migrate.downgrade(revision="0007")  # keeps the current key only, as 0007 allows
        with db.engine.connect() as connection:
            keys = connection.execute(select(RefreshToken.id, RefreshToken.expires_at)).all()
        assert len(keys) == 1 and keys[0].id != key and keys[0].expires_at is None
        flask_migrate.upgrade(revision="0008")


def test_0011_gives_each_live_refresh_token_family_its_session(scratch_app):
    later = NEWER + timedelta(hours=5)
    with scratch_app.app_context():
        flask_migrate.upgrade(revision="0010")
        with db.engine.begin() as connection:
            account_id, user_id = _acme_and_roy(connection)
            client_id = _insert(connection, Client, account_id=account_id, name="Phone app")
            _insert(connection, RefreshToken, account_id=account_id, inserted_at=OLDER)  # the publishable key

            def token(family_id, token_id=None, **values):
                values = {"inserted_at": OLDER, "last_used_at": OLDER, "expires_at": later, **values}
                return _insert(
                    connection, RefreshToken, id=token_id or uuid.uuid4(), account_id=account_id,
                    user_id=user_id, client_id=client_id, family_id=family_id,
                    token_hash=uuid.uuid4().hex, **values,
                )  # fmt: skip

            live, revoked, legacy = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
            token(live, live, rotated_at=NEWER, last_used_at=NEWER)  # the login, rotated
            token(live, inserted_at=NEWER, last_used_at=later)  # its successor, used since
            token(revoked, revoked, revoked_at=NEWER)
            token(legacy)  # a family from before first tokens took its id: no row names it
        flask_migrate.upgrade(revision="0011")

        with db.engine.connect() as connection:
            rows = connection.execute(select(*_columns_at_0011(LoginSession))).all()
        assert len(rows) == 1
        (row,) = rows
        assert (row.id, row.account_id, row.user_id, row.client_id, row.face) == (
            live,
            account_id,
            user_id,
            client_id,
            "oauth",
        )
        assert (row.customer_id, row.user_agent, row.ip_address, row.ended_at) == (None, None, None, None)
        assert _utc(row.created_at) == OLDER and _utc(row.last_used_at) == later


def _acme_and_roy(connection) -> tuple:
    """The ids of a live account and its customer user Roy, inserted as rows of older revisions."""
    account_id = _insert(connection, Account, name="Acme", mode="live", inserted_at=OLDER, updated_at=OLDER)
    user_id = _insert(
        connection, User, account_id=account_id, username="roy", password_hash="x", role="customer",
        inserted_at=OLDER, updated_at=OLDER,
    )  # fmt: skip
    return account_id, user_id


def _utc(moment: datetime) -> datetime:
    """A column read with Core: SQLite gives naive UTC, PostgreSQL aware."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def test_0012_makes_every_user_simple_and_its_downgrade_forgets_the_second_factors(scratch_app):
    with scratch_app.app_context():
        flask_migrate.upgrade(revision="0011")
        with db.engine.begin() as connection:
            _, user_id = _acme_and_roy(connection)
        flask_migrate.upgrade(revision="0012")

        with db.engine.begin() as connection:
            assert connection.execute(select(User.auth_method)).scalar_one() == "simple"
            connection.execute(User.__table__.update().values(auth_method="tfa_totp", totp_secret="sealed"))
            _insert(
                connection, Passkey, user_id=user_id, credential_id=b"id", public_key=b"key", sign_count=0,
                backup_eligible=False, backed_up=False, inserted_at=OLDER,
            )  # fmt: skip
            _insert(connection, RecoveryCode, user_id=user_id, code_hash="h" * 64, inserted_at=OLDER)
            for purpose in ("login_otp", "magic_link"):
                _insert(
                    connection, OneTimeToken, purpose=purpose, token_hash=purpose, user_id=user_id,
                    expires_at=NEWER, inserted_at=OLDER,
                )  # fmt: skip
        flask_migrate.downgrade(revision="0011")

        with db.engine.connect() as connection:
            purposes = connection.execute(text("SELECT purpose FROM one_time_tokens")).scalars().all()
            columns = {c["name"] for c in sa_inspect(connection).get_columns("users")}
        assert purposes == ["magic_link"]
        assert not {"auth_method", "totp_secret", "totp_last_step"} & columns
        assert not {"passkeys", "recovery_codes"} & set(sa_inspect(db.engine).get_table_names())
        flask_migrate.upgrade(revision="0012")

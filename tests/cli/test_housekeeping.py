"""flask housekeeping, run as the deployment's timer runs it and as an operator does."""

import json
from datetime import timedelta

import flask_migrate
import pytest
from sqlalchemy import func, select, update

from freshcom_customers.cli import housekeeping as housekeeping_cli
from freshcom_customers.models import CustomerEvent, LoginSession, OneTimeToken, RefreshToken, hash_secret
from freshcom_customers.models.base import utcnow

LONG_AGO = timedelta(days=8)  # past the default retention of 7 days
# The owner's logins leave no webhook event and no failed login.
NOTHING_NEW = {"webhookEvents": 0, "unknownFailedLogins": 0}


def housekeeping(runner, *options):
    result = runner.invoke(args=["housekeeping", *options])
    assert result.exit_code == 0, result.output
    return result


def summary(result) -> dict:
    """The one line of JSON on stdout, without its timing."""
    [line] = result.stdout.splitlines()
    printed = json.loads(line)
    assert isinstance(printed.pop("seconds"), float | int)
    return printed


def count(session, model) -> int:
    return session.scalar(select(func.count()).select_from(model))


@pytest.fixture
def expired(session, account, auth):
    """Three expired sessions of the owner's (a login and two refreshes each) and an expired reset link."""
    for _ in range(3):
        tokens = auth.token(
            grant_type="password", username=account.owner.username, password=account.owner_password
        )
        for _ in range(2):
            tokens = auth.token(grant_type="refresh_token", refresh_token=tokens["refresh_token"])
    session.execute(
        update(RefreshToken).where(RefreshToken.user_id.is_not(None)).values(expires_at=utcnow() - LONG_AGO)
    )
    session.execute(update(LoginSession).values(created_at=utcnow() - LONG_AGO))  # begun before that
    session.add(
        OneTimeToken(
            purpose="password_reset",
            token_hash=hash_secret("an expired reset link"),
            user_id=account.owner.id,
            email=account.owner.email,
            expires_at=utcnow() - LONG_AGO,
        )
    )
    session.commit()


def test_purges_and_prints_a_one_line_json_summary(runner, session, account, expired):
    result = housekeeping(runner)
    assert summary(result) == {
        "oneTimeTokens": 1,
        "refreshTokens": 9,
        "sessions": 3,
        **NOTHING_NEW,
        "dryRun": False,
    }
    assert result.stderr == ""  # no bar off a terminal: the timer's journal gets the summary alone
    assert count(session, OneTimeToken) == 0
    # The publishable keys of the account and its test twin are all that is left.
    assert session.scalar(select(func.count()).where(RefreshToken.user_id.is_not(None))) == 0
    assert count(session, RefreshToken) == 2
    assert count(session, LoginSession) == 0
    assert summary(housekeeping(runner)) == {
        "oneTimeTokens": 0,
        "refreshTokens": 0,
        "sessions": 0,
        **NOTHING_NEW,
        "dryRun": False,
    }


def test_a_dry_run_counts_and_deletes_nothing(runner, session, expired):
    before = count(session, OneTimeToken), count(session, RefreshToken), count(session, LoginSession)
    assert summary(housekeeping(runner, "--dry-run")) == {
        "oneTimeTokens": 1,
        "refreshTokens": 9,
        "sessions": 0,  # counted before the families go, which they follow
        **NOTHING_NEW,
        "dryRun": True,
    }
    assert (
        count(session, OneTimeToken),
        count(session, RefreshToken),
        count(session, LoginSession),
    ) == before


def test_a_small_batch_size_still_deletes_everything(runner, session, expired):
    result = housekeeping(runner, "--batch-size", "2")
    assert summary(result) == {
        "oneTimeTokens": 1,
        "refreshTokens": 9,
        "sessions": 3,
        **NOTHING_NEW,
        "dryRun": False,
    }


def test_a_longer_retention_keeps_what_expired_within_it(runner, session, expired):
    assert summary(housekeeping(runner, "--retention-days", "9")) == {
        "oneTimeTokens": 0,
        "refreshTokens": 0,
        "sessions": 0,
        **NOTHING_NEW,
        "dryRun": False,
    }


def test_an_access_token_of_a_purged_family_is_refused(runner, client, auth, account, session):
    tokens = auth.token(
        grant_type="password", username=account.owner.username, password=account.owner_password
    )
    headers = auth.headers(tokens["access_token"])
    assert client.get("/v1/account", headers=headers).status_code == 200
    # The family's absolute expiry long past; the access token itself still unexpired.
    session.execute(
        update(RefreshToken).where(RefreshToken.user_id.is_not(None)).values(expires_at=utcnow() - LONG_AGO)
    )
    session.commit()
    assert client.get("/v1/account", headers=headers).status_code == 200
    assert summary(housekeeping(runner))["refreshTokens"] == 1
    assert client.get("/v1/account", headers=headers).status_code == 401


def test_a_progress_bar_on_a_terminal_goes_to_stderr(runner, session, expired, monkeypatch):
    monkeypatch.setattr(housekeeping_cli, "_on_terminal", lambda: True)
    result = housekeeping(runner, "--batch-size", "4")
    assert "Purging tokens" in result.stderr
    assert summary(result) == {
        "oneTimeTokens": 1,
        "refreshTokens": 9,
        "sessions": 3,
        **NOTHING_NEW,
        "dryRun": False,
    }


def test_a_retention_shorter_than_an_access_tokens_life_is_refused(runner, app, session, monkeypatch):
    monkeypatch.setitem(app.config, "ACCESS_TOKEN_LIFETIME", 2 * 86400)
    result = runner.invoke(args=["housekeeping", "--retention-days", "1"])
    assert result.exit_code == 2
    assert "must be at least the access token lifetime (172800 s)" in result.stderr


def test_every_option_has_help():
    assert all(option.help for option in housekeeping_cli.purge_tokens.params)


@pytest.mark.parametrize("revision", [None, "0007"], ids=["no tables", "at 0007"])
def test_on_a_database_behind_the_migrations_it_says_to_upgrade(app_on, tmp_path, revision):
    unmigrated = app_on(f"sqlite:///{tmp_path / 'unmigrated.sqlite'}")
    with unmigrated.app_context():
        if revision:
            flask_migrate.upgrade(revision=revision)
        result = unmigrated.test_cli_runner().invoke(args=["housekeeping"])
    assert result.exit_code == 1
    assert (
        result.output.strip()
        == "Error: the database schema is not up to date; run: flask --app wsgi db upgrade"
    )


def test_purges_old_failed_logins_of_no_customer_and_keeps_customers_history(
    runner, session, account, auth, roy
):
    scope = f"aid:{account.live.id}"
    auth.token(
        expect=400,
        grant_type="password",
        username="nobody@example.com",
        password="wrong-password-1",
        scope=scope,
    )
    auth.token(
        expect=400,
        grant_type="password",
        username=roy["attributes"]["email"],
        password="wrong-password-1",
        scope=scope,
    )
    session.execute(update(CustomerEvent).values(occurred_at=utcnow() - LONG_AGO))
    session.commit()
    known = session.scalar(select(func.count()).where(CustomerEvent.customer_id.is_not(None)))

    assert summary(housekeeping(runner))["unknownFailedLogins"] == 1
    assert session.scalar(select(func.count()).where(CustomerEvent.customer_id.is_(None))) == 0
    assert session.scalar(select(func.count()).where(CustomerEvent.customer_id.is_not(None))) == known > 0

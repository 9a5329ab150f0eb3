"""Accounts: listing, counting their users and clients, and rotating a publishable key."""

from datetime import timedelta

import pytest

from freshcom_customers.errors import InvalidCredentials
from freshcom_customers.models.base import utcnow
from freshcom_customers.services import accounts, refresh_tokens, users
from tests.conftest import make_account
from tests.statements import beginnings, statements


def test_live_accounts_lists_live_accounts_oldest_first(account, other_account):
    assert [a.id for a in accounts.live_accounts()] == [account.live.id, other_account.live.id]


def test_user_counts_count_owners_members_and_managed_staff(account, session):
    users.create_managed_user(account.live, username="ann", password="ann-password-1", role="manager")
    users.create_managed_user(account.test, username="bob", password="bob-password-1", role="developer")
    users.create_managed_user(account.live, username="cy", password="cy-password-12", role="customer")
    session.flush()
    assert accounts.user_counts(account.live) == {"owners": 1, "members": 1, "staff": 2}
    assert accounts.user_counts(account.test) == accounts.user_counts(account.live)


def test_clients_are_the_live_accounts_default_first(account, session):
    extra, _ = accounts.create_client(account.live, "Back office", confidential=True)
    assert [c.name for c in accounts.clients(account.test)] == ["Default", "Back office"]
    assert accounts.clients(account.live)[1] is extra


def test_a_rotated_key_works_until_its_grace_period_ends(account, session):
    old_value = account.prt
    new, old = accounts.rotate_publishable_key(account.live, timedelta(hours=24))

    assert accounts.publishable_token(account.live) is new
    assert new.prefixed_id != old_value and new.prefixed_id.startswith("prt-live-")
    assert refresh_tokens.find(old_value) is old
    assert refresh_tokens.find(new.prefixed_id) is new
    assert accounts.retiring_publishable_tokens(account.live) == [old]

    old.expires_at = utcnow() - timedelta(seconds=1)  # the grace period is over
    with pytest.raises(InvalidCredentials):
        refresh_tokens.find(old_value)
    assert not refresh_tokens.is_active(old)
    assert refresh_tokens.lookup(old_value) is old  # still known, for introspection
    assert accounts.retiring_publishable_tokens(account.live) == []


def test_a_rotation_without_grace_stops_the_old_key_at_once(account, session):
    old_value = account.prt
    accounts.rotate_publishable_key(account.live, timedelta(0))
    with pytest.raises(InvalidCredentials):
        refresh_tokens.find(old_value)


def test_rotating_twice_keeps_both_earlier_keys_for_their_own_grace(account, session):
    first = accounts.publishable_token(account.live)
    accounts.rotate_publishable_key(account.live, timedelta(hours=1))
    second = accounts.publishable_token(account.live)
    accounts.rotate_publishable_key(account.live, timedelta(hours=2))
    assert accounts.retiring_publishable_tokens(account.live) == [first, second]
    assert second.expires_at - first.expires_at > timedelta(minutes=59)


def test_a_rotation_leaves_the_twin_and_other_accounts_alone(account, session):
    other = make_account("Globex", "owner@globex.test")
    test_key, other_key = account.test_prt, other.prt
    accounts.rotate_publishable_key(account.live, timedelta(0))
    assert account.test_prt == test_key and other.prt == other_key
    assert refresh_tokens.find(test_key).account is account.test


def test_a_publishable_keys_account_is_read_with_the_key_in_one_statement(session, account):
    key = accounts.publishable_token(account.live).prefixed_id
    session.commit()
    session.expire_all()
    with statements(session.get_bind()) as seen:
        assert accounts.of_publishable_key(key).mode == "live"
    assert beginnings(seen, 1) == ["SELECT"]

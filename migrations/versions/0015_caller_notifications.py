"""Caller notifications: PostgreSQL tells every process when a token's caller may have changed.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-05 22:10:00

Triggers NOTIFY the channel freshcom_callers with u:<user id> or a:<account id> when a row
that decides whether a user's access tokens still work changes: the account, the user, its
customers and memberships, a revocation of its refresh tokens, the end of its sessions.
services/callers.py drops what each names from its processes' memory. NOTIFY waits for its
transaction's commit, so a rolled back change tells nobody. SQLite has no notifications and
caches nothing, so nothing is created there.
"""
from alembic import op

# revision identifiers, used by Alembic.
revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None

FUNCTION = """
CREATE FUNCTION freshcom_caller_changed() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    prefix text := TG_ARGV[0];  -- u (a user's id) or a (an account's id)
    key_column text := TG_ARGV[1];  -- the column holding it
    old_key text;
    new_key text;
BEGIN
    IF TG_OP <> 'INSERT' THEN
        old_key := to_jsonb(OLD) ->> key_column;
    END IF;
    IF TG_OP <> 'DELETE' THEN
        new_key := to_jsonb(NEW) ->> key_column;
    END IF;
    IF old_key IS NOT NULL THEN
        PERFORM pg_notify('freshcom_callers', prefix || ':' || old_key);
    END IF;
    IF new_key IS NOT NULL AND new_key IS DISTINCT FROM old_key THEN
        PERFORM pg_notify('freshcom_callers', prefix || ':' || new_key);
    END IF;
    RETURN NULL;
END
$$
"""

# (table, events, condition or None, prefix, key column)
TRIGGERS = [
    ("accounts", "UPDATE OR DELETE", None, "a", "id"),
    ("users", "UPDATE OR DELETE", None, "u", "id"),
    ("customers", "INSERT OR UPDATE OR DELETE", None, "u", "user_id"),
    ("account_memberships", "INSERT OR UPDATE OR DELETE", None, "u", "user_id"),
    ("refresh_tokens", "UPDATE", "OLD.revoked_at IS DISTINCT FROM NEW.revoked_at", "u", "user_id"),
    ("refresh_tokens", "DELETE", None, "u", "user_id"),
    ("sessions", "UPDATE", "OLD.ended_at IS DISTINCT FROM NEW.ended_at", "u", "user_id"),
    ("sessions", "DELETE", None, "u", "user_id"),
]


def _name(table, events):
    return f"{table}_{events.split()[0].lower()}_notifies_callers"


def upgrade():
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(FUNCTION)
    for table, events, condition, prefix, column in TRIGGERS:
        when = f" WHEN ({condition})" if condition else ""
        op.execute(
            f"CREATE TRIGGER {_name(table, events)} AFTER {events} ON {table} FOR EACH ROW{when} "
            f"EXECUTE FUNCTION freshcom_caller_changed('{prefix}', '{column}')"
        )


def downgrade():
    if op.get_bind().dialect.name != "postgresql":
        return
    for table, events, _, _, _ in TRIGGERS:
        op.execute(f"DROP TRIGGER {_name(table, events)} ON {table}")
    op.execute("DROP FUNCTION freshcom_caller_changed()")

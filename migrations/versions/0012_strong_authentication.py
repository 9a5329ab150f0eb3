"""Strong authentication (API.md 11): two-factor methods, TOTP, recovery codes and passkeys.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-05 01:00:55.377100

users gain auth_method (every user is 'simple' until it opts in) and an encrypted TOTP secret
with the last time step used; sessions remember when a second factor was last proven in them.
One-time tokens gain five purposes: a login's code, a phone's verification code, a TOTP
secret waiting for its first code, and WebAuthn's registration and login challenges.

Downgrading deletes the tokens of the new purposes, the recovery codes and the passkeys, and
puts every user back on 'simple'.
"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

# revision identifiers, used by Alembic.
revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None

OLD = ('password_reset', 'email_verification', 'magic_link', 'registration_confirmation', 'invitation')
ADDED_PURPOSES = ('login_otp', 'phone_verification', 'totp_enrollment', 'passkey_registration', 'passkey_challenge')
OLD_PURPOSES = f"purpose IN ({', '.join(map(repr, OLD))})"
NEW_PURPOSES = f"purpose IN ({', '.join(map(repr, OLD + ADDED_PURPOSES))})"
AUTH_METHODS = "auth_method IN ('simple', 'tfa_email', 'tfa_sms', 'tfa_totp')"


def upgrade():
    op.create_table('passkeys',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('user_id', sa.Uuid(), nullable=False),
    sa.Column('credential_id', sa.LargeBinary(length=1023), nullable=False),
    sa.Column('public_key', sa.LargeBinary(), nullable=False),
    sa.Column('sign_count', sa.BigInteger(), nullable=False),
    sa.Column('transports', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True),
    sa.Column('aaguid', sa.String(length=36), nullable=True),
    sa.Column('backup_eligible', sa.Boolean(), nullable=False),
    sa.Column('backed_up', sa.Boolean(), nullable=False),
    sa.Column('name', sa.String(length=64), nullable=True),
    sa.Column('last_used_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('inserted_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_passkeys_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_passkeys')),
    sa.UniqueConstraint('credential_id', name=op.f('uq_passkeys_credential_id'))
    )
    with op.batch_alter_table('passkeys', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_passkeys_user_id'), ['user_id'], unique=False)

    op.create_table('recovery_codes',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('user_id', sa.Uuid(), nullable=False),
    sa.Column('code_hash', sa.String(length=64), nullable=False),
    sa.Column('used_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('inserted_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_recovery_codes_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_recovery_codes')),
    sa.UniqueConstraint('code_hash', name=op.f('uq_recovery_codes_code_hash'))
    )
    with op.batch_alter_table('recovery_codes', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_recovery_codes_user_id'), ['user_id'], unique=False)

    with op.batch_alter_table('sessions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('second_factor_at', sa.DateTime(timezone=True), nullable=True))

    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('auth_method', sa.String(length=16), server_default='simple', nullable=False))
        batch_op.add_column(sa.Column('totp_secret', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('totp_last_step', sa.BigInteger(), nullable=True))
        batch_op.create_check_constraint('auth_method', AUTH_METHODS)

    with op.batch_alter_table('one_time_tokens', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_one_time_tokens_purpose'), type_='check')
        batch_op.create_check_constraint('purpose', NEW_PURPOSES)


def downgrade():
    op.execute(f"DELETE FROM one_time_tokens WHERE purpose IN ({', '.join(map(repr, ADDED_PURPOSES))})")
    with op.batch_alter_table('one_time_tokens', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_one_time_tokens_purpose'), type_='check')
        batch_op.create_check_constraint('purpose', OLD_PURPOSES)

    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_users_auth_method'), type_='check')
        batch_op.drop_column('totp_last_step')
        batch_op.drop_column('totp_secret')
        batch_op.drop_column('auth_method')

    with op.batch_alter_table('sessions', schema=None) as batch_op:
        batch_op.drop_column('second_factor_at')

    with op.batch_alter_table('recovery_codes', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_recovery_codes_user_id'))

    op.drop_table('recovery_codes')
    with op.batch_alter_table('passkeys', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_passkeys_user_id'))

    op.drop_table('passkeys')

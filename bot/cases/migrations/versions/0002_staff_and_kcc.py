"""Staff accounts and sessions (shared staff login) and the KCC queue.

Revision ID: 0002_staff_and_kcc
Revises: 0001_initial
Create Date: 2026-01-12
"""
from alembic import op
import sqlalchemy as sa

revision = "0002_staff_and_kcc"
down_revision = "0001_initial"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "staff_user",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("username", sa.String(64), nullable=False),
        sa.Column("password_hash", sa.Text(), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("failed_logins", sa.Integer(), nullable=False),
        sa.Column("locked_until", sa.DateTime(), nullable=True),
        sa.Column("disabled_at", sa.DateTime(), nullable=True),
        sa.Column("last_login_at", sa.DateTime(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_staff_user"),
        sa.UniqueConstraint("username", name="uq_staff_user_username"),
    )
    op.create_table(
        "staff_session",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("username", sa.String(64), nullable=False),
        sa.Column("csrf_token", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_staff_session"),
        sa.ForeignKeyConstraint(
            ["username"], ["staff_user.username"],
            name="fk_staff_session_username_staff_user", ondelete="CASCADE",
        ),
        sa.UniqueConstraint("token_hash", name="uq_staff_session_token_hash"),
    )
    op.create_index("ix_staff_session_username", "staff_session", ["username"])

    op.create_table(
        "kcc_queue",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("sender_id", sa.String(255), nullable=False),
        sa.Column("open_key", sa.String(255), nullable=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("channel", sa.String(32), nullable=False),
        sa.Column("input_channel", sa.String(64), nullable=True),
        sa.Column("topic", sa.String(255), nullable=True),
        sa.Column("employee", sa.String(64), nullable=True),
        sa.Column("close_reason", sa.String(32), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("accepted_at", sa.DateTime(), nullable=True),
        sa.Column("closed_at", sa.DateTime(), nullable=True),
        sa.Column("citizen_left_at", sa.DateTime(), nullable=True),
        sa.Column("offer_at", sa.DateTime(), nullable=True),
        sa.Column("callback_offered_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_kcc_queue"),
        sa.UniqueConstraint("open_key", name="uq_kcc_queue_open_key"),
    )
    op.create_index("ix_kcc_queue_state_created_at", "kcc_queue", ["state", "created_at"])
    op.create_index("ix_kcc_queue_sender_id", "kcc_queue", ["sender_id"])


def downgrade() -> None:
    op.drop_index("ix_kcc_queue_sender_id", table_name="kcc_queue")
    op.drop_index("ix_kcc_queue_state_created_at", table_name="kcc_queue")
    op.drop_table("kcc_queue")
    op.drop_index("ix_staff_session_username", table_name="staff_session")
    op.drop_table("staff_session")
    op.drop_table("staff_user")

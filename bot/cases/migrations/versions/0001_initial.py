"""Initial case store: zaak, status history, zaaknummer sequence, slots, bookings, outbox.

Revision ID: 0001_initial
Revises:
Create Date: 2026-01-05
"""
from alembic import op
import sqlalchemy as sa

revision = "0001_initial"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "zaak",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("zaaknummer", sa.String(32), nullable=False),
        sa.Column("zaaktype", sa.String(64), nullable=False),
        sa.Column("status", sa.String(64), nullable=False),
        sa.Column("channel", sa.String(32), nullable=False),
        sa.Column("backend", sa.String(32), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("contact", sa.JSON(), nullable=False),
        sa.Column("bsn", sa.String(9), nullable=True),
        sa.Column("idempotency_key", sa.String(255), nullable=False),
        sa.Column("remote_url", sa.Text(), nullable=True),
        sa.Column("remote_identificatie", sa.String(255), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_zaak"),
        sa.UniqueConstraint("zaaknummer", name="uq_zaak_zaaknummer"),
        sa.UniqueConstraint("idempotency_key", name="uq_zaak_idempotency_key"),
    )
    op.create_index("ix_zaak_zaaktype_created_at", "zaak", ["zaaktype", "created_at"])

    op.create_table(
        "zaak_status",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("zaak_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(64), nullable=False),
        sa.Column("toelichting", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_zaak_status"),
        sa.ForeignKeyConstraint(
            ["zaak_id"], ["zaak.id"], name="fk_zaak_status_zaak_id_zaak", ondelete="CASCADE"
        ),
    )
    op.create_index("ix_zaak_status_zaak_id", "zaak_status", ["zaak_id"])

    op.create_table(
        "zaaknummer_sequence",
        sa.Column("prefix", sa.String(16), nullable=False),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("last_value", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("prefix", "year", name="pk_zaaknummer_sequence"),
    )

    op.create_table(
        "slot",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("start", sa.DateTime(), nullable=False),
        sa.Column("duration_minutes", sa.Integer(), nullable=False),
        sa.Column("capacity", sa.Integer(), nullable=False),
        sa.Column("booked", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_slot"),
        sa.UniqueConstraint("kind", "start", name="uq_slot_kind_start"),
    )

    op.create_table(
        "booking",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(6), nullable=False),
        sa.Column("slot_id", sa.Integer(), nullable=False),
        sa.Column("idempotency_key", sa.String(255), nullable=False),
        sa.Column("zaaknummer", sa.String(32), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("cancelled_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_booking"),
        sa.ForeignKeyConstraint(["slot_id"], ["slot.id"], name="fk_booking_slot_id_slot"),
        sa.ForeignKeyConstraint(
            ["zaaknummer"], ["zaak.zaaknummer"], name="fk_booking_zaaknummer_zaak"
        ),
        sa.UniqueConstraint("code", name="uq_booking_code"),
        sa.UniqueConstraint("idempotency_key", name="uq_booking_idempotency_key"),
    )
    op.create_index("ix_booking_zaaknummer", "booking", ["zaaknummer"])

    op.create_table(
        "outbox",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("zaaknummer", sa.String(32), nullable=False),
        sa.Column("backend", sa.String(32), nullable=False),
        sa.Column("reference", sa.String(64), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("next_attempt_at", sa.DateTime(), nullable=False),
        sa.Column("leased_by", sa.String(128), nullable=True),
        sa.Column("lease_until", sa.DateTime(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_outbox"),
        sa.ForeignKeyConstraint(
            ["zaaknummer"], ["zaak.zaaknummer"], name="fk_outbox_zaaknummer_zaak"
        ),
        sa.UniqueConstraint("backend", "reference", name="uq_outbox_backend_reference"),
    )
    op.create_index("ix_outbox_state_next_attempt_at", "outbox", ["state", "next_attempt_at"])


def downgrade() -> None:
    op.drop_index("ix_outbox_state_next_attempt_at", table_name="outbox")
    op.drop_table("outbox")
    op.drop_index("ix_booking_zaaknummer", table_name="booking")
    op.drop_table("booking")
    op.drop_table("slot")
    op.drop_table("zaaknummer_sequence")
    op.drop_index("ix_zaak_status_zaak_id", table_name="zaak_status")
    op.drop_table("zaak_status")
    op.drop_index("ix_zaak_zaaktype_created_at", table_name="zaak")
    op.drop_table("zaak")

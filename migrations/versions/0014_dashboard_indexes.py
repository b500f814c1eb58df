"""dashboard: indexes for the manager's "today" and this month's figures

Registrations, visits, subscriptions and signings of the day were counted by scanning 200,000
leads, 200,000 follow-ups and 100,000 subscriptions (~45 ms); by these indexes, ~1 ms.

Revision ID: 9e4f1b6c2d75
Revises: 5d2b7e9c1a43
Create Date: 2026-11-28 01:40:00

"""
from migrations import online


revision = '9e4f1b6c2d75'
down_revision = '5d2b7e9c1a43'
branch_labels = None
depends_on = None

INDEXES = (("ix_lead_registered_at", "lead", "registered_at"), ("ix_follow_up_at", "follow_up", "at"),
           ("ix_subscription_subscribed_on", "subscription", "subscribed_on"),
           ("ix_contract_signed_on", "contract", "signed_on"))


# Big tables: built CONCURRENTLY on PostgreSQL, writes go on meanwhile (migrations/online.py).
def upgrade():
    for name, table, column in INDEXES:
        online.create_index(name, table, [column])


def downgrade():
    for name, table, _ in INDEXES:
        online.drop_index(name, table)

"""Grid filters Flask-Admin does not have: the agent as a choice of names."""
from __future__ import annotations

import functools
from typing import Callable

from flask_admin.contrib.sqla.filters import BaseSQLAFilter
from flask_babel import gettext, lazy_gettext as _l
from sqlalchemy import select

from models import Instalment, Role, Subscription, User, db

from .base import row_id


@functools.cache
def _agents_query():
    return (select(User.id, User.display_name).join(User.roles).where(Role.name == "agent")
            .order_by(User.display_name))


class _Agents:
    """The agents' names as filter options, read when the grid is drawn (Flask-Admin keeps a
    filter's options from start-up, when there is no database to ask)."""

    def __bool__(self) -> bool:
        return True

    def __iter__(self):
        agents = db.session.execute(_agents_query()).all()
        return iter([(str(agent_id), name) for agent_id, name in agents])


class AgentFilter(BaseSQLAFilter):
    """置业顾问 = one agent, chosen by name. `where(agent_id)` gives the clause when the agent is
    not a column of the grid's own table (e.g. a plan line's deal's agent)."""

    def __init__(self, column, where: Callable[[int], object] | None = None, name=_l("Agent")):
        super().__init__(column, name, options=_Agents())
        self.where = where

    def validate(self, value) -> bool:
        return row_id(value) is not None

    def apply(self, query, value, alias=None):
        agent_id = int(value)
        return query.filter(self.where(agent_id) if self.where else self.column == agent_id)

    def operation(self):
        return gettext("is")


def of_agent(subscription_id_column) -> Callable[[int], object]:
    """The clause "the deal of this row is the agent's", for tables hanging from a subscription."""
    return lambda agent_id: subscription_id_column.in_(
        select(Subscription.id).where(Subscription.agent_id == agent_id))


def of_agent_line(instalment_id_column) -> Callable[[int], object]:
    """The same for tables hanging from a plan line (extensions, ladder events)."""
    return lambda agent_id: instalment_id_column.in_(
        select(Instalment.id).join(Subscription).where(Subscription.agent_id == agent_id))

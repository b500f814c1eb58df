"""Users and roles (R-ALL-1). Roles are fixed data, seeded by the first migration."""
from __future__ import annotations

import datetime as dt
import secrets

from flask import current_app
from flask_babel import lazy_gettext as _l
from flask_login import UserMixin
from sqlalchemy import Boolean, CheckConstraint, Column, ForeignKey, String, Table, select
from sqlalchemy.orm import Mapped, mapped_column, relationship
from werkzeug.security import check_password_hash, generate_password_hash

from .base import Base, in_list, utcnow
from .errors import RuleViolation
from .permissions import ROLES

user_role = Table(
    "user_role",
    Base.metadata,
    Column("user_id", ForeignKey("user.id", ondelete="CASCADE"), primary_key=True),
    Column("role_id", ForeignKey("role.id", ondelete="RESTRICT"), primary_key=True),
)


class Role(Base):
    __tablename__ = "role"
    __table_args__ = (CheckConstraint(in_list("name", ROLES), name="name_known"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(40), unique=True)

    def __str__(self) -> str:
        from .permissions import role_label

        return str(role_label(self.name))


def _new_session_token() -> str:
    return secrets.token_urlsafe(32)


class User(UserMixin, Base):
    __tablename__ = "user"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(100))
    password_hash: Mapped[str] = mapped_column(String(255))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    # Flask-Login's id: rotating it ends every session and remember cookie of the user.
    session_token: Mapped[str] = mapped_column(String(64), unique=True, default=_new_session_token)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    last_login_at: Mapped[dt.datetime | None]

    # Loaded when asked for (the signed-in user's, with the user: admin/auth.py), not with every
    # user a grid shows as an owner or agent (an extra query on each such page).
    roles: Mapped[list[Role]] = relationship(secondary=user_role, lazy="select", order_by=Role.id)

    def __str__(self) -> str:
        return f"{self.display_name} ({self.username})"

    # Flask-Login
    def get_id(self) -> str:
        return self.session_token

    @property
    def is_active(self) -> bool:  # inactive users cannot log in (Flask-Login refuses them)
        return bool(self.active)

    @property
    def role_names(self) -> frozenset[str]:
        return frozenset(r.name for r in self.roles)

    def has_role(self, *names: str) -> bool:
        return bool(self.role_names.intersection(names))

    def set_password(self, password: str) -> None:
        if len(password) < 8:
            raise RuleViolation(_l("The password must have at least 8 characters."))
        method = current_app.config.get("PASSWORD_HASH_METHOD", "scrypt")
        self.password_hash = generate_password_hash(password, method=method)
        self.end_sessions()

    def check_password(self, password: str) -> bool:
        return check_password_hash(self.password_hash, password)

    def end_sessions(self) -> None:
        """Invalidate every session and remember cookie issued so far."""
        self.session_token = _new_session_token()


# A hash to compare against when the username is unknown, so both failures take as long.
_DUMMY_HASH: dict[str, str] = {}


def authenticate(session, username: str, password: str) -> User | None:
    """Return the active user with this username and password, or None.

    Unknown user, wrong password and inactive user are indistinguishable to the caller.
    """
    user = session.scalar(select(User).where(User.username == (username or "").strip()))
    if user is None:
        method = current_app.config.get("PASSWORD_HASH_METHOD", "scrypt")
        dummy = _DUMMY_HASH.setdefault(method, generate_password_hash("x" * 12, method=method))
        check_password_hash(dummy, password or "")
        return None
    if not user.check_password(password or "") or not user.active:
        return None
    return user


def create_user(session, username: str, password: str, roles: list[str],
                display_name: str | None = None) -> User:
    """Create an account with the given roles (R-ALL-1). Raises RuleViolation."""
    username = (username or "").strip()
    if not username or len(username) > 64:
        raise RuleViolation(_l("A username is required (at most 64 characters)."))
    unknown = [r for r in roles if r not in ROLES]
    if unknown or not roles:
        raise RuleViolation(_l("Unknown role: %(roles)s", roles=", ".join(unknown) or "-"))
    if session.scalar(select(User.id).where(User.username == username)) is not None:
        raise RuleViolation(_l("The username %(name)s is taken.", name=username))
    user = User(username=username, display_name=display_name or username)
    user.set_password(password)
    user.roles = list(session.scalars(select(Role).where(Role.name.in_(roles))))
    session.add(user)
    session.flush()
    return user


def users_with_roles(session, roles) -> list[int]:
    """Ids of the active users holding any of `roles`."""
    return list(session.scalars(
        select(User.id).join(user_role, user_role.c.user_id == User.id).join(Role, Role.id == user_role.c.role_id)
        .where(Role.name.in_(sorted(roles)), User.active.is_(True)).distinct().order_by(User.id)))


def users_who_may(session, operation: str) -> list[int]:
    """Ids of the active users whose roles allow `operation` (models.permissions.OPERATIONS),
    but not the administrator, who may do anything and is told nothing: whoever must act is
    told (the vice-president for prices, the lawyer for letters)."""
    from .permissions import OPERATIONS
    return users_with_roles(session, OPERATIONS.get(operation, frozenset()) - {"admin"})

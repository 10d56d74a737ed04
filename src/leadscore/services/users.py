"""Dashboard users and sign-in sessions.

Passwords are hashed with scrypt (standard library; memory-hard, parameters and salt stored
with the hash). A session is a random token in an HttpOnly cookie; the database keeps only its
SHA-256, the user, a CSRF token for the session's forms and an expiry that slides with use (idle
limit) up to an absolute limit.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass

from sqlalchemy import Connection, delete, insert, select, update

from leadscore.services.errors import LeadscoreError, NotFound
from leadscore.store.tables import dashboard_sessions, users

ROLES = ("admin", "marketing", "sales")
LANGUAGES = ("en", "fr")
IDLE_SECONDS = 12 * 3600  # a session unused this long ends
ABSOLUTE_SECONDS = 7 * 86_400  # and none lasts longer than this
MIN_PASSWORD = 10
_SCRYPT = {"n": 2**14, "r": 8, "p": 1}


class BadUser(LeadscoreError):
    """An invalid user (unknown role, short password, e-mail taken)."""

    exit_code = 2


@dataclass(frozen=True, slots=True)
class User:
    id: int
    email: str
    name: str | None
    role: str
    language: str | None
    disabled: bool


@dataclass(frozen=True, slots=True)
class Session:
    user: User
    csrf_token: str
    expires_at: int  # ms


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, dklen=32, **_SCRYPT)
    return "scrypt${n}${r}${p}${salt}${digest}".format(**_SCRYPT, salt=_b64(salt), digest=_b64(digest))


def check_password(password: str, stored: str) -> bool:
    try:
        kind, n, r, p, salt, digest = stored.split("$")
        if kind != "scrypt":
            return False
        computed = hashlib.scrypt(password.encode(), salt=_unb64(salt), dklen=32, n=int(n), r=int(r), p=int(p))
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(computed, _unb64(digest))


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _user(row: object) -> User:
    mapping = row._mapping  # type: ignore[attr-defined]
    return User(mapping["id"], mapping["email"], mapping["name"], mapping["role"], mapping["language"], bool(mapping["disabled"]))


def create_user(connection: Connection, email: str, password: str, role: str, *, name: str | None = None,
                language: str | None = None) -> User:
    email = email.strip().lower()
    if "@" not in email or len(email) > 254:
        raise BadUser(f"{email!r} is not an e-mail address")
    if role not in ROLES:
        raise BadUser(f"unknown role {role!r}: expected one of {', '.join(ROLES)}")
    if len(password) < MIN_PASSWORD:
        raise BadUser(f"the password needs at least {MIN_PASSWORD} characters")
    if language is not None and language not in LANGUAGES:
        raise BadUser(f"unknown language {language!r}: expected one of {', '.join(LANGUAGES)}")
    if connection.execute(select(users.c.id).where(users.c.email == email)).first() is not None:
        raise BadUser(f"a user with the e-mail {email} exists already")
    now = int(time.time() * 1000)
    connection.execute(insert(users).values(email=email, name=name, role=role, password_hash=hash_password(password),
                                            language=language, created_at=now, updated_at=now))
    return get_user(connection, email)


def reset_password(connection: Connection, email: str, password: str) -> User:
    """Give an existing user a new password (and end their sessions)."""
    user = get_user(connection, email)
    if len(password) < MIN_PASSWORD:
        raise BadUser(f"the password needs at least {MIN_PASSWORD} characters")
    connection.execute(update(users).where(users.c.id == user.id).values(password_hash=hash_password(password),
                                                                        updated_at=int(time.time() * 1000)))
    connection.execute(delete(dashboard_sessions).where(dashboard_sessions.c.user_id == user.id))
    return user


DEMO_EMAIL = "demo@leadscore.local"


def demo_login(connection: Connection) -> tuple[str, str]:
    """The demo's admin sign-in: created on first use, a fresh random password each call
    (nothing to remember, nothing guessable); returns (e-mail, password)."""
    password = secrets.token_urlsafe(9)
    try:
        get_user(connection, DEMO_EMAIL)
    except NotFound:
        create_user(connection, DEMO_EMAIL, password, "admin", name="Demo")
    else:
        reset_password(connection, DEMO_EMAIL, password)
    return DEMO_EMAIL, password


def get_user(connection: Connection, email: str) -> User:
    row = connection.execute(select(users).where(users.c.email == email.strip().lower())).first()
    if row is None:
        raise NotFound(f"no user {email}")
    return _user(row)


def list_users(connection: Connection) -> list[User]:
    return [_user(row) for row in connection.execute(select(users).order_by(users.c.id))]


def set_language(connection: Connection, user_id: int, language: str | None) -> None:
    if language is not None and language not in LANGUAGES:
        raise BadUser(f"unknown language {language!r}: expected one of {', '.join(LANGUAGES)}")
    connection.execute(update(users).where(users.c.id == user_id).values(language=language, updated_at=int(time.time() * 1000)))


def authenticate(connection: Connection, email: str, password: str) -> User | None:
    """The user with these credentials, or None (unknown, wrong password, disabled). An unknown
    e-mail costs a hash too, so timing does not tell which e-mails exist."""
    row = connection.execute(select(users).where(users.c.email == email.strip().lower())).first()
    if row is None:
        check_password(password, _DUMMY)
        return None
    if not check_password(password, row._mapping["password_hash"]) or row._mapping["disabled"]:
        return None
    return _user(row)


_DUMMY = hash_password(secrets.token_urlsafe(12))


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def open_session(connection: Connection, user: User, *, now: float | None = None) -> tuple[str, Session]:
    """A new session for ``user``: the cookie token (shown once) and the session."""
    moment = int((time.time() if now is None else now) * 1000)
    token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(24)
    expires = moment + IDLE_SECONDS * 1000
    connection.execute(insert(dashboard_sessions).values(token_hash=_token_hash(token), user_id=user.id, csrf_token=csrf,
                                                         created_at=moment, expires_at=expires))
    connection.execute(delete(dashboard_sessions).where(dashboard_sessions.c.expires_at < moment))  # tidy up
    return token, Session(user, csrf, expires)


def session_of(connection: Connection, token: str | None, *, now: float | None = None) -> Session | None:
    """The live session of this cookie token (its expiry moved forward), or None."""
    if not token:
        return None
    moment = int((time.time() if now is None else now) * 1000)
    row = connection.execute(
        select(dashboard_sessions, users).join(users, users.c.id == dashboard_sessions.c.user_id)
        .where(dashboard_sessions.c.token_hash == _token_hash(token))
    ).first()
    if row is None:
        return None
    mapping = row._mapping
    if mapping["expires_at"] < moment or mapping["disabled"]:
        return None
    expires = min(moment + IDLE_SECONDS * 1000, mapping["created_at"] + ABSOLUTE_SECONDS * 1000)
    if expires - mapping["expires_at"] > 60_000:  # write at most once a minute
        connection.execute(update(dashboard_sessions).where(dashboard_sessions.c.token_hash == _token_hash(token))
                           .values(expires_at=expires))
    user = User(mapping["user_id"], mapping["email"], mapping["name"], mapping["role"], mapping["language"], False)
    return Session(user, mapping["csrf_token"], max(expires, mapping["expires_at"]))


def close_session(connection: Connection, token: str | None) -> None:
    if token:
        connection.execute(delete(dashboard_sessions).where(dashboard_sessions.c.token_hash == _token_hash(token)))

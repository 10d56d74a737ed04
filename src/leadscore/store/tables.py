"""The database schema as SQLAlchemy Core tables (the migrations create exactly these).

Conventions: timestamps are ``BIGINT`` milliseconds since the Unix epoch (UTC), except
``contacts.last_event_at`` and ``score_state.t_ref`` which are ``FLOAT`` seconds, the unit of
the scoring core. JSON documents (traits, properties, context) are stored as text written by
orjson, so SQLite and PostgreSQL behave alike and the bulk layer moves plain strings.

``events`` and ``score_state`` are clustered by their primary key (``WITHOUT ROWID`` on
SQLite) and carry no other index: see docs/architecture.md, "Event log".
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Integer,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    Table,
    Text,
    UniqueConstraint,
    false,
    true,
    text,
)

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_name)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING_CONVENTION)

IDENTITY_KINDS = ("user_id", "anonymous_id", "email")
MODEL_STATUSES = ("draft", "published", "retired")

accounts = Table(
    "accounts",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("key", Text, nullable=False, unique=True),
    Column("name", Text, nullable=True),
    Column("domain", Text, nullable=True, index=True),
    Column("traits", Text, nullable=False, server_default=text("'{}'")),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
)
"""Companies (Segment ``group`` calls, CSV ``account.*`` columns), keyed by an external key."""

contacts = Table(
    "contacts",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("user_id", Text, nullable=True, unique=True),
    Column("anonymous_id", Text, nullable=True, index=True),
    Column("email", Text, nullable=True, index=True),
    Column("traits", Text, nullable=False, server_default=text("'{}'")),
    Column("account_id", BigInteger, ForeignKey("accounts.id"), nullable=True, index=True),
    Column("excluded", Boolean, nullable=False, server_default=false()),
    Column("fit_raw", Float, nullable=False, server_default=text("0")),
    Column("first_seen_at", BigInteger, nullable=True),
    Column("last_event_at", Float, nullable=True),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    sqlite_autoincrement=True,  # ids of merged or erased contacts are never handed out again
)
"""People, known (``user_id``) or anonymous. ``fit_raw`` caches the raw fit points;
``last_event_at`` (seconds) is the latest event time counted in the score state."""

identities = Table(
    "identities",
    metadata,
    Column("kind", Text, nullable=False),
    Column("value", Text, nullable=False),
    Column("contact_id", BigInteger, ForeignKey("contacts.id"), nullable=False, index=True),
    PrimaryKeyConstraint("kind", "value"),
)
"""Every identifier seen for a contact: ``kind`` is one of :data:`IDENTITY_KINDS`."""

events = Table(
    "events",
    metadata,
    Column("contact_id", BigInteger, nullable=False),
    Column("message_id", Text, nullable=False),
    Column("type", Text, nullable=False),
    Column("event", Text, nullable=True),
    Column("ts", BigInteger, nullable=False),
    Column("received_at", BigInteger, nullable=False),
    Column("user_id", Text, nullable=True),
    Column("anonymous_id", Text, nullable=True),
    Column("properties", Text, nullable=True),
    Column("context", Text, nullable=True),
    Column("traits", Text, nullable=True),
    Column("machine", Boolean, nullable=False, server_default=false()),
    Column("context_id", BigInteger, nullable=True),
    PrimaryKeyConstraint("contact_id", "message_id"),
    sqlite_with_rowid=False,
)
"""The append-only event log, the source of truth of every score.

An event's Segment ``context`` (user agent, library, campaign, locale…) is stored once per
distinct document in ``contexts`` and referenced by ``context_id``: it repeats from one event of
a visitor to the next and is most of a web event's bytes. ``context`` holds the inline JSON of
events stored before schema revision 0002 (readers see ``coalesce(context, contexts.body)``)."""

contexts = Table(
    "contexts",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("digest", Text, nullable=False),
    Column("body", Text, nullable=False),
    UniqueConstraint("digest"),
)
"""Distinct event contexts (JSON text), keyed by a BLAKE2b digest of the text."""

models = Table(
    "models",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("name", Text, nullable=False),
    Column("version", Integer, nullable=False),
    Column("revision", Integer, nullable=False),
    Column("yaml", Text, nullable=False),
    Column("checksum", Text, nullable=False),
    Column("status", Text, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("published_at", BigInteger, nullable=True),
    UniqueConstraint("revision"),
)
"""Scoring model files: ``version`` is the file format version, ``revision`` counts drafts and
publications (1, 2, 3 …); at most one row is ``published``."""

score_state = Table(
    "score_state",
    metadata,
    Column("contact_id", BigInteger, nullable=False),
    Column("rule_id", Text, nullable=False),
    Column("s", Float, nullable=False),
    Column("t_ref", Float, nullable=False),
    PrimaryKeyConstraint("contact_id", "rule_id"),
    sqlite_with_rowid=False,
)
"""Decayed accumulators ``(s, t_ref)`` per contact and engagement rule (a cache of the log)."""

meta = Table(
    "meta",
    metadata,
    Column("key", Text, primary_key=True),
    Column("value", Text, nullable=True),
)
"""Small settings, e.g. which model revision the score state was computed with."""


API_ROLES = ("admin", "marketing", "sales", "ingest")

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("name", Text, nullable=True),
    Column("role", Text, nullable=False),
    Column("prefix", Text, nullable=False),
    Column("key_hash", Text, nullable=False, unique=True),
    Column("created_at", BigInteger, nullable=False),
    Column("last_used_at", BigInteger, nullable=True),
    Column("revoked_at", BigInteger, nullable=True),
)
"""REST API keys: only a SHA-256 of the secret is stored (``prefix`` names it in lists);
``role`` is one of :data:`API_ROLES`."""

write_keys = Table(
    "write_keys",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("name", Text, nullable=True),
    Column("prefix", Text, nullable=False),
    Column("key_hash", Text, nullable=False, unique=True),
    Column("origins", Text, nullable=False, server_default=text("'[]'")),
    Column("created_at", BigInteger, nullable=False),
    Column("revoked_at", BigInteger, nullable=True),
)
"""Segment write keys (hashed like API keys); ``origins`` is a JSON list of the web sites
allowed to send with the key from a browser (CORS)."""

merges = Table(
    "merges",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("survivor_id", BigInteger, nullable=False, index=True),
    Column("merged_id", BigInteger, nullable=False, index=True),
    Column("cause", Text, nullable=False),
    Column("identity_kind", Text, nullable=True),
    Column("identity_value", Text, nullable=True),
    Column("events_moved", Integer, nullable=False, server_default=text("0")),
    Column("merged_at", BigInteger, nullable=False),
    Column("notified_at", BigInteger, nullable=True, index=True),
)
"""Contacts merged into another (identity resolution): ``cause`` is ``identify``, ``alias`` or
``email``; the identity that linked them; how many events moved to the survivor.
``notified_at`` is set once the webhook worker has queued the ``contact.merged`` notifications
(null: not yet; see :mod:`leadscore.services.webhooks`)."""

WEBHOOK_EVENTS = (
    "contact.score_threshold_crossed",
    "contact.temperature_changed",
    "contact.merged",
    "contact.stage_changed",
    "contact.mql",
    "contact.assigned",
    "contact.sla_breached",
    "account.qualified",
)

webhooks = Table(
    "webhooks",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("url", Text, nullable=False),
    Column("secret", Text, nullable=False),
    Column("events", Text, nullable=False),
    Column("threshold", Float, nullable=True),
    Column("hysteresis", Float, nullable=False, server_default=text("0")),
    Column("active", Boolean, nullable=False, server_default=true()),
    Column("description", Text, nullable=True),
    Column("created_at", BigInteger, nullable=False),
)
"""Webhook subscriptions: ``events`` is a JSON list of :data:`WEBHOOK_EVENTS`; ``threshold``
and ``hysteresis`` (combined-score points) apply to ``contact.score_threshold_crossed``. The
``secret`` signs deliveries, so it is stored as is (it is shown once, at creation)."""

outbox = Table(
    "outbox",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("event_id", Text, nullable=False, unique=True),
    Column("webhook_id", BigInteger, nullable=False, index=True),
    Column("kind", Text, nullable=False),
    Column("payload", Text, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("attempts", Integer, nullable=False, server_default=text("0")),
    Column("next_attempt_at", BigInteger, nullable=True, index=True),
    Column("delivered_at", BigInteger, nullable=True),
    Column("last_status", Integer, nullable=True),
    Column("last_error", Text, nullable=True),
)
"""Notifications to deliver, written in the transaction that caused them, and their delivery
log: ``payload`` is the exact JSON body; ``next_attempt_at`` is null once delivered."""

alert_state = Table(
    "alert_state",
    metadata,
    Column("contact_id", BigInteger, nullable=False),
    Column("webhook_id", BigInteger, nullable=False, index=True),
    Column("side", Text, nullable=True),
    Column("temperature", Text, nullable=True),
    Column("next_check_at", BigInteger, nullable=True, index=True),
    PrimaryKeyConstraint("contact_id", "webhook_id"),
)
"""What each webhook was last told about a contact: ``side`` of its threshold (``above`` /
``below``), ``temperature``, and when decay alone will next change one of them
(``next_check_at``, ms). A missing row means below the threshold, cold, nothing scheduled."""


# --------------------------------------------------------------------------- lifecycle (0005)

contact_stages = Table(
    "contact_stages",
    metadata,
    Column("contact_id", BigInteger, primary_key=True, autoincrement=False),
    Column("stage", Text, nullable=False, index=True),
    Column("entered_at", BigInteger, nullable=False),
    Column("previous_stage", Text, nullable=True),
    Column("owner_id", BigInteger, nullable=True, index=True),
    Column("team_id", BigInteger, nullable=True),
    Column("below_since", BigInteger, nullable=True),
    Column("due_at", BigInteger, nullable=True, index=True),
    Column("due_kind", Text, nullable=True),
    Column("escalated_at", BigInteger, nullable=True),
    Column("updated_at", BigInteger, nullable=False),
)
"""Each contact's current lifecycle stage (a contact without a row is in the first stage) and
its timers: ``due_at`` (ms, indexed) is the next moment time alone can change something for
the contact — an MQL's score falling below the recycle level, the end of its grace period, a
nurturing minimum or maximum stay, a sales SLA — and ``due_kind`` says which; the worker reads
only the rows due (an index range scan). ``below_since`` is when an MQL's score fell below the
recycle level (null: above). ``owner_id``/``team_id`` are the current assignment."""

stage_history = Table(
    "stage_history",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("contact_id", BigInteger, nullable=False, index=True),
    Column("from_stage", Text, nullable=True),
    Column("to_stage", Text, nullable=False),
    Column("at", BigInteger, nullable=False, index=True),
    Column("cause_kind", Text, nullable=False),
    Column("cause", Text, nullable=True),
    Column("reason", Text, nullable=True),
    Column("amount", Float, nullable=True),
    Column("fit", Float, nullable=True),
    Column("engagement", Float, nullable=True),
    Column("score", Float, nullable=True),
    Column("grade", Text, nullable=True),
    Column("temperature", Text, nullable=True),
)
"""Every stage transition: when, why (``cause_kind`` ``rule``, ``user``, ``timer`` or
``import``; ``cause`` the rule id, user or timer name; ``reason`` free text, e.g. why sales
rejected an MQL), and the scores at that moment."""

bant = Table(
    "bant",
    metadata,
    Column("contact_id", BigInteger, primary_key=True, autoincrement=False),
    Column("budget", Boolean, nullable=True),
    Column("authority", Boolean, nullable=True),
    Column("need", Boolean, nullable=True),
    Column("timeline", Boolean, nullable=True),
    Column("notes", Text, nullable=True),
    Column("updated_by", Text, nullable=True),
    Column("updated_at", BigInteger, nullable=False),
)
"""BANT qualification recorded by sales per lead (null: not assessed yet)."""

teams = Table(
    "teams",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("key", Text, nullable=False, unique=True),
    Column("name", Text, nullable=True),
    Column("last_owner_id", BigInteger, nullable=True),
    Column("created_at", BigInteger, nullable=False),
)
"""Sales teams (the model file's routing rules name them by ``key``); ``last_owner_id`` is the
round-robin cursor."""

owners = Table(
    "owners",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("key", Text, nullable=False, unique=True),
    Column("name", Text, nullable=True),
    Column("email", Text, nullable=True),
    Column("team_id", BigInteger, ForeignKey("teams.id"), nullable=False, index=True),
    Column("weight", Float, nullable=False, server_default=text("1")),
    Column("capacity", Integer, nullable=True),
    Column("active", Boolean, nullable=False, server_default=true()),
    Column("created_at", BigInteger, nullable=False),
)
"""Salespeople: ``weight`` for weighted routing, ``capacity`` the most open leads they may hold
(null: no limit); inactive owners receive no new leads."""

assignments = Table(
    "assignments",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("contact_id", BigInteger, nullable=False, index=True),
    Column("owner_id", BigInteger, nullable=True, index=True),
    Column("team_id", BigInteger, nullable=True),
    Column("at", BigInteger, nullable=False),
    Column("cause", Text, nullable=False),
    Column("rule", Text, nullable=True),
    Column("ended_at", BigInteger, nullable=True),
)
"""Assignment history: who got the lead, when and why (``cause`` ``routing``, ``account``,
``manual`` or ``sla``; ``rule`` the routing rule); ``ended_at`` is set when it moves on."""

opportunities = Table(
    "opportunities",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("contact_id", BigInteger, nullable=False, index=True),
    Column("account_id", BigInteger, nullable=True, index=True),
    Column("amount", Float, nullable=True),
    Column("currency", Text, nullable=True),
    Column("opened_at", BigInteger, nullable=False),
    Column("closed_at", BigInteger, nullable=True),
    Column("outcome", Text, nullable=True),
    Column("reason", Text, nullable=True),
    Column("opened_by", Text, nullable=True),
)
"""Opportunities opened by sales: ``outcome`` ``won`` / ``lost`` once closed."""

account_scores = Table(
    "account_scores",
    metadata,
    Column("account_id", BigInteger, primary_key=True, autoincrement=False),
    Column("fit", Float, nullable=False),
    Column("engagement", Float, nullable=False),
    Column("score", Float, nullable=False, index=True),
    Column("grade", Text, nullable=True),
    Column("temperature", Text, nullable=True),
    Column("coverage", Text, nullable=False, server_default=text("'{}'")),
    Column("contacts", Integer, nullable=False, server_default=text("0")),
    Column("qualified_at", BigInteger, nullable=True),
    Column("owner_id", BigInteger, nullable=True, index=True),
    Column("updated_at", BigInteger, nullable=False),
)
"""Account-based scores: fit from the account rules, engagement rolled up from its contacts,
buying-committee ``coverage`` (JSON: role → contact ids present and engaged), grade,
temperature, when it became a marketing-qualified account, and its owner (a new contact of an
owned account goes to that owner)."""

predictive_models = Table(
    "predictive_models",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("version", Integer, nullable=False, unique=True),
    Column("status", Text, nullable=False, index=True),
    Column("algorithm", Text, nullable=False),
    Column("outcome", Text, nullable=False),
    Column("cutoff", BigInteger, nullable=False),
    Column("window_ms", BigInteger, nullable=False),
    Column("rows", Integer, nullable=False),
    Column("conversions", Integer, nullable=False),
    Column("card", Text, nullable=False),
    Column("artefact", LargeBinary, nullable=False),
    Column("sha256", Text, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("created_by", Text, nullable=True),
)
"""Trained predictive models, versioned: ``status`` ``active`` (at most one: it scores the
contacts), ``inactive`` or ``retired``; ``outcome`` what a conversion is (JSON: stage or event);
``cutoff`` / ``window_ms`` the training question; ``card`` (JSON) the features, figures and
library versions; ``artefact`` the fitted pipeline as skops bytes (never pickle), ``sha256``
its digest, checked before loading."""

predictive_scores = Table(
    "predictive_scores",
    metadata,
    Column("contact_id", BigInteger, primary_key=True, autoincrement=False),
    Column("model_version", Integer, nullable=False),
    Column("probability", Float, nullable=False),
    Column("score", Integer, nullable=False, index=True),
    Column("top_features", Text, nullable=False, server_default=text("'[]'")),
    Column("scored_at", BigInteger, nullable=False),
)
"""Each contact's predictive score from the active model: the calibrated probability of
converting within the model's window, as 0-100, and its top contributing features (JSON list
of ``{feature, value, effect}``, effect in log-odds against a typical contact)."""

users = Table(
    "users",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("email", Text, nullable=False, unique=True),
    Column("name", Text, nullable=True),
    Column("role", Text, nullable=False),
    Column("password_hash", Text, nullable=False),
    Column("language", Text, nullable=True),
    Column("disabled", Boolean, nullable=False, server_default=false()),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
)
"""People who sign in to the dashboard: ``role`` ``admin``, ``marketing`` or ``sales`` (what
they may see and do), ``password_hash`` scrypt with its parameters and salt, ``language``
``en`` / ``fr`` (None: the browser's)."""

dashboard_sessions = Table(
    "dashboard_sessions",
    metadata,
    Column("token_hash", Text, primary_key=True),
    Column("user_id", BigInteger, nullable=False, index=True),
    Column("csrf_token", Text, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("expires_at", BigInteger, nullable=False, index=True),
)
"""Signed-in dashboard sessions: the cookie holds a random token, the table its SHA-256 (a
stolen database holds no usable cookie); ``csrf_token`` goes into every form of the session;
``expires_at`` ends it (sliding: each request moves it, up to the absolute limit)."""

"""knowledge and search: articles with versions and the organisations they are shown to,
deflections, and the full-text index of tickets and articles (SQLite FTS5 kept by
triggers; PostgreSQL a generated tsvector, Italian or English by the entry's language,
with a GIN index)

Revision ID: 0013
Revises: 0012
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | Sequence[str] | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The entry's language picks the stemmer; the title weighs more than the body.
PG_TSVECTOR = (
    "CASE WHEN locale = 'en' THEN "
    "setweight(to_tsvector('english'::regconfig, title), 'A') || "
    "setweight(to_tsvector('english'::regconfig, body), 'B') "
    "ELSE "
    "setweight(to_tsvector('italian'::regconfig, title), 'A') || "
    "setweight(to_tsvector('italian'::regconfig, body), 'B') END"
)

SQLITE_INDEX = [
    "CREATE VIRTUAL TABLE search_fts USING fts5(title, body, content='search_entries', "
    "content_rowid='id', tokenize='unicode61 remove_diacritics 2')",
    "CREATE TRIGGER search_entries_ai AFTER INSERT ON search_entries BEGIN "
    "INSERT INTO search_fts(rowid, title, body) VALUES (new.id, new.title, new.body); END",
    "CREATE TRIGGER search_entries_ad AFTER DELETE ON search_entries BEGIN "
    "INSERT INTO search_fts(search_fts, rowid, title, body) "
    "VALUES ('delete', old.id, old.title, old.body); END",
    "CREATE TRIGGER search_entries_au AFTER UPDATE ON search_entries BEGIN "
    "INSERT INTO search_fts(search_fts, rowid, title, body) "
    "VALUES ('delete', old.id, old.title, old.body); "
    "INSERT INTO search_fts(rowid, title, body) VALUES (new.id, new.title, new.body); END",
]


def _id() -> sa.types.TypeEngine[int]:
    return sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "kb_articles",
        sa.Column("id", _id(), autoincrement=True, nullable=False),
        sa.Column("request_key", sa.String(length=300), nullable=True),
        sa.Column("title", sa.String(length=300), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("product", sa.String(length=200), nullable=False),
        sa.Column("tags", sa.JSON(), nullable=False),
        sa.Column("locale", sa.String(length=5), nullable=False),
        sa.Column("visibility", sa.String(length=20), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("author_id", _id(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("source_ticket_id", _id(), nullable=True),
        sa.Column("source_comment_id", sa.String(length=64), nullable=True),
        sa.Column("deflections", _id(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("request_key"),
    )
    op.create_table(
        "kb_article_organizations",
        sa.Column("article_id", _id(), nullable=False),
        sa.Column("organization_id", _id(), nullable=False),
        sa.ForeignKeyConstraint(["article_id"], ["kb_articles.id"]),
        sa.ForeignKeyConstraint(["organization_id"], ["organizations.id"]),
        sa.PrimaryKeyConstraint("article_id", "organization_id"),
    )
    op.create_index(
        "ix_kb_article_organizations_organization_id",
        "kb_article_organizations",
        ["organization_id"],
    )
    op.create_table(
        "kb_article_versions",
        sa.Column("article_id", _id(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(length=300), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("changed_by_id", _id(), nullable=False),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("note", sa.String(length=500), nullable=False),
        sa.ForeignKeyConstraint(["article_id"], ["kb_articles.id"]),
        sa.PrimaryKeyConstraint("article_id", "version"),
    )
    op.create_table(
        "kb_deflections",
        sa.Column("request_key", sa.String(length=300), nullable=False),
        sa.Column("article_id", _id(), nullable=False),
        sa.Column("contact_id", _id(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["article_id"], ["kb_articles.id"]),
        sa.PrimaryKeyConstraint("request_key"),
    )
    op.create_index("ix_kb_deflections_article_id", "kb_deflections", ["article_id"])
    op.create_table(
        "search_entries",
        sa.Column("id", _id(), autoincrement=True, nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("ref_id", _id(), nullable=False),
        sa.Column("part", sa.String(length=10), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("locale", sa.String(length=5), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ux_search_entries_ref", "search_entries", ["kind", "ref_id", "part"], unique=True
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            f"ALTER TABLE search_entries ADD COLUMN tsv tsvector "
            f"GENERATED ALWAYS AS ({PG_TSVECTOR}) STORED"
        )
        op.execute("CREATE INDEX ix_search_entries_tsv ON search_entries USING gin (tsv)")
    else:
        for statement in SQLITE_INDEX:
            op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        for trigger in ("search_entries_ai", "search_entries_ad", "search_entries_au"):
            op.execute(f"DROP TRIGGER IF EXISTS {trigger}")
        op.execute("DROP TABLE IF EXISTS search_fts")
    op.drop_table("search_entries")
    op.drop_table("kb_deflections")
    op.drop_table("kb_article_versions")
    op.drop_table("kb_article_organizations")
    op.drop_table("kb_articles")

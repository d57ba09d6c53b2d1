"""Alembic environment of the notify store (version table ``alembic_version_notify``)."""

from services.common.alembic_env import run
from services.notify.models import Base

run(Base.metadata)

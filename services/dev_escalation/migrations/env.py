from services.common.alembic_env import run
from services.dev_escalation.models import Base

run(Base.metadata)

# syntax=docker/dockerfile:1
# One image for every help-desk process; the argument names the process:
#   docker run IMAGE tickets | intake | notify | dev-escalation | workflow-worker | gateway
#                    | migrate | register-search-attributes
# (the same `helpdesk-process <name>` runs locally from .venv/bin). The gateway's templates and
# static files are package data (pyproject.toml), installed with the code.
#
# The base is pinned to an exact patch tag. To pin by digest as well, resolve it once with
#   docker buildx imagetools inspect python:3.11.14-slim-bookworm
# and build with --build-arg PYTHON_IMAGE=python:3.11.14-slim-bookworm@sha256:<digest>.
ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm

# ---- build: install the project and its pinned dependencies into a virtualenv ----------
FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
RUN python -m venv /opt/helpdesk
# Dependencies first (pinned in pyproject.toml), so that a code change reuses this layer.
COPY pyproject.toml README.md ./
RUN mkdir -p helpdesk services workflows \
    && touch helpdesk/__init__.py services/__init__.py workflows/__init__.py \
    && /opt/helpdesk/bin/pip install . \
    && /opt/helpdesk/bin/pip uninstall -y helpdesk
# The code, with the generated protobuf package (helpdesk/v1) that is committed.
COPY helpdesk ./helpdesk
COPY services ./services
COPY workflows ./workflows
RUN /opt/helpdesk/bin/pip install --no-deps . \
    && /opt/helpdesk/bin/python -c "import helpdesk.v1.tickets_pb2, services.entrypoint" \
    && /opt/helpdesk/bin/python -m compileall -q /opt/helpdesk/lib \
    && /opt/helpdesk/bin/pip uninstall -y pip setuptools wheel

# ---- runtime: the virtualenv and an unprivileged user, no compilers, no pip -------------
FROM ${PYTHON_IMAGE} AS runtime
ENV PATH=/opt/helpdesk/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HELPDESK_DATA_DIR=/tmp/helpdesk
RUN groupadd --system --gid 10001 helpdesk \
    && useradd --system --uid 10001 --gid helpdesk --no-create-home --home-dir /nonexistent \
       --shell /usr/sbin/nologin helpdesk \
    && python -m pip uninstall -y pip setuptools wheel
COPY --from=build /opt/helpdesk /opt/helpdesk
# The root filesystem is read-only in Kubernetes: only /tmp (an emptyDir) is written.
WORKDIR /tmp
USER 10001:10001
# gRPC services 50051-50054, SMTP in 2525, webhooks 8088, worker health 8081, web gateway 8080.
EXPOSE 50051 50052 50053 50054 2525 8088 8081 8080
ENTRYPOINT ["helpdesk-process"]
CMD ["--help"]

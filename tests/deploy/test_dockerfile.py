"""docker build cannot run here: the Dockerfile is parsed for the rules the image must keep."""

from __future__ import annotations

import re
import shlex
import tomllib

import pytest

from services.entrypoint import PROCESSES
from tests.deploy.k8s import ROOT

pytestmark = pytest.mark.unit

DOCKERFILE = ROOT / "Dockerfile"


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    joined = re.sub(r"\\\n\s*", " ", DOCKERFILE.read_text())
    found = []
    for line in joined.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        word, _, rest = line.partition(" ")
        found.append((word.upper(), rest.strip()))
    return found


def stages() -> list[list[tuple[str, str]]]:
    result: list[list[tuple[str, str]]] = []
    for ins in instructions():
        if ins[0] == "FROM":
            result.append([])
        if result:
            result[-1].append(ins)
    return result


def build_args() -> dict[str, str]:
    args = {}
    for word, rest in instructions():
        if word == "ARG" and "=" in rest:
            name, _, value = rest.partition("=")
            args[name] = value
    return args


def resolve(image: str) -> str:
    return re.sub(r"\$\{?(\w+)\}?", lambda m: build_args().get(m.group(1), m.group(0)), image)


def test_multi_stage_from_a_pinned_slim_python() -> None:
    froms = [stage[0][1].split()[0] for stage in stages()]
    assert len(froms) >= 2, "multi-stage"
    for image in map(resolve, froms):
        name, _, tag = image.partition(":")
        assert name in ("python", "docker.io/library/python"), image
        pinned = re.fullmatch(r"\d+\.\d+\.\d+-slim(-\w+)?(@sha256:[0-9a-f]{64})?", tag)
        assert pinned, f"{image}: pin an exact patch tag (or a digest)"


def test_final_stage_runs_as_a_non_root_user_without_build_tools() -> None:
    final = stages()[-1]
    users = [rest for word, rest in final if word == "USER"]
    assert users, "the final stage sets USER"
    user = users[-1].split(":")[0]
    assert user not in ("root", "0") and (not user.isdigit() or int(user) >= 1000)
    runs = " ".join(rest for word, rest in final if word == "RUN")
    for tool in ("apt-get install", "apk add", "gcc", "build-essential", "pip install"):
        assert tool not in runs, f"final stage installs {tool}"
    copies = [rest for word, rest in final if word == "COPY"]
    assert all("--from=" in c for c in copies), "the final stage only copies built output"


def test_generated_code_goes_into_the_image() -> None:
    build = " ".join(rest for stage in stages()[:-1] for word, rest in stage if word == "COPY")
    for package in ("helpdesk", "services", "workflows"):
        assert re.search(rf"\b{package}\b", build), package
    ignore = (ROOT / ".dockerignore").read_text().splitlines()
    assert "!helpdesk/" in ignore  # helpdesk/v1 holds the generated protobuf code


def test_no_secrets_in_the_image() -> None:
    for word, rest in instructions():
        if word in ("ENV", "ARG", "LABEL"):
            assert not re.search(r"(TOKEN|PASSWORD|SECRET|SIGNING_KEY)", rest, re.I), rest
        if word == "COPY":
            assert not re.search(r"\.(env|token|pem|key)\b|var/", rest), rest
    ignore = (ROOT / ".dockerignore").read_text()
    assert ignore.lstrip().startswith(("*", "# ")) and "\n*\n" in f"\n{ignore}"
    for pattern in ("**/*.token", "**/.env"):
        assert pattern in ignore


def test_entry_point_starts_a_process_by_name() -> None:
    final = stages()[-1]
    entry = [rest for word, rest in final if word == "ENTRYPOINT"]
    assert entry and entry[-1].startswith("["), "exec form"
    assert shlex.split(entry[-1].strip("[]").replace(",", " "))[0] == "helpdesk-process"
    assert set(PROCESSES) == {
        "intake",
        "tickets",
        "notify",
        "dev-escalation",
        "workflow-worker",
        "gateway",
        "migrate",
        "register-search-attributes",
    }
    scripts = (ROOT / "pyproject.toml").read_text()
    assert 'helpdesk-process = "services.entrypoint:main"' in scripts


def test_the_image_exposes_every_listening_port() -> None:
    exposed = {
        int(port.split("/")[0])
        for word, rest in stages()[-1]
        if word == "EXPOSE"
        for port in rest.split()
    }
    # gRPC 50051-50054, SMTP 2525, webhooks 8088, worker health 8081, the web gateway 8080.
    assert exposed >= {50051, 50052, 50053, 50054, 2525, 8088, 8081, 8080}


def test_the_gateway_pages_are_package_data() -> None:
    """``pip install .`` in the build stage copies them: templates and static files."""
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    patterns = set(pyproject["tool"]["setuptools"]["package-data"]["*"])
    assert {"*.html", "*.css", "*.js", "*.svg", "*.j2"} <= patterns

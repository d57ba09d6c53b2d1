"""The launcher's set-up decisions without servers: tokens and listen addresses."""

from __future__ import annotations

import dataclasses
import os
import socket
import stat
from pathlib import Path

import pytest

from services.common.grpc_server import ServiceServer
from services.common.settings import MIN_SIGNING_KEY, MissingSecret, Settings
from services.launcher import plan
from services.launcher.tokens import ensure_tokens

pytestmark = pytest.mark.unit


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_tokens_are_made_once_owner_only_and_reused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = ensure_tokens(tmp_path, env={})
    assert first.generated == ("admin", "service", "signing")
    assert len({first.admin, first.service, first.signing_key}) == 3
    assert len(first.signing_key) >= MIN_SIGNING_KEY
    for name in ("admin.token", "service.token", "signing.key"):
        assert mode(tmp_path / name) == 0o600
    again = ensure_tokens(tmp_path, env={})
    assert (again.admin, again.service, again.signing_key, again.generated) == (
        first.admin,
        first.service,
        first.signing_key,
        (),
    )
    # Every process of the run reads the key back from the data dir, as it does the tokens.
    for name in [n for n in os.environ if n.startswith("HELPDESK_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("HELPDESK_DATA_DIR", str(tmp_path))
    settings = Settings.from_env()
    assert settings.token_signing_key() == first.signing_key
    assert (settings.admin_token, settings.service_token) == (first.admin, first.service)


def test_tokens_from_the_environment_write_nothing(tmp_path: Path) -> None:
    tokens = ensure_tokens(
        tmp_path,
        env={
            "HELPDESK_ADMIN_TOKEN": "a",
            "HELPDESK_SERVICE_TOKEN": "s",
            "HELPDESK_SIGNING_KEY": "k" * 32,
        },
    )
    assert (tokens.admin, tokens.service, tokens.signing_key, tokens.generated) == (
        "a",
        "s",
        "k" * 32,
        (),
    )
    assert list(tmp_path.iterdir()) == []


def test_no_process_signs_without_a_real_secret(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No signing key and no service token: a clear refusal naming the variables, never a
    key written in the source; a short key is refused too."""
    for name in [n for n in os.environ if n.startswith("HELPDESK_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("HELPDESK_DATA_DIR", str(tmp_path))
    with pytest.raises(MissingSecret) as err:
        Settings.from_env().token_signing_key()
    assert "HELPDESK_SIGNING_KEY" in str(err.value)
    assert "HELPDESK_SERVICE_TOKEN" in str(err.value)
    with pytest.raises(MissingSecret, match="HELPDESK_SIGNING_KEY must be at least 32"):
        dataclasses.replace(Settings.from_env(), signing_key="short").token_signing_key()
    # The gRPC server of every process builds its token checker first: it does not start.
    with pytest.raises(MissingSecret):
        ServiceServer(Settings.from_env(), "127.0.0.1:0", [], lambda server: None)
    # An admin token alone signs nothing either (it used to seed the key).
    monkeypatch.setenv("HELPDESK_ADMIN_TOKEN", "admin-only")
    with pytest.raises(MissingSecret):
        Settings.from_env().token_signing_key()


def test_an_empty_or_loose_token_file(tmp_path: Path) -> None:
    (tmp_path / "admin.token").write_text("\n")
    (tmp_path / "service.token").write_text("kept\n")
    (tmp_path / "service.token").chmod(0o644)
    (tmp_path / "signing.key").write_text("s" * 40 + "\n")
    tokens = ensure_tokens(tmp_path, env={})
    assert tokens.generated == ("admin",)
    assert tokens.service == "kept" and tokens.signing_key == "s" * 40
    assert mode(tmp_path / "service.token") == 0o600


def test_addresses_move_off_busy_defaults_but_never_explicit_ones(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        monkeypatch.setattr(
            plan,
            "LISTEN_DEFAULTS",
            {"HELPDESK_TICKETS_ADDR": f"127.0.0.1:{port}", "HELPDESK_SMTP_LISTEN": "127.0.0.1:0"},
        )
        chosen = plan.choose_addresses({"HELPDESK_SMTP_LISTEN": "127.0.0.1:2"})
    assert chosen.env["HELPDESK_SMTP_LISTEN"] == "127.0.0.1:2"
    moved = chosen.env["HELPDESK_TICKETS_ADDR"]
    assert moved.startswith("127.0.0.1:") and moved != f"127.0.0.1:{port}"
    assert chosen.notes == [f"port {port} is taken: HELPDESK_TICKETS_ADDR={moved}"]


def test_every_process_is_checked_for_readiness() -> None:
    names = [p.name for p in plan.PROCESSES]
    assert names == [
        "tickets",
        "intake",
        "notify",
        "dev-escalation",
        "workflow-worker",
        "gateway",
    ]
    assert plan.LISTEN_DEFAULTS["HELPDESK_DEV_ESCALATION_ADDR"] == "127.0.0.1:50053"
    for spec in plan.PROCESSES:
        assert spec.health or spec.task_queues or spec.http_env, spec.name
        assert (spec.addr_env is None) == (not spec.health), spec.name
        if spec.http_env:
            assert spec.http_env in plan.LISTEN_DEFAULTS and spec.ready_path.startswith("/")


def test_the_gateway_starts_last_on_its_listen_address() -> None:
    gateway = plan.PROCESSES[-1]
    assert gateway.name == "gateway"
    assert (gateway.http_env, gateway.ready_path) == ("HELPDESK_GATEWAY_LISTEN", "/readyz")
    assert plan.LISTEN_DEFAULTS["HELPDESK_GATEWAY_LISTEN"] == "127.0.0.1:8080"


def test_the_portal_url_follows_the_gateway_unless_set() -> None:
    chosen = plan.choose_addresses({"HELPDESK_GATEWAY_LISTEN": "127.0.0.1:18080"})
    assert chosen.env["HELPDESK_PORTAL_URL"] == "http://127.0.0.1:18080"
    wildcard = plan.choose_addresses({"HELPDESK_GATEWAY_LISTEN": "0.0.0.0:18080"})
    assert wildcard.env["HELPDESK_PORTAL_URL"] == "http://127.0.0.1:18080"
    given = plan.choose_addresses(
        {"HELPDESK_GATEWAY_LISTEN": "127.0.0.1:18080", "HELPDESK_PORTAL_URL": "https://x.it"}
    )
    assert "HELPDESK_PORTAL_URL" not in given.env  # the launcher passes the user's value on


def test_a_moved_gateway_moves_the_portal_url(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        monkeypatch.setattr(
            plan, "LISTEN_DEFAULTS", {"HELPDESK_GATEWAY_LISTEN": f"127.0.0.1:{port}"}
        )
        chosen = plan.choose_addresses({})
    moved = chosen.env["HELPDESK_GATEWAY_LISTEN"]
    assert moved != f"127.0.0.1:{port}"
    assert chosen.env["HELPDESK_PORTAL_URL"] == f"http://{moved}"


def test_make_run_starts_each_process_as_the_image_does() -> None:
    """``make run`` and the container start the same entry point, by the same names."""
    from services import entrypoint

    assert {spec.name for spec in plan.PROCESSES} <= set(entrypoint.PROCESSES)
    assert set(entrypoint.PROCESSES) - {spec.name for spec in plan.PROCESSES} == {
        "migrate",
        "register-search-attributes",
    }

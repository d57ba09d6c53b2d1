"""Which token the `helpdesk` command sends: a login session wins over the admin token."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.cli.client import resolve_token, session_path
from services.cli.main import build_parser

pytestmark = pytest.mark.unit


def test_session_of_login_comes_before_the_admin_token(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("HELPDESK_TOKEN", raising=False)
    monkeypatch.delenv("HELPDESK_ADMIN_TOKEN", raising=False)
    (tmp_path / "admin.token").write_text("admin-secret\n")
    assert resolve_token(None, tmp_path) == "admin-secret"
    session_path(tmp_path).write_text("session-jwt\n")
    assert resolve_token(None, tmp_path) == "session-jwt"
    monkeypatch.setenv("HELPDESK_TOKEN", "env-token")
    assert resolve_token(None, tmp_path) == "env-token"
    assert resolve_token("explicit", tmp_path) == "explicit"


def test_login_needs_no_token_and_reads_the_password_from_stdin(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("HELPDESK_TOKEN", raising=False)
    monkeypatch.delenv("HELPDESK_ADMIN_TOKEN", raising=False)
    args = build_parser().parse_args(["login", "mario@acme.it", "--password-stdin"])
    assert args.email == "mario@acme.it" and args.password_stdin
    assert resolve_token(None, tmp_path / "empty", required=False) == ""

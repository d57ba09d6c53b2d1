"""The bootstrap secrets: from the environment, else files in the data dir (first run).

Two bearer tokens (``admin.token``, ``service.token``) and the key that signs login and
link tokens (``signing.key``, read back by ``Settings`` as ``HELPDESK_SIGNING_KEY``). Each
file is made once, readable by its owner only, and reused afterwards."""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from services.common.settings import SIGNING_KEY_FILE

TOKEN_NAMES = ("admin", "service")


@dataclass(frozen=True)
class Tokens:
    admin: str
    service: str
    # Names of the secrets this run generated (and wrote to the data dir): "admin",
    # "service", "signing".
    generated: tuple[str, ...] = ()
    signing_key: str = ""


def token_path(data_dir: Path, name: str) -> Path:
    return data_dir / f"{name}.token"


def signing_key_path(data_dir: Path) -> Path:
    return data_dir / SIGNING_KEY_FILE


def _write_new(path: Path) -> str:
    """A fresh secret written to ``path`` readable by its owner only (mode 0600)."""
    token = secrets.token_urlsafe(32)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, f"{token}\n".encode())
    finally:
        os.close(fd)
    os.chmod(tmp, 0o600)
    tmp.replace(path)
    return token


def _from_env_or_file(
    variable: str, path: Path, env: dict[str, str], generated: list[str], name: str
) -> str:
    from_env = env.get(variable, "").strip()
    if from_env:
        return from_env
    existing = path.read_text().strip() if path.is_file() else ""
    if existing:
        if path.stat().st_mode & 0o077:
            os.chmod(path, 0o600)
        return existing
    generated.append(name)
    return _write_new(path)


def ensure_tokens(data_dir: Path, env: dict[str, str] | None = None) -> Tokens:
    """``HELPDESK_ADMIN_TOKEN`` / ``HELPDESK_SERVICE_TOKEN`` / ``HELPDESK_SIGNING_KEY`` when
    set; else the files in the data dir, created on first run and reused afterwards."""
    env = dict(os.environ) if env is None else env
    generated: list[str] = []
    values = {
        name: _from_env_or_file(
            f"HELPDESK_{name.upper()}_TOKEN", token_path(data_dir, name), env, generated, name
        )
        for name in TOKEN_NAMES
    }
    signing_key = _from_env_or_file(
        "HELPDESK_SIGNING_KEY", signing_key_path(data_dir), env, generated, "signing"
    )
    return Tokens(values["admin"], values["service"], tuple(generated), signing_key)

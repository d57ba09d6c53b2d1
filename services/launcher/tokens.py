"""The bootstrap bearer tokens: from the environment, else files in the data dir (first run)."""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path

TOKEN_NAMES = ("admin", "service")


@dataclass(frozen=True)
class Tokens:
    admin: str
    service: str
    # Names of the tokens this run generated (and wrote to the data dir).
    generated: tuple[str, ...] = ()


def token_path(data_dir: Path, name: str) -> Path:
    return data_dir / f"{name}.token"


def _write_new(path: Path) -> str:
    """A fresh token written to ``path`` readable by its owner only (mode 0600)."""
    token = secrets.token_urlsafe(32)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, f"{token}\n".encode())
    finally:
        os.close(fd)
    os.chmod(tmp, 0o600)
    tmp.replace(path)
    return token


def ensure_tokens(data_dir: Path, env: dict[str, str] | None = None) -> Tokens:
    """``HELPDESK_ADMIN_TOKEN`` / ``HELPDESK_SERVICE_TOKEN`` when set; else the token files,
    created on first run and reused afterwards."""
    env = dict(os.environ) if env is None else env
    values: dict[str, str] = {}
    generated: list[str] = []
    for name in TOKEN_NAMES:
        from_env = env.get(f"HELPDESK_{name.upper()}_TOKEN", "").strip()
        if from_env:
            values[name] = from_env
            continue
        path = token_path(data_dir, name)
        existing = path.read_text().strip() if path.is_file() else ""
        if existing:
            if path.stat().st_mode & 0o077:
                os.chmod(path, 0o600)
            values[name] = existing
        else:
            values[name] = _write_new(path)
            generated.append(name)
    return Tokens(values["admin"], values["service"], tuple(generated))

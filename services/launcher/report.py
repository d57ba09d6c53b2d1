"""What the launcher prints once everything is up: where each part listens, how to use the CLI."""

from __future__ import annotations

import shlex
import sys
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import make_url

READY_LINE = "The help desk is running."


def shown(path: Path) -> str:
    """``path`` relative to the working directory when it is under it."""
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def database_description(database_url: str, data_dir: Path) -> str:
    if not database_url:
        return f"SQLite, one file per service: {shown(data_dir)}/*.db"
    try:
        return make_url(database_url).render_as_string(hide_password=True)
    except Exception:  # an unparsable URL is the service's error to report, not ours
        return database_url


def mail_description(smtp_relay: str, data_dir: Path) -> str:
    if smtp_relay:
        return f"relay smtp://{smtp_relay}"
    return f"Maildir {shown(data_dir / 'maildir')}"


def cli_command(data_dir: Path) -> str:
    """How to call the ``helpdesk`` CLI from here so that it finds this run's token."""
    script = Path(sys.executable).parent / "helpdesk"
    cmd = shown(script) if script.exists() else f"{shown(Path(sys.executable))} -m services.cli"
    if data_dir != Path("var").resolve():
        cmd = f"HELPDESK_DATA_DIR={shlex.quote(str(data_dir))} {cmd}"
    return cmd


@dataclass(frozen=True)
class Row:
    what: str
    where: str
    detail: str = ""


def render(rows: list[Row], notes: list[str], data_dir: Path, endpoints_file: Path) -> str:
    width = max(len(r.what) for r in rows)
    where_width = max(len(r.where) for r in rows)
    lines = ["", READY_LINE, ""]
    for r in rows:
        lines.append(f"  {r.what:<{width}}  {r.where:<{where_width}}  {r.detail}".rstrip())
    if notes:
        lines.append("")
        lines += [f"  note: {n}" for n in notes]
    cli = cli_command(data_dir)
    lines += [
        "",
        f"Data dir {shown(data_dir)}; logs in {shown(data_dir / 'logs')}/; addresses for other"
        f" shells in {shown(endpoints_file)} (the helpdesk CLI reads it).",
        "",
        "The helpdesk CLI (admin token from the data dir):",
        f"  {cli} org create 'ACME S.p.A.' --domain acme.it",
        f"  {cli} contact add --org 1 --name 'Mario Rossi' --email mario.rossi@acme.it",
        f"  {cli} ticket create --requester-email mario.rossi@acme.it --subject 'Stampa'"
        " --description 'La stampa non parte'",
        f"  {cli} ticket list",
        f"  {cli} --help",
        "",
        "Press Ctrl-C to stop.",
        "",
    ]
    return "\n".join(lines)

"""Reading a posted form: bounded, CSRF-checked, files checked against the system's limits
before anything is sent on."""

from __future__ import annotations

import re
import uuid
from typing import Any

from fastapi import Request
from starlette.datastructures import FormData, UploadFile

from helpdesk.v1 import common_pb2 as pb
from services.common.limits import MAX_ATTACHMENT_BYTES, MAX_ATTACHMENTS, MAX_ATTACHMENTS_TOTAL
from services.gateway.errors import TooLarge

_TYPE = re.compile(r"^[a-z0-9][a-z0-9!#$&^_.+-]*/[a-z0-9][a-z0-9!#$&^_.+-]*$")
MAX_FIELDS = 60


def new_request_id() -> str:
    """One per rendered form: a double-clicked Send makes one ticket or comment."""
    return f"web-{uuid.uuid4().hex}"


async def read_form(request: Request) -> FormData:
    return await request.form(
        max_files=MAX_ATTACHMENTS, max_fields=MAX_FIELDS, max_part_size=1024 * 1024
    )


def text(form: FormData, name: str) -> str:
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


def fields(form: FormData, *names: str) -> dict[str, Any]:
    return {name: text(form, name) for name in names}


def uploads(form: FormData, name: str = "attachments") -> list[UploadFile]:
    return [f for f in form.getlist(name) if isinstance(f, UploadFile) and f.filename]


async def attachments(files: list[UploadFile]) -> list[pb.Attachment]:
    """The files as protobuf attachments; ``TooLarge`` before reading when one is over."""
    if len(files) > MAX_ATTACHMENTS:
        raise TooLarge
    total = 0
    for f in files:
        file_size = f.size or 0
        total += file_size
        if file_size > MAX_ATTACHMENT_BYTES or total > MAX_ATTACHMENTS_TOTAL:
            raise TooLarge
    out = []
    for f in files:
        content_type = (f.content_type or "").split(";")[0].strip().lower()
        out.append(
            pb.Attachment(
                filename=(f.filename or "file")[-200:],
                content_type=content_type
                if _TYPE.match(content_type)
                else "application/octet-stream",
                content=await f.read(),
            )
        )
        await f.close()
    return out

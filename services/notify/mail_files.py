"""The files of a public answer, fetched from the tickets service and attached to its emails.

The event names the files (``CommentPayload.attachments``: id, name, type, size); their
bytes stay in the tickets service, and notify downloads them (``DownloadAttachment``,
with the service token) only when an email carrying them is about to be handed to the
relay. So the delivery row holds no file bytes, and a retry of that email downloads and
attaches the same files again, under the same Message-ID.

Bounded: the files of one email are at most ``max_bytes`` together
(``HELPDESK_MAIL_MAX_ATTACHMENT_BYTES``); more, and none is attached: the body says that
they are on the portal. Only one email's files are held at a time (the last set fetched,
kept for the copies of the same event to the followers, then ``forget``).

The tickets service not answering (``FilesDeferred``): the email waits and is retried like
a relay that is down, never sent without the files. A file gone (``NOT_FOUND``): the email
goes without it and names it.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import grpc

from helpdesk.v1 import tickets_pb2 as tpb
from services.common.auth import bearer_metadata
from services.common.messages.tickets import AttachmentPayload, TicketEventPayload

if TYPE_CHECKING:  # the async stub type exists only in the generated .pyi
    from helpdesk.v1.tickets_pb2_grpc import TicketServiceAsyncStub
    from services.notify.render import RenderedEmail

log = logging.getLogger(__name__)

DOWNLOAD_TIMEOUT_SECONDS = 120.0
# Refusals that say the file is not there (and will not be): mail without it.
GONE = frozenset({grpc.StatusCode.NOT_FOUND, grpc.StatusCode.INVALID_ARGUMENT})
# A plain ``type/subtype`` (RFC 6838 names); anything else is sent as octet-stream.
_PLAIN_TYPE = re.compile(r"^[a-z0-9][a-z0-9!#$&^_.+-]{0,126}/[a-z0-9][a-z0-9!#$&^_.+-]{0,126}$")
OCTET_STREAM = ("application", "octet-stream")
# Types whose parts the email library cannot carry as opaque bytes (base64).
_NOT_OPAQUE = frozenset({"multipart", "message"})


class FilesDeferred(Exception):
    """The tickets service could not give the files now; send the email later."""


@dataclass(frozen=True)
class FileNotes:
    """What an email's body says about the answer's files."""

    attached: tuple[str, ...] = ()  # names of the files attached
    missing: tuple[str, ...] = ()  # names of files no longer on the ticket
    on_portal: tuple[str, ...] = ()  # too large together to mail: on the portal

    def context(self) -> dict[str, object]:
        """The template variables (``attachments``, ``missing_attachments``,
        ``attachments_on_portal``)."""
        return {
            "attachments": list(self.attached),
            "missing_attachments": list(self.missing),
            "attachments_on_portal": list(self.on_portal),
        }


NO_FILES = FileNotes()


@dataclass(frozen=True)
class MailFile:
    """One file to attach."""

    filename: str
    maintype: str
    subtype: str
    data: bytes


@dataclass(frozen=True)
class Fetched:
    """The files to attach, and what the body says about them."""

    notes: FileNotes
    files: tuple[MailFile, ...] = ()


@dataclass(frozen=True)
class AnswerFiles:
    """The files an email carries, fetched when it is sent; ``render`` writes the email
    saying which files came (attached, gone, or left on the portal)."""

    ticket_id: int
    files: tuple[AttachmentPayload, ...]
    render: Callable[[FileNotes], RenderedEmail]


def answer_files(event: TicketEventPayload) -> list[AttachmentPayload]:
    """The files of the event's comment that may be mailed: a public answer's only (an
    internal note's files never leave the desk, even if an email were planned for it)."""
    comment = event.get("comment")
    if comment is None or comment["visibility"] != "PUBLIC":
        return []
    return list(comment.get("attachments") or [])


def mime_type(content_type: str) -> tuple[str, str]:
    """``(maintype, subtype)`` of a stored content type; ``application/octet-stream`` for
    anything that is not a plain ``type/subtype`` (parameters, junk, multipart)."""
    text = content_type.strip().lower()
    if not _PLAIN_TYPE.match(text):
        return OCTET_STREAM
    maintype, subtype = text.split("/", 1)
    return OCTET_STREAM if maintype in _NOT_OPAQUE else (maintype, subtype)


class CommentFiles:
    """Downloads an answer's files for its emails, within ``max_bytes`` together."""

    def __init__(
        self,
        tickets: TicketServiceAsyncStub,
        service_token: str,
        max_bytes: int,
        timeout: float = DOWNLOAD_TIMEOUT_SECONDS,
    ) -> None:
        self._tickets = tickets
        self._metadata = bearer_metadata(service_token)
        self.max_bytes = max_bytes
        self._timeout = timeout
        # The last set fetched, for the other emails of the same event (``forget``).
        self._last: tuple[tuple[int, tuple[str, ...]], Fetched] | None = None

    def planned(self, files: Sequence[AttachmentPayload]) -> FileNotes:
        """What the body says when every file is there (known from the event alone)."""
        names = tuple(f["filename"] for f in files)
        if sum(max(f["size"], 0) for f in files) > self.max_bytes:
            return FileNotes(on_portal=names)
        return FileNotes(attached=names)

    def forget(self) -> None:
        """Drop the files held for the event just handled."""
        self._last = None

    async def fetch(self, ticket_id: int, files: Sequence[AttachmentPayload]) -> Fetched:
        """The files to attach; ``FilesDeferred`` when the tickets service cannot give
        them now. Too large together (as announced, or as they arrive): none."""
        key = (ticket_id, tuple(f["id"] for f in files))
        if self._last is not None and self._last[0] == key:
            return self._last[1]
        self._last = None  # the previous email's files go before these come
        planned = self.planned(files)
        if planned.on_portal:
            return Fetched(planned)
        got: list[MailFile] = []
        missing: list[str] = []
        budget = self.max_bytes
        for f in files:
            data = await self._download(ticket_id, f, budget)
            if data is None:
                missing.append(f["filename"])
                continue
            if len(data) > budget:  # larger than announced: the limit still holds
                log.warning("ticket %s: files larger than announced, not attached", ticket_id)
                return Fetched(FileNotes(on_portal=planned.attached))
            budget -= len(data)
            maintype, subtype = mime_type(f["content_type"])
            got.append(MailFile(f["filename"], maintype, subtype, data))
        fetched = Fetched(
            FileNotes(attached=tuple(g.filename for g in got), missing=tuple(missing)),
            tuple(got),
        )
        self._last = (key, fetched)
        return fetched

    async def _download(self, ticket_id: int, file: AttachmentPayload, budget: int) -> bytes | None:
        """The file's bytes (at most ``budget`` + one chunk), None when it is gone."""
        call = self._tickets.DownloadAttachment(
            tpb.DownloadAttachmentRequest(ticket_id=ticket_id, attachment_id=file["id"]),
            metadata=self._metadata,
            timeout=self._timeout,
        )
        chunks: list[bytes] = []
        size = 0
        try:
            async for chunk in call:
                chunks.append(chunk.data)
                size += len(chunk.data)
                if size > budget:  # stop reading: the caller leaves the files out
                    call.cancel()
                    break
        except grpc.aio.AioRpcError as err:
            if err.code() in GONE:
                log.warning(
                    "ticket %s: attachment %s (%s) is gone, mailed without it: %s",
                    ticket_id,
                    file["id"],
                    file["filename"],
                    err.details(),
                )
                return None
            raise FilesDeferred(
                f"attachment {file['id']} of ticket {ticket_id}: "
                f"{err.code().name} {err.details() or ''}"
            ) from err
        return b"".join(chunks)

"""What an answer's email says and carries of its files, before any relay: the limit,
the content types mail may carry, and a tickets service that does not answer."""

from __future__ import annotations

import grpc
import pytest

from helpdesk.v1 import tickets_pb2_grpc as tgrpc
from services.common.embedded import free_port
from services.common.messages.tickets import AttachmentPayload
from services.notify.mail_files import CommentFiles, FileNotes, FilesDeferred, mime_type


def _file(name: str, size: int) -> AttachmentPayload:
    return AttachmentPayload(id=f"id-{name}", filename=name, content_type="text/plain", size=size)


@pytest.mark.parametrize(
    ("stored", "mailed"),
    [
        ("application/pdf", ("application", "pdf")),
        ("Image/PNG", ("image", "png")),
        ("text/plain; charset=utf-8", ("application", "octet-stream")),
        ("multipart/mixed", ("application", "octet-stream")),
        ("message/rfc822", ("application", "octet-stream")),
        ("pdf", ("application", "octet-stream")),
        ("", ("application", "octet-stream")),
    ],
)
def test_a_stored_content_type_becomes_a_plain_mime_type(
    stored: str, mailed: tuple[str, str]
) -> None:
    assert mime_type(stored) == mailed


async def test_files_over_the_limit_are_left_on_the_portal_without_a_download() -> None:
    # Nothing listens on the port: a download attempt would fail, so none is made.
    async with grpc.aio.insecure_channel(f"127.0.0.1:{free_port()}") as channel:
        files = CommentFiles(tgrpc.TicketServiceStub(channel), "token", max_bytes=1000)  # type: ignore[arg-type]
        both = [_file("a.txt", 600), _file("b.txt", 600)]
        assert files.planned(both) == FileNotes(on_portal=("a.txt", "b.txt"))
        fetched = await files.fetch(7, both)
        assert fetched.files == () and fetched.notes.on_portal == ("a.txt", "b.txt")
        assert files.planned([_file("a.txt", 600)]) == FileNotes(attached=("a.txt",))


async def test_a_tickets_service_that_does_not_answer_defers_the_email() -> None:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{free_port()}") as channel:
        files = CommentFiles(
            tgrpc.TicketServiceStub(channel),  # type: ignore[arg-type]
            "token",
            max_bytes=1000,
            timeout=2.0,
        )
        with pytest.raises(FilesDeferred):
            await files.fetch(7, [_file("a.txt", 10)])

"""The attachment limits of the whole system, in one place: the tickets service refuses
more, intake's mail parser and instant-messaging downloads leave more out, and the web
gateway checks the same numbers before it uploads."""

from __future__ import annotations

MiB = 1024 * 1024

# One file.
MAX_ATTACHMENT_BYTES = 20 * MiB
# All the files of one request (a ticket, a comment, an email, a form).
MAX_ATTACHMENTS_TOTAL = 25 * MiB
# Files in one request.
MAX_ATTACHMENTS = 20


def limit_texts() -> dict[str, object]:
    """The limits as people read them, for the texts that state them."""
    return {
        "max_files": MAX_ATTACHMENTS,
        "max_file": f"{MAX_ATTACHMENT_BYTES // MiB} MiB",
        "max_total": f"{MAX_ATTACHMENTS_TOTAL // MiB} MiB",
    }

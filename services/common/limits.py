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

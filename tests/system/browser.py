"""Headless Chromium for browser tests: Debian's ``chromium`` driven by pip's Playwright.

Playwright's own browser download cannot work on our machines; ``make test`` installs the
Debian package. A missing browser fails the test, never skips it.
"""

from __future__ import annotations

import os
import re
import shutil
import struct
import zlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from playwright.async_api import Browser, Page, ViewportSize, async_playwright, expect

from tests.support import eventually
from tests.system.harness import Mailbox


@asynccontextmanager
async def chromium() -> AsyncIterator[Browser]:
    path = shutil.which("chromium")
    assert path, "chromium is not installed: `make test` installs it (apt-get install chromium)"
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=path)
        try:
            yield browser
        finally:
            await browser.close()


def png(width: int = 4, height: int = 3) -> bytes:
    """A small, valid PNG: a screenshot as far as anyone can tell."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    rows = b"".join(b"\x00" + b"\xff\x00\x00" * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def mail_to(box: Mailbox, address: str, words: str) -> str | None:
    """The plain-text body of the first message to ``address`` that contains ``words``."""
    for msg in box.messages:
        if msg["To"].addresses[0].addr_spec.lower() != address.lower():
            continue
        body = str(msg.get_body(("plain",)).get_content())
        if words in body:
            return body
    return None


def generated_password(body: str) -> str:
    found = re.search(r"^\s*Password:\s*(\S+)", body, re.MULTILINE)
    assert found, body
    return found.group(1)


async def password_of(box: Mailbox, email: str) -> str:
    """The password mailed to ``email`` (an account just created), once it came."""
    return generated_password(await eventually(lambda: mail_to(box, email, "Password:"), 30))


async def browser_page(browser: Browser, viewport: ViewportSize) -> tuple[Page, list[str]]:
    """A browser of its own, and what its pages' Content Security Policy refused."""
    context = await browser.new_context(viewport=viewport, accept_downloads=True)
    page = await context.new_page()
    refused: list[str] = []
    page.on(
        "console",
        lambda m: refused.append(m.text) if "Content Security Policy" in m.text else None,
    )
    return page, refused


async def sign_in(page: Page, portal: str, email: str, password: str) -> None:
    """In English (the language switch), as a person would."""
    await page.goto(f"{portal}/lang/en?next=/login")
    await page.get_by_label("Email").fill(email)
    await page.get_by_label("Password").fill(password)
    await page.get_by_role("button", name="Log in").click()
    await expect(page.get_by_role("button", name="Log out")).to_be_visible()


async def snap(page: Page, name: str) -> None:
    """With ``HELPDESK_SCREENSHOTS=<dir>``, a screenshot of the page (the README's images)."""
    folder = os.environ.get("HELPDESK_SCREENSHOTS", "").strip()
    if folder:
        await page.screenshot(path=str(Path(folder) / f"{name}.png"), full_page=True)


async def reload_until_text(page: Page, text: str, timeout: float = 30) -> None:
    """The read model follows the workflow within moments: reload until the text shows."""
    loop_deadline = timeout
    waited = 0.0
    while True:
        if await page.get_by_text(text).count():
            return
        if waited > loop_deadline:
            await expect(page.get_by_text(text).first).to_be_visible()
            return
        await page.wait_for_timeout(500)
        waited += 0.5
        await page.reload()

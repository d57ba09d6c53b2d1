"""The front desk's lookup of callers (seed 000: the operator asks only for what is not
already on file): contacts by phone number, email or name across organisations, and a
contact's phone number kept current. Served by ``DirectoryService.FindContacts`` and
``SetContactPhone``."""

from __future__ import annotations

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from helpdesk.v1 import directory_pb2 as dpb
from services.common.phone import digits, phone_forms
from services.common.rpc_errors import invalid, not_found, optional_text, require_id
from services.tickets import models as m
from services.tickets import paging

MAX_PAGE = 100
MIN_PHONE_DIGITS = 6
MAX_PHONE = 50
# What people write between a number's digits.
SEPARATORS = (" ", "-", ".", "/", "(", ")")


def _stored_phone_key() -> ColumnElement[str]:
    """``phone_key`` of the stored number, in SQL (SQLite and PostgreSQL alike)."""
    expr: ColumnElement[str] = func.replace(m.Contact.phone, SEPARATORS[0], "")
    for sep in SEPARATORS[1:]:
        expr = func.replace(expr, sep, "")
    return expr


def _like(text: str) -> str:
    escaped = text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


async def find_contacts(
    session: AsyncSession, request: dpb.FindContactsRequest
) -> tuple[list[tuple[m.Contact, str]], str]:
    """One page of the contacts matching every criterion given, each with its
    organisation's name, by name then ID; and the next page's token."""
    phone = optional_text("phone", request.phone, MAX_PHONE)
    email = optional_text("email", request.email, 320).lower()
    name = optional_text("name", request.name, 200).lower()
    if not (phone or email or name):
        invalid("phone", "or email or name is required")
    if request.page_size > MAX_PAGE:
        invalid("page_size", f"at most {MAX_PAGE}")
    query = select(m.Contact)
    if phone:
        if len(digits(phone)) < MIN_PHONE_DIGITS:
            invalid("phone", f"needs at least {MIN_PHONE_DIGITS} digits")
        query = query.where(_stored_phone_key().in_(phone_forms(phone)))
    if email:
        query = query.where(func.lower(m.Contact.email).like(_like(email), escape="\\"))
    if name:
        query = query.where(func.lower(m.Contact.name).like(_like(name), escape="\\"))
    rows, token = await paging.fetch_ordered_page(
        session,
        query,
        [paging.SortKey(m.Contact.name), paging.SortKey(m.Contact.id)],
        request.page_size or 20,
        request.page_token,
        f"contacts:{phone_forms(phone)[0] if phone else ''}|{email}|{name}",
    )
    found: list[tuple[m.Contact, str]] = []
    for contact in rows:
        org = await session.get(m.Organization, contact.organization_id)
        found.append((contact, org.name if org else ""))
    return found, token


async def set_contact_phone(
    session: AsyncSession, request: dpb.SetContactPhoneRequest
) -> tuple[m.Contact, str]:
    """Store the contact's number (as given, trimmed); the same number again changes nothing."""
    contact_id = require_id("contact_id", request.contact_id)
    phone = optional_text("phone", request.phone, MAX_PHONE)
    if phone and len(digits(phone)) < MIN_PHONE_DIGITS:
        invalid("phone", f"needs at least {MIN_PHONE_DIGITS} digits")
    contact = await session.get(m.Contact, contact_id)
    if contact is None:
        not_found(f"contact {contact_id}")
    if contact.phone != phone:
        contact.phone = phone
        await session.commit()
    org = await session.get(m.Organization, contact.organization_id)
    return contact, org.name if org else ""

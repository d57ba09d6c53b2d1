"""Who is calling (seed 000: the front-desk operator asks for the company, name, email and
phone "ove non fossero già in memoria"): a known caller is found by contact ID, email or
phone number (DirectoryService), so that only the nature of the request is needed; an
unknown one becomes a contact of the organisation named."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, cast

import grpc

from helpdesk.v1 import directory_pb2 as dpb
from helpdesk.v1 import intake_pb2 as ipb
from services.common.phone import digits, same_number
from services.common.rpc_errors import RpcError, invalid, optional_text

Call = Callable[[Any, Any], Awaitable[Any]]
MIN_PHONE_DIGITS = 6


@dataclass(frozen=True)
class Caller:
    contact: dpb.Contact
    # The number the caller gave, when it is not the one on file (saved once the ticket is).
    new_phone: str = ""


async def identify(
    call: Call, directory: Any, request: ipb.LogPhoneCallRequest, phone: str
) -> Caller:
    """The caller's contact: by ``contact_id``, else by ``caller_email``, else by
    ``caller_phone`` when exactly one contact has that number; else a new contact of
    ``organization_id`` (name and email required then)."""
    org_id = request.organization_id
    if org_id < 0:
        invalid("organization_id", "must be a positive ID")
    email = optional_text("caller_email", request.caller_email, 320)
    name = optional_text("caller_name", request.caller_name, 200)
    if phone and len(digits(phone)) < MIN_PHONE_DIGITS:
        invalid("caller_phone", f"needs at least {MIN_PHONE_DIGITS} digits")
    contact: dpb.Contact | None = None
    if request.contact_id:
        contact = await call(directory.GetContact, dpb.GetContactRequest(id=request.contact_id))
    elif email:
        contact = await _by_email(call, directory, email)
    elif phone:
        contact = await _by_phone(call, directory, phone, org_id)
    if contact is not None:
        if org_id and contact.organization_id != org_id:
            field = "contact_id" if request.contact_id else "caller_email" if email else "phone"
            invalid(
                field,
                f"the caller is a contact of organization {contact.organization_id}, not {org_id}",
            )
        new = phone if phone and not same_number(phone, contact.phone) else ""
        return Caller(contact, new)
    # Nobody on file: the operator asks for the rest (seed 000).
    if not org_id:
        invalid("organization_id", "is required for a caller not on file")
    if not name:
        invalid("caller_name", "is required for a caller not on file")
    if not email:
        invalid("caller_email", "is required for a caller not on file")
    org: dpb.Organization = await call(
        directory.GetOrganization, dpb.GetOrganizationRequest(id=org_id)
    )
    return Caller(await _add(call, directory, org.id, name, email, phone))


async def _by_email(call: Call, directory: Any, email: str) -> dpb.Contact | None:
    try:
        return cast(
            dpb.Contact,
            await call(directory.GetContactByEmail, dpb.GetContactByEmailRequest(email=email)),
        )
    except RpcError as err:
        if err.code != grpc.StatusCode.NOT_FOUND:
            raise
        return None


async def _by_phone(call: Call, directory: Any, phone: str, org_id: int) -> dpb.Contact | None:
    found: dpb.FindContactsResponse = await call(
        directory.FindContacts, dpb.FindContactsRequest(phone=phone, page_size=10)
    )
    matches = [c for c in found.contacts if not org_id or c.organization_id == org_id]
    if len(matches) > 1:
        invalid(
            "caller_phone",
            f"{len(matches)} contacts have this number: give contact_id or caller_email",
        )
    return matches[0] if matches else None


async def _add(
    call: Call, directory: Any, org_id: int, name: str, email: str, phone: str
) -> dpb.Contact:
    try:
        return cast(
            dpb.Contact,
            await call(
                directory.AddContact,
                dpb.AddContactRequest(organization_id=org_id, name=name, email=email, phone=phone),
            ),
        )
    except RpcError as err:
        if err.code != grpc.StatusCode.ALREADY_EXISTS:  # a concurrent retry added it
            raise
        return cast(
            dpb.Contact,
            await call(directory.GetContactByEmail, dpb.GetContactByEmailRequest(email=email)),
        )


async def save_phone(call: Call, directory: Any, caller: Caller) -> None:
    """A known caller's new number, kept on the contact (the next call finds them by it)."""
    if caller.new_phone:
        await call(
            directory.SetContactPhone,
            dpb.SetContactPhoneRequest(contact_id=caller.contact.id, phone=caller.new_phone),
        )

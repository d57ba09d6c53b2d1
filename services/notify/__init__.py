"""Notify: consumes ticket events from JetStream and emails the customer.

Each email is recorded once and handed to the relay at least once; a resend carries the same
Message-ID, so that receivers can deduplicate (``services.notify.notifier``).
"""

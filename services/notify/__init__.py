"""Notify: consumes ticket events from JetStream and emails the customer, exactly once."""

"""The ``helpdesk`` command line for agents."""

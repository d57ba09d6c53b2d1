"""``make run``: the embedded servers and every help-desk process, started and watched together."""

# In the data dir while the launcher runs: the addresses it chose, as ``KEY=value`` lines
# (the ``helpdesk`` CLI reads them; a shell can source them).
ENDPOINTS_FILE = "endpoints.env"

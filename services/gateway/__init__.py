"""The web gateway: the only HTTP face for people and web clients (portal, JSON API).

It keeps sessions only and calls the gRPC services with the signed-in person's own
token, so the access table in ``services/common/access.py`` stays the one authority.
"""

"""The replay server: a small Odoo that serves a dataset directory over Odoo's protocols.

Not part of the client a run uses (that is `odoo/`): tests, benchmarks and the
demo start it to talk real HTTP to something Odoo-shaped.

    server     the HTTP server, fault injection, `serve_forever`
    protocols  JSON-RPC, XML-RPC and JSON-2 requests and replies
    data       the dataset in memory: search_read, search, read, search_count
    domain     Odoo domain evaluation (prefix operators, dotted paths, NULL rules)
"""

from .server import ReplayServer, serve_forever

__all__ = ["ReplayServer", "serve_forever"]

"""The replay server: a small Odoo that serves a dataset directory over Odoo's protocols.

Not part of the client a run uses (that is `odoo/`): tests, benchmarks and the
demo start it to talk real HTTP to something Odoo-shaped.

    server     the HTTP server, fault injection, `serve_forever`
    protocols  JSON-RPC, XML-RPC (``/xmlrpc/2/`` and legacy ``/xmlrpc/``) and JSON-2
    web        the web client's ``/web/...`` JSON routes and sessions (odoorpc)
    data       the dataset in memory: search_read, search, read, search_count
    records    one model's records: fields, load, order, fields_get
    faults     errors as Odoo reports them (AccessDenied, MissingError, ...)
    domain     Odoo domain evaluation (prefix operators, dotted paths, NULL rules)
"""

from .server import ReplayServer, serve_forever

__all__ = ["ReplayServer", "serve_forever"]

"""`events …`: the downstream events' consumers from a shell (DESIGN §11).

    events consumers add|list|remove NAME   register (sees only later events) / backlog / drop
    events claim --consumer C [--limit N]   claim with a lease, commit, print JSON lines
    events ack --consumer C ID…             ack, commit
    events list [--run RUN]                 the stored events as JSON lines

Data goes to stdout (JSON lines), messages to stderr. `claim` commits its lease: the
events are this script's until acked or until `--visibility` seconds pass.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys

from ..consumer import Consumer
from ..db.connection import adbc_connect, database_url
from ..errors import ConfigError, database_error
from ..settings import Settings, redact

log = logging.getLogger("faturamento_batch")


def add_parser(sub, common) -> None:
    """The `events` verb and its actions, on the CLI's subparsers (`common` adds the shared flags)."""
    p = sub.add_parser("events", help="downstream events: consumers, claim, ack, list")
    actions = p.add_subparsers(dest="action", required=True)
    consumers = actions.add_parser("consumers", help="register, list or remove consumers")
    what = consumers.add_subparsers(dest="what", required=True)
    for name, text in (("add", "register NAME: it sees the events committed from now on"),
                       ("remove", "remove NAME and its undelivered events' deliveries")):  # fmt: skip
        q = what.add_parser(name, help=text)
        common(q)
        q.add_argument("name")
    q = what.add_parser("list", help="consumers, pending events and the oldest unacked event's age")
    common(q)
    q.add_argument("--json", action="store_true")
    q = actions.add_parser("claim", help="claim pending events (JSON lines on stdout)")
    common(q)
    q.add_argument("--consumer", required=True)
    q.add_argument("--limit", type=int, default=100)
    q.add_argument("--visibility", type=float, default=300.0, metavar="SECONDS",
                   help="the claim's lease: not acked by then, the events return (default 300)")
    q = actions.add_parser("ack", help="ack claimed events by id")
    common(q)
    q.add_argument("--consumer", required=True)
    q.add_argument("ids", nargs="+", type=int)
    q = actions.add_parser("list", help="stored events (JSON lines on stdout)")
    common(q)
    q.add_argument("--run", help="only this run's events")
    q.add_argument("--limit", type=int, default=1000)


def cmd_events(args: argparse.Namespace, settings: Settings) -> int:
    if getattr(args, "limit", 1) < 1:
        raise ConfigError("`--limit` must be 1 or more")
    conn = adbc_connect(database_url(settings))
    try:
        return _dispatch(args, conn)
    except Exception as exc:
        conn.rollback()
        if isinstance(exc, ConfigError):
            raise
        raise database_error(f"`events {args.action}` failed: {redact(str(exc)).strip()[:800]}", exc) from exc
    finally:
        conn.close()


def _known(c: Consumer) -> None:
    if c.name not in {row["name"] for row in c.consumers()}:
        raise ConfigError(f"no consumer `{c.name}`: register it with `events consumers add {c.name}`")


def _dispatch(args: argparse.Namespace, conn) -> int:
    name = getattr(args, "name", None) or getattr(args, "consumer", None) or ""
    c = Consumer(conn, name, visibility_seconds=getattr(args, "visibility", 300.0))
    if args.action == "consumers" and args.what == "add":
        after = c.register()
        conn.commit()
        log.info("consumer `%s` %s", name, "already registered" if after is None else f"registered: sees events after id {after}")
    elif args.action == "consumers" and args.what == "remove":
        if not c.remove():
            raise ConfigError(f"no consumer `{name}`")
        conn.commit()
        log.info("consumer `%s` removed", name)
    elif args.action == "consumers":
        rows = c.consumers()
        if args.json:
            for row in rows:
                print(json.dumps(row, default=str))
        else:
            print(f"{'consumer':<20} {'registered_at':<20} {'after_id':>10} {'pending':>9} {'leased':>7} {'oldest_unacked_s':>17}")
            for r in rows:
                age = "" if r["oldest_unacked_seconds"] is None else f"{r['oldest_unacked_seconds']:.0f}"
                print(f"{r['name']:<20} {str(r['registered_at'])[:19]:<20} {r['registered_after_id']:>10} "
                      f"{r['pending']:>9} {r['leased']:>7} {age:>17}")  # fmt: skip
    elif args.action == "claim":
        _known(c)
        events = c.claim(args.limit)
        conn.commit()  # the lease holds them for this script
        for e in events:
            print(e.as_json())
        log.info("claimed %d event(s) for `%s` until acked or %ss pass", len(events), name, args.visibility)
    elif args.action == "ack":
        _known(c)
        n = c.ack(args.ids)
        conn.commit()
        log.info("acked %d of %d event(s) for `%s`%s", n, len(set(args.ids)), name,
                 "" if n == len(set(args.ids)) else " (the others were not pending: acked before, or not this consumer's)")
    else:
        for e in c.list_events(args.run, args.limit):
            print(e.as_json())
    sys.stdout.flush()
    return 0

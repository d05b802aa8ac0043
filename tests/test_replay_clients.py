"""The common Odoo clients against the replay server over real HTTP: odoo-client-lib
(legacy ``/xmlrpc/<service>`` and ``/jsonrpc``) and odoorpc (the web client's JSON
routes and ``/jsonrpc``), plus the web routes and MissingError in every protocol.

The dataset is the `smoke_mixed` fixture; expected values are read from its files.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
import xmlrpc.client
from datetime import date, datetime
from pathlib import Path

import odoolib
import odoorpc
import pytest

from faturamento_batch.odoo.fields import LINE, LINE_DOMAIN, MOVE, PARTNER, USER
from faturamento_batch.replay import ReplayServer, web

DATASET = Path(__file__).resolve().parent.parent / "data" / "fixtures" / "smoke_mixed" / "odoo"
META = json.loads((DATASET / "meta.json").read_text())
MISSING_ID = 999_999
MISSING_TEXT = "Record does not exist or has been deleted."


def records(model: str) -> list[dict]:
    return json.loads((DATASET / f"{model}.json").read_text())


def by_id(model: str) -> dict[int, dict]:
    return {r["id"]: r for r in records(model)}


def line_domain_ids() -> list[int]:
    """Reference for `LINE_DOMAIN`, computed from the files (not by the replay's domain code)."""
    moves = by_id(MOVE)
    keep = []
    for line in records(LINE):
        move = moves.get(line["move_id"][0]) if line["move_id"] else None
        if (
            line["product_id"]
            and move
            and move["l10n_br_tipo_pedido"] in ("venda", "bonificacao")
            and move["state"] in ("posted", "cancel")
        ):
            keep.append(line["id"])
    return sorted(keep)


@pytest.fixture(scope="module")
def odoo():
    with ReplayServer(DATASET) as server:
        yield server


@pytest.fixture
def strict(odoo):
    """The shared server answering MissingError for missing ids (its default)."""
    odoo.set_faults()
    yield odoo


@pytest.fixture
def lenient(odoo):
    """The shared server skipping missing ids as Odoo 17's ORM does, for one test."""
    odoo.set_faults(missing_error=False)
    yield odoo
    odoo.set_faults()


def port(server: ReplayServer) -> int:
    return int(server.url.rsplit(":", 1)[1])


# ------------------------------------------------------------- odoo-client-lib


def odoolib_connection(server: ReplayServer, protocol: str, password: str = META["password"], database: str = META["db"]):
    return odoolib.get_connection(
        hostname="127.0.0.1", protocol=protocol, port=port(server), database=database, login=META["login"], password=password
    )


@pytest.mark.parametrize("protocol", ["xmlrpc", "jsonrpc"])
def test_odoolib_login(odoo, protocol):
    conn = odoolib_connection(odoo, protocol)
    conn.check_login()
    assert conn.user_id == META["uid"]
    for bad in (odoolib_connection(odoo, protocol, password="wrong"), odoolib_connection(odoo, protocol, database="other")):
        with pytest.raises(odoolib.tools.AuthenticationError, match="Authentication failure"):
            bad.check_login()


@pytest.mark.parametrize("protocol", ["xmlrpc", "jsonrpc"])
def test_odoolib_search_read_count(odoo, protocol):
    lines = odoolib_connection(odoo, protocol).get_model(LINE)
    expected = line_domain_ids()
    assert expected and lines.search(LINE_DOMAIN) == expected
    assert lines.search_count(LINE_DOMAIN) == len(expected)
    assert lines.search_count([]) == len(records(LINE))
    stored = by_id(LINE)
    assert lines.read(expected, ["quantity", "move_id"]) == [
        {"id": i, "quantity": stored[i]["quantity"], "move_id": stored[i]["move_id"]} for i in expected
    ]
    assert lines.read(expected[0], ["product_id"]) == {"id": expected[0], "product_id": stored[expected[0]]["product_id"]}
    partners = odoolib_connection(odoo, protocol).get_model(PARTNER)
    by_name_desc = sorted(records(PARTNER), key=lambda r: r["name"], reverse=True)
    assert partners.search_read([], ["name", "l10n_br_cnpj"], limit=1, order="name desc") == [
        {"id": by_name_desc[0]["id"], "name": by_name_desc[0]["name"], "l10n_br_cnpj": by_name_desc[0]["l10n_br_cnpj"]}
    ]
    # the replay's own search_read, reached through the model proxy's execute_kw
    execute = odoolib_connection(odoo, protocol).get_model(MOVE).__getattr__("search_read")
    moves = execute([("state", "=", "posted")], ["name"], 0, 2, "id desc")
    posted = sorted((m for m in records(MOVE) if m["state"] == "posted"), key=lambda m: -m["id"])[:2]
    assert moves == [{"id": m["id"], "name": m["name"]} for m in posted]


def test_odoolib_read_of_missing_ids(lenient):
    lines = odoolib_connection(lenient, "xmlrpc").get_model(LINE)
    first = line_domain_ids()[0]
    # as Odoo 17: ids that do not exist are skipped, no error
    assert lines.read([MISSING_ID, first], ["id"]) == [{"id": first}]
    assert lines.read(MISSING_ID, ["id"]) == []


def test_odoolib_missing_error(strict):
    with pytest.raises(xmlrpc.client.Fault) as info:
        odoolib_connection(strict, "xmlrpc").get_model(LINE).read([MISSING_ID], ["quantity"])
    # the legacy route's string fault code, as Odoo's xmlrpc_handle_exception_string sends it
    assert (
        info.value.faultCode == f"warning -- MissingError\n\n{MISSING_TEXT}\n(Record: {LINE}({MISSING_ID},), User: {META['uid']})"
    )
    assert info.value.faultString == ""
    with pytest.raises(odoolib.tools.JsonRPCException) as jinfo:
        odoolib_connection(strict, "jsonrpc").get_model(LINE).read([MISSING_ID], ["quantity"])
    assert jinfo.value.error["data"]["name"] == "odoo.exceptions.MissingError"
    assert jinfo.value.error["data"]["message"].startswith(MISSING_TEXT)


def test_odoolib_json2(odoo):
    def connect(key):
        return odoolib.get_connection(hostname="127.0.0.1", protocol="json2", port=port(odoo), database=META["db"], password=key)

    assert connect(META["api_key"]).check_login() is True  # res.users.context_get over JSON-2
    assert connect("bad-key").check_login() is False
    assert connect(META["password"]).check_login() is False  # JSON-2 takes the API key only
    lines = connect(META["api_key"]).get_model(LINE)  # positional arguments named from /doc-bearer/
    expected = line_domain_ids()
    assert lines.search(LINE_DOMAIN) == expected
    assert lines.search_count(LINE_DOMAIN) == len(expected)
    stored = by_id(LINE)
    assert lines.read(expected, ["quantity"]) == [{"id": i, "quantity": stored[i]["quantity"]} for i in expected]
    assert lines.search_read([], ["id"], 0, 1, "id desc") == [{"id": max(stored)}]
    odoo.set_faults(missing_error=True)
    try:
        with pytest.raises(ValueError, match="404.*odoo.exceptions.MissingError"):
            lines.read([MISSING_ID], ["quantity"])
    finally:
        odoo.set_faults()


def test_legacy_xmlrpc_faults(odoo):
    obj = xmlrpc.client.ServerProxy(f"{odoo.url}/xmlrpc/object")
    with pytest.raises(xmlrpc.client.Fault) as denied:
        obj.execute_kw(META["db"], META["uid"], "wrong", LINE, "search", [[]])
    assert (denied.value.faultCode, denied.value.faultString) == ("AccessDenied", "Access Denied")
    with pytest.raises(xmlrpc.client.Fault) as unknown:
        obj.execute_kw(META["db"], META["uid"], META["password"], "no.such.model", "search", [[]])
    assert unknown.value.faultCode == "'no.such.model'" and "Traceback" in unknown.value.faultString
    with pytest.raises(xmlrpc.client.Fault) as readonly:
        obj.execute_kw(META["db"], META["uid"], META["password"], LINE, "write", [[10], {"quantity": 1}])
    assert readonly.value.faultCode.startswith("warning -- AccessError\n\n")
    assert xmlrpc.client.ServerProxy(f"{odoo.url}/xmlrpc/common").version()["server_serie"] == "17.0"
    assert xmlrpc.client.ServerProxy(f"{odoo.url}/xmlrpc/db").list() == [META["db"]]


# --------------------------------------------------------------------- odoorpc


def odoorpc_client(server: ReplayServer) -> odoorpc.ODOO:
    return odoorpc.ODOO("127.0.0.1", port=port(server), timeout=10)


def test_odoorpc_login(odoo):
    client = odoorpc_client(odoo)
    assert client.version == "17.0"  # from /web/webclient/version_info
    client.login(META["db"], META["login"], META["password"])
    assert client.env.uid == META["uid"]
    assert client.env.context == {"lang": "en_US", "tz": "UTC", "uid": META["uid"]}
    for db, password in ((META["db"], "wrong"), ("other", META["password"])):
        with pytest.raises(odoorpc.error.RPCError, match="Wrong login ID or password"):
            odoorpc_client(odoo).login(db, META["login"], password)
    assert client.db.list() == [META["db"]]


def test_odoorpc_search_read_count(odoo):
    client = odoorpc_client(odoo)
    client.login(META["db"], META["login"], META["password"])
    lines = client.env[LINE]  # fields_get on first use
    expected = line_domain_ids()
    assert lines.search(LINE_DOMAIN) == expected
    assert lines.search_count(LINE_DOMAIN) == len(expected)
    stored = by_id(LINE)
    assert lines.read(expected, ["price_unit"]) == [{"id": i, "price_unit": stored[i]["price_unit"]} for i in expected]
    newest = sorted(records(LINE), key=lambda r: -r["id"])[:2]
    assert lines.search_read([], ["quantity"], limit=2, order="id desc") == [
        {"id": r["id"], "quantity": r["quantity"]} for r in newest
    ]


def test_odoorpc_records(odoo):
    client = odoorpc_client(odoo)
    client.login(META["db"], META["login"], META["password"])
    move = by_id(MOVE)[1]
    record = client.env[MOVE].browse(1)  # one read with load='_classic_write'
    assert record.name == move["name"] and record.state == move["state"]
    assert record.date == date.fromisoformat(move["date"])
    assert record.write_date == datetime.fromisoformat(move["write_date"])
    user = record.invoice_user_id  # a many2one: browsed through fields_get's relation
    assert user._name == USER and user.id == move["invoice_user_id"][0]
    assert user.name == by_id(USER)[user.id]["name"]
    assert client.env[PARTNER].browse(6).l10n_br_cnpj == by_id(PARTNER)[6]["l10n_br_cnpj"]
    # odoorpc's own error when Odoo skips the missing id, as Odoo 17 does
    odoo.set_faults(missing_error=False)
    try:
        with pytest.raises(ValueError, match=rf"There is no '{PARTNER}' record with IDs \[{MISSING_ID}\]"):
            client.env[PARTNER].browse(MISSING_ID)
    finally:
        odoo.set_faults()


def test_odoorpc_missing_error(strict):
    client = odoorpc_client(strict)
    client.login(META["db"], META["login"], META["password"])
    for call in (lambda: client.env[PARTNER].browse([5, MISSING_ID]), lambda: client.env[PARTNER].read([MISSING_ID], ["name"])):
        with pytest.raises(odoorpc.error.RPCError) as info:
            call()
        assert info.value.info["data"]["name"] == "odoo.exceptions.MissingError"
        assert str(info.value) == f"{MISSING_TEXT}\n(Record: {PARTNER}({MISSING_ID},), User: {META['uid']})"


# ------------------------------------------------------------------ web routes


def test_web_session_routes(odoo):
    client = odoorpc_client(odoo)  # its cookie jar keeps session_id between requests
    kw = {"model": PARTNER, "method": "search_read", "args": [[]], "kwargs": {"fields": ["name"], "order": "id"}}
    with pytest.raises(odoorpc.error.RPCError) as expired:
        client.json("/web/dataset/call_kw", kw)
    assert expired.value.info["code"] == 100 and expired.value.info["message"] == "Odoo Session Expired"
    assert expired.value.info["data"]["name"] == "odoo.http.SessionExpiredException"
    with pytest.raises(odoorpc.error.RPCError) as denied:
        client.json("/web/session/authenticate", {"db": META["db"], "login": META["login"], "password": "wrong"})
    assert denied.value.info["data"]["name"] == "odoo.exceptions.AccessDenied"
    before = len(odoo.sessions)
    info = client.json("/web/session/authenticate", {"db": META["db"], "login": META["login"], "password": META["password"]})[
        "result"
    ]
    assert len(odoo.sessions) == before + 1
    assert info["uid"] == META["uid"] and info["db"] == META["db"] and info["username"] == META["login"]
    assert info["server_version_info"][:2] == [17, 0]
    assert client.json("/web/session/get_session_info", {})["result"]["uid"] == META["uid"]
    names = [{"id": r["id"], "name": r["name"]} for r in records(PARTNER)]
    assert client.json(f"/web/dataset/call_kw/{PARTNER}/search_read", kw)["result"] == names
    assert client.json("/web/dataset/call", {"model": PARTNER, "method": "search_count", "args": [[]]})["result"] == len(names)
    assert client.json("/web/database/list", {})["result"] == [META["db"]]
    client.json("/web/session/destroy", {})
    with pytest.raises(odoorpc.error.RPCError, match="Session expired"):
        client.json("/web/session/get_session_info", {})


def test_web_authenticate_sets_the_session_cookie(odoo):
    body = {
        "jsonrpc": "2.0",
        "method": "call",
        "id": 1,
        "params": {"db": META["db"], "login": META["login"], "password": META["password"]},
    }
    request = urllib.request.Request(
        f"{odoo.url}/web/session/authenticate", json.dumps(body).encode(), {"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=5) as resp:
        cookie = resp.headers["Set-Cookie"]
        assert json.loads(resp.read())["result"]["uid"] == META["uid"]
    sid = cookie.split(";")[0].removeprefix("session_id=")
    assert len(sid) == 40 and "HttpOnly" in cookie and "Path=/" in cookie
    call = {
        "jsonrpc": "2.0",
        "method": "call",
        "id": 2,
        "params": {"model": LINE, "method": "search_count", "args": [LINE_DOMAIN], "kwargs": {}},
    }
    request = urllib.request.Request(
        f"{odoo.url}/web/dataset/call_kw",
        json.dumps(call).encode(),
        {"Content-Type": "application/json", "Cookie": f"session_id={sid}"},
    )
    with urllib.request.urlopen(request, timeout=5) as resp:
        assert json.loads(resp.read())["result"] == len(line_domain_ids())
    with pytest.raises(urllib.error.HTTPError) as missing:
        urllib.request.urlopen(urllib.request.Request(f"{odoo.url}/web/no/such/route", b"{}"), timeout=5)
    assert missing.value.code == 404


def test_sessions_forget_the_oldest_past_the_cap(monkeypatch):
    monkeypatch.setattr(web, "MAX_SESSIONS", 2)
    sessions = web.Sessions()
    sids = [sessions.open(web.Session(META["db"], META["uid"], META["login"])) for _ in range(3)]
    assert len(set(sids)) == 3 and len(sessions) == 2
    assert sessions.get(sids[0]) is None and sessions.get(sids[2]).uid == META["uid"]
    sessions.close(sids[2])
    assert sessions.get(sids[2]) is None and len(sessions) == 1


# --------------------------------------------------- MissingError, every protocol


def test_missing_error_in_every_protocol(strict):
    args = [[MISSING_ID, 10], ["quantity"]]
    message = f"{MISSING_TEXT}\n(Record: {LINE}({MISSING_ID},), User: {META['uid']})"
    with pytest.raises(xmlrpc.client.Fault) as fault:
        xmlrpc.client.ServerProxy(f"{strict.url}/xmlrpc/2/object").execute_kw(
            META["db"], META["uid"], META["password"], LINE, "read", args
        )
    assert (fault.value.faultCode, fault.value.faultString) == (2, message)  # MissingError is a UserError
    rpc_args = [META["db"], META["uid"], META["password"], LINE, "read", args]
    body = {
        "jsonrpc": "2.0",
        "method": "call",
        "id": 1,
        "params": {"service": "object", "method": "execute_kw", "args": rpc_args},
    }
    answer = post_json(f"{strict.url}/jsonrpc", body)
    assert answer["error"]["code"] == 200 and answer["error"]["data"]["name"] == "odoo.exceptions.MissingError"
    assert answer["error"]["data"]["message"] == message
    request = urllib.request.Request(
        f"{strict.url}/json/2/{LINE}/read",
        json.dumps({"ids": args[0], "fields": args[1]}).encode(),
        {"Content-Type": "application/json", "Authorization": f"Bearer {META['api_key']}"},
    )
    with pytest.raises(urllib.error.HTTPError) as json2:
        urllib.request.urlopen(request, timeout=5)
    assert json2.value.code == 404
    error = json.loads(json2.value.read())
    assert error["name"] == "odoo.exceptions.MissingError" and error["message"] == message
    # search_read never raises it: a search finds only what exists
    assert strict._data.search(strict._data.tables[LINE], [("id", "=", MISSING_ID)]) == []


def test_missing_error_switch_over_the_control_endpoint(odoo):
    try:
        assert post_json(f"{odoo.url}/replay/faults", {"missing_error": False})["missing_error"] is False
        obj = xmlrpc.client.ServerProxy(f"{odoo.url}/xmlrpc/2/object")
        assert obj.execute_kw(META["db"], META["uid"], META["password"], LINE, "read", [[MISSING_ID]]) == []
    finally:
        assert post_json(f"{odoo.url}/replay/faults", {})["missing_error"] is True
    with pytest.raises(xmlrpc.client.Fault, match="MissingError|does not exist"):
        obj.execute_kw(META["db"], META["uid"], META["password"], LINE, "read", [[MISSING_ID]])


# ------------------------------------------------------ what odoorpc relies on


def test_load_classic_write_sends_bare_many2one_ids(odoo):
    obj = xmlrpc.client.ServerProxy(f"{odoo.url}/xmlrpc/2/object")
    creds = (META["db"], META["uid"], META["password"])
    line = by_id(LINE)[10]
    write = obj.execute_kw(*creds, LINE, "read", [[10], ["move_id", "product_id"]], {"load": "_classic_write"})
    assert write == [{"id": 10, "move_id": line["move_id"][0], "product_id": line["product_id"][0]}]
    classic = obj.execute_kw(*creds, LINE, "search_read", [[("id", "=", 10)], ["move_id"]])
    assert classic == [{"id": 10, "move_id": line["move_id"]}]
    no_product = obj.execute_kw(*creds, LINE, "read", [[12], ["product_id"], "_classic_write"])
    assert no_product == [{"id": 12, "product_id": False}]
    # load=None (what Odoo 17's web_read passes) is not "_classic_read" either; only JSON can send it
    args = [*creds, LINE, "read", [[10], ["move_id"]], {"load": None}]
    body = {"jsonrpc": "2.0", "method": "call", "id": 1, "params": {"service": "object", "method": "execute_kw", "args": args}}
    assert post_json(f"{odoo.url}/jsonrpc", body)["result"] == [{"id": 10, "move_id": line["move_id"][0]}]


def test_fields_get_names_relations_and_selections(odoo):
    obj = xmlrpc.client.ServerProxy(f"{odoo.url}/xmlrpc/2/object")
    fields = obj.execute_kw(
        META["db"], META["uid"], META["password"], MOVE, "fields_get", [], {"attributes": ["type", "relation", "selection"]}
    )
    assert fields["invoice_user_id"] == {"type": "many2one", "relation": USER}
    assert fields["team_id"] == {"type": "many2one", "relation": "crm.team"}
    assert all("relation" in f for f in fields.values() if f["type"] == "many2one")
    states = sorted({m["state"] for m in records(MOVE)})
    assert fields["state"] == {"type": "selection", "selection": [[s, s] for s in states]}
    context = obj.execute_kw(META["db"], META["uid"], META["password"], USER, "context_get", [])
    assert context["uid"] == META["uid"]
    with pytest.raises(xmlrpc.client.Fault, match="does not exist"):
        obj.execute_kw(META["db"], META["uid"], META["password"], LINE, "context_get", [])


def post_json(url: str, body: dict) -> dict:
    request = urllib.request.Request(url, json.dumps(body).encode(), {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=5) as resp:
        return json.loads(resp.read())

"""The replay Odoo over real HTTP: domains, paging, the three protocols, faults, reload.

Every test talks to a `ReplayServer` on port 0 through urllib, http.client or
xmlrpc.client, over a tiny dataset written here in the DESIGN §3 format.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import xmlrpc.client
from pathlib import Path

import pytest

from faturamento_batch.errors import ConfigError
from faturamento_batch.odoo.fields import LINE, LINE_DOMAIN, MOVE, PARTNER, PRODUCT, TEMPLATE, USER
from faturamento_batch.replay import ReplayServer

ROOT = Path(__file__).resolve().parent.parent
META = {"db": "odoo_test", "login": "bot@example.com", "password": "s3cret", "api_key": "key-123", "uid": 7}
ALL_LINES = [100, 101, 102, 103, 104, 105, 106]


def _line(id, move, partner, product, qty, date, write_date):
    return {
        "id": id,
        "move_id": move,
        "partner_id": partner,
        "product_id": product,
        "quantity": qty,
        "price_unit": 10.0,
        "price_total": qty * 10.0,
        "l10n_br_total_nfe": qty * 10.0,
        "date": date,
        "write_date": write_date,
    }


def _move(id, state, tipo, write_date, user=False):
    return {
        "id": id,
        "name": f"NF/{id:04d}",
        "state": state,
        "l10n_br_numero_nota_fiscal": f"{id:04d}",
        "l10n_br_tipo_pedido": tipo,
        "date": write_date[:10],
        "invoice_origin": False,
        "l10n_br_cnpj": "12.345.678/0001-90",
        "invoice_partner_display_name": "Acme Ltda",
        "invoice_user_id": user,
        "team_id": False,
        "invoice_incoterm_id": False,
        "write_date": write_date,
    }


ACME, BETA = [1, "Acme Ltda"], [2, "Beta_Comercio 100%"]
WIDGET, GADGET = [5, "[W-1] Widget"], [6, "Gadget"]
DATASET = {
    LINE: [
        # out of id order on purpose: the server sorts by id
        _line(106, [14, "NF/0014"], ACME, GADGET, 6.5, "2024-03-02", "2024-03-02 23:59:59"),
        _line(100, [10, "NF/0010"], ACME, WIDGET, 2.0, "2024-01-10", "2024-01-10 12:00:00"),
        _line(101, [10, "NF/0010"], ACME, False, 0.0, "2024-01-10", "2024-01-10 12:00:00"),  # tax line
        _line(102, [11, "NF/0011"], BETA, GADGET, 1.0, "2024-02-01", "2024-02-01 08:00:00"),  # cancelled NF
        _line(103, [12, "NF/0012"], BETA, WIDGET, 3.0, "2024-02-02", "2024-02-02 09:00:00"),  # draft NF
        _line(104, [13, "NF/0013"], False, GADGET, 4.0, False, "2024-02-03 10:00:00"),
        _line(105, [999, "NF/0999"], ACME, WIDGET, 5.0, "2024-03-01", "2024-03-01 00:00:00"),  # move not in dataset
    ],
    MOVE: [
        _move(10, "posted", "venda", "2024-01-10 12:00:00", user=[2, "Ana"]),
        _move(11, "cancel", "bonificacao", "2024-02-01 08:00:00"),
        _move(12, "draft", "venda", "2024-02-02 09:00:00"),
        _move(13, "posted", "outro", "2024-02-03 10:00:00"),
        _move(14, "posted", False, "2024-02-04 11:00:00"),
    ],
    PARTNER: [
        {"id": 1, "name": "Acme Ltda", "l10n_br_cnpj": "12.345.678/0001-90", "l10n_br_municipio_id": False,
         "state_id": [55, "São Paulo (BR)"], "user_id": [2, "Ana"], "write_date": "2024-01-01 00:00:00"},
        {"id": 2, "name": "Beta_Comercio 100%", "l10n_br_cnpj": False, "l10n_br_municipio_id": False,
         "state_id": False, "user_id": False, "write_date": "2024-01-01 00:00:00"},
    ],
    PRODUCT: [
        {"id": 5, "name": "Widget", "code": "W-1", "weight": 1.5, "product_tmpl_id": [50, "Widget"], "write_date": "2024-01-01 00:00:00"},
        {"id": 6, "name": "Gadget", "code": False, "weight": 0.0, "product_tmpl_id": [60, "Gadget"], "write_date": "2024-01-01 00:00:00"},
    ],
    TEMPLATE: [{"id": 50, "name": "Widget", "default_code": "W-1", "gross_weight": 1.6, "write_date": "2024-01-01 00:00:00"}],
    USER: [{"id": 2, "name": "Ana", "write_date": "2024-01-01 00:00:00"}],
    # no municipio file: an empty model
}


def write_dataset(path: Path, dataset: dict = DATASET, meta: dict = META) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    for model, records in dataset.items():
        (path / f"{model}.json").write_text(json.dumps(records))
    (path / "meta.json").write_text(json.dumps(meta))
    return path


@pytest.fixture(scope="module")
def odoo(tmp_path_factory):
    with ReplayServer(write_dataset(tmp_path_factory.mktemp("replay") / "ds")) as server:
        yield server


@pytest.fixture
def fresh(tmp_path):
    """A server of its own, for tests that change faults or data."""
    with ReplayServer(write_dataset(tmp_path / "ds")) as server:
        yield server


# ------------------------------------------------------------------ clients


def post(url: str, body: bytes, headers: dict | None = None, timeout: float = 5) -> tuple[int, bytes]:
    req = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def jsonrpc(url: str, service: str, method: str, *args, timeout: float = 5) -> dict:
    body = {"jsonrpc": "2.0", "method": "call", "params": {"service": service, "method": method, "args": list(args)}, "id": 42}
    status, raw = post(f"{url}/jsonrpc", json.dumps(body).encode(), timeout=timeout)
    assert status == 200
    answer = json.loads(raw)
    assert answer["jsonrpc"] == "2.0" and answer["id"] == 42
    return answer


def call(server: ReplayServer, model: str, method: str, *args, password: str = META["password"], **kwargs):
    """execute_kw over JSON-RPC; returns the result, or the error data (name, message...)."""
    answer = jsonrpc(server.url, "object", "execute_kw", META["db"], META["uid"], password, model, method, list(args), kwargs)
    return answer["result"] if "result" in answer else answer["error"]["data"]


def ids(server: ReplayServer, domain: list, model: str = LINE) -> list[int]:
    result = call(server, model, "search", domain)
    assert isinstance(result, list), result
    return result


def json2(url: str, model: str, method: str, body: dict, key: str | None = META["api_key"], headers: dict | None = None):
    hdrs = {"Authorization": f"bearer {key}"} if key else {}
    status, raw = post(f"{url}/json/2/{model}/{method}", json.dumps(body).encode(), {**hdrs, **(headers or {})})
    return status, json.loads(raw)


def xml_object(server: ReplayServer) -> xmlrpc.client.ServerProxy:
    return xmlrpc.client.ServerProxy(f"{server.url}/xmlrpc/2/object", allow_none=False)


# ------------------------------------------------------------------ domains

OPERATOR_CASES = [
    # =, != and Odoo's NULL rules
    ([("quantity", "=", 2.0)], [100]),
    ([("product_id", "=", False)], [101]),
    ([("product_id", "!=", False)], [100, 102, 103, 104, 105, 106]),
    ([("partner_id", "!=", 1)], [102, 103, 104]),  # the null partner matches a negative operator
    ([("date", "=", False)], [104]),
    # many2one by id, by [id, name], by display name
    ([("partner_id", "=", 1)], [100, 101, 105, 106]),
    ([("partner_id", "=", [1, "Acme Ltda"])], [100, 101, 105, 106]),
    ([("partner_id", "=", "Acme Ltda")], [100, 101, 105, 106]),
    # in / not in, with and without False in the list
    ([("partner_id", "in", [2])], [102, 103]),
    ([("partner_id", "in", [2, False])], [102, 103, 104]),
    ([("partner_id", "not in", [1])], [102, 103, 104]),
    ([("partner_id", "not in", [1, False])], [102, 103]),
    ([("id", "in", [100, 105, 999])], [100, 105]),
    ([("id", "not in", [100, 101])], [102, 103, 104, 105, 106]),
    ([("id", "in", [])], []),
    # ordering comparisons; a null never compares
    ([("quantity", ">", 3.0)], [104, 105, 106]),
    ([("quantity", ">=", 3.0)], [103, 104, 105, 106]),
    ([("quantity", "<", 2.0)], [101, 102]),
    ([("quantity", "<=", 2.0)], [100, 101, 102]),
    ([("date", "<", "2024-02-01")], [100, 101]),
    ([("date", ">=", "2024-02-01")], [102, 103, 105, 106]),
    ([("id", ">", 103)], [104, 105, 106]),
    ([("id", ">", 103), ("id", "<=", 105)], [104, 105]),
    # a date-only value against a datetime is widened as Odoo does
    ([("write_date", ">=", "2024-03-02")], [106]),
    ([("write_date", ">", "2024-03-02")], []),
    ([("write_date", "<=", "2024-01-10")], [100, 101]),
    ([("write_date", ">=", "2024-03-01 00:00:00")], [105, 106]),
    # like family: %...% wrapping, case, wildcards, escapes, null with negatives
    ([("partner_id", "ilike", "acme")], [100, 101, 105, 106]),
    ([("partner_id", "like", "cme")], [100, 101, 105, 106]),
    ([("partner_id", "like", "acme")], []),
    ([("partner_id", "not ilike", "ACME")], [102, 103, 104]),
    ([("partner_id", "not like", "Acme")], [102, 103, 104]),
    ([("partner_id", "=like", "Beta%")], [102, 103]),
    ([("partner_id", "=like", "Beta")], []),
    ([("partner_id", "=ilike", "beta%")], [102, 103]),
    ([("partner_id", "=like", "Acm_ Ltda")], [100, 101, 105, 106]),
    ([("partner_id", "like", "100\\%")], [102, 103]),
    ([("partner_id", "like", "0\\%x")], []),
    ([("partner_id", "ilike", "")], ALL_LINES),  # Odoo: an empty ilike matches everything
    ([("date", "like", "2024-03")], [105, 106]),
    # =?
    ([("partner_id", "=?", False)], ALL_LINES),
    ([("partner_id", "=?", 2)], [102, 103]),
    # dotted paths through many2one; a missing move is null
    ([("move_id.state", "=", "posted")], [100, 101, 104, 106]),
    ([("move_id.state", "!=", "posted")], [102, 103, 105]),
    ([("move_id.state", "=", False)], [105]),
    ([("move_id.invoice_user_id.name", "=", "Ana")], [100, 101]),
    ([("move_id", "any", [("state", "=", "cancel")])], [102]),
    ([("move_id", "not any", [("state", "=", "posted")])], [102, 103, 105]),
    # prefix operators and the implicit AND
    (["|", ("quantity", "=", 2.0), ("quantity", "=", 1.0)], [100, 102]),
    (["!", ("product_id", "=", False)], [100, 102, 103, 104, 105, 106]),
    (["&", ("partner_id", "=", 1), "!", ("quantity", ">", 2.0)], [100, 101]),
    ([("partner_id", "=", 1), ("quantity", ">", 2.0)], [105, 106]),
    (["|", ("quantity", "=", 2.0), ("quantity", "=", 1.0), ("partner_id", "=", 2)], [102]),
    (["|", "&", ("partner_id", "=", 2), ("quantity", ">", 1.0), ("id", "=", 100)], [100, 103]),
    (["!", "|", ("partner_id", "=", 1), ("partner_id", "=", False)], [102, 103]),
    ([[1, "=", 1]], ALL_LINES),
    ([[0, "=", 1]], []),
    ([], ALL_LINES),
    # the job's own line domain: product lines of venda/bonificacao moves, posted or cancelled
    (LINE_DOMAIN, [100, 102]),
]


@pytest.mark.parametrize("domain,expected", OPERATOR_CASES, ids=[str(d) for d, _ in OPERATOR_CASES])
def test_domain_operators(odoo, domain, expected):
    assert ids(odoo, domain) == expected


@pytest.mark.parametrize(
    "domain,expected",
    [
        ([("state", "not in", ["posted"])], [11, 12]),
        ([("l10n_br_tipo_pedido", "!=", "venda")], [11, 13, 14]),
        ([("l10n_br_tipo_pedido", "=", False)], [14]),
        ([("l10n_br_tipo_pedido", "not ilike", "VEN")], [11, 13, 14]),
        ([("name", "ilike", "0011")], [11]),
        ([("invoice_user_id.name", "ilike", "an")], [10]),
    ],
)
def test_domain_on_moves(odoo, domain, expected):
    assert ids(odoo, domain, MOVE) == expected


@pytest.mark.parametrize(
    "domain,message",
    [
        ([("nope", "=", 1)], "Invalid field 'nope' on model 'account.move.line'"),
        ([("move_id.nope", "=", 1)], "Invalid field 'nope' on model 'account.move'"),
        ([("quantity.x", "=", 1)], "Invalid field 'quantity.x' on model 'account.move.line'"),
        (["|", ("id", "=", 1)], "needs two operands"),
        ([("id", "~", 1)], "Invalid operator '~'"),
        ([("quantity", ">", "abc")], "Invalid value 'abc'"),
        (["&&", ("id", "=", 1)], "Invalid domain term '&&'"),
        ("id = 1", "a domain is a list"),
    ],
)
def test_bad_domains_are_value_errors(odoo, domain, message):
    error = call(odoo, LINE, "search", domain)
    assert error["name"] == "builtins.ValueError"
    assert message in error["message"]


# ------------------------------------------------------- order, paging, fields


@pytest.mark.parametrize(
    "order,expected",
    [
        (None, ALL_LINES),
        ("id desc", ALL_LINES[::-1]),
        ("quantity desc", [106, 105, 104, 103, 100, 102, 101]),
        ("date desc, id", [104, 106, 105, 103, 102, 100, 101]),  # nulls first when descending
        ("date, id desc", [101, 100, 102, 103, 105, 106, 104]),  # nulls last when ascending
        ("partner_id, id desc", [106, 105, 101, 100, 103, 102, 104]),  # many2one by id
        ("write_date DESC, id ASC", [106, 105, 104, 103, 102, 100, 101]),
    ],
)
def test_order(odoo, order, expected):
    rows = call(odoo, LINE, "search_read", [], ["id"], 0, None, order)
    assert [r["id"] for r in rows] == expected


def test_offset_limit_and_key_paging(odoo):
    assert [r["id"] for r in call(odoo, LINE, "search_read", [], ["id"], 2, 2)] == [102, 103]
    assert [r["id"] for r in call(odoo, LINE, "search_read", [], ["id"], offset=5, limit=10)] == [105, 106]
    assert call(odoo, LINE, "search", [], 0, 2, "id desc") == [106, 105]
    # the job's paging: id > last, id asc, limit — until a short page
    pages, last = [], 0
    while True:
        page = call(odoo, LINE, "search_read", [("id", ">", last)] + LINE_DOMAIN, fields=["id"], limit=1, order="id asc")
        if not page:
            break
        pages.append([r["id"] for r in page])
        last = page[-1]["id"]
    assert pages == [[100], [102]]
    assert call(odoo, LINE, "search_count", LINE_DOMAIN) == 2
    assert call(odoo, LINE, "search_count", []) == 7
    assert call(odoo, LINE, "search_count", [("id", "in", [100, 101, 5])]) == 2


def test_fields_selection_and_read(odoo):
    rows = call(odoo, LINE, "search_read", [("id", "=", 105)], ["move_id", "quantity"])
    assert rows == [{"id": 105, "move_id": [999, "NF/0999"], "quantity": 5.0}]
    full = call(odoo, LINE, "search_read", [("id", "=", 101)])
    assert full == [next(r for r in DATASET[LINE] if r["id"] == 101)]
    assert call(odoo, LINE, "search_read", [("id", "=", 101)], []) == full
    # read keeps the asked order; ids that do not exist answer MissingError by default …
    assert call(odoo, LINE, "read", [105, 12345, 100], ["product_id"])["name"] == "odoo.exceptions.MissingError"
    # … or are skipped, as Odoo 17's ORM does, with missing_error off
    odoo.set_faults(missing_error=False)
    try:
        assert call(odoo, LINE, "read", [105, 12345, 100], ["product_id"]) == [
            {"id": 105, "product_id": WIDGET},
            {"id": 100, "product_id": WIDGET},
        ]
    finally:
        odoo.set_faults()
    assert call(odoo, "l10n_br_ciel_it_account.res.municipio", "search_read", []) == []  # no file: empty model
    fields = call(odoo, LINE, "fields_get", attributes=["type", "relation"])
    assert fields["move_id"] == {"type": "many2one", "relation": "account.move"}
    assert fields["quantity"] == {"type": "float"}


def test_unknown_field_and_order_are_value_errors(odoo):
    for args in ([[], ["quantity", "nope"]], [[], ["id"], 0, None, "nope desc"]):
        error = call(odoo, LINE, "search_read", *args)
        assert error["name"] == "builtins.ValueError"
        assert "Invalid field 'nope' on model 'account.move.line'" in error["message"]


# ---------------------------------------------------------------- protocols


def test_jsonrpc_common_service(odoo):
    assert jsonrpc(odoo.url, "common", "login", META["db"], META["login"], META["password"])["result"] == 7
    assert jsonrpc(odoo.url, "common", "login", META["db"], META["login"], META["api_key"])["result"] == 7
    assert jsonrpc(odoo.url, "common", "login", META["db"], META["login"], "wrong")["result"] is False
    assert jsonrpc(odoo.url, "common", "login", "other_db", META["login"], META["password"])["result"] is False
    assert jsonrpc(odoo.url, "common", "authenticate", META["db"], META["login"], META["password"], {})["result"] == 7
    version = jsonrpc(odoo.url, "common", "version")["result"]
    assert version["server_version"] == "17.0" and version["server_version_info"][:2] == [17, 0]
    assert version["protocol_version"] == 1


def test_jsonrpc_faults_have_odoo_shape(odoo):
    answer = jsonrpc(odoo.url, "object", "execute_kw", META["db"], META["uid"], "wrong", LINE, "search", [[]])
    assert answer["error"]["code"] == 200 and answer["error"]["message"] == "Odoo Server Error"
    data = answer["error"]["data"]
    assert data["name"] == "odoo.exceptions.AccessDenied"
    assert data["message"] == "Access Denied" and data["arguments"] == ["Access Denied"]
    assert "Traceback" in data["debug"]
    wrong_uid = jsonrpc(odoo.url, "object", "execute_kw", META["db"], 1, META["password"], LINE, "search", [[]])
    assert wrong_uid["error"]["data"]["name"] == "odoo.exceptions.AccessDenied"
    error = call(odoo, "no.such.model", "search_read", [])
    assert error["name"] == "builtins.KeyError" and error["message"] == "'no.such.model'"
    assert call(odoo, LINE, "write", [100], {"quantity": 1})["name"] == "odoo.exceptions.AccessError"
    assert call(odoo, LINE, "_private")["name"] == "odoo.exceptions.AccessError"
    assert call(odoo, LINE, "frobnicate")["name"] == "odoo.exceptions.UserError"
    assert call(odoo, LINE, "search_read", [], bogus=1)["name"] == "odoo.exceptions.UserError"


def test_xmlrpc(odoo):
    common = xmlrpc.client.ServerProxy(f"{odoo.url}/xmlrpc/2/common")
    assert common.version()["server_serie"] == "17.0"
    assert common.login(META["db"], META["login"], META["password"]) == 7
    assert common.authenticate(META["db"], META["login"], "wrong", {}) is False
    obj = xml_object(odoo)
    rows = obj.execute_kw(META["db"], 7, META["password"], LINE, "search_read", [LINE_DOMAIN], {"fields": ["product_id", "date"]})
    assert rows == [{"id": 100, "product_id": WIDGET, "date": "2024-01-10"}, {"id": 102, "product_id": GADGET, "date": "2024-02-01"}]
    assert obj.execute_kw(META["db"], 7, META["password"], LINE, "search_count", [[("product_id", "=", False)]]) == 1
    assert obj.execute_kw(META["db"], 7, META["password"], LINE, "read", [[104]], {"fields": ["partner_id"]}) == [
        {"id": 104, "partner_id": False}
    ]


@pytest.mark.parametrize(
    "password,model,fields,code,text",
    [
        ("wrong", LINE, ["id"], 3, "Access Denied"),
        (META["password"], "no.such.model", ["id"], 1, "'no.such.model'"),
        (META["password"], LINE, ["nope"], 1, "Invalid field 'nope' on model 'account.move.line'"),
    ],
)
def test_xmlrpc_faults(odoo, password, model, fields, code, text):
    with pytest.raises(xmlrpc.client.Fault) as info:
        xml_object(odoo).execute_kw(META["db"], 7, password, model, "search_read", [[]], {"fields": fields})
    assert info.value.faultCode == code
    assert text in info.value.faultString
    if code == 3:
        assert info.value.faultString == "Access Denied"
    else:
        assert "Traceback" in info.value.faultString


def test_json2(odoo):
    status, rows = json2(odoo.url, LINE, "search_read", {"domain": LINE_DOMAIN, "fields": ["quantity"], "limit": 1, "order": "id desc"})
    assert status == 200 and rows == [{"id": 102, "quantity": 1.0}]
    assert json2(odoo.url, LINE, "search", {"domain": [("id", ">", 104)]}) == (200, [105, 106])
    assert json2(odoo.url, LINE, "search_count", {"domain": LINE_DOMAIN}) == (200, 2)
    assert json2(odoo.url, MOVE, "read", {"ids": [11], "fields": ["state"]}) == (200, [{"id": 11, "state": "cancel"}])
    capitalized = {"Authorization": f"Bearer {META['api_key']}", "X-Odoo-Database": META["db"]}
    status, _ = json2(odoo.url, LINE, "search", {}, key=None, headers=capitalized)
    assert status == 200


@pytest.mark.parametrize(
    "model,method,body,key,headers,status,name,text",
    [
        (LINE, "search", {}, "bad-key", {}, 401, "odoo.exceptions.AccessDenied", "Access Denied"),
        (LINE, "search", {}, None, {}, 401, "odoo.exceptions.AccessDenied", "Access Denied"),
        (LINE, "search", {}, META["password"], {}, 401, "odoo.exceptions.AccessDenied", "Access Denied"),  # key only
        ("no.such.model", "search", {}, META["api_key"], {}, 404, "builtins.KeyError", "'no.such.model'"),
        (LINE, "frobnicate", {}, META["api_key"], {}, 404, "odoo.exceptions.UserError", "does not exist"),
        (LINE, "search_read", {"fields": ["nope"]}, META["api_key"], {}, 422, "builtins.ValueError", "Invalid field 'nope'"),
        (LINE, "search", {"domain": [("nope", "=", 1)]}, META["api_key"], {}, 422, "builtins.ValueError", "Invalid field 'nope'"),
        (LINE, "search", {"domain": ["|"]}, META["api_key"], {}, 422, "builtins.ValueError", "two operands"),
        (LINE, "search", {"bogus": 1}, META["api_key"], {}, 422, "odoo.exceptions.UserError", "bogus"),
        (LINE, "search", {}, META["api_key"], {"X-Odoo-Database": "other"}, 404, "werkzeug.exceptions.NotFound", "other"),
    ],
)
def test_json2_errors(odoo, model, method, body, key, headers, status, name, text):
    got_status, error = json2(odoo.url, model, method, body, key=key, headers=headers)
    assert got_status == status
    assert error["name"] == name and text in error["message"]
    assert error["arguments"] == [error["message"]] and error["context"] == {} and "debug" in error


def test_keep_alive_and_content_length(odoo):
    conn = http.client.HTTPConnection("127.0.0.1", int(odoo.url.rsplit(":", 1)[1]), timeout=5)
    body = json.dumps({"jsonrpc": "2.0", "method": "call", "params": {"service": "common", "method": "version", "args": []}, "id": 1})
    socks = []
    for _ in range(3):
        conn.request("POST", "/jsonrpc", body, {"Content-Type": "application/json"})
        resp = conn.getresponse()
        data = resp.read()
        assert resp.status == 200 and int(resp.headers["Content-Length"]) == len(data)
        socks.append(conn.sock)
    assert socks[0] is socks[1] is socks[2]  # one connection for all three
    conn.close()
    assert post(f"{odoo.url}/nowhere", b"{}")[0] == 404


# ------------------------------------------------------------ reload, stats


def test_reload_after_files_change(fresh):
    assert ids(fresh, []) == ALL_LINES
    lines = [dict(r, quantity=99.0) if r["id"] == 100 else r for r in DATASET[LINE] if r["id"] != 106]
    lines.append(_line(107, [10, "NF/0010"], ACME, WIDGET, 1.0, "2024-04-01", "2024-04-01 00:00:00"))
    (fresh.dataset / f"{LINE}.json").write_text(json.dumps(lines))
    assert ids(fresh, []) == ALL_LINES  # nothing changes until a reload
    status, raw = post(f"{fresh.url}/replay/reload", b"")
    assert status == 200 and json.loads(raw)["records"][LINE] == 7
    assert ids(fresh, []) == [100, 101, 102, 103, 104, 105, 107]
    assert call(fresh, LINE, "read", [100], ["quantity"]) == [{"id": 100, "quantity": 99.0}]
    # a broken file on disk: the reload fails, the previous data keeps serving
    (fresh.dataset / f"{MOVE}.json").write_text("[{")
    status, raw = post(f"{fresh.url}/replay/reload", b"")
    assert status == 500 and "not valid JSON" in json.loads(raw)["error"]
    assert ids(fresh, [("move_id.state", "=", "cancel")]) == [102]
    (fresh.dataset / "meta.json").write_text(json.dumps({**META, "password": "new"}))
    (fresh.dataset / f"{MOVE}.json").write_text(json.dumps(DATASET[MOVE]))
    fresh.reload()
    assert fresh.meta["password"] == "new"
    assert call(fresh, LINE, "search", [])["name"] == "odoo.exceptions.AccessDenied"


def test_stats(fresh):
    fresh.reset_stats()
    call(fresh, LINE, "search_read", [])
    call(fresh, LINE, "search_read", [])
    call(fresh, MOVE, "read", [10])
    json2(fresh.url, PARTNER, "search", {})
    jsonrpc(fresh.url, "common", "version")
    calls = {"account.move.line.search_read": 2, "account.move.read": 1, "common.version": 1, "res.partner.search": 1}
    expected = {"calls": calls, "requests": 5}
    assert fresh.stats() == expected
    with urllib.request.urlopen(f"{fresh.url}/replay/stats", timeout=5) as resp:
        assert json.loads(resp.read()) == expected  # control requests are not counted
    fresh.reset_stats()
    assert fresh.stats() == {"calls": {}, "requests": 0}


def test_bad_dataset_is_a_config_error(tmp_path):
    (tmp_path / f"{LINE}.json").write_text(json.dumps([{"quantity": 1.0}]))
    with pytest.raises(ConfigError, match="integer `id`"):
        ReplayServer(tmp_path)
    with pytest.raises(ConfigError, match="not a directory"):
        ReplayServer(tmp_path / "missing")
    with pytest.raises(TypeError, match="unknown replay fault"):
        ReplayServer(write_dataset(tmp_path / "ok"), explode_next=1)
    with ReplayServer(tmp_path / "ok") as busy:
        with pytest.raises(ConfigError, match="cannot listen"):
            ReplayServer(tmp_path / "ok", port=int(busy.url.rsplit(":", 1)[1])).start()


def test_null_in_dataset_is_sent_as_false_over_xmlrpc(tmp_path):
    data = {**DATASET, USER: [{"id": 2, "name": None, "write_date": None}]}
    with ReplayServer(write_dataset(tmp_path / "ds", data)) as server:
        assert xml_object(server).execute_kw(META["db"], 7, META["password"], USER, "read", [[2]]) == [
            {"id": 2, "name": False, "write_date": False}
        ]


# ------------------------------------------------------------------- faults


def test_fail_next_answers_503_html(fresh):
    fresh.set_faults(fail_next=2)
    for _ in range(2):
        status, body = post(f"{fresh.url}/jsonrpc", b"{}")
        assert status == 503 and b"<html>" in body
    assert ids(fresh, [("id", "=", 100)]) == [100]
    fresh.set_faults(fail_next=1, fail_status=502)
    assert post(f"{fresh.url}/json/2/{LINE}/search", b"{}")[0] == 502
    assert fresh.stats()["calls"] == {"account.move.line.search": 1}  # failed requests never reached "Odoo"


def test_timeout_next_hangs_then_answers(fresh):
    fresh.set_faults(timeout_next=1, hang_seconds=1.0)
    started = time.monotonic()
    with pytest.raises((TimeoutError, urllib.error.URLError)):
        jsonrpc(fresh.url, "common", "version", timeout=0.3)
    assert time.monotonic() - started < 1.0
    assert jsonrpc(fresh.url, "common", "version")["result"]["server_serie"] == "17.0"


def test_reset_next_closes_without_response(fresh):
    fresh.set_faults(reset_next=1)
    conn = http.client.HTTPConnection("127.0.0.1", int(fresh.url.rsplit(":", 1)[1]), timeout=5)
    with pytest.raises(ConnectionError):  # ConnectionResetError or RemoteDisconnected
        conn.request("POST", "/jsonrpc", b"{}", {"Content-Type": "application/json"})
        conn.getresponse().read()
    conn.close()
    assert ids(fresh, [("id", "=", 101)]) == [101]


def test_truncate_next_cuts_the_body(fresh):
    port = int(fresh.url.rsplit(":", 1)[1])
    body = json.dumps({"jsonrpc": "2.0", "method": "call", "id": 1, "params": {"service": "object", "method": "execute_kw",
                       "args": [META["db"], 7, META["password"], LINE, "search_read", [[]]]}})
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    conn.request("POST", "/jsonrpc", body)
    full = conn.getresponse().read()
    fresh.set_faults(truncate_next=1)
    conn.request("POST", "/jsonrpc", body)
    resp = conn.getresponse()
    assert int(resp.headers["Content-Length"]) == len(full)
    with pytest.raises(http.client.IncompleteRead) as info:
        resp.read()
    assert len(info.value.partial) == len(full) // 2
    conn.close()
    assert len(ids(fresh, [])) == 7


def test_short_page_next_drops_the_last_record(fresh):
    fresh.set_faults(short_page_next=1)
    assert call(fresh, LINE, "search", [], 0, 3) == [100, 101, 102]  # search is never shortened
    assert [r["id"] for r in call(fresh, LINE, "search_read", [], ["id"], 0, 3)] == [100, 101]
    assert [r["id"] for r in call(fresh, LINE, "search_read", [], ["id"], 0, 3)] == [100, 101, 102]


def test_fault_match_latency_and_control_endpoint(fresh):
    status, raw = post(f"{fresh.url}/replay/faults", json.dumps({"fail_next": 1, "fault_match": PARTNER}).encode())
    assert status == 200 and json.loads(raw)["fail_next"] == 1
    assert ids(fresh, [("id", "=", 100)]) == [100]  # a line call does not match
    assert post(f"{fresh.url}/json/2/{PARTNER}/search", b"{}", {"Authorization": f"bearer {META['api_key']}"})[0] == 503
    assert json2(fresh.url, PARTNER, "search", {}) == (200, [1, 2])
    assert post(f"{fresh.url}/replay/faults", b'{"explode_next": 1}')[0] == 400
    fresh.set_faults(latency=0.2)
    started = time.monotonic()
    assert ids(fresh, [("id", "=", 100)]) == [100]
    assert time.monotonic() - started >= 0.2
    assert fresh.faults()["latency"] == 0.2


def test_serve_forever_reloads_on_sighup_and_stops_on_sigterm(tmp_path):
    dataset = write_dataset(tmp_path / "ds")
    code = "import sys; from faturamento_batch.replay import serve_forever; serve_forever(sys.argv[1], port=0)"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-c", code, str(dataset)], stderr=subprocess.PIPE, text=True, env=env)
    try:
        line = proc.stderr.readline()
        assert "db='odoo_test'" in line and "login='bot@example.com'" in line and META["password"] not in line
        url = line.split(" at ", 1)[1].split()[0]
        server = type("S", (), {"url": url})()
        assert ids(server, []) == ALL_LINES
        (dataset / f"{LINE}.json").write_text(json.dumps(DATASET[LINE][:1]))
        proc.send_signal(signal.SIGHUP)
        assert "reloaded" in proc.stderr.readline()
        assert ids(server, []) == [106]
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=5) == 0
        assert "stopped" in proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()

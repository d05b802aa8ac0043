"""The business rules file (DESIGN §10): defaults, precedence, refusals, the shipped example."""

from __future__ import annotations

import tomllib
from datetime import date
from pathlib import Path

import pytest

from faturamento_batch.cli import build_parser, main
from faturamento_batch.cli import _settings as cli_settings
from faturamento_batch.config import Rules, load_rules
from faturamento_batch.errors import ConfigError

EXAMPLE = Path(__file__).resolve().parent.parent / "deploy" / "faturamento.toml"
README = Path(__file__).resolve().parent.parent / "README.md"


def test_defaults_are_productions():
    rules = load_rules(env={})
    assert rules.invoice_types == ("venda", "bonificacao", "industrializacao", "exportacao", "venda-industrializacao")
    assert rules.excluded_companies == (5,)
    assert rules.pallet_codes == ("208000012",)
    assert rules.time_zone == "America/Sao_Paulo"
    assert rules.stock_catch_up_days == 7 and rules.stock_since is None


def test_the_example_file_sets_every_key_to_its_default():
    text = EXAMPLE.read_text()
    assert load_rules(EXAMPLE, env={}) == Rules()
    # every key appears (stock_since commented: its default is "the first run's day")
    for key in Rules().as_dict():
        assert f"{key} =" in text, key
    uncommented = "\n".join(line.lstrip("# ") if line.startswith("# stock_since") else line for line in text.splitlines())
    assert load_rules(_write(EXAMPLE.parent.parent / ".tmp-example.toml", uncommented), env={}).stock_since == date(2026, 8, 1)
    (EXAMPLE.parent.parent / ".tmp-example.toml").unlink()


def test_the_readme_documents_every_key():
    section = README.read_text().split("## Configuration", 1)[1].split("\n## ", 1)[0]
    for key in Rules().as_dict():
        assert f"`{key}`" in section, key


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_precedence_defaults_file_environment_flags(tmp_path):
    file = _write(tmp_path / "r.toml", 'time_zone = "UTC"\nstock_catch_up_days = 3\nexcluded_companies = [5, 9]\n')
    assert load_rules(file, env={}).time_zone == "UTC"
    env = {"FATURAMENTO_CONFIG": str(file), "FATURAMENTO_STOCK_CATCH_UP_DAYS": "10"}
    rules = load_rules(None, env=env)
    assert (rules.time_zone, rules.stock_catch_up_days, rules.excluded_companies) == ("UTC", 10, (5, 9))
    rules = load_rules(None, env=env, flags={"stock_catch_up_days": 1, "time_zone": None})
    assert (rules.time_zone, rules.stock_catch_up_days) == ("UTC", 1)
    assert load_rules(None, env={"FATURAMENTO_INVOICE_TYPES": "venda, exportacao"}).invoice_types == ("venda", "exportacao")
    assert load_rules(None, env={"FATURAMENTO_STOCK_SINCE": "2026-07-01"}).stock_since == date(2026, 7, 1)


@pytest.mark.parametrize(
    "text, key",
    [
        ("invoice_type = ['venda']\n", "invoice_type"),  # unknown (a typo)
        ("excluded_companies = ['5']\n", "excluded_companies"),
        ("excluded_companies = 5\n", "excluded_companies"),
        ("invoice_types = []\n", "invoice_types"),
        ("stock_catch_up_days = '7'\n", "stock_catch_up_days"),
        ("stock_catch_up_days = -1\n", "stock_catch_up_days"),
        ("stock_since = '2026-08-01'\n", "stock_since"),
        ("stock_since = 2026-08-01T10:00:00\n", "stock_since"),
        ("time_zone = 'UTC -c work_mem=1GB'\n", "time_zone"),
        ("time_zone = 'America/Sao_Paolo'\n", "time_zone"),  # a typo
        ("[odoo]\ninvoice_types = ['venda']\n", "odoo"),
    ],
)
def test_bad_keys_and_types_are_refused_naming_the_key(tmp_path, text, key):
    file = _write(tmp_path / "r.toml", text)
    with pytest.raises(ConfigError, match=f"`{key}`"):
        load_rules(file, env={})


def test_cli_exits_2_naming_the_key(tmp_path, monkeypatch, capsys):
    file = _write(tmp_path / "r.toml", "stock_catch_up_dayz = 7\n")
    assert main(["sync", "--config", str(file), "--source", str(tmp_path)]) == 2
    assert "stock_catch_up_dayz" in capsys.readouterr().err
    monkeypatch.setenv("FATURAMENTO_EXCLUDED_COMPANIES", "five")
    assert main(["sync", "--source", str(tmp_path)]) == 2
    assert main(["sync", "--config", str(tmp_path / "missing.toml"), "--source", str(tmp_path)]) == 2


def test_cli_flags_win_over_file_and_environment(tmp_path, monkeypatch):
    file = _write(tmp_path / "r.toml", 'time_zone = "UTC"\npallet_codes = ["1"]\n')
    monkeypatch.setenv("FATURAMENTO_PALLET_CODES", "2,3")
    args = build_parser().parse_args(["sync", "--config", str(file), "--time-zone", "America/Manaus",
                                      "--excluded-companies", "5,7", "--stock-since", "2026-08-01"])  # fmt: skip
    rules = cli_settings(args).rules
    assert rules == Rules(time_zone="America/Manaus", pallet_codes=("2", "3"), excluded_companies=(5, 7),
                          stock_since=date(2026, 8, 1))  # fmt: skip
    assert rules.as_dict()["stock_since"] == "2026-08-01"
    assert tomllib.loads(file.read_text())  # the file itself stays valid TOML

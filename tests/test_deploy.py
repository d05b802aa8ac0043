"""The deploy recipes, validated offline: the CronJob against the Kubernetes schema
(kubernetes-validate ships the schemas), the systemd units with `systemd-analyze verify`,
the Dockerfile parsed, the alert rules parsed with their expressions."""

from __future__ import annotations

import configparser
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from faturamento_batch.cli import build_parser

DEPLOY = Path(__file__).resolve().parent.parent / "deploy"
SYSTEMD = DEPLOY / "systemd"


def _cronjob() -> dict:
    return yaml.safe_load((DEPLOY / "kubernetes" / "cronjob.yaml").read_text())


@pytest.mark.parametrize("version", ["1.31.0", "1.37.0"])  # podFailurePolicy is GA since 1.31
def test_cronjob_is_valid_against_the_kubernetes_schema(version):
    import kubernetes_validate

    kubernetes_validate.validate(_cronjob(), version, strict=True)  # raises on any error


def test_the_validator_rejects_a_misspelt_field():
    import kubernetes_validate
    from kubernetes_validate.utils import ValidationError

    bad = _cronjob()
    bad["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["resource"] = {}
    with pytest.raises(ValidationError, match="resource"):
        kubernetes_validate.validate(bad, "1.37.0", strict=True)


def test_cronjob_schedule_secrets_limits_and_exit_codes():
    cj = _cronjob()
    assert cj["kind"] == "CronJob" and cj["spec"]["schedule"] == "*/15 * * * *"
    assert cj["spec"]["concurrencyPolicy"] == "Forbid"
    job = cj["spec"]["jobTemplate"]["spec"]
    pod = job["template"]["spec"]
    (container,) = pod["containers"]
    assert pod["restartPolicy"] == "Never" and pod["securityContext"]["runAsNonRoot"] is True
    # No secret in the manifest itself: database URL and Odoo credentials only from the Secret.
    assert container["envFrom"] == [{"secretRef": {"name": "faturamento-batch"}}]
    inline = {e["name"] for e in container.get("env", [])}
    assert not inline & {"FATURAMENTO_DATABASE_URL", "ODOO_PASSWORD", "ODOO_API_KEY"}
    # 1/2/3 fail the Job at once; 75 is left to backoffLimit, i.e. retried.
    fail_job = [r for r in job["podFailurePolicy"]["rules"] if r["action"] == "FailJob"]
    assert fail_job[0]["onExitCodes"] == {"containerName": "sync", "operator": "In", "values": [1, 2, 3]}
    assert job["backoffLimit"] >= 1
    # Request and limit fit the peak measured for a 100k-line first sync, as the README quotes it.
    import re

    readme = (DEPLOY.parent / "README.md").read_text()
    measured_mb = int(re.search(r"peaks at \*\*(\d+) MB\*\*", readme).group(1))
    mib = {"Mi": 1, "Gi": 1024}
    limits, requests = container["resources"]["limits"], container["resources"]["requests"]
    request_mb, limit_mb = (int(q[:-2]) * mib[q[-2:]] * 1.048576 for q in (requests["memory"], limits["memory"]))
    assert measured_mb < request_mb and 2 * measured_mb < limit_mb, (measured_mb, request_mb, limit_mb)
    # The arguments are ones the CLI accepts.
    args = build_parser().parse_args(container["args"])
    assert args.command == "sync" and args.log_format == "json"


def _unit(name: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None, comment_prefixes=("#", ";"))
    parser.optionxform = str  # systemd keys are case-sensitive
    parser.read_string((SYSTEMD / name).read_text())
    return parser


def test_units_say_what_the_exit_codes_mean():
    service = _unit("faturamento-batch.service")["Service"]
    assert service["Type"] == "oneshot"
    assert service["EnvironmentFile"] == "/etc/faturamento-batch/faturamento-batch.env"
    assert service["SuccessExitStatus"].split() == ["3"]  # 75 is not a success: retries exhausted → failed
    assert service["Restart"] == "on-failure" and service["RestartPreventExitStatus"].split() == ["1", "2"]
    exec_start = service["ExecStart"].split()
    args = build_parser().parse_args(exec_start[1:])
    assert args.command == "sync" and args.metrics_file.name.endswith(".prom")
    timer = _unit("faturamento-batch.timer")["Timer"]
    assert timer["OnCalendar"] == "*:0/15" and timer["Persistent"] == "true"
    env = (SYSTEMD / "faturamento-batch.env.example").read_text()
    assert "FATURAMENTO_DATABASE_URL=" in env and "ODOO_API_KEY=" in env


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed on this machine")
def test_systemd_analyze_verify_accepts_the_units(tmp_path):
    # verify checks that ExecStart's program exists: point it at this venv's installed command.
    command = Path(sys.executable).parent / "faturamento-batch"
    assert command.exists()
    for name in ("faturamento-batch.service", "faturamento-batch.timer"):
        text = (SYSTEMD / name).read_text().replace("/opt/faturamento-batch/bin/faturamento-batch", str(command))
        (tmp_path / name).write_text(text)
    done = subprocess.run(["systemd-analyze", "verify", "faturamento-batch.service", "faturamento-batch.timer"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=60)  # fmt: skip
    # A bad setting is a warning on stderr with exit 0, so stderr must be empty too.
    assert done.returncode == 0 and done.stderr.strip() == "", done.stderr
    # And the timer fires every 15 minutes.
    cal = subprocess.run(["systemd-analyze", "calendar", "--iterations=3", "*:0/15"], capture_output=True, text=True, timeout=30)
    minutes = [line.split()[-2].split(":")[1] for line in cal.stdout.splitlines() if "Next elapse" in line or "Iter." in line]
    assert len(minutes) == 3 and {int(m) % 15 for m in minutes} == {0}, cal.stdout


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed on this machine")
def test_systemd_analyze_verify_catches_a_bad_unit(tmp_path):
    bad = (SYSTEMD / "faturamento-batch.service").read_text() + "\nRestartForceExitStatus=75\n"
    (tmp_path / "faturamento-batch.service").write_text(bad.replace("/opt/faturamento-batch/bin/faturamento-batch", "/bin/true"))
    done = subprocess.run(["systemd-analyze", "verify", "faturamento-batch.service"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert done.returncode != 0 or done.stderr.strip()  # oneshot + RestartForceExitStatus is refused


def test_dockerfile_structure():
    from dockerfile_parse import DockerfileParser

    parser = DockerfileParser(path=str(DEPLOY / "Dockerfile"))
    instructions = [i for i in parser.structure if i["instruction"] != "COMMENT"]
    known = {"FROM", "ENV", "RUN", "WORKDIR", "COPY", "USER", "ENTRYPOINT", "CMD", "ARG", "LABEL"}
    assert {i["instruction"] for i in instructions} <= known
    froms = [i["value"] for i in instructions if i["instruction"] == "FROM"]
    assert all(f.split()[0].startswith("python:") and "-slim" in f.split()[0] for f in froms), froms
    final = instructions[max(n for n, i in enumerate(instructions) if i["instruction"] == "FROM"):]
    users = [i["value"] for i in final if i["instruction"] == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0")  # the run stage drops root
    entry = next(i for i in final if i["instruction"] == "ENTRYPOINT")
    assert yaml.safe_load(entry["value"]) == ["faturamento-batch"]  # exec form (a JSON list)
    cmd = yaml.safe_load(next(i for i in final if i["instruction"] == "CMD")["value"])
    assert build_parser().parse_args(cmd).command == "sync"
    # What the build copies exists (the context is the repository root).
    for i in instructions:
        if i["instruction"] == "COPY" and "--from" not in i["value"]:
            *sources, _ = i["value"].split()
            for src in sources:
                assert (DEPLOY.parent / src).exists(), src
    assert not any(i["instruction"] == "ADD" for i in instructions)


def test_alert_rules_parse_and_alert_on_the_metrics():
    from faturamento_batch.metrics import HELP, PREFIX

    doc = yaml.safe_load((DEPLOY / "prometheus" / "alerts.yaml").read_text())
    rules = {r["alert"]: r for g in doc["groups"] for r in g["rules"]}
    assert rules["FaturamentoBatchNoSuccessForAnHour"]["expr"] == (
        "time() - faturamento_batch_last_success_timestamp_seconds > 3600"
    )
    assert rules["FaturamentoBatchFailingRepeatedly"]["expr"] == "faturamento_batch_consecutive_failures >= 3"
    known = {f"{PREFIX}_{name}" for name in HELP}
    for rule in rules.values():
        assert rule["labels"]["severity"] in ("critical", "warning") and rule["annotations"]["summary"]
        for word in rule["expr"].replace("(", " ").replace(")", " ").split():
            if word.startswith(PREFIX):
                assert word in known, word  # the rules name metrics the job really writes

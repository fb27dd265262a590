"""`overspill simulate` as a user runs it (a subprocess): bad input gives exit code 2 and a message naming the
file, the line and the fix; silent wrong answers are refused or warned; defaults show in every --help."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from overspill import __version__

OVERSPILL = str(Path(sys.executable).parent / "overspill")

POLICY = """\
apiVersion: overspill.dev/v1alpha1
kind: BurstPolicy
metadata: {name: vllm}
spec:
  workloadRef: {name: vllm}
  metric:
    prometheus: {query: q}
    targetPerReplica: 10
  maxReplicas: 40
  targets: [{name: aws}]
---
apiVersion: overspill.dev/v1alpha1
kind: BurstTarget
metadata: {name: aws}
spec:
  kubeconfigSecretRef: {name: k, namespace: overspill-system}
  costPerReplicaHour: 2.5
"""
METRIC = "t_seconds,value\n0,5\n10,150\n20,150\n30,0\n"


def run(tmp_path: Path, *args: str, policy: str = POLICY, trace: str = METRIC) -> subprocess.CompletedProcess[str]:
    tmp_path.mkdir(parents=True, exist_ok=True)
    (tmp_path / "policy.yaml").write_text(policy)
    (tmp_path / "trace.csv").write_text(trace)
    base = ["simulate", "--policy", str(tmp_path / "policy.yaml"), "--trace", str(tmp_path / "trace.csv")]
    return subprocess.run([OVERSPILL, *base, *args], capture_output=True, text=True, timeout=120, check=False)


def run_all(root: Path, cases: dict[str, dict[str, str]]) -> dict[str, subprocess.CompletedProcess[str]]:
    """Many independent runs at once: each is mostly interpreter start-up, so the suite stays fast."""
    with ThreadPoolExecutor(max_workers=8) as pool:
        futures = {
            name: pool.submit(run, root / name.replace(" ", "-"), "--primary-capacity", "8", **files)
            for name, files in cases.items()
        }
        return {name: f.result() for name, f in futures.items()}


TRACE_CASES = [
    ("empty", "", None, "the trace is empty"),
    ("comments only", "# just a comment\n", None, "the trace is empty"),
    ("header only", "t_seconds,value\n", 1, "a header and no rows"),
    ("short row", "t_seconds,value\n0,1\n10\n", 3, "expected 2 columns (t_seconds,value), found 1"),
    ("inf", "t_seconds,value\n0,inf\n", 2, "value is 'inf'"),
    ("nan", "t_seconds,value\n0,1\n5,nan\n", 3, "value is 'nan'"),
    ("not a number", "t_seconds,value\n0,lots\n", 2, "value 'lots' is not a number"),
    ("negative queue", "t_seconds,value\n0,-4\n", 2, "value -4 is negative"),
    ("unknown header", "time,queue\n0,1\n", 1, "unknown trace header"),
    (
        "bad timestamp",
        "TIMESTAMP,ContextTokens,GeneratedTokens\nyesterday,1,2\n",
        2,
        "TIMESTAMP 'yesterday' is not a date and time",
    ),
    (
        "fractional tokens",
        "TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:17:03.98,1.5,2\n",
        2,
        "ContextTokens '1.5' is not a whole number",
    ),
]


TRACE_IDS = [c[0] for c in TRACE_CASES]


@pytest.fixture(scope="module")
def trace_outcomes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, subprocess.CompletedProcess[str]]:
    return run_all(tmp_path_factory.mktemp("traces"), {c[0]: {"trace": c[1]} for c in TRACE_CASES})


@pytest.mark.parametrize(
    ("name", "line", "message"), [(c[0], *c[2:]) for c in TRACE_CASES], ids=[c[0] for c in TRACE_CASES]
)
def test_bad_trace_names_file_line_and_fix(
    trace_outcomes: dict[str, subprocess.CompletedProcess[str]], name: str, line: int | None, message: str
) -> None:
    r = trace_outcomes[name]
    assert r.returncode == 2, r.stderr
    where = f"trace.csv:{line}: " if line is not None else "trace.csv: "
    assert where in r.stderr and message in r.stderr and "fix:" in r.stderr, r.stderr
    assert "Traceback" not in r.stderr
    assert "docs/" not in r.stderr, "a pip-installed user has no docs/ folder: point at `overspill reference`"


def _policy(**edits: str) -> str:
    text = POLICY
    for old, new in edits.items():
        assert old in text
        text = text.replace(old, new)
    return text


POLICY_CASES = [
    ("yaml syntax error", _policy(**{"maxReplicas: 40": "maxReplicas: [40"}), "policy.yaml:", "not valid YAML"),
    ("a list", "- a\n- b\n", "policy.yaml:1:", "a document is a list"),
    ("a string", "just text\n", "policy.yaml:1:", "a document is a str"),
    (
        "target without metadata",
        _policy(**{"kind: BurstTarget\nmetadata: {name: aws}\n": "kind: BurstTarget\n"}),
        "policy.yaml:12:",
        "BurstTarget has no metadata.name",
    ),
    (
        "spec not a mapping",
        _policy(
            **{
                "spec:\n  kubeconfigSecretRef: {name: k, namespace: overspill-system}\n  costPerReplicaHour: 2.5\n": (
                    'spec: "oops"\n'
                )
            }
        ),
        "policy.yaml:15:",
        "BurstTarget aws: spec is a str",
    ),
    (
        "wrong apiVersion",
        _policy(
            **{
                "apiVersion: overspill.dev/v1alpha1\nkind: BurstPolicy": (
                    "apiVersion: overspill.dev/v1\nkind: BurstPolicy"
                )
            }
        ),
        "policy.yaml:1:",
        "set apiVersion: overspill.dev/v1alpha1",
    ),
    (
        "two policies",
        POLICY + "---\n" + POLICY.split("---\n", maxsplit=1)[0].replace("name: vllm}", "name: other}"),
        "policy.yaml:",
        "2 BurstPolicies: vllm (line 1), other (line 19)",
    ),
    (
        "a string where the API server wants an integer",
        _policy(**{"maxReplicas: 40": 'maxReplicas: "40"'}),
        "policy.yaml:9: spec.maxReplicas",
        "valid integer",
    ),
    ("no policy", POLICY.split("---\n")[1], "policy.yaml:", "no BurstPolicy document found"),
]


@pytest.mark.parametrize(
    ("policy", "where", "message"), [c[1:] for c in POLICY_CASES], ids=[c[0] for c in POLICY_CASES]
)
def test_bad_policy_file_names_file_line_and_fix(tmp_path: Path, policy: str, where: str, message: str) -> None:
    r = run(tmp_path, "--primary-capacity", "8", policy=policy)
    assert r.returncode == 2, r.stderr
    assert where in r.stderr and message in r.stderr and "fix:" in r.stderr, r.stderr
    assert "Traceback" not in r.stderr
    assert "docs/" not in r.stderr, "a pip-installed user has no docs/ folder: point at `overspill reference`"


def test_every_failing_rule_is_reported_at_once(tmp_path: Path) -> None:
    policy = _policy(**{"maxReplicas: 40": "maxReplicas: 4\n  minReplicas: 6\n  primary: {maxReplicas: 9}"})
    r = run(tmp_path, "--primary-capacity", "8", policy=policy)
    assert r.returncode == 2
    assert "spec.minReplicas must be less than or equal to spec.maxReplicas" in r.stderr
    assert "spec.primary.maxReplicas must not exceed spec.maxReplicas" in r.stderr


def test_a_target_missing_from_the_file_is_warned(tmp_path: Path) -> None:
    r = run(tmp_path, "--primary-capacity", "8", policy=POLICY.split("---\n", maxsplit=1)[0])
    assert r.returncode == 0, r.stderr
    assert "warning:" in r.stderr and "target 'aws' has no BurstTarget document" in r.stderr


def test_no_primary_capacity_is_warned(tmp_path: Path) -> None:
    r = run(tmp_path)
    assert r.returncode == 0
    assert "the simulated primary is unlimited, so nothing ever bursts; pass --primary-capacity N" in r.stderr
    assert "unlimited" not in run(tmp_path, "--primary-capacity", "8").stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--step", "0"], "argument --step: '0' is not a positive duration"),
        (["--step", "-1"], "argument --step: '-1' is not a positive duration"),
        (["--primary-capacity", "-3"], "argument --primary-capacity: -3 must be >= 0"),
        (["--slo-target", "99"], "argument --slo-target: 99 must be a share in (0, 1]"),
        (["--startup", "azure=10s"], "--startup names 'azure', which is neither 'primary' nor a target"),
        (["--metric", "load"], "--metric load needs a request log: a metric trace is the metric itself"),
        (["--metric", "rate"], "argument --metric: invalid choice: 'rate'"),
    ],
)
def test_bad_options_are_refused(tmp_path: Path, args: list[str], message: str) -> None:
    r = run(tmp_path, "--primary-capacity", "8", *args) if "--primary-capacity" not in args else run(tmp_path, *args)
    assert r.returncode == 2, r.stderr
    assert message in r.stderr, r.stderr


def test_a_trace_too_long_for_its_step_is_refused_fast(tmp_path: Path) -> None:
    r = run(tmp_path, "--primary-capacity", "8", trace="t_seconds,value\n0,1\n10,2\n1e9,3\n")
    assert r.returncode == 2
    assert "1,000,000,001 steps of 1 s, more than 20,000,000" in r.stderr and "use --step" in r.stderr


def test_progress_bar_on_request(tmp_path: Path) -> None:
    r = run(tmp_path, "--primary-capacity", "8", "--progress", "always")
    assert r.returncode == 0
    assert "replaying overspill" in r.stderr
    assert "replaying" not in run(tmp_path, "--primary-capacity", "8").stderr  # not a terminal: no bar


def test_json_has_a_schema_version_and_one_naming(tmp_path: Path) -> None:
    r = run(tmp_path, "--primary-capacity", "8", "--output", "json")
    assert r.returncode == 0, r.stderr
    *steps, last = [json.loads(line) for line in r.stdout.splitlines()]
    assert last["schema_version"] == 2
    keys = set(last["summary"]) | {k for s in steps for k in s}
    assert not [k for k in keys if k.endswith("_s")], keys
    assert {"t_seconds", "primary_ready_replicas", "target_replicas"} <= set(steps[0])
    compare = run(tmp_path, "--primary-capacity", "8", "--output", "json", "--compare")
    table = json.loads(compare.stdout)
    assert table["schema_version"] == 2
    assert set(table["comparison"]) == {"overspill", "primary-only", "keda-like", "static-overflow"}
    assert "mean_latency_seconds" in table["comparison"]["overspill"]


def test_primary_cost_makes_primary_only_not_free(tmp_path: Path) -> None:
    r = run(
        tmp_path, "--primary-capacity", "8", "--output", "json", "--strategy", "primary-only", "--primary-cost", "2"
    )
    summary = json.loads(r.stdout.splitlines()[-1])["summary"]
    assert summary["cost"]["primary"] > 0
    assert summary["cost"]["primary"] == pytest.approx(summary["replica_seconds"]["primary"] / 3600 * 2, abs=1e-3)


def test_compare_without_a_primary_cost_is_warned(tmp_path: Path) -> None:
    """Without --primary-cost the primary's replica-hours cost 0, so primary-only would look free in the table."""
    r = run(tmp_path, "--primary-capacity", "8", "--compare")
    assert r.returncode == 0, r.stderr
    assert "the primary's replica-hours cost 0 in total_cost: pass --primary-cost" in r.stderr
    assert "--primary-cost" not in run(tmp_path, "--primary-capacity", "8", "--compare", "--primary-cost", "2").stderr


def test_output_into_a_closed_pipe_ends_quietly() -> None:
    """`overspill simulate ... | head`: the reader leaves early; no "error: : Broken pipe" on the terminal."""
    root = Path(__file__).resolve().parents[2]
    args = ["--policy", str(root / "manifests/examples/inference-policy.yaml")]
    args += ["--trace", str(root / "tests/data/azure-code-queue-sample.csv"), "--primary-capacity", "8"]
    proc = subprocess.Popen(
        [OVERSPILL, "simulate", *args, "--output", "json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.readline()
    proc.stdout.close()  # as `head -1` does, long before the ~700 kB of steps are written
    stderr = proc.stderr.read().decode()
    assert proc.wait(60) == 141, stderr  # 128 + SIGPIPE, as a C tool killed by it
    assert stderr == ""


@pytest.mark.parametrize("command", ["simulate", "tune"])
def test_plot_without_matplotlib_is_refused_before_the_replay(tmp_path: Path, command: str) -> None:
    """Without the [plot] extra, say so at once (exit 2, how to install it), not after a long replay or search."""
    shim = tmp_path / "shim/matplotlib"
    shim.mkdir(parents=True)
    (shim / "__init__.py").write_text("raise ImportError('no matplotlib here')\n")
    (tmp_path / "policy.yaml").write_text(POLICY)
    (tmp_path / "trace.csv").write_text(METRIC)
    args = ["--policy", str(tmp_path / "policy.yaml"), "--trace", str(tmp_path / "trace.csv")]
    r = subprocess.run(
        [OVERSPILL, command, *args, "--primary-capacity", "8", "--plot", str(tmp_path / "out.png")],
        env={**os.environ, "PYTHONPATH": str(tmp_path / "shim")},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert r.returncode == 2, r.stderr
    assert "--plot needs matplotlib" in r.stderr and "pip install '.[plot]'" in r.stderr, r.stderr
    assert r.stdout == "" and not (tmp_path / "out.png").exists()


def test_version() -> None:
    r = subprocess.run([OVERSPILL, "--version"], capture_output=True, text=True, check=False)
    assert (r.returncode, r.stdout.strip()) == (0, f"overspill {__version__}")


@pytest.mark.parametrize(
    ("command", "shown"),
    [
        ("simulate", ["--step STEP", "(default: 1.0)", "(default: 0.99)", "(default: overspill)"]),
        # a default of 0 is a default too (0.0 == False must not hide it)
        ("simulate", ["cost of a primary replica-hour (default: 0.0)"]),
        ("tune", ["cost of a primary replica-hour (default: 0.0)", "(default: 60.0)", "(default: 1)"]),
        ("run", ["(default: 9090)", "(default: overspill)", "(default: http://0.0.0.0:8080/healthz)"]),
        ("crds", ["(default: crds)"]),
        ("reference", ["(default: auto)"]),
    ],
)
def test_defaults_shown_in_every_help(command: str, shown: list[str]) -> None:
    r = subprocess.run([OVERSPILL, command, "--help"], capture_output=True, text=True, check=False)
    assert r.returncode == 0
    text = " ".join(r.stdout.split())  # argparse wraps lines
    for fragment in shown:
        assert fragment in text, (fragment, text)
    assert "(default: None)" not in text


def test_sample_trace_in_the_repo_simulates() -> None:
    root = Path(__file__).resolve().parents[2]
    r = subprocess.run(
        [
            OVERSPILL,
            "simulate",
            "--policy",
            str(root / "manifests/examples/inference-policy.yaml"),
            "--trace",
            str(root / "tests/data/azure-code-queue-sample.csv"),
            "--primary-capacity",
            "8",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert r.returncode == 0, r.stderr
    assert "decisions over" in r.stdout

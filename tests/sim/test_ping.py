"""The ping scenario and the command line around it."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import pytest

import sim.scenarios.ping as ping
from tests.sim.helpers import match_text, run_cli

QUICK = ["ping", "--nodes", "3", "--duration", "4", "--concurrency", "2"]


def figure(output: str, pattern: str) -> int:
    return int(match_text(output, pattern))


def test_list_names_the_scenarios() -> None:
    status, output = run_cli("list")
    assert status == 0
    assert re.search(r"^ping\s+echo and pinger", output, re.MULTILINE)


def test_ping_without_faults_answers_every_ask() -> None:
    status, output = run_cli(*QUICK, "--faults", "none", "--seed", "4")
    assert status == 0, output
    asks_ok = figure(output, r"asks\s+ok (\d+)")
    assert asks_ok > 100
    assert figure(output, r"timed out (\d+)") == 0
    assert figure(output, r"failed (\d+)") == 0
    sent = figure(output, r"sent (\d+)")
    delivered = figure(output, r"delivered (\d+)")
    assert figure(output, r"dropped (\d+)") == 0
    # Every ask is two frames, every tell one; a few are still in flight at the end.
    assert delivered <= sent <= delivered + 3 * 2 * 2
    assert delivered >= 2 * asks_ok
    assert re.search(r"digest\s+[0-9a-f]{64}", output)
    assert re.search(r"speed [\d.]+x", output)
    assert "crashes 0  restarts 0" in output


def test_ping_under_faults_counts_crashes_and_losses() -> None:
    status, output = run_cli(*QUICK, "--duration", "20", "--seed", "3", "--faults", "crashes")
    assert status == 0, output
    crashes = figure(output, r"crashes (\d+)")
    assert crashes >= 1
    assert figure(output, r"restarts (\d+)") == crashes
    assert figure(output, r"timed out (\d+)") > 0


def test_a_replayed_plan_is_applied(tmp_path: Path) -> None:
    plan = tmp_path / "plan.txt"
    plan.write_text("0.5 crash n2\n1.0 restart n2\n1.5 partition n1|n2,n3\n2.0 heal-all\n")
    trace_file = tmp_path / "trace.txt"
    status, output = run_cli(
        *QUICK, "--duration", "8", "--plan", str(plan), "--print-plan", "--trace-file", str(trace_file)
    )
    assert status == 0, output
    assert "crashes 1  restarts 1" in output
    assert "  0.5 crash n2" in output
    trace = trace_file.read_text()
    assert "fault partition n1|n2,n3" in trace
    digest = re.search(r"digest\s+([0-9a-f]{64})", output)
    assert digest and hashlib.sha256(trace.encode()).hexdigest() == digest.group(1)


def test_twice_checks_determinism() -> None:
    status, output = run_cli(*QUICK, "--duration", "2", "--twice")
    assert status == 0, output
    assert "NONDETERMINISTIC" not in output


@pytest.mark.parametrize(
    ("arguments", "complaint"),
    [
        (["--nodes", "0"], "--nodes must be at least 1"),
        (["--duration", "-1"], "--duration must be a positive"),
        (["--faults", "meteor"], "unknown fault profile"),
        (["--plan", "/nonexistent/plan"], "No such file"),
        (["--seeds", "5-1"], "bad seed range"),
        (["--concurrency", "0"], "--concurrency must be at least 1"),
        (["--seeds", "1-2", "--trace"], "use --seed, not --seeds"),
    ],
)
def test_bad_options_exit_2_with_a_message(
    arguments: list[str], complaint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    status, _ = run_cli(*QUICK, *arguments)
    assert status == 2
    assert complaint in capsys.readouterr().err


def test_a_bad_plan_file_names_its_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    plan = tmp_path / "plan.txt"
    plan.write_text("0.5 crash n2\n1.0 crash n9\n")
    status, _ = run_cli(*QUICK, "--plan", str(plan))
    assert status == 2
    assert "unknown node(s) n9" in capsys.readouterr().err
    plan.write_text("0.5 crash\n")
    assert run_cli(*QUICK, "--plan", str(plan))[0] == 2
    assert "line 1" in capsys.readouterr().err


def test_a_wrong_reply_is_a_violation_reported_with_seed_step_and_trace(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    original = ping.Echo.receive

    async def off_by_one(self: ping.Echo, message: object) -> object:
        reply = await original(self, message)
        if isinstance(reply, ping.Pong) and reply.seq == 40:
            return ping.Pong(reply.seq + 1, reply.responder)
        return reply

    monkeypatch.setattr(ping.Echo, "receive", off_by_one)
    status, output = run_cli(*QUICK, "--faults", "none", "--seed", "9", "--trace-tail", "5")
    assert status == 1
    assert re.search(r"FAILED\s+violation at step \d+, t=[\d.]+: reply does not match its ask", output)
    assert "Ping(seq=40)" in output
    assert "reproduce: python -m sim ping --seed 9 --nodes 3 --duration 4 --faults none" in output
    tail = output.split("last 5 trace lines:\n", 1)[1].splitlines()[:5]
    assert all(re.match(r"  \d+\.\d{6} \S+", line) for line in tail)


def test_a_node_that_never_recovers_fails_the_liveness_check(monkeypatch: pytest.MonkeyPatch) -> None:
    original = ping.Pinger._worker

    async def silent_on_n1(self: ping.Pinger) -> None:
        if self.node.node_id != "n1":
            await original(self)

    monkeypatch.setattr(ping.Pinger, "_worker", silent_on_n1)
    status, output = run_cli(*QUICK, "--duration", "10", "--faults", "none")
    assert status == 1
    assert "n1 got no answer after the faults stopped" in output


def test_json_summary_is_one_parseable_line() -> None:
    status, output = run_cli(*QUICK, "--duration", "2", "--json", "--twice")
    assert status == 0
    lines = output.strip().splitlines()
    assert len(lines) == 1
    summary = json.loads(lines[0])
    assert summary["ok"] is True and summary["failure"] is None
    assert summary["second_digest"] == summary["digest"]
    assert summary["messages"]["delivered"] > 0
    assert summary["report"]["asks_ok"] > 0
    assert summary["simulated_seconds"] == 2.0
    assert summary["delivered_per_wall_second"] > 0 and summary["cpu_seconds"] > 0

"""Load sections of `make bench` (issue 8): simulated citizens against real servers.

Three set-ups, each measured the same way:

- ``load``: the embedded profile (`make run`): one Rasa server, SQLite, no Redis.
- ``load_stock``: stock Rasa for comparison: Rasa's default pipeline
  (bench/config_default.yml, `rasa init`) trained on the same data, domain and
  rules, served the same way (same action server and channels, Rasa's own SQL
  tracker store on SQLite) but without our speed fixes (``BOT_SPEEDUPS=0``,
  bot/speedups.py; ``type: SQL`` instead of bot/tracker_store.py).
- ``load_production``: the production profile with two Rasa servers and one
  action server on PostgreSQL and Redis (tests/prod_servers.py starts them with
  scripts/run_production.sh). Each citizen's messages go to the two servers in
  turn, as a load balancer without sticky sessions would send them.

Every citizen alternates a FAQ chat (greeting, three questions, thanks, bye)
with a complete melding openbare ruimte flow up to the case number, and waits
2-5 s (uniform) between messages, as people type. N = 10, 50 and 200 citizens.
One closed-loop run without waiting measures saturation throughput.

Only one set-up runs at a time, and the load generator runs on the same 2-core
machine as the servers (it takes CPU from them; the same for every set-up).
"""
from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

from scripts import bench as B
from scripts import model as model_script

LEVELS = (10, 50, 200)
THINK = (2.0, 5.0)
LEVEL_SECONDS = 60.0
CLOSED_LOOP_CLIENTS = 8
CLOSED_LOOP_SECONDS = 45.0
TARGET_P95_AT_50_MS = 100.0
TARGET_SATURATION_RATIO = 1.3

STOCK_CONFIG = "bench/config_default.yml"


def _seconds(bench: B.Bench, full: float) -> float:
    return 10.0 if bench.quick else full


def _levels(bench: B.Bench) -> Sequence[int]:
    return (10, 50) if bench.quick else LEVELS


def measure(bench: B.Bench, label: str, urls: Sequence[str], pids: Dict[str, int],
            levels: Optional[Sequence[int]] = None) -> Dict[str, Any]:
    """Run every level and the closed loop against `urls`; numbers per run and RSS per process."""
    runs: Dict[str, Dict[str, Any]] = {}
    load_before = os.getloadavg()[0]
    # Warm up: the first flow in a fresh process loads the case store and more.
    B.drive_users(urls, 2, _seconds(bench, 10.0), think=(0.0, 0.0), seed=bench.seed + 999)
    for users in levels or _levels(bench):
        print(f"[bench]   {label}: {users} citizens, 2-5 s between messages ...", flush=True)
        result = B.drive_users(urls, users, _seconds(bench, LEVEL_SECONDS), think=THINK, seed=bench.seed)
        result["rss_mb"] = {name: B.rss_mb(pid) for name, pid in pids.items()}
        runs[str(users)] = result
    print(f"[bench]   {label}: closed loop, {CLOSED_LOOP_CLIENTS} clients ...", flush=True)
    closed = B.drive_users(urls, CLOSED_LOOP_CLIENTS, _seconds(bench, CLOSED_LOOP_SECONDS),
                           think=(0.0, 0.0), seed=bench.seed)
    closed["rss_mb"] = {name: B.rss_mb(pid) for name, pid in pids.items()}
    runs["closed"] = closed
    return {"label": label, "runs": runs, "load_before": load_before, "load_after": os.getloadavg()[0]}


def _run_rows(label: str, data: Dict[str, Any], targets: bool) -> List[B.Row]:
    rows: List[B.Row] = []
    for key, run in data["runs"].items():
        name = f"{label}, closed loop ({run['users']} clients)" if key == "closed" else f"{label}, {key} citizens"
        gated = targets and key == "50"
        rows.append(B.Row(f"{name}: p50 / p95 / p99",
                          f"{run['p50_ms']:.0f} / {run['p95_ms']:.0f} / {run['p99_ms']:.0f} ms",
                          f"p95 ≤ {TARGET_P95_AT_50_MS:.0f} ms" if gated else "",
                          B.verdict(run["p95_ms"], TARGET_P95_AT_50_MS) if gated else ""))
        rows.append(B.Row(f"{name}: messages/s", f"{run['rate']:.1f} ({run['messages']} in {run['seconds']:.0f} s)"))
        errors = len(run["errors"])
        rows.append(B.Row(f"{name}: errors", str(errors), "0" if targets else "",
                          ("ok" if errors == 0 else "SHORT") if targets else ""))
    return rows


def _table(data: Dict[str, Any]) -> str:
    """One markdown table for a set-up: every run with latency, throughput, flows and memory."""
    names = sorted({name for run in data["runs"].values() for name in run["rss_mb"]})
    head = ["Run", "p50 ms", "p95 ms", "p99 ms", "max ms", "msg/s", "errors", "flows filed"] + \
           [f"RSS {n} MB" for n in names]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for key, run in data["runs"].items():
        label = f"closed loop, {run['users']} clients" if key == "closed" else f"{key} citizens, 2-5 s waits"
        flows = run["flows"]
        cells = [label, f"{run['p50_ms']:.0f}", f"{run['p95_ms']:.0f}", f"{run['p99_ms']:.0f}",
                 f"{run['max_ms']:.0f}", f"{run['rate']:.1f}", str(len(run["errors"])),
                 f"{flows['completed']} of {flows['completed'] + flows['not_filed']}"]
        cells += [f"{run['rss_mb'].get(n, 0):.0f}" for n in names]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _strip(data: Dict[str, Any]) -> Dict[str, Any]:
    """The numbers without the raw latency lists (for --json)."""
    return {**data, "runs": {k: {kk: vv for kk, vv in run.items() if kk != "values"}
                             for k, run in data["runs"].items()}}


def _errors_note(data: Dict[str, Any]) -> List[str]:
    notes = []
    for key, run in data["runs"].items():
        if run["errors"]:
            notes.append(f"{data['label']} {key}: first errors: " + "; ".join(run["errors"][:3]))
    return notes


# ------------------------------------------------------------------- sections

def section_load(bench: B.Bench) -> B.Section:
    """The embedded profile under N = 10, 50, 200 citizens and a closed loop."""
    bot = bench.ensure_bot()
    actions, rasa = bot.procs
    data = measure(bench, "embedded", [bot.rasa_url], {"rasa": rasa.pid, "actions": actions.pid})
    bench.results["load"] = data
    section = B.Section("Load: embedded profile (one Rasa server, SQLite)")
    section.rows = _run_rows("embedded", data, targets=True)
    section.body = _table(data)
    section.notes = [
        "Each simulated citizen alternates a FAQ chat with a full melding openbare ruimte flow and waits "
        "2-5 s between messages; the closed loop sends the next message as soon as the answer is in. "
        f"{LEVEL_SECONDS:.0f} s per level, {CLOSED_LOOP_SECONDS:.0f} s closed loop, after a 10 s warm-up. "
        "The load generator (Python threads) runs on the same 2-core machine.",
        f"Load average before: {data['load_before']:.2f}, after: {data['load_after']:.2f}.",
    ] + _errors_note(data)
    section.data = _strip(data)
    return section


def stock_model() -> Path:
    """Rasa's default pipeline trained on our data, domain and rules (cached by fingerprint)."""
    return model_script.ensure_model(config=STOCK_CONFIG, prefix="stock")


def section_load_stock(bench: B.Bench) -> B.Section:
    """Stock Rasa served the same way, compared with `load` of this run."""
    ours = bench.results.get("load")
    bench.stop()  # one set-up at a time
    start = time.perf_counter()
    model = stock_model()
    train_s = time.perf_counter() - start
    bot = B.start_bot(bench.workdir / "stock", extra_env={"WEBCHAT_RATE_LIMIT": "100000", "BOT_SPEEDUPS": "0"},
                      model=str(model), tracker_store="SQL")
    try:
        bot.say(B.new_sender(), "hallo", timeout=120)
        actions, rasa = bot.procs
        levels = (50,) if ours else None
        data = measure(bench, "stock", [bot.rasa_url], {"rasa": rasa.pid, "actions": actions.pid}, levels=levels)
    finally:
        bot.stop()
    bench.results["load_stock"] = data
    section = B.Section("Load: ours compared with stock Rasa")
    rows: List[B.Row] = []
    if ours:
        for key, what in (("50", "50 citizens"), ("closed", "closed loop")):
            o, s = ours["runs"][key], data["runs"][key]
            rows.append(B.Row(f"{what}: p95 ours / stock", f"{o['p95_ms']:.0f} / {s['p95_ms']:.0f} ms"))
        o_rate, s_rate = ours["runs"]["closed"]["rate"], data["runs"]["closed"]["rate"]
        ratio = o_rate / s_rate if s_rate else float("inf")
        rows.append(B.Row("saturation throughput ours / stock",
                          f"{o_rate:.1f} / {s_rate:.1f} msg/s = {ratio:.2f}×",
                          f"≥ {TARGET_SATURATION_RATIO}×", "ok" if ratio >= TARGET_SATURATION_RATIO else "SHORT"))
        o50, s50 = ours["runs"]["50"]["p95_ms"], data["runs"]["50"]["p95_ms"]
        rows.append(B.Row("p95 at 50 citizens, stock / ours", f"{s50 / o50:.2f}×" if o50 else "n/a"))
    rows += _run_rows("stock", data, targets=False)
    section.rows = rows
    section.body = _table(data)
    section.notes = [
        f"Stock = `{STOCK_CONFIG}` (the pipeline `rasa init` writes, language nl) trained on the same data/, "
        "domain.yml and rules, served by the same `rasa run` with the same action server and channels, on Rasa's "
        "own SQL tracker store (SQLite) and with BOT_SPEEDUPS=0 (Rasa's own code paths). Ours = config.yml with "
        "bot/speedups.py and bot/tracker_store.py.",
        f"Stock model: {model.name} ({'trained in ' + format(train_s, '.0f') + ' s' if train_s > 5 else 'cached'}).",
        f"Load average before: {data['load_before']:.2f}, after: {data['load_after']:.2f}.",
    ] + _errors_note(data)
    section.data = _strip(data)
    return section


def section_load_production(bench: B.Bench) -> B.Section:
    """Two Rasa servers + one action server on PostgreSQL and Redis."""
    from tests.prod_servers import start_production

    bench.stop()
    cluster = start_production(bench.workdir / "production", instances=2,
                               extra_env={"WEBCHAT_RATE_LIMIT": "100000"})
    try:
        for instance in range(len(cluster.rasa_urls)):
            cluster.say(instance, B.new_sender(), "hallo", timeout=120)
        pids = {name: proc.pid for name, proc in cluster.procs.items()}
        data = measure(bench, "production", cluster.rasa_urls, pids)
    finally:
        cluster.stop()
        cluster.cleanup()
    bench.results["load_production"] = data
    section = B.Section("Load: production profile (two Rasa servers, PostgreSQL, Redis)")
    section.rows = _run_rows("2 instances", data, targets=False)
    ours = bench.results.get("load")
    if ours:
        section.rows.append(B.Row("saturation throughput, 2 instances / embedded",
                                  f"{data['runs']['closed']['rate'] / ours['runs']['closed']['rate']:.2f}×"))
    section.body = _table(data)
    section.notes = [
        "scripts/run_production.sh with two Rasa servers (masking tracker store on PostgreSQL, atomic Redis "
        "lock store, Redis KCC hub, case store on PostgreSQL) and one action server, all on this 2-core "
        "machine together with PostgreSQL, Redis and the load generator. Each citizen's messages alternate "
        "between the two servers (no sticky sessions), so every message takes the Redis conversation lock "
        "and reads the conversation back from PostgreSQL.",
        f"Load average before: {data['load_before']:.2f}, after: {data['load_after']:.2f}.",
    ] + _errors_note(data)
    section.data = _strip(data)
    return section

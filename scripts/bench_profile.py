"""`make bench` section "profile": where the Rasa server spends its CPU under load.

py-spy samples the Rasa server process while 8 simulated citizens send
messages without waiting (the closed loop of scripts/bench_load.py). It runs
twice on the embedded profile: as we serve it, and with our speed fixes off
(``BOT_SPEEDUPS=0`` and Rasa's own SQL tracker store), so the table shows what
the fixes removed and what is left. Samples are grouped by the library whose
code was running (the innermost frame).

Alone: ``python scripts/bench.py --sections profile --out /tmp/p.md``.
py-spy needs ptrace (root or CAP_SYS_PTRACE); without it the section says so.
"""
from __future__ import annotations

import collections
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import Dict, List, Tuple

from scripts import bench as B

SECONDS = 30
RATE_HZ = 200  # py-spy samples per second
CLIENTS = 8

# Innermost frame's file → group; the first match wins.
GROUPS: List[Tuple[str, str]] = [
    ("jsonschema", "jsonschema (action reply validation)"),
    ("sqlalchemy", "SQLAlchemy + database driver (tracker store)"),
    ("psycopg2", "SQLAlchemy + database driver (tracker store)"),
    ("tensorflow", "TensorFlow (DIET intent classifier)"),
    ("keras", "TensorFlow (DIET intent classifier)"),
    ("copy.py", "copy (slots and trackers)"),
    ("copyreg", "copy (slots and trackers)"),
    ("rasa/shared/utils/common.py", "Rasa event type lookup (all_subclasses)"),
    ("inspect.py", "Rasa event type lookup (all_subclasses)"),
    ("json/", "json"),
    ("aiohttp", "aiohttp (calls to the action server)"),
    ("redis", "Redis (lock store)"),
    ("dask", "dask (Rasa graph runner)"),
    ("rasa/core/policies", "Rasa policies"),
    ("rasa/shared/core/trackers", "Rasa trackers"),
    ("rasa/shared/core/events", "Rasa events"),
    ("rasa/", "Rasa, other"),
    ("sanic", "Sanic (HTTP)"),
    ("scipy", "scipy / sklearn / numpy (featurizers)"),
    ("sklearn", "scipy / sklearn / numpy (featurizers)"),
    ("numpy", "scipy / sklearn / numpy (featurizers)"),
    ("spacy", "spaCy"),
    ("bot/", "our code (bot/, integrations/)"),
    ("integrations/", "our code (bot/, integrations/)"),
]


def py_spy() -> str:
    local = Path(sys.executable).parent / "py-spy"
    return str(local) if local.exists() else (shutil.which("py-spy") or "")


def group_of(frame: str) -> str:
    match = re.search(r"\(([^)]*)\)", frame)
    where = match.group(1) if match else frame
    return next((name for key, name in GROUPS if key in where), "Python, other")


def aggregate(raw: Path) -> Tuple[int, Dict[str, int]]:
    """Samples of the request-handling threads by group (idle time and the insights thread left out)."""
    groups: Dict[str, int] = collections.Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = stack.split(";")
        if "insights/channel.py" in stack or frames[-1].startswith("serve (sanic/server/runners.py"):
            continue  # the insights refresh thread sleeping; the event loop waiting for work
        total += int(count)
        groups[group_of(frames[-1])] += int(count)
    return total, groups


def profile_once(bench: B.Bench, name: str, env: Dict[str, str], tracker_store: str) -> Dict[str, object]:
    bot = B.start_bot(bench.workdir / f"profile-{name}", extra_env={"WEBCHAT_RATE_LIMIT": "100000", **env},
                      tracker_store=tracker_store)
    try:
        bot.say(B.new_sender(), "hallo", timeout=120)
        B.drive_users([bot.rasa_url], 2, 10, think=(0.0, 0.0), seed=bench.seed + 7)  # warm-up
        rasa = bot.procs[1]
        raw = Path(tempfile.mkstemp(prefix=f"pyspy-{name}-", suffix=".txt", dir=bench.workdir)[1])
        seconds = 8 if bench.quick else SECONDS
        spy = subprocess.Popen([py_spy(), "record", "--pid", str(rasa.pid), "--duration", str(seconds),
                                "--rate", str(RATE_HZ), "--format", "raw", "--nonblocking", "--output", str(raw)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        result: Dict[str, object] = {}
        runner = threading.Thread(target=lambda: result.update(
            B.drive_users([bot.rasa_url], CLIENTS, seconds + 2, think=(0.0, 0.0), seed=bench.seed)))
        runner.start()
        _, err = spy.communicate(timeout=seconds + 120)
        runner.join()
        if spy.returncode != 0:
            raise RuntimeError(f"py-spy failed: {err.strip()[-300:]}")
        total, groups = aggregate(raw)
        return {"rate": result["rate"], "p50_ms": result["p50_ms"], "seconds": seconds, "total": total,
                "groups": dict(groups)}
    finally:
        bot.stop()


def section_profile(bench: B.Bench) -> B.Section:
    section = B.Section("Profile: where the Rasa server's CPU goes (py-spy, closed loop)")
    if not py_spy():
        section.notes = ["py-spy is not installed (requirements.txt has it): section skipped."]
        return section
    bench.stop()  # nothing else of ours runs while we sample
    try:
        ours = profile_once(bench, "ours", {}, "bot.tracker_store.FastSQLTrackerStore")
        off = profile_once(bench, "off", {"BOT_SPEEDUPS": "0"}, "SQL")
    except (RuntimeError, subprocess.TimeoutExpired) as error:
        section.notes = [f"Profiling failed: {error}"]
        return section
    names = sorted(set(ours["groups"]) | set(off["groups"]),
                   key=lambda n: -off["groups"].get(n, 0) / max(off["total"], 1))
    # CPU milliseconds per message: share of busy samples × sampling interval / messages.
    interval_ms = 1000 / RATE_HZ

    def per_message(data: Dict[str, object], group: str) -> float:
        return data["groups"].get(group, 0) * interval_ms / (data["rate"] * data["seconds"])

    lines = ["| Where (innermost frame) | fixes off: share | ms/message | ours: share | ms/message |",
             "|---|---|---|---|---|"]
    for name in names:
        lines.append(f"| {name} | {off['groups'].get(name, 0) / max(off['total'], 1):.0%} "
                     f"| {per_message(off, name):.1f} | {ours['groups'].get(name, 0) / max(ours['total'], 1):.0%} "
                     f"| {per_message(ours, name):.1f} |")
    total_off = sum(per_message(off, n) for n in names)
    total_ours = sum(per_message(ours, n) for n in names)
    lines.append(f"| **busy CPU per message** | | **{total_off:.1f}** | | **{total_ours:.1f}** |")
    section.body = "\n".join(lines)
    section.rows = [
        B.Row("closed loop, fixes off (BOT_SPEEDUPS=0, Rasa's SQL store)", f"{off['rate']:.1f} msg/s"),
        B.Row("closed loop, ours", f"{ours['rate']:.1f} msg/s"),
        B.Row("Rasa server CPU per message, fixes off → ours", f"{total_off:.1f} → {total_ours:.1f} ms"),
    ]
    section.notes = [
        f"`py-spy record --rate {RATE_HZ} --nonblocking` on the Rasa server for {SECONDS} s while {CLIENTS} clients "
        "send mixed FAQ and melding conversations without waiting; both runs use our pipeline (config.yml), "
        "so the difference is bot/speedups.py and bot/tracker_store.py only. Idle event-loop samples and the "
        "insights refresh thread are left out. Sampling under ptrace slows the server a little; the msg/s "
        "here are lower than in the load sections.",
        "What is left is mostly Rasa's own work per message: the DIET classifier (TensorFlow), rebuilding "
        "and copying the tracker, the rule policy, and JSON for the action server calls.",
    ]
    section.data = {"ours": ours, "off": off}
    return section

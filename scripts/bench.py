"""`make bench`: measure the assistant and write docs/benchmarks.md.

Not a test: it reports numbers against the targets of issues 2 (foundation)
and 8 (production profile: load, fuzzing, stock comparison) and says honestly
where they fall short. Sections run in order; each one is a function
`(Bench) -> Section` registered in SECTIONS, so later issues add their own
(load in scripts/bench_load.py, fuzzing, insights page render) without
touching the others:

    python scripts/bench.py                      # everything, writes docs/benchmarks.md
    python scripts/bench.py --sections latency_sequential,memory --out /tmp/b.md

Order matters on a 2-core machine: the trainings run before the servers start,
and nothing else of ours runs while a section measures.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import requests  # noqa: E402

from scripts import nlu_eval  # noqa: E402
from tests.servers import Bot, model_path, new_sender, start_bot  # noqa: E402

TARGETS = {
    "p95_concurrent_ms": 150.0,
    "cold_start_s": 20.0,
    "train_s": 180.0,
}

# Questions that get a direct answer (no guided flow starts), as citizens type them.
FAQ = [
    "wat kost een paspoort",
    "hoe lang duurt het aanvragen van een id kaart",
    "mijn rijbewijs verloopt, hoe verleng ik die",
    "wanneer wordt het gft opgehaald",
    "waar kan ik een parkeervergunning aanvragen",
    "ik heb een uittreksel uit de brp nodig",
    "hoe doe ik aangifte van de geboorte van mijn dochter",
    "mijn moeder is overleden, wat moet ik regelen",
    "wat zijn de openingstijden van het stadskantoor",
    "ik kan mijn aanslag gemeentelijke belastingen niet betalen",
    "ik heb hulp nodig in het huishouden",
    "ik ben mijn digid wachtwoord vergeten",
    "hoeveel kost een nieuwe identiteitskaart voor mijn kind",
    "welk afval mag in de blauwe container",
    "telefoonnummer gemeente",
]

# A guided flow from start to "Klopt dit?" and "ja": melding openbare ruimte.
# The citizen answers whatever the assistant asks (the engine may skip a
# question it could already fill from the first message).
MELDING_OPENER = "er ligt een losse stoeptegel"
MELDING_ANSWERS = [
    ("Waar gaat uw melding over", "stoep"),
    ("Waar is het probleem", "Kerkstraat bij de speeltuin"),
    ("Wat is er aan de hand", "de tegel ligt los en mensen struikelen erover"),
    ("foto", "geen"),
    ("Wilt u horen hoe het afloopt", "geen"),
    ("Klopt dit", "ja"),
]
MAX_FLOW_TURNS = 10

FAQ_CONVERSATION = ["hallo", "<faq>", "<faq>", "<faq>", "bedankt", "doei"]


# ----------------------------------------------------------------------- model

@dataclass
class Row:
    metric: str
    value: str
    target: str = ""
    verdict: str = ""  # "ok", "SHORT" or ""


@dataclass
class Section:
    title: str
    rows: List[Row] = field(default_factory=list)
    body: str = ""  # extra markdown under the table
    notes: List[str] = field(default_factory=list)
    data: Dict[str, Any] = field(default_factory=dict)  # raw numbers for --json


@dataclass
class Bench:
    """Shared state of one benchmark run."""

    workdir: Path
    seed: int = 42
    quick: bool = False  # smoke run: few messages, short load; numbers not meaningful
    bot: Optional[Bot] = None
    cold_start: Dict[str, float] = field(default_factory=dict)
    contention: List[Tuple[str, float, int]] = field(default_factory=list)  # (section, load1, other rasa procs)
    results: Dict[str, Dict[str, Any]] = field(default_factory=dict)  # raw numbers by section, for later ones

    def ensure_bot(self) -> Bot:
        """Start the servers once, measuring the cold start."""
        if self.bot is None:
            start = time.perf_counter()
            # The fuzz section sends thousands of socket messages: no rate limit here.
            bot = start_bot(self.workdir / "bot", extra_env={"WEBCHAT_RATE_LIMIT": "100000"})
            healthy = time.perf_counter() - start
            sender = new_sender()
            while True:
                try:
                    if bot.say(sender, "hallo", timeout=60):
                        break
                except requests.RequestException:
                    pass
                if time.perf_counter() - start > 300:
                    raise TimeoutError("no reply within 300 s of starting the servers")
                time.sleep(0.2)
            self.cold_start = {"healthy_s": healthy, "first_reply_s": time.perf_counter() - start}
            self.bot = bot
        return self.bot

    def stop(self) -> None:
        if self.bot is not None:
            self.bot.stop()
            self.bot = None


# --------------------------------------------------------------------- helpers

def percentile(values: Sequence[float], q: float) -> float:
    """Linear-interpolated percentile (q in 0..100)."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    k = (len(ordered) - 1) * q / 100
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def verdict(value: float, target: float) -> str:
    return "ok" if value <= target else "SHORT"


def rss_mb(pid: int) -> float:
    """Resident memory of a process and its children, from /proc (MB)."""
    total = 0
    for p in [pid, *child_pids(pid)]:
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return total / 1024


def child_pids(pid: int) -> List[int]:
    out: List[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            kids = [int(x) for x in (task / "children").read_text().split()]
        except OSError:
            continue
        for kid in kids:
            out += [kid, *child_pids(kid)]
    return out


def other_rasa_processes(mine: Sequence[int] = ()) -> int:
    """Rasa servers and trainings on this machine that are not `mine` (contention)."""
    mine = {os.getpid(), *mine}
    count = 0
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            cmd = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if int(proc.name) not in mine and " -m rasa " in f" {cmd} " and ("run" in cmd or "train" in cmd):
            count += 1
    return count


def note_contention(bench: Bench, section: str) -> str:
    load1 = os.getloadavg()[0]
    others = other_rasa_processes([p.pid for p in bench.bot.procs] if bench.bot else [])
    bench.contention.append((section, load1, others))
    return f"load average {load1:.2f}, other Rasa processes on the machine: {others}"


def timed_say(session: requests.Session, url: str, sender: str, text: str) -> Tuple[float, List[Dict[str, Any]]]:
    """POST one message to a Rasa server's REST channel; (milliseconds, bot messages)."""
    start = time.perf_counter()
    response = session.post(f"{url}/webhooks/rest/webhook",
                            json={"sender": sender, "message": text}, timeout=60)
    elapsed = (time.perf_counter() - start) * 1000
    response.raise_for_status()
    return elapsed, response.json()


def latency_rows(label: str, values: Sequence[float], target_p95: Optional[float] = None) -> List[Row]:
    p95 = percentile(values, 95)
    return [
        Row(f"{label}: p50", f"{percentile(values, 50):.0f} ms"),
        Row(f"{label}: p95", f"{p95:.0f} ms",
            f"≤ {target_p95:.0f} ms" if target_p95 else "",
            verdict(p95, target_p95) if target_p95 else ""),
        Row(f"{label}: max", f"{max(values):.0f} ms"),
    ]


# -------------------------------------------------------------------- sections

def section_nlu(bench: Bench) -> Section:
    """Held-out accuracy and macro-F1: our pipeline vs Rasa's default pipeline."""
    heldout = nlu_eval.load_examples(nlu_eval.HELDOUT)
    ours = nlu_eval.evaluate(model_path(), heldout)
    default_model, default_train_s = nlu_eval.train(
        nlu_eval.DEFAULT_CONFIG, bench.workdir / "nlu-default", "default", force=True)
    default = nlu_eval.evaluate(default_model, heldout)
    section = Section("NLU on the held-out split (tests/nlu_test.yml)")
    section.rows = [
        Row("ours (config.yml): accuracy", f"{ours.accuracy:.3f}"),
        Row("ours (config.yml): intent macro-F1", f"{ours.macro_f1:.3f}", "≥ 0.90",
            "ok" if ours.macro_f1 >= 0.90 else "SHORT"),
        Row("ours: share sent to fallback", f"{ours.fallback_rate:.1%}"),
        Row("Rasa default pipeline: accuracy", f"{default.accuracy:.3f}"),
        Row("Rasa default pipeline: intent macro-F1", f"{default.macro_f1:.3f}"),
        Row("Rasa default pipeline: share sent to fallback", f"{default.fallback_rate:.1%}"),
        Row("Rasa default pipeline: NLU training time", f"{default_train_s:.0f} s"),
    ]
    section.notes = [
        f"{ours.n} held-out sentences, {len(ours.per_intent)} intents. Both pipelines train on the same "
        "data/nlu; the default pipeline is bench/config_default.yml (`rasa init`, language nl). "
        "A fallback counts as a miss; macro averages run over the true intents.",
        "Lowest per-intent F1 (ours): " + ", ".join(
            f"{k} {v['f1-score']:.2f}" for k, v in sorted(ours.per_intent.items(),
                                                          key=lambda kv: kv[1]["f1-score"])[:5]),
    ]
    section.data = {"ours": _scores_dict(ours), "default": _scores_dict(default),
                    "default_train_s": default_train_s}
    return section


def _scores_dict(scores: nlu_eval.Scores) -> Dict[str, Any]:
    return {"n": scores.n, "accuracy": scores.accuracy, "macro_f1": scores.macro_f1,
            "fallback_rate": scores.fallback_rate, "confusions": scores.confusions[:15]}


def section_training(bench: Bench) -> Section:
    """A fresh `rasa train --force` (NLU and dialogue) of config.yml into a temp folder."""
    contention = note_contention(bench, "training")
    _, seconds = nlu_eval.train(ROOT / "config.yml", bench.workdir / "train", "bench",
                                nlu_only=False, force=True)
    section = Section("Training time")
    section.rows = [Row("`rasa train --force` (config.yml, NLU + rules)", f"{seconds:.0f} s",
                        f"≤ {TARGETS['train_s']:.0f} s", verdict(seconds, TARGETS["train_s"]))]
    section.notes = [f"Wall clock incl. Python start-up, empty training cache. During training: {contention}."]
    section.data = {"train_s": seconds}
    return section


def section_cold_start(bench: Bench) -> Section:
    """Start both servers on a trained model; time until the first real reply."""
    contention = note_contention(bench, "cold_start")
    bench.stop()
    bench.ensure_bot()
    cold = bench.cold_start
    section = Section("Cold start")
    section.rows = [
        Row("process start → both servers healthy", f"{cold['healthy_s']:.1f} s"),
        Row("process start → first reply over REST", f"{cold['first_reply_s']:.1f} s",
            f"≤ {TARGETS['cold_start_s']:.0f} s", verdict(cold["first_reply_s"], TARGETS["cold_start_s"])),
    ]
    section.notes = [f"Model already trained (the `make run` path after the first time). At start: {contention}."]
    section.data = dict(cold)
    return section


def section_latency_sequential(bench: Bench, n: int = 200) -> Section:
    """One message at a time: FAQ questions, a new conversation every 5 messages."""
    n = 20 if bench.quick else n
    bot = bench.ensure_bot()
    contention = note_contention(bench, "latency_sequential")
    session = requests.Session()
    values: List[float] = []
    empty = 0
    sender = new_sender()
    for i in range(n):
        if i % 5 == 0:
            sender = new_sender()
        elapsed, messages = timed_say(session, bot.rasa_url, sender, FAQ[i % len(FAQ)])
        values.append(elapsed)
        empty += not messages
    section = Section(f"REST latency, sequential ({n} FAQ messages)")
    section.rows = latency_rows("sequential", values)
    section.rows.append(Row("sequential: empty replies", str(empty), "0", "ok" if empty == 0 else "SHORT"))
    section.notes = [f"Round trip of POST /webhooks/rest/webhook with keep-alive. During the run: {contention}."]
    section.data = {"n": n, "p50_ms": percentile(values, 50), "p95_ms": percentile(values, 95),
                    "max_ms": max(values), "empty": empty}
    bench.results["latency_sequential"] = section.data
    return section


def melding_reply(messages: List[Dict[str, Any]]) -> Optional[str]:
    """The citizen's answer to the assistant's last question in a melding flow."""
    question = (messages[-1].get("text") or "") if messages else ""
    return next((answer for key, answer in MELDING_ANSWERS if key.lower() in question.lower()), None)


@dataclass
class Drive:
    """What the simulated citizens of one run collected (shared between their threads)."""

    values: List[float] = field(default_factory=list)  # latency of every answered message, ms
    errors: List[str] = field(default_factory=list)
    flows: Dict[str, int] = field(default_factory=lambda: {"completed": 0, "not_filed": 0})
    lock: threading.Lock = field(default_factory=threading.Lock)


def _simulated_user(urls: Sequence[str], rng: random.Random, until: float, think: Tuple[float, float],
                    drive: Drive) -> None:
    """One citizen: alternates FAQ conversations and a melding flow until `until`.

    With several servers (`urls`) the citizen's messages go to them in turn, as a
    load balancer without sticky sessions would send them.
    """
    session = requests.Session()
    time.sleep(rng.uniform(0, think[1]))
    conversation = rng.randrange(2)  # about half the citizens start with the flow
    turn = rng.randrange(len(urls))

    def say(sender: str, text: str) -> Optional[List[Dict[str, Any]]]:
        nonlocal turn
        url = urls[turn % len(urls)]
        turn += 1
        try:
            elapsed, messages = timed_say(session, url, sender, text)
        except requests.RequestException as exc:
            with drive.lock:
                drive.errors.append(f"{type(exc).__name__}: {exc}"[:200])
            return None
        with drive.lock:
            drive.values.append(elapsed)
            if not messages:
                drive.errors.append(f"empty reply to {text!r}")
        if think[1] > 0:
            time.sleep(rng.uniform(*think))
        return messages

    while time.time() < until:
        sender = new_sender()
        if conversation % 2 == 0:
            for text in FAQ_CONVERSATION:
                if time.time() >= until or say(sender, rng.choice(FAQ) if text == "<faq>" else text) is None:
                    break
        else:
            messages = say(sender, MELDING_OPENER)
            filed = False
            for _ in range(MAX_FLOW_TURNS):
                if messages is None or time.time() >= until:
                    break
                if any("BOZ-" in (m.get("text") or "") for m in messages):
                    filed = True
                    break
                answer = melding_reply(messages)
                if answer is None:
                    break
                messages = say(sender, answer)
            if time.time() < until or filed:
                with drive.lock:
                    drive.flows["completed" if filed else "not_filed"] += 1
        conversation += 1


def drive_users(urls: Sequence[str], users: int, seconds: float, think: Tuple[float, float] = (1.0, 3.0),
                seed: int = 42) -> Dict[str, Any]:
    """`users` simulated citizens in parallel for `seconds` against `urls`; latencies in ms.

    think=(0, 0) is a closed loop: every citizen sends its next message as soon
    as the answer is in, which measures saturation throughput.
    """
    drive = Drive()
    until = time.time() + seconds
    threads = [threading.Thread(target=_simulated_user, daemon=True,
                                args=(list(urls), random.Random(seed + i), until, think, drive))
               for i in range(users)]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=seconds + 120)
    wall = time.perf_counter() - start
    values = drive.values
    return {"users": users, "seconds": wall, "messages": len(values), "rate": len(values) / wall,
            "p50_ms": percentile(values, 50), "p95_ms": percentile(values, 95),
            "p99_ms": percentile(values, 99), "max_ms": max(values) if values else float("nan"),
            "errors": drive.errors, "flows": drive.flows, "values": values}


def run_users(bench: Bench, users: int, seconds: float, think: Tuple[float, float] = (1.0, 3.0)) -> Dict[str, Any]:
    """`users` simulated conversations against the embedded bot of this run."""
    bot = bench.ensure_bot()
    return drive_users([bot.rasa_url], users, seconds, think, bench.seed)


def section_latency_concurrent(bench: Bench, users: int = 20, seconds: float = 90) -> Section:
    """20 citizens at once, each typing every 1–3 s: FAQ chats and a melding flow."""
    seconds = 15 if bench.quick else seconds
    bench.ensure_bot()
    contention = note_contention(bench, "latency_concurrent")
    result = run_users(bench, users, seconds)
    section = Section(f"REST latency, {users} concurrent conversations")
    section.rows = latency_rows(f"{users} concurrent", result["values"], TARGETS["p95_concurrent_ms"])
    section.rows += [
        Row("messages / throughput", f"{result['messages']} in {result['seconds']:.0f} s "
                                     f"({result['rate']:.1f} msg/s)"),
        Row(f"{users} concurrent: errors or empty replies", str(len(result["errors"])), "0",
            "ok" if not result["errors"] else "SHORT"),
        Row("melding flows that ended with a case number",
            f"{result['flows']['completed']} of {sum(result['flows'].values())}"),
    ]
    section.notes = [
        f"Each simulated citizen waits 1–3 s (uniform) between messages and alternates a FAQ chat "
        f"(greet, three questions, thanks, bye) with a full melding openbare ruimte flow. "
        f"At start: {contention}; at the end: load average {os.getloadavg()[0]:.2f}."]
    sequential = bench.results.get("latency_sequential")
    if sequential:
        busy = sequential["p50_ms"] / 1000 * result["rate"]
        section.notes.append(
            f"Reading: one message costs about {sequential['p50_ms']:.0f} ms when sent alone (sequential p50), "
            f"so {result['rate']:.1f} msg/s keeps the Rasa process busy {busy:.0%} of the time on one core. "
            f"Requests queue behind each other in its single event loop, and whatever CPU other processes take "
            f"(load average above) lengthens that queue: that queueing, not slow answers, makes the p95.")
    if result["errors"]:
        section.notes.append("First errors: " + "; ".join(result["errors"][:3]))
    section.data = {k: v for k, v in result.items() if k != "values"}
    return section


def section_memory(bench: Bench) -> Section:
    """Resident memory of both server processes after the load sections."""
    bot = bench.ensure_bot()
    actions, rasa = bot.procs
    section = Section("Memory after load")
    action_mb, rasa_mb = rss_mb(actions.pid), rss_mb(rasa.pid)
    section.rows = [Row("Rasa server RSS", f"{rasa_mb:.0f} MB"), Row("action server RSS", f"{action_mb:.0f} MB"),
                    Row("total", f"{rasa_mb + action_mb:.0f} MB")]
    section.notes = ["VmRSS from /proc/<pid>/status, children included, after the latency sections."]
    section.data = {"rasa_mb": rasa_mb, "actions_mb": action_mb}
    return section


def section_fuzz(bench: Bench) -> Section:
    """10,000 hostile messages (300 with --quick) through the REST and socket channels."""
    from scripts import fuzz

    bot = bench.ensure_bot()
    result = fuzz.run_fuzz(bot.rasa_url, total=300 if bench.quick else 10_000, seed=bench.seed)
    section = Section("Fuzz: hostile messages")
    for channel in result["channels"]:
        for key, label in (("crashes", "crashes"), ("5xx", "HTTP 5xx")):
            section.rows.append(Row(f"fuzz, {channel['channel']}: {label} of {channel['sent']} messages",
                                    str(channel[key]), "0", "ok" if channel[key] == 0 else "SHORT"))
    section.body = fuzz.markdown(result)
    section.data = {k: v for k, v in result.items() if isinstance(v, (int, float, str))}
    return section


def section_insights_render(bench: Bench) -> Section:
    from scripts import bench_insights

    return bench_insights.section_insights(bench)


def section_load(bench: Bench) -> Section:
    from scripts import bench_load

    return bench_load.section_load(bench)


def section_load_stock(bench: Bench) -> Section:
    from scripts import bench_load

    return bench_load.section_load_stock(bench)


def section_profile(bench: Bench) -> Section:
    from scripts import bench_profile

    return bench_profile.section_profile(bench)


def section_load_production(bench: Bench) -> Section:
    from scripts import bench_load

    return bench_load.section_load_production(bench)


Step = Callable[[Bench], Section]
SECTIONS: Dict[str, Step] = {
    "nlu": section_nlu,
    "training": section_training,
    "cold_start": section_cold_start,
    "latency_sequential": section_latency_sequential,
    "latency_concurrent": section_latency_concurrent,
    "memory": section_memory,
    "load": section_load,
    "fuzz": section_fuzz,
    "insights_render": section_insights_render,
    # These stop the embedded servers: they come last.
    "load_stock": section_load_stock,
    "profile": section_profile,
    "load_production": section_load_production,
}


# ---------------------------------------------------------------------- report

def machine_facts() -> Dict[str, str]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        mem_kb = next(int(l.split()[1]) for l in Path("/proc/meminfo").read_text().splitlines()
                      if l.startswith("MemTotal:"))
    except (OSError, StopIteration):
        mem_kb = 0
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                            text=True).stdout.strip()
    dirty = subprocess.run(["git", "status", "--porcelain"], cwd=ROOT, capture_output=True, text=True).stdout
    return {
        "date": dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"),
        "nproc": str(os.cpu_count()),
        "cpu": cpu,
        "memory": f"{mem_kb / 1024 / 1024:.1f} GB",
        "python": platform.python_version(),
        "commit": commit + (" (with uncommitted changes)" if dirty.strip() else ""),
    }


def render(sections: List[Section], facts: Dict[str, str], bench: Bench, seconds: float) -> str:
    lines = [
        "# Benchmarks",
        "",
        "Written by `make bench` (scripts/bench.py). Not a test: numbers against the targets of issues 2 and 8.",
        "Rerun it after changing the pipeline, the data or the servers, and commit the new file.",
        "",
        f"- Date: {facts['date']}; commit {facts['commit']}",
        f"- Machine: {facts['nproc']} cores ({facts['cpu']}), {facts['memory']} RAM, Python {facts['python']}",
        f"- Run time of the whole benchmark: {seconds / 60:.1f} min",
        "",
        "## Summary",
        "",
        "| Metric | Measured | Target | |",
        "|---|---|---|---|",
    ]
    for section in sections:
        for row in section.rows:
            if row.target:
                lines.append(f"| {row.metric} | {row.value} | {row.target} | {row.verdict} |")
    short = [(s.title, r) for s in sections for r in s.rows if r.verdict == "SHORT"]
    for section in sections:
        lines += ["", f"## {section.title}", "", "| Metric | Value | Target | |", "|---|---|---|---|"]
        lines += [f"| {r.metric} | {r.value} | {r.target} | {r.verdict} |" for r in section.rows]
        if section.body:
            lines += ["", section.body]
        if section.notes:
            lines += [""] + [f"- {note}" for note in section.notes]
    lines += ["", "## Where we fall short", ""]
    if short:
        lines += [f"- {title}: {row.metric} = {row.value} (target {row.target})." for title, row in short]
    else:
        lines.append("- Nothing measured here misses its target on this run.")
    lines += ["", "## Contention", ""]
    others = [c for c in bench.contention if c[2] > 0]
    if others:
        lines.append("Other Rasa servers or trainings ran on this 2-core machine during these sections, "
                     "so their latency and timings are pessimistic:")
        lines += [f"- {name}: load average {load:.2f}, {n} other Rasa processes" for name, load, n in others]
    else:
        lines.append("No other Rasa server or training ran on the machine during the measured sections.")
    if bench.contention:
        lines.append("1-minute load average at the start of each section (mostly the benchmark's own previous "
                     "section): " + ", ".join(f"{name} {load:.2f}" for name, load, _ in bench.contention) + ".")
    return "\n".join(lines) + "\n"


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sections", default=",".join(SECTIONS),
                        help=f"comma-separated, from: {', '.join(SECTIONS)}")
    parser.add_argument("--out", default=str(ROOT / "docs" / "benchmarks.md"))
    parser.add_argument("--json", help="also write the raw numbers to this file")
    parser.add_argument("--quick", action="store_true", help="smoke run with few messages (not for docs)")
    args = parser.parse_args(argv)
    names = [n.strip() for n in args.sections.split(",") if n.strip()]
    unknown = [n for n in names if n not in SECTIONS]
    if unknown:
        parser.error(f"unknown sections: {unknown}")
    os.chdir(ROOT)
    started = time.perf_counter()
    sections: List[Section] = []
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        bench = Bench(Path(tmp), quick=args.quick)
        try:
            for name in names:
                print(f"[bench] {name} ...", file=sys.stderr, flush=True)
                t0 = time.perf_counter()
                section = SECTIONS[name](bench)
                sections.append(section)
                for row in section.rows:
                    print(f"[bench]   {row.metric}: {row.value} {row.verdict}", file=sys.stderr, flush=True)
                print(f"[bench] {name} took {time.perf_counter() - t0:.0f} s", file=sys.stderr, flush=True)
        finally:
            bench.stop()
    facts = machine_facts()
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(render(sections, facts, bench, time.perf_counter() - started))
    print(f"[bench] wrote {args.out}", file=sys.stderr)
    if args.json:
        Path(args.json).write_text(json.dumps({"facts": facts, "sections": {
            s.title: s.data for s in sections}, "contention": bench.contention}, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Shared NLU evaluation helpers for the threshold test, the benchmark and docs/nlu.md.

Everything runs in-process with Rasa's own loaders, except training, which runs
`python -m rasa train ...` in a subprocess so that its wall-clock time is the
time a developer sees and its memory is returned afterwards.

    python scripts/nlu_eval.py heldout config.yml bench/config_default.yml
    python scripts/nlu_eval.py cv --folds 3 config.yml bench/config_default.yml

The `cv` command uses one fixed stratified split (seed 42) for every config, so
the pipelines are compared on exactly the same folds.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple

ROOT = Path(__file__).resolve().parent.parent
NLU_DATA = ROOT / "data" / "nlu"
HELDOUT = ROOT / "tests" / "nlu_test.yml"
DEFAULT_CONFIG = ROOT / "bench" / "config_default.yml"
FALLBACK_INTENT = "nlu_fallback"
if str(ROOT) not in sys.path:  # custom components (bot.nlu.guard) load in-process
    sys.path.insert(0, str(ROOT))

Example = Tuple[str, str]  # (text, intent)

ENV = {
    "PYTHONPATH": str(ROOT),
    "TF_CPP_MIN_LOG_LEVEL": "3",
    "RASA_TELEMETRY_ENABLED": "false",
    "SQLALCHEMY_SILENCE_UBER_WARNING": "1",
    "PYTHONWARNINGS": "ignore",
}
# Quiet TensorFlow and no telemetry for in-process model loading too.
for _key in ("TF_CPP_MIN_LOG_LEVEL", "RASA_TELEMETRY_ENABLED"):
    os.environ.setdefault(_key, ENV[_key])


# --------------------------------------------------------------------------- data

def load_examples(path: Path | str) -> List[Example]:
    """(text, intent) pairs of an NLU YAML file or folder, annotations stripped."""
    from rasa.shared.nlu.training_data.loading import load_data

    data = load_data(str(path))
    return [(msg.get("text"), msg.get("intent")) for msg in data.intent_examples]


def write_examples(examples: Iterable[Example], target: Path) -> None:
    """Write (text, intent) pairs as a Rasa NLU YAML file."""
    from rasa.shared.nlu.training_data.formats.rasa_yaml import RasaYAMLWriter
    from rasa.shared.nlu.training_data.message import Message
    from rasa.shared.nlu.training_data.training_data import TrainingData

    messages = [Message(data={"text": text, "intent": intent}) for text, intent in examples]
    RasaYAMLWriter().dump(str(target), TrainingData(training_examples=messages))


def folds(examples: Sequence[Example], n_folds: int = 3,
          seed: int = 42) -> List[Tuple[List[Example], List[Example]]]:
    """Deterministic stratified (train, test) folds."""
    from sklearn.model_selection import StratifiedKFold

    skf = StratifiedKFold(n_splits=n_folds, shuffle=True, random_state=seed)
    labels = [intent for _, intent in examples]
    return [([examples[i] for i in train], [examples[i] for i in test])
            for train, test in skf.split(list(range(len(examples))), labels)]


# ------------------------------------------------------------------- prediction

def quiet_logs() -> None:
    """Rasa logs every parse at debug level unless structlog is configured."""
    import logging

    from rasa.utils.log_utils import configure_structlog

    configure_structlog(logging.WARNING)
    logging.getLogger().setLevel(logging.WARNING)


def load_agent(model: Path | str) -> Any:
    """Load a trained model in-process (cwd must be the repo root for SpacyNLP)."""
    from rasa.core.agent import Agent

    quiet_logs()
    os.chdir(ROOT)
    return Agent.load(str(model))


async def parse_all(agent: Any, texts: Sequence[str]) -> List[Dict[str, Any]]:
    return [await agent.parse_message(text) for text in texts]


def predict(model: Path | str | Any, texts: Sequence[str]) -> List[Dict[str, Any]]:
    """Parse every text with a model path or an already loaded Agent."""
    agent = load_agent(model) if isinstance(model, (str, Path)) else model
    return asyncio.run(parse_all(agent, texts))


def top_intent(parse: Dict[str, Any]) -> str:
    return (parse.get("intent") or {}).get("name") or FALLBACK_INTENT


# ---------------------------------------------------------------------- scoring

@dataclass
class Scores:
    """Intent scores. Macro averages run over the true intents only.

    A prediction of ``nlu_fallback`` counts as a miss for the true intent (it
    lowers recall) but is not a class of its own, so it does not add a zero-F1
    column that no test sentence can ever fill.
    """

    n: int
    accuracy: float
    macro_f1: float
    macro_precision: float
    macro_recall: float
    fallback_rate: float
    per_intent: Dict[str, Dict[str, float]]
    confusions: List[Tuple[str, str, int]]  # (true, predicted, count), most frequent first
    errors: List[Tuple[str, str, str, float]] = field(default_factory=list)  # text, true, pred, conf
    predictions: List[str] = field(default_factory=list)
    parses: List[Dict[str, Any]] = field(default_factory=list, repr=False)

    def report(self, max_errors: int = 60) -> str:
        lines = [f"n={self.n} accuracy={self.accuracy:.3f} macro-F1={self.macro_f1:.3f} "
                 f"(P={self.macro_precision:.3f} R={self.macro_recall:.3f}) "
                 f"fallback={self.fallback_rate:.1%}",
                 f"{'intent':28} {'prec':>6} {'rec':>6} {'f1':>6} {'n':>4}"]
        for intent, row in sorted(self.per_intent.items(), key=lambda kv: kv[1]["f1-score"]):
            lines.append(f"{intent:28} {row['precision']:6.2f} {row['recall']:6.2f} "
                         f"{row['f1-score']:6.2f} {int(row['support']):4d}")
        if self.confusions:
            lines.append("confusions (true -> predicted: count):")
            lines += [f"  {t} -> {p}: {c}" for t, p, c in self.confusions]
        if self.errors:
            lines.append("errors (true -> predicted @confidence: text):")
            lines += [f"  {t} -> {p} @{c:.2f}: {x}" for x, t, p, c in self.errors[:max_errors]]
        return "\n".join(lines)


def score(y_true: Sequence[str], y_pred: Sequence[str], texts: Optional[Sequence[str]] = None,
          confidences: Optional[Sequence[float]] = None) -> Scores:
    from collections import Counter

    from sklearn.metrics import accuracy_score, classification_report, precision_recall_fscore_support

    labels = sorted(set(y_true))
    p, r, f1, _ = precision_recall_fscore_support(y_true, y_pred, labels=labels, average="macro",
                                                  zero_division=0)
    report = classification_report(y_true, y_pred, labels=labels, output_dict=True, zero_division=0)
    per_intent = {label: report[label] for label in labels}
    confusions = Counter((t, p_) for t, p_ in zip(y_true, y_pred) if t != p_)
    errors = []
    if texts is not None:
        confs = confidences or [0.0] * len(texts)
        errors = [(x, t, p_, c) for x, t, p_, c in zip(texts, y_true, y_pred, confs) if t != p_]
    return Scores(
        n=len(y_true), accuracy=float(accuracy_score(y_true, y_pred)), macro_f1=float(f1),
        macro_precision=float(p), macro_recall=float(r),
        fallback_rate=sum(1 for x in y_pred if x == FALLBACK_INTENT) / max(len(y_pred), 1),
        per_intent=per_intent,
        confusions=[(t, p_, c) for (t, p_), c in confusions.most_common()], errors=errors,
        predictions=list(y_pred))


def apply_fallback(parse: Dict[str, Any], threshold: float, ambiguity: float) -> str:
    """The intent FallbackClassifier(threshold, ambiguity_threshold) would give this parse.

    Works from the ranking before any fallback, so a threshold can be tuned
    without retraining. A fallback with an empty ranking (InputGuard) stays.
    """
    ranking = [r for r in parse.get("intent_ranking") or [] if r.get("name") != FALLBACK_INTENT]
    if not ranking:
        return top_intent(parse)
    first = ranking[0]
    if first["confidence"] < threshold:
        return FALLBACK_INTENT
    if len(ranking) > 1 and first["confidence"] - ranking[1]["confidence"] < ambiguity:
        return FALLBACK_INTENT
    return first["name"]


def score_parses(examples: Sequence[Example], parses: Sequence[Dict[str, Any]],
                 fallback: Optional[Tuple[float, float]] = None) -> Scores:
    """Score parses as served, or re-applying the fallback at (threshold, ambiguity)."""
    texts = [text for text, _ in examples]
    if fallback is None:
        predicted = [top_intent(p) for p in parses]
    else:
        predicted = [apply_fallback(p, *fallback) for p in parses]
    confidences = [float(next((r["confidence"] for r in p.get("intent_ranking") or []
                               if r.get("name") != FALLBACK_INTENT), 0.0)) for p in parses]
    return score([intent for _, intent in examples], predicted, texts, confidences)


def evaluate(model: Path | str | Any, examples: Sequence[Example]) -> Scores:
    """Parse the examples with the model and score the top intent as served."""
    parses = predict(model, [text for text, _ in examples])
    result = score_parses(examples, parses)
    result.parses = parses
    return result


def sweep(examples: Sequence[Example], parses: Sequence[Dict[str, Any]],
          thresholds: Sequence[float] = (0.0, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5, 0.6),
          ambiguities: Sequence[float] = (0.0, 0.05, 0.1)) -> List[Dict[str, float]]:
    """Macro-F1, accuracy and fallback share for each fallback setting."""
    rows = []
    for threshold in thresholds:
        for ambiguity in ambiguities:
            sc = score_parses(examples, parses, (threshold, ambiguity))
            rows.append({"threshold": threshold, "ambiguity": ambiguity, "macro_f1": sc.macro_f1,
                         "accuracy": sc.accuracy, "fallback": sc.fallback_rate,
                         "wrong_answer": 1 - sc.accuracy - sc.fallback_rate})
    return rows


# --------------------------------------------------------------------- training

def train(config: Path | str, out_dir: Path | str, name: str, nlu_only: bool = True,
          data: Optional[Sequence[Path | str]] = None, force: bool = False) -> Tuple[Path, float]:
    """Train with `rasa train [nlu]` in a subprocess; return (model path, seconds).

    Rasa's training cache goes to a fresh folder inside `out_dir`, so nothing
    is reused from earlier trainings and the shared `.rasa/cache` stays clean.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "rasa", "train"]
    if nlu_only:
        cmd += ["nlu", "--nlu", *[str(d) for d in (data or [NLU_DATA])]]
    else:
        cmd += ["--data", *[str(d) for d in (data or [ROOT / "data"])], "--domain", str(ROOT / "domain.yml")]
    cmd += ["--config", str(config), "--out", str(out_dir), "--fixed-model-name", name]
    if force and not nlu_only:  # `rasa train nlu` has no --force; the fresh cache below forces it
        cmd.append("--force")
    env = dict(os.environ, **ENV, RASA_CACHE_DIRECTORY=str(out_dir / ".rasa-cache"))
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"training failed ({' '.join(cmd)}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return out_dir / f"{name}.tar.gz", seconds


@dataclass
class Result:
    config: str
    heldout: Optional[Scores] = None
    cv: Optional[Scores] = None  # all CV test folds pooled
    cv_examples: List[Example] = field(default_factory=list, repr=False)
    cv_fold_f1: List[float] = field(default_factory=list)
    train_seconds: List[float] = field(default_factory=list)

    def row(self) -> Dict[str, Any]:
        out: Dict[str, Any] = {"config": self.config}
        if self.heldout:
            out.update(heldout_accuracy=self.heldout.accuracy, heldout_macro_f1=self.heldout.macro_f1,
                       heldout_fallback=self.heldout.fallback_rate)
        if self.cv:
            out.update(cv_accuracy=self.cv.accuracy, cv_macro_f1=self.cv.macro_f1,
                       cv_fold_f1=self.cv_fold_f1, cv_fallback=self.cv.fallback_rate)
        if self.train_seconds:
            out["train_seconds"] = self.train_seconds
        return out


def heldout(config: Path | str, workdir: Path, data: Path | str = NLU_DATA) -> Result:
    """Train NLU on all of `data` with `config`, evaluate on tests/nlu_test.yml."""
    model, seconds = train(config, workdir, f"heldout-{Path(config).stem}", data=[data])
    result = Result(str(config), train_seconds=[seconds])
    result.heldout = evaluate(model, load_examples(HELDOUT))
    return result


def cross_validate(config: Path | str, workdir: Path, n_folds: int = 3, seed: int = 42,
                   data: Path | str = NLU_DATA) -> Result:
    """Own stratified k-fold loop over `data` (same folds for every config)."""
    examples = load_examples(data)
    result = Result(str(config))
    pooled: List[Dict[str, Any]] = []
    for i, (train_part, test_part) in enumerate(folds(examples, n_folds, seed)):
        fold_dir = workdir / f"fold{i}"
        fold_dir.mkdir(parents=True, exist_ok=True)
        write_examples(train_part, fold_dir / "train.yml")
        model, seconds = train(config, fold_dir, f"cv-{Path(config).stem}-{i}", data=[fold_dir / "train.yml"])
        result.train_seconds.append(seconds)
        fold_scores = evaluate(model, test_part)
        result.cv_fold_f1.append(fold_scores.macro_f1)
        result.cv_examples += list(test_part)
        pooled += fold_scores.parses
        print(f"  {Path(config).name} fold {i}: macro-F1 {fold_scores.macro_f1:.3f} "
              f"acc {fold_scores.accuracy:.3f} train {seconds:.0f}s", file=sys.stderr, flush=True)
    result.cv = score_parses(result.cv_examples, pooled)
    result.cv.parses = pooled
    return result


# -------------------------------------------------------------------------- CLI

def main(argv: Optional[Sequence[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("mode", choices=["heldout", "cv"])
    parser.add_argument("configs", nargs="+")
    parser.add_argument("--folds", type=int, default=3)
    parser.add_argument("--data", default=str(NLU_DATA),
                        help="NLU training data (folder or file); pin a snapshot to compare runs")
    parser.add_argument("--json", help="append result rows to this JSON-lines file")
    parser.add_argument("--verbose", action="store_true", help="print per-intent reports")
    parser.add_argument("--sweep", action="store_true", help="macro-F1 per fallback threshold")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="nlu-eval-") as tmp:
        for config in args.configs:
            work = Path(tmp) / Path(config).stem
            if args.mode == "heldout":
                result = heldout(config, work, args.data)
            else:
                result = cross_validate(config, work, args.folds, data=args.data)
            row = result.row()
            print(json.dumps(row))
            scores = result.heldout or result.cv
            examples = load_examples(HELDOUT) if result.heldout else result.cv_examples
            if args.verbose:
                print(scores.report())
            if args.sweep:
                row["sweep"] = sweep(examples, scores.parses)
                for r in row["sweep"]:
                    print("  threshold {threshold:.2f} ambiguity {ambiguity:.2f}: macro-F1 {macro_f1:.3f} "
                          "acc {accuracy:.3f} fallback {fallback:.1%} wrong {wrong_answer:.1%}".format(**r))
            if args.json:
                with open(args.json, "a") as fh:
                    fh.write(json.dumps({"mode": args.mode, **row}) + "\n")


if __name__ == "__main__":
    main()

"""Train the Rasa model only when its inputs changed; print the model path.

The fingerprint covers config.yml, domain.yml, everything under data/ and the
spaCy pipeline. A model for the same fingerprint is reused as it is.
"""
from __future__ import annotations

import fcntl
import hashlib
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
INPUTS = ["domain.yml", "data", "models/spacy_nl/config.cfg"]


def fingerprint(config: str = "config.yml") -> str:
    digest = hashlib.sha256()
    for name in [config, *INPUTS]:
        path = ROOT / name
        files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
        for file in files:
            digest.update(str(file.relative_to(ROOT)).encode())
            digest.update(file.read_bytes())
    return digest.hexdigest()[:16]


def ensure_model(config: str = "config.yml", prefix: str = "nlu-core") -> Path:
    """The model for `config` (relative to the project) and the current data; trained when missing.

    `make bench` also keeps stock Rasa's model here (config bench/config_default.yml, prefix "stock").
    """
    name = f"{prefix}-{fingerprint(config)}"
    model = ROOT / "models" / f"{name}.tar.gz"
    (ROOT / "models").mkdir(exist_ok=True)
    # One training at a time: parallel test runs wait for the same model.
    with open(ROOT / "models" / ".train.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not model.exists():
            print(f"Training {model.name} (data or config changed) ...", file=sys.stderr)
            subprocess.run(
                [sys.executable, "-m", "rasa", "train", "--fixed-model-name", name, "--out", "models",
                 "--config", config, "--domain", "domain.yml", "--data", "data"],
                cwd=ROOT, check=True, stdout=sys.stderr)
    return model


if __name__ == "__main__":
    print(ensure_model().relative_to(ROOT))

"""The NLU must generalise: intent macro-F1 on the held-out split is at least 0.90.

The model is the one `make run` serves (scripts/model.py, trained only when
data or config changed). It is loaded once, in-process, and every sentence of
tests/nlu_test.yml is parsed. A prediction of `nlu_fallback` counts as a miss.
See docs/nlu.md for how the numbers are computed and what they were.
"""
from __future__ import annotations

import re
from typing import Any, List

import pytest

from scripts.nlu_eval import HELDOUT, NLU_DATA, Example, evaluate, load_agent, load_examples
from tests.servers import model_path

MIN_MACRO_F1 = 0.90


def _normal(text: str) -> str:
    return re.sub(r"[^\w]+", " ", text.lower()).strip()


@pytest.fixture(scope="module")
def heldout() -> List[Example]:
    return load_examples(HELDOUT)


@pytest.fixture(scope="module")
def agent() -> Any:
    return load_agent(model_path())


def test_heldout_split_is_not_in_training_data(heldout: List[Example]) -> None:
    training = load_examples(NLU_DATA)
    trained_texts = {_normal(text) for text, _ in training}
    leaked = [text for text, _ in heldout if _normal(text) in trained_texts]
    assert not leaked, f"held-out sentences also in data/nlu: {leaked}"
    unknown = sorted({intent for _, intent in heldout} - {intent for _, intent in training})
    assert not unknown, f"held-out intents without training data: {unknown}"


def test_heldout_intent_macro_f1(agent: Any, heldout: List[Example]) -> None:
    scores = evaluate(agent, heldout)
    assert scores.n == len(heldout) >= 200
    assert scores.macro_f1 >= MIN_MACRO_F1, (
        f"held-out intent macro-F1 {scores.macro_f1:.3f} < {MIN_MACRO_F1}\n{scores.report()}")

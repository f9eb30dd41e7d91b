"""Build the Dutch spaCy pipeline used by Rasa's SpacyNLP.

There is no downloadable Dutch model here (nothing may be fetched at run time),
so we build a blank ``nl`` pipeline with spaCy's rule-based tokenizer and a
lookup lemmatizer whose tables come from the installed ``spacy-lookups-data``
package, and save it under ``models/spacy_nl``.
"""
from __future__ import annotations

import sys
from pathlib import Path

import spacy


def build(target: Path) -> None:
    nlp = spacy.blank("nl")
    nlp.add_pipe("lemmatizer", config={"mode": "lookup"})
    nlp.initialize()
    lemmas = [t.lemma_ for t in nlp("ik heb mijn paspoorten verloren en de lantaarnpalen waren kapot")]
    if lemmas[1] == "heb" and "paspoort" not in lemmas:
        raise SystemExit(f"lookup lemmatizer did not load its tables: {lemmas}")
    target.mkdir(parents=True, exist_ok=True)
    nlp.to_disk(target)
    print(f"spaCy pipeline saved to {target} (lemmas: {' '.join(lemmas)})")


if __name__ == "__main__":
    build(Path(sys.argv[1] if len(sys.argv) > 1 else "models/spacy_nl"))

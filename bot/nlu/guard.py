"""InputGuard: messages that cannot be a question are never guessed at.

Empty or whitespace-only text, more than 1000 characters, HTML or script, and
text without any letter (emoji only, random symbols) get the intent
``nlu_fallback``. The fallback action then tells the citizen in Dutch what is
wrong with the message. Inside a guided flow the form engine gives the same
reasons and keeps every answer already given.
"""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Text

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.shared.nlu.constants import INTENT, INTENT_RANKING_KEY, TEXT
from rasa.shared.nlu.training_data.message import Message

from bot import validators

MAX_LENGTH = 1000


def input_problem(text: Optional[Text]) -> Optional[Text]:
    """Why ``text`` cannot be a question: leeg, te_lang, opmaak, geen_letters; else None."""
    text = text or ""
    if not text.strip():
        return "leeg"
    if len(text) > MAX_LENGTH:
        return "te_lang"
    if validators.looks_like_markup(text):
        return "opmaak"
    if not validators.has_letters(text):
        return "geen_letters"
    return None


@DefaultV1Recipe.register([DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER], is_trainable=False)
class InputGuard(GraphComponent):
    @classmethod
    def create(cls, config: Dict[Text, Any], model_storage: ModelStorage, resource: Resource,
               execution_context: ExecutionContext) -> "InputGuard":
        return cls()

    def process(self, messages: List[Message]) -> List[Message]:
        for message in messages:
            if input_problem(message.get(TEXT)) is not None:
                message.set(INTENT, {"name": "nlu_fallback", "confidence": 1.0}, add_to_output=True)
                message.set(INTENT_RANKING_KEY, [], add_to_output=True)
        return messages


@DefaultV1Recipe.register([DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER], is_trainable=False)
class InputCleaner(GraphComponent):
    """First in the pipeline: text the tokenizer cannot handle never reaches it.

    Lone UTF-16 surrogates (which crash spaCy) and control characters are
    removed, and the text is cut just past MAX_LENGTH, so a huge message costs
    no more than a long one (InputGuard still sees that it was too long).
    """

    @classmethod
    def create(cls, config: Dict[Text, Any], model_storage: ModelStorage, resource: Resource,
               execution_context: ExecutionContext) -> "InputCleaner":
        return cls()

    @staticmethod
    def clean(text: Optional[Text]) -> Text:
        text = (text or "")[: MAX_LENGTH * 4]
        text = "".join(ch for ch in text if not 0xD800 <= ord(ch) <= 0xDFFF
                       and (ch in "\n\t" or ord(ch) >= 32) and ord(ch) != 0x7F)
        return text[: MAX_LENGTH + 1]

    def process(self, messages: List[Message]) -> List[Message]:
        for message in messages:
            text = message.get(TEXT)
            if text is not None:
                message.set(TEXT, self.clean(text))
        return messages

    def process_training_data(self, training_data: Any) -> Any:
        return training_data

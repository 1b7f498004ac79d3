"""Reply-form questions in the platform's shape, in the three languages the study runs in.

The wording and the shape (``optional_id``, ``type``, ``buttons`` with per-language
``button_text``, ``description``) are the ones of the study's own schedule template, so a
participant sees the same questions as before; only now they are built, not hand-edited.
A template file lists questions as builder names (``"mos"``, ``"yes_no"``, ``"text"``,
``{"kind": "qualtrics", "url": ...}``) or as complete question objects; either way the
result is checked here, before any schedule is written.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..errors import InputFileError
from ..schedule_file import REPLY_TYPES

LANGUAGES = ("pol", "eng", "nor")
Texts = dict[str, str]

MOS_BUTTONS: tuple[Texts, ...] = (
    {"pol": "1. Zła", "eng": "1. Bad", "nor": "1. Dårlig"},
    {"pol": "2. Słaba", "eng": "2. Poor", "nor": "2. Svak"},
    {"pol": "3. Umiarkowana", "eng": "3. Fair", "nor": "3. Middels"},
    {"pol": "4. Dobra", "eng": "4. Good", "nor": "4. God"},
    {"pol": "5. Wspaniała", "eng": "5. Excellent", "nor": "5. Utmerket"},
)
MOS_TEXT: Texts = {
    "pol": "Oceń jakość wideo w skali od 1 do 5",
    "eng": "Assess the video quality on scale of 1 to 5",
    "nor": "Vurder videokvaliteten på en skala fra 1 til 5",
}
YES_NO_BUTTONS: tuple[tuple[bool, Texts], ...] = (
    (True, {"pol": "Tak", "eng": "Yes", "nor": "Ja"}),
    (False, {"pol": "Nie", "eng": "No", "nor": "Nei"}),
)
YES_NO_TEXT: Texts = {
    "pol": "Czy obejrzałeś/aś cały film bez przewijania do przodu?",
    "eng": "Did you watch the whole movie without video seeking?",
    "nor": "Så du hele filmen uten å spole fremover?",
}
FREE_TEXT: Texts = {
    "pol": "Co sądzisz?",
    "eng": "What do you think about the video?",
    "nor": "Hva synes du om videoen?",
}
QUALTRICS_TEXT: Texts = {
    "pol": "Dodatkowe pytania na stronie WWW",
    "eng": "Additional question on WWW page",
    "nor": "Flere spørsmål på nettsiden",
}
BUILDERS = ("mos", "yes_no", "text", "qualtrics")


def _texts(texts: Texts) -> list[dict[str, str]]:
    return [{"language": lang, "text": texts[lang]} for lang in LANGUAGES]


def _description(texts: Texts | None, default: Texts) -> list[dict[str, str]]:
    return _texts({**default, **(texts or {})})


def mos(qid: str, text: Texts | None = None) -> dict[str, Any]:
    """The 1-5 opinion score (the study's main question)."""
    buttons = [
        {"value": value, "button_text": _texts(labels)}
        for value, labels in enumerate(MOS_BUTTONS, start=1)
    ]
    return {
        "optional_id": qid,
        "type": "MOS",
        "buttons": buttons,
        "description": _description(text, MOS_TEXT),
    }


def yes_no(qid: str, text: Texts | None = None) -> dict[str, Any]:
    """A yes/no question: the platform has no boolean type, it is a MOS with two buttons."""
    buttons = [{"value": value, "button_text": _texts(labels)} for value, labels in YES_NO_BUTTONS]
    return {
        "optional_id": qid,
        "type": "MOS",
        "buttons": buttons,
        "description": _description(text, YES_NO_TEXT),
    }


def free_text(qid: str, text: Texts | None = None) -> dict[str, Any]:
    return {"optional_id": qid, "type": "TEXT", "description": _description(text, FREE_TEXT)}


def qualtrics(qid: str, url: str, text: Texts | None = None) -> dict[str, Any]:
    """A link to an external survey; the platform requires it to be the form's last question."""
    return {
        "optional_id": qid,
        "type": "QUALTRICS",
        "qualtrics_url": url,
        "description": _description(text, QUALTRICS_TEXT),
    }


def default_form(qualtrics_url: str | None = None) -> list[dict[str, Any]]:
    """The study's usual form: MOS, yes/no, free text, and the survey link when one is given."""
    form = [mos("q1"), yes_no("q2"), free_text("q3")]
    if qualtrics_url:
        form.append(qualtrics("q4", qualtrics_url))
    return form


def load_form(path: Path, qualtrics_url: str | None = None) -> list[dict[str, Any]]:
    """A template file (JSON list of questions) as the reply form; one-line error otherwise."""
    where = f"template {path.name}"
    try:
        data = json.loads(path.read_text(encoding="utf-8-sig"))
    except OSError as exc:
        raise InputFileError(f"{where}: cannot read: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise InputFileError(f"{where}: not UTF-8 text") from None
    except json.JSONDecodeError as exc:
        raise InputFileError(
            f"{where}: line {exc.lineno} column {exc.colno}: not valid JSON: {exc.msg}"
        ) from None
    return build_form(data, where, qualtrics_url)


def build_form(data: Any, where: str, qualtrics_url: str | None = None) -> list[dict[str, Any]]:
    if not isinstance(data, list) or not data:
        raise InputFileError(f"{where}: must be a non-empty JSON list of questions")
    form: list[dict[str, Any]] = []
    for index, item in enumerate(data):
        qid = f"q{index + 1}"
        here = f"{where}: question {index + 1}"
        if isinstance(item, str):
            item = {"kind": item}
        if not isinstance(item, dict):
            raise InputFileError(f"{here}: must be a builder name or an object")
        if "kind" in item:
            form.append(_built(item, qid, here, qualtrics_url))
        else:
            form.append(_raw(item, here))
    ids = [q.get("optional_id") for q in form if q.get("optional_id") is not None]
    if len(ids) != len(set(ids)):
        raise InputFileError(f"{where}: two questions share an optional_id")
    last = len(form) - 1
    for index, question in enumerate(form):
        if question["type"] == "QUALTRICS" and index != last:
            raise InputFileError(
                f"{where}: question {index + 1}: QUALTRICS must be the last question"
            )
    return form


def _built(item: dict[str, Any], qid: str, here: str, url: str | None) -> dict[str, Any]:
    kind = item["kind"]
    qid = str(item.get("optional_id", qid))
    text = item.get("text")
    if text is not None and (
        not isinstance(text, dict)
        or not all(isinstance(k, str) and isinstance(v, str) for k, v in text.items())
        or set(text) - set(LANGUAGES)
    ):
        raise InputFileError(f"{here}: text must map {', '.join(LANGUAGES)} to strings")
    if kind == "mos":
        return mos(qid, text)
    if kind == "yes_no":
        return yes_no(qid, text)
    if kind == "text":
        return free_text(qid, text)
    if kind == "qualtrics":
        link = item.get("url") or url
        if not isinstance(link, str) or not link.startswith(("https://", "http://")):
            raise InputFileError(f"{here}: qualtrics needs an http(s) url (or --qualtrics-url)")
        return qualtrics(qid, link, text)
    raise InputFileError(f"{here}: unknown kind {kind!r}; known: {', '.join(BUILDERS)}")


def _raw(item: dict[str, Any], here: str) -> dict[str, Any]:
    """A complete question object, checked as upload-schedule will check it."""
    kind = item.get("type")
    if kind not in REPLY_TYPES:
        raise InputFileError(
            f"{here}: needs 'kind' ({', '.join(BUILDERS)}) or 'type' ({', '.join(REPLY_TYPES)})"
        )
    if kind == "MOS":
        buttons = item.get("buttons")
        if not isinstance(buttons, list) or not buttons:
            raise InputFileError(f"{here}: MOS needs a non-empty 'buttons' list")
        if not all(isinstance(b, dict) and "value" in b for b in buttons):
            raise InputFileError(f"{here}: every button needs a 'value'")
    if kind == "QUALTRICS":
        url = item.get("qualtrics_url")
        if not isinstance(url, str) or not url.startswith(("https://", "http://")):
            raise InputFileError(f"{here}: qualtrics_url must be an http(s) URL")
    return item

"""Facts, then words: the typed brief of a run and its deterministic recommendations.

The brief is built from the run's NPZ arrays only (``{component: arrays}``). It holds
**statements**: one sentence each, in the asked locale, carrying the numbers it may use (the
finding's value as displayed, and the norm it is compared with). The LLM rewrites statement *i*
into sentence *i* — it phrases and connects, it does not add facts — so the sentence count is
fixed by construction and the validator can check every number against its statement.

What it states: every meaningful scalar of each component (sections overview … text), the
**timeline** — the video cut into quarters (whole-minute spans past :data:`QUARTERS_UP_TO_S`)
with each span's cuts, motion, loudness, speech share and brightness, the loudest and quietest
span, where the pace and the motion peak — and the **forecast** of ``popularity_prediction``
(views and likes with their 80 % interval, the like rate, each what-if; read with
:func:`~trendflow.forecast.present.forecast_json`, the one reader of that NPZ).

Recommendations are rules over the findings, each against a norm named in its statement: each
has an id (``R1``…), the evidence it rests on (fact keys) and, when the forecast holds a what-if
for its feature, the predicted effect (the median views with the feature moved). A
recommendation's statement carries its ``[Rn]`` marker, which the text keeps so a reader can
find the recommendation.

A statement's ``numbers`` are its facts' shown values, then its norms (each one of
:data:`NORMS`). Numbers are written so that the validator reads each one back: plain digits, a
decimal point, never glued to letters, ranges as "from a to b" (a dash would read as a minus).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from trendflow.forecast.present import forecast_json
from trendflow.forecast.tier0 import FIRST_SECONDS_S, TIER0_GROUPS
from trendflow.pipeline.components.metadata_features import LANGUAGES, YOUTUBE_CATEGORIES

Locale = Literal["ru", "en"]
Arrays = Mapping[str, np.ndarray]
SECTIONS = ("overview", "hook", "pace", "picture", "sound", "timeline", "text", "forecast",
            "recommendations")
SECTION_TITLES: dict[str, dict[str, str]] = {
    "ru": {"overview": "Обзор", "hook": "Первые секунды", "pace": "Темп и движение",
           "picture": "Картинка", "sound": "Звук", "timeline": "По ходу видео",
           "text": "Название и описание", "forecast": "Прогноз",
           "recommendations": "Рекомендации"},
    "en": {"overview": "Overview", "hook": "The first seconds", "pace": "Pace and motion",
           "picture": "Picture", "sound": "Sound", "timeline": "Over the video",
           "text": "Title and description", "forecast": "Forecast",
           "recommendations": "Recommendations"},
}
HOOK_S = FIRST_SECONDS_S  # the first seconds that decide whether a viewer stays
LOUDNESS_TARGET_LUFS = -14.0  # what YouTube normalises playback to
GATE_LUFS = -70.0  # EBU R 128's absolute gate: quieter short-term windows count as silence
QUARTERS_UP_TO_S = 240.0  # longer videos: whole-minute spans, at most MAX_SPANS of them
MAX_SPANS = 8

NORMS: dict[str, str] = {
    "-14": "LUFS, YouTube's playback normalisation",
    "-1": "dBTP, the true-peak ceiling that survives lossy encoding",
    "3": "seconds of the hook; also the hashtags YouTube shows above the title",
    "6": "cuts per minute, the slowest pace a short video usually keeps",
    "0": "the bottom of a 0 to 1 scale", "1": "the top of a 0 to 1 scale",
    "0.3": "brightness below which a picture looks dark on a phone",
    "50": "% static frames that bore viewers; also 50 description words",
    "30": "% of the frames with a face (or of the track silent)",
    "20": "% of the time with speech (a voice-over)",
    "70": "title characters shown in search",
    "5": "tags, the low end of a useful set", "10": "tags, the high end of a useful set",
    "60": "hashtags past which YouTube ignores them all",
    "80": "% interval of the forecast (p10 to p90)",
    "90": "% of the frames, the percentile of motion stated",
    "85": "% of the spectral energy, the rolloff's definition",
    "120": "words per minute, the low end of a clear narration pace",
    "160": "words per minute, the high end of a clear narration pace",
    # Hasler & Süsstrunk (2003): the bounds of their colourfulness classes
    "15": "H&S slightly colourful", "33": "H&S moderately colourful",
    "45": "H&S averagely colourful", "59": "H&S quite colourful",
    "82": "H&S highly colourful", "109": "H&S extremely colourful",
}
"""Every norm a statement compares a finding with, and why it is the norm."""


@dataclass(frozen=True, slots=True)
class Fact:
    key: str  # component.key (or a derived key: component.what, timeline.span<i>_…)
    value: float
    unit: str | None
    shown: str  # as the statement writes it

    def as_dict(self) -> dict[str, Any]:
        return {"key": self.key, "value": self.value, "unit": self.unit, "shown": self.shown}


@dataclass(frozen=True, slots=True)
class Statement:
    id: str
    section: str
    text: str
    numbers: tuple[str, ...]  # every number the sentence may (and must) carry, as shown
    facts: tuple[str, ...] = ()
    recommendation: str | None = None
    priority: int = 0  # 0 core, 1 detail, 2 filler: the last ones go when fewer are asked


@dataclass(frozen=True, slots=True)
class Recommendation:
    id: str
    rule: str
    text: str
    evidence: tuple[str, ...]
    effect: dict[str, float] | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "rule": self.rule, "text": self.text,
                "evidence": list(self.evidence), "effect": self.effect}


@dataclass(frozen=True, slots=True)
class Brief:
    locale: Locale
    statements: tuple[Statement, ...]
    recommendations: tuple[Recommendation, ...]
    facts: dict[str, Fact] = field(default_factory=dict)

    def sections(self) -> list[tuple[str, list[Statement]]]:
        """The statements grouped by section, in the brief's order."""
        out: dict[str, list[Statement]] = {}
        for st in self.statements:
            out.setdefault(st.section, []).append(st)
        return list(out.items())


def fmt(value: float, decimals: int) -> str:
    """A number as the statements write it (decimal point; ``-0`` as ``0``)."""
    text = f"{value:.{decimals}f}"
    return "0" if float(text) == 0 else text


def count(value: float) -> str:
    """A large count to three significant digits (``12437`` → ``12400``), as people read it."""
    if abs(value) < 1000:
        return fmt(value, 0)
    digits = int(math.floor(math.log10(abs(value)))) + 1
    return str(int(round(value, 3 - digits)))


def plain(value: float) -> str:
    """A target value: whole when it is whole, else to two decimals."""
    return fmt(value, 0) if float(value).is_integer() else fmt(value, 2)


Texts = dict[str, str]


def _words(ru: str, en: str) -> Texts:
    return {"ru": ru, "en": en}


# What each what-if moves, as a phrase around its target ({0}): ru, en, the scale to the shown
# unit, the norms the phrase names.
_WHATIF_PHRASES: dict[str, tuple[str, str, float, tuple[str, ...]]] = {
    "metadata_features.title_chars": ("с названием в {0} символов",
                                      "with a title of {0} characters", 1.0, ()),
    "metadata_features.tags_count": ("с {0} тегами", "with {0} tags", 1.0, ()),
    "metadata_features.description_chars": ("с описанием в {0} символов",
                                            "with a description of {0} characters", 1.0, ()),
    "metadata_features.publish_hour": ("при публикации в {0} ч по UTC",
                                       "published at {0} h UTC", 1.0, ()),
    "loudness.integrated_lufs": ("при громкости {0} LUFS", "at a loudness of {0} LUFS", 1.0,
                                 ()),
    "shot_detection.cuts_per_minute": ("при {0} склейках в минуту",
                                       "with {0} cuts per minute", 1.0, ()),
    "speech_activity.speech_ratio": ("с речью {0} % времени", "with speech {0} % of the time",
                                     100.0, ()),
    "faces.first_seconds_face_ratio": ("с лицом в {0} % кадров первых 3 секунд",
                                       "with a face in {0} % of the first 3 seconds' frames",
                                       100.0, ("3",)),
}


@dataclass(frozen=True, slots=True)
class _Effect:
    """One what-if of the forecast, as the brief states it."""

    feature: str
    phrase: str  # "with 15 tags", in the brief's locale
    facts: tuple[Fact, ...]  # the target, the median views after the move, the change in %
    norms: tuple[str, ...]  # the numbers the phrase names besides its target
    # "9 % more": the size of the change in words, not a sign a rephrasing would drop
    change: str


class _Builder:
    def __init__(self, locale: Locale, components: Mapping[str, Arrays]) -> None:
        self.locale = locale
        self.c = components
        self.facts: dict[str, Fact] = {}
        self.statements: list[Statement] = []
        self.recs: list[Recommendation] = []
        self.forecast = _read_forecast(components.get("popularity_prediction"))
        # A what-if against a zero median has no relative change to state.
        self.effects = {w["feature"]: self._effect(w) for w in
                        (self.forecast["whatifs"] if self.forecast else [])
                        if w["change_p50_ratio"] is not None}

    def t(self, ru: str, en: str) -> str:
        return ru if self.locale == "ru" else en

    def scalar(self, component: str, key: str) -> float | None:
        arrays = self.c.get(component)
        if arrays is None or key not in arrays or arrays[key].shape != ():
            return None
        arr = arrays[key]
        if arr.dtype.kind not in "biuf":
            return None
        value = float(arr)
        return None if np.isnan(value) else value

    def array(self, component: str, key: str) -> np.ndarray | None:
        """A per-frame (or per-item) array of a component, or None when it is not there."""
        arrays = self.c.get(component)
        if arrays is None or key not in arrays or arrays[key].ndim == 0:
            return None
        return np.asarray(arrays[key])

    def text_value(self, component: str, key: str) -> str | None:
        arrays = self.c.get(component)
        if arrays is None or key not in arrays or arrays[key].dtype.kind != "U":
            return None
        return str(arrays[key])

    def fact(self, component: str, key: str, decimals: int, unit: str | None = None,
             scale: float = 1.0, *, unknown: float | None = None) -> Fact | None:
        """The scalar ``component.key`` as a fact; None when absent, NaN or ``unknown``."""
        value = self.scalar(component, key)
        if value is None or value == unknown:
            return None
        return self.derived(f"{component}.{key}", value * scale, unit, decimals)

    def derived(self, key: str, value: float, unit: str | None, decimals: int | None = None,
                *, shown: str | None = None) -> Fact:
        """A fact computed from arrays (``decimals`` or an explicit ``shown``)."""
        text = shown if shown is not None else fmt(value, decimals or 0)
        f = Fact(key, float(value), unit, text)
        self.facts[f.key] = f
        return f

    def say(self, section: str, texts: Texts, facts: Sequence[Fact],
            norms: tuple[str, ...] = (), *, priority: int = 0,
            recommendation: str | None = None, **extra: str) -> None:
        text = texts[self.locale].format(*[f.shown for f in facts], **extra)
        numbers = tuple(f.shown for f in facts) + norms
        sid = f"s{len(self.statements) + 1}"
        self.statements.append(Statement(sid, section, text, numbers,
                                         tuple(f.key for f in facts), recommendation, priority))

    def recommend(self, rule: str, texts: Texts, evidence: list[Fact],
                  norms: tuple[str, ...] = (), feature: str | None = None, **extra: str) -> None:
        """A recommendation from ``evidence`` against ``norms``; with the forecast's what-if of
        ``feature`` (``component.key``) when the run has one: its predicted effect."""
        rid = f"R{len(self.recs) + 1}"
        found = self.effects.get(feature) if feature else None
        text = texts[self.locale].format(*[f.shown for f in evidence], **extra)
        effect = None
        facts = list(evidence)
        if found is not None:
            target, views, change = found.facts
            effect = {"target": target.value, "views_p50": views.value,
                      "change_pct": change.value}
            text += self.t(f" Прогноз {found.phrase}: {views.shown} просмотров по медиане "
                           f"({found.change}).", f" Forecast {found.phrase}: a median of "
                           f"{views.shown} views ({found.change}).")
            facts += found.facts
            norms += found.norms
        self.recs.append(Recommendation(rid, rule, text, tuple(f.key for f in evidence), effect))
        numbers = tuple(f.shown for f in facts) + norms
        self.statements.append(Statement(f"s{len(self.statements) + 1}", "recommendations",
                                         f"[{rid}] {text}", numbers,
                                         tuple(f.key for f in facts), rid, 0))

    def _effect(self, w: Mapping[str, Any]) -> _Effect:
        feature = w["feature"]
        ru, en, scale, norms = _WHATIF_PHRASES.get(feature, (
            f"если {feature} равно {{0}}", f"with {feature} at {{0}}", 1.0, ()))
        slug = feature.replace(".", "_")
        target = self.derived(f"popularity_prediction.whatif_{slug}_target",
                              w["target"] * scale, None, shown=plain(w["target"] * scale))
        views = self.derived(f"popularity_prediction.whatif_{slug}_views_p50",
                             w["views"]["p50"], "views", shown=count(w["views"]["p50"]))
        pct = 100.0 * (w["change_p50_ratio"] - 1.0)
        change = self.derived(f"popularity_prediction.whatif_{slug}_change_pct", pct, "%",
                              shown=fmt(abs(pct), 0))
        phrase = self.t(ru, en).format(target.shown)
        size = (self.t("изменение {0} %", "a change of {0} %") if change.shown == "0" else
                self.t("на {0} % больше", "{0} % more") if pct > 0 else
                self.t("на {0} % меньше", "{0} % fewer"))
        return _Effect(feature, phrase, (target, views, change), norms,
                       size.format(change.shown))


_FORECAST_KEYS = frozenset({"views", "likes", "horizon_days", "contributions",
                            "contribution_groups_utf8", "contribution_group_spans",
                            "whatif_utf8", "whatif_spans", "whatif_current", "whatif_target",
                            "whatif_views"})


def _read_forecast(arrays: Arrays | None) -> dict[str, Any] | None:
    if arrays is None or not set(arrays) >= _FORECAST_KEYS:
        return None
    return forecast_json(arrays, None)


def _spans(duration: float) -> list[tuple[float, float]]:
    """The timeline's spans: quarters, or whole minutes for a long video (at most
    :data:`MAX_SPANS`; a last piece under half a span joins the one before)."""
    if duration <= QUARTERS_UP_TO_S:
        digits = 0 if duration >= 20 else 1
        edges = [round(duration * k / 4, digits) for k in range(5)]
    else:
        step = 60.0 * math.ceil(duration / (MAX_SPANS * 60.0))
        edges = [step * k for k in range(int(duration // step) + 1)]
        if duration - edges[-1] < step / 2:
            edges[-1] = round(duration)
        else:
            edges.append(round(duration))
    return [(a, b) for a, b in zip(edges, edges[1:], strict=False) if b > a]


def _in_span(times: np.ndarray, a: float, b: float, last: bool) -> np.ndarray:
    return (times >= a) & ((times <= b) if last else (times < b))


def _energy_mean(lufs: np.ndarray) -> float | None:
    """Mean loudness of short-term values above the gate (as energy, like every LUFS mean)."""
    loud = lufs[lufs > GATE_LUFS]
    if not loud.size:
        return None
    return float(10 * np.log10(np.mean(10 ** (loud.astype(np.float64) / 10))))


def _overlap(segments: np.ndarray, a: float, b: float) -> float:
    """Seconds of the ``[start, end)`` segments inside ``[a, b)``."""
    if not segments.size:
        return 0.0
    starts, ends = np.maximum(segments[:, 0], a), np.minimum(segments[:, 1], b)
    return float(np.clip(ends - starts, 0, None).sum())


_CATEGORY_RU = {
    1: "Фильмы и анимация", 2: "Авто и транспорт", 10: "Музыка", 15: "Животные", 17: "Спорт",
    18: "Короткометражки", 19: "Путешествия и события", 20: "Игры", 21: "Видеоблоги",
    22: "Люди и блоги", 23: "Юмор", 24: "Развлечения", 25: "Новости и политика",
    26: "Хобби и стиль", 27: "Образование", 28: "Наука и техника",
    29: "Некоммерческие организации", 30: "Фильмы", 43: "Шоу", 44: "Трейлеры",
}
_CATEGORY_EN = {i: name for name, i in YOUTUBE_CATEGORIES.items()}
_LANGUAGE_NAMES: dict[str, tuple[str, str]] = {
    "en": ("английский", "English"), "ru": ("русский", "Russian"), "es": ("испанский", "Spanish"),
    "pt": ("португальский", "Portuguese"), "hi": ("хинди", "Hindi"),
    "de": ("немецкий", "German"), "fr": ("французский", "French"), "ja": ("японский", "Japanese"),
    "ko": ("корейский", "Korean"), "ar": ("арабский", "Arabic"),
    "id": ("индонезийский", "Indonesian"), "tr": ("турецкий", "Turkish"),
    "it": ("итальянский", "Italian"), "vi": ("вьетнамский", "Vietnamese"),
    "zh": ("китайский", "Chinese"), "pl": ("польский", "Polish"),
    "uk": ("украинский", "Ukrainian"), "th": ("тайский", "Thai"), "nl": ("нидерландский", "Dutch"),
}
_WEEKDAYS = (("понедельник", "Monday"), ("вторник", "Tuesday"), ("среду", "Wednesday"),
             ("четверг", "Thursday"), ("пятницу", "Friday"), ("субботу", "Saturday"),
             ("воскресенье", "Sunday"))
_EMOTIONS: dict[str, tuple[str, str]] = {
    "angry": ("гнев", "anger"), "disgust": ("отвращение", "disgust"), "fear": ("страх", "fear"),
    "happy": ("радость", "happiness"), "sad": ("грусть", "sadness"),
    "surprise": ("удивление", "surprise"), "neutral": ("нейтральное выражение", "neutral"),
}
# Hasler & Süsstrunk's classes of their colourfulness metric M: (lower bound, ru, en).
_COLOURFULNESS = ((0, "не красочно", "not colourful"),
                  (15, "слегка красочно", "slightly colourful"),
                  (33, "умеренно красочно", "moderately colourful"),
                  (45, "средне красочно", "averagely colourful"),
                  (59, "довольно красочно", "quite colourful"),
                  (82, "очень красочно", "highly colourful"),
                  (109, "чрезвычайно красочно", "extremely colourful"))


def _language_name(b: _Builder, code: str) -> str:
    names = _LANGUAGE_NAMES.get(code.split("-")[0].lower())
    return code if names is None else names[0 if b.locale == "ru" else 1]


def _overview(b: _Builder) -> None:
    d, w, h = (b.fact("metadata_features", k, 0 if k != "duration_s" else 1)
               for k in ("duration_s", "width", "height"))
    if d and w and h and w.value > 0 and h.value > 0:
        vertical = h.value > w.value
        shape = {"ru": "вертикальное" if vertical else "горизонтальное",
                 "en": "vertical" if vertical else "horizontal"}[b.locale]
        b.say("overview", _words("Видео длится {0} с, кадр {1} на {2} пикселей, {shape}.",
                                 "The video lasts {0} s at {1} by {2} pixels, {shape}."),
              [d, w, h], shape=shape)
    fps = b.fact("metadata_features", "fps", 1)
    if fps:
        b.say("overview", _words("Исходная частота кадров: {0} кадра в секунду.",
                                 "The source frame rate is {0} frames per second."), [fps],
              priority=1)
    if b.scalar("metadata_features", "has_audio") == 0:
        b.say("overview", _words("В видео нет звуковой дорожки.", "The video has no soundtrack."),
              [])
    category = b.scalar("metadata_features", "category_id")
    names = _CATEGORY_RU if b.locale == "ru" else _CATEGORY_EN
    if category is not None and int(category) in names:
        b.say("overview", _words("Категория на YouTube: «{name}».",
                                 "The YouTube category is {name}."), [], priority=1,
              name=names[int(category)])
    lang = b.scalar("metadata_features", "language_index")
    if lang is not None and 0 <= lang < len(LANGUAGES):
        b.say("overview", _words("Язык видео по его данным: {name}.",
                                 "The video's stated language is {name}."), [], priority=2,
              name=_language_name(b, LANGUAGES[int(lang)]))
    followers = b.scalar("metadata_features", "channel_follower_count")
    if followers is not None and followers >= 0:
        f = b.derived("metadata_features.channel_follower_count", followers, "count",
                      shown=count(followers))
        b.say("overview", _words("У канала {0} подписчиков.", "The channel has {0} subscribers."),
              [f], priority=1)
    if b.scalar("metadata_features", "publish_known"):
        day = b.scalar("metadata_features", "publish_weekday")
        hour = b.fact("metadata_features", "publish_hour", 0, "hour", unknown=-1)
        if day is not None and 0 <= day <= 6 and hour:
            b.say("overview", _words("Видео опубликовано в {day} в {0} ч по UTC.",
                                     "It was published on a {day} at {0} h UTC."), [hour],
                  priority=2, day=_WEEKDAYS[int(day)][0 if b.locale == "ru" else 1])


def _hook(b: _Builder) -> None:
    cuts = b.array("shot_detection", "cut_timestamps_s")
    if cuts is not None:
        n = int(np.sum(cuts < HOOK_S))
        f = b.derived("shot_detection.cuts_in_hook", n, "count", 0)
        b.say("hook", _words("В первые 3 секунды монтажных склеек: {0}.",
                             "The first 3 seconds have {0} cuts."), [f], ("3",))
        if n == 0:
            b.recommend("hook_cut", _words(
                "Добавьте смену плана в первые 3 секунды: сейчас склеек там {0}.",
                "Add a change of shot within the first 3 seconds: there are {0} cuts there now."),
                [f], ("3",))
        if cuts.size:
            first = b.derived("shot_detection.first_cut_s", float(cuts[0]), "s", 1)
            b.say("hook", _words("Первая склейка приходится на {0} с.",
                                 "The first cut comes at {0} s."), [first], priority=1)
    times, lufs = b.array("loudness", "short_term_times_s"), b.array("loudness", "short_term_lufs")
    if times is not None and lufs is not None:
        early = lufs[times <= HOOK_S]
        if early.size and float(early.max()) > GATE_LUFS:
            f = b.derived("loudness.hook_max_lufs", float(early.max()), "LUFS", 1)
            b.say("hook", _words("Самый громкий момент первых 3 секунд: {0} LUFS.",
                                 "The loudest moment of the first 3 seconds is {0} LUFS."),
                  [f], ("3",), priority=1)
    faces = b.c.get("faces")
    if faces is not None and {"face_count", "timestamps_s"} <= set(faces):
        group = next(g for g in TIER0_GROUPS if g.name == "faces.first_seconds_face_ratio")
        ratio = float(group.extract(faces)[0])
        if not math.isnan(ratio):
            f = b.derived("faces.first_seconds_face_ratio", 100 * ratio, "%", 0)
            b.say("hook", _words("В первые 3 секунды лицо видно в {0} % кадров.",
                                 "A face is visible in {0} % of the first 3 seconds' frames."),
                  [f], ("3",))
            overall = b.scalar("faces", "frames_with_faces_ratio")
            # a video without faces at all gets the "faces" rule instead
            if ratio == 0 and overall is not None and overall >= 0.3:
                b.recommend("hook_face", _words(
                    "Покажите лицо в первые 3 секунды: сейчас оно там в {0} % кадров.",
                    "Show a face within the first 3 seconds: it is in {0} % of their frames "
                    "now."), [f], ("3",), feature="faces.first_seconds_face_ratio")
    ocr_t, ocr_n = b.array("ocr_text", "timestamps_s"), b.array("ocr_text", "box_count")
    if ocr_t is not None and ocr_n is not None and np.any(ocr_t < HOOK_S):
        share = 100 * float(np.mean(ocr_n[ocr_t < HOOK_S] > 0))
        f = b.derived("ocr_text.hook_text_ratio", share, "%", 0)
        b.say("hook", _words("В первые 3 секунды текст на экране есть в {0} % кадров.",
                             "On-screen text appears in {0} % of the first 3 seconds' frames."),
              [f], ("3",), priority=1)
    segments = b.array("speech_activity", "segments_s")
    if segments is not None and segments.size:
        start = b.derived("speech_activity.first_speech_s", float(segments[0, 0]), "s", 1)
        b.say("hook", _words("Речь начинается на {0} с.", "Speech starts at {0} s."), [start],
              priority=1)
        talk = b.scalar("speech_activity", "speech_ratio")
        if start.value > HOOK_S and talk is not None and talk >= 0.3:
            b.recommend("hook_speech", _words(
                "Начните говорить в первые 3 секунды: сейчас речь начинается на {0} с.",
                "Start speaking within the first 3 seconds: speech starts at {0} s now."),
                [start], ("3",))
    mt, mm = b.array("motion", "timestamps_s"), b.array("motion", "motion_magnitude")
    if mt is not None and mm is not None and np.any(mt < HOOK_S):
        f = b.derived("motion.hook_motion_mean", float(mm[mt < HOOK_S].mean()),
                      "frame heights/s", 2)
        b.say("hook", _words("Движение в первые 3 секунды: {0} высоты кадра в секунду.",
                             "Motion in the first 3 seconds is {0} frame heights per second."),
              [f], ("3",), priority=2)


def _pace(b: _Builder) -> None:
    n, cpm = b.fact("shot_detection", "n_cuts", 0), b.fact("shot_detection", "cuts_per_minute", 1)
    if n and cpm:
        b.say("pace", _words("В видео {0} склеек, {1} в минуту.",
                             "The edit has {0} cuts, {1} per minute."), [n, cpm])
        if cpm.value < 6:
            b.recommend("pace", _words(
                "Ускорьте монтаж: {0} склеек в минуту — медленный темп, короткие ролики обычно "
                "держат не меньше 6.", "Cut faster: {0} cuts per minute is a slow pace; short "
                "videos usually keep at least 6."), [cpm], ("6",),
                feature="shot_detection.cuts_per_minute")
    for key, ru, en, d in (
        ("mean_shot_length_s", "Средняя длина плана: {0} с.", "Shots last {0} s on average.", 1),
        ("median_shot_length_s", "Медианная длина плана: {0} с.", "The median shot lasts {0} s.",
         1),
    ):
        f = b.fact("shot_detection", key, d)
        if f:
            b.say("pace", _words(ru, en), [f], priority=1)
    lengths = b.array("shot_detection", "shot_lengths_s")
    if lengths is not None and lengths.size > 1:
        lo = b.derived("shot_detection.shortest_shot_s", float(lengths.min()), "s", 1)
        hi = b.derived("shot_detection.longest_shot_s", float(lengths.max()), "s", 1)
        b.say("pace", _words("Самый длинный план длится {0} с.", "The longest shot lasts {0} s."),
              [hi], priority=1)
        b.say("pace", _words("Самый короткий план длится {0} с.",
                             "The shortest shot lasts {0} s."), [lo], priority=2)
    m = b.fact("motion", "motion_mean", 2)
    if m:
        b.say("pace", _words("Среднее движение в кадре: {0} высоты кадра в секунду.",
                             "Mean motion is {0} frame heights per second."), [m])
    static = b.fact("motion", "static_ratio", 0, "%", scale=100)
    if static:
        b.say("pace", _words("Почти неподвижных кадров: {0} %.",
                             "{0} % of the frames are nearly static."), [static])
        if static.value > 50:
            b.recommend("static", _words(
                "Добавьте движение: {0} % кадров почти статичны, больше 50 % — зритель скучает.",
                "Add motion: {0} % of the frames are nearly static; over 50 % viewers get "
                "bored."), [static], ("50",))
    for key, ru, en, p in (
        ("camera_motion_mean", "Движение камеры в среднем: {0} высоты кадра в секунду.",
         "The camera moves {0} frame heights per second on average.", 2),
        ("object_motion_mean", "Движение объектов относительно камеры: {0} высоты кадра в "
         "секунду.", "Objects move {0} frame heights per second relative to the camera.", 2),
    ):
        f = b.fact("motion", key, 2)
        if f:
            b.say("pace", _words(ru, en), [f], priority=p)
    p90 = b.fact("motion", "motion_p90", 2)
    if p90:
        b.say("pace", _words("В 90 % кадров движение не выше {0} высоты кадра в секунду.",
                             "In 90 % of the frames motion stays below {0} frame heights per "
                             "second."), [p90], ("90",), priority=2)


def _colour_name(b: _Builder, rgb: np.ndarray) -> str:
    r, g, bl = (float(v) / 255 for v in rgb)
    hi, lo = max(r, g, bl), min(r, g, bl)
    if hi - lo < 0.12:
        ru, en = (("чёрный", "black") if hi < 0.2 else ("белый", "white") if hi > 0.85
                  else ("серый", "grey"))
        return ru if b.locale == "ru" else en
    hue = 60 * ((g - bl) / (hi - lo) % 6 if hi == r else
                (bl - r) / (hi - lo) + 2 if hi == g else (r - g) / (hi - lo) + 4)
    names = ((15, "красный", "red"), (45, "оранжевый", "orange"), (70, "жёлтый", "yellow"),
             (165, "зелёный", "green"), (200, "голубой", "cyan"), (260, "синий", "blue"),
             (300, "фиолетовый", "purple"), (345, "розовый", "pink"), (360, "красный", "red"))
    _, ru, en = next(n for n in names if hue < n[0])
    if hi < 0.45:
        ru, en = f"тёмно-{ru}", f"dark {en}"
    return ru if b.locale == "ru" else en


def _picture(b: _Builder) -> None:
    br = b.fact("color_stats", "brightness_mean", 2)
    if br:
        b.say("picture", _words("Средняя яркость: {0} по шкале от 0 до 1.",
                                "Mean brightness is {0} on a scale from 0 to 1."), [br], ("0", "1"))
        if br.value < 0.3:
            b.recommend("brightness", _words(
                "Осветлите картинку: яркость {0} ниже 0.3 выглядит тёмной на телефоне.",
                "Brighten the picture: a brightness of {0}, below 0.3, looks dark on a phone."),
                [br], ("0.3",))
    for key, ru, en, p in (
        ("brightness_std", "Яркость меняется в пределах {0} от кадра к кадру.",
         "Brightness varies by {0} across the frames.", 2),
        ("contrast_mean", "Средний контраст: {0}.", "Mean contrast is {0}.", 1),
        ("saturation_mean", "Средняя насыщенность: {0}.", "Mean saturation is {0}.", 1),
        ("warm_cool_balance", "Баланс тёплых и холодных тонов: {0}.",
         "The warm-cool balance is {0}.", 1),
    ):
        f = b.fact("color_stats", key, 2)
        if f:
            b.say("picture", _words(ru, en), [f], priority=p)
    colour = b.fact("color_stats", "colorfulness_mean", 1)
    if colour:
        i = max(k for k, c in enumerate(_COLOURFULNESS) if colour.value >= c[0]) if \
            colour.value >= 0 else 0
        lo, ru, en = _COLOURFULNESS[i]
        name = ru if b.locale == "ru" else en
        if i + 1 < len(_COLOURFULNESS):
            hi = str(_COLOURFULNESS[i + 1][0])
            b.say("picture", _words(
                "Красочность по Хаслеру и Зюсструнку: {0}, по их шкале «{name}» (от {lo} до "
                "{hi}).", "Hasler-Süsstrunk colourfulness is {0}, {name} on their scale (from {lo} "
                "to {hi})."), [colour], (str(lo), hi), priority=1, name=name, lo=str(lo), hi=hi)
        else:
            b.say("picture", _words(
                "Красочность по Хаслеру и Зюсструнку: {0}, по их шкале «{name}» (от {lo}).",
                "Hasler-Süsstrunk colourfulness is {0}, {name} on their scale (from {lo})."),
                [colour], (str(lo),), priority=1, name=name, lo=str(lo))
    warm = b.fact("color_stats", "warm_fraction_mean", 0, "%", scale=100)
    cool = b.fact("color_stats", "cool_fraction_mean", 0, "%", scale=100)
    if warm and cool:
        b.say("picture", _words("Тёплые оттенки у {0} % пикселей, холодные у {1} %.",
                                "Warm hues cover {0} % of the pixels, cool ones {1} %."),
              [warm, cool], priority=2)
    palette, pshare = b.array("color_stats", "video_palette_rgb"), \
        b.array("color_stats", "video_palette_share")
    if palette is not None and pshare is not None and pshare.size and float(pshare[0]) > 0:
        f = b.derived("color_stats.video_palette_share_0", 100 * float(pshare[0]), "%", 0)
        b.say("picture", _words("Главный цвет видео, {name}, занимает {0} % кадра.",
                                "The main colour, {name}, takes {0} % of the picture."), [f],
              priority=2, name=_colour_name(b, palette[0]))
    faces = b.fact("faces", "frames_with_faces_ratio", 0, "%", scale=100)
    if faces:
        b.say("picture", _words("Лицо видно в {0} % кадров.",
                                "A face is visible in {0} % of the frames."), [faces])
        if faces.value < 30:
            b.recommend("faces", _words(
                "Покажите лицо: сейчас оно в {0} % кадров, а ролики с лицом в кадре больше 30 % "
                "времени удерживают лучше.", "Show a face: it is in {0} % of the frames now; "
                "videos with a face over 30 % of the time hold viewers better."), [faces],
                ("30",))
    share = b.fact("faces", "mean_screen_share", 0, "%", scale=100)
    if share:
        b.say("picture", _words("Лица занимают в среднем {0} % экрана.",
                                "Faces cover {0} % of the screen on average."), [share])
    for key, ru, en, d, p in (
        ("mean_face_count", "В кадре в среднем {0} лица.", "A frame shows {0} faces on average.",
         1, 1),
        ("max_face_count", "Больше всего лиц в одном кадре: {0}.",
         "At most {0} faces share one frame.", 0, 1),
        ("n_largest_face_tracks",
         "Главное лицо появляется в кадре {0} раз (непрерывными отрезками).",
         "The main face appears in {0} continuous runs.", 0, 2),
    ):
        f = b.fact("faces", key, d)
        if f and (faces is None or faces.value > 0):
            b.say("picture", _words(ru, en), [f], priority=p)
    _emotions(b)
    text = b.fact("ocr_text", "frames_with_text_ratio", 0, "%", scale=100)
    if text:
        b.say("picture", _words("Текст на экране есть в {0} % кадров.",
                                "On-screen text appears in {0} % of the frames."), [text])
    for key, ru, en, d, scale, p in (
        ("distinct_lines", "Разных строк текста на экране: {0}.",
         "The screen shows {0} distinct lines of text.", 0, 1.0, 1),
        ("mean_text_area_ratio", "Текст занимает в среднем {0} % кадра.",
         "Text covers {0} % of the frame on average.", 1, 100.0, 1),
    ):
        f = b.fact("ocr_text", key, d, scale=scale)
        if f:
            b.say("picture", _words(ru, en), [f], priority=p)


def _emotions(b: _Builder) -> None:
    share, labels = b.array("face_emotion", "dominant_share"), b.array("face_emotion", "labels")
    dominant = b.array("face_emotion", "dominant_emotion")
    if share is None or labels is None or dominant is None or not dominant.size:
        return
    n = b.derived("face_emotion.n_faces", dominant.size, "faces", 0)
    b.say("picture", _words("Выражение оценено у {0} лиц.",
                            "Facial expression was read on {0} faces."), [n], priority=2)
    order = np.argsort(-share, kind="stable")
    for rank, j in enumerate(order[:2]):
        if share[j] <= 0:
            break
        label = str(labels[j])
        name = _EMOTIONS.get(label, (label, label))[0 if b.locale == "ru" else 1]
        f = b.derived(f"face_emotion.dominant_share_{label}", 100 * float(share[j]), "%", 0)
        if rank == 0:
            b.say("picture", _words("Чаще всего на лицах {name}: {0} % лиц.",
                                    "The most common expression is {name}: {0} % of the faces."),
                  [f], name=name)
        else:
            b.say("picture", _words("На втором месте {name}: {0} % лиц.",
                                    "Next comes {name}: {0} % of the faces."), [f], priority=1,
                  name=name)


def _sound(b: _Builder) -> None:
    lufs = b.fact("loudness", "integrated_lufs", 1)
    if lufs and lufs.value > GATE_LUFS:
        b.say("sound", _words("Интегральная громкость: {0} LUFS, а YouTube нормализует звук к "
                              "-14 LUFS.", "Integrated loudness is {0} LUFS; YouTube normalises "
                              "playback to -14 LUFS."), [lufs], ("-14",))
        gap = LOUDNESS_TARGET_LUFS - lufs.value
        if lufs.value < -16:
            f = b.derived("loudness.gap_to_target_lu", gap, "LU", shown=fmt(abs(gap), 1))
            b.recommend("loudness_up", _words(
                "Поднимите громкость на {1} дБ до -14 LUFS: при {0} LUFS ролик звучит тише "
                "остальных.", "Raise the level by {1} dB to -14 LUFS: at {0} LUFS the video "
                "sounds quieter than the rest."), [lufs, f], ("-14",),
                feature="loudness.integrated_lufs")
        elif lufs.value > -12:
            f = b.derived("loudness.gap_to_target_lu", gap, "LU", shown=fmt(abs(gap), 1))
            b.recommend("loudness_down", _words(
                "Сведите звук тише на {1} дБ до -14 LUFS: при {0} LUFS платформа всё равно "
                "приглушит его, а пики останутся сжатыми.", "Mix {1} dB quieter, to -14 LUFS: at "
                "{0} LUFS the platform turns it down anyway and the peaks stay squashed."),
                [lufs, f], ("-14",), feature="loudness.integrated_lufs")
    elif lufs:
        b.say("sound", _words("Звуковая дорожка почти беззвучна: {0} LUFS.",
                              "The soundtrack is nearly silent: {0} LUFS."), [lufs])
    peak = b.fact("loudness", "true_peak_dbtp", 1)
    if peak and peak.value > GATE_LUFS:
        b.say("sound", _words("Истинный пик: {0} dBTP.", "The true peak is {0} dBTP."), [peak])
        if peak.value > -1:
            b.recommend("true_peak", _words(
                "Поставьте лимитер на -1 dBTP: пик {0} dBTP может исказиться после сжатия.",
                "Put a limiter at -1 dBTP: a peak of {0} dBTP may distort after encoding."),
                [peak], ("-1",))
    sample = b.fact("loudness", "sample_peak_dbfs", 1)
    if sample and sample.value > GATE_LUFS:
        b.say("sound", _words("Пик отсчётов: {0} dBFS.", "The sample peak is {0} dBFS."),
              [sample], priority=2)
    lra = b.fact("loudness", "loudness_range_lu", 1)
    if lra:
        b.say("sound", _words("Диапазон громкости: {0} LU.",
                              "The loudness range is {0} LU."), [lra], priority=1)
    st_max = b.fact("loudness", "short_term_max_lufs", 1)
    if st_max and st_max.value > GATE_LUFS:
        b.say("sound", _words("Самое громкое трёхсекундное окно: {0} LUFS.",
                              "The loudest three-second window reaches {0} LUFS."), [st_max],
              priority=1)
    st = b.array("loudness", "short_term_lufs")
    if st is not None and np.any(st > GATE_LUFS):
        f = b.derived("loudness.short_term_min_lufs", float(st[st > GATE_LUFS].min()), "LUFS", 1)
        b.say("sound", _words("Самое тихое трёхсекундное окно со звуком: {0} LUFS.",
                              "The quietest three-second window with sound is {0} LUFS."), [f],
              priority=2)
    tempo = b.fact("audio_features", "tempo_bpm", 0)
    if tempo and tempo.value > 0:
        b.say("sound", _words("Оценка темпа музыки: {0} ударов в минуту.",
                              "The estimated tempo is {0} BPM."), [tempo])
    for key, ru, en, d, p, norms in (
        ("n_beats", "Отслежено ударов ритма: {0}.", "{0} beats were tracked.", 0, 2, ()),
        ("onset_rate_per_s", "Звуковых атак в секунду: {0}.", "There are {0} sound onsets per "
         "second.", 1, 1, ()),
        ("rms_dbfs_mean", "Средний уровень сигнала: {0} dBFS.", "The mean signal level is {0} "
         "dBFS.", 1, 2, ()),
        ("spectral_centroid_mean", "Спектральный центроид в среднем: {0} Гц.", "The spectral "
         "centroid averages {0} Hz.", 0, 2, ()),
        ("spectral_rolloff_mean", "85 % энергии спектра лежит ниже {0} Гц.", "85 % of the "
         "spectral energy lies below {0} Hz.", 0, 2, ("85",)),
        ("spectral_flatness_mean", "Спектральная плоскостность: {0}, где 0 — тон, 1 — шум.",
         "Spectral flatness is {0}, where 0 is tonal and 1 is noise.", 2, 2, ("0", "1")),
        ("zcr_mean", "Доля пересечений нуля: {0} на отсчёт.", "The zero-crossing rate is {0} per "
         "sample.", 2, 2, ()),
    ):
        feat = b.fact("audio_features", key, d)
        if feat:
            b.say("sound", _words(ru, en), [feat], norms, priority=p)
    silence = b.fact("audio_features", "silence_ratio", 0, "%", scale=100)
    if silence:
        b.say("sound", _words("Тишина занимает {0} % звуковой дорожки.",
                              "Silence takes {0} % of the soundtrack."), [silence], priority=1)
        if silence.value > 30:
            b.recommend("silence", _words(
                "Вырежьте паузы: тишина занимает {0} % дорожки, больше 30 %.",
                "Cut the pauses: silence takes {0} % of the track, over 30 %."), [silence],
                ("30",))
    _speech(b)


def _speech(b: _Builder) -> None:
    speech = b.fact("speech_activity", "speech_ratio", 0, "%", scale=100)
    if speech:
        b.say("sound", _words("Речь звучит {0} % времени.",
                              "Speech takes {0} % of the time."), [speech])
        if speech.value < 20:
            b.recommend("speech", _words(
                "Добавьте закадровый голос: речь звучит лишь {0} % времени, меньше 20 %.",
                "Add a voice-over: speech takes only {0} % of the time, under 20 %."),
                [speech], ("20",), feature="speech_activity.speech_ratio")
    dur = b.fact("speech_activity", "speech_duration_s", 1, "s")
    segments = b.array("speech_activity", "segments_s")
    if dur and segments is not None and segments.size:
        n = b.derived("speech_activity.n_segments", len(segments), "count", 0)
        b.say("sound", _words("Речь длится {0} с в {1} фрагментах.",
                              "Speech lasts {0} s in {1} segments."), [dur, n], priority=1)
        track = b.scalar("speech_activity", "audio_duration_s")
        edges = np.concatenate([[0.0], segments.reshape(-1),
                                [track if track is not None else float(segments[-1, 1])]])
        starts, ends = edges[0::2], edges[1::2]  # the stretches between speech segments
        gaps = ends - starts
        i = int(np.argmax(gaps))
        if gaps[i] > 0:
            g = b.derived("speech_activity.longest_pause_s", float(gaps[i]), "s", 1)
            a = b.derived("speech_activity.longest_pause_start_s", float(starts[i]), "s", 1)
            b.say("sound", _words("Самая длинная пауза без речи: {0} с, начиная с {1} с.",
                                  "The longest stretch without speech lasts {0} s, from {1} s."),
                  [g, a], priority=1)
    words = b.fact("transcript", "word_count", 0)
    if words and words.value > 0:
        b.say("sound", _words("В тексте речи {0} слов.", "The transcript has {0} words."),
              [words])
    wpm = b.fact("transcript", "words_per_minute", 0)
    if wpm and wpm.value > 0:
        b.say("sound", _words("Темп речи: {0} слов в минуту.",
                              "Speech runs at {0} words per minute."), [wpm])
        if wpm.value > 190 or wpm.value < 100:
            fast = wpm.value > 190
            b.recommend("speech_rate", _words(
                ("Говорите медленнее" if fast else "Говорите живее") + ": {0} слов в минуту, а "
                "внятный закадровый текст звучит в темпе от 120 до 160.",
                ("Speak slower" if fast else "Speak livelier") + ": {0} words per minute, "
                "while clear narration runs at 120 to 160."), [wpm], ("120", "160"))
    language = b.text_value("transcript", "language")
    if language and language != "und":
        b.say("sound", _words("Язык речи: {name}.", "The spoken language is {name}."), [],
              priority=1, name=_language_name(b, language))
    source = b.text_value("transcript", "source")
    if source in ("captions", "asr") and words and words.value > 0:
        b.say("sound", {"captions": _words("Текст речи взят из субтитров видео.",
                                           "The transcript comes from the video's captions."),
                        "asr": _words("Текст речи распознан моделью.",
                                      "The transcript was recognised from the audio.")}[source],
              [], priority=2)


@dataclass(frozen=True, slots=True)
class _SpanMeasure:
    """One measure the timeline states for each span ({2}: its value)."""

    component: str
    name: str
    unit: str
    ru: str
    en: str
    decimals: int
    priority: int


_SPAN_MEASURES = (
    _SpanMeasure("shot_detection", "cuts", "count", "склеек {2}", "there are {2} cuts", 0, 1),
    _SpanMeasure("loudness", "lufs", "LUFS", "громкость в среднем {2} LUFS",
                 "loudness averages {2} LUFS", 1, 1),
    _SpanMeasure("speech_activity", "speech_pct", "%", "речь звучит {2} % времени",
                 "speech takes {2} % of the time", 0, 1),
    _SpanMeasure("motion", "motion_mean", "frame heights/s",
                 "движение {2} высоты кадра в секунду", "motion is {2} frame heights per second",
                 2, 2),
    _SpanMeasure("color_stats", "brightness", "0-1", "яркость {2}", "brightness is {2}", 2, 2),
)


def _timeline(b: _Builder) -> None:
    """One measure at a time over every span — cuts, loudness, speech share, motion,
    brightness — so that a shorter text drops the least needed measures, not the end of the
    video; then the loudest and quietest span, the busiest one and where the motion peaks."""
    duration = b.scalar("metadata_features", "duration_s")
    if duration is None or duration <= 0:
        return
    digits = 0 if duration >= 20 else 1
    spans = _spans(duration)
    edges = [(b.derived(f"timeline.span{i}_start_s", a, "s", digits),
              b.derived(f"timeline.span{i}_end_s", z, "s", digits))
             for i, (a, z) in enumerate(spans, start=1)]

    def per_span(times: np.ndarray | None, values: np.ndarray | None,
                 reduce: Callable[[np.ndarray], float | None]) -> list[float | None]:
        if times is None or values is None:
            return []
        out = []
        for i, (a, z) in enumerate(spans):
            inside = values[_in_span(times, a, z, i == len(spans) - 1)]
            out.append(reduce(inside) if inside.size else None)
        return out

    cuts = b.array("shot_detection", "cut_timestamps_s")
    segments = b.array("speech_activity", "segments_s")
    values: dict[str, list[float | None]] = {
        "cuts": [] if cuts is None else [
            float(np.sum(_in_span(cuts, a, z, i == len(spans) - 1)))
            for i, (a, z) in enumerate(spans)],
        "lufs": per_span(b.array("loudness", "short_term_times_s"),
                         b.array("loudness", "short_term_lufs"), _energy_mean),
        "speech_pct": [] if segments is None else [
            100 * _overlap(segments, a, z) / (z - a) for a, z in spans],
        "motion_mean": per_span(b.array("motion", "timestamps_s"),
                                b.array("motion", "motion_magnitude"), lambda v: float(v.mean())),
        "brightness": per_span(b.array("color_stats", "timestamps_s"),
                               b.array("color_stats", "brightness"), lambda v: float(v.mean())),
    }
    found: dict[str, list[tuple[float, int]]] = {}
    for m in _SPAN_MEASURES:
        for i, value in enumerate(values[m.name]):
            if value is None:
                continue
            f = b.derived(f"{m.component}.span{i + 1}_{m.name}", value, m.unit, m.decimals)
            b.say("timeline", _words(f"С {{0}} по {{1}} с: {m.ru}.",
                                     f"From {{0}} to {{1}} s {m.en}."),
                  [*edges[i], f], priority=m.priority)
            found.setdefault(m.name, []).append((value, i))
    levels = found.get("lufs", [])
    if len(levels) >= 2 and max(levels)[0] - min(levels)[0] >= 0.1:
        for (_, j), ru, en in ((max(levels), "Громче всего", "The loudest span"),
                               (min(levels), "Тише всего", "The quietest span")):
            f = b.facts[f"loudness.span{j + 1}_lufs"]
            b.say("timeline", _words(ru + " с {0} по {1} с: {2} LUFS.",
                                     en + " runs from {0} to {1} s at {2} LUFS."),
                  [*edges[j], f])
    counts = [v for v, _ in found.get("cuts", [])]
    if len(counts) > 1 and max(counts) > min(counts):
        j = counts.index(max(counts))  # the first of the busiest
        f = b.facts[f"shot_detection.span{j + 1}_cuts"]
        b.say("timeline", _words("Темп монтажа выше всего с {0} по {1} с: {2} склеек.",
                                 "The edit is busiest from {0} to {1} s, with {2} cuts."),
              [*edges[j], f])
    mt, mm = b.array("motion", "timestamps_s"), b.array("motion", "motion_magnitude")
    if mt is not None and mm is not None and mm.size:
        k = int(np.argmax(mm))
        at = b.derived("motion.peak_time_s", float(mt[k]), "s", 1)
        peak = b.derived("motion.peak_motion", float(mm[k]), "frame heights/s", 2)
        b.say("timeline", _words("Пик движения приходится на {0} с: {1} высоты кадра в секунду.",
                                 "Motion peaks at {0} s with {1} frame heights per second."),
              [at, peak], priority=1)


def _text(b: _Builder) -> None:
    title = b.fact("metadata_features", "title_chars", 0)
    if title:
        b.say("text", _words("В названии {0} символов.", "The title has {0} characters."),
              [title])
        if title.value < 20:
            b.recommend("title_short", _words(
                "Сделайте название информативнее: {0} символов мало, в поиске видно до 70.",
                "Make the title say more: {0} characters is little; search shows up to 70."),
                [title], ("70",), feature="metadata_features.title_chars")
        elif title.value > 70:
            b.recommend("title_long", _words(
                "Сократите название: из {0} символов поиск покажет только 70.",
                "Shorten the title: of its {0} characters search shows only 70."), [title],
                ("70",), feature="metadata_features.title_chars")
    words = b.fact("metadata_features", "description_words", 0)
    if words:
        b.say("text", _words("В описании {0} слов.", "The description has {0} words."), [words])
        if words.value < 50:
            b.recommend("description", _words(
                "Допишите описание хотя бы до 50 слов: сейчас их {0}.",
                "Extend the description to at least 50 words: it has {0} now."), [words],
                ("50",), feature="metadata_features.description_chars")
    tags = b.fact("metadata_features", "tags_count", 0)
    if tags:
        b.say("text", _words("Тегов: {0}.", "There are {0} tags."), [tags])
        if tags.value == 0:
            b.recommend("tags", _words(
                "Добавьте от 5 до 10 тегов: сейчас их {0}.",
                "Add 5 to 10 tags: there are {0} now."), [tags], ("5", "10"),
                feature="metadata_features.tags_count")
    hashtags = b.fact("metadata_features", "description_hashtags", 0)
    if hashtags:
        b.say("text", _words("Хештегов в описании: {0}.",
                             "The description has {0} hashtags."), [hashtags], priority=1)
        in_title = b.scalar("metadata_features", "title_hashtags") or 0.0
        if hashtags.value == 0 and in_title == 0:
            b.recommend("hashtags_none", _words(
                "Добавьте до 3 хештегов: YouTube показывает первые 3 над названием, а сейчас "
                "их {0}.", "Add up to 3 hashtags: YouTube shows the first 3 above the title, and "
                "there are {0} now."), [hashtags], ("3",))
        elif hashtags.value + in_title > 60:
            total = b.derived("metadata_features.hashtags_total", hashtags.value + in_title,
                              "count", 0)
            b.recommend("hashtags_many", _words(
                "Сократите хештеги: при {0}, больше 60, YouTube не учитывает ни одного.",
                "Cut the hashtags: with {0}, over 60, YouTube ignores all of them."), [total],
                ("60",))
    for key, ru, en, p in (
        ("title_words", "Слов в названии: {0}.", "The title has {0} words.", 1),
        ("description_chars", "Длина описания: {0} символов.", "The description is {0} "
         "characters long.", 1),
        ("tags_mean_chars", "Средняя длина тега: {0} символов.", "A tag is {0} characters long "
         "on average.", 1),
        ("description_links", "Ссылок в описании: {0}.", "The description has {0} links.", 2),
        ("title_hashtags", "Хештегов в названии: {0}.", "The title has {0} hashtags.", 2),
        ("title_exclamations", "Восклицательных знаков в названии: {0}.", "The title has {0} "
         "exclamation marks.", 2),
        ("title_questions", "Вопросительных знаков в названии: {0}.", "The title has {0} "
         "question marks.", 2),
        ("title_digits", "Цифр в названии: {0}.", "The title has {0} digits.", 2),
        ("title_emoji", "Эмодзи в названии: {0}.", "The title has {0} emoji.", 2),
        ("description_emoji", "Эмодзи в описании: {0}.", "The description has {0} emoji.", 2),
        ("description_questions", "Вопросов в описании: {0}.", "The description asks {0} "
         "questions.", 2),
        ("description_exclamations", "Восклицательных знаков в описании: {0}.",
         "The description has {0} exclamation marks.", 2),
        ("description_digits", "Цифр в описании: {0}.", "The description has {0} digits.", 2),
        ("tags_words", "Слов в тегах: {0}.", "The tags have {0} words.", 2),
        ("tags_chars", "Теги вместе занимают {0} символов.", "The tags take {0} characters "
         "together.", 2),
    ):
        f = b.fact("metadata_features", key, 1 if key == "tags_mean_chars" else 0)
        if f:
            b.say("text", _words(ru, en), [f], priority=p)
    for key, ru, en in (
        ("title_caps_ratio", "Заглавные буквы составляют {0} % букв названия.",
         "Capitals are {0} % of the title's letters."),
        ("description_caps_ratio", "Заглавные буквы составляют {0} % букв описания.",
         "Capitals are {0} % of the description's letters."),
    ):
        f = b.fact("metadata_features", key, 0, "%", scale=100)
        if f:
            b.say("text", _words(ru, en), [f], priority=2)


def _forecast(b: _Builder) -> None:
    doc = b.forecast
    if doc is None:
        return
    horizon = b.derived("popularity_prediction.horizon_days", doc["horizon_days"], "days", 0)
    for what, ru, en in (("views", "просмотров", "views"), ("likes", "лайков", "likes")):
        q = doc[what]
        p10, p50, p90 = (b.derived(f"popularity_prediction.{what}_{k}", q[k], what,
                                   shown=count(q[k])) for k in ("p10", "p50", "p90"))
        if doc["age_modelled"]:
            b.say("forecast", _words(f"Медианный прогноз через {{1}} дней: {{0}} {ru}.",
                                     f"The median forecast at {{1}} days is {{0}} {en}."),
                  [p50, horizon])
        else:
            b.say("forecast", _words(f"Медианный прогноз: {{0}} {ru} в возрасте обучающих "
                                     "данных.", f"The median forecast is {{0}} {en} at the age "
                                     "of the training labels."), [p50])
        b.say("forecast", _words(f"С вероятностью 80 % {ru} будет от {{0}} до {{1}}.",
                                 f"The 80 % interval runs from {{0}} to {{1}} {en}."),
              [p10, p90], ("80",))
    if doc["views"]["p50"] > 0:
        rate = b.derived("popularity_prediction.like_rate_pct",
                         100 * doc["likes"]["p50"] / doc["views"]["p50"], "%", 1)
        b.say("forecast", _words("Ожидаемая доля лайков: {0} % просмотров.",
                                 "The expected like rate is {0} % of the views."), [rate])
    for w in doc["whatifs"]:
        if w["feature"] not in b.effects:
            continue
        effect = b.effects[w["feature"]]
        phrase = effect.phrase[:1].upper() + effect.phrase[1:]
        b.say("forecast", _words(f"{phrase} медианный прогноз — {{1}} просмотров "
                                 f"({effect.change}).", f"{phrase}, the median forecast would "
                                 f"be {{1}} views ({effect.change})."), list(effect.facts),
              effect.norms)


def _least_needed(pool: Sequence[Statement]) -> int:
    """The statement to leave out first: of the lowest priority (a recommendation last), the
    last one of the section that has the most statements left, so sections shrink evenly."""
    worst = max((st.priority, st.recommendation is None) for st in pool)
    sizes: dict[str, int] = {}
    for st in pool:
        sizes[st.section] = sizes.get(st.section, 0) + 1
    return max((i for i, st in enumerate(pool)
                if (st.priority, st.recommendation is None) == worst),
               key=lambda i: (sizes[pool[i].section], i))


RULES: tuple[Callable[[_Builder], None], ...] = (_overview, _hook, _pace, _picture, _sound,
                                                 _timeline, _text, _forecast)


def build_brief(components: Mapping[str, Arrays], *, locale: Locale, sentences_min: int,
                sentences_max: int) -> Brief:
    """The brief of a run for a text of ``sentences_min``…``sentences_max`` sentences.

    Statements of the lowest priority are left out until the count fits ``sentences_max``,
    the last of the largest section first; recommendations go last of all. A run with fewer
    statements than ``sentences_min`` yields a shorter brief (the caller refuses it: it cannot
    be stretched without inventing facts).
    """
    b = _Builder(locale, components)
    for rule in RULES:
        rule(b)
    # The recommendations come last, as their own section, in the order they were found.
    order = {name: i for i, name in enumerate(SECTIONS)}
    pool = sorted(b.statements, key=lambda s: order[s.section])
    while len(pool) > sentences_max:
        del pool[_least_needed(pool)]
    kept = tuple(Statement(f"s{i + 1}", s.section, s.text, s.numbers, s.facts,
                           s.recommendation, s.priority) for i, s in enumerate(pool))
    used = {s.recommendation for s in kept if s.recommendation}
    return Brief(locale, kept, tuple(r for r in b.recs if r.id in used), b.facts)


__all__ = ["NORMS", "SECTIONS", "SECTION_TITLES", "Brief", "Fact", "Locale", "Recommendation",
           "Statement", "build_brief", "count", "fmt"]

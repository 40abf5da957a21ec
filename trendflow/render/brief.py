"""Facts, then words: the typed brief of a run and its deterministic recommendations.

The brief is built from the run's NPZ arrays only (``{component: arrays}``; the prediction's
``popularity_prediction`` NPZ is read generically by key when the run has it). It holds
**statements**: one sentence each, in the asked locale, carrying the numbers it may use (the
finding's value as displayed, and the norm it is compared with). The LLM rewrites statement *i*
into sentence *i* — it phrases and connects, it does not add facts — so the sentence count is
fixed by construction and the validator can check every number against its statement.

Recommendations are rules over the findings: each has an id (``R1``…), the evidence it rests on
(fact keys) and, when the prediction holds what-if keys for its feature
(``what_if_<feature>_<stat>``), the predicted effect. A recommendation's statement carries its
``[Rn]`` marker, which the text keeps so a reader can find the recommendation.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

Locale = Literal["ru", "en"]
Arrays = Mapping[str, np.ndarray]
SECTIONS = ("overview", "hook", "pace", "picture", "sound", "text", "forecast",
            "recommendations")
SECTION_TITLES: dict[str, dict[str, str]] = {
    "ru": {"overview": "Обзор", "hook": "Первые секунды", "pace": "Темп и движение",
           "picture": "Картинка", "sound": "Звук", "text": "Название и описание",
           "forecast": "Прогноз", "recommendations": "Рекомендации"},
    "en": {"overview": "Overview", "hook": "The first seconds", "pace": "Pace and motion",
           "picture": "Picture", "sound": "Sound", "text": "Title and description",
           "forecast": "Forecast", "recommendations": "Recommendations"},
}
HOOK_S = 3.0  # the first seconds that decide whether a viewer stays
LOUDNESS_TARGET_LUFS = -14.0  # what YouTube normalises playback to


@dataclass(frozen=True, slots=True)
class Fact:
    key: str  # component.key
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


class _Builder:
    def __init__(self, locale: Locale, components: Mapping[str, Arrays]) -> None:
        self.locale = locale
        self.c = components
        self.facts: dict[str, Fact] = {}
        self.statements: list[Statement] = []
        self.recs: list[Recommendation] = []

    def scalar(self, component: str, key: str) -> float | None:
        arrays = self.c.get(component)
        if arrays is None or key not in arrays or arrays[key].shape != ():
            return None
        arr = arrays[key]
        if arr.dtype.kind not in "biuf":
            return None
        value = float(arr)
        return None if np.isnan(value) else value

    def fact(self, component: str, key: str, decimals: int, unit: str | None = None,
             scale: float = 1.0) -> Fact | None:
        value = self.scalar(component, key)
        if value is None:
            return None
        f = Fact(f"{component}.{key}", value * scale, unit, fmt(value * scale, decimals))
        self.facts[f.key] = f
        return f

    def say(self, section: str, texts: dict[str, str], facts: list[Fact],
            norms: tuple[str, ...] = (), *, priority: int = 0,
            recommendation: str | None = None, **extra: str) -> None:
        text = texts[self.locale].format(*[f.shown for f in facts], **extra)
        numbers = tuple(f.shown for f in facts) + norms
        sid = f"s{len(self.statements) + 1}"
        self.statements.append(Statement(sid, section, text, numbers,
                                         tuple(f.key for f in facts), recommendation, priority))

    def recommend(self, rule: str, texts: dict[str, str], evidence: list[Fact],
                  norms: tuple[str, ...] = (), feature: str | None = None, **extra: str) -> None:
        rid = f"R{len(self.recs) + 1}"
        effect = self.effect(feature or rule)
        text = texts[self.locale].format(*[f.shown for f in evidence], **extra)
        self.recs.append(Recommendation(rid, rule, text, tuple(f.key for f in evidence), effect))
        marker = f"[{rid}]"
        numbers = tuple(f.shown for f in evidence) + norms
        if effect:
            shown = {k: fmt(v, 1) for k, v in effect.items()}
            label = {"ru": " Прогноз изменения: ", "en": " Predicted change: "}[self.locale]
            text += label + ", ".join(f"{k} {v}" for k, v in shown.items()) + "."
            numbers += tuple(shown.values())
        self.statements.append(Statement(f"s{len(self.statements) + 1}", "recommendations",
                                         f"{marker} {text}", numbers,
                                         tuple(f.key for f in evidence), rid, 0))

    def effect(self, feature: str) -> dict[str, float] | None:
        pred = self.c.get("popularity_prediction")
        if pred is None:
            return None
        prefix = f"what_if_{feature}_"
        out = {k[len(prefix):]: float(v) for k, v in pred.items()
               if k.startswith(prefix) and v.shape == () and v.dtype.kind in "iuf"}
        return out or None


def _words(locale: Locale, ru: str, en: str) -> dict[str, str]:
    return {"ru": ru, "en": en}


def _overview(b: _Builder) -> None:
    d, w, h = (b.fact("metadata_features", k, 0 if k != "duration_s" else 1)
               for k in ("duration_s", "width", "height"))
    if d and w and h:
        vertical = h.value > w.value
        shape = {"ru": "вертикальное" if vertical else "горизонтальное",
                 "en": "vertical" if vertical else "horizontal"}[b.locale]
        b.say("overview", _words(b.locale, "Видео длится {0} с, кадр {1} на {2} пикселей, "
                                 "{shape}.", "The video lasts {0} s at {1} by {2} pixels, "
                                 "{shape}."), [d, w, h], shape=shape)
    fps = b.fact("metadata_features", "fps", 1)
    if fps:
        b.say("overview", _words(b.locale, "Исходная частота кадров: {0} кадра в секунду.",
                                 "The source frame rate is {0} frames per second."), [fps],
              priority=1)


def _hook(b: _Builder) -> None:
    shots = b.c.get("shot_detection")
    if shots is not None and "cut_timestamps_s" in shots:
        n = int(np.sum(np.asarray(shots["cut_timestamps_s"]) < HOOK_S))
        f = Fact("shot_detection.cuts_in_hook", float(n), "count", str(n))
        b.facts[f.key] = f
        b.say("hook", _words(b.locale, "В первые 3 секунды монтажных склеек: {0}.",
                             "The first 3 seconds have {0} cuts."), [f], ("3",))
        if n == 0:
            b.recommend("hook_cut", _words(
                b.locale, "Добавьте смену плана в первые 3 секунды: сейчас склеек там {0}.",
                "Add a change of shot within the first 3 seconds: there are {0} cuts there now."),
                [f], ("3",), feature="cuts_per_minute")
    loud = b.c.get("loudness")
    if loud is not None and "short_term_lufs" in loud and "short_term_times_s" in loud:
        times, lufs = np.asarray(loud["short_term_times_s"]), np.asarray(loud["short_term_lufs"])
        first = lufs[times <= HOOK_S]
        if first.size and float(first.max()) > -70:
            f = Fact("loudness.hook_max_lufs", float(first.max()), "LUFS", fmt(first.max(), 1))
            b.facts[f.key] = f
            b.say("hook", _words(b.locale, "Самый громкий момент первых 3 секунд: {0} LUFS.",
                                 "The loudest moment of the first 3 seconds is {0} LUFS."),
                  [f], ("3",), priority=1)


def _pace(b: _Builder) -> None:
    n, cpm = b.fact("shot_detection", "n_cuts", 0), b.fact("shot_detection", "cuts_per_minute", 1)
    if n and cpm:
        b.say("pace", _words(b.locale, "В видео {0} склеек, {1} в минуту.",
                             "The edit has {0} cuts, {1} per minute."), [n, cpm])
        if cpm.value < 6:
            b.recommend("pace", _words(
                b.locale, "Ускорьте монтаж: {0} склеек в минуту — медленный темп, короткие "
                "ролики обычно держат не меньше 6.", "Cut faster: {0} cuts per minute is a slow "
                "pace; short videos usually keep at least 6."), [cpm], ("6",),
                feature="cuts_per_minute")
    for key, ru, en, d in (
        ("mean_shot_length_s", "Средняя длина плана: {0} с.", "Shots last {0} s on average.", 1),
        ("median_shot_length_s", "Медианная длина плана: {0} с.", "The median shot lasts {0} s.",
         1),
    ):
        f = b.fact("shot_detection", key, d)
        if f:
            b.say("pace", _words(b.locale, ru, en), [f], priority=1)
    m = b.fact("motion", "motion_mean", 2)
    if m:
        b.say("pace", _words(b.locale, "Среднее движение в кадре: {0} высоты кадра в секунду.",
                             "Mean motion is {0} frame heights per second."), [m])
    static = b.fact("motion", "static_ratio", 0, "%", scale=100)
    if static:
        b.say("pace", _words(b.locale, "Почти неподвижных кадров: {0} %.",
                             "{0} % of the frames are nearly static."), [static])
        if static.value > 50:
            b.recommend("static", _words(
                b.locale, "Добавьте движение: {0} % кадров почти статичны, больше 50 % — "
                "зритель скучает.", "Add motion: {0} % of the frames are nearly static; over 50 % "
                "viewers get bored."), [static], ("50",), feature="static_ratio")
    for key, ru, en in (("camera_motion_mean", "Движение камеры в среднем: {0} высоты кадра в "
                         "секунду.", "The camera moves {0} frame heights per second on average."),
                        ("motion_p90", "90-й процентиль движения: {0} высоты кадра в секунду.",
                         "The 90th percentile of motion is {0} frame heights per second.")):
        f = b.fact("motion", key, 2)
        if f:
            b.say("pace", _words(b.locale, ru, en), [f], ("90",) if "p90" in key else (),
                  priority=2)


def _picture(b: _Builder) -> None:
    br = b.fact("color_stats", "brightness_mean", 2)
    if br:
        b.say("picture", _words(b.locale, "Средняя яркость: {0} по шкале от 0 до 1.",
                                "Mean brightness is {0} on a scale from 0 to 1."), [br], ("0", "1"))
        if br.value < 0.3:
            b.recommend("brightness", _words(
                b.locale, "Осветлите картинку: яркость {0} ниже 0.3 выглядит тёмной на "
                "телефоне.", "Brighten the picture: a brightness of {0}, below 0.3, looks dark on "
                "a phone."), [br], ("0.3",), feature="brightness_mean")
    for key, ru, en, d in (
        ("contrast_mean", "Средний контраст: {0}.", "Mean contrast is {0}.", 2),
        ("saturation_mean", "Средняя насыщенность: {0}.", "Mean saturation is {0}.", 2),
        ("colorfulness_mean", "Красочность по Хаслеру и Зюсструнку: {0}.",
         "Hasler-Süsstrunk colourfulness is {0}.", 1),
        ("warm_cool_balance", "Баланс тёплых и холодных тонов: {0}.",
         "The warm-cool balance is {0}.", 2),
    ):
        f = b.fact("color_stats", key, d)
        if f:
            b.say("picture", _words(b.locale, ru, en), [f], priority=1 if d == 2 else 2)
    faces = b.fact("faces", "frames_with_faces_ratio", 0, "%", scale=100)
    if faces:
        b.say("picture", _words(b.locale, "Лицо видно в {0} % кадров.",
                                "A face is visible in {0} % of the frames."), [faces])
        if faces.value < 30:
            b.recommend("faces", _words(
                b.locale, "Покажите лицо: сейчас оно в {0} % кадров, а ролики с лицом в кадре "
                "больше 30 % времени удерживают лучше.",
                "Show a face: it is in {0} % of the frames now; videos with a face over 30 % "
                "of the time hold viewers better."), [faces],
                ("30",), feature="frames_with_faces_ratio")
    share = b.fact("faces", "mean_screen_share", 0, "%", scale=100)
    if share:
        b.say("picture", _words(b.locale, "Лица занимают в среднем {0} % экрана.",
                                "Faces cover {0} % of the screen on average."), [share])
    text = b.fact("ocr_text", "frames_with_text_ratio", 0, "%", scale=100)
    if text:
        b.say("picture", _words(b.locale, "Текст на экране есть в {0} % кадров.",
                                "On-screen text appears in {0} % of the frames."), [text])


def _sound(b: _Builder) -> None:
    lufs = b.fact("loudness", "integrated_lufs", 1)
    if lufs and lufs.value > -70:
        b.say("sound", _words(b.locale, "Интегральная громкость: {0} LUFS, а YouTube "
                              "нормализует звук к -14 LUFS.", "Integrated loudness is {0} LUFS; "
                              "YouTube normalises playback to -14 LUFS."), [lufs], ("-14",))
        gap = Fact("loudness.gap_to_target_lu", LOUDNESS_TARGET_LUFS - lufs.value, "LU",
                   fmt(abs(LOUDNESS_TARGET_LUFS - lufs.value), 1))
        if lufs.value < -16:
            b.facts[gap.key] = gap
            b.recommend("loudness_up", _words(
                b.locale, "Поднимите громкость на {1} дБ до -14 LUFS: при {0} LUFS ролик звучит "
                "тише остальных.", "Raise the level by {1} dB to -14 LUFS: at {0} LUFS the video "
                "sounds quieter than the rest."), [lufs, gap], ("-14",), feature="integrated_lufs")
        elif lufs.value > -12:
            b.facts[gap.key] = gap
            b.recommend("loudness_down", _words(
                b.locale, "Сведите звук тише на {1} дБ до -14 LUFS: при {0} LUFS платформа всё "
                "равно приглушит его, а пики останутся сжатыми.", "Mix {1} dB quieter, to -14 "
                "LUFS: at {0} LUFS the platform turns it down anyway and the peaks stay "
                "squashed."), [lufs, gap], ("-14",), feature="integrated_lufs")
    elif lufs:
        b.say("sound", _words(b.locale, "Звуковая дорожка почти беззвучна: {0} LUFS.",
                              "The soundtrack is nearly silent: {0} LUFS."), [lufs])
    peak = b.fact("loudness", "true_peak_dbtp", 1)
    if peak and peak.value > -70:
        b.say("sound", _words(b.locale, "Истинный пик: {0} dBTP.", "The true peak is {0} dBTP."),
              [peak])
        if peak.value > -1:
            b.recommend("true_peak", _words(
                b.locale, "Поставьте лимитер на -1 dBTP: пик {0} dBTP может исказиться после "
                "сжатия.", "Put a limiter at -1 dBTP: a peak of {0} dBTP may distort after "
                "encoding."), [peak], ("-1",), feature="true_peak_dbtp")
    lra = b.fact("loudness", "loudness_range_lu", 1)
    if lra:
        b.say("sound", _words(b.locale, "Диапазон громкости: {0} LU.",
                              "The loudness range is {0} LU."), [lra], priority=1)
    tempo = b.fact("audio_features", "tempo_bpm", 0)
    if tempo and tempo.value > 0:
        b.say("sound", _words(b.locale, "Оценка темпа музыки: {0} ударов в минуту.",
                              "The estimated tempo is {0} BPM."), [tempo])
    for key, ru, en, d, p in (
        ("onset_rate_per_s", "Звуковых атак в секунду: {0}.", "There are {0} sound onsets per "
         "second.", 1, 1),
        ("rms_dbfs_mean", "Средний уровень сигнала: {0} dBFS.", "The mean signal level is {0} "
         "dBFS.", 1, 2),
        ("spectral_centroid_mean", "Спектральный центроид в среднем: {0} Гц.", "The spectral "
         "centroid averages {0} Hz.", 0, 2),
    ):
        f = b.fact("audio_features", key, d)
        if f:
            b.say("sound", _words(b.locale, ru, en), [f], priority=p)
    silence = b.fact("audio_features", "silence_ratio", 0, "%", scale=100)
    if silence:
        b.say("sound", _words(b.locale, "Тишина занимает {0} % звуковой дорожки.",
                              "Silence takes {0} % of the soundtrack."), [silence], priority=1)
        if silence.value > 30:
            b.recommend("silence", _words(
                b.locale, "Вырежьте паузы: тишина занимает {0} % дорожки, больше 30 %.",
                "Cut the pauses: silence takes {0} % of the track, over 30 %."), [silence],
                ("30",), feature="silence_ratio")
    speech = b.fact("speech_activity", "speech_ratio", 0, "%", scale=100)
    if speech:
        b.say("sound", _words(b.locale, "Речь звучит {0} % времени.",
                              "Speech takes {0} % of the time."), [speech])
        if speech.value < 20:
            b.recommend("speech", _words(
                b.locale, "Добавьте закадровый голос: речь звучит лишь {0} % времени, меньше "
                "20 %.", "Add a voice-over: speech takes only {0} % of the time, under 20 %."),
                [speech], ("20",), feature="speech_ratio")
    wpm = b.fact("transcript", "words_per_minute", 0)
    if wpm and wpm.value > 0:
        b.say("sound", _words(b.locale, "Темп речи: {0} слов в минуту.",
                              "Speech runs at {0} words per minute."), [wpm])


def _text(b: _Builder) -> None:
    title = b.fact("metadata_features", "title_chars", 0)
    if title:
        b.say("text", _words(b.locale, "В названии {0} символов.",
                             "The title has {0} characters."), [title])
        if title.value < 20:
            b.recommend("title_short", _words(
                b.locale, "Сделайте название информативнее: {0} символов мало, в поиске "
                "видно до 70.", "Make the title say more: {0} characters is little; search "
                "shows up to 70."), [title], ("70",), feature="title_chars")
        elif title.value > 70:
            b.recommend("title_long", _words(
                b.locale, "Сократите название: из {0} символов поиск покажет только 70.",
                "Shorten the title: of its {0} characters search shows only 70."), [title],
                ("70",), feature="title_chars")
    words = b.fact("metadata_features", "description_words", 0)
    if words:
        b.say("text", _words(b.locale, "В описании {0} слов.",
                             "The description has {0} words."), [words])
        if words.value < 50:
            b.recommend("description", _words(
                b.locale, "Допишите описание хотя бы до 50 слов: сейчас их {0}.",
                "Extend the description to at least 50 words: it has {0} now."), [words],
                ("50",), feature="description_words")
    tags = b.fact("metadata_features", "tags_count", 0)
    if tags:
        b.say("text", _words(b.locale, "Тегов: {0}.", "There are {0} tags."), [tags])
        if tags.value == 0:
            b.recommend("tags", _words(
                b.locale, "Добавьте от 5 до 10 тегов: сейчас их {0}.",
                "Add 5 to 10 tags: there are {0} now."), [tags], ("5", "10"),
                feature="tags_count")
    tags_hash = b.fact("metadata_features", "description_hashtags", 0)
    if tags_hash:
        b.say("text", _words(b.locale, "Хештегов в описании: {0}.",
                             "The description has {0} hashtags."), [tags_hash], priority=1)
    for key, ru, en, p in (
        ("title_words", "Слов в названии: {0}.", "The title has {0} words.", 1),
        ("description_chars", "Длина описания: {0} символов.", "The description is {0} "
         "characters long.", 1),
        ("description_links", "Ссылок в описании: {0}.", "The description has {0} links.", 2),
        ("title_exclamations", "Восклицательных знаков в названии: {0}.", "The title has {0} "
         "exclamation marks.", 2),
        ("title_questions", "Вопросительных знаков в названии: {0}.", "The title has {0} "
         "question marks.", 2),
        ("title_digits", "Цифр в названии: {0}.", "The title has {0} digits.", 2),
        ("title_emoji", "Эмодзи в названии: {0}.", "The title has {0} emoji.", 2),
        ("description_emoji", "Эмодзи в описании: {0}.", "The description has {0} emoji.", 2),
        ("description_questions", "Вопросов в описании: {0}.", "The description asks {0} "
         "questions.", 2),
        ("tags_words", "Слов в тегах: {0}.", "The tags have {0} words.", 2),
    ):
        f = b.fact("metadata_features", key, 0)
        if f:
            b.say("text", _words(b.locale, ru, en), [f], priority=p)
    caps = b.fact("metadata_features", "title_caps_ratio", 0, "%", scale=100)
    if caps:
        b.say("text", _words(b.locale, "Заглавные буквы составляют {0} % букв названия.",
                             "Capitals are {0} % of the title's letters."), [caps], priority=2)


def _forecast(b: _Builder) -> None:
    pred = b.c.get("popularity_prediction")
    if pred is None:
        return
    for key in sorted(pred):
        arr = pred[key]
        if key.startswith("what_if_") or arr.shape != () or arr.dtype.kind not in "iuf":
            continue
        f = b.fact("popularity_prediction", key, 0 if abs(float(arr)) >= 100 else 2)
        if f:
            b.say("forecast", _words(b.locale, "Прогноз, {name}: {0}.", "Forecast, {name}: {0}."),
                  [f], name=key.replace("_", " "))


RULES: tuple[Callable[[_Builder], None], ...] = (_overview, _hook, _pace, _picture, _sound,
                                                 _text, _forecast)


def build_brief(components: Mapping[str, Arrays], *, locale: Locale, sentences_min: int,
                sentences_max: int) -> Brief:
    """The brief of a run for a text of ``sentences_min``…``sentences_max`` sentences.

    Statements of the lowest priority are left out until the count fits ``sentences_max``;
    a run with fewer statements than ``sentences_min`` yields a shorter brief (the caller
    refuses it: it cannot be stretched without inventing facts).
    """
    b = _Builder(locale, components)
    for rule in RULES:
        rule(b)
    # The recommendations come last, as their own section, in the order they were found.
    order = {name: i for i, name in enumerate(SECTIONS)}
    pool = sorted(b.statements, key=lambda s: order[s.section])
    while len(pool) > sentences_max:
        worst = max(range(len(pool)), key=lambda i: (pool[i].priority, i))
        if pool[worst].priority == 0:
            pool = [s for i, s in enumerate(pool) if i != worst]  # core: drop from the end
        else:
            del pool[worst]
    kept = tuple(Statement(f"s{i + 1}", s.section, s.text, s.numbers, s.facts,
                           s.recommendation, s.priority) for i, s in enumerate(pool))
    used = {s.recommendation for s in kept if s.recommendation}
    return Brief(locale, kept, tuple(r for r in b.recs if r.id in used), b.facts)


__all__ = ["SECTIONS", "SECTION_TITLES", "Brief", "Fact", "Locale", "Recommendation",
           "Statement", "build_brief", "fmt"]

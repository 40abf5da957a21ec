// UI strings in English and Russian; the locale comes from the browser and can be switched.
const STRINGS = {
  en: {
    skip: "Skip to content", nav_new: "New analysis", nav_history: "History",
    nav_profiles: "Profiles", nav_account: "Account", language: "Language", sign_out: "Sign out",
    sign_in: "Sign in", token: "API token", token_help: "Ask your administrator for a token (trendflow users token <email>). It is kept only in this browser tab.",
    balance: "Balance: {available} credits available ({reserved} reserved)",
    new_analysis: "New analysis", source: "Video", source_file: "Upload a file", source_url: "YouTube URL",
    file: "Video file", title: "Title", description: "Description", tags: "Tags (comma separated)",
    youtube_url: "YouTube URL", upload: "Upload",
    uploading: "Uploading…", uploaded: "Uploaded: {name}, {duration} s, {w}×{h}",
    profile: "Profile", components: "Components", estimate: "Price {total} credits · about {eta}",
    estimate_cached: "A recent analysis of this video is reused from the cache: {total} credits",
    estimate_wait: "Choose a video to see the price.", start: "Start analysis",
    progress: "Progress", stage: "Stage: {stage}", eta: "about {eta} left", cancel: "Cancel",
    result: "Result", run: "Run {id}", status_word: "Status", download_npz: "Download NPZ",
    download_manifest: "Download manifest", delete_video: "Delete this video",
    confirm_delete: "Delete every analysis and upload of this video? This cannot be undone.",
    deleted: "Deleted: {runs} run(s), {uploads} upload(s), {objects} stored file(s).",
    report: "Analysis", report_engine: "engine: {engine}", no_report: "No analysis text: {why}",
    time: "Time", hover_time: "t = {t} s", frame_at: "The frame at {t} s", empty: "No result: {reason}", failed: "Failed: {code} — {message}",
    history: "History", created: "Created", price: "Price", open: "Open", none_yet: "Nothing yet.",
    account: "Account", ledger: "Ledger", settings: "Settings", cache_days: "Cache window, days (0: never reuse)",
    sentences_min: "Analysis length: at least (sentences)", sentences_max: "Analysis length: at most (sentences)",
    report_locale: "Analysis language", save: "Save", saved: "Saved.",
    profiles: "Profiles", builtin: "built in", own: "yours", edit: "Edit", delete: "Delete",
    new_profile: "New profile", profile_id: "Profile id", profile_name: "Name",
    params: "Parameters (JSON per component, optional)", price_effect: "Price for the current video: {total} credits",
    confirm_profile_delete: "Delete profile {id}?", all_keys: "All values",
    seconds: "{n} s", minutes: "{n} min", key: "Key", value: "Value", unit: "Unit",
    cuts: "cuts", lufs_ref: "−14 LUFS (streaming target)", integrated: "integrated",
    speech: "speech", transcript_text: "Transcript", text_not_stored: "The text is not kept (retention policy); {n} segments.",
    prediction: "Forecast", views: "views", likes: "likes", interval: "p10–p90 interval, p50 marked",
    swatches: "Dominant colours of the video", palette_time: "Dominant colour over time",
    err_insufficient_credits: "Not enough credits: this run costs {required}, you have {available} available. Top up at least {shortfall}.",
    err_rate_limited: "Too many runs for now: try again in {retry} s.",
    err_unsupported_media: "This file is not a video we can read. Choose an MP4, MOV, WebM or MKV file.",
    err_video_too_short: "The video is too short: at least 5 seconds are needed.",
    err_video_too_long: "The video is too long: at most 20 minutes are analysed.",
    err_upload_too_large: "The file is too large to upload.",
    err_unauthorized: "The token is not valid (or expired). Sign in again.",
    err_forbidden: "You may not change this.", err_run_not_found: "This run does not exist (or is not yours).",
    err_not_found: "Nothing of this exists (or it is not yours).",
    err_conflict: "Not possible now: {message}", err_run_not_ready: "Not ready yet: {message}",
    err_frames_expired: "The frames of this run are no longer kept (they are kept {retention_days} days); the plots stay.",
    err_invalid_input: "Please check the form: {message}", err_overloaded: "The service is busy: try again in a moment.",
    err_network: "The service cannot be reached. Check your connection.",
    err_other: "{code}: {message}",
    reason_audio_missing_or_extract_failed: "the video has no usable audio track",
    reason_no_faces_in_video: "no faces were found in the video",
    reason_no_text_available: "there is no text to analyse",
    reason_ocr_disabled_by_policy: "reading on-screen text is off by policy",
    reason_comments_missing_or_disabled: "comments are missing or disabled",
    reason_video_too_short: "the video is too short", reason_video_too_long: "the video is too long",
    reason_dependency_missing: "what it needs is not available",
  },
  ru: {
    skip: "К содержимому", nav_new: "Новый анализ", nav_history: "История",
    nav_profiles: "Профили", nav_account: "Аккаунт", language: "Язык", sign_out: "Выйти",
    sign_in: "Войти", token: "API-токен", token_help: "Токен выдаёт администратор (trendflow users token <email>). Он хранится только в этой вкладке.",
    balance: "Баланс: доступно {available} кредитов ({reserved} в резерве)",
    new_analysis: "Новый анализ", source: "Видео", source_file: "Загрузить файл", source_url: "Ссылка YouTube",
    file: "Видеофайл", title: "Название", description: "Описание", tags: "Теги (через запятую)",
    youtube_url: "Ссылка YouTube", upload: "Загрузить",
    uploading: "Загрузка…", uploaded: "Загружено: {name}, {duration} с, {w}×{h}",
    profile: "Профиль", components: "Компоненты", estimate: "Цена {total} кредитов · около {eta}",
    estimate_cached: "Недавний анализ этого видео будет взят из кэша: {total} кредитов",
    estimate_wait: "Выберите видео, чтобы увидеть цену.", start: "Начать анализ",
    progress: "Ход анализа", stage: "Этап: {stage}", eta: "осталось около {eta}", cancel: "Отменить",
    result: "Результат", run: "Запуск {id}", status_word: "Статус", download_npz: "Скачать NPZ",
    download_manifest: "Скачать манифест", delete_video: "Удалить это видео",
    confirm_delete: "Удалить все анализы и загрузки этого видео? Это необратимо.",
    deleted: "Удалено: запусков {runs}, загрузок {uploads}, файлов {objects}.",
    report: "Анализ", report_engine: "движок: {engine}", no_report: "Текста анализа нет: {why}",
    time: "Время", hover_time: "t = {t} с", frame_at: "Кадр на {t} с", empty: "Нет результата: {reason}", failed: "Ошибка: {code} — {message}",
    history: "История", created: "Создан", price: "Цена", open: "Открыть", none_yet: "Пока ничего.",
    account: "Аккаунт", ledger: "Операции", settings: "Настройки", cache_days: "Окно кэша, дней (0 — не использовать)",
    sentences_min: "Длина анализа: не меньше (предложений)", sentences_max: "Длина анализа: не больше (предложений)",
    report_locale: "Язык анализа", save: "Сохранить", saved: "Сохранено.",
    profiles: "Профили", builtin: "встроенный", own: "ваш", edit: "Изменить", delete: "Удалить",
    new_profile: "Новый профиль", profile_id: "Идентификатор профиля", profile_name: "Название",
    params: "Параметры (JSON по компонентам, необязательно)", price_effect: "Цена для текущего видео: {total} кредитов",
    confirm_profile_delete: "Удалить профиль {id}?", all_keys: "Все значения",
    seconds: "{n} с", minutes: "{n} мин", key: "Ключ", value: "Значение", unit: "Единица",
    cuts: "склейки", lufs_ref: "−14 LUFS (цель стримингов)", integrated: "интегральная",
    speech: "речь", transcript_text: "Расшифровка", text_not_stored: "Текст не хранится (политика хранения); сегментов: {n}.",
    prediction: "Прогноз", views: "просмотры", likes: "лайки", interval: "интервал p10–p90, отмечена p50",
    swatches: "Основные цвета видео", palette_time: "Основной цвет во времени",
    err_insufficient_credits: "Недостаточно кредитов: запуск стоит {required}, доступно {available}. Пополните хотя бы на {shortfall}.",
    err_rate_limited: "Слишком много запусков: попробуйте через {retry} с.",
    err_unsupported_media: "Этот файл не читается как видео. Выберите MP4, MOV, WebM или MKV.",
    err_video_too_short: "Видео слишком короткое: нужно не меньше 5 секунд.",
    err_video_too_long: "Видео слишком длинное: анализируется не больше 20 минут.",
    err_upload_too_large: "Файл слишком большой для загрузки.",
    err_unauthorized: "Токен недействителен (или истёк). Войдите снова.",
    err_forbidden: "Это изменить нельзя.", err_run_not_found: "Такого запуска нет (или он не ваш).",
    err_not_found: "Такого нет (или оно не ваше).",
    err_conflict: "Сейчас нельзя: {message}", err_run_not_ready: "Ещё не готово: {message}",
    err_frames_expired: "Кадры этого запуска больше не хранятся (их хранят {retention_days} дн.); графики остаются.",
    err_invalid_input: "Проверьте форму: {message}", err_overloaded: "Сервис занят: повторите чуть позже.",
    err_network: "Сервис недоступен. Проверьте соединение.",
    err_other: "{code}: {message}",
    reason_audio_missing_or_extract_failed: "в видео нет пригодной звуковой дорожки",
    reason_no_faces_in_video: "в видео не найдено лиц",
    reason_no_text_available: "нет текста для анализа",
    reason_ocr_disabled_by_policy: "чтение текста на экране отключено политикой",
    reason_comments_missing_or_disabled: "комментариев нет или они отключены",
    reason_video_too_short: "видео слишком короткое", reason_video_too_long: "видео слишком длинное",
    reason_dependency_missing: "нужное для него недоступно",
  },
};

const KEY = "trendflow.locale";
let current = localStorage.getItem(KEY)
  || ((navigator.language || "en").toLowerCase().startsWith("ru") ? "ru" : "en");

export function locale() { return current; }

export function setLocale(value) {
  current = STRINGS[value] ? value : "en";
  localStorage.setItem(KEY, current);
  document.documentElement.lang = current;
}

/** The string `key` with `{name}` placeholders filled from `vars`. */
export function t(key, vars = {}) {
  const text = STRINGS[current][key] ?? STRINGS.en[key] ?? key;
  return text.replace(/\{(\w+)\}/g, (_, name) => (name in vars ? String(vars[name]) : `{${name}}`));
}

export function has(key) { return key in STRINGS.en; }

/** Fill every element carrying data-i18n under `root`. */
export function translate(root = document) {
  for (const el of root.querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n);
}

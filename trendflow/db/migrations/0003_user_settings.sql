-- 0003: account settings a creator chooses in the Studio (GET/PATCH /api/me/settings).
-- Forward-only.
--
-- cache_ttl_days: a video this user analysed within this many days is served from the cache
-- (0 = never); the analysis length (sentences, a range) and language of the written report.
-- Defaults live here, once: existing users get them, new users start with them.

ALTER TABLE users
    ADD COLUMN cache_ttl_days INTEGER NOT NULL DEFAULT 3
        CONSTRAINT users_cache_ttl_days_check CHECK (cache_ttl_days BETWEEN 0 AND 365),
    ADD COLUMN report_sentences_min INTEGER NOT NULL DEFAULT 50,
    ADD COLUMN report_sentences_max INTEGER NOT NULL DEFAULT 60,
    ADD COLUMN report_locale TEXT NOT NULL DEFAULT 'ru'
        CONSTRAINT users_report_locale_check CHECK (report_locale IN ('ru', 'en')),
    ADD CONSTRAINT users_report_sentences_check
        CHECK (20 <= report_sentences_min AND report_sentences_min <= report_sentences_max
               AND report_sentences_max <= 100);

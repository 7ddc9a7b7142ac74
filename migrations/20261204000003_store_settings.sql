-- The merchant's settings: Klaviyo and Algolia credentials (sealed), and the rules.

CREATE TABLE store_settings (
    store_id                      BIGINT PRIMARY KEY REFERENCES stores (id) ON DELETE CASCADE,
    klaviyo_method                TEXT CHECK (klaviyo_method IN ('private_key', 'oauth')),
    -- Private key, or OAuth access and refresh tokens; each sealed with the id of its key beside it.
    klaviyo_secret_sealed         BYTEA,
    klaviyo_secret_key_id         TEXT,
    klaviyo_refresh_sealed        BYTEA,
    klaviyo_refresh_key_id        TEXT,
    klaviyo_expires_at            TIMESTAMPTZ,
    klaviyo_scope                 TEXT,
    -- At most the last 4 characters, for the admin page.
    klaviyo_hint                  TEXT,
    -- Bumped on every credential change: profile caches keyed by it never serve another account's answers.
    klaviyo_generation            BIGINT NOT NULL DEFAULT 0,
    algolia_app_id                TEXT,
    algolia_index                 TEXT,
    algolia_key_sealed            BYTEA,
    algolia_key_key_id            TEXT,
    algolia_key_hint              TEXT,
    rules                         JSONB NOT NULL DEFAULT '[]'::jsonb,
    updated_at                    TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT klaviyo_secret_has_key CHECK ((klaviyo_secret_sealed IS NULL) = (klaviyo_secret_key_id IS NULL)),
    CONSTRAINT klaviyo_refresh_has_key CHECK ((klaviyo_refresh_sealed IS NULL) = (klaviyo_refresh_key_id IS NULL)),
    CONSTRAINT algolia_key_has_key CHECK ((algolia_key_sealed IS NULL) = (algolia_key_key_id IS NULL))
);

-- "Connect with Klaviyo" attempts: the state is single-use and short-lived; the PKCE verifier is sealed.
CREATE TABLE klaviyo_oauth_pending (
    state            TEXT        PRIMARY KEY,
    store_id         BIGINT      NOT NULL REFERENCES stores (id) ON DELETE CASCADE,
    bc_user_id       BIGINT      NOT NULL,
    verifier_sealed  BYTEA       NOT NULL,
    verifier_key_id  TEXT        NOT NULL,
    expires_at       TIMESTAMPTZ NOT NULL
);

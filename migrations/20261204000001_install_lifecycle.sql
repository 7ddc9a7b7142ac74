-- The BigCommerce install lifecycle: stores, their users, consumed /load token ids, and the audit log.

CREATE TABLE stores (
    id                   BIGSERIAL PRIMARY KEY,
    store_hash           TEXT        NOT NULL UNIQUE,
    -- A fresh id per install; admin sessions carry it, so uninstall (or re-install) ends every older session.
    install_id           UUID,
    -- The BigCommerce access token, sealed with AES-256-GCM (nonce || ciphertext) and the id of the key used.
    access_token_sealed  BYTEA,
    access_token_key_id  TEXT,
    scope                TEXT,
    account_uuid         TEXT,
    owner_bc_user_id     BIGINT,
    owner_email          TEXT,
    installed_at         TIMESTAMPTZ,
    uninstalled_at       TIMESTAMPTZ,
    created_at           TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at           TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT sealed_token_has_key CHECK ((access_token_sealed IS NULL) = (access_token_key_id IS NULL))
);

CREATE TABLE store_users (
    store_id      BIGINT      NOT NULL REFERENCES stores (id) ON DELETE CASCADE,
    bc_user_id    BIGINT      NOT NULL,
    email         TEXT        NOT NULL,
    is_owner      BOOLEAN     NOT NULL DEFAULT false,
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    last_seen_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (store_id, bc_user_id)
);

-- A /load JWT lives 24 h and travels in a URL: each jti is accepted once, and kept only until it expires.
CREATE TABLE consumed_load_tokens (
    jti         TEXT        PRIMARY KEY,
    expires_at  TIMESTAMPTZ NOT NULL
);
CREATE INDEX consumed_load_tokens_expires_at ON consumed_load_tokens (expires_at);

-- Who did what, when. Never a secret value.
CREATE TABLE audit_log (
    id             BIGSERIAL   PRIMARY KEY,
    store_id       BIGINT      NOT NULL REFERENCES stores (id) ON DELETE CASCADE,
    action         TEXT        NOT NULL,
    actor_user_id  BIGINT,
    actor_email    TEXT,
    detail         JSONB       NOT NULL DEFAULT '{}'::jsonb,
    created_at     TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX audit_log_store_created ON audit_log (store_id, created_at);

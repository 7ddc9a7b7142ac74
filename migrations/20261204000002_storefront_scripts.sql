-- The storefront side: one script per storefront channel, the merchant's consent category, storefront origins.

ALTER TABLE stores
    ADD COLUMN script_consent_category TEXT NOT NULL DEFAULT 'targeting'
        CHECK (script_consent_category IN ('essential', 'functional', 'analytics', 'targeting')),
    -- The last failure to read channels, sites or store information (shown on the admin page), or NULL.
    ADD COLUMN storefront_sync_error TEXT;

CREATE TABLE storefront_channels (
    store_id       BIGINT      NOT NULL REFERENCES stores (id) ON DELETE CASCADE,
    channel_id     BIGINT      NOT NULL,
    name           TEXT        NOT NULL,
    -- NULL until a script was created for the channel (a failed create leaves it NULL, so /load retries).
    script_uuid    TEXT,
    -- The merchant deleted or re-categorized the script in Script Manager; only repair restores it.
    drift          BOOLEAN     NOT NULL DEFAULT false,
    last_error     TEXT,
    last_error_at  TIMESTAMPTZ,
    updated_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (store_id, channel_id)
);

-- Origins of the store's storefronts (store information and sites): the resolve endpoint's CORS allow-list.
CREATE TABLE store_origins (
    store_id    BIGINT NOT NULL REFERENCES stores (id) ON DELETE CASCADE,
    origin      TEXT   NOT NULL,
    channel_id  BIGINT,
    PRIMARY KEY (store_id, origin)
);
CREATE INDEX store_origins_origin ON store_origins (origin);

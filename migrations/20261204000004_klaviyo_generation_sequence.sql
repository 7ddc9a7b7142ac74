-- Credential generations come from one sequence, so a generation is never reused — not even after an uninstall
-- deleted the settings row and a re-install started a new one. Profile caches keyed by it stay correct across
-- app processes.
CREATE SEQUENCE klaviyo_generation_seq START WITH 1000;
ALTER TABLE store_settings ALTER COLUMN klaviyo_generation SET DEFAULT nextval('klaviyo_generation_seq');

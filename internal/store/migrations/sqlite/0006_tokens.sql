-- 0006_tokens: named API tokens, each carrying a person's name and role
-- (viewer, preparer, approver, admin).
--
-- Only a SHA-256 of a token is kept (token_hash, lowercase hex): the token
-- itself is 32 random bytes, shown once when it is created. A token is never
-- deleted, only revoked (revoked_at), so the names in the audit trail keep
-- meaning something and a server that ever had a token keeps asking for one.
-- A name has at most one token that is not revoked; a revoked name may be
-- given a new token.

CREATE TABLE api_tokens (
	id          INTEGER PRIMARY KEY,
	name        TEXT NOT NULL,
	role        TEXT NOT NULL CHECK (role IN ('viewer', 'preparer', 'approver', 'admin')),
	token_hash  TEXT NOT NULL UNIQUE,
	created_at  TEXT NOT NULL,
	created_by  TEXT NOT NULL DEFAULT '',
	last_used   TEXT,
	revoked_at  TEXT
) STRICT;

CREATE UNIQUE INDEX api_tokens_active_name ON api_tokens (name) WHERE revoked_at IS NULL;

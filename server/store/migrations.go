package store

// The schema is versioned alike on both engines: version N of a SQLite file
// and of a PostgreSQL schema hold the same tables, columns and meaning, so
// that SchemaVersion means one thing and a test of a migration runs on both.
// migrations[i] takes the schema from version i to i+1. Never edit one that
// has shipped: append a new one, to both lists.
//
// Times are Unix milliseconds (BIGINT) on both engines, and JSON is kept as
// TEXT, not jsonb: a tool's schema is served byte for byte as it was
// registered, and jsonb would reorder its keys.

// sqliteMigrations are SQLite's.
var sqliteMigrations = [][]string{
	{
		`CREATE TABLE keys (
			id          TEXT PRIMARY KEY,
			kind        TEXT NOT NULL CHECK (kind IN ('toolkit', 'llm')),
			name        TEXT NOT NULL,
			owner       TEXT NOT NULL,
			toolkit     TEXT NOT NULL DEFAULT '',
			secret_hash BLOB NOT NULL,
			created_at  INTEGER NOT NULL,
			revoked_at  INTEGER
		)`,
		`CREATE TABLE toolkits (
			owner        TEXT NOT NULL,
			name         TEXT NOT NULL,
			toolkit_hash TEXT NOT NULL DEFAULT '',
			language     TEXT NOT NULL DEFAULT '',
			updated_at   INTEGER NOT NULL,
			PRIMARY KEY (owner, name)
		)`,
		`CREATE TABLE tools (
			owner           TEXT NOT NULL,
			toolkit         TEXT NOT NULL,
			name            TEXT NOT NULL,
			description     TEXT NOT NULL DEFAULT '',
			params          TEXT NOT NULL DEFAULT '[]',
			required_params TEXT NOT NULL DEFAULT '[]',
			input_schema    TEXT NOT NULL,
			output_schema   TEXT,
			inferred        INTEGER NOT NULL DEFAULT 0,
			auth_provider   TEXT NOT NULL DEFAULT '',
			auth_type       TEXT NOT NULL DEFAULT '',
			auth_with       TEXT NOT NULL DEFAULT '',
			code_hash       TEXT NOT NULL DEFAULT '',
			hints           TEXT,
			updated_at      INTEGER NOT NULL,
			PRIMARY KEY (owner, toolkit, name),
			FOREIGN KEY (owner, toolkit) REFERENCES toolkits (owner, name) ON DELETE CASCADE
		)`,
	},
	// 2: the OAuth broker (oauth.go). Every secret column holds a
	// Vault-sealed value, never clear text; OAuth states are kept as a
	// SHA-256, so a copy of the database cannot complete a pending
	// authorization.
	{
		`CREATE TABLE secret_key_check (
			id         INTEGER PRIMARY KEY CHECK (id = 1),
			sealed     BLOB NOT NULL,
			created_at INTEGER NOT NULL
		)`,
		`CREATE TABLE oauth_platforms (
			id            TEXT PRIMARY KEY,
			name          TEXT NOT NULL,
			client_id     TEXT NOT NULL,
			client_secret BLOB NOT NULL,
			auth_url      TEXT NOT NULL,
			token_url     TEXT NOT NULL,
			scopes        TEXT NOT NULL DEFAULT '[]',
			pkce          INTEGER NOT NULL DEFAULT 1,
			userinfo_url  TEXT NOT NULL DEFAULT '',
			auth_params   TEXT NOT NULL DEFAULT '{}',
			auth_style    TEXT NOT NULL DEFAULT '',
			created_at    INTEGER NOT NULL,
			updated_at    INTEGER NOT NULL
		)`,
		`CREATE TABLE oauth_connections (
			owner            TEXT NOT NULL,
			platform_id      TEXT NOT NULL,
			external_user_id TEXT NOT NULL,
			integration_id   TEXT NOT NULL UNIQUE,
			email            TEXT NOT NULL DEFAULT '',
			access_token     BLOB NOT NULL,
			refresh_token    BLOB NOT NULL,
			token_type       TEXT NOT NULL DEFAULT '',
			expires_at       INTEGER,
			scope            TEXT NOT NULL DEFAULT '',
			broken           TEXT NOT NULL DEFAULT '',
			created_at       INTEGER NOT NULL,
			updated_at       INTEGER NOT NULL,
			PRIMARY KEY (owner, platform_id, external_user_id)
		)`,
		`CREATE TABLE oauth_states (
			state_hash       BLOB PRIMARY KEY,
			owner            TEXT NOT NULL,
			platform_id      TEXT NOT NULL,
			external_user_id TEXT NOT NULL,
			redirect_url     TEXT NOT NULL DEFAULT '',
			verifier         BLOB NOT NULL,
			created_at       INTEGER NOT NULL,
			expires_at       INTEGER NOT NULL
		)`,
		`CREATE INDEX oauth_states_owner ON oauth_states (owner, expires_at)`,
		`CREATE TABLE webhooks (
			id         TEXT PRIMARY KEY,
			owner      TEXT NOT NULL,
			url        TEXT NOT NULL,
			events     TEXT NOT NULL,
			secret     BLOB NOT NULL,
			created_at INTEGER NOT NULL
		)`,
		`CREATE INDEX webhooks_owner ON webhooks (owner, created_at)`,
	},
	{
		// 3: metadata.needs_auth_token (docs/extensions.md §4). Tools
		// registered before it (and every Python tool) did not say so: 0.
		`ALTER TABLE tools ADD COLUMN needs_auth_token INTEGER NOT NULL DEFAULT 0`,
		// A Go toolkit may have sent the flag to this server before it
		// stored it, and would now find its hashes up to date and never
		// send it again: forget the hashes of Go toolkits, so that each
		// registers its tools once more. Python toolkits never send it.
		`UPDATE tools SET code_hash = '' WHERE EXISTS (SELECT 1 FROM toolkits k
			WHERE k.owner = tools.owner AND k.name = tools.toolkit AND k.language = 'Go')`,
		`UPDATE toolkits SET toolkit_hash = '' WHERE language = 'Go'`,
	},
	{
		// 4: a toolkit name belongs to the keys bound to it (Register asks
		// which keys of an owner hold a name). Keys keep the bindings they
		// have: two keys that both serve a toolkit today both go on.
		`CREATE INDEX keys_owner_toolkit ON keys (owner, toolkit)`,
	},
	{
		// 5: several servers on one database. Webhook deliveries are an
		// outbox (outbox.go) that any server works through; a token
		// refresh takes a lease on its connection (refresh_holder,
		// refresh_until), so one server at a time refreshes a user's
		// token; the revoked keys every server counts each second have an
		// index of their own.
		`CREATE TABLE webhook_deliveries (
			id            TEXT PRIMARY KEY,
			webhook_id    TEXT NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
			owner         TEXT NOT NULL,
			event_id      TEXT NOT NULL,
			event         TEXT NOT NULL,
			body          BLOB NOT NULL,
			state         TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'delivered', 'failed')),
			attempts      INTEGER NOT NULL DEFAULT 0,
			due_at        INTEGER NOT NULL,
			claim         TEXT NOT NULL DEFAULT '',
			claimed_until INTEGER,
			last_error    TEXT NOT NULL DEFAULT '',
			created_at    INTEGER NOT NULL,
			updated_at    INTEGER NOT NULL,
			UNIQUE (event_id, webhook_id)
		)`,
		`CREATE INDEX webhook_deliveries_due ON webhook_deliveries (state, due_at)`,
		`CREATE INDEX webhook_deliveries_owner ON webhook_deliveries (owner, state)`,
		`ALTER TABLE oauth_connections ADD COLUMN refresh_holder TEXT NOT NULL DEFAULT ''`,
		`ALTER TABLE oauth_connections ADD COLUMN refresh_until INTEGER`,
		`CREATE INDEX keys_revoked ON keys (id) WHERE revoked_at IS NOT NULL`,
	},
}

// postgresMigrations are PostgreSQL's: the same versions as SQLite's, in
// its types (BYTEA, BIGINT, BOOLEAN). keys.seq keeps the order keys were
// created in, which SQLite's rowid gives.
var postgresMigrations = [][]string{
	{
		`CREATE TABLE keys (
			seq         BIGINT GENERATED ALWAYS AS IDENTITY,
			id          TEXT PRIMARY KEY,
			kind        TEXT NOT NULL CHECK (kind IN ('toolkit', 'llm')),
			name        TEXT NOT NULL,
			owner       TEXT NOT NULL,
			toolkit     TEXT NOT NULL DEFAULT '',
			secret_hash BYTEA NOT NULL,
			created_at  BIGINT NOT NULL,
			revoked_at  BIGINT
		)`,
		`CREATE TABLE toolkits (
			owner        TEXT NOT NULL,
			name         TEXT NOT NULL,
			toolkit_hash TEXT NOT NULL DEFAULT '',
			language     TEXT NOT NULL DEFAULT '',
			updated_at   BIGINT NOT NULL,
			PRIMARY KEY (owner, name)
		)`,
		`CREATE TABLE tools (
			owner           TEXT NOT NULL,
			toolkit         TEXT NOT NULL,
			name            TEXT NOT NULL,
			description     TEXT NOT NULL DEFAULT '',
			params          TEXT NOT NULL DEFAULT '[]',
			required_params TEXT NOT NULL DEFAULT '[]',
			input_schema    TEXT NOT NULL,
			output_schema   TEXT,
			inferred        BOOLEAN NOT NULL DEFAULT FALSE,
			auth_provider   TEXT NOT NULL DEFAULT '',
			auth_type       TEXT NOT NULL DEFAULT '',
			auth_with       TEXT NOT NULL DEFAULT '',
			code_hash       TEXT NOT NULL DEFAULT '',
			hints           TEXT,
			updated_at      BIGINT NOT NULL,
			PRIMARY KEY (owner, toolkit, name),
			FOREIGN KEY (owner, toolkit) REFERENCES toolkits (owner, name) ON DELETE CASCADE
		)`,
	},
	{
		`CREATE TABLE secret_key_check (
			id         INTEGER PRIMARY KEY CHECK (id = 1),
			sealed     BYTEA NOT NULL,
			created_at BIGINT NOT NULL
		)`,
		`CREATE TABLE oauth_platforms (
			id            TEXT PRIMARY KEY,
			name          TEXT NOT NULL,
			client_id     TEXT NOT NULL,
			client_secret BYTEA NOT NULL,
			auth_url      TEXT NOT NULL,
			token_url     TEXT NOT NULL,
			scopes        TEXT NOT NULL DEFAULT '[]',
			pkce          BOOLEAN NOT NULL DEFAULT TRUE,
			userinfo_url  TEXT NOT NULL DEFAULT '',
			auth_params   TEXT NOT NULL DEFAULT '{}',
			auth_style    TEXT NOT NULL DEFAULT '',
			created_at    BIGINT NOT NULL,
			updated_at    BIGINT NOT NULL
		)`,
		`CREATE TABLE oauth_connections (
			owner            TEXT NOT NULL,
			platform_id      TEXT NOT NULL,
			external_user_id TEXT NOT NULL,
			integration_id   TEXT NOT NULL UNIQUE,
			email            TEXT NOT NULL DEFAULT '',
			access_token     BYTEA NOT NULL,
			refresh_token    BYTEA NOT NULL,
			token_type       TEXT NOT NULL DEFAULT '',
			expires_at       BIGINT,
			scope            TEXT NOT NULL DEFAULT '',
			broken           TEXT NOT NULL DEFAULT '',
			created_at       BIGINT NOT NULL,
			updated_at       BIGINT NOT NULL,
			PRIMARY KEY (owner, platform_id, external_user_id)
		)`,
		`CREATE TABLE oauth_states (
			state_hash       BYTEA PRIMARY KEY,
			owner            TEXT NOT NULL,
			platform_id      TEXT NOT NULL,
			external_user_id TEXT NOT NULL,
			redirect_url     TEXT NOT NULL DEFAULT '',
			verifier         BYTEA NOT NULL,
			created_at       BIGINT NOT NULL,
			expires_at       BIGINT NOT NULL
		)`,
		`CREATE INDEX oauth_states_owner ON oauth_states (owner, expires_at)`,
		`CREATE TABLE webhooks (
			id         TEXT PRIMARY KEY,
			owner      TEXT NOT NULL,
			url        TEXT NOT NULL,
			events     TEXT NOT NULL,
			secret     BYTEA NOT NULL,
			created_at BIGINT NOT NULL
		)`,
		`CREATE INDEX webhooks_owner ON webhooks (owner, created_at)`,
	},
	{
		`ALTER TABLE tools ADD COLUMN needs_auth_token BOOLEAN NOT NULL DEFAULT FALSE`,
		`UPDATE tools SET code_hash = '' WHERE EXISTS (SELECT 1 FROM toolkits k
			WHERE k.owner = tools.owner AND k.name = tools.toolkit AND k.language = 'Go')`,
		`UPDATE toolkits SET toolkit_hash = '' WHERE language = 'Go'`,
	},
	{
		`CREATE INDEX keys_owner_toolkit ON keys (owner, toolkit)`,
	},
	{
		`CREATE TABLE webhook_deliveries (
			id            TEXT PRIMARY KEY,
			webhook_id    TEXT NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
			owner         TEXT NOT NULL,
			event_id      TEXT NOT NULL,
			event         TEXT NOT NULL,
			body          BYTEA NOT NULL,
			state         TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'delivered', 'failed')),
			attempts      INTEGER NOT NULL DEFAULT 0,
			due_at        BIGINT NOT NULL,
			claim         TEXT NOT NULL DEFAULT '',
			claimed_until BIGINT,
			last_error    TEXT NOT NULL DEFAULT '',
			created_at    BIGINT NOT NULL,
			updated_at    BIGINT NOT NULL,
			UNIQUE (event_id, webhook_id)
		)`,
		`CREATE INDEX webhook_deliveries_due ON webhook_deliveries (state, due_at)`,
		`CREATE INDEX webhook_deliveries_owner ON webhook_deliveries (owner, state)`,
		`ALTER TABLE oauth_connections ADD COLUMN refresh_holder TEXT NOT NULL DEFAULT ''`,
		`ALTER TABLE oauth_connections ADD COLUMN refresh_until BIGINT`,
		`CREATE INDEX keys_revoked ON keys (id) WHERE revoked_at IS NOT NULL`,
	},
}

// LatestSchemaVersion is the schema version this build migrates to.
var LatestSchemaVersion = len(sqliteMigrations)

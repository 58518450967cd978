import KilnStore

/// The registry's tables.
public enum RegistrySchema {
    public static let migrations: [Migration] = [
        Migration("registry_0001_initial", [
            """
            CREATE TABLE registered_models (
                name VARCHAR(256) PRIMARY KEY,
                creation_time BIGINT NOT NULL,
                last_updated_time BIGINT NOT NULL,
                description TEXT,
                user_id VARCHAR(256),
                next_version BIGINT NOT NULL
            )
            """,
            """
            CREATE TABLE registered_model_tags (
                name VARCHAR(256) NOT NULL REFERENCES registered_models(name),
                key VARCHAR(250) NOT NULL,
                value TEXT NOT NULL,
                PRIMARY KEY (name, key)
            )
            """,
            """
            CREATE TABLE model_versions (
                name VARCHAR(256) NOT NULL REFERENCES registered_models(name),
                version BIGINT NOT NULL,
                creation_time BIGINT NOT NULL,
                last_updated_time BIGINT NOT NULL,
                user_id VARCHAR(256),
                stage VARCHAR(20) NOT NULL,
                description TEXT,
                source TEXT NOT NULL,
                storage_location TEXT NOT NULL,
                run_id VARCHAR(32),
                run_link TEXT,
                model_id VARCHAR(40),
                PRIMARY KEY (name, version)
            )
            """,
            """
            CREATE TABLE model_version_tags (
                name VARCHAR(256) NOT NULL,
                version BIGINT NOT NULL,
                key VARCHAR(250) NOT NULL,
                value TEXT NOT NULL,
                PRIMARY KEY (name, version, key),
                FOREIGN KEY (name, version) REFERENCES model_versions(name, version)
            )
            """,
            """
            CREATE TABLE registered_model_aliases (
                name VARCHAR(256) NOT NULL REFERENCES registered_models(name),
                alias VARCHAR(256) NOT NULL,
                version BIGINT NOT NULL,
                PRIMARY KEY (name, alias)
            )
            """,
        ]),
        Migration("registry_0002_reviews", [
            """
            CREATE TABLE model_version_activities (
                id VARCHAR(32) PRIMARY KEY,
                seq BIGINT NOT NULL,
                name VARCHAR(256) NOT NULL,
                version BIGINT NOT NULL,
                activity_type VARCHAR(40) NOT NULL,
                from_stage VARCHAR(20),
                to_stage VARCHAR(20),
                user_id VARCHAR(256),
                comment TEXT,
                system_comment TEXT,
                creation_time BIGINT NOT NULL,
                last_updated_time BIGINT NOT NULL
            )
            """,
            "CREATE INDEX model_version_activities_version ON model_version_activities (name, version, seq)",
            "CREATE UNIQUE INDEX model_version_activities_seq ON model_version_activities (seq)",
            """
            CREATE TABLE transition_requests (
                name VARCHAR(256) NOT NULL,
                version BIGINT NOT NULL,
                to_stage VARCHAR(20) NOT NULL,
                user_id VARCHAR(256) NOT NULL,
                comment TEXT,
                creation_time BIGINT NOT NULL,
                PRIMARY KEY (name, version, to_stage, user_id)
            )
            """,
            """
            CREATE TABLE model_version_comments (
                id VARCHAR(32) PRIMARY KEY,
                name VARCHAR(256) NOT NULL,
                version BIGINT NOT NULL,
                comment TEXT NOT NULL,
                user_id VARCHAR(256),
                creation_time BIGINT NOT NULL,
                last_updated_time BIGINT NOT NULL
            )
            """,
            """
            CREATE TABLE registered_model_alias_history (
                id VARCHAR(32) PRIMARY KEY,
                seq BIGINT NOT NULL,
                name VARCHAR(256) NOT NULL,
                alias VARCHAR(256) NOT NULL,
                from_version BIGINT,
                to_version BIGINT,
                user_id VARCHAR(256),
                creation_time BIGINT NOT NULL
            )
            """,
            "CREATE UNIQUE INDEX registered_model_alias_history_seq ON registered_model_alias_history (seq)",
        ]),
        Migration("registry_0003_webhooks", [
            """
            CREATE TABLE registry_webhooks (
                id VARCHAR(32) PRIMARY KEY,
                model_name VARCHAR(256),
                events TEXT NOT NULL,
                url TEXT NOT NULL,
                secret TEXT,
                authorization TEXT,
                description TEXT,
                status VARCHAR(20) NOT NULL,
                creation_time BIGINT NOT NULL,
                last_updated_time BIGINT NOT NULL
            )
            """,
            """
            CREATE TABLE registry_webhook_deliveries (
                id VARCHAR(32) PRIMARY KEY,
                seq BIGINT NOT NULL,
                webhook_id VARCHAR(32) NOT NULL,
                event VARCHAR(80) NOT NULL,
                payload TEXT NOT NULL,
                state VARCHAR(20) NOT NULL,
                attempts BIGINT NOT NULL,
                next_attempt_time BIGINT NOT NULL,
                last_status_code BIGINT,
                last_error TEXT,
                creation_time BIGINT NOT NULL,
                last_updated_time BIGINT NOT NULL
            )
            """,
            "CREATE INDEX registry_webhook_deliveries_due ON registry_webhook_deliveries (state, next_attempt_time)",
            "CREATE UNIQUE INDEX registry_webhook_deliveries_seq ON registry_webhook_deliveries (seq)",
        ]),
        // Unity Catalog model versions are created PENDING_REGISTRATION, filled by the client, then finalized READY.
        Migration("registry_0004_version_status", [
            "ALTER TABLE model_versions ADD COLUMN status VARCHAR(32) NOT NULL DEFAULT 'READY'",
        ]),
    ]
}

import KilnStore

/// The tracking service's tables. Dialect-neutral SQL: it runs on SQLite and PostgreSQL alike.
///
/// NaN metric values are stored as `value = 0, is_nan = 1`, because SQLite turns NaN into NULL.
public enum TrackingSchema {
    public static let migrations: [Migration] = [
        Migration("tracking_0001_initial", [
            """
            CREATE TABLE experiments (
                experiment_id BIGINT PRIMARY KEY,
                name VARCHAR(500) NOT NULL UNIQUE,
                artifact_location TEXT NOT NULL,
                lifecycle_stage VARCHAR(32) NOT NULL,
                creation_time BIGINT NOT NULL,
                last_update_time BIGINT NOT NULL
            )
            """,
            """
            CREATE TABLE experiment_tags (
                experiment_id BIGINT NOT NULL REFERENCES experiments(experiment_id),
                key VARCHAR(250) NOT NULL,
                value TEXT NOT NULL,
                PRIMARY KEY (experiment_id, key)
            )
            """,
            """
            CREATE TABLE runs (
                run_uuid VARCHAR(32) PRIMARY KEY,
                name VARCHAR(250) NOT NULL,
                experiment_id BIGINT NOT NULL REFERENCES experiments(experiment_id),
                user_id VARCHAR(256) NOT NULL,
                status VARCHAR(20) NOT NULL,
                start_time BIGINT,
                end_time BIGINT,
                deleted_time BIGINT,
                lifecycle_stage VARCHAR(32) NOT NULL,
                artifact_uri TEXT NOT NULL
            )
            """,
            "CREATE INDEX runs_experiment_start ON runs (experiment_id, start_time)",
            """
            CREATE TABLE params (
                run_uuid VARCHAR(32) NOT NULL REFERENCES runs(run_uuid),
                key VARCHAR(250) NOT NULL,
                value TEXT NOT NULL,
                PRIMARY KEY (run_uuid, key)
            )
            """,
            "CREATE INDEX params_key_value ON params (key, run_uuid)",
            """
            CREATE TABLE tags (
                run_uuid VARCHAR(32) NOT NULL REFERENCES runs(run_uuid),
                key VARCHAR(250) NOT NULL,
                value TEXT NOT NULL,
                PRIMARY KEY (run_uuid, key)
            )
            """,
            """
            CREATE TABLE metrics (
                run_uuid VARCHAR(32) NOT NULL REFERENCES runs(run_uuid),
                key VARCHAR(250) NOT NULL,
                value DOUBLE PRECISION NOT NULL,
                is_nan SMALLINT NOT NULL,
                timestamp BIGINT NOT NULL,
                step BIGINT NOT NULL,
                model_id VARCHAR(64),
                dataset_name VARCHAR(500),
                dataset_digest VARCHAR(64),
                PRIMARY KEY (run_uuid, key, step, timestamp, value, is_nan)
            )
            """,
            """
            CREATE TABLE latest_metrics (
                run_uuid VARCHAR(32) NOT NULL REFERENCES runs(run_uuid),
                key VARCHAR(250) NOT NULL,
                value DOUBLE PRECISION NOT NULL,
                is_nan SMALLINT NOT NULL,
                timestamp BIGINT NOT NULL,
                step BIGINT NOT NULL,
                PRIMARY KEY (run_uuid, key)
            )
            """,
            "CREATE INDEX latest_metrics_key ON latest_metrics (key, run_uuid)",
            "CREATE INDEX metrics_model ON metrics (model_id)",
            """
            CREATE TABLE datasets (
                dataset_uuid VARCHAR(32) PRIMARY KEY,
                experiment_id BIGINT NOT NULL REFERENCES experiments(experiment_id),
                name VARCHAR(500) NOT NULL,
                digest VARCHAR(64) NOT NULL,
                source_type VARCHAR(36) NOT NULL,
                source TEXT NOT NULL,
                schema_json TEXT,
                profile TEXT,
                UNIQUE (experiment_id, name, digest)
            )
            """,
            """
            CREATE TABLE dataset_inputs (
                run_uuid VARCHAR(32) NOT NULL REFERENCES runs(run_uuid),
                dataset_uuid VARCHAR(32) NOT NULL REFERENCES datasets(dataset_uuid),
                PRIMARY KEY (run_uuid, dataset_uuid)
            )
            """,
            """
            CREATE TABLE input_tags (
                run_uuid VARCHAR(32) NOT NULL,
                dataset_uuid VARCHAR(32) NOT NULL,
                key VARCHAR(255) NOT NULL,
                value TEXT NOT NULL,
                PRIMARY KEY (run_uuid, dataset_uuid, key),
                FOREIGN KEY (run_uuid, dataset_uuid) REFERENCES dataset_inputs(run_uuid, dataset_uuid)
            )
            """,
            """
            CREATE TABLE logged_models (
                model_id VARCHAR(40) PRIMARY KEY,
                experiment_id BIGINT NOT NULL REFERENCES experiments(experiment_id),
                name VARCHAR(500) NOT NULL,
                artifact_location TEXT NOT NULL,
                creation_time BIGINT NOT NULL,
                last_updated_time BIGINT NOT NULL,
                status VARCHAR(40) NOT NULL,
                status_message TEXT,
                lifecycle_stage VARCHAR(32) NOT NULL,
                model_type VARCHAR(500),
                source_run_id VARCHAR(32)
            )
            """,
            """
            CREATE TABLE logged_model_params (
                model_id VARCHAR(40) NOT NULL REFERENCES logged_models(model_id),
                key VARCHAR(255) NOT NULL,
                value TEXT NOT NULL,
                PRIMARY KEY (model_id, key)
            )
            """,
            """
            CREATE TABLE logged_model_tags (
                model_id VARCHAR(40) NOT NULL REFERENCES logged_models(model_id),
                key VARCHAR(255) NOT NULL,
                value TEXT NOT NULL,
                PRIMARY KEY (model_id, key)
            )
            """,
            """
            CREATE TABLE run_model_inputs (
                run_uuid VARCHAR(32) NOT NULL REFERENCES runs(run_uuid),
                model_id VARCHAR(40) NOT NULL,
                PRIMARY KEY (run_uuid, model_id)
            )
            """,
            """
            CREATE TABLE run_model_outputs (
                run_uuid VARCHAR(32) NOT NULL REFERENCES runs(run_uuid),
                model_id VARCHAR(40) NOT NULL,
                step BIGINT NOT NULL,
                PRIMARY KEY (run_uuid, model_id)
            )
            """,
        ]),
        // Run children stored in their primary-key order: a search's per-run lookups and a run's load read one b-tree
        // instead of an index and then the table. SQLite only (PostgreSQL would use covering indexes). Not `metrics`:
        // its rows arrive in time order, which a rowid table appends and a clustered one inserts all over the tree
        // (a 1,000-metric batch 3.9 → 5.2 ms measured).
        Migration("tracking_0002_clustered_run_children", only: ["sqlite"],
                  clusteredRunChild("latest_metrics", [("value", "DOUBLE PRECISION"), ("is_nan", "SMALLINT"), ("timestamp", "BIGINT"),
                                                       ("step", "BIGINT")], indexes: ["CREATE INDEX latest_metrics_key ON latest_metrics (key, run_uuid)"])
                  + clusteredRunChild("params", [("value", "TEXT")], indexes: ["CREATE INDEX params_key_value ON params (key, run_uuid)"])
                  + clusteredRunChild("tags", [("value", "TEXT")])),
        // Each metric's smallest and largest value over the run's history (NaN skipped; NULL when every value was NaN),
        // kept beside the latest value so the runs table sorts and shows min/max without reading the history.
        Migration("tracking_0003_metric_ranges", [
            "ALTER TABLE latest_metrics ADD COLUMN min_value DOUBLE PRECISION",
            "ALTER TABLE latest_metrics ADD COLUMN max_value DOUBLE PRECISION",
            """
            UPDATE latest_metrics SET
                min_value = (SELECT MIN(m.value) FROM metrics m WHERE m.run_uuid = latest_metrics.run_uuid AND m.key = latest_metrics.key AND m.is_nan = 0),
                max_value = (SELECT MAX(m.value) FROM metrics m WHERE m.run_uuid = latest_metrics.run_uuid AND m.key = latest_metrics.key AND m.is_nan = 0)
            """,
        ]),
    ]

    /// Rebuilds a run child table (`run_uuid`, `key`, then `columns`, all NOT NULL) as `WITHOUT ROWID` keyed by
    /// (run_uuid, key), keeping its rows, then recreates its `indexes`.
    static func clusteredRunChild(_ table: String, _ columns: [(name: String, type: String)], indexes: [String] = []) -> [String] {
        let definitions = ["run_uuid VARCHAR(32) NOT NULL REFERENCES runs(run_uuid)", "key VARCHAR(250) NOT NULL"]
            + columns.map { "\($0.name) \($0.type) NOT NULL" } + ["PRIMARY KEY (run_uuid, key)"]
        let names = (["run_uuid", "key"] + columns.map(\.name)).joined(separator: ", ")
        return [
            "CREATE TABLE \(table)_clustered (\(definitions.joined(separator: ", "))) WITHOUT ROWID",
            "INSERT INTO \(table)_clustered (\(names)) SELECT \(names) FROM \(table)",
            "DROP TABLE \(table)",
            "ALTER TABLE \(table)_clustered RENAME TO \(table)",
        ] + indexes
    }
}

import Foundation
import KilnCore
import KilnLake

/// Kiln's own task types, run in the server process: `kiln_task {action, parameters}` or, spelled so the typed
/// databricks-sdk can send it, `python_wheel_task {package_name: "kiln", entry_point: <action>, named_parameters}`.
/// Actions: `ingest` (new files of a directory into a Delta table), `train` (the REST training request),
/// `predict` (batch scoring into a table), `promote` (candidate vs champion on a holdout; moves the alias only when
/// the candidate is significantly better), `serve` (points a serving endpoint at a version or alias, creating it when
/// missing). Each sets task values that later tasks can reference.
struct NativeTask {
    static let actions = ["ingest", "train", "predict", "promote", "serve"]

    let action: String
    let parameters: [String: JSONValue]

    /// The native task in a task definition, if it has one. - Throws: for an unknown action.
    static func from(_ task: [String: JSONValue]) throws -> NativeTask? {
        var action: String?, parameters: [String: JSONValue] = [:]
        if case .object(let k)? = task["kiln_task"] {
            action = try JSONFields(k).require("action")
            if case .object(let p)? = k["parameters"] { parameters = p }
        } else if case .object(let w)? = task["python_wheel_task"], w["package_name"] == .string("kiln") {
            action = try JSONFields(w).require("entry_point")
            if case .object(let p)? = w["named_parameters"] { parameters = p }
        }
        guard let action else { return nil }
        guard actions.contains(action) else { throw KilnError.invalid("Unknown Kiln task action '\(action)'; use one of \(actions.joined(separator: ", "))") }
        return NativeTask(action: action, parameters: parameters)
    }

    func run(_ attempt: TaskRun, context: TaskContext) async throws -> TaskRun {
        var t = attempt
        let platform = context.platform, f = JSONFields(parameters)
        var values: [String: JSONValue] = [:]
        func number(_ v: some BinaryInteger) -> JSONValue { .number(String(v)) }
        switch action {
        case "ingest":
            let source = try f.require("source"), table = try f.require("table"), format = try f.string("format")
            let result = try await Platform.offload { try DeltaTable.ingest(directory: source, into: platform.tablePath(table), format: format) }
            values = ["files": number(result.files.count), "rows": number(result.rows), "version": result.version.map { number($0) } ?? .null]
            t.message = "Loaded \(result.files.count) file(s), \(result.rows) rows into \(table)"
        case "train":
            let outcome = try await platform.train(try TrainRequest(json: parameters))
            values = ["run_id": .string(outcome.runID), "model_uri": .string(outcome.modelURI)]
            if let v = outcome.registeredVersion { values["version"] = .string(v) }
            for (k, v) in outcome.metrics { values[k] = .number(String(v)) }
            t.message = "Trained run \(outcome.runID)"
        case "predict":
            let outcome = try await platform.predict(modelURI: try f.require("model"), table: try f.require("table"), output: try f.require("output"))
            values = ["rows": number(outcome.rows), "version": number(outcome.outputVersion)]
            t.message = "Scored \(outcome.rows) rows into \(try f.require("output"))"
        case "promote":
            values = try await promote(platform, f)
            t.message = values["promoted"] == .bool(true) ? "Promoted the candidate" : "Kept the champion"
        case "serve":
            values = try await serve(platform, f)
            t.message = "Endpoint \(try f.require("endpoint")) \(JobValues.text(values["action"])) (version \(JobValues.text(values["version"])))"
        default:
            throw KilnError.invalid("Unknown Kiln task action '\(action)'")
        }
        t.info["values"] = .object(values)
        t.result = .success
        return t
    }

    /// Moves `alias` (default champion) of `model` to `version` when there is no champion yet, or when the
    /// candidate is significantly better than the champion on `table` (McNemar for classifiers, a paired bootstrap
    /// of the RMSE for regressors, 5% level).
    func promote(_ platform: Platform, _ f: JSONFields) async throws -> [String: JSONValue] {
        let name = try f.require("model"), version = try f.require("version"), alias = try f.string("alias") ?? "champion"
        let table = try f.require("table")
        _ = try await platform.registry.getModelVersion(name: name, version: version)
        let champion = try? await platform.registry.version(name: name, alias: alias)
        var values: [String: JSONValue] = ["candidate_version": .string(version)]
        guard let champion, String(champion.version) != version else {
            try await platform.registry.setAlias(name: name, alias: alias, version: version, userID: "kiln-jobs")
            values["promoted"] = .bool(true)
            values["reason"] = .string(champion == nil ? "no \(alias) yet" : "already \(alias)")
            return values
        }
        let c = try await platform.compare(modelA: "models:/\(name)/\(version)", modelB: "models:/\(name)/\(champion.version)", table: table)
        values["champion_version"] = .string(String(champion.version))
        values["test"] = .string(c.test)
        if let p = c.pValue { values["p_value"] = .number(String(p)) }
        if let d = c.difference { values["difference"] = .number(String(d)) }
        for (k, v) in c.metricsA { values["candidate_\(k)"] = .number(String(v)) }
        for (k, v) in c.metricsB { values["champion_\(k)"] = .number(String(v)) }
        let better = c.better == "a"
        if better { try await platform.registry.setAlias(name: name, alias: alias, version: version, userID: "kiln-jobs") }
        values["promoted"] = .bool(better)
        values["reason"] = .string(better ? "the candidate is significantly better" : c.better == "b" ? "the champion is significantly better" : "no significant difference")
        return values
    }
}

extension NativeTask {
    /// Serves `model` at `version` (or the version `alias` names, default champion) on `endpoint`: created when
    /// missing, its config swapped (warm) when it serves another version, left alone when it already serves this one.
    func serve(_ platform: Platform, _ f: JSONFields) async throws -> [String: JSONValue] {
        let endpoint = try f.require("endpoint"), model = try f.require("model")
        let version: String
        if let v = try f.string("version") { version = v } else {
            version = String(try await platform.registry.version(name: model, alias: try f.string("alias") ?? "champion").version)
        }
        let config = EndpointConfig(servedEntities: [ServedEntity(entityName: model, entityVersion: version, workloadSize: try f.string("workload_size") ?? "Small",
                                                                  scaleToZeroEnabled: true)])
        var action = "created"
        if let existing = try? await platform.serving.get(name: endpoint) {
            if existing.config.servedEntities.map({ "\($0.entityName)/\($0.entityVersion)" }) == ["\(model)/\(version)"] {
                action = "unchanged"
            } else {
                _ = try await platform.serving.updateConfig(name: endpoint, config: config, principal: "kiln-jobs")
                action = "updated"
            }
        } else {
            _ = try await platform.serving.create(name: endpoint, config: config, creator: "kiln-jobs")
        }
        return ["endpoint": .string(endpoint), "version": .string(version), "action": .string(action)]
    }
}

/// The Python side of task values, widgets and notebook exit: a `dbruntime` module on the task's PYTHONPATH, so
/// `from databricks.sdk.runtime import dbutils` (the stock SDK) finds Kiln's `dbutils` as it finds the
/// Databricks runtime's, and an IPython startup file that gives notebooks a global `dbutils`.
enum DBUtilsShim {
    static let module = #"""
"""Kiln's stand-in for the Databricks runtime module: `dbutils` for job tasks (task values, widgets, notebook exit)."""
import json
import os
import sys

_MAX_VALUE_BYTES = 48 * 1024


def _load(path, default):
    if path and os.path.exists(path):
        with open(path) as f:
            return json.load(f)
    return default


class _TaskValues:
    def set(self, key, value):
        """Sets a task value that later tasks read with get() or {{tasks.<this task>.values.<key>}}."""
        path = os.environ.get("KILN_TASK_VALUES_FILE")
        if not path:
            print(f"dbutils.jobs.taskValues.set({key!r}) outside a job: ignored", file=sys.stderr)
            return
        text = json.dumps(value)
        if len(text.encode()) > _MAX_VALUE_BYTES:
            raise ValueError(f"Task value {key!r} is {len(text.encode())} bytes; the limit is {_MAX_VALUE_BYTES}")
        values = _load(path, {})
        values[key] = value
        with open(path + ".tmp", "w") as f:
            json.dump(values, f)
        os.replace(path + ".tmp", path)

    def get(self, taskKey, key, default=None, debugValue=None):
        """A value an upstream task set; `default` when it set none, `debugValue` outside a job."""
        path = os.environ.get("KILN_TASK_VALUES_UPSTREAM")
        if not path:
            if debugValue is None:
                raise TypeError("Outside a job, dbutils.jobs.taskValues.get needs debugValue")
            return debugValue
        values = _load(path, {})
        if key in values.get(taskKey, {}):
            return values[taskKey][key]
        if default is not None:
            return default
        raise ValueError(f"Task {taskKey!r} set no task value {key!r}")


class _Jobs:
    def __init__(self):
        self.taskValues = _TaskValues()


class _Widgets:
    def __init__(self):
        self._defaults = {}

    def _all(self):
        values = dict(self._defaults)
        values.update(_load(os.environ.get("KILN_WIDGETS"), {}))
        return values

    def get(self, name):
        values = self._all()
        if name not in values:
            raise ValueError(f"No input widget named {name!r} is defined")
        return values[name]

    def getArgument(self, name, defaultValue=None):
        return self._all().get(name, defaultValue)

    def getAll(self):
        return self._all()

    def text(self, name, defaultValue, label=None):
        self._defaults[name] = defaultValue

    dropdown = combobox = multiselect = lambda self, name, defaultValue, choices=None, label=None: self.text(name, defaultValue)

    def remove(self, name):
        self._defaults.pop(name, None)

    def removeAll(self):
        self._defaults.clear()


class _Notebook:
    def __init__(self):
        self.exited = False

    def exit(self, value):
        """Records the run's output (runs/get-output notebook_output.result). A script stops here; in a notebook the
        cells after this one are skipped (the rest of this cell still runs)."""
        path = os.environ.get("KILN_NOTEBOOK_EXIT_FILE")
        if path:
            with open(path, "w") as f:
                f.write(str(value))
        self.exited = True
        try:
            from IPython import get_ipython
            if get_ipython() is not None:
                return
        except ImportError:
            pass
        sys.exit(0)


class DBUtils:
    def __init__(self):
        self.jobs = _Jobs()
        self.widgets = _Widgets()
        self.notebook = _Notebook()


dbutils = DBUtils()


def getArgument(name, defaultValue=None):
    return dbutils.widgets.getArgument(name, defaultValue)


class UserNamespaceInitializer:
    @classmethod
    def getOrCreate(cls):
        return cls()

    def get_namespace_globals(self):
        names = ["display", "displayHTML", "table", "sql", "udf", "sc", "sqlContext", "spark"]
        return dict({n: None for n in names}, dbutils=dbutils, getArgument=getArgument)
"""#

    static let startup = #"""
# Kiln: notebooks run by a job get `dbutils` as on Databricks; after dbutils.notebook.exit() later cells are skipped.
from dbruntime import dbutils, getArgument  # noqa: F401


def _kiln_skip_after_exit(lines):
    return [] if dbutils.notebook.exited else lines


get_ipython().input_transformers_cleanup.append(_kiln_skip_after_exit)
"""#
}

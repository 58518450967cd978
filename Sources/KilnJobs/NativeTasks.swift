import Foundation
import KilnCore
import KilnSQL

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

    func run(_ attempt: TaskRun, context: TaskContext, as caller: Caller?) async throws -> TaskRun {
        var t = attempt
        let (values, message) = try await context.environment.native.run(action: action, parameters: parameters, as: caller)
        t.message = message
        t.info["values"] = .object(values)
        t.result = .success
        return t
    }
}

/// Runs Kiln's native task actions (`ingest`, `train`, `predict`, `promote`, `serve`) in the server process: the seam
/// jobs declare so that they never import training, the registry or serving; `KilnPlatform` implements it.
public protocol NativeActions: Sendable {
    /// Runs `action` with its named parameters as `caller` (the run's run-as identity; nil: Kiln itself), who must be
    /// allowed everything it reads and writes. - Returns: the task values later tasks can reference, and a one-line
    /// message for the task run. - Throws: `INVALID_PARAMETER_VALUE` for missing or bad parameters, `PERMISSION_DENIED`.
    func run(action: String, parameters: [String: JSONValue], as caller: Caller?) async throws -> (values: [String: JSONValue], message: String)
}

/// What the executor needs from the rest of Kiln: the home (task outputs, environments, relative paths), SQL for
/// `sql_task`, where three-level table names live (table-update triggers), webhook delivery, and the native actions.
public struct JobEnvironment: Sendable {
    public var home: URL
    public var statements: StatementService
    public var tablePath: @Sendable (String) -> String
    public var webhooks: any WebhookTransport
    public var native: any NativeActions
    /// Whom a run's in-process tasks (`sql_task`, native actions) act as: its run-as identity, as its task processes'
    /// token does (nil: Kiln itself). - Throws: `PERMISSION_DENIED` when that identity is disabled or gone.
    public var actAs: @Sendable (RunIdentity) async throws -> Caller?

    public init(home: URL, statements: StatementService, tablePath: @escaping @Sendable (String) -> String, webhooks: any WebhookTransport,
                native: any NativeActions, actAs: @escaping @Sendable (RunIdentity) async throws -> Caller? = { _ in nil }) {
        self.home = home
        self.statements = statements
        self.tablePath = tablePath
        self.webhooks = webhooks
        self.native = native
        self.actAs = actAs
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

import Foundation
import KilnCore
import KilnFrame
import KilnPython
import KilnSQL

/// Runs catalog functions written in Python (`CREATE FUNCTION ... LANGUAGE PYTHON AS $$ ... $$`) over a frame's
/// columns: the seam between feature functions and whatever runs Python.
public protocol PythonFunctionRunning: Sendable {
    /// `function` called once per row on `arguments` (one column per parameter, already of its declared type);
    /// a column of the declared return type. - Throws: `INVALID_PARAMETER_VALUE` naming the row when the code raises.
    func call(_ function: SQLFunction, arguments: [Column], rows: Int) throws -> Column
}

/// Python functions run in one long-lived `python3` process of the server (`PythonWorker`): the body is compiled
/// once per definition and called row by row with Python values (`int`, `float`, `str`, `bool`, `bytes`,
/// `datetime.date`, naive UTC `datetime.datetime`, `None` for null). The same process serves training sets,
/// `score_batch` and feature serving, so the same code computes a feature at training and at serving.
public final class PythonFunctions: PythonFunctionRunning {
    private let worker: PythonWorker
    /// How long one call may take before the worker is stopped (seconds).
    public let timeout: Double

    /// A runner whose worker writes its stderr to `log`.
    public init(log: String, timeout: Double = 120) {
        worker = PythonWorker(script: Self.runner, what: "Python function worker", log: log)
        self.timeout = timeout
    }

    /// What a type is to the runner; nil for the types Python functions do not take or return.
    static func kind(_ type: FrameType) -> String? {
        switch type {
        case .bool: "bool"
        case .int8, .int16, .int32, .int64: "int"
        case .float32, .float64: "double"
        case .string: "string"
        case .binary: "binary"
        case .date: "date"
        case .timestamp: "timestamp"
        case .decimal: nil
        case .array, .map, .structure: "json"  // arguments only: lists and dicts as parsed JSON
        }
    }

    public func call(_ function: SQLFunction, arguments: [Column], rows: Int) throws -> Column {
        let returns = try Parser.type(function.returnsText)
        guard let returnKind = Self.kind(returns), returnKind != "json" else { throw Self.unsupported(function) }
        var w = JSONWriter()
        w.object { w in
            w.key("key"); w.value("\(function.fullName)#\(function.id)#\(function.body.hashValue)")
            w.key("source"); w.value(function.body)
            w.key("params"); w.array { w in for p in function.parameters { w.value(p.name) } }
            w.key("types"); w.array { w in for c in arguments { w.value(Self.kind(c.type) ?? "string") } }
            w.key("returns"); w.value(returnKind)
            w.key("rows"); w.value(Int64(rows))
            w.key("args")
            w.array { w in
                for column in arguments {
                    w.array { w in
                        for i in 0..<rows {
                            switch column.value(i) {
                            case .null: w.null()
                            case .bool(let b): w.value(b)
                            case .int(let n), .date(let n), .timestamp(let n): w.value(n)
                            case .double(let d): if d.isFinite { w.value(d) } else { w.value(d.isNaN ? "NaN" : d > 0 ? "Infinity" : "-Infinity") }
                            case .string(let s): w.value(s)
                            case .bytes(let b): w.value(Hex.encode(b))
                            case .nested(let text, _): w.raw(text)
                            case .decimal: w.value(column.value(i).text)
                            }
                        }
                    }
                }
            }
        }
        let answer = try JSONValue.parse(Data(try worker.request(String(decoding: w.bytes, as: UTF8.self), timeout: timeout).utf8))
        guard case .object(let o) = answer else { throw KilnError(.internalError, "The Python function worker answered \(answer)") }
        if case .string(let message)? = o["error"] { throw KilnError.invalid("Python function \(function.fullName) failed: \(message)") }
        guard case .array(let items)? = o["values"], items.count == rows else {
            throw KilnError(.internalError, "The Python function worker gave no values for \(function.fullName)")
        }
        let values: [Value] = items.map { item in
            switch (item, returnKind) {
            case (.null, _): return .null
            case (.bool(let b), _): return .bool(b)
            case (.string(let s), "double"): return .double(s == "NaN" ? .nan : s == "Infinity" ? .infinity : -.infinity)
            case (.string(let s), "binary"): return Hex.decode(s).map(Value.bytes) ?? .null
            case (.string(let s), _): return .string(s)
            case (.number(let n), "double"): return .double(Double(n) ?? .nan)
            case (.number(let n), "date"): return .date(Int64(n) ?? 0)
            case (.number(let n), "timestamp"): return .timestamp(Int64(n) ?? 0)
            case (.number(let n), _): return .int(Int64(n) ?? 0)
            default: return .null
            }
        }
        return Column.from(values, type: returns)
    }

    static func unsupported(_ f: SQLFunction) -> KilnError {
        KilnError.invalid("Python function \(f.fullName): Python functions take and return BOOLEAN, TINYINT to BIGINT, FLOAT, DOUBLE, STRING, BINARY, DATE and TIMESTAMP values, not DECIMAL")
    }

    /// The worker: one JSON request per line, one JSON answer per line.
    static let runner = #"""
import datetime, json, math, sys, textwrap
E = datetime.datetime(1970, 1, 1)
D = datetime.date(1970, 1, 1)
cache = {}
def arg(kind, v):
    if v is None: return None
    if kind == "date": return D + datetime.timedelta(days=v)
    if kind == "timestamp": return E + datetime.timedelta(microseconds=v)
    if kind == "binary": return bytes.fromhex(v)
    if kind == "double" and isinstance(v, str): return float(v.replace("Infinity", "inf"))
    return v
def out(kind, v):
    if v is None: return None
    if kind == "int":
        if isinstance(v, bool) or not (isinstance(v, int) or (isinstance(v, float) and v.is_integer())): raise TypeError(f"returned {v!r} where an integer is declared")
        return int(v)
    if kind == "double":
        if isinstance(v, bool) or not isinstance(v, (int, float)): raise TypeError(f"returned {v!r} where a DOUBLE is declared")
        v = float(v)
        return v if math.isfinite(v) else ("NaN" if v != v else "Infinity" if v > 0 else "-Infinity")
    if kind == "bool":
        if not isinstance(v, bool): raise TypeError(f"returned {v!r} where a BOOLEAN is declared")
        return v
    if kind == "string": return v if isinstance(v, str) else str(v)
    if kind == "binary": return bytes(v).hex()
    if kind == "date":
        if isinstance(v, datetime.datetime): v = v.date()
        if not isinstance(v, datetime.date): raise TypeError(f"returned {v!r} where a DATE is declared")
        return (v - D).days
    if kind == "timestamp":
        if not isinstance(v, datetime.datetime): raise TypeError(f"returned {v!r} where a TIMESTAMP is declared")
        if v.tzinfo is not None: v = v.astimezone(datetime.timezone.utc).replace(tzinfo=None)
        return (v - E) // datetime.timedelta(microseconds=1)
    raise TypeError(f"cannot return a {kind}")
for line in sys.stdin:
    try:
        r = json.loads(line)
        f = cache.get(r["key"])
        if f is None:
            scope = {}
            exec("def __kiln_udf(" + ", ".join(r["params"]) + "):\n" + textwrap.indent(textwrap.dedent(r["source"]).strip("\n") or "pass", "    ") + "\n", scope)
            f = cache[r["key"]] = scope["__kiln_udf"]
        columns = [[arg(k, v) for v in c] for k, c in zip(r["types"], r["args"])]
        values = []
        for i in range(r["rows"]):
            try:
                values.append(out(r["returns"], f(*[c[i] for c in columns])))
            except Exception as e:
                raise RuntimeError(f"{type(e).__name__}: {e} (row {i + 1}, arguments {tuple(c[i] for c in columns)!r})") from None
        reply = {"values": values}
    except Exception as e:
        reply = {"error": str(e) if isinstance(e, RuntimeError) else f"{type(e).__name__}: {e}"}
    sys.stdout.write(json.dumps(reply, allow_nan=False) + "\n")
    sys.stdout.flush()
"""#
}

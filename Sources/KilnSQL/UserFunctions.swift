import Foundation
import KilnCore
import KilnFrame

/// A user-defined scalar function (`CREATE FUNCTION c.s.f(x DOUBLE) RETURNS DOUBLE RETURN x * 2`), kept as
/// `<schema folder>/_functions/<name>.json` so SQL, the catalog API and the local CLI see the same ones. A SQL call is
/// inlined at parse time: the body with each parameter replaced by its argument, cast to the declared types. A
/// Python function (`LANGUAGE PYTHON AS $$ return x * 2 $$`) keeps its body as source; feature functions and feature
/// serving run it (KilnFeatures' `PythonFunctions`), SQL statements do not yet.
public struct SQLFunction: Sendable, Equatable {
    /// What the body is written in.
    public enum Language: String, Sendable, Equatable {
        case sql = "SQL", python = "PYTHON"
    }

    public struct Parameter: Sendable, Equatable {
        public var name: String
        /// As written (`DOUBLE`, `DECIMAL(10,2)`).
        public var typeText: String
        public var comment: String?

        public init(name: String, typeText: String, comment: String? = nil) {
            self.name = name
            self.typeText = typeText
            self.comment = comment
        }
    }

    public var catalog: String
    public var schema: String
    public var name: String
    public var parameters: [Parameter]
    public var returnsText: String
    /// The body expression, as written after `RETURN`; a Python function's source.
    public var body: String
    public var comment: String?
    public var language: Language
    public var id: String
    public var createdAt: Int64

    public init(catalog: String, schema: String, name: String, parameters: [Parameter], returnsText: String, body: String,
                comment: String? = nil, language: Language = .sql, id: String = UUID().uuidString.lowercased(),
                createdAt: Int64 = Int64(Date().timeIntervalSince1970 * 1000)) {
        self.catalog = catalog
        self.schema = schema
        self.name = name
        self.parameters = parameters
        self.returnsText = returnsText
        self.body = body
        self.comment = comment
        self.language = language
        self.id = id
        self.createdAt = createdAt
    }

    public var fullName: String { "\(catalog).\(schema).\(name)" }

    /// Checks the types and the body: it must parse as one expression that reads only the parameters (and calls
    /// functions `functions` finds). - Throws: `INVALID_PARAMETER_VALUE` saying what is wrong.
    public func validate(functions: FunctionResolver? = nil) throws {
        try Catalog.checkName(name)
        var seen = Set<String>()
        for p in parameters {
            guard !p.name.isEmpty, seen.insert(p.name.lowercased()).inserted else {
                throw KilnError.invalid("Function \(fullName): parameter names must be present and distinct ('\(p.name)')")
            }
            _ = try Parser.type(p.typeText)
        }
        let returns = try Parser.type(returnsText)
        if language == .python {
            let types = try [returns] + parameters.map { try Parser.type($0.typeText) }
            if types.contains(where: { if case .decimal = $0 { true } else { false } }) {
                throw KilnError.invalid("Function \(fullName): Python functions take and return BOOLEAN, TINYINT to BIGINT, FLOAT, DOUBLE, STRING, BINARY, DATE and TIMESTAMP values, not DECIMAL")
            }
            guard !body.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty else { throw KilnError.invalid("Function \(fullName): the Python body is empty") }
            return
        }
        let expr = try Parser.expression(body, functions: functions)
        let unknown = expr.columns.subtracting(seen).sorted()
        guard unknown.isEmpty else {
            throw KilnError.invalid("Function \(fullName): the body reads \(unknown.joined(separator: ", ")), which is not a parameter; a SQL function's body may read only its parameters")
        }
    }

    /// The call `name(arguments)` as the body with the arguments in place.
    func inline(_ arguments: [Expr], resolve: FunctionResolver?, depth: Int) throws -> Expr {
        guard language == .sql else {
            throw KilnError.invalid("\(fullName) is a Python function: Kiln runs Python functions in feature functions (FeatureFunction) and feature serving, not yet inside SQL statements")
        }
        guard arguments.count == parameters.count else {
            throw KilnError.invalid("Function \(fullName) takes \(parameters.count) argument\(parameters.count == 1 ? "" : "s"), not \(arguments.count)")
        }
        guard depth < 16 else { throw KilnError.invalid("Function \(fullName) calls functions 16 deep; is it recursive?") }
        var bound: [String: Expr] = [:]
        for (p, a) in zip(parameters, arguments) { bound[p.name.lowercased()] = .cast(a, try Parser.type(p.typeText)) }
        var parser = Parser(tokens: try Lexer.tokens(body), sql: body)
        parser.functions = resolve
        parser.depth = depth + 1
        let expr = try parser.expression()
        let substituted = expr.rewriteTopDown { node in
            if case .column(let c) = node { return bound[c.lowercased()] }
            return nil
        }
        return .cast(substituted, try Parser.type(returnsText))
    }

    var json: JSONValue {
        var o: [String: JSONValue] = [
            "id": .string(id), "name": .string(name), "returns": .string(returnsText), "body": .string(body),
            "created_at": .number(String(createdAt)),
            "parameters": .array(parameters.map { p in
                var o: [String: JSONValue] = ["name": .string(p.name), "type": .string(p.typeText)]
                if let c = p.comment { o["comment"] = .string(c) }
                return .object(o)
            }),
        ]
        if let comment { o["comment"] = .string(comment) }
        if language != .sql { o["language"] = .string(language.rawValue) }
        return .object(o)
    }

    init(catalog: String, schema: String, json: JSONValue) throws {
        guard case .object(let o) = json, case .string(let id)? = o["id"], case .string(let name)? = o["name"],
              case .string(let returns)? = o["returns"], case .string(let body)? = o["body"] else {
            throw KilnError(.internalError, "A function's definition file in \(catalog).\(schema) is damaged")
        }
        var parameters: [Parameter] = []
        if case .array(let items)? = o["parameters"] {
            for case .object(let p) in items {
                guard case .string(let n)? = p["name"], case .string(let t)? = p["type"] else { continue }
                var comment: String?
                if case .string(let c)? = p["comment"] { comment = c }
                parameters.append(Parameter(name: n, typeText: t, comment: comment))
            }
        }
        var comment: String?, created: Int64 = 0
        if case .string(let c)? = o["comment"] { comment = c }
        if case .number(let n)? = o["created_at"] { created = Int64(n) ?? 0 }
        var language = Language.sql
        if case .string(let l)? = o["language"] { language = Language(rawValue: l) ?? .sql }
        self.init(catalog: catalog, schema: schema, name: name, parameters: parameters, returnsText: returns, body: body, comment: comment,
                  language: language, id: id, createdAt: created)
    }
}

/// Finds the user function a call names (its parts as written); nil when there is none.
public typealias FunctionResolver = @Sendable ([String]) throws -> SQLFunction?

extension Catalog {
    /// Where a schema's functions are defined.
    public func functionsFolder(_ catalog: String, _ schema: String) -> String { schemaFolder(catalog, schema) + "/_functions" }

    /// A schema's functions, by name.
    public func functions(in catalog: String, _ schema: String) throws -> [SQLFunction] {
        guard schemaExists(catalog, schema) else { throw Self.noSchema(catalog, schema) }
        let folder = functionsFolder(catalog, schema)
        return try ((try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []).filter { $0.hasSuffix(".json") }.sorted()
            .compactMap { file in
                guard let data = FileManager.default.contents(atPath: folder + "/" + file) else { return nil }
                return try SQLFunction(catalog: catalog, schema: schema, json: try JSONValue.parse(data))
            }
    }

    /// The function `catalog.schema.name`; nil when there is none.
    public func function(_ catalog: String, _ schema: String, _ name: String) throws -> SQLFunction? {
        let file = functionsFolder(catalog, schema) + "/" + name.lowercased() + ".json"
        guard let data = FileManager.default.contents(atPath: file) else { return nil }
        return try SQLFunction(catalog: catalog, schema: schema, json: try JSONValue.parse(data))
    }

    /// Writes a function's definition (replacing one of the same name when `replace`).
    /// - Throws: `RESOURCE_ALREADY_EXISTS`; `INVALID_PARAMETER_VALUE` for a bad definition.
    public func saveFunction(_ f: SQLFunction, replace: Bool) throws {
        guard schemaExists(f.catalog, f.schema) else { throw Self.noSchema(f.catalog, f.schema) }
        try f.validate(functions: functionResolver)
        if !replace, try function(f.catalog, f.schema, f.name) != nil {
            throw KilnError.alreadyExists("Function '\(f.fullName)' already exists")
        }
        let folder = functionsFolder(f.catalog, f.schema)
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        try Data(f.json.json.utf8).write(to: URL(fileURLWithPath: folder + "/" + f.name.lowercased() + ".json"), options: .atomic)
    }

    /// Removes a function's definition. - Throws: `RESOURCE_DOES_NOT_EXIST` unless `ifExists`.
    public func dropFunction(_ catalog: String, _ schema: String, _ name: String, ifExists: Bool) throws {
        let file = functionsFolder(catalog, schema) + "/" + name.lowercased() + ".json"
        guard FileManager.default.fileExists(atPath: file) else {
            if ifExists { return }
            throw KilnError.notFound("[ROUTINE_NOT_FOUND] The function '\(catalog).\(schema).\(name)' does not exist")
        }
        try FileManager.default.removeItem(atPath: file)
    }

    /// The parts of a function name completed with the defaults (`f` → `main.default.f`).
    public func functionName(_ parts: [String]) throws -> (catalog: String, schema: String, name: String) {
        let t = try tableName(parts)
        return (t.catalog, t.schema, t.table)
    }

    /// Resolves calls against this catalog: qualified names always, unqualified ones in the default schema when
    /// they are not built-in functions.
    public var functionResolver: FunctionResolver {
        let catalog = self
        return { parts in
            guard parts.count <= 3, !(parts.count == 1 && Parser.isBuiltinFunction(parts[0])) else { return nil }
            guard let n = try? catalog.functionName(parts) else { return nil }
            return try catalog.function(n.catalog, n.schema, n.name)
        }
    }
}

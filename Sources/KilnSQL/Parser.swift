import Foundation
import KilnCore
import KilnFrame
import KilnLake

/// A recursive-descent parser for the Spark/Databricks SQL subset Kiln runs.
public struct Parser {
    var tokens: [Token]
    var at = 0
    let sql: String
    /// Uncorrelated subqueries used as expressions, by id (`Expr.call("__subquery", [id])`).
    var subqueries: [Query] = []
    /// Finds user functions; calls to them are inlined (nil: only built-in functions).
    var functions: FunctionResolver?
    /// How deep in function bodies this parser is.
    var depth = 0
    /// The user functions the statement calls, as `catalog.schema.name`.
    var calledFunctions: Set<String> = []

    static let reserved: Set<String> = ["select", "from", "where", "group", "by", "having", "order", "limit", "offset", "union", "intersect",
                                        "except", "join", "inner", "left", "right", "full", "outer", "cross", "semi", "anti", "on",
                                        "using", "as", "and", "or", "not", "in", "is", "null", "like", "between", "case", "when", "then",
                                        "else", "end", "with", "distinct", "all", "asc", "desc", "nulls", "first", "last", "exists",
                                        "natural", "window", "over", "version", "timestamp", "ilike", "rlike", "asof"]

    /// Parses one statement (a trailing `;` is allowed).
    public static func parse(_ sql: String) throws -> (Statement, subqueries: [Query]) {
        let parsed = try parse(sql, functions: nil)
        return (parsed.statement, parsed.subqueries)
    }

    /// Parses one statement, inlining calls of the user functions `functions` finds.
    public static func parse(_ sql: String, functions: FunctionResolver?) throws -> ParsedStatement {
        var parser = Parser(tokens: try Lexer.tokens(sql), sql: sql)
        parser.functions = functions
        let statement = try parser.statement()
        _ = parser.symbol(";")
        guard parser.peek.kind == .end else { throw parser.fail("unexpected '\(parser.peek.text)'") }
        return ParsedStatement(statement: statement, subqueries: parser.subqueries, functions: parser.calledFunctions)
    }

    /// A type as SQL writes it (`DOUBLE`, `DECIMAL(10,2)`). - Throws: `INVALID_PARAMETER_VALUE`.
    public static func type(_ text: String) throws -> FrameType {
        var parser = Parser(tokens: try Lexer.tokens(text), sql: text)
        let type = try parser.typeName()
        guard parser.peek.kind == .end else { throw parser.fail("unexpected '\(parser.peek.text)' after the type") }
        return type
    }

    /// One expression (a function body). - Throws: `INVALID_PARAMETER_VALUE`.
    public static func expression(_ text: String, functions: FunctionResolver? = nil) throws -> Expr {
        var parser = Parser(tokens: try Lexer.tokens(text), sql: text)
        parser.functions = functions
        parser.depth = 1
        let e = try parser.expression()
        guard parser.peek.kind == .end, parser.subqueries.isEmpty else { throw parser.fail("a function body is one expression, without subqueries") }
        return e
    }

    /// Built-in functions, which user functions called without a schema cannot shadow.
    static func isBuiltinFunction(_ name: String) -> Bool {
        let lower = name.lowercased()
        return Expr.isBuiltinFunction(lower) || Execution.aggregates.contains(lower) || lower.hasPrefix("__")
    }

    init(tokens: [Token], sql: String) {
        self.tokens = tokens
        self.sql = sql
    }

    var peek: Token { tokens[at] }
    func peek(_ k: Int) -> Token { tokens[min(at + k, tokens.count - 1)] }

    func fail(_ message: String) -> KilnError {
        let offset = peek.offset
        let line = sql.prefix(offset).filter { $0 == "\n" }.count + 1
        return KilnError.invalid("SQL syntax error at line \(line), character \(offset + 1) (near '\(peek.kind == .end ? "end of input" : peek.text)'): \(message)")
    }

    func isKeyword(_ word: String, _ k: Int = 0) -> Bool {
        let t = peek(k)
        return t.kind == .identifier && t.text.lowercased() == word
    }

    mutating func keyword(_ word: String) -> Bool {
        guard isKeyword(word) else { return false }
        at += 1
        return true
    }

    mutating func expect(_ word: String) throws {
        guard keyword(word) else { throw fail("expected \(word.uppercased())") }
    }

    mutating func symbol(_ s: String) -> Bool {
        guard peek.kind == .symbol, peek.text == s else { return false }
        at += 1
        return true
    }

    mutating func expectSymbol(_ s: String) throws {
        guard symbol(s) else { throw fail("expected '\(s)'") }
    }

    mutating func identifier() throws -> String {
        let t = peek
        if t.kind == .quoted || (t.kind == .identifier && !Self.reserved.contains(t.text.lowercased())) {
            at += 1
            return t.text
        }
        throw fail("expected a name")
    }

    /// A name even if it is a keyword (after a dot, or as a column alias after AS).
    mutating func anyName() throws -> String {
        let t = peek
        guard t.kind == .identifier || t.kind == .quoted else { throw fail("expected a name") }
        at += 1
        return t.text
    }

    // MARK: Statements

    /// `GRANT p[, p] ON type name TO principal`, `REVOKE ... FROM principal`, `SHOW GRANTS [principal] ON type name`.
    mutating func grantStatement() throws -> Statement {
        func privileges() throws -> [String] {
            var out: [String] = [], words: [String] = []
            while !isKeyword("on") {
                guard peek.kind != .end else { throw fail("expected ON after the privileges") }
                if symbol(",") {
                    out.append(words.joined(separator: " "))
                    words = []
                    continue
                }
                words.append(try anyName())
            }
            out.append(words.joined(separator: " "))
            guard !out.contains(where: \.isEmpty) else { throw fail("expected a privilege") }
            return out
        }
        func securable() throws -> (type: String, name: [String]) {
            try expect("on")
            if keyword("metastore") { return ("metastore", ["metastore"]) }
            for type in ["catalog", "schema", "database", "table", "volume", "function", "model"] where keyword(type) {
                return (type == "database" ? "schema" : type, try qualifiedName())
            }
            return ("table", try qualifiedName())
        }
        if keyword("show") {
            try expect("grants")
            var principal: String?
            if !isKeyword("on") { principal = try anyName() }
            let (type, name) = try securable()
            return .grants(GrantStatement(action: .show, privileges: [], securableType: type, name: name, principal: principal))
        }
        let granting = keyword("grant")
        if !granting { try expect("revoke") }
        let list = try privileges()
        let (type, name) = try securable()
        try expect(granting ? "to" : "from")
        let principal = try anyName()
        return .grants(GrantStatement(action: granting ? .grant : .revoke, privileges: list, securableType: type, name: name, principal: principal))
    }

    mutating func statement() throws -> Statement {
        if keyword("explain") {
            let analyze = keyword("analyze")
            _ = keyword("extended") || keyword("formatted") || keyword("cost") || keyword("codegen")
            guard case .query(let q) = try statement() else { throw fail("EXPLAIN explains queries (SELECT, WITH, VALUES)") }
            return .explain(q, analyze: analyze)
        }
        if isKeyword("create"), isKeyword("function", 1) || (isKeyword("or", 1) && isKeyword("replace", 2) && isKeyword("function", 3)) {
            return try createFunction()
        }
        if isKeyword("create"), isKeyword("volume", 1) || (isKeyword("external", 1) && isKeyword("volume", 2)) {
            at += 1
            let external = keyword("external")
            try expect("volume")
            let ifNotExists = try ifNot()
            let name = try qualifiedName()
            var comment: String?, location: String?
            while true {
                if keyword("comment") { comment = try quoted("COMMENT") }
                else if keyword("location") { location = try quoted("LOCATION") }
                else { break }
            }
            guard external == (location != nil) else { throw fail(external ? "CREATE EXTERNAL VOLUME needs LOCATION" : "LOCATION makes an EXTERNAL VOLUME") }
            return .grants(GrantStatement(action: .create, privileges: [], securableType: "volume", name: name, principal: nil, comment: comment,
                                          ifExists: ifNotExists, location: location))
        }
        if isKeyword("drop"), isKeyword("volume", 1) {
            at += 2
            var ifExists = false
            if keyword("if") { try expect("exists"); ifExists = true }
            return .grants(GrantStatement(action: .drop, privileges: [], securableType: "volume", name: try qualifiedName(), principal: nil,
                                          ifExists: ifExists))
        }
        if keyword("create") {
            if keyword("catalog") {
                let ifNotExists = try ifNot()
                let name = try identifier()
                var comment: String?
                if keyword("comment") { comment = try quoted("COMMENT") }
                return .createCatalog(name: name, ifNotExists: ifNotExists, comment: comment)
            }
            if keyword("schema") || keyword("database") {
                let ifNotExists = try ifNot()
                let name = try qualifiedName()
                guard name.count <= 2 else { throw fail("a schema name is [catalog.]schema") }
                var comment: String?, location: String?
                while true {
                    if keyword("comment") { comment = try quoted("COMMENT") }
                    else if keyword("location") { location = try quoted("LOCATION") }
                    else if keyword("managed") { try expect("location"); location = try quoted("MANAGED LOCATION") }
                    else { break }
                }
                return .createSchema(name: name, ifNotExists: ifNotExists, comment: comment, location: location)
            }
            return try createTable()
        }
        if keyword("use") {
            if keyword("catalog") { return .use(kind: .catalog, name: [try identifier()]) }
            _ = keyword("schema") || keyword("database")
            let name = try qualifiedName()
            guard name.count <= 2 else { throw fail("USE takes [catalog.]schema") }
            return .use(kind: .schema, name: name)
        }
        if keyword("insert") {
            let overwrite: Bool
            if keyword("overwrite") { overwrite = true } else { try expect("into"); overwrite = false }
            _ = keyword("table")
            let table = try qualifiedName()
            var columns: [String]?
            if peek.kind == .symbol, peek.text == "(", !(isKeyword("select", 1) || isKeyword("with", 1)) {
                at += 1
                var names: [String] = []
                repeat { names.append(try identifier()) } while symbol(",")
                try expectSymbol(")")
                columns = names
            }
            return .insert(table: table, overwrite: overwrite, columns: columns, source: try query())
        }
        if keyword("delete") {
            try expect("from")
            let table = try qualifiedName()
            let alias = isKeyword("where") ? nil : try alias()
            guard keyword("where") else { return .delete(table: table, alias: alias, condition: nil, text: nil) }
            let (condition, text) = try expressionWithText()
            return .delete(table: table, alias: alias, condition: condition, text: text)
        }
        if keyword("update") {
            let table = try qualifiedName()
            let alias = isKeyword("set") ? nil : try alias()
            try expect("set")
            let start = peek.offset
            let assignments = try assignmentList()
            let assignmentsText = String(Array(sql)[start..<peek.offset]).trimmingCharacters(in: .whitespacesAndNewlines)
            var condition: Expr?, conditionText: String?
            if keyword("where") { (condition, conditionText) = try expressionWithText() }
            return .update(table: table, alias: alias, assignments: assignments, condition: condition, assignmentsText: assignmentsText,
                           conditionText: conditionText)
        }
        if isKeyword("drop"), isKeyword("function", 1) {
            at += 2
            var ifExists = false
            if keyword("if") { try expect("exists"); ifExists = true }
            return .dropFunction(name: try qualifiedName(), ifExists: ifExists)
        }
        if keyword("drop") {
            let kind: NamespaceKind?
            if keyword("table") { kind = nil }
            else if keyword("schema") || keyword("database") { kind = .schema }
            else if keyword("catalog") { kind = .catalog }
            else { throw fail("expected TABLE, SCHEMA, CATALOG, VOLUME or FUNCTION after DROP") }
            var ifExists = false
            if keyword("if") { try expect("exists"); ifExists = true }
            let name = try qualifiedName()
            guard let kind else { return .dropTable(table: name, ifExists: ifExists) }
            let cascade = keyword("cascade")
            if !cascade { _ = keyword("restrict") }
            return .dropNamespace(kind: kind, name: name, ifExists: ifExists, cascade: cascade)
        }
        if isKeyword("grant") || isKeyword("revoke") || (isKeyword("show") && isKeyword("grants", 1)) { return try grantStatement() }
        if keyword("list") { return .list(path: try quoted("LIST")) }
        if keyword("show") {
            let what: String
            if keyword("tables") { what = "tables" } else if keyword("schemas") || keyword("databases") { what = "schemas" }
            else if keyword("catalogs") { what = "catalogs" } else if keyword("volumes") { what = "volumes" }
            else if keyword("functions") || (keyword("user") && keyword("functions")) { what = "functions" }
            else { throw fail("expected TABLES, SCHEMAS, CATALOGS, VOLUMES or [USER] FUNCTIONS after SHOW") }
            var scope: [String] = []
            if keyword("in") || keyword("from") { scope = try qualifiedName() }
            var like: String?
            if keyword("like") || peek.kind == .string { like = try quoted("LIKE") }
            return .show(what: what, in: scope, like: like)
        }
        if keyword("describe") || keyword("desc") {
            if keyword("schema") || keyword("database") {
                _ = keyword("extended")
                return .describeNamespace(kind: .schema, name: try qualifiedName())
            }
            if keyword("catalog") {
                _ = keyword("extended")
                return .describeNamespace(kind: .catalog, name: [try identifier()])
            }
            if keyword("detail") { return .describeDetail(table: try qualifiedName()) }
            if keyword("function") {
                let extended = keyword("extended")
                return .describeFunction(name: try qualifiedName(), extended: extended)
            }
            let history = keyword("history")
            if !history { _ = keyword("table") || keyword("extended") }
            return .describe(table: try qualifiedName(), history: history)
        }
        if keyword("optimize") {
            let table = try qualifiedName()
            var condition: String?
            if keyword("where") {
                let start = peek.offset
                while peek.kind != .end, !isKeyword("zorder") { at += 1 }
                condition = String(Array(sql)[start..<peek.offset]).trimmingCharacters(in: .whitespacesAndNewlines)
            }
            var columns: [String] = []
            if keyword("zorder") {
                try expect("by")
                let parenthesized = symbol("(")
                repeat { columns.append(try identifier()) } while symbol(",")
                if parenthesized { try expectSymbol(")") }
            }
            return .optimize(table: table, condition: condition, zOrderBy: columns)
        }
        if keyword("vacuum") {
            let table = try qualifiedName()
            var hours: Double?
            if keyword("retain") {
                guard peek.kind == .number, let h = Double(peek.text) else { throw fail("RETAIN needs a number of hours") }
                at += 1
                try expect("hours")
                hours = h
            }
            var dryRun = false
            if keyword("dry") { try expect("run"); dryRun = true }
            return .vacuum(table: table, hours: hours, dryRun: dryRun)
        }
        if keyword("restore") {
            _ = keyword("table")
            let table = try qualifiedName()
            try expect("to")
            if keyword("version") {
                try expect("as"); try expect("of")
                guard peek.kind == .number, let v = Int64(peek.text) else { throw fail("expected a version number") }
                at += 1
                return .restore(table: table, version: v, timestamp: nil)
            }
            try expect("timestamp"); try expect("as"); try expect("of")
            guard peek.kind == .string else { throw fail("expected a quoted timestamp") }
            at += 1
            return .restore(table: table, version: nil, timestamp: peek(-1).text)
        }
        if isKeyword("alter"), ["catalog", "schema", "database", "volume", "function", "model"].contains(where: { isKeyword($0, 1) }) {
            at += 1
            let type = try anyName().lowercased()
            let name = type == "catalog" ? [try identifier()] : try qualifiedName()
            try expect("owner")
            try expect("to")
            return .grants(GrantStatement(action: .setOwner, privileges: [], securableType: type == "database" ? "schema" : type, name: name,
                                          principal: try anyName()))
        }
        if keyword("comment") {
            try expect("on")
            var type = try anyName().lowercased()
            guard ["catalog", "schema", "database", "volume"].contains(type) else {
                throw fail("COMMENT ON takes CATALOG, SCHEMA or VOLUME (a table's comment is its COMMENT in CREATE TABLE)")
            }
            if type == "database" { type = "schema" }
            let name = type == "catalog" ? [try identifier()] : try qualifiedName()
            try expect("is")
            let text = keyword("null") ? "" : try quoted("COMMENT ON ... IS")
            return .grants(GrantStatement(action: .comment, privileges: [], securableType: type, name: name, principal: nil, comment: text))
        }
        if keyword("alter") {
            try expect("table")
            let table = try qualifiedName()
            if keyword("owner") {
                try expect("to")
                return .grants(GrantStatement(action: .setOwner, privileges: [], securableType: "table", name: table, principal: try anyName()))
            }
            var set: [String: String] = [:], unset: [String] = [], columns: [(String, FrameType)] = []
            if keyword("set") {
                try expect("tblproperties")
                set = try properties()
            } else if keyword("unset") {
                try expect("tblproperties")
                if keyword("if") { try expect("exists") }
                unset = Array(try properties(valued: false).keys)
            } else if keyword("add") {
                if keyword("constraint") {
                    let name = try identifier()
                    if isKeyword("primary") {
                        // Checked against the table's columns when it runs (Commands).
                        set[PrimaryKey.property] = try primaryKey(name).propertyValue
                        return .alter(table: table, set: set, unset: unset, addColumns: columns)
                    }
                    let isExpectation = keyword("expect")
                    if !isExpectation { try expect("check") }
                    let start = peek.offset
                    try expectSymbol("(")
                    var depth = 1
                    while depth > 0, peek.kind != .end {
                        if peek.kind == .symbol, peek.text == "(" { depth += 1 }
                        if peek.kind == .symbol, peek.text == ")" { depth -= 1 }
                        at += 1
                    }
                    let text = String(Array(sql)[(start + 1)..<max(start + 1, peek(-1).offset)]).trimmingCharacters(in: .whitespacesAndNewlines)
                    if isExpectation {
                        // EXPECT (expr) [ON VIOLATION DROP ROW | FAIL UPDATE]: warn-only without ON VIOLATION.
                        var action = Expectation.Action.warn
                        if keyword("on") {
                            try expect("violation")
                            if keyword("drop") { try expect("row"); action = .drop } else { try expect("fail"); try expect("update"); action = .fail }
                        }
                        let property = Expectation(name: name, expression: text, action: action).property
                        set[property.key] = property.value
                    } else {
                        set["delta.constraints.\(name.lowercased())"] = text
                    }
                } else {
                    guard keyword("columns") || keyword("column") else { throw fail("expected COLUMNS or CONSTRAINT after ADD") }
                    let parenthesized = symbol("(")
                    repeat { columns.append((try identifier(), try typeName())) } while symbol(",")
                    if parenthesized { try expectSymbol(")") }
                }
            } else if keyword("drop") {
                if keyword("primary") {
                    try expect("key")
                    if keyword("if") { try expect("exists") }
                    return .alter(table: table, set: [:], unset: [PrimaryKey.property], addColumns: [])
                }
                try expect("constraint")
                if keyword("if") { try expect("exists") }
                let name = try identifier().lowercased()
                unset = ["delta.constraints.\(name)", "kiln.expectations.\(name)"]
            } else {
                throw fail("expected SET TBLPROPERTIES, UNSET TBLPROPERTIES, ADD COLUMNS, ADD CONSTRAINT or DROP CONSTRAINT")
            }
            return .alter(table: table, set: set, unset: unset, addColumns: columns)
        }
        if keyword("copy") {
            try expect("into")
            let table = try qualifiedName()
            try expect("from")
            guard peek.kind == .string else { throw fail("COPY INTO needs FROM 'directory'") }
            let from = peek.text
            at += 1
            try expect("fileformat")
            _ = symbol("=")
            let format = try anyName().lowercased()
            // FORMAT_OPTIONS are CSV options; COPY_OPTIONS are accepted (schema merging and rescued data are always on).
            var options: [String: String] = [:]
            while true {
                if keyword("format_options") { options.merge(try properties()) { _, new in new } }
                else if keyword("copy_options") { _ = try properties() }
                else { break }
            }
            return .copyInto(table: table, from: from, format: format, options: options)
        }
        if keyword("merge") {
            try expect("into")
            let target = try qualifiedName()
            let alias = try alias()
            try expect("using")
            let source = try tablePrimary()
            try expect("on")
            let (condition, conditionText) = try expressionWithText()
            var clauses: [MergeStatement.Clause] = []
            while keyword("when") {
                let kind: MergeStatement.Kind
                if keyword("not") {
                    try expect("matched")
                    if keyword("by") {
                        if keyword("source") { kind = .notMatchedBySource } else { try expect("target"); kind = .notMatched }
                    } else { kind = .notMatched }
                } else {
                    try expect("matched")
                    kind = .matched
                }
                var clauseCondition: Expr?, clauseText: String?
                if keyword("and") { (clauseCondition, clauseText) = try expressionWithText() }
                try expect("then")
                let action: MergeStatement.Action
                if keyword("delete") {
                    guard kind != .notMatched else { throw fail("WHEN NOT MATCHED takes INSERT") }
                    action = .delete
                } else if keyword("update") {
                    guard kind != .notMatched else { throw fail("WHEN NOT MATCHED takes INSERT") }
                    try expect("set")
                    if symbol("*") {
                        guard kind == .matched else { throw fail("UPDATE SET * needs a source row: only WHEN MATCHED") }
                        action = .updateAll
                    } else {
                        action = .update(try assignmentList())
                    }
                } else if keyword("insert") {
                    guard kind == .notMatched else { throw fail("INSERT only in WHEN NOT MATCHED [BY TARGET]") }
                    if symbol("*") {
                        action = .insertAll
                    } else {
                        var columns: [String]?
                        if symbol("(") {
                            var names: [String] = []
                            repeat { names.append(try columnName()) } while symbol(",")
                            try expectSymbol(")")
                            columns = names
                        }
                        try expect("values")
                        try expectSymbol("(")
                        var values: [Expr] = []
                        repeat { values.append(try expression()) } while symbol(",")
                        try expectSymbol(")")
                        if let columns, columns.count != values.count {
                            throw fail("INSERT names \(columns.count) columns but gives \(values.count) values")
                        }
                        action = .insert(columns: columns, values: values)
                    }
                } else {
                    throw fail("expected UPDATE, DELETE or INSERT after THEN")
                }
                clauses.append(MergeStatement.Clause(kind: kind, condition: clauseCondition, conditionText: clauseText, action: action))
            }
            guard !clauses.isEmpty else { throw fail("MERGE needs at least one WHEN clause") }
            return .merge(MergeStatement(target: target, targetAlias: alias, source: source, condition: condition, clauses: clauses,
                                         conditionText: conditionText))
        }
        return .query(try query())
    }

    /// `( 'key' = 'value', ... )`; without values for UNSET.
    mutating func properties(valued: Bool = true) throws -> [String: String] {
        try expectSymbol("(")
        var out: [String: String] = [:]
        repeat {
            let key: String
            if peek.kind == .string { key = peek.text; at += 1 } else { key = try qualifiedName().joined(separator: ".") }
            var value = ""
            if valued {
                _ = symbol("=")
                guard [.string, .number, .identifier].contains(peek.kind) else { throw fail("expected a property value") }
                value = peek.text
                at += 1
            }
            out[key] = value
        } while symbol(",")
        try expectSymbol(")")
        return out
    }

    /// The rest of the statement's text (a trailing `;` dropped), consuming its tokens.
    mutating func rest() throws -> String {
        let start = peek.offset
        var end = start
        while peek.kind != .end {
            if peek.kind == .symbol, peek.text == ";", peek(1).kind == .end { break }
            at += 1
            end = peek.offset
        }
        let text = String(Array(sql)[start..<max(start, end)]).trimmingCharacters(in: .whitespacesAndNewlines)
        guard !text.isEmpty else { throw fail("expected a condition") }
        return text
    }

    mutating func qualifiedName() throws -> [String] {
        var parts = [try anyName()]
        while symbol(".") { parts.append(try anyName()) }
        return parts
    }

    /// An expression and its text as written.
    mutating func expressionWithText() throws -> (Expr, String) {
        let start = peek.offset
        let e = try expression()
        return (e, String(Array(sql)[start..<peek.offset]).trimmingCharacters(in: .whitespacesAndNewlines))
    }

    /// A column being assigned: `c` or `alias.c` (the alias dropped).
    mutating func columnName() throws -> String {
        var name = try identifier()
        while symbol(".") { name = try anyName() }
        return name
    }

    /// `column = expression, ...` of UPDATE SET.
    mutating func assignmentList() throws -> [(column: String, value: Expr)] {
        var out: [(column: String, value: Expr)] = []
        repeat {
            let column = try columnName()
            try expectSymbol("=")
            out.append((column, try expression()))
        } while symbol(",")
        return out
    }

    /// `IF NOT EXISTS`, when it is there.
    mutating func ifNot() throws -> Bool {
        guard keyword("if") else { return false }
        try expect("not")
        try expect("exists")
        return true
    }

    /// A quoted string after `what`.
    mutating func quoted(_ what: String) throws -> String {
        guard peek.kind == .string else { throw fail("\(what) needs a quoted string") }
        defer { at += 1 }
        return peek.text
    }

    /// `PRIMARY KEY (a, b, ts TIMESERIES)`, after its name.
    mutating func primaryKey(_ name: String) throws -> PrimaryKey {
        try expect("primary")
        try expect("key")
        try expectSymbol("(")
        var key = PrimaryKey(name: name, columns: [])
        repeat {
            let column = try identifier()
            key.columns.append(column)
            if keyword("timeseries") { key.timeseries.append(column) }
        } while symbol(",")
        try expectSymbol(")")
        return key
    }

    mutating func createTable() throws -> Statement {
        var c = CreateTable(table: [])
        if keyword("or") { try expect("replace"); c.orReplace = true }
        try expect("table")
        if keyword("if") { try expect("not"); try expect("exists"); c.ifNotExists = true }
        c.table = try qualifiedName()
        if symbol("(") {
            repeat {
                if isKeyword("constraint") || isKeyword("primary") {
                    var name = "\(c.table.last ?? "table")_pk"
                    if keyword("constraint") { name = try identifier() }
                    guard c.primaryKey == nil else { throw fail("a table has one PRIMARY KEY") }
                    c.primaryKey = try primaryKey(name)
                    continue
                }
                let name = try identifier()
                let type = try typeName()
                var nullable = true
                if keyword("not") { try expect("null"); nullable = false }
                if keyword("comment") { at += 1 }
                c.columns.append((name, type, nullable))
            } while symbol(",")
            try expectSymbol(")")
        }
        while true {
            if keyword("using") { let format = try anyName(); guard format.lowercased() == "delta" else { throw fail("Kiln tables are USING DELTA") } }
            else if keyword("partitioned") {
                try expect("by")
                try expectSymbol("(")
                repeat { c.partitionedBy.append(try identifier()) } while symbol(",")
                try expectSymbol(")")
            } else if keyword("comment") {
                guard peek.kind == .string else { throw fail("COMMENT needs a quoted string") }
                c.comment = peek.text
                at += 1
            } else if keyword("tblproperties") {
                c.properties = try properties()
            } else if keyword("location") {
                c.location = try quoted("LOCATION")
            } else { break }
        }
        if keyword("as") { c.query = try query() }
        guard !c.columns.isEmpty || c.query != nil || c.location != nil else { throw fail("CREATE TABLE needs columns, AS SELECT or LOCATION") }
        return .createTable(c)
    }

    // MARK: Queries

    mutating func query() throws -> Query {
        var ctes: [(String, Query)] = []
        if keyword("with") {
            repeat {
                let name = try identifier()
                try expect("as")
                try expectSymbol("(")
                ctes.append((name, try query()))
                try expectSymbol(")")
            } while symbol(",")
        }
        var q = Query(ctes: ctes, body: try setExpr())
        if keyword("order") {
            try expect("by")
            q.orderBy = try orderItems()
        }
        if keyword("limit") {
            if keyword("all") { q.limit = nil } else { q.limit = try count("LIMIT") }
        }
        if keyword("offset") { q.offset = try count("OFFSET") }
        return q
    }

    mutating func count(_ clause: String) throws -> Int {
        guard peek.kind == .number, let n = Int(peek.text), n >= 0 else { throw fail("\(clause) needs a non-negative integer") }
        at += 1
        return n
    }

    mutating func orderItems() throws -> [OrderItem] {
        var items: [OrderItem] = []
        repeat {
            let e = try expression()
            var descending = false
            if keyword("desc") { descending = true } else { _ = keyword("asc") }
            var nullsFirst: Bool?
            if keyword("nulls") {
                if keyword("first") { nullsFirst = true } else { try expect("last"); nullsFirst = false }
            }
            items.append(OrderItem(expr: e, descending: descending, nullsFirst: nullsFirst))
        } while symbol(",")
        return items
    }

    mutating func setExpr() throws -> SetExpr {
        var left = try setTerm()
        while true {
            let op: String
            if keyword("union") { op = "union" } else if keyword("except") || keyword("minus") { op = "except" } else { break }
            let all = keyword("all")
            if !all { _ = keyword("distinct") }
            left = .setOperation(op, left, try setTerm(), all: all)
        }
        return left
    }

    mutating func setTerm() throws -> SetExpr {
        var left = try setPrimary()
        while keyword("intersect") {
            let all = keyword("all")
            if !all { _ = keyword("distinct") }
            left = .setOperation("intersect", left, try setPrimary(), all: all)
        }
        return left
    }

    mutating func setPrimary() throws -> SetExpr {
        if keyword("values") {
            var rows: [[Expr]] = []
            repeat {
                try expectSymbol("(")
                var row: [Expr] = []
                repeat { row.append(try expression()) } while symbol(",")
                try expectSymbol(")")
                rows.append(row)
            } while symbol(",")
            guard rows.allSatisfy({ $0.count == rows[0].count }) else { throw fail("every VALUES row needs the same number of values") }
            return .values(rows)
        }
        if peek.kind == .symbol, peek.text == "(" {
            at += 1
            let q = try query()
            try expectSymbol(")")
            return .query(q)
        }
        return .select(try select())
    }

    mutating func select() throws -> Select {
        try expect("select")
        var s = Select()
        if keyword("distinct") { s.distinct = true } else { _ = keyword("all") }
        repeat {
            if symbol("*") {
                s.items.append(.star(qualifier: nil))
            } else if (peek.kind == .identifier || peek.kind == .quoted), peek(1).text == ".", peek(2).text == "*", peek(2).kind == .symbol {
                let q = try anyName()
                at += 2
                s.items.append(.star(qualifier: q))
            } else {
                let e = try expression()
                var alias: String?
                if keyword("as") { alias = try anyName() } else if peek.kind == .quoted || (peek.kind == .identifier && !Self.reserved.contains(peek.text.lowercased())) {
                    alias = try identifier()
                }
                s.items.append(.expr(e, alias: alias))
            }
        } while symbol(",")
        if keyword("from") {
            repeat { s.from.append(try fromItem()) } while symbol(",")
        }
        if keyword("where") { s.whereClause = try expression() }
        if keyword("group") {
            try expect("by")
            repeat { s.groupBy.append(try expression()) } while symbol(",")
        }
        if keyword("having") { s.having = try expression() }
        return s
    }

    mutating func fromItem() throws -> FromItem {
        var left = try tablePrimary()
        while true {
            var kind: JoinKind?
            if keyword("cross") { try expect("join"); kind = .cross }
            else if keyword("join") { kind = .inner }
            else if keyword("inner") { try expect("join"); kind = .inner }
            else if keyword("left") {
                if keyword("semi") { kind = .semi } else if keyword("anti") { kind = .anti } else { _ = keyword("outer"); kind = .left }
                try expect("join")
            } else if keyword("right") { _ = keyword("outer"); try expect("join"); kind = .right }
            else if keyword("full") { _ = keyword("outer"); try expect("join"); kind = .full }
            else if keyword("semi") { try expect("join"); kind = .semi }
            else if keyword("anti") { try expect("join"); kind = .anti }
            else if keyword("asof") { kind = keyword("left") ? .asofLeft : .asof; try expect("join") }
            guard let kind else { break }
            let right = try tablePrimary()
            var on: Expr?
            var using: [String] = []
            if kind != .cross {
                if keyword("on") { on = try expression() }
                else if keyword("using") {
                    try expectSymbol("(")
                    repeat { using.append(try identifier()) } while symbol(",")
                    try expectSymbol(")")
                } else { throw fail("a JOIN needs ON or USING") }
            }
            left = .join(left, right, kind: kind, on: on, using: using)
        }
        return left
    }

    mutating func alias() throws -> String? {
        if keyword("as") { return try identifier() }
        if peek.kind == .quoted || (peek.kind == .identifier && !Self.reserved.contains(peek.text.lowercased())) { return try identifier() }
        return nil
    }

    mutating func tablePrimary() throws -> FromItem {
        if isKeyword("values") { return try valuesItem(try setPrimary()) }
        if peek.kind == .symbol, peek.text == "(", isKeyword("values", 1) {
            at += 1
            let rows = try setPrimary()
            try expectSymbol(")")
            return try valuesItem(rows)
        }
        return try namedTablePrimary()
    }

    /// `q` with its output columns named `names`: a SELECT over it that renames each output (an output that has no
    /// name of its own is given the new one in `q`).
    mutating func renamed(_ q: Query, _ names: [String]) throws -> Query {
        guard case .select(var inner) = q.body, inner.items.count == names.count else {
            throw fail("column names after a subquery's alias need a SELECT of as many columns (\(names.count))")
        }
        var outer = Select()
        for (i, item) in inner.items.enumerated() {
            guard case .expr(let e, let alias) = item else {
                throw fail("column names after a subquery's alias need a SELECT without *")
            }
            var old = alias
            if old == nil, case .column(let c) = e { old = String(c.split(separator: ".").last ?? Substring(c)) }
            if old == nil || names.count != Set(names.map { $0.lowercased() }).count {
                inner.items[i] = .expr(e, alias: names[i])
                old = names[i]
            }
            outer.items.append(.expr(.column(old!), alias: names[i]))
        }
        var innerQuery = q
        innerQuery.body = .select(inner)
        outer.from = [.subquery(innerQuery, alias: "renamed")]
        return Query(body: .select(outer))
    }

    /// VALUES rows as a FROM item: `[AS] t[(a, b)]` names it and may rename its columns.
    mutating func valuesItem(_ rows: SetExpr) throws -> FromItem {
        do {
            let name = try alias() ?? "values"
            var names: [String] = []
            if symbol("(") {
                repeat { names.append(try identifier()) } while symbol(",")
                try expectSymbol(")")
            }
            let inner = Query(body: rows)
            guard !names.isEmpty else { return .subquery(inner, alias: name) }
            var select = Select()
            select.items = names.enumerated().map { .expr(.column("col\($0.offset + 1)"), alias: $0.element) }
            select.from = [.subquery(inner, alias: "values")]
            return .subquery(Query(body: .select(select)), alias: name)
        }
    }

    mutating func namedTablePrimary() throws -> FromItem {
        if symbol("(") {
            if isKeyword("select") || isKeyword("with") || (peek.kind == .symbol && peek.text == "(") {
                let q = try query()
                try expectSymbol(")")
                let name = try alias() ?? "subquery\(at)"
                // `(SELECT ...) AS t (a, b)` renames the subquery's columns.
                guard peek.kind == .symbol, peek.text == "(" else { return .subquery(q, alias: name) }
                at += 1
                var names: [String] = []
                repeat { names.append(try identifier()) } while symbol(",")
                try expectSymbol(")")
                return .subquery(try renamed(q, names), alias: name)
            }
            let item = try fromItem()
            try expectSymbol(")")
            return item
        }
        var parts = [try anyName()]
        while symbol(".") { parts.append(try anyName()) }
        if parts.count == 1, symbol("(") {
            var args: [Expr] = []
            var named: [String: Expr] = [:]
            if !symbol(")") {
                repeat {
                    if (peek.kind == .identifier), peek(1).text == "=>" {
                        let key = try anyName().lowercased()
                        at += 1
                        named[key] = try expression()
                    } else {
                        args.append(try expression())
                    }
                } while symbol(",")
                try expectSymbol(")")
            }
            return .function(name: parts[0].lowercased(), args: args, named: named, alias: try alias())
        }
        // Time travel: VERSION AS OF n, TIMESTAMP AS OF 'ts', or t@v3.
        var version: Int64?, timestamp: String?
        if symbol("@") {
            let t = try anyName()
            guard t.lowercased().hasPrefix("v"), let v = Int64(t.dropFirst()) else { throw fail("expected @v<version>") }
            version = v
        }
        if isKeyword("version"), isKeyword("as", 1) {
            at += 2
            try expect("of")
            guard peek.kind == .number, let v = Int64(peek.text) else { throw fail("VERSION AS OF needs a version number") }
            at += 1
            version = v
        } else if isKeyword("timestamp"), isKeyword("as", 1) {
            at += 2
            try expect("of")
            guard peek.kind == .string else { throw fail("TIMESTAMP AS OF needs a quoted timestamp") }
            timestamp = peek.text
            at += 1
        }
        return .table(parts: parts, alias: try alias(), version: version, timestamp: timestamp)
    }

    // MARK: Expressions

    public mutating func expression() throws -> Expr { try or() }

    mutating func or() throws -> Expr {
        var left = try and()
        while keyword("or") { left = .binary("OR", left, try and()) }
        return left
    }

    mutating func and() throws -> Expr {
        var left = try not()
        while keyword("and") { left = .binary("AND", left, try not()) }
        return left
    }

    mutating func not() throws -> Expr {
        if keyword("not") { return .not(try not()) }
        return try predicate()
    }

    mutating func predicate() throws -> Expr {
        let left = try additive()
        if keyword("is") {
            let negated = keyword("not")
            if keyword("null") { return .isNull(left, negated: negated) }
            if keyword("true") { return negated ? .call("coalesce", [.not(left), .literal(.bool(true))]) : .call("coalesce", [left, .literal(.bool(false))]) }
            if keyword("false") { return negated ? .call("coalesce", [left, .literal(.bool(true))]) : .call("coalesce", [.not(left), .literal(.bool(false))]) }
            if keyword("distinct") {
                try expect("from")
                let right = try additive()
                let same = Expr.binary("<=>", left, right)
                return negated ? same : .not(same)
            }
            throw fail("expected NULL, TRUE, FALSE or DISTINCT FROM after IS")
        }
        let negated = keyword("not")
        if keyword("in") {
            try expectSymbol("(")
            if isKeyword("select") || isKeyword("with") {
                let q = try query()
                try expectSymbol(")")
                subqueries.append(q)
                return .call("__in_subquery", [left, .literal(.int(Int64(subqueries.count - 1))), .literal(.bool(negated))])
            }
            var items: [Expr] = []
            repeat { items.append(try expression()) } while symbol(",")
            try expectSymbol(")")
            return .inList(left, items, negated: negated)
        }
        if keyword("between") {
            let low = try additive()
            try expect("and")
            let high = try additive()
            let inside = Expr.binary("AND", .binary(">=", left, low), .binary("<=", left, high))
            return negated ? .not(inside) : inside
        }
        if keyword("like") { return .like(left, pattern: try additive(), negated: negated) }
        if keyword("ilike") { return .like(.call("lower", [left]), pattern: .call("lower", [try additive()]).folded, negated: negated) }
        if negated { throw fail("expected IN, BETWEEN or LIKE after NOT") }
        if peek.kind == .symbol, ["=", "==", "!=", "<>", "<", "<=", ">", ">=", "<=>"].contains(peek.text) {
            let op = peek.text
            at += 1
            return .binary(op, left, try additive())
        }
        return left
    }

    mutating func additive() throws -> Expr {
        var left = try multiplicative()
        while peek.kind == .symbol, ["+", "-", "||"].contains(peek.text) {
            let op = peek.text
            at += 1
            let right = try multiplicative()
            left = Self.exactLiteral(op, left, right) ?? .binary(op, left, right)
        }
        return left
    }

    /// `0.06 - 0.01` folded as decimals (Spark types such literals DECIMAL, so the result is exactly 0.05, not the
    /// double 0.049999…): `+`, `-` and `*` of two numeric literals with a fractional part, else nil.
    static func exactLiteral(_ op: String, _ a: Expr, _ b: Expr) -> Expr? {
        guard ["+", "-", "*"].contains(op), case .literal(let x) = a, case .literal(let y) = b else { return nil }
        func decimal(_ v: Value) -> Decimal? {
            switch v {
            case .int(let n): return Decimal(n)
            case .double(let d) where d.isFinite: return Decimal(string: "\(d)")
            default: return nil
            }
        }
        switch (x, y) {
        case (.double, .double), (.double, .int), (.int, .double): return fold(op, decimal(x), decimal(y))
        default: return nil  // integer arithmetic stays integer
        }
    }

    private static func fold(_ op: String, _ x: Decimal?, _ y: Decimal?) -> Expr? {
        guard let x, let y else { return nil }
        let r = op == "+" ? x + y : op == "-" ? x - y : x * y
        guard let d = Double("\(r)"), d.isFinite else { return nil }
        return .literal(.double(d))
    }

    mutating func multiplicative() throws -> Expr {
        var left = try unary()
        while (peek.kind == .symbol && ["*", "/", "%"].contains(peek.text)) || isKeyword("div") {
            let op = peek.kind == .symbol ? peek.text : "DIV"
            at += 1
            let right = try unary()
            left = Self.exactLiteral(op, left, right) ?? .binary(op, left, right)
        }
        return left
    }

    mutating func unary() throws -> Expr {
        if symbol("-") {
            let e = try unary()
            if case .literal(.int(let n)) = e { return .literal(.int(-n)) }
            if case .literal(.double(let d)) = e { return .literal(.double(-d)) }
            return .negate(e)
        }
        if symbol("+") { return try unary() }
        var e = try primary()
        while symbol("::") { e = .cast(e, try typeName()) }
        return e
    }

    mutating func primary() throws -> Expr {
        let t = peek
        switch t.kind {
        case .number:
            at += 1
            if let n = Int64(t.text) { return .literal(.int(n)) }
            guard let d = Double(t.text) else { throw fail("bad number") }
            return .literal(.double(d))
        case .string:
            at += 1
            return .literal(.string(t.text))
        case .parameter:
            at += 1
            return .call("__parameter", [.literal(.string(t.text))])
        case .symbol:
            guard t.text == "(" else { throw fail("unexpected '\(t.text)'") }
            at += 1
            if isKeyword("select") || isKeyword("with") {
                let q = try query()
                try expectSymbol(")")
                subqueries.append(q)
                return .call("__scalar_subquery", [.literal(.int(Int64(subqueries.count - 1)))])
            }
            let e = try expression()
            try expectSymbol(")")
            return e
        case .end: throw fail("unexpected end of the statement")
        case .identifier, .quoted: break
        }
        let word = t.text.lowercased()
        if t.kind == .identifier {
            switch word {
            case "null": at += 1; return .literal(.null)
            case "true": at += 1; return .literal(.bool(true))
            case "false": at += 1; return .literal(.bool(false))
            case "date" where peek(1).kind == .string:
                at += 2
                guard let d = Dates.parseDate(peek(-1).text) else { throw fail("bad DATE literal '\(peek(-1).text)'") }
                return .literal(.date(d))
            case "timestamp" where peek(1).kind == .string:
                at += 2
                guard let ts = Dates.parseTimestamp(peek(-1).text) else { throw fail("bad TIMESTAMP literal '\(peek(-1).text)'") }
                return .literal(.timestamp(ts))
            case "interval":
                at += 1
                var amount: Int64
                if peek.kind == .string { guard let n = Int64(peek.text.trimmingCharacters(in: .whitespaces)) else { throw fail("bad INTERVAL amount") }; amount = n; at += 1 }
                else if peek.kind == .number, let n = Int64(peek.text) { amount = n; at += 1 }
                else if symbol("-"), peek.kind == .number, let n = Int64(peek.text) { amount = -n; at += 1 }
                else { throw fail("INTERVAL needs an amount") }
                let unit = try anyName().lowercased()
                return .interval(amount, unit: unit)
            case "case":
                at += 1
                var subject: Expr?
                if !isKeyword("when") { subject = try expression() }
                var branches: [Expr.CaseBranch] = []
                while keyword("when") {
                    var condition = try expression()
                    if let subject { condition = .binary("=", subject, condition) }
                    try expect("then")
                    branches.append(Expr.CaseBranch(when: condition, then: try expression()))
                }
                guard !branches.isEmpty else { throw fail("CASE needs WHEN") }
                var otherwise: Expr?
                if keyword("else") { otherwise = try expression() }
                try expect("end")
                return .caseWhen(branches, otherwise: otherwise)
            case "cast", "try_cast":
                at += 1
                try expectSymbol("(")
                let e = try expression()
                try expect("as")
                let type = try typeName()
                try expectSymbol(")")
                return .cast(e, type)
            case "exists":
                at += 1
                try expectSymbol("(")
                let q = try query()
                try expectSymbol(")")
                subqueries.append(q)
                return .call("__exists_subquery", [.literal(.int(Int64(subqueries.count - 1)))])
            case "substring", "substr" where peek(1).kind == .symbol && peek(1).text == "(":
                // `substring(s FROM start [FOR length])`, the standard's spelling; the comma form falls through.
                var look = at + 2, depth = 0
                var standard = false
                while look < tokens.count {
                    let t = tokens[look]
                    if t.kind == .symbol, t.text == "(" { depth += 1 } else if t.kind == .symbol, t.text == ")" {
                        if depth == 0 { break }
                        depth -= 1
                    } else if depth == 0, t.kind == .symbol, t.text == "," { break }
                    else if depth == 0, t.kind == .identifier, t.text.lowercased() == "from" { standard = true; break }
                    look += 1
                }
                guard standard else { break }
                at += 2
                let e = try expression()
                try expect("from")
                var args = [e, try expression()]
                if keyword("for") { args.append(try expression()) }
                try expectSymbol(")")
                return .call("substring", args)
            case "extract":
                at += 1
                try expectSymbol("(")
                let field = try anyName().lowercased()
                try expect("from")
                let e = try expression()
                try expectSymbol(")")
                return .call(field, [e])
            default: break
            }
        }
        // A function call, or a column (possibly qualified).
        let name = try anyName()
        // `schema.f(...)` or `catalog.schema.f(...)`: a user function.
        if peek.kind == .symbol, peek.text == ".", peek(1).kind == .identifier || peek(1).kind == .quoted,
           peek(2).kind == .symbol, peek(2).text == "(" || (peek(2).text == "." && peek(4).kind == .symbol && peek(4).text == "(") {
            var parts = [name]
            while symbol(".") { parts.append(try anyName()) }
            try expectSymbol("(")
            return try userCall(parts)
        }
        if peek.kind == .symbol, peek.text == "(", let functions, !Self.isBuiltinFunction(name), try functions([name]) != nil {
            at += 1
            return try userCall([name])
        }
        if symbol("(") {
            let lower = name.lowercased()
            if symbol("*") {
                try expectSymbol(")")
                guard lower == "count" else { throw fail("only COUNT takes *") }
                return try over(.call("count", []))
            }
            var args: [Expr] = []
            var distinct = false
            if !symbol(")") {
                distinct = keyword("distinct")
                if !distinct { _ = keyword("all") }
                repeat { args.append(try expression()) } while symbol(",")
                try expectSymbol(")")
            }
            if distinct {
                guard ["count", "sum", "avg"].contains(lower) else { throw fail("DISTINCT works in COUNT, SUM and AVG") }
                return try over(.call(lower + "_distinct", args))
            }
            return try over(.call(lower, args))
        }
        var parts = [name]
        while peek.kind == .symbol, peek.text == ".", peek(1).kind == .identifier || peek(1).kind == .quoted {
            at += 1
            parts.append(try anyName())
        }
        if parts.count == 1, t.kind == .identifier, Self.reserved.contains(word) { throw fail("unexpected keyword \(t.text.uppercased())") }
        return .column(parts.joined(separator: "."))
    }

    /// `CREATE [OR REPLACE] FUNCTION [IF NOT EXISTS] name([param TYPE [COMMENT '..'], ...]) RETURNS TYPE
    /// [COMMENT '..'] [LANGUAGE SQL] [[NOT] DETERMINISTIC] [CONTAINS SQL | READS SQL DATA] RETURN expression`.
    mutating func createFunction() throws -> Statement {
        try expect("create")
        let orReplace = keyword("or")
        if orReplace { try expect("replace") }
        try expect("function")
        let ifNotExists = try ifNot()
        let name = try qualifiedName()
        try expectSymbol("(")
        var parameters: [SQLFunction.Parameter] = []
        if !symbol(")") {
            repeat {
                let p = try identifier()
                let start = peek.offset
                _ = try typeName()
                var parameter = SQLFunction.Parameter(name: p, typeText: String(Array(sql)[start..<peek.offset]).trimmingCharacters(in: .whitespaces))
                if keyword("comment") { parameter.comment = try quoted("COMMENT") }
                parameters.append(parameter)
            } while symbol(",")
            try expectSymbol(")")
        }
        try expect("returns")
        let start = peek.offset
        _ = try typeName()
        let returns = String(Array(sql)[start..<peek.offset]).trimmingCharacters(in: .whitespaces)
        var comment: String?
        var language = SQLFunction.Language.sql
        while !isKeyword("return"), !isKeyword("as") {
            if keyword("comment") { comment = try quoted("COMMENT") }
            else if keyword("language") {
                if keyword("python") { language = .python }
                else { guard keyword("sql") else { throw fail("functions are LANGUAGE SQL or LANGUAGE PYTHON") } }
            }
            else if keyword("not") { try expect("deterministic") }
            else if keyword("deterministic") {}
            else if keyword("contains") { try expect("sql") }
            else if keyword("reads") { try expect("sql"); try expect("data") }
            else { throw fail(language == .python ? "expected AS $$ and the function's Python body $$" : "expected RETURN and the function's body") }
        }
        if language == .python {
            guard keyword("as") else { throw fail("a LANGUAGE PYTHON function's body comes after AS, between $$ and $$") }
            let source = try quoted("the Python body")
            _ = symbol(";")
            guard peek.kind == .end else { throw fail("unexpected '\(peek.text)' after the function's body") }
            return .createFunction(name: name, orReplace: orReplace, ifNotExists: ifNotExists, parameters: parameters, returns: returns, body: source,
                                   comment: comment, language: .python)
        }
        guard !isKeyword("as") else { throw fail("a SQL function's body comes after RETURN (AS $$ ... $$ is for LANGUAGE PYTHON)") }
        try expect("return")
        let bodyStart = peek.offset
        _ = try expression()
        var end = peek.offset
        if peek.kind == .end { end = sql.count }
        let body = String(Array(sql)[bodyStart..<end]).trimmingCharacters(in: .whitespacesAndNewlines.union(CharacterSet(charactersIn: ";")))
        return .createFunction(name: name, orReplace: orReplace, ifNotExists: ifNotExists, parameters: parameters, returns: returns, body: body,
                               comment: comment, language: .sql)
    }

    /// A user function's call (after its `(`): its body with the arguments in place.
    mutating func userCall(_ parts: [String]) throws -> Expr {
        var args: [Expr] = []
        if !symbol(")") {
            repeat { args.append(try expression()) } while symbol(",")
            try expectSymbol(")")
        }
        guard let functions, let function = try functions(parts) else {
            throw KilnError.notFound("[UNRESOLVED_ROUTINE] Cannot resolve function `\(parts.joined(separator: "."))`; create it with CREATE FUNCTION, or check the name")
        }
        if depth == 0 { calledFunctions.insert(function.fullName.lowercased()) }
        return try function.inline(args, resolve: functions, depth: depth)
    }

    /// `fn(...) OVER ([PARTITION BY ...] [ORDER BY ...] [ROWS BETWEEN ... AND ...])` makes a window function.
    mutating func over(_ call: Expr) throws -> Expr {
        guard keyword("over") else { return call }
        guard case .call(let name, let args) = call else { throw fail("expected a function before OVER") }
        guard Window.functions.contains(name) else { throw fail("\(name.uppercased()) cannot be a window function") }
        try expectSymbol("(")
        var partitionBy: [Expr] = [], orderBy: [Window.Order] = []
        var rows: (start: Int?, end: Int?)?
        if keyword("partition") {
            try expect("by")
            repeat { partitionBy.append(try expression()) } while symbol(",")
        }
        if keyword("order") {
            try expect("by")
            orderBy = try orderItems().map { Window.Order(expr: $0.expr, descending: $0.descending, nullsFirst: $0.nullsFirst) }
        }
        if keyword("rows") {
            func bound() throws -> Int? {
                if keyword("unbounded") {
                    if keyword("preceding") || keyword("following") { return nil }
                    throw fail("expected PRECEDING or FOLLOWING")
                }
                if keyword("current") { try expect("row"); return 0 }
                guard peek.kind == .number, let n = Int(peek.text) else { throw fail("expected a row count") }
                at += 1
                if keyword("preceding") { return -n }
                try expect("following")
                return n
            }
            if keyword("between") {
                let start = try bound()
                try expect("and")
                rows = (start, try bound())
            } else {
                rows = (try bound(), 0)
            }
        } else if keyword("range") {
            throw fail("RANGE frames other than the default are not supported yet; use ROWS BETWEEN")
        }
        try expectSymbol(")")
        return .window(Window(function: name, args: args, partitionBy: partitionBy, orderBy: orderBy, rows: rows))
    }

    mutating func typeName() throws -> FrameType {
        let name = try anyName().lowercased()
        if ["array", "map", "struct"].contains(name), symbol("<") {
            var type: FrameType
            switch name {
            case "array": type = .array(try typeName())
            case "map":
                let key = try typeName()
                try expectSymbol(",")
                type = .map(key, try typeName())
            default:
                var fields: [FrameField] = []
                repeat {
                    let field = try anyName()
                    _ = symbol(":")
                    fields.append(FrameField(name: field, type: try typeName()))
                } while symbol(",")
                type = .structure(fields)
            }
            try expectSymbol(">")
            return type
        }
        var args: [Int] = []
        if symbol("(") {
            repeat {
                guard peek.kind == .number, let n = Int(peek.text) else { throw fail("expected a number") }
                args.append(n)
                at += 1
            } while symbol(",")
            try expectSymbol(")")
        }
        switch name {
        case "bigint", "long": return .int64
        case "int", "integer": return .int32
        case "smallint", "short": return .int16
        case "tinyint", "byte": return .int8
        case "double": return .float64
        case "float", "real": return .float32
        case "string", "varchar", "char", "text": return .string
        case "boolean", "bool": return .bool
        case "date": return .date
        case "timestamp", "timestamp_ntz", "timestamp_ltz": return .timestamp
        case "binary": return .binary
        case "decimal", "numeric", "dec": return .decimal(precision: args.first ?? 10, scale: args.count > 1 ? args[1] : 0)
        default: throw fail("unknown type \(name.uppercased())")
        }
    }
}

extension Expr {
    /// Lower-cases a literal pattern at parse time (for ILIKE).
    var folded: Expr {
        if case .call("lower", let args) = self, case .literal(.string(let s))? = args.first { return .literal(.string(s.lowercased())) }
        return self
    }
}

/// One statement as parsed (user functions inlined): what the engine runs and what authorization reads, so a statement
/// is parsed once.
public struct ParsedStatement: Sendable {
    public var statement: Statement
    /// Uncorrelated subqueries used as expressions, by id.
    public var subqueries: [Query]
    /// The user functions called, as `catalog.schema.name`.
    public var functions: Set<String>
}

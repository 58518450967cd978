import Foundation
import KilnCore
import KilnFrame
import KilnLake

/// A parsed statement.
public indirect enum Statement: Sendable {
    case query(Query)
    /// EXPLAIN [ANALYZE] query: the steps it would run (or ran, with rows and times).
    case explain(Query, analyze: Bool)
    /// CREATE [OR REPLACE] TABLE [IF NOT EXISTS] name [(columns)] [USING DELTA] [PARTITIONED BY (..)] [COMMENT '..']
    /// [TBLPROPERTIES (..)] [AS query].
    case createTable(CreateTable)
    /// INSERT INTO|OVERWRITE [TABLE] name [(columns)] query-or-VALUES.
    case insert(table: [String], overwrite: Bool, columns: [String]?, source: Query)
    /// DELETE FROM name [[AS] alias] [WHERE condition]; the text is kept for tables with nested columns, which the Delta
    /// engine's own predicate language handles.
    case delete(table: [String], alias: String?, condition: Expr?, text: String?)
    /// UPDATE name [[AS] alias] SET column = expression, ... [WHERE condition].
    case update(table: [String], alias: String?, assignments: [(column: String, value: Expr)], condition: Expr?, assignmentsText: String,
                conditionText: String?)
    case dropTable(table: [String], ifExists: Bool)
    /// SHOW TABLES|SCHEMAS|DATABASES|CATALOGS|VOLUMES [IN|FROM name] [[LIKE] 'pattern'].
    case show(what: String, in: [String], like: String?)
    case describe(table: [String], history: Bool)
    /// DESCRIBE DETAIL name: one row of the table's format, id, location, times, partitioning, size and properties.
    case describeDetail(table: [String])
    /// CREATE CATALOG [IF NOT EXISTS] name [COMMENT '..'].
    case createCatalog(name: String, ifNotExists: Bool, comment: String?)
    /// CREATE SCHEMA|DATABASE [IF NOT EXISTS] [catalog.]name [COMMENT '..'] [LOCATION '..'].
    case createSchema(name: [String], ifNotExists: Bool, comment: String?, location: String?)
    /// DROP SCHEMA|DATABASE|CATALOG [IF EXISTS] name [CASCADE|RESTRICT].
    case dropNamespace(kind: NamespaceKind, name: [String], ifExists: Bool, cascade: Bool)
    /// USE CATALOG name, or USE [SCHEMA|DATABASE] [catalog.]name.
    case use(kind: NamespaceKind, name: [String])
    /// DESCRIBE SCHEMA|DATABASE|CATALOG [EXTENDED] name.
    case describeNamespace(kind: NamespaceKind, name: [String])
    /// DESCRIBE FUNCTION [EXTENDED] name: one `function_desc` column, as Databricks answers it.
    case describeFunction(name: [String], extended: Bool)
    /// OPTIMIZE name [WHERE partition-condition] [ZORDER BY (cols)].
    case optimize(table: [String], condition: String?, zOrderBy: [String])
    /// VACUUM name [RETAIN n HOURS] [DRY RUN].
    case vacuum(table: [String], hours: Double?, dryRun: Bool)
    /// RESTORE [TABLE] name TO VERSION|TIMESTAMP AS OF ...
    case restore(table: [String], version: Int64?, timestamp: String?)
    /// ALTER TABLE name SET|UNSET TBLPROPERTIES, ADD COLUMNS, ADD|DROP CONSTRAINT.
    case alter(table: [String], set: [String: String], unset: [String], addColumns: [(name: String, type: FrameType)])
    /// MERGE INTO target [[AS] alias] USING table-or-subquery ON condition, then WHEN clauses in order.
    case merge(MergeStatement)
    /// COPY INTO name FROM 'directory' FILEFORMAT = CSV|JSON|PARQUET [FORMAT_OPTIONS (...)] [COPY_OPTIONS (...)].
    case copyInto(table: [String], from: String, format: String, options: [String: String])
    /// GRANT, REVOKE and SHOW GRANTS: run by the catalog that keeps grants, not by the engine.
    case grants(GrantStatement)
    /// LIST '/Volumes/catalog/schema/volume[/dir]': the files of a volume's folder.
    case list(path: String)
    /// CREATE [OR REPLACE] FUNCTION [IF NOT EXISTS] name(params) RETURNS type [COMMENT '..'] RETURN expression, or
    /// ... LANGUAGE PYTHON AS $$ body $$.
    case createFunction(name: [String], orReplace: Bool, ifNotExists: Bool, parameters: [SQLFunction.Parameter], returns: String, body: String,
                        comment: String?, language: SQLFunction.Language)
    /// DROP FUNCTION [IF EXISTS] name.
    case dropFunction(name: [String], ifExists: Bool)
}

/// `GRANT privileges ON type name TO principal`, `REVOKE ... FROM principal`, `SHOW GRANTS [principal] ON type name`,
/// `ALTER type name OWNER TO principal` and `COMMENT ON type name IS 'text'|NULL`: the statements the catalog runs.
public struct GrantStatement: Sendable, Equatable {
    /// `create` and `drop` are CREATE/DROP VOLUME (volumes are the catalog's, not the engine's).
    public enum Action: Sendable, Equatable { case grant, revoke, show, setOwner, comment, create, drop }
    public var action: Action
    /// As written (`USE CATALOG`, `SELECT`).
    public var privileges: [String]
    /// `metastore`, `catalog`, `schema` or `table`.
    public var securableType: String
    /// The name as written; unqualified names resolve against the current catalog and schema.
    public var name: [String]
    public var principal: String?
    /// COMMENT ON's text ("" for NULL); CREATE VOLUME's COMMENT.
    public var comment: String? = nil
    /// CREATE ... IF NOT EXISTS, DROP ... IF EXISTS.
    public var ifExists = false
    /// CREATE EXTERNAL VOLUME's LOCATION.
    public var location: String? = nil
}

/// `MERGE INTO` as Delta Lake has it.
public struct MergeStatement: Sendable {
    public enum Kind: Sendable, Equatable { case matched, notMatched, notMatchedBySource }
    public enum Action: Sendable {
        case update([(column: String, value: Expr)])
        case updateAll
        case delete
        case insert(columns: [String]?, values: [Expr])
        case insertAll
    }
    public struct Clause: Sendable {
        public var kind: Kind
        public var condition: Expr?
        public var conditionText: String?
        public var action: Action
    }
    public var target: [String]
    public var targetAlias: String?
    public var source: FromItem
    public var condition: Expr
    public var clauses: [Clause]
    /// The statement's text, recorded in the commit.
    public var conditionText: String
}

/// A catalog or a schema.
public enum NamespaceKind: String, Sendable { case catalog, schema }

public struct CreateTable: Sendable {
    public var table: [String]
    public var orReplace = false
    public var ifNotExists = false
    public var columns: [(name: String, type: FrameType, nullable: Bool)] = []
    public var partitionedBy: [String] = []
    public var properties: [String: String] = [:]
    public var comment: String?
    public var query: Query?
    /// LOCATION: an external table's folder (the table is kept there; DROP leaves its files).
    public var location: String?
    /// `[CONSTRAINT name] PRIMARY KEY (a, ts TIMESERIES)` among the columns.
    public var primaryKey: PrimaryKey?
}

/// `[WITH ...] body [ORDER BY ...] [LIMIT n] [OFFSET m]`.
public struct Query: Sendable {
    public var ctes: [(name: String, query: Query)] = []
    public var body: SetExpr
    public var orderBy: [OrderItem] = []
    public var limit: Int?
    public var offset: Int?
}

/// A SELECT, a parenthesized query, or a UNION / INTERSECT / EXCEPT of two.
public indirect enum SetExpr: Sendable {
    case select(Select)
    /// VALUES (..), (..): rows of literal expressions.
    case values([[Expr]])
    case query(Query)
    case setOperation(String, SetExpr, SetExpr, all: Bool)
}

public struct Select: Sendable {
    public var distinct = false
    public var items: [SelectItem] = []
    /// Comma-separated FROM items (each may be a join tree); empty for `SELECT 1`.
    public var from: [FromItem] = []
    public var whereClause: Expr?
    public var groupBy: [Expr] = []
    public var having: Expr?
}

public enum SelectItem: Sendable {
    case star(qualifier: String?)
    case expr(Expr, alias: String?)
}

public struct OrderItem: Sendable {
    public var expr: Expr
    public var descending: Bool
    public var nullsFirst: Bool?
}

public enum JoinKind: String, Sendable {
    case inner, left, right, full, cross, semi, anti
    /// `ASOF [LEFT] JOIN ... ON keys AND left.t >= right.t`: each left row with the closest earlier right row.
    case asof, asofLeft = "asof left"
}

public indirect enum FromItem: Sendable {
    /// A table by name parts (`t`, `s.t`, `c.s.t`, or `delta`/`parquet` + a quoted path), with time travel.
    case table(parts: [String], alias: String?, version: Int64?, timestamp: String?)
    case subquery(Query, alias: String)
    case join(FromItem, FromItem, kind: JoinKind, on: Expr?, using: [String])
    /// `read_files('path', format => 'parquet')`, `range(n)`.
    case function(name: String, args: [Expr], named: [String: Expr], alias: String?)
}

// MARK: Lexer

struct Token: Equatable {
    enum Kind: Equatable { case identifier, quoted, number, string, symbol, parameter, end }
    var kind: Kind
    var text: String
    var offset: Int
}

struct Lexer {
    static func tokens(_ sql: String) throws -> [Token] {
        let chars = Array(sql)
        var out: [Token] = []
        var i = 0
        func fail(_ message: String) -> KilnError { KilnError.invalid("SQL syntax error at character \(i + 1): \(message)") }
        while i < chars.count {
            let c = chars[i]
            if c.isWhitespace { i += 1; continue }
            if c == "-", i + 1 < chars.count, chars[i + 1] == "-" {
                while i < chars.count, chars[i] != "\n" { i += 1 }
                continue
            }
            if c == "/", i + 1 < chars.count, chars[i + 1] == "*" {
                i += 2
                while i + 1 < chars.count, !(chars[i] == "*" && chars[i + 1] == "/") { i += 1 }
                i += 2
                continue
            }
            let start = i
            if c.isLetter || c == "_" {
                while i < chars.count, chars[i].isLetter || chars[i].isNumber || chars[i] == "_" || chars[i] == "$" { i += 1 }
                out.append(Token(kind: .identifier, text: String(chars[start..<i]), offset: start))
            } else if c.isNumber || (c == "." && i + 1 < chars.count && chars[i + 1].isNumber) {
                while i < chars.count, chars[i].isNumber || chars[i] == "." { i += 1 }
                if i < chars.count, chars[i] == "e" || chars[i] == "E" {
                    var j = i + 1
                    if j < chars.count, chars[j] == "+" || chars[j] == "-" { j += 1 }
                    if j < chars.count, chars[j].isNumber {
                        i = j
                        while i < chars.count, chars[i].isNumber { i += 1 }
                    }
                }
                // Suffixes: 10L, 1.5D, 2BD.
                var text = String(chars[start..<i])
                if i < chars.count, "LlDdSsYy".contains(chars[i]), !(i + 1 < chars.count && (chars[i + 1].isLetter || chars[i + 1] == "_")) { i += 1 }
                else if i + 1 < chars.count, chars[i] == "B" || chars[i] == "b", chars[i + 1] == "D" || chars[i + 1] == "d" { i += 2 }
                if text.hasSuffix(".") { text += "0" }
                out.append(Token(kind: .number, text: text, offset: start))
            } else if c == "'" || c == "\"" {
                // Strings: '...' ('' and \ escapes); "..." is a string in Spark SQL too.
                var text = ""
                i += 1
                var closed = false
                while i < chars.count {
                    if chars[i] == "\\", i + 1 < chars.count {
                        let e = chars[i + 1]
                        text.append(e == "n" ? "\n" : e == "t" ? "\t" : e)
                        i += 2
                        continue
                    }
                    if chars[i] == c {
                        if i + 1 < chars.count, chars[i + 1] == c { text.append(c); i += 2; continue }
                        closed = true
                        i += 1
                        break
                    }
                    text.append(chars[i])
                    i += 1
                }
                guard closed else { throw fail("unterminated string") }
                out.append(Token(kind: .string, text: text, offset: start))
            } else if c == "$", i + 1 < chars.count, chars[i + 1] == "$" {
                // $$...$$: a string taken as written (a Python function's body).
                i += 2
                let bodyStart = i
                while i + 1 < chars.count, !(chars[i] == "$" && chars[i + 1] == "$") { i += 1 }
                guard i + 1 < chars.count else { throw fail("unterminated $$ string") }
                out.append(Token(kind: .string, text: String(chars[bodyStart..<i]), offset: start))
                i += 2
            } else if c == "`" {
                i += 1
                var text = ""
                while i < chars.count {
                    if chars[i] == "`" {
                        if i + 1 < chars.count, chars[i + 1] == "`" { text.append("`"); i += 2; continue }
                        break
                    }
                    text.append(chars[i])
                    i += 1
                }
                guard i < chars.count else { throw fail("unterminated `identifier`") }
                i += 1
                out.append(Token(kind: .quoted, text: text, offset: start))
            } else if c == ":", i + 1 < chars.count, chars[i + 1].isLetter || chars[i + 1] == "_" {
                i += 1
                while i < chars.count, chars[i].isLetter || chars[i].isNumber || chars[i] == "_" { i += 1 }
                out.append(Token(kind: .parameter, text: String(chars[start + 1..<i]), offset: start))
            } else {
                let three = i + 2 < chars.count ? String(chars[i...i + 2]) : ""
                let two = i + 1 < chars.count ? String(chars[i...i + 1]) : ""
                if three == "<=>" {
                    out.append(Token(kind: .symbol, text: three, offset: start)); i += 3
                } else if ["<=", ">=", "<>", "!=", "==", "||", "=>", "::"].contains(two) {
                    out.append(Token(kind: .symbol, text: two, offset: start)); i += 2
                } else if "(),.*+-/%<>=;[]@:".contains(c) {
                    out.append(Token(kind: .symbol, text: String(c), offset: start)); i += 1
                } else {
                    throw fail("unexpected '\(c)'")
                }
            }
        }
        out.append(Token(kind: .end, text: "", offset: chars.count))
        return out
    }
}

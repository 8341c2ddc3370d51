import WispCore

/// One shell word of a GRUB script, kept in parts so that variables expand at run time:
/// single-quoted text never expands, double-quoted and bare `$name` / `${name}` do.
public struct GrubWord: Sendable, Equatable {
    public enum Part: Sendable, Equatable {
        case text(String)
        case variable(String)
    }
    public var parts: [Part]
    /// Any quoting at all: an empty quoted word survives as an empty argument, while an
    /// unquoted variable that expands to nothing disappears.
    public var quoted: Bool

    /// The word's text if it has no variables.
    public var literal: String? {
        var s = ""
        for part in parts {
            guard case .text(let t) = part else { return nil }
            s += t
        }
        return s
    }
}

/// The statements of a GRUB script as grub-mkconfig writes them (and people edit them).
public indirect enum GrubStatement: Sendable, Equatable {
    case command([GrubWord], line: Int)
    case menuentry([GrubWord], body: [GrubStatement], line: Int)
    case submenu([GrubWord], body: [GrubStatement], line: Int)
    /// if/elif/else: each branch is a condition (a command list) and a body.
    case conditional(branches: [(condition: [GrubStatement], body: [GrubStatement])], otherwise: [GrubStatement]?, line: Int)
    case function(String, body: [GrubStatement], line: Int)
    /// for/while/until: never needed to find boot entries, kept only to be skipped.
    case loop(line: Int)

    public static func == (a: GrubStatement, b: GrubStatement) -> Bool {
        String(describing: a) == String(describing: b)
    }
}

/// Parses grub.cfg text into statements. Hostile input gets one clear error naming the
/// file and line: unterminated quotes, a menuentry without its closing brace, an `if`
/// without `fi`, a stray `}`; nesting deeper than 32 levels is refused.
public struct GrubScriptParser {
    enum Token: Equatable {
        case word(GrubWord, line: Int)
        case separator(line: Int)  // newline or ';'
    }

    let source: String
    var tokens: [Token] = []
    var position = 0
    static let maxDepth = 32

    public static func parse(_ text: String, source: String) throws -> [GrubStatement] {
        var parser = GrubScriptParser(source: source)
        parser.tokens = try tokenize(text, source: source)
        return try parser.parseBlock(terminators: [], depth: 0).statements
    }

    // MARK: Lexer

    static func tokenize(_ text: String, source: String) throws -> [Token] {
        let chars = Array(text.unicodeScalars)
        var tokens: [Token] = []
        var i = 0
        var line = 1
        var parts: [GrubWord.Part] = []
        var buffer = ""
        var quoted = false
        var inWord = false

        func flushText() {
            if !buffer.isEmpty { parts.append(.text(buffer)); buffer = "" }
        }
        func endWord() {
            flushText()
            if inWord { tokens.append(.word(GrubWord(parts: parts, quoted: quoted), line: line)) }
            parts = []; quoted = false; inWord = false
        }
        func isNameChar(_ c: Unicode.Scalar) -> Bool {
            (c >= "a" && c <= "z") || (c >= "A" && c <= "Z") || (c >= "0" && c <= "9") || c == "_"
        }
        // Reads a `$name`, `${name}`, `$?`, `$@`, `$#`, `$1` reference starting at chars[i] == "$".
        func readVariable() throws -> String? {
            let start = i
            i += 1
            guard i < chars.count else { return nil }
            if chars[i] == "{" {
                var name = ""
                i += 1
                while i < chars.count, chars[i] != "}" {
                    if chars[i] == "\n" { break }
                    name.unicodeScalars.append(chars[i]); i += 1
                }
                guard i < chars.count, chars[i] == "}" else {
                    throw WispError.corrupt(source, "GRUB script line \(line)", "\"${\" without a closing \"}\"")
                }
                i += 1
                return name
            }
            if chars[i] == "?" || chars[i] == "@" || chars[i] == "#" || chars[i] == "*" {
                i += 1
                return String(chars[i - 1])
            }
            var name = ""
            while i < chars.count, isNameChar(chars[i]) { name.unicodeScalars.append(chars[i]); i += 1 }
            if name.isEmpty { i = start + 1; return nil }
            return name
        }

        while i < chars.count {
            let c = chars[i]
            switch c {
            case "\n", ";":
                endWord()
                tokens.append(.separator(line: line))
                if c == "\n" { line += 1 }
                i += 1
            case " ", "\t", "\r":
                endWord()
                i += 1
            case "#" where !inWord:
                while i < chars.count, chars[i] != "\n" { i += 1 }
            case "\\":
                inWord = true
                if i + 1 < chars.count {
                    if chars[i + 1] == "\n" { line += 1 } else { buffer.unicodeScalars.append(chars[i + 1]) }
                    i += 2
                } else {
                    i += 1
                }
            case "'":
                inWord = true; quoted = true
                let startLine = line
                i += 1
                while i < chars.count, chars[i] != "'" {
                    if chars[i] == "\n" { line += 1 }
                    buffer.unicodeScalars.append(chars[i]); i += 1
                }
                guard i < chars.count else {
                    throw WispError.corrupt(source, "GRUB script line \(startLine)", "single quote is never closed")
                }
                i += 1
            case "\"":
                inWord = true; quoted = true
                let startLine = line
                i += 1
                while i < chars.count, chars[i] != "\"" {
                    if chars[i] == "\\", i + 1 < chars.count, ["\"", "\\", "$", "\n"].contains(chars[i + 1]) {
                        if chars[i + 1] == "\n" { line += 1 } else { buffer.unicodeScalars.append(chars[i + 1]) }
                        i += 2
                        continue
                    }
                    if chars[i] == "$" {
                        let save = i
                        if let name = try readVariable() {
                            flushText(); parts.append(.variable(name))
                        } else {
                            buffer.unicodeScalars.append("$"); i = save + 1
                        }
                        continue
                    }
                    if chars[i] == "\n" { line += 1 }
                    buffer.unicodeScalars.append(chars[i]); i += 1
                }
                guard i < chars.count else {
                    throw WispError.corrupt(source, "GRUB script line \(startLine)", "double quote is never closed")
                }
                i += 1
            case "$":
                inWord = true
                let save = i
                if let name = try readVariable() {
                    flushText(); parts.append(.variable(name))
                } else {
                    buffer.unicodeScalars.append("$"); i = save + 1
                }
            default:
                inWord = true
                buffer.unicodeScalars.append(c)
                i += 1
            }
        }
        endWord()
        return tokens
    }

    // MARK: Parser

    /// The next command's words (up to a separator), skipping empty commands.
    mutating func nextCommand() -> (words: [GrubWord], line: Int)? {
        while position < tokens.count, case .separator = tokens[position] { position += 1 }
        guard position < tokens.count else { return nil }
        var words: [GrubWord] = []
        var line = 0
        while position < tokens.count {
            switch tokens[position] {
            case .separator:
                position += 1
                return (words, line)
            case .word(let w, let l):
                if words.isEmpty { line = l }
                // "{" and "}" end a command on their own, so "menuentry x {" and "}" parse
                // whether or not a newline follows.
                // "then", "else" and "do" open a body; what follows them on the line is a
                // command of its own ("then if [ ... ]; then ...").
                if words.isEmpty, !w.quoted, let l = w.literal, l == "then" || l == "else" || l == "do" {
                    position += 1
                    return ([w], lineOf(position - 1))
                }
                if w.literal == "{" || w.literal == "}", !w.quoted {
                    if words.isEmpty {
                        position += 1
                        return ([w], l)
                    }
                    return (words, line)
                }
                words.append(w)
                position += 1
            }
        }
        return (words, line)
    }

    func lineOf(_ index: Int) -> Int {
        if case .word(_, let l) = tokens[index] { return l }
        if case .separator(let l) = tokens[index] { return l }
        return 0
    }

    struct Block {
        var statements: [GrubStatement]
        /// The keyword that ended it ("}", "fi", "elif", "else", "then", "done"), nil at end of input.
        var terminator: String?
        var terminatorWords: [GrubWord]
        var line: Int
    }

    mutating func parseBlock(terminators: Set<String>, depth: Int) throws -> Block {
        guard depth <= Self.maxDepth else {
            throw WispError.corrupt(source, "GRUB script", "blocks nest deeper than \(Self.maxDepth) levels")
        }
        var statements: [GrubStatement] = []
        while let (words, line) = nextCommand() {
            guard let first = words.first?.literal, words.first?.quoted == false else {
                if !words.isEmpty { statements.append(.command(words, line: line)) }
                continue
            }
            if terminators.contains(first) {
                return Block(statements: statements, terminator: first, terminatorWords: Array(words.dropFirst()), line: line)
            }
            switch first {
            case "}":
                throw WispError.corrupt(source, "GRUB script line \(line)", "\"}\" without an open menuentry, submenu or function")
            case "fi", "elif", "else", "then", "done", "do":
                throw WispError.corrupt(source, "GRUB script line \(line)", "\"\(first)\" outside an if or loop")
            case "menuentry", "submenu":
                let args = try openBrace(words.dropFirst(), keyword: first, line: line)
                guard !args.isEmpty else {
                    throw WispError.corrupt(source, "GRUB script line \(line)", "\(first) has no title")
                }
                let body = try parseBlock(terminators: ["}"], depth: depth + 1)
                guard body.terminator == "}" else {
                    throw WispError.corrupt(source, "GRUB script line \(line)", "\(first) has no closing \"}\"")
                }
                statements.append(first == "menuentry" ? .menuentry(args, body: body.statements, line: line)
                                                       : .submenu(args, body: body.statements, line: line))
            case "function":
                guard words.count >= 2, let name = words[1].literal else {
                    throw WispError.corrupt(source, "GRUB script line \(line)", "function without a name")
                }
                _ = try openBrace(words.dropFirst(2), keyword: "function", line: line)
                let body = try parseBlock(terminators: ["}"], depth: depth + 1)
                guard body.terminator == "}" else {
                    throw WispError.corrupt(source, "GRUB script line \(line)", "function \(name) has no closing \"}\"")
                }
                statements.append(.function(name, body: body.statements, line: line))
            case "if":
                statements.append(try parseIf(firstCondition: Array(words.dropFirst()), line: line, depth: depth))
            case "for", "while", "until":
                // Skip to the matching "done"; the loop's commands do not define entries.
                var body = try parseBlock(terminators: ["do"], depth: depth + 1)
                guard body.terminator == "do" else {
                    throw WispError.corrupt(source, "GRUB script line \(line)", "\(first) without \"do\"")
                }
                body = try parseBlock(terminators: ["done"], depth: depth + 1)
                guard body.terminator == "done" else {
                    throw WispError.corrupt(source, "GRUB script line \(line)", "\(first) loop has no \"done\"")
                }
                statements.append(.loop(line: line))
            default:
                statements.append(.command(words, line: line))
            }
        }
        return Block(statements: statements, terminator: nil, terminatorWords: [], line: 0)
    }

    /// The words before "{" of a menuentry/submenu/function; the brace must come next.
    mutating func openBrace(_ words: ArraySlice<GrubWord>, keyword: String, line: Int) throws -> [GrubWord] {
        // nextCommand stopped before a "{" on the same line; it may also be on the next line.
        guard let (brace, _) = nextCommand(), brace.count == 1, brace[0].literal == "{" else {
            throw WispError.corrupt(source, "GRUB script line \(line)", "\(keyword) is not followed by \"{\"")
        }
        return Array(words)
    }

    mutating func parseIf(firstCondition: [GrubWord], line: Int, depth: Int) throws -> GrubStatement {
        var branches: [(condition: [GrubStatement], body: [GrubStatement])] = []
        var conditionHead = firstCondition
        while true {
            // The condition: commands up to "then" (usually "[ ... ]; then").
            var condition: [GrubStatement] = []
            let rest = try parseBlock(terminators: ["then"], depth: depth + 1)
            if !conditionHead.isEmpty {
                // "if [ x ]" holds the first condition command; further ones follow.
                condition.append(.command(conditionHead, line: line))
            }
            condition += rest.statements
            guard rest.terminator == "then" else {
                throw WispError.corrupt(source, "GRUB script line \(line)", "if without \"then\"")
            }
            // Commands may follow "then" on the same line: "then set x=y".
            var body: [GrubStatement] = rest.terminatorWords.isEmpty ? [] : [.command(rest.terminatorWords, line: rest.line)]
            let block = try parseBlock(terminators: ["elif", "else", "fi"], depth: depth + 1)
            body += block.statements
            branches.append((condition, body))
            switch block.terminator {
            case "elif":
                conditionHead = block.terminatorWords
                continue
            case "else":
                var otherwise: [GrubStatement] = block.terminatorWords.isEmpty ? [] : [.command(block.terminatorWords, line: block.line)]
                let elseBlock = try parseBlock(terminators: ["fi"], depth: depth + 1)
                guard elseBlock.terminator == "fi" else {
                    throw WispError.corrupt(source, "GRUB script line \(line)", "if has no \"fi\"")
                }
                otherwise += elseBlock.statements
                return .conditional(branches: branches, otherwise: otherwise, line: line)
            case "fi":
                return .conditional(branches: branches, otherwise: nil, line: line)
            default:
                throw WispError.corrupt(source, "GRUB script line \(line)", "if has no \"fi\"")
            }
        }
    }
}

import WispCore

/// Where GRUB looks for a path in a `linux` / `initrd` line: the device `$root` names.
public enum GrubDevice: Sendable, Equatable, Codable {
    case fsUUID(String)
    case fsLabel(String)
    /// `search --file X`: the filesystem holding that file.
    case file(String)
    /// `hd0,gpt2`, `hd0,msdos1`, `hd0,2`: a partition number on the disk.
    case partition(Int)
    case unknown
}

/// One menu entry as GRUB would run it.
public struct GrubMenuEntry: Sendable, Equatable {
    public var title: String
    public var id: String?
    public var submenuPath: [String]
    public var classes: [String]
    /// From `linux`/`linuxefi`/`linux16` (nil for chainloader or firmware entries).
    public var kernel: String?
    public var kernelDevice: GrubDevice
    public var arguments: [String]
    public var initrds: [String]
    public var initrdDevice: GrubDevice
    /// Set when the entry came from a BLS snippet through `blscfg`.
    public var blsID: String?
    public var line: Int
}

/// The menu tree: top-level items are entries or submenus, as GRUB numbers them.
public indirect enum GrubMenuItem: Sendable, Equatable {
    case entry(Int)  // index into `entries`
    case submenu(title: String, id: String?, items: [GrubMenuItem])
}

/// Runs a parsed grub.cfg the way GRUB would at boot, without booting: variables from
/// grubenv and `set`, `if` conditions on variables and files, `load_env`, `search
/// --set=root`, menu entries and submenus, `blscfg` expanding BLS snippets in place. What it
/// cannot know (keystatus, hardware) it takes as the ordinary case.
public struct GrubMenu: Sendable {
    public var entries: [GrubMenuEntry] = []
    public var items: [GrubMenuItem] = []
    /// The final global environment (what menu entries see at boot).
    public var environment: [String: String]

    /// Hooks into the guest's files.
    public struct Context {
        public var grubenv: [String: String]
        /// `[ -f path ]` / `-e` / `-s` / `-d`: does this GRUB path exist?
        public var fileExists: (String) -> Bool
        /// BLS entries, already ordered, for `blscfg`.
        public var blsEntries: [BLSEntry]
        public var prefix: String

        public init(grubenv: [String: String], fileExists: @escaping (String) -> Bool, blsEntries: [BLSEntry], prefix: String) {
            self.grubenv = grubenv
            self.fileExists = fileExists
            self.blsEntries = blsEntries
            self.prefix = prefix
        }
    }

    static let maxEntries = 4096
    static let maxSteps = GrubEvaluationBudget.maxSteps

    public init(statements: [GrubStatement], context: Context, source: String) throws {
        environment = [
            "feature_menuentry_id": "y", "feature_default_font_path": "y", "feature_all_video_module": "y",
            "feature_platform_search_hint": "y", "feature_timeout_style": "y", "feature_200_final": "y",
            "feature_nativedisk_cmd": "y", "grub_platform": "pc", "grub_cpu": "i386",
            "prefix": context.prefix, "config_directory": context.prefix, "cmdpath": context.prefix,
            // $root is left unset: GRUB's own default is the device it loaded grub.cfg from,
            // which the caller knows better (it resolves unknown devices there).
            // What grub.cfg's own header sets when feature_menuentry_id is y.
            "menuentry_id_option": "--id",
        ]
        var runner = Runner(context: context, source: source)
        runner.environment = environment
        var pending: [(entry: PendingEntry, path: [String])] = []
        items = try runner.run(statements, submenuPath: [], pending: &pending, depth: 0)
        environment = runner.environment
        // Menu entry bodies run when chosen, so they see the final global environment.
        for (entry, path) in pending {
            var e = try runner.runEntry(entry, submenuPath: path)
            e.submenuPath = path
            entries.append(e)
        }
    }

    struct PendingEntry {
        var title: String
        var id: String?
        var classes: [String]
        var body: [GrubStatement]
        var bls: BLSEntry?
        var line: Int
    }

    struct Runner {
        var context: Context
        var source: String
        var environment: [String: String] = [:]
        var budget: GrubEvaluationBudget
        var lastStatus = true
        /// An unquoted lone `$name` split into words, kept while the variable holds the same
        /// value: a big variable used in every menu entry is split once, not once per entry.
        var splitCache: [String: (value: String, words: [String])] = [:]

        init(context: Context, source: String) {
            self.context = context
            self.source = source
            self.budget = GrubEvaluationBudget(source: source)
        }

        mutating func step(_ line: Int) throws {
            try budget.step(line: line)
        }

        /// Expands words into arguments: variables from the environment (unknown ones are
        /// empty), unquoted empty results dropped. Every byte and word is charged to the
        /// budget before it is built.
        mutating func expand(_ words: [GrubWord], line: Int) throws -> [String] {
            var out: [String] = []
            for word in words {
                if !word.quoted, word.parts.count == 1, case .variable(let name) = word.parts[0], name != "?" {
                    let value = environment[name] ?? ""
                    let split: [String]
                    if let cached = splitCache[name], cached.value == value {
                        split = cached.words
                    } else {
                        split = Self.splitOnBlanks(value)
                        splitCache[name] = (value, split)
                    }
                    try budget.chargeBytes(value.utf8.count, line: line)
                    try budget.chargeWords(split.count, line: line)
                    out += split
                    continue
                }
                var length = 0
                var hadVariable = false
                for part in word.parts {
                    switch part {
                    case .text(let t): length += t.utf8.count
                    case .variable(let name):
                        hadVariable = true
                        length += name == "?" ? 1 : (environment[name]?.utf8.count ?? 0)
                    }
                }
                try budget.chargeBytes(length, line: line)
                var s = ""
                s.reserveCapacity(length)
                for part in word.parts {
                    switch part {
                    case .text(let t): s += t
                    case .variable(let name):
                        if name == "?" { s += lastStatus ? "0" : "1" } else { s += environment[name] ?? "" }
                    }
                }
                if s.isEmpty && hadVariable && !word.quoted { continue }
                if hadVariable && !word.quoted {
                    let split = Self.splitOnBlanks(s)
                    try budget.chargeWords(split.count, line: line)
                    out += split
                } else {
                    try budget.chargeWords(1, line: line)
                    out.append(s)
                }
            }
            return out
        }

        /// Unquoted expansions split on whitespace, as GRUB's lexer re-reads them.
        static func splitOnBlanks(_ s: String) -> [String] {
            s.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\n" }).map(String.init)
        }

        mutating func run(_ statements: [GrubStatement], submenuPath: [String],
                          pending: inout [(entry: PendingEntry, path: [String])], depth: Int) throws -> [GrubMenuItem] {
            var items: [GrubMenuItem] = []
            for statement in statements {
                switch statement {
                case .command(let words, let line):
                    try step(line)
                    let args = try expand(words, line: line)
                    guard let name = args.first else { continue }
                    if name == "blscfg" {
                        for bls in context.blsEntries {
                            guard pending.count < GrubMenu.maxEntries else { break }
                            items.append(.entry(pending.count))
                            pending.append((PendingEntry(title: bls.title ?? bls.id, id: bls.id, classes: [], body: [],
                                                         bls: bls, line: line), submenuPath))
                        }
                        continue
                    }
                    lastStatus = execute(args, line: line)
                case .menuentry(let words, let body, let line):
                    try step(line)
                    guard pending.count < GrubMenu.maxEntries else {
                        throw WispError.corrupt(source, "GRUB script line \(line)", "more than \(GrubMenu.maxEntries) menu entries")
                    }
                    let (title, id, classes) = try menuArguments(try expand(words, line: line), line: line)
                    items.append(.entry(pending.count))
                    pending.append((PendingEntry(title: title, id: id, classes: classes, body: body, bls: nil, line: line), submenuPath))
                case .submenu(let words, let body, let line):
                    try step(line)
                    let (title, id, _) = try menuArguments(try expand(words, line: line), line: line)
                    // A submenu's body runs when opened, with the environment as it is then;
                    // its entries are collected now in order.
                    let saved = environment
                    let children = try run(body, submenuPath: submenuPath + [title], pending: &pending, depth: depth + 1)
                    environment = saved
                    items.append(.submenu(title: title, id: id, items: children))
                case .conditional(let branches, let otherwise, let line):
                    try step(line)
                    var taken = false
                    for branch in branches {
                        _ = try run(branch.condition, submenuPath: submenuPath, pending: &pending, depth: depth + 1)
                        if lastStatus {
                            items += try run(branch.body, submenuPath: submenuPath, pending: &pending, depth: depth + 1)
                            taken = true
                            break
                        }
                    }
                    if !taken, let otherwise {
                        items += try run(otherwise, submenuPath: submenuPath, pending: &pending, depth: depth + 1)
                    }
                case .function, .loop:
                    continue
                }
            }
            return items
        }

        func menuArguments(_ args: [String], line: Int) throws -> (String, String?, [String]) {
            var title: String?
            var id: String?
            var classes: [String] = []
            var i = 0
            while i < args.count {
                let a = args[i]
                switch a {
                case "--class": if i + 1 < args.count { classes.append(args[i + 1]) }; i += 2
                case "--id": if i + 1 < args.count { id = args[i + 1] }; i += 2
                case "--users", "--hotkey", "--source": i += 2
                case "--unrestricted": i += 1
                default:
                    if a.hasPrefix("--id=") { id = String(a.dropFirst(5)) } else if a.hasPrefix("--class=") {
                        classes.append(String(a.dropFirst(8)))
                    } else if a.hasPrefix("--") {
                        // other options: no value
                    } else if title == nil { title = a }
                    i += 1
                }
            }
            guard let title else {
                throw WispError.corrupt(source, "GRUB script line \(line)", "menu entry or submenu has no title")
            }
            return (title, id, classes)
        }

        /// Runs one command for its effect on the environment; returns its status.
        mutating func execute(_ args: [String], line: Int) -> Bool {
            guard let name = args.first else { return true }
            // "name=value" alone is an assignment, as in the grub.cfg header's
            // menuentry_id_option="--id".
            if args.count == 1, let eq = name.firstIndex(of: "="), eq > name.startIndex,
               name[name.startIndex..<eq].allSatisfy({ $0.isLetter || $0.isNumber || $0 == "_" }) {
                environment[String(name[name.startIndex..<eq])] = String(name[name.index(after: eq)...])
                return true
            }
            switch name {
            case "set":
                for a in args.dropFirst() {
                    if let eq = a.firstIndex(of: "=") {
                        environment[String(a[a.startIndex..<eq])] = String(a[a.index(after: eq)...])
                    }
                }
                return true
            case "unset":
                for a in args.dropFirst() { environment[a] = nil }
                return true
            case "load_env":
                // "load_env [-f file] [--skip-sig] [names...]": the guest's grubenv.
                var names: [String] = []
                var i = 1
                while i < args.count {
                    if args[i] == "-f" || args[i] == "--file" { i += 2; continue }
                    if args[i].hasPrefix("-") { i += 1; continue }
                    names.append(args[i]); i += 1
                }
                for (k, v) in context.grubenv where names.isEmpty || names.contains(k) { environment[k] = v }
                return true
            case "search", "search.fs_uuid", "search.fs_label", "search.file":
                if let (variable, device) = GrubMenu.parseSearch(args) { environment[variable] = device }
                return true
            case "[", "test":
                return evaluateTest(name == "[" ? args.dropFirst().dropLast(args.last == "]" ? 1 : 0) : args.dropFirst())
            case "true": return true
            case "false": return false
            default:
                return true
            }
        }

        /// `test` / `[`: leading `!`s negate, counted in one pass (a recursion per `!` that
        /// copied the rest each time ran out of memory on 200,000 of them: issue 16, failure 6).
        func evaluateTest(_ words: ArraySlice<String>) -> Bool {
            var rest = words
            var negated = false
            while rest.first == "!" {
                negated.toggle()
                rest = rest.dropFirst()
            }
            let result = evaluatePrimary(Array(rest))
            return negated ? !result : result
        }

        func evaluatePrimary(_ a: [String]) -> Bool {
            switch a.count {
            case 0: return false
            case 1: return !a[0].isEmpty
            case 2:
                switch a[0] {
                case "-n": return !a[1].isEmpty
                case "-z": return a[1].isEmpty
                case "-f", "-e", "-s", "-d": return context.fileExists(a[1])
                default: return false
                }
            default:
                let (x, op, y) = (a[0], a[1], a[2])
                switch op {
                case "=", "==": return x == y
                case "!=": return x != y
                case "-eq", "-ne", "-lt", "-le", "-gt", "-ge":
                    guard let p = Int(x), let q = Int(y) else { return false }
                    switch op {
                    case "-eq": return p == q
                    case "-ne": return p != q
                    case "-lt": return p < q
                    case "-le": return p <= q
                    case "-gt": return p > q
                    default: return p >= q
                    }
                default: return true
                }
            }
        }

        /// Runs an entry's body (or takes a BLS snippet) with the final global environment.
        mutating func runEntry(_ pending: PendingEntry, submenuPath: [String]) throws -> GrubMenuEntry {
            var entry = GrubMenuEntry(title: pending.title, id: pending.id, submenuPath: submenuPath,
                                      classes: pending.classes, kernel: nil, kernelDevice: .unknown, arguments: [],
                                      initrds: [], initrdDevice: .unknown, blsID: nil, line: pending.line)
            let saved = environment
            defer { environment = saved }
            if let bls = pending.bls {
                entry.blsID = bls.id
                entry.kernel = bls.linux
                entry.kernelDevice = GrubMenu.device(from: environment["root"])
                entry.initrdDevice = entry.kernelDevice
                // blscfg expands the snippet's variables ($kernelopts, $tuned_params, $tuned_initrd).
                let words = (bls.options.joined(separator: " ")).split(separator: " ").map {
                    GrubWord(parts: GrubMenu.splitVariables(String($0)), quoted: false)
                }
                entry.arguments = try expand(words, line: pending.line)
                let initrdWords = bls.initrds.flatMap { $0.split(separator: " ") }.map {
                    GrubWord(parts: GrubMenu.splitVariables(String($0)), quoted: false)
                }
                entry.initrds = try expand(initrdWords, line: pending.line)
                return entry
            }
            try runBody(pending.body, into: &entry, depth: 0)
            return entry
        }

        mutating func runBody(_ statements: [GrubStatement], into entry: inout GrubMenuEntry, depth: Int) throws {
            guard depth < 32 else { return }
            for statement in statements {
                switch statement {
                case .command(let words, let line):
                    try step(line)
                    let args = try expand(words, line: line)
                    guard let name = args.first else { continue }
                    switch name {
                    case "linux", "linux16", "linuxefi", "kernel":
                        guard args.count >= 2 else {
                            throw WispError.corrupt(source, "GRUB script line \(line)", "\(name) without a kernel path")
                        }
                        let (device, path) = GrubMenu.splitDevicePath(args[1], root: environment["root"])
                        entry.kernel = path
                        entry.kernelDevice = device
                        entry.arguments = Array(args.dropFirst(2))
                    case "initrd", "initrd16", "initrdefi":
                        guard args.count >= 2 else {
                            throw WispError.corrupt(source, "GRUB script line \(line)", "\(name) without an initrd path")
                        }
                        var paths: [String] = []
                        for a in args.dropFirst() where !a.hasPrefix("--") {
                            let (device, path) = GrubMenu.splitDevicePath(a, root: environment["root"])
                            entry.initrdDevice = device
                            paths.append(path)
                        }
                        entry.initrds = paths
                    default:
                        lastStatus = execute(args, line: line)
                    }
                case .conditional(let branches, let otherwise, let line):
                    try step(line)
                    var taken = false
                    for branch in branches {
                        try runBody(branch.condition, into: &entry, depth: depth + 1)
                        if lastStatus {
                            try runBody(branch.body, into: &entry, depth: depth + 1)
                            taken = true
                            break
                        }
                    }
                    if !taken, let otherwise { try runBody(otherwise, into: &entry, depth: depth + 1) }
                default:
                    continue
                }
            }
        }
    }

    // MARK: helpers

    static func splitVariables(_ s: String) -> [GrubWord.Part] {
        (try? GrubScriptParser.tokenize(s, source: "BLS options"))?.compactMap { token -> [GrubWord.Part]? in
            if case .word(let w, _) = token { return w.parts }
            return nil
        }.flatMap { $0 } ?? [.text(s)]
    }

    /// `search [--no-floppy] [--fs-uuid|--label|--file] [--set[=var]] [--hint...] NAME`.
    static func parseSearch(_ args: [String]) -> (String, String)? {
        var kind = args[0] == "search.fs_uuid" ? "uuid" : args[0] == "search.fs_label" ? "label" : args[0] == "search.file" ? "file" : "file"
        var variable = "root"
        var name: String?
        var i = 1
        while i < args.count {
            let a = args[i]
            switch a {
            case "--fs-uuid", "-u": kind = "uuid"
            case "--label", "-l": kind = "label"
            case "--file", "-f": kind = "file"
            case "--set", "-s":
                // "--set" alone means root; "--set var" is not GRUB syntax ("--set=var" is).
                variable = "root"
            case "--no-floppy", "-n", "--efidisk-only": break
            default:
                if a.hasPrefix("--set=") { variable = String(a.dropFirst(6)) }
                else if a.hasPrefix("--hint") { if a == "--hint" || a.hasPrefix("--hint-") && !a.contains("=") { i += 1 } }
                else if !a.hasPrefix("-") { name = a }
            }
            i += 1
        }
        guard let name else { return nil }
        return (variable, "wisp-search:\(kind):\(name)")
    }

    /// The device a `$root` value names.
    static func device(from root: String?) -> GrubDevice {
        guard let root else { return .unknown }
        if root.hasPrefix("wisp-search:") {
            let rest = root.dropFirst("wisp-search:".count)
            guard let colon = rest.firstIndex(of: ":") else { return .unknown }
            let kind = rest[rest.startIndex..<colon], value = String(rest[rest.index(after: colon)...])
            switch kind {
            case "uuid": return .fsUUID(value)
            case "label": return .fsLabel(value)
            default: return .file(value)
            }
        }
        // hd0,gpt2 / hd0,msdos1 / hd0,2 / (hd0,gpt2)
        let trimmed = root.trimmingCharacters(in: "()")
        guard let comma = trimmed.lastIndex(of: ",") else { return .unknown }
        let part = trimmed[trimmed.index(after: comma)...]
        let digits = part.drop(while: { !$0.isNumber })
        if let n = Int(digits), n > 0 { return .partition(n) }
        return .unknown
    }

    /// "(hd0,gpt2)/vmlinuz" → (.partition(2), "/vmlinuz"); "/vmlinuz" → ($root, "/vmlinuz").
    static func splitDevicePath(_ word: String, root: String?) -> (GrubDevice, String) {
        if word.hasPrefix("("), let close = word.firstIndex(of: ")") {
            let inner = String(word[word.index(after: word.startIndex)..<close])
            let path = String(word[word.index(after: close)...])
            let device = inner == "$root" ? device(from: root) : device(from: inner)
            return (device, path.isEmpty ? "/" : path)
        }
        return (device(from: root), word)
    }

    // MARK: default selection

    /// Resolves GRUB's `default` (an index, an id or a title, or a ">"-separated path
    /// through submenus) to an entry index and a sentence saying how.
    public func resolveDefault() -> (index: Int?, reason: String) {
        let spec = environment["default"] ?? ""
        if spec.isEmpty {
            return (firstEntry(in: items), "GRUB's default is unset, so the first entry boots")
        }
        var level = items
        var index: Int?
        let parts = spec.split(separator: ">", omittingEmptySubsequences: false).map(String.init)
        for (n, part) in parts.enumerated() {
            let isLast = n == parts.count - 1
            guard let item = match(part, in: level) else {
                return (firstEntry(in: items), "GRUB's default \"\(spec)\" matches no menu entry (\"\(part)\" not found), so GRUB falls back to the first entry")
            }
            switch item {
            case .entry(let i):
                index = i
                if !isLast {
                    return (i, "GRUB's default \"\(spec)\" reaches an entry before its end; that entry boots")
                }
            case .submenu(_, _, let children):
                if isLast {
                    return (firstEntry(in: children), "GRUB's default \"\(spec)\" names a submenu; its first entry is taken")
                }
                level = children
            }
        }
        let origin = environment["saved_entry"].map { $0 == spec ? " (saved_entry in grubenv)" : "" } ?? ""
        return (index, "GRUB's default is \"\(spec)\"\(origin)")
    }

    func match(_ part: String, in level: [GrubMenuItem]) -> GrubMenuItem? {
        if let n = Int(part), part.allSatisfy(\.isNumber) {
            return n < level.count ? level[n] : nil
        }
        for item in level {
            switch item {
            case .entry(let i):
                if entries[i].id == part || entries[i].title == part { return item }
            case .submenu(let title, let id, _):
                if id == part || title == part { return item }
            }
        }
        return nil
    }

    func firstEntry(in level: [GrubMenuItem]) -> Int? {
        for item in level {
            switch item {
            case .entry(let i): return i
            case .submenu(_, _, let children): if let i = firstEntry(in: children) { return i }
            }
        }
        return nil
    }
}

extension String {
    func trimmingCharacters(in set: String) -> String {
        var s = Substring(self)
        while let f = s.first, set.contains(f) { s.removeFirst() }
        while let l = s.last, set.contains(l) { s.removeLast() }
        return String(s)
    }
}

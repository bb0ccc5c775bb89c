//! The TypeScript declarations of the window's side of the `invoke` boundary, rendered from the
//! Rust types by ts-rs into `ui/src/bindings/index.ts`: every command's arguments and result
//! (the [`command_table!`] below), what those types contain, the error every command rejects
//! with ([`ApiError`]) and the JSON part of the live frames ([`Frame`]).
//!
//! `bindings_are_current` (run by `cargo test --workspace`) renders them again and fails when
//! the checked-in file differs, naming the stale types; `VIGIL_WRITE_BINDINGS=1` writes the file
//! instead ([`REGENERATE`]). `command_table_matches_the_commands` holds the table to the
//! commands' real signatures, and every declaration must be used by the UI.

use std::any::TypeId;
use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::path::{Path, PathBuf};

use ts_rs::{Config, TypeVisitor, TS};
use vigil_core::audit::{AuditEntry, AuditFilter};
use vigil_core::auth::UserInfo;

use crate::commands::admin::VerifyOut;
use crate::commands::auth::AuthStateOut;
use crate::commands::{self, detail, remote, reports, security, station_admin};
use crate::error::ApiError;
use crate::frames::Frame;

/// How to write the declarations again after a change of the Rust types.
const REGENERATE: &str = "VIGIL_WRITE_BINDINGS=1 cargo test -p vigil --bin vigil bindings";

/// The generated file, from the repository root.
const FILE: &str = "ui/src/bindings/index.ts";

/// The command whose data comes on a channel (binary [`Frame`]s, see `frames.rs`), not as its
/// result; it is in `generate_handler!` but not in the table.
const CHANNEL_COMMAND: &str = "subscribe_ward";

/// i64 and u64 are plain numbers in the JSON (milliseconds, counts: all within 2^53).
fn config() -> Config {
    Config::new().with_large_int("number")
}

/// One argument as the window passes it.
struct Arg {
    /// The Rust parameter (the window sends it camelCased, as Tauri expects).
    name: &'static str,
    /// Its type as written in the command's signature.
    rust: &'static str,
    ts: String,
}

struct Command {
    name: &'static str,
    args: Vec<Arg>,
    /// The `Ok` type of the command's `Result<_, ApiError>`, as written.
    result_rust: &'static str,
    result: String,
}

/// Every command of `generate_handler!` in `main.rs` but [`CHANNEL_COMMAND`], as its function in
/// `commands/mod.rs` declares it: the arguments from the window (not the `tauri::State` ones)
/// and the `Ok` type of its result, written as there (checked against the source).
macro_rules! command_table {
    ($($name:ident($($arg:ident: $ty:ty),*) -> $ret:ty;)*) => {
        fn command_table(c: &mut Collect<'_>) -> Vec<Command> {
            vec![$(Command {
                name: stringify!($name),
                args: vec![$(Arg {
                    name: stringify!($arg),
                    rust: stringify!($ty),
                    ts: c.root::<$ty>(),
                }),*],
                result_rust: stringify!($ret),
                result: c.root::<$ret>(),
            }),*]
        }
    };
}

command_table! {
    auth_state() -> AuthStateOut;
    create_first_admin(name: String, password: String) -> AuthStateOut;
    login(name: String, password: String) -> AuthStateOut;
    logout() -> AuthStateOut;
    lock_screen() -> AuthStateOut;
    unlock(password: String) -> AuthStateOut;
    change_password(current_password: String, new_password: String) -> AuthStateOut;
    break_glass(password: String, reason: String) -> AuthStateOut;
    emergency_access(password: String) -> AuthStateOut;
    emergency_reason(reason: String) -> AuthStateOut;
    touch() -> ();
    list_users() -> Vec<UserInfo>;
    create_user(name: String, role: String, password: String) -> UserInfo;
    disable_user(name: String) -> bool;
    enable_user(name: String) -> bool;
    reset_password(name: String) -> String;
    unlock_user(name: String) -> bool;
    set_role(name: String, role: String) -> bool;
    audit_list(filter: AuditFilter) -> Vec<AuditEntry>;
    audit_export_csv(filter: AuditFilter) -> String;
    audit_verify() -> VerifyOut;
    acknowledge_alarm(id: String) -> ();
    audio_pause(bed: Option<String>) -> ();
    end_audio_pause(bed: Option<String>) -> ();
    list_devices() -> Vec<station_admin::DeviceRow>;
    register_device(device: String, bed: String, label: String) -> ();
    remove_device(device: String) -> ();
    ward_settings() -> station_admin::WardSettingsOut;
    set_ward_profile(profile: String) -> ();
    set_latch_high(on: bool) -> ();
    set_nurses_acknowledge(on: bool) -> ();
    set_alarm_volume(percent: i64) -> u8;
    set_standby(bed: String, on: bool) -> ();
    set_latching(code: String, latching: bool) -> ();
    broker_settings() -> station_admin::BrokerOut;
    test_broker(url: String) -> String;
    security_events(filter: vigil_core::security::SecurityFilter) -> security::SecurityOut;
    security_acknowledge(id: i64, note: String) -> vigil_core::security::SecurityEvent;
    security_export_csv(filter: vigil_core::security::SecurityFilter) -> String;
    save_broker(url: Option<String>, ward: Option<String>) -> String;
    bed_limits(bed: String) -> Vec<detail::LimitOut>;
    set_bed_limits(bed: String, changes: Vec<detail::ThresholdChange>) -> Vec<detail::LimitOut>;
    trend(bed: String, vital: String, from_ms: i64, to_ms: i64, buckets: u32) -> detail::TrendOut;
    samples(bed: String, channel: String, from_ms: i64, to_ms: i64) -> detail::SamplesOut;
    alarm_history(bed: String, from_ms: i64, to_ms: i64) -> Vec<detail::AlarmHistoryOut>;
    list_patients() -> Vec<detail::PatientOut>;
    print_strip(bed: String, alarm_id: String, onset_ms: i64, reason: String) -> reports::PrintOut;
    print_trend(bed: String, from_ms: i64, to_ms: i64, interval_ms: i64, reason: String) -> reports::PrintOut;
    print_shift(ward: String, from_ms: i64, to_ms: i64, reason: String) -> reports::PrintOut;
    export_data(request: reports::ExportIn) -> reports::ExportOut;
    admit_patient(bed: String, patient: detail::AdmitIn) -> detail::PatientOut;
    discharge_patient(bed: String) -> detail::PatientOut;
    transfer_patient(from_bed: String, to_bed: String) -> detail::PatientOut;
    remote_worklist(escalated_only: bool) -> Vec<remote::WorkRowOut>;
    remote_record(bed: String, days: u32) -> remote::RemoteRecordOut;
    remote_review(bed: String, action: String, note: String) -> remote::ReviewOut;
    remote_message(bed: String, text: String) -> remote::MessageOut;
    remote_record_open(bed: String) -> i64;
    remote_record_close(view: i64) -> i64;
}

/// Collects the declaration of every type reached from the roots, once each, by TypeScript name.
struct Collect<'a> {
    cfg: &'a Config,
    seen: HashSet<TypeId>,
    decls: BTreeMap<String, String>,
}

impl Collect<'_> {
    /// Declares `T` (if it is a declared type) and everything it contains; its TypeScript name.
    fn root<T: TS + 'static + ?Sized>(&mut self) -> String {
        self.visit::<T>();
        T::visit_generics(self);
        T::name(self.cfg)
    }
}

impl TypeVisitor for Collect<'_> {
    fn visit<T: TS + 'static + ?Sized>(&mut self) {
        // Primitives and containers have no declaration of their own.
        if T::output_path().is_none() || !self.seen.insert(TypeId::of::<T>()) {
            return;
        }
        let name = T::ident(self.cfg);
        let decl = format!(
            "{}export {}",
            T::docs().unwrap_or_default(),
            one_field_a_line(&T::decl(self.cfg))
        );
        let other = self.decls.insert(name.clone(), decl);
        assert!(
            other.is_none(),
            "two Rust types are named {name} in TypeScript: give one a #[ts(rename = \"...\")]"
        );
        T::visit_dependencies(self);
    }
}

/// ts-rs writes an object type on one line (`type T = { a: A, /** doc */ b: B, };`): one field a
/// line instead, each under its doc comment, so that a change shows as the lines it changes.
fn one_field_a_line(decl: &str) -> String {
    let Some((head, mut rest)) = decl
        .split_once(" = { ")
        .and_then(|(head, body)| Some((head, body.strip_suffix(" };")?)))
    else {
        return decl.to_string();
    };
    let mut out = format!("{head} = {{\n");
    loop {
        rest = rest.trim_start();
        if rest.is_empty() {
            break;
        }
        if let Some(doc) = rest.strip_prefix("/**") {
            let end = doc.find("*/").expect("a doc comment ends");
            for line in format!("/**{}*/", &doc[..end]).lines() {
                out.push_str(&format!("  {}\n", line.trim_end()));
            }
            rest = &doc[end + 2..];
            continue;
        }
        let (field, after) = balanced(rest, ',');
        out.push_str(&format!("  {},\n", field.trim()));
        rest = after;
    }
    out.push_str("};");
    out
}

/// Tauri's argument names: `from_ms` is sent as `fromMs`.
fn camel(name: &str) -> String {
    let mut out = String::new();
    let mut up = false;
    for c in name.chars() {
        match c {
            '_' => up = true,
            c if up => {
                out.extend(c.to_uppercase());
                up = false;
            }
            c => out.push(c),
        }
    }
    out
}

fn header() -> String {
    format!(
        "// GENERATED by src-tauri/src/bindings.rs (ts-rs) from the Rust types of the window's \
         commands and\n// frames. Do not edit: change the Rust types, then regenerate with\n\
         //   {REGENERATE}\n// `cargo test --workspace` (scripts/test.sh) fails while this \
         file differs from the Rust types.\n"
    )
}

/// The `Commands` map: each command's arguments and result, for `ui/src/api.ts`.
fn commands_decl(commands: &[Command]) -> String {
    let mut out = String::from(
        "/**\n * Every command of the window: the arguments `invoke` passes (camelCase, as Tauri \
         takes them)\n * and what it resolves to; it rejects with an `ApiError`. The live \
         ward comes on the channel\n * of `subscribe_ward` instead, as binary frames whose \
         JSON part is a `Frame`.\n */\nexport type Commands = {\n",
    );
    for c in commands {
        let args = if c.args.is_empty() {
            "Record<string, never>".to_string()
        } else {
            let fields: Vec<String> = c
                .args
                .iter()
                .map(|a| format!("{}: {}", camel(a.name), a.ts))
                .collect();
            format!("{{ {} }}", fields.join(", "))
        };
        out.push_str(&format!(
            "  {}: {{ args: {args}; result: {} }};\n",
            c.name, c.result
        ));
    }
    out.push_str("};\n");
    out
}

/// The file's declarations, by name (`Commands` included).
fn render() -> BTreeMap<String, String> {
    let cfg = config();
    let mut c = Collect {
        cfg: &cfg,
        seen: HashSet::new(),
        decls: BTreeMap::new(),
    };
    let commands = command_table(&mut c);
    c.root::<ApiError>();
    c.root::<Frame>();
    let mut decls: BTreeMap<String, String> = c
        .decls
        .into_iter()
        .map(|(name, decl)| (name, format!("{decl}\n")))
        .collect();
    assert!(
        decls
            .insert("Commands".into(), commands_decl(&commands))
            .is_none(),
        "a Rust type is named Commands in TypeScript"
    );
    decls
}

fn file_text(decls: &BTreeMap<String, String>) -> String {
    let mut out = header();
    for decl in decls.values() {
        out.push('\n');
        out.push_str(decl);
    }
    out
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

/// The names declared in a bindings file (`export type Name`).
fn declared_names(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter_map(|l| l.strip_prefix("export type "))
        .filter_map(|l| l.split([' ', '<']).next())
        .map(str::to_string)
        .collect()
}

#[test]
fn bindings_are_current() {
    let decls = render();
    let want = file_text(&decls);
    let path = root().join(FILE);
    if std::env::var_os("VIGIL_WRITE_BINDINGS").is_some_and(|v| v == "1") {
        std::fs::create_dir_all(path.parent().expect("a parent")).expect("create ui/src/bindings");
        std::fs::write(&path, &want).expect("write the bindings");
        eprintln!("wrote {} ({} declarations)", path.display(), decls.len());
        return;
    }
    let have = std::fs::read_to_string(&path).unwrap_or_default();
    if have == want {
        return;
    }
    let stale: Vec<&str> = decls
        .iter()
        .filter(|(_, decl)| !have.contains(decl.as_str()))
        .map(|(name, _)| name.as_str())
        .collect();
    let gone: Vec<String> = declared_names(&have)
        .into_iter()
        .filter(|n| !decls.contains_key(n))
        .collect();
    let mut what = Vec::new();
    if !stale.is_empty() {
        what.push(format!("changed or new: {}", stale.join(", ")));
    }
    if !gone.is_empty() {
        what.push(format!("no longer generated: {}", gone.join(", ")));
    }
    if what.is_empty() {
        what.push("its header or layout differs".into());
    }
    panic!(
        "{FILE} is out of date with the Rust types ({}).\nRegenerate it with\n    {REGENERATE}\n\
         then fix the UI where `npm run check` says it no longer fits.",
        what.join("; ")
    );
}

/// The UI's TypeScript outside the generated file.
fn ui_sources(dir: &Path, out: &mut String) {
    for entry in std::fs::read_dir(dir).expect("read ui/src") {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            if path.file_name().is_some_and(|n| n != "bindings") {
                ui_sources(&path, out);
            }
        } else if path.extension().is_some_and(|e| e == "ts") {
            out.push_str(&read(&path));
            out.push('\n');
        }
    }
}

/// `text` without its comments (a name in a comment is no use of it).
fn code_of(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(i) = rest.find("/*").into_iter().chain(rest.find("//")).min() {
        out.push_str(&rest[..i]);
        let (end, skip) = if rest[i..].starts_with("/*") {
            (rest[i..].find("*/"), 2)
        } else {
            (rest[i..].find('\n'), 0)
        };
        rest = end.map_or("", |e| &rest[i + e + skip..]);
    }
    out.push_str(rest);
    out
}

fn mentions(text: &str, word: &str) -> bool {
    text.match_indices(word).any(|(i, _)| {
        let ident = |c: char| c.is_alphanumeric() || c == '_' || c == '$';
        !text[..i].ends_with(ident) && !text[i + word.len()..].starts_with(ident)
    })
}

/// No declaration goes unused: each is named by the UI's code, or by a declaration that is.
#[test]
fn every_declaration_is_used() {
    let decls = render();
    let mut ui = String::new();
    ui_sources(&root().join("ui/src"), &mut ui);
    let ui = code_of(&ui);
    let code: BTreeMap<&String, String> = decls.iter().map(|(n, d)| (n, code_of(d))).collect();
    let mut used: BTreeSet<&String> = decls.keys().filter(|n| mentions(&ui, n)).collect();
    let mut todo: Vec<&String> = used.iter().copied().collect();
    while let Some(user) = todo.pop() {
        for name in decls.keys() {
            if !used.contains(name) && mentions(&code[user], name) {
                used.insert(name);
                todo.push(name);
            }
        }
    }
    let unused: Vec<&String> = decls.keys().filter(|n| !used.contains(n)).collect();
    assert!(
        unused.is_empty(),
        "{FILE} declares {unused:?}, which nothing in ui/src uses: import them where the UI \
         handles that data (ui/src/api.ts calls the commands through `Commands`), or take the \
         type off the roots in src-tauri/src/bindings.rs"
    );
}

/// Whitespace-free text, to compare types as written with `stringify!`'s.
fn squash(s: &str) -> String {
    s.chars().filter(|c| !c.is_whitespace()).collect()
}

/// The text up to the first `close` outside brackets, and what follows it.
fn balanced(s: &str, close: char) -> (&str, &str) {
    let mut depth = 0usize;
    for (i, c) in s.char_indices() {
        match c {
            '(' | '<' | '[' | '{' => depth += 1,
            ')' | '>' | ']' | '}' if depth > 0 => depth -= 1,
            c if c == close => return (&s[..i], &s[i + 1..]),
            _ => {}
        }
    }
    panic!("unbalanced signature: {s}")
}

/// Commas outside brackets.
fn top_level_split(s: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut depth, mut start) = (0usize, 0);
    for (i, c) in s.char_indices() {
        match c {
            '(' | '<' | '[' => depth += 1,
            ')' | '>' | ']' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => {
                parts.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&s[start..]);
    parts.into_iter().filter(|p| !p.trim().is_empty()).collect()
}

/// The `#[tauri::command]` functions of `src`: name → (window arguments `name:Type`, `Ok` type),
/// whitespace removed. Those of the `commands!` macro are in [`commands::DECLARED`] instead (its
/// own `#[tauri::command]`, of `$name`, is passed over).
fn signatures(src: &str) -> BTreeMap<String, (Vec<String>, String)> {
    let mut out = BTreeMap::new();
    for (at, _) in src.match_indices("#[tauri::command]") {
        let rest = &src[at..];
        let rest = &rest[rest.find("fn ").expect("a command is a fn") + 3..];
        let open = rest.find('(').expect("a parameter list");
        let name = rest[..open].trim().to_string();
        if name.starts_with('$') {
            continue;
        }
        let (params, after) = balanced(&rest[open + 1..], ')');
        let args = top_level_split(params)
            .into_iter()
            .map(squash)
            .filter(|p| {
                let ty = p.split_once(':').map_or("", |(_, t)| t);
                !(ty.contains("State<") || ["St<'_>", "Engine<'_>", "Channel"].contains(&ty))
            })
            .collect();
        let ret = squash(&after[..after.find('{').expect("a body")]);
        let ok = ret
            .strip_prefix("->Result<")
            .and_then(|r| r.strip_suffix(",ApiError>"))
            .unwrap_or_else(|| panic!("command {name} does not return Result<_, ApiError>: {ret}"))
            .to_string();
        out.insert(name, (args, ok));
    }
    out
}

/// The table above lists exactly the registered commands, with their real signatures.
#[test]
fn command_table_matches_the_commands() {
    let main = read(&root().join("src-tauri/src/main.rs"));
    let handler = &main[main
        .find("generate_handler![")
        .expect("main.rs registers its commands")..];
    let handler = &handler[..handler.find(']').expect("the end of generate_handler!")];
    let registered: BTreeSet<String> = handler["generate_handler![".len()..]
        .split(',')
        .map(|n| n.trim().rsplit("::").next().unwrap_or("").to_string())
        .filter(|n| !n.is_empty() && n != CHANNEL_COMMAND)
        .collect();
    let mut c = Collect {
        cfg: &config(),
        seen: HashSet::new(),
        decls: BTreeMap::new(),
    };
    let table = command_table(&mut c);
    let listed: BTreeSet<String> = table.iter().map(|c| c.name.to_string()).collect();
    let fix = "update command_table! in src-tauri/src/bindings.rs, then regenerate with";
    let unlisted: Vec<&String> = registered.difference(&listed).collect();
    let unregistered: Vec<&String> = listed.difference(&registered).collect();
    assert!(
        unlisted.is_empty() && unregistered.is_empty(),
        "commands in generate_handler! but not in command_table!: {unlisted:?}; in \
         command_table! but not registered: {unregistered:?}. {fix}\n    {REGENERATE}"
    );
    let mut source = signatures(&read(&root().join("src-tauri/src/commands/mod.rs")));
    for (name, args, ok) in commands::DECLARED {
        let args = args.iter().map(|a| squash(a)).collect();
        let other = source.insert(name.to_string(), (args, squash(ok)));
        assert!(other.is_none(), "command {name} is declared twice");
    }
    for cmd in &table {
        let (args, ok) = source
            .get(cmd.name)
            .unwrap_or_else(|| panic!("no #[tauri::command] fn {} in commands/mod.rs", cmd.name));
        let listed: Vec<String> = cmd
            .args
            .iter()
            .map(|a| squash(&format!("{}: {}", a.name, a.rust)))
            .collect();
        assert_eq!(
            (args, ok),
            (&listed, &squash(cmd.result_rust)),
            "command {} is declared (left) otherwise than command_table! says (right): {fix}\n    {REGENERATE}",
            cmd.name
        );
    }
}

/// The strings of a TypeScript union of string literals (`"a" | "b"`).
fn members(union: &str) -> Vec<String> {
    union
        .split(" | ")
        .map(|m| m.trim_matches('"').to_string())
        .collect()
}

/// The fields that carry an engine enum as its `as_str` are declared as that enum: its
/// TypeScript union (one string a variant) must be exactly those strings, and so must its JSON
/// where it has one.
#[test]
fn enums_sent_as_strings_declare_their_strings() {
    use vigil_core::alarms::news2::Band;
    use vigil_core::alarms::{AlarmState, Priority};

    /// Each member names a variant whose `as_str` it is, no two the same variant: as ts-rs
    /// writes one member a variant, the union is then exactly the `as_str` strings.
    fn same_strings<E: TS + Copy + PartialEq + std::fmt::Debug>(
        cfg: &Config,
        parse: fn(&str) -> Option<E>,
        as_str: fn(E) -> &'static str,
    ) -> Vec<E> {
        let mut seen = Vec::new();
        for m in members(&E::inline(cfg)) {
            let v = parse(&m).unwrap_or_else(|| panic!("{m:?} names no {}", E::ident(cfg)));
            assert_eq!(as_str(v), m, "{} declares {m:?} for {v:?}", E::ident(cfg));
            assert!(!seen.contains(&v), "{m:?} twice in {}", E::ident(cfg));
            seen.push(v);
        }
        seen
    }
    let cfg = config();
    same_strings(&cfg, AlarmState::parse, AlarmState::as_str);
    // Priority is also serialised (the alarm history's `priority`): as `as_str`.
    for p in same_strings(&cfg, Priority::parse, Priority::as_str) {
        assert_eq!(serde_json::to_value(p).expect("serialises"), p.as_str());
    }
    // Band's declaration follows its serde names; those must be `as_str` (a new variant fails to
    // compile here).
    let bands = [
        Band::Zero,
        Band::Low,
        Band::LowMedium,
        Band::Medium,
        Band::High,
    ];
    for b in bands {
        match b {
            Band::Zero | Band::Low | Band::LowMedium | Band::Medium | Band::High => {}
        }
        assert_eq!(serde_json::to_value(b).expect("serialises"), b.as_str());
    }
    assert_eq!(
        members(&Band::inline(&cfg)),
        bands.map(|b| b.as_str().to_string())
    );
}

//! Where settings come from and which one wins: the command line, then `RUSTGUN_CMD_ARGS`, then the
//! TOML file named by `-c/--config`, then the environment defaults clap knows (`WEB_CONCURRENCY`,
//! `FORWARDED_ALLOW_IPS`), then the built-in defaults.
//!
//! Every source is parsed by the same clap command (the file is first turned into arguments, one
//! `--key=value` per key), so a value means the same wherever it is written and is checked by the same
//! parser. The merge then takes each setting, whole, from the strongest source that gave it
//! ([`clap::ArgMatches::value_source`] tells given from defaulted), writes the winners out as one
//! argument list and parses that into the [`Config`]. A repeatable option such as `bind` is replaced,
//! not extended, by a stronger source.
//!
//! [`load`] is the whole of it; the master calls it at start and again on HUP. [`Config::to_toml`]
//! prints the effective settings as a file [`load`] reads back to the same configuration.

use super::{Config, pyfile};
use crate::app::python::{Interface, PythonApp, PythonAppError, ServerSide};
use clap::parser::ValueSource;
use clap::{Arg, ArgMatches, Command, CommandFactory, FromArgMatches};
use std::ffi::{OsStr, OsString};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// The environment variable holding extra arguments, parsed like a shell would split them.
pub const ENV_ARGS: &str = "RUSTGUN_CMD_ARGS";

/// Options that act rather than configure: given on the command line (or in `RUSTGUN_CMD_ARGS`),
/// never in a config file, never printed by `--print-config`.
const ACTIONS: &[&str] = &["help", "version", "config", "check_config", "print_config"];

/// Why the configuration could not be loaded. Everything except [`ConfigError::CommandLine`] displays
/// as one line naming where the fault is; the binary exits with status 2 for all of them.
#[derive(Debug)]
pub enum ConfigError {
    /// The command line is wrong, or asks for `--help` / `--version`: clap prints it (`exit()`).
    CommandLine(clap::Error),
    /// `RUSTGUN_CMD_ARGS` has unbalanced quotes or a bad option or value.
    Env { message: String },
    /// The config file cannot be read.
    Read { file: PathBuf, error: std::io::Error },
    /// The config file is not valid TOML.
    Syntax { file: PathBuf, line: usize, message: String },
    /// A key that is no option's long name.
    UnknownKey { file: PathBuf, key: String },
    /// A key naming an action (`config`, `print-config`, …), which only the command line may give.
    NotASetting { file: PathBuf, key: String },
    /// A key whose value has the wrong type, or that its option's parser refuses.
    BadValue { file: PathBuf, key: String, message: String },
    /// Settings that are fine one by one but not together (e.g. `proxy-protocol` with `certfile`).
    Conflict { message: String },
    /// A Python app named by its module that cannot be served: no bridge, or it does not import.
    PythonApp(PythonAppError),
    /// The Python to read a Python config file with cannot be run.
    Python { file: PathBuf, python: PathBuf, error: std::io::Error },
    /// A Python config file raised, or printed nothing readable.
    PythonFile { file: PathBuf, reason: String },
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::CommandLine(e) => write!(f, "{}", first_line(e)),
            ConfigError::Env { message } => write!(f, "{ENV_ARGS}: {message}"),
            ConfigError::Read { file, error } => {
                write!(f, "cannot read config file {}: {error}", file.display())
            }
            ConfigError::Syntax { file, line, message } => {
                write!(f, "config file {}, line {line}: {message}", file.display())
            }
            ConfigError::UnknownKey { file, key } => {
                write!(
                    f,
                    "config file {}: unknown key `{key}` (keys are the long option names)",
                    file.display()
                )
            }
            ConfigError::NotASetting { file, key } => write!(
                f,
                "config file {}: key `{key}` is an action, not a setting: give it on the command line",
                file.display()
            ),
            ConfigError::BadValue { file, key, message } => {
                write!(f, "config file {}: key `{key}`: {message}", file.display())
            }
            ConfigError::Conflict { message } => write!(f, "{message}"),
            ConfigError::PythonApp(e) => write!(f, "{e}"),
            ConfigError::Python { file, python, error } => {
                write!(f, "cannot run {} to read config file {}: {error}", python.display(), file.display())
            }
            ConfigError::PythonFile { file, reason } => {
                write!(f, "config file {}: {reason}", file.display())
            }
        }
    }
}

impl std::error::Error for ConfigError {}

/// Loads the configuration from `argv` (the program name first), `RUSTGUN_CMD_ARGS` and the config
/// file, strongest first. A relative `-c FILE` is read from the directory the first call ran in, so
/// a reload after `--chdir` reads the same file.
pub fn load<I, T>(argv: I) -> Result<Config, ConfigError>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString>,
{
    let argv: Vec<OsString> = argv.into_iter().map(Into::into).collect();
    let program = argv.first().cloned().unwrap_or_else(|| "rustgun".into());
    let cmd = source_command();
    let cli = cmd.clone().try_get_matches_from(&argv).map_err(ConfigError::CommandLine)?;
    let env = match std::env::var(ENV_ARGS) {
        Ok(text) => Some(env_matches(&cmd, &program, &text)?),
        Err(_) => None,
    };
    // gunicorn reads ./gunicorn.conf.py when no -c names a file.
    let file = [Some(&cli), env.as_ref()]
        .into_iter()
        .flatten()
        .find_map(|m| m.get_one::<PathBuf>("config"))
        .map(|path| pyfile::source(path, start_dir()))
        .or_else(|| Some(start_dir().join(pyfile::DEFAULT_FILE)).filter(|p| p.is_file()));
    let mut hooks = Vec::new();
    let file_matches = match file.as_deref() {
        Some(path) if pyfile::is_python(path) => {
            let read = pyfile::read(path, &crate::app::python::interpreter(), start_dir())?;
            hooks = read.hooks;
            Some(table_matches(&cmd, &program, path, &read.table)?)
        }
        Some(path) => Some(file_matches(&cmd, &program, path)?),
        None => None,
    };

    // Strongest first; each setting is taken whole from the first source that gave it.
    let sources: Vec<&ArgMatches> =
        [Some(&cli), env.as_ref(), file_matches.as_ref()].into_iter().flatten().collect();
    let mut merged = vec![program];
    let mut positional = Vec::new();
    let mut trailing = Vec::new();
    for arg in cmd.get_arguments() {
        let id = arg.get_id().as_str();
        let Some(source) = sources.iter().find(|m| m.value_source(id) == Some(ValueSource::CommandLine))
        else {
            continue;
        };
        let raw: Vec<OsString> = source.get_raw(id).into_iter().flatten().map(OsStr::to_os_string).collect();
        if arg.is_last_set() {
            trailing = raw;
        } else if arg.is_positional() {
            positional.extend(raw);
        } else if let Some(long) = arg.get_long() {
            if arg.get_action().takes_values() {
                merged.extend(raw.iter().map(|v| option_token(long, v)));
            } else {
                merged.push(format!("--{long}").into());
            }
        }
    }
    // gunicorn's --paste names the app: it stands where APP would, as `paste:FILE` (an APP given
    // beside it is not used, as in gunicorn).
    if let Some(file) = sources.iter().find_map(|m| m.get_one::<String>("paste")) {
        positional = vec![format!("paste:{}", start_dir().join(file).display()).into()];
    }
    merged.extend(positional);
    if !trailing.is_empty() {
        merged.push("--".into());
        merged.extend(trailing);
    }
    // Every source parsed alone above, so only a missing app or a combination can fail here.
    let matches = final_command().try_get_matches_from(&merged).map_err(|e| {
        if e.kind() == clap::error::ErrorKind::MissingRequiredArgument {
            ConfigError::CommandLine(e)
        } else {
            ConfigError::Conflict { message: first_line(&e) }
        }
    })?;
    let mut config = Config::from_arg_matches(&matches).map_err(ConfigError::CommandLine)?;
    config.apply_uvicorn_spellings().map_err(|message| ConfigError::Conflict { message })?;
    let python = PythonApp::named(&config.app);
    let bridge_only = config.factory
        || config.lifespan.is_some()
        || config.gunicorn.pythonpath.is_some()
        || config.gunicorn.asgi_lifespan.is_some()
        || config.gunicorn.asgi_loop.is_some()
        || config.gunicorn.asgi_disconnect_grace_period.is_some();
    if python.is_none() && bridge_only {
        let message = "--factory, --lifespan, --pythonpath and --asgi-* are for a Python app named by its module (main:app); after `--` for a bridge named".to_string();
        return Err(ConfigError::Conflict { message });
    }
    if let Some(python) = python {
        let dir = start_dir().join(config.chdir.as_deref().unwrap_or(Path::new(".")));
        let server = ServerSide {
            factory: config.factory,
            lifespan: config.lifespan.as_deref().or(config.gunicorn.asgi_lifespan.as_deref()),
            root_path: &config.root_path,
            pythonpath: config.gunicorn.pythonpath.as_deref(),
            asgi_loop: config.gunicorn.asgi_loop.as_deref(),
            asgi_grace: config.gunicorn.asgi_disconnect_grace_period,
            paste_global: &config.gunicorn.paste_global,
        };
        let (interface, app, args) = python
            .resolve(config.interface, &config.app_args, &server, &dir)
            .map_err(ConfigError::PythonApp)?;
        (config.app, config.app_args) = (app, args);
        // An ASGI app's mount point went to its bridge (uvicorn's root_path): the server leaves the
        // path whole.
        if interface == Interface::Asgi {
            config.root_path.clear();
        }
        // An ASGI app runs on the event loop: that is its class unless one was asked for.
        if interface == Interface::Asgi
            && matches.value_source("worker_class") != Some(ValueSource::CommandLine)
        {
            config.worker_class = super::WorkerClass::Event;
        }
    }
    // --reload for a Python app: each worker watches the modules it imported (the bridge's option).
    if config.reload
        && crate::app::python::is_bridge(&config.app)
        && !config.app_args.iter().any(|a| a == "--reload")
    {
        config.app_args.insert(0, "--reload".to_string());
    }
    if !hooks.is_empty()
        && let Some(file) = &file
    {
        config.hooks = Some(hooks_spec(&config, file, hooks)?);
    }
    config.config = file;
    config.effective = merged;
    config.resolve_identity().map_err(|e| ConfigError::Conflict { message: e.to_string() })?;
    Ok(config)
}

/// The command each source is parsed with: the app is optional (it may come from another source; its
/// explicit index keeps it first when `mut_arg` moves it to the end of the list), a
/// repeated option keeps its last value, and no environment default is read (those rank below the
/// file, in the final parse).
fn source_command() -> Command {
    let mut cmd = Config::command()
        .args_override_self(true)
        .mut_arg("app", |a| a.required(false))
        .mut_args(|a| a.env(None));
    cmd.build();
    cmd
}

fn final_command() -> Command {
    Config::command().args_override_self(true)
}

/// The directory rustgun started in (that of the first [`load`], before `--chdir`): a relative `-c FILE`
/// is read from it, and a binary upgrade starts the new master there.
pub fn start_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| std::env::current_dir().unwrap_or_default())
}

fn env_matches(cmd: &Command, program: &OsStr, text: &str) -> Result<ArgMatches, ConfigError> {
    let words = shlex::split(text)
        .ok_or_else(|| ConfigError::Env { message: "unbalanced quotes or a trailing backslash".into() })?;
    let argv = std::iter::once(program.to_os_string()).chain(words.into_iter().map(OsString::from));
    cmd.clone().try_get_matches_from(argv).map_err(|e| ConfigError::Env { message: first_line(&e) })
}

/// Where the master runs the hooks of `file`: the Python app's own bridge (so a worker has one
/// interpreter), else the bundled WSGI bridge; with the app's `sys.path`.
fn hooks_spec(
    config: &Config,
    file: &Path,
    names: Vec<String>,
) -> Result<crate::app::hooks::Spec, ConfigError> {
    let source = file.display().to_string();
    let bridge = if crate::app::python::is_bridge(&config.app) {
        config.app.path.clone()
    } else {
        crate::app::python::hooks_bridge(&source).map_err(ConfigError::PythonApp)?
    };
    let mut args = Vec::new();
    let paths = crate::app::python::pythonpath(&config.app_args);
    if !paths.is_empty() {
        args.extend(["--pythonpath".to_string(), paths.join(",")]);
    }
    if let Some(venv) = crate::app::python::venv() {
        args.extend(["--venv".to_string(), venv.display().to_string()]);
    }
    args.push(source);
    Ok(crate::app::hooks::Spec { bridge, args, names })
}

/// Reads the TOML file and parses it as the arguments it stands for ([`table_matches`]).
fn file_matches(cmd: &Command, program: &OsStr, file: &Path) -> Result<ArgMatches, ConfigError> {
    let text =
        std::fs::read_to_string(file).map_err(|error| ConfigError::Read { file: file.into(), error })?;
    let table: toml::Table = text.parse().map_err(|e: toml::de::Error| ConfigError::Syntax {
        file: file.into(),
        line: e.span().map_or(1, |s| text[..s.start.min(text.len())].matches('\n').count() + 1),
        message: e.message().replace('\n', " "),
    })?;
    table_matches(cmd, program, file, &table)
}

/// Parses a config file's settings as the arguments they stand for, checking each key on its own
/// first so an error names the key at fault.
fn table_matches(
    cmd: &Command,
    program: &OsStr,
    file: &Path,
    table: &toml::Table,
) -> Result<ArgMatches, ConfigError> {
    let mut options = vec![program.to_os_string()];
    let mut positional = Vec::new();
    let mut trailing = Vec::new();
    let python = pyfile::is_python(file);
    for (key, value) in table {
        // gunicorn skips the names of a Python file that are no setting; TOML keys must be options.
        let Some(arg) = find_arg(cmd, key) else {
            if python {
                continue;
            }
            return Err(ConfigError::UnknownKey { file: file.into(), key: key.clone() });
        };
        if ACTIONS.contains(&arg.get_id().as_str()) {
            return Err(ConfigError::NotASetting { file: file.into(), key: key.clone() });
        }
        let bad = |message: String| ConfigError::BadValue { file: file.into(), key: key.clone(), message };
        let values = file_values(arg, value).map_err(|e| bad(e.to_string()))?;
        let tokens: Vec<OsString> = match arg.get_long() {
            Some(long) if arg.get_action().takes_values() => {
                values.iter().map(|v| option_token(long, OsStr::new(v))).collect()
            }
            Some(long) => values.iter().map(|_| format!("--{long}").into()).collect(),
            None => values.into_iter().map(OsString::from).collect(),
        };
        let mut alone = vec![program.to_os_string()];
        if arg.is_last_set() {
            alone.push("--".into());
        }
        alone.extend(tokens.iter().cloned());
        cmd.clone().try_get_matches_from(alone).map_err(|e| bad(value_message(&e)))?;
        if arg.is_last_set() {
            trailing.extend(tokens);
        } else if arg.is_positional() {
            positional.extend(tokens);
        } else {
            options.extend(tokens);
        }
    }
    options.extend(positional);
    if !trailing.is_empty() {
        options.push("--".into());
        options.extend(trailing);
    }
    cmd.clone().try_get_matches_from(options).map_err(|e| ConfigError::Conflict {
        message: format!("config file {}: {}", file.display(), first_line(&e)),
    })
}

/// The option a file key names: its long name or an alias, with `_` and `-` alike; the positionals
/// are `app` and `app-args`.
fn find_arg<'a>(cmd: &'a Command, key: &str) -> Option<&'a Arg> {
    let key = key.replace('_', "-");
    let same = |name: &str| name.replace('_', "-") == key;
    cmd.get_arguments().find(|arg| {
        if arg.is_positional() {
            same(arg.get_id().as_str())
        } else {
            arg.get_long().is_some_and(same) || arg.get_all_aliases().into_iter().flatten().any(same)
        }
    })
}

/// The values a TOML value stands for: a flag takes `true` (one value) or `false` (none); a
/// repeatable option or `app-args` a string or an array; any other option one string or number.
fn file_values<'v>(arg: &Arg, value: &'v toml::Value) -> Result<Vec<String>, ValueError<'v>> {
    let repeatable = arg.is_last_set() || matches!(arg.get_action(), clap::ArgAction::Append);
    if !arg.get_action().takes_values() && !arg.is_positional() {
        return match value {
            toml::Value::Boolean(true) => Ok(vec!["true".into()]),
            toml::Value::Boolean(false) => Ok(Vec::new()),
            other => Err(ValueError::NotABool(other)),
        };
    }
    match value {
        toml::Value::Array(items) if repeatable => items.iter().map(scalar).collect(),
        toml::Value::Array(_) => Err(ValueError::Array),
        other => Ok(vec![scalar(other)?]),
    }
}

fn scalar(value: &toml::Value) -> Result<String, ValueError<'_>> {
    match value {
        toml::Value::String(s) => Ok(s.clone()),
        toml::Value::Integer(i) => Ok(i.to_string()),
        toml::Value::Float(x) => Ok(x.to_string()),
        other => Err(ValueError::NotScalar(other)),
    }
}

/// Why a key's TOML value does not fit its option ([`file_values`]).
enum ValueError<'v> {
    /// A flag's value is not `true` or `false`.
    NotABool(&'v toml::Value),
    /// An array for an option that takes one value.
    Array,
    /// A value (or an array's item) is not a string or a number.
    NotScalar(&'v toml::Value),
}

impl fmt::Display for ValueError<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ValueError::NotABool(other) => write!(f, "expected true or false, found {}", describe(other)),
            ValueError::Array => f.write_str("expected one value, found an array"),
            ValueError::NotScalar(other) => {
                write!(f, "expected a string or a number, found {}", describe(other))
            }
        }
    }
}

fn describe(value: &toml::Value) -> String {
    match value {
        toml::Value::String(s) => format!("the string {s:?}"),
        toml::Value::Array(_) => "an array".into(),
        toml::Value::Table(_) => "a table".into(),
        other => format!("`{other}`"),
    }
}

/// `--long=value`: one token, so a value starting with `-` is never taken for an option.
fn option_token(long: &str, value: &OsStr) -> OsString {
    let mut token = OsString::from(format!("--{long}="));
    token.push(value);
    token
}

/// clap's error without the `error: ` prefix, the usage and the help hint.
fn first_line(e: &clap::Error) -> String {
    let text = e.render().to_string();
    let line = text.lines().next().unwrap_or_default();
    line.strip_prefix("error: ").unwrap_or(line).to_string()
}

/// What is wrong with one value: the parser's reason when there is one.
fn value_message(e: &clap::Error) -> String {
    use clap::error::{ContextKind, ContextValue};
    let value = match e.get(ContextKind::InvalidValue) {
        Some(ContextValue::String(v)) => v.clone(),
        _ => return first_line(e),
    };
    match e.get(ContextKind::ValidValue) {
        Some(ContextValue::Strings(valid)) => {
            format!("invalid value {value:?} (expected one of: {})", valid.join(", "))
        }
        _ => match std::error::Error::source(e) {
            Some(reason) => format!("invalid value {value:?}: {reason}"),
            None => first_line(e),
        },
    }
}

impl Config {
    /// The effective settings as a TOML config file: every setting, in `--help` order, under its long
    /// option name, with its help as a comment; settings without a value are commented out. Loading
    /// the text with `-c` gives this configuration back.
    pub fn to_toml(&self) -> String {
        let matches = final_command().try_get_matches_from(&self.effective).unwrap_or_default();
        let mut out =
            String::from("# rustgun configuration (--print-config): the effective value of every setting.\n");
        let cmd = source_command();
        // The app and its arguments first, then the options in `--help` order.
        let (mut positionals, options): (Vec<&Arg>, Vec<&Arg>) =
            cmd.get_arguments().partition(|a| a.is_positional());
        positionals.sort_by_key(|a| a.get_index());
        for arg in positionals.into_iter().chain(options) {
            let id = arg.get_id().as_str();
            if ACTIONS.contains(&id) {
                continue;
            }
            let key = match arg.get_long() {
                Some(long) => long.to_string(),
                None => id.replace('_', "-"),
            };
            if let Some(help) = arg.get_help() {
                let help = help.to_string();
                out.push_str(&format!("\n# {}\n", help.lines().next().unwrap_or_default()));
            }
            let raw: Vec<String> =
                matches.get_raw(id).into_iter().flatten().map(|v| v.to_string_lossy().into_owned()).collect();
            let value = if id == "umask" {
                // Written back in octal, the way masks are read; the number itself would be decimal.
                toml::Value::String(format!("0o{:03o}", self.umask.0))
            } else if !arg.get_action().takes_values() && !arg.is_positional() {
                toml::Value::Boolean(raw.first().is_some_and(|v| v == "true"))
            } else if arg.is_last_set() || matches!(arg.get_action(), clap::ArgAction::Append) {
                toml::Value::Array(raw.iter().map(|v| typed(v)).collect())
            } else if let Some(v) = raw.first() {
                typed(v)
            } else {
                out.push_str(&format!("# {key} = (not set)\n"));
                continue;
            };
            out.push_str(&format!("{key} = {value}\n"));
        }
        out
    }
}

/// A value as TOML writes it: a number when it is one, written the same way; a string otherwise.
fn typed(raw: &str) -> toml::Value {
    match raw.parse::<i64>() {
        Ok(i) if i.to_string() == raw => toml::Value::Integer(i),
        _ => toml::Value::String(raw.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_keys_are_long_names_or_aliases_with_either_separator() {
        let cmd = source_command();
        let id = |key: &str| find_arg(&cmd, key).map(|a| a.get_id().as_str().to_string());
        assert_eq!(id("keep_alive").as_deref(), Some("keep_alive"));
        assert_eq!(id("keepalive").as_deref(), Some("keep_alive"), "a visible alias");
        assert_eq!(id("limit_request_field_size").as_deref(), Some("limit_request_field_size"));
        assert_eq!(id("pid").as_deref(), Some("pidfile"), "the long name, not the field");
        assert_eq!(id("app").as_deref(), Some("app"));
        assert_eq!(id("app_args").as_deref(), Some("app_args"));
        assert_eq!(id("pidfile"), None);
        assert_eq!(id("wokers"), None);
    }

    #[test]
    fn printed_values_are_numbers_only_when_they_read_back_the_same() {
        assert_eq!(typed("4"), toml::Value::Integer(4));
        assert_eq!(typed("-1"), toml::Value::Integer(-1));
        assert_eq!(typed("04"), toml::Value::String("04".into()));
        assert_eq!(typed("+4"), toml::Value::String("+4".into()));
        assert_eq!(typed("x"), toml::Value::String("x".into()));
    }

    #[test]
    fn the_command_line_overrides_the_file_setting_by_setting() {
        let dir = std::env::temp_dir().join(format!("rg-config-unit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("c.toml");
        std::fs::write(
            &file,
            "app = \"./libx.so:y\"\nworkers = 3\nbind = [\"unix:/tmp/a.sock\"]\npreload = true\n",
        )
        .unwrap();
        let config = load(["rustgun", "-c", file.to_str().unwrap(), "-w", "5"]).unwrap();
        assert_eq!((config.workers, config.preload), (5, true));
        assert_eq!(config.bind, ["unix:/tmp/a.sock".parse().unwrap()]);
        assert_eq!(config.app.to_string(), "./libx.so:y");
        assert_eq!(config.config.as_deref(), Some(file.as_path()));
        let _ = std::fs::remove_dir_all(&dir);
    }
}

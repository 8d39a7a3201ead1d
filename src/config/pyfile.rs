//! gunicorn's configuration file: `-c gunicorn.conf.py` (any file not ending in `.toml`),
//! `-c python:module`, or `./gunicorn.conf.py` when no `-c` is given, as gunicorn reads them.
//!
//! The file is Python, so it is run by Python: once here, in a throwaway `python` of the app's
//! environment, to read its settings (gunicorn's names, mapped to rustgun's options by
//! [`option_key`]) and which server hooks it defines; and, only when it defines hooks, once more in
//! the master's embedded interpreter, which keeps the hooks (`app::hooks`). A file without hooks
//! leaves no Python in the master. Names that are no setting (`import multiprocessing`, helpers) are
//! skipped, as gunicorn skips them.
//!
//! Not here: the TOML file, and how a file's settings rank against the command line (`sources`).

use super::sources::ConfigError;
use std::path::{Path, PathBuf};
use std::process::Command;

/// What gunicorn.conf.py says: its settings, keyed by rustgun option names, and its hooks.
pub struct PyConfig {
    pub table: toml::Table,
    pub hooks: Vec<String>,
}

/// gunicorn's default configuration file, read from the start directory when no `-c` is given.
pub const DEFAULT_FILE: &str = "gunicorn.conf.py";

/// Whether `-c` names a Python configuration: a `python:module`, or a file not ending in `.toml`.
pub fn is_python(file: &Path) -> bool {
    file.extension().is_none_or(|e| e != "toml")
}

/// `python:module` stays as it is; a path is made absolute from `dir`.
pub fn source(given: &Path, dir: &Path) -> PathBuf {
    if given.to_str().is_some_and(|s| s.starts_with("python:")) {
        given.to_path_buf()
    } else {
        dir.join(given)
    }
}

/// Runs the file in a throwaway interpreter in `dir` (`hooks.py`'s `settings`, the same loader the
/// master uses) and reads what it printed.
pub fn read(file: &Path, python: &Path, dir: &Path) -> Result<PyConfig, ConfigError> {
    let script = format!(
        "{}\nsys.path.insert(0, '.')\nsys.stdout.write(settings(sys.argv[1]))\n",
        include_str!("../../crates/rustgun-python/src/hooks.py")
    );
    let shown = file.to_path_buf();
    let out =
        Command::new(python).arg("-c").arg(script).arg(file).current_dir(dir).output().map_err(|error| {
            ConfigError::Python { file: shown.clone(), python: python.to_path_buf(), error }
        })?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        let reason = err.lines().rfind(|l| !l.trim().is_empty()).unwrap_or("it failed").to_string();
        return Err(ConfigError::PythonFile { file: shown, reason });
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let parsed: toml::Table = text.parse().map_err(|e: toml::de::Error| ConfigError::PythonFile {
        file: shown.clone(),
        reason: format!("its settings did not come back readable: {}", e.message().replace('\n', " ")),
    })?;
    let hooks = match parsed.get("hooks") {
        Some(toml::Value::Array(names)) => {
            names.iter().filter_map(|n| n.as_str().map(str::to_string)).collect()
        }
        _ => Vec::new(),
    };
    let mut table = toml::Table::new();
    if let Some(toml::Value::Table(settings)) = parsed.get("settings") {
        for (name, value) in settings {
            if REFUSED.contains(&name.as_str()) && *value != toml::Value::Boolean(false) {
                return Err(ConfigError::PythonFile {
                    file: file.to_path_buf(),
                    reason: format!("gunicorn's setting `{name}` is not supported (docs/wsgi.md says why)"),
                });
            }
            if name == "secure_scheme_headers" && !is_gunicorns_scheme_map(value) {
                return Err(ConfigError::PythonFile {
                    file: file.to_path_buf(),
                    reason: "secure_scheme_headers: rustgun reads gunicorn's default map (X-Forwarded-Proto: https, X-Forwarded-Ssl: on, X-Forwarded-Protocol: ssl) and Forwarded: proto= from trusted proxies; another map is not supported".into(),
                });
            }
            if let Some((key, value)) = option_key(name, value) {
                table.insert(key, value);
            }
        }
    }
    Ok(PyConfig { table, hooks })
}

/// gunicorn's settings rustgun refuses on purpose: by name, on the command line (as unknown options)
/// and here, and listed in docs/wsgi.md with why. `False` (their default) is let through.
const REFUSED: &[&str] = &[
    "permit_obsolete_folding",
    "strip_header_spaces",
    "permit_unconventional_http_method",
    "permit_unconventional_http_version",
    "casefold_http_method",
    "dirty_apps",
    "dirty_workers",
    "dirty_timeout",
    "dirty_threads",
    "dirty_graceful_timeout",
];

/// Whether a `secure_scheme_headers` dict is gunicorn's default, the one rustgun reads (or a part of
/// it), names compared without case.
fn is_gunicorns_scheme_map(value: &toml::Value) -> bool {
    const DEFAULT: [(&str, &str); 3] =
        [("x-forwarded-protocol", "ssl"), ("x-forwarded-proto", "https"), ("x-forwarded-ssl", "on")];
    let toml::Value::Table(map) = value else { return false };
    map.iter().all(|(name, v)| {
        DEFAULT.iter().any(|(n, want)| name.eq_ignore_ascii_case(n) && v.as_str() == Some(want))
    })
}

/// The rustgun option (and value) a gunicorn setting stands for, or `None` for settings that
/// configure nothing here (gunicorn's logging dict, its default process name, the actions).
fn option_key(name: &str, value: &toml::Value) -> Option<(String, toml::Value)> {
    use toml::Value::{Array, Boolean, Integer, String};
    let renamed = match name {
        "wsgi_app" => "app",
        "preload_app" => "preload",
        "raw_env" => "env",
        "pidfile" => "pid",
        "accesslog" => "access-logfile",
        "access_log_format" => "access-logformat",
        "errorlog" => "error-logfile",
        "loglevel" => "log-level",
        "logconfig" => "log-config",
        "syslog" => "log-syslog",
        "syslog_addr" => "log-syslog-to",
        "syslog_prefix" => "log-syslog-prefix",
        "syslog_facility" => "log-syslog-facility",
        "proc_name" => "name",
        "proxy_allow_ips" => "proxy-allow-from",
        "uwsgi_allow_ips" => "uwsgi-allow-from",
        "raw_paste_global_conf" => "paste-global",
        "dirty_apps" => "dirty-app",
        "reload_extra_files" => "reload-extra-file",
        "control_socket_disable" => "no-control-socket",
        "keepalive" => "keep-alive",
        "config"
        | "check_config"
        | "print_config"
        | "logconfig_dict"
        | "default_proc_name"
        | "secure_scheme_headers"
        | "tmp_upload_dir" => return None,
        other => other,
    };
    let value = match (name, value) {
        // gunicorn's `sendfile = False` is the command line's --no-sendfile.
        ("sendfile", Boolean(on)) => return (!on).then(|| ("no-sendfile".to_string(), Boolean(true))),
        // gunicorn's `proxy_protocol = "off"` (or False) is its default; True is auto-detection.
        ("proxy_protocol", String(off)) if off == "off" => return None,
        ("proxy_protocol", Boolean(on)) => return on.then(|| (renamed.to_string(), String("auto".into()))),
        // A mask written as a Python number (0o22) reads back in octal.
        ("umask", Integer(mask)) => String(format!("0o{mask:o}")),
        // Address lists may be Python lists; the options take them comma-separated.
        (
            "forwarded_allow_ips" | "proxy_allow_ips" | "uwsgi_allow_ips" | "forwarder_headers",
            Array(items),
        ) => String(items.iter().filter_map(|i| i.as_str()).collect::<Vec<_>>().join(",")),
        (_, other) => other.clone(),
    };
    Some((renamed.to_string(), value))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gunicorn_names_become_rustgun_options() {
        let key = |name: &str, value: toml::Value| option_key(name, &value);
        assert_eq!(key("preload_app", true.into()), Some(("preload".into(), true.into())));
        assert_eq!(key("workers", 3.into()), Some(("workers".into(), 3.into())));
        assert_eq!(key("sendfile", false.into()), Some(("no-sendfile".into(), true.into())));
        assert_eq!(key("sendfile", true.into()), None);
        assert_eq!(key("umask", 0o22.into()), Some(("umask".into(), "0o22".into())));
        let ips = toml::Value::Array(vec!["10.0.0.1".into(), "::1".into()]);
        assert_eq!(
            key("forwarded_allow_ips", ips),
            Some(("forwarded_allow_ips".into(), "10.0.0.1,::1".into()))
        );
        assert_eq!(key("logconfig_dict", "x".into()), None);
    }

    #[test]
    fn only_gunicorns_own_scheme_map_is_taken() {
        let map = |pairs: &[(&str, &str)]| {
            toml::Value::Table(pairs.iter().map(|(k, v)| (k.to_string(), toml::Value::from(*v))).collect())
        };
        assert!(is_gunicorns_scheme_map(&map(&[("X-FORWARDED-PROTO", "https"), ("X-FORWARDED-SSL", "on")])));
        assert!(!is_gunicorns_scheme_map(&map(&[("X-SCHEME", "https")])));
        assert!(!is_gunicorns_scheme_map(&map(&[("X-FORWARDED-PROTO", "http")])));
    }

    #[test]
    fn a_toml_file_is_toml_and_anything_else_python() {
        assert!(!is_python(Path::new("rustgun.toml")));
        assert!(is_python(Path::new("gunicorn.conf.py")));
        assert!(is_python(Path::new("python:myproject.conf")));
        assert!(is_python(Path::new("settings")));
    }
}

//! A bridge's arguments (everything after `--` on rustgun's command line): options first, then the
//! app reference, as in `rustgun libwsgi.so:app -- --pythonpath src myproject.wsgi:application`.

/// What the arguments say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// `--pythonpath DIR` (repeatable; a comma-separated list as in gunicorn is split too).
    pub pythonpath: Vec<String>,
    /// The app: `module:callable`, `module` or `module:factory(args)`.
    pub spec: String,
    /// `--factory` (uvicorn's): the callable the spec names is a factory, called with no arguments.
    pub factory: bool,
    /// `--reload` (the server's): the worker watches the files of every module it imported, and
    /// stops (to be replaced) when one changes, as gunicorn's workers do.
    pub reload: bool,
    /// `--venv DIR`: the virtual environment whose packages the app imports (else `VIRTUAL_ENV`). The
    /// server passes it when it runs from a venv's `bin` (`pip install rustgun`).
    pub venv: Option<String>,
    /// The bridge's own options with their values (`--name value` or `--name=value`), in order.
    pub values: Vec<(&'static str, String)>,
}

impl Options {
    /// The last value given for the bridge option `name`.
    pub fn value(&self, name: &str) -> Option<&str> {
        self.values.iter().rev().find(|(n, _)| *n == name).map(|(_, v)| v.as_str())
    }
}

/// Which bridge parses: its library's name (for the usage line) and the kind of app it serves.
#[derive(Debug, Clone, Copy)]
pub struct Bridge {
    pub library: &'static str,
    pub kind: &'static str,
    /// Options of its own that take a value, besides `--pythonpath`.
    pub options: &'static [&'static str],
}

/// Parses the bridge's arguments; the error is one line ending in the usage.
pub fn parse(args: &[String], bridge: Bridge) -> Result<Options, String> {
    let usage = format!(
        "usage: rustgun {}:app [SERVER OPTIONS] -- [--pythonpath DIR]... [--venv DIR] [--factory] MODULE[:CALLABLE | :FACTORY(ARGS)]",
        bridge.library
    );
    let usage = usage.as_str();
    let mut pythonpath = Vec::new();
    let mut values = Vec::new();
    let mut spec = None;
    let mut factory = false;
    let mut reload = false;
    let mut venv = None;
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        if arg == "--factory" {
            factory = true;
            continue;
        }
        if arg == "--reload" {
            reload = true;
            continue;
        }
        let value = if arg == "--pythonpath" {
            match it.next() {
                Some(v) => Some(v.as_str()),
                None => return Err(format!("--pythonpath needs a directory; {usage}")),
            }
        } else {
            arg.strip_prefix("--pythonpath=")
        };
        if let Some(value) = value {
            pythonpath.extend(value.split(',').filter(|p| !p.is_empty()).map(str::to_string));
            continue;
        }
        if arg == "--venv" {
            venv = Some(it.next().ok_or_else(|| format!("--venv needs a directory; {usage}"))?.clone());
            continue;
        }
        if let Some(dir) = arg.strip_prefix("--venv=") {
            venv = Some(dir.to_string());
            continue;
        }
        if let Some(name) = bridge.options.iter().find(|n| arg == *n || arg.starts_with(&format!("{n}="))) {
            let value = match arg.split_once('=') {
                Some((_, v)) => v.to_string(),
                None => it.next().ok_or_else(|| format!("{name} needs a value; {usage}"))?.clone(),
            };
            values.push((*name, value));
            continue;
        }
        if arg.starts_with('-') && arg.len() > 1 {
            return Err(format!("unknown option {arg:?}; {usage}"));
        }
        if spec.is_some() {
            return Err(format!("unexpected argument {arg:?} after the app; {usage}"));
        }
        spec = Some(arg.clone());
    }
    match spec {
        Some(spec) if !spec.is_empty() => Ok(Options { pythonpath, spec, factory, reload, venv, values }),
        _ => Err(format!("no {} app given; {usage}", bridge.kind)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WSGI: Bridge = Bridge { library: "libwsgi.so", kind: "WSGI", options: &[] };

    fn parse_wsgi(a: &[String]) -> Result<Options, String> {
        parse(a, WSGI)
    }

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn the_app_alone() {
        let o = parse_wsgi(&args(&["myproject.wsgi:application"])).unwrap();
        assert_eq!(o.spec, "myproject.wsgi:application");
        assert!(o.pythonpath.is_empty());
    }

    #[test]
    fn pythonpath_is_repeatable_in_both_spellings() {
        let o = parse_wsgi(&args(&["--pythonpath", "a", "--pythonpath=b,c", "m:create_app('x')"])).unwrap();
        assert_eq!(o.pythonpath, ["a", "b", "c"]);
        assert_eq!(o.spec, "m:create_app('x')");
        assert!(!o.factory);
        assert!(parse_wsgi(&args(&["--factory", "m:create_app"])).unwrap().factory);
    }

    #[test]
    fn venv_names_the_environment_in_both_spellings() {
        assert_eq!(parse_wsgi(&args(&["--venv", "/v", "m:app"])).unwrap().venv.as_deref(), Some("/v"));
        assert_eq!(parse_wsgi(&args(&["--venv=/w", "m:app"])).unwrap().venv.as_deref(), Some("/w"));
        assert!(parse_wsgi(&args(&["--venv"])).unwrap_err().contains("needs a directory"));
    }

    #[test]
    fn a_bridge_takes_its_own_options_in_both_spellings() {
        let asgi =
            Bridge { library: "libasgi.so", kind: "ASGI", options: &["--root-path", "--asgi-lifespan"] };
        let o = parse(&args(&["--root-path", "/api", "--asgi-lifespan=on", "main:app"]), asgi).unwrap();
        assert_eq!((o.value("--root-path"), o.value("--asgi-lifespan")), (Some("/api"), Some("on")));
        assert!(parse(&args(&["--root-path"]), asgi).unwrap_err().contains("needs a value"));
        assert!(parse_wsgi(&args(&["--root-path", "/x", "m:app"])).is_err(), "WSGI has no such option");
    }

    #[test]
    fn mistakes_are_one_line_with_the_usage() {
        for bad in [&[][..], &["--pythonpath"], &["--workers", "2", "m:app"], &["a:app", "b:app"]] {
            let e = parse_wsgi(&args(bad)).unwrap_err();
            assert!(e.contains("usage: rustgun libwsgi.so:app"), "{e}");
            assert!(!e.contains('\n'));
        }
    }
}

//! The bridge's arguments (everything after `--` on rustgun's command line): options first, then the
//! app reference, as in `rustgun libwsgi.so:app -- --pythonpath src myproject.wsgi:application`.

/// What the arguments say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// `--pythonpath DIR` (repeatable; a comma-separated list as in gunicorn is split too).
    pub pythonpath: Vec<String>,
    /// The app: `module:callable`, `module` or `module:factory(args)`.
    pub spec: String,
}

pub const USAGE: &str = "usage: rustgun libwsgi.so:app [SERVER OPTIONS] -- [--pythonpath DIR]... MODULE[:CALLABLE | :FACTORY(ARGS)]";

/// Parses the bridge's arguments; the error is one line ending in the usage.
pub fn parse(args: &[String]) -> Result<Options, String> {
    let mut pythonpath = Vec::new();
    let mut spec = None;
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let value = if arg == "--pythonpath" {
            match it.next() {
                Some(v) => Some(v.as_str()),
                None => return Err(format!("--pythonpath needs a directory; {USAGE}")),
            }
        } else {
            arg.strip_prefix("--pythonpath=")
        };
        if let Some(value) = value {
            pythonpath.extend(value.split(',').filter(|p| !p.is_empty()).map(str::to_string));
            continue;
        }
        if arg.starts_with('-') && arg.len() > 1 {
            return Err(format!("unknown option {arg:?}; {USAGE}"));
        }
        if spec.is_some() {
            return Err(format!("unexpected argument {arg:?} after the app; {USAGE}"));
        }
        spec = Some(arg.clone());
    }
    match spec {
        Some(spec) if !spec.is_empty() => Ok(Options { pythonpath, spec }),
        _ => Err(format!("no WSGI app given; {USAGE}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn the_app_alone() {
        let o = parse(&args(&["myproject.wsgi:application"])).unwrap();
        assert_eq!(o.spec, "myproject.wsgi:application");
        assert!(o.pythonpath.is_empty());
    }

    #[test]
    fn pythonpath_is_repeatable_in_both_spellings() {
        let o = parse(&args(&["--pythonpath", "a", "--pythonpath=b,c", "m:create_app('x')"])).unwrap();
        assert_eq!(o.pythonpath, ["a", "b", "c"]);
        assert_eq!(o.spec, "m:create_app('x')");
    }

    #[test]
    fn mistakes_are_one_line_with_the_usage() {
        for bad in [&[][..], &["--pythonpath"], &["--workers", "2", "m:app"], &["a:app", "b:app"]] {
            let e = parse(&args(bad)).unwrap_err();
            assert!(e.contains("usage: rustgun libwsgi.so:app"), "{e}");
            assert!(!e.contains('\n'));
        }
    }
}

//! Python apps named by their module, as gunicorn and uvicorn take them (`rustgun
//! myproject.wsgi:application`, `rustgun main:app`): served through the bridge bundled with the
//! binary, `libwsgi.so` or `libasgi.so`, as `--interface` says or, with `auto`, as the callable shows
//! (uvicorn's rule: a coroutine function, a class with `__await__`, or an object whose `__call__` is a
//! coroutine function is ASGI; anything else is WSGI).
//!
//! `auto` imports the app once, in a throwaway `python` process of the app's environment, before the
//! master starts (a reload keeps what it found); `--interface wsgi|asgi` skips that. Not here: the bridges themselves (`apps/wsgi`,
//! `apps/asgi`, `crates/rustgun-python`).

use super::AppRef;
use std::fmt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

/// `--interface`: how a Python app is served.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Interface {
    /// WSGI or ASGI, as the callable shows.
    Auto,
    /// PEP 3333, through `libwsgi.so`.
    Wsgi,
    /// ASGI 3, through `libasgi.so` (uvicorn's `asgi3`).
    #[value(alias = "asgi3")]
    Asgi,
}

/// Why a Python app could not be set up. Each displays as one line naming the app.
#[derive(Debug)]
pub enum PythonAppError {
    /// The bridge library is in none of the places the binary looks.
    NoBridge { spec: String, library: &'static str, looked: Vec<PathBuf> },
    /// The interpreter could not be run.
    NoPython { python: PathBuf, error: std::io::Error },
    /// Importing the app to tell WSGI from ASGI failed.
    Import { spec: String, reason: String },
}

impl fmt::Display for PythonAppError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PythonAppError::NoBridge { spec, library, looked } => {
                let looked: Vec<String> = looked.iter().map(|p| p.display().to_string()).collect();
                write!(f, "cannot serve Python app {spec}: {library} is not in {}", looked.join(" or "))
            }
            PythonAppError::NoPython { python, error } => {
                write!(
                    f,
                    "cannot run {} to tell WSGI from ASGI: {error} (or give --interface)",
                    python.display()
                )
            }
            PythonAppError::Import { spec, reason } => {
                write!(f, "cannot load Python app {spec}: {reason}")
            }
        }
    }
}

impl std::error::Error for PythonAppError {}

/// Imports the app the way the bridges do (the working directory first on `sys.path`, then
/// `--pythonpath`) and prints `asgi` or `wsgi`. A failure prints `ExcType: message` on stderr's last
/// line and exits 1.
const DETECT: &str = r#"
import asyncio, importlib, inspect, sys, os
spec, factory, paths = sys.argv[1], sys.argv[2] == "1", [p for p in sys.argv[3:] if p]
sys.path[:0] = [os.getcwd()] + paths
try:
    module, _, attr = spec.partition(":")
    obj = importlib.import_module(module)
    if not attr:
        attr = "application" if hasattr(obj, "application") else "app"
    if "(" in attr:
        obj = eval(attr, vars(obj))
    else:
        for part in attr.split("."):
            obj = getattr(obj, part)
    if factory:
        obj = obj()
except BaseException as e:
    print(f"{type(e).__name__}: {e}", file=sys.stderr)
    sys.exit(1)
if inspect.isclass(obj):
    asgi = hasattr(obj, "__await__")
elif inspect.isfunction(obj) or inspect.ismethod(obj):
    asgi = asyncio.iscoroutinefunction(obj)
else:
    asgi = asyncio.iscoroutinefunction(getattr(obj, "__call__", None))
print("asgi" if asgi else "wsgi")
"#;

/// The server options that reach a Python app's bridge: uvicorn's `--factory`, `--lifespan` and
/// `--root-path`, gunicorn's `--pythonpath`, `--asgi-lifespan` and `--asgi-loop`.
pub struct ServerSide<'a> {
    pub factory: bool,
    pub lifespan: Option<&'a str>,
    pub root_path: &'a str,
    pub pythonpath: Option<&'a str>,
    pub asgi_loop: Option<&'a str>,
    /// `--asgi-disconnect-grace-period`.
    pub asgi_grace: Option<u32>,
    /// `--paste-global KEY=VALUE`s.
    pub paste_global: &'a [String],
}

/// A Python app named on the command line, and what serving it takes.
pub struct PythonApp {
    /// `module[:callable]`, as given.
    spec: String,
    /// Where the binary runs from: the bridges are beside it (a build) or in `../lib/rustgun` (a
    /// wheel installed in a virtual environment, whose root is `..`).
    exe_dir: PathBuf,
}

impl PythonApp {
    /// The Python app `app` names, if it names one: a reference with no `/` whose library part does
    /// not end in `.so` (`main:app`, `myproject.wsgi`), rather than a library path.
    pub fn named(app: &AppRef) -> Option<PythonApp> {
        let path = app.path.to_str()?;
        let paste = path.starts_with("paste:");
        if !paste && (path.contains('/') || path.ends_with(".so") || path.contains(".so.")) {
            return None;
        }
        let spec = if app.symbol_given { format!("{path}:{}", app.symbol) } else { path.to_string() };
        let exe = std::env::current_exe().ok()?;
        Some(PythonApp { spec, exe_dir: exe.parent()?.to_path_buf() })
    }

    fn venv(&self) -> Option<PathBuf> {
        venv_of(&self.exe_dir)
    }

    fn bridge(&self, library: &'static str) -> Result<PathBuf, PythonAppError> {
        bundled_bridge(&self.exe_dir, &self.spec, library)
    }

    /// [`PythonApp::detect`], once per app: a reload (which loads the configuration again) keeps
    /// the interface found at start rather than have the master wait on an import again.
    fn detect_once(&self, bridge_args: &[String], dir: &Path) -> Result<Interface, PythonAppError> {
        static FOUND: Mutex<Vec<(String, PathBuf, Interface)>> = Mutex::new(Vec::new());
        let mut found = FOUND.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(&(_, _, interface)) = found.iter().find(|(spec, at, _)| *spec == self.spec && at == dir) {
            return Ok(interface);
        }
        let interface = self.detect(bridge_args, dir)?;
        found.push((self.spec.clone(), dir.to_path_buf(), interface));
        Ok(interface)
    }

    /// The interface `auto` finds, by importing the app in `dir` with the environment's `python`.
    fn detect(&self, bridge_args: &[String], dir: &Path) -> Result<Interface, PythonAppError> {
        let python = interpreter();
        let factory = bridge_args.iter().any(|a| a == "--factory");
        let paths = pythonpath(bridge_args);
        let out = Command::new(&python)
            .arg("-c")
            .arg(DETECT)
            .arg(&self.spec)
            .arg(if factory { "1" } else { "0" })
            .args(&paths)
            .current_dir(dir)
            .output()
            .map_err(|error| PythonAppError::NoPython { python: python.clone(), error })?;
        match String::from_utf8_lossy(&out.stdout).trim() {
            "asgi" if out.status.success() => Ok(Interface::Asgi),
            "wsgi" if out.status.success() => Ok(Interface::Wsgi),
            _ => {
                let err = String::from_utf8_lossy(&out.stderr);
                let reason = err.lines().rfind(|l| !l.trim().is_empty()).unwrap_or("the import failed");
                Err(PythonAppError::Import { spec: self.spec.clone(), reason: reason.to_string() })
            }
        }
    }

    /// The interface the app is served with, the bridge library to load and its arguments: the
    /// bridge options given after `--`, those the server's own options imply (`server`), the binary's
    /// virtual environment (`--venv`), then the app. `dir` is where the app is imported from
    /// (`--chdir`, else the working directory).
    pub fn resolve(
        &self,
        interface: Interface,
        bridge_args: &[String],
        server: &ServerSide<'_>,
        dir: &Path,
    ) -> Result<(Interface, AppRef, Vec<String>), PythonAppError> {
        let mut bridge_args = bridge_args.to_vec();
        for item in server.paste_global {
            bridge_args.extend(["--paste-global".to_string(), item.clone()]);
        }
        if server.factory && !bridge_args.iter().any(|a| a == "--factory") {
            bridge_args.push("--factory".to_string());
        }
        if let Some(dirs) = server.pythonpath {
            bridge_args.extend(["--pythonpath".to_string(), dirs.to_string()]);
        }
        let interface = match interface {
            // A PasteDeploy file names a WSGI app.
            Interface::Auto if self.spec.starts_with("paste:") => Interface::Wsgi,
            Interface::Auto => self.detect_once(&bridge_args, dir)?,
            given => given,
        };
        // uvicorn's --lifespan and --root-path are the ASGI bridge's options; WSGI has no lifespan,
        // and its mount point is the server's own (SCRIPT_NAME).
        if interface == Interface::Asgi {
            if let Some(mode) = server.lifespan {
                bridge_args.extend(["--asgi-lifespan".to_string(), mode.to_string()]);
            }
            if let Some(grace) = server.asgi_grace {
                bridge_args.extend(["--asgi-disconnect-grace-period".to_string(), grace.to_string()]);
            }
            if let Some(kind) = server.asgi_loop {
                bridge_args.extend(["--asgi-loop".to_string(), kind.to_string()]);
            }
            if !server.root_path.is_empty() {
                bridge_args.extend(["--root-path".to_string(), server.root_path.to_string()]);
            }
        }
        let bridge_args = &bridge_args[..];
        let library = if interface == Interface::Asgi { "libasgi.so" } else { "libwsgi.so" };
        let path = self.bridge(library)?;
        let mut args = bridge_args.to_vec();
        if let Some(venv) = self.venv().filter(|_| !bridge_args.iter().any(|a| a.starts_with("--venv"))) {
            args.extend(["--venv".to_string(), venv.display().to_string()]);
        }
        args.push(self.spec.clone());
        Ok((interface, AppRef { path, symbol: "app".to_string(), symbol_given: true }, args))
    }
}

/// The directory the binary runs from.
fn exe_dir() -> Option<PathBuf> {
    Some(std::env::current_exe().ok()?.parent()?.to_path_buf())
}

/// The virtual environment a binary in `exe_dir` was installed into, if it was.
fn venv_of(exe_dir: &Path) -> Option<PathBuf> {
    let root = exe_dir.parent()?;
    root.join("pyvenv.cfg").is_file().then(|| root.to_path_buf())
}

/// The virtual environment whose Python serves: the binary's own, else `VIRTUAL_ENV`.
pub fn venv() -> Option<PathBuf> {
    exe_dir().and_then(|d| venv_of(&d)).or_else(|| std::env::var_os("VIRTUAL_ENV").map(PathBuf::from))
}

/// The `python` of the app's environment ([`venv`]), else `python3` from `PATH`.
pub fn interpreter() -> PathBuf {
    venv().map_or_else(|| PathBuf::from("python3"), |v| v.join("bin/python"))
}

/// The bridge `library` bundled with the binary: beside it (a build) or in `../lib/rustgun` (a
/// wheel). `spec` is what it is wanted for, for the error.
pub fn bundled_bridge(exe_dir: &Path, spec: &str, library: &'static str) -> Result<PathBuf, PythonAppError> {
    let looked = vec![exe_dir.join(library), exe_dir.join("../lib/rustgun").join(library)];
    match looked.iter().find(|p| p.is_file()) {
        Some(found) => Ok(found.clone()),
        None => Err(PythonAppError::NoBridge { spec: spec.to_string(), library, looked }),
    }
}

/// Whether the app library is one of the Python bridges (named by the server or on the command line).
pub fn is_bridge(app: &AppRef) -> bool {
    app.path.file_name().is_some_and(|n| n == "libwsgi.so" || n == "libasgi.so")
}

/// The bridge that runs a configuration file's hooks for a native app (Python apps use their own).
pub fn hooks_bridge(file: &str) -> Result<PathBuf, PythonAppError> {
    bundled_bridge(&exe_dir().unwrap_or_default(), file, "libwsgi.so")
}

/// The `--pythonpath` directories among a bridge's arguments, in both spellings.
pub fn pythonpath(args: &[String]) -> Vec<String> {
    let mut dirs = Vec::new();
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let value = if arg == "--pythonpath" {
            it.next().map(String::as_str)
        } else {
            arg.strip_prefix("--pythonpath=")
        };
        dirs.extend(value.into_iter().flat_map(|v| v.split(',')).map(str::to_string));
    }
    dirs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_module_names_a_python_app_and_a_library_path_does_not() {
        let named = |s: &str| PythonApp::named(&s.parse().unwrap()).map(|p| p.spec);
        assert_eq!(named("main:app").as_deref(), Some("main:app"));
        assert_eq!(named("myproject.wsgi").as_deref(), Some("myproject.wsgi"));
        assert_eq!(named("pkg.mod:create_app()").as_deref(), Some("pkg.mod:create_app()"));
        for library in ["./libapp.so:app", "libapp.so", "target/release/libwsgi.so:app", "libx.so.1"] {
            assert!(named(library).is_none(), "{library}");
        }
    }

    #[test]
    fn pythonpath_is_read_in_both_spellings() {
        let args: Vec<String> =
            ["--pythonpath", "a,b", "--factory", "--pythonpath=c"].map(String::from).to_vec();
        assert_eq!(pythonpath(&args), ["a", "b", "c"]);
    }
}

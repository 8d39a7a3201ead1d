//! Links the bridge against the interpreter PyO3 found (`PYO3_PYTHON`, set in the Makefile and
//! `.cargo/config.toml`), and records that interpreter's library directory as the cdylib's rpath, so
//! `rustgun libwsgi.so:app` finds libpython without LD_LIBRARY_PATH.

fn main() {
    pyo3_build_config::add_libpython_rpath_link_args();
    println!("cargo:rerun-if-env-changed=PYO3_PYTHON");
}
